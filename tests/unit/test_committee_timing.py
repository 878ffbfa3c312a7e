"""The committee's timing rules, pure: the meeting cadence and how a decision is chased to done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.committee import (
    DecisionPolicy,
    DecisionSnapshot,
    DecisionState,
    DecisionStatus,
    MeetingCadence,
    decide_decision,
    next_decision_wake,
)
from contracts.cycle import Stage

DAY = timedelta(days=1)
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DUE = START + 14 * DAY


def decision(status: DecisionStatus = DecisionStatus.OPEN, due_at: datetime = DUE) -> DecisionSnapshot:
    return DecisionSnapshot(
        decision_id="d-1",
        committee_id="perf",
        cycle_id="c-1",
        stage=Stage.TRACKING,
        title="Fix the sales data feed",
        status=status,
        owner_id="olga",
        owner_department_id="it",
        chair_id="carl",
        due_at=due_at,
    )


def run(policy: DecisionPolicy, days: list[float], snapshot: DecisionSnapshot) -> list[tuple[float, str, str]]:
    """(day since START, kind, audience) of every notice when the workflow checks on ``days``."""
    state = DecisionState()
    sent = []
    for day in days:
        step = decide_decision(policy, state, START + day * DAY, snapshot)
        sent += [(day, n.kind, n.audience) for n in step.notices]
    return sent


def test_reminders_before_the_due_date_then_chair_then_hr_then_every_week() -> None:
    policy = DecisionPolicy(reminder_days_before=[3, 1], escalate_to_hr_after_days=2, overdue_reminder_days=7)
    assert run(policy, [0, 11, 13, 14, 15, 16, 20, 23, 30], decision()) == [
        (11, "decision_reminder", "owner"),
        (13, "decision_reminder", "owner"),
        (14, "decision_overdue", "owner"),
        (14, "decision_escalation_chair", "chair"),
        (16, "decision_escalation_hr", "hr"),
        (23, "decision_overdue", "owner"),
        (30, "decision_overdue", "owner"),
    ]


def test_several_reminder_points_passed_at_once_send_one() -> None:
    policy = DecisionPolicy(reminder_days_before=[7, 3, 1])
    assert run(policy, [13.5], decision()) == [(13.5, "decision_reminder", "owner")]


def test_a_done_or_cancelled_decision_finishes_and_sends_nothing() -> None:
    for status in (DecisionStatus.DONE, DecisionStatus.CANCELLED):
        step = decide_decision(DecisionPolicy(), DecisionState(), START + 20 * DAY, decision(status))
        assert step.finish is status and step.notices == ()


def test_a_moved_due_date_gets_its_own_reminders_and_escalations() -> None:
    policy = DecisionPolicy(reminder_days_before=[1], escalate_to_hr_after_days=1)
    state = DecisionState()
    assert [n.kind for n in decide_decision(policy, state, START + 14 * DAY, decision()).notices] == [
        "decision_overdue",
        "decision_escalation_chair",
    ]
    moved = decision(due_at=DUE + 10 * DAY)
    assert decide_decision(policy, state, START + 15 * DAY, moved).notices == ()
    assert [n.kind for n in decide_decision(policy, state, START + 23 * DAY, moved).notices] == ["decision_reminder"]
    assert state.escalated_to_chair is False and state.due_at == moved.due_at


def test_steps_are_keyed_by_due_date_so_notifications_are_idempotent() -> None:
    policy = DecisionPolicy(reminder_days_before=[1])
    steps = [n.step for n in decide_decision(policy, DecisionState(), START + 13.5 * DAY, decision()).notices]
    assert steps == [f"reminder-1d-{DUE.isoformat()}"]


def test_next_wake_is_the_next_reminder_escalation_or_recheck() -> None:
    policy = DecisionPolicy(reminder_days_before=[3, 1], escalate_to_hr_after_days=2, recheck_hours=24 * 30)
    state = DecisionState()
    decide_decision(policy, state, START, decision())
    assert next_decision_wake(policy, state, START) == DUE - 3 * DAY
    decide_decision(policy, state, DUE, decision())
    assert next_decision_wake(policy, state, DUE) == DUE + 2 * DAY
    decide_decision(policy, state, DUE + 2 * DAY, decision())
    assert next_decision_wake(policy, state, DUE + 2 * DAY) == DUE + 9 * DAY


def test_compressed_days_scale_every_duration_together() -> None:
    policy = DecisionPolicy(reminder_days_before=[1], escalate_to_hr_after_days=1, recheck_hours=24, day_seconds=60)
    state = DecisionState()
    due = START + timedelta(minutes=10)
    snapshot = decision(due_at=due)
    assert decide_decision(policy, state, due - timedelta(seconds=61), snapshot).notices == ()
    assert [n.kind for n in decide_decision(policy, state, due - timedelta(seconds=59), snapshot).notices] == [
        "decision_reminder"
    ]
    assert next_decision_wake(policy, state, due - timedelta(seconds=59)) == due


def test_reminder_days_must_be_unique() -> None:
    with pytest.raises(ValidationError, match="each day may appear once"):
        DecisionPolicy(reminder_days_before=[1, 1])


def test_the_cadence_fires_from_the_first_meeting_at_its_interval() -> None:
    cadence = MeetingCadence(first_meeting_at=START, every_days=30)
    assert cadence.meeting_times(START + 90 * DAY) == [START, START + 30 * DAY, START + 60 * DAY, START + 90 * DAY]
    # The Schedule's interval counts from the Unix epoch; the offset makes it fire at the first meeting.
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert (START - epoch - cadence.offset) % cadence.every == timedelta(0)
    assert timedelta(0) <= cadence.offset < cadence.every


def test_a_compressed_cadence_for_demos() -> None:
    cadence = MeetingCadence(first_meeting_at=START, every_days=30, day_seconds=2)
    assert cadence.every == timedelta(seconds=60)
    assert len(cadence.meeting_times(START + timedelta(minutes=3))) == 4
