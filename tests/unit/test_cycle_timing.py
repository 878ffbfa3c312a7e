"""The department workflow's decision, without Temporal: reminders, escalations, deadline policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.cycle import DeadlinePolicy, Stage
from contracts.timing import DepartmentState, decide, next_wake
from contracts.workflow_io import DepartmentCycleInput

DEADLINE = datetime(2027, 3, 31, tzinfo=UTC)


def department(stage: Stage = Stage.GOAL_SETTING, **overrides: object) -> DepartmentCycleInput:
    values: dict[str, object] = {
        "cycle_id": "c1",
        "department_id": "sales",
        "stage": stage,
        "deadline": DEADLINE,
        "reminder_days_before": [7.0, 1.0],
        "escalate_to_hr_after_days": 2.0,
        "deadline_policy": DeadlinePolicy.CLOSE,
        "extension_days": 3.0,
        "recheck_hours": 24.0,
        "parent_workflow_id": "review-cycle-c1",
    }
    values.update(overrides)
    return DepartmentCycleInput.model_validate(values)


def test_nothing_pending_completes_the_stage() -> None:
    decision = decide(department(), DepartmentState(deadline=DEADLINE), DEADLINE - timedelta(days=20), pending=0)
    assert decision.finish == "completed"
    assert not decision.notices


def test_a_reminder_goes_out_at_each_cadence_point_and_only_once() -> None:
    inp, state = department(), DepartmentState(deadline=DEADLINE)
    assert decide(inp, state, DEADLINE - timedelta(days=8), pending=4).notices == ()
    first = decide(inp, state, DEADLINE - timedelta(days=7), pending=4)
    assert [(n.kind, n.audience) for n in first.notices] == [("reminder", "pending")]
    assert first.notices[0].step == f"reminder-7d-{DEADLINE.isoformat()}"
    assert "4 item(s) due by" in first.notices[0].message
    assert decide(inp, state, DEADLINE - timedelta(days=6), pending=4).notices == ()
    last = decide(inp, state, DEADLINE - timedelta(hours=12), pending=1)
    assert [n.step for n in last.notices] == [f"reminder-1d-{DEADLINE.isoformat()}"]
    assert state.reminders_sent == [7.0, 1.0]


def test_cadence_points_passed_together_send_one_reminder_the_nearest() -> None:
    inp, state = department(), DepartmentState(deadline=DEADLINE)
    decision = decide(inp, state, DEADLINE - timedelta(hours=6), pending=2)
    assert [n.step for n in decision.notices] == [f"reminder-1d-{DEADLINE.isoformat()}"]
    assert sorted(state.reminders_sent) == [1.0, 7.0]


def test_missed_deadline_goes_to_the_head_then_hr_then_closes() -> None:
    inp, state = department(), DepartmentState(deadline=DEADLINE, reminders_sent=[7.0, 1.0])
    at_deadline = decide(inp, state, DEADLINE, pending=3)
    assert [(n.kind, n.audience) for n in at_deadline.notices] == [("escalation_head", "head")]
    assert at_deadline.finish is None
    assert decide(inp, state, DEADLINE + timedelta(days=1), pending=3).notices == ()
    at_hr = decide(inp, state, DEADLINE + timedelta(days=2), pending=3)
    assert [(n.kind, n.audience) for n in at_hr.notices] == [("escalation_hr", "hr")]
    assert at_hr.finish == "closed_at_deadline"


def test_extend_policy_moves_the_deadline_once_with_fresh_reminders() -> None:
    inp = department(deadline_policy=DeadlinePolicy.EXTEND)
    state = DepartmentState(deadline=DEADLINE, reminders_sent=[7.0, 1.0], escalated_to_head=True)
    now = DEADLINE + timedelta(days=2)
    first = decide(inp, state, now, pending=1)
    assert first.finish is None
    assert first.extend_to == now + timedelta(days=3)
    state.move_deadline(first.extend_to)
    assert (state.reminders_sent, state.escalated_to_head, state.escalated_to_hr) == ([], False, False)
    # The extension is used up: the second missed deadline closes the stage.
    second_deadline = first.extend_to
    decide(inp, state, second_deadline, pending=1)
    final = decide(inp, state, second_deadline + timedelta(days=2), pending=1)
    assert final.finish == "closed_at_deadline"
    assert final.extend_to is None


def test_tracking_reminds_data_owners_once_per_stale_episode_and_escalates() -> None:
    inp, state = department(Stage.TRACKING), DepartmentState(deadline=DEADLINE)
    start = DEADLINE - timedelta(days=30)
    first = decide(inp, state, start, pending=2)
    assert [(n.kind, n.audience, n.step) for n in first.notices] == [
        ("stale_kpi_reminder", "data_owners", "stale-1-reminder")
    ]
    assert decide(inp, state, start + timedelta(days=1), pending=2).notices == ()
    escalation = decide(inp, state, start + timedelta(days=2), pending=2)
    assert [(n.kind, n.audience) for n in escalation.notices] == [("stale_kpi_escalation", "data_owners_and_head")]
    assert decide(inp, state, start + timedelta(days=3), pending=0).notices == ()
    again = decide(inp, state, start + timedelta(days=4), pending=1)
    assert [n.step for n in again.notices] == ["stale-2-reminder"]
    assert decide(inp, state, DEADLINE, pending=1).finish == "completed"


def test_next_wake_is_the_nearest_reminder_escalation_or_recheck() -> None:
    inp, state = department(recheck_hours=240.0), DepartmentState(deadline=DEADLINE)
    now = DEADLINE - timedelta(days=9)
    assert next_wake(inp, state, now) == DEADLINE - timedelta(days=7)
    state.reminders_sent = [7.0, 1.0]
    assert next_wake(inp, state, DEADLINE - timedelta(hours=1)) == DEADLINE
    state.escalated_to_head = True
    assert next_wake(inp, state, DEADLINE + timedelta(hours=1)) == DEADLINE + timedelta(days=2)
    assert next_wake(department(Stage.TRACKING, recheck_hours=1.0), state, now) == now + timedelta(hours=1)


def test_stale_data_notices_go_to_the_data_owners_people_and_never_to_nobody() -> None:
    """Reminders go to whoever tracking reported as answering for the data (data stewards); the
    escalation adds the department head; with no one reported, the head is reminded instead."""
    from contracts.workflow_io import PendingSummary
    from workflows.department_cycle import _recipients

    stewards = PendingSummary(total=3, done=1, pending=2, owner_ids=["E0210", "E0240"])
    assert _recipients("data_owners", stewards) == ["E0210", "E0240"]
    assert _recipients("data_owners_and_head", stewards) == ["E0210", "E0240", "department_head"]
    nobody = PendingSummary(total=1, done=0, pending=1)
    assert _recipients("data_owners", nobody) == ["department_head"]
    assert _recipients("data_owners_and_head", nobody) == ["department_head"]
