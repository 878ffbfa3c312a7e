"""Items with their own deadlines (approval steps): reminded, escalated up the line, then to HR, once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.timing import decide_items, next_item_wake
from contracts.workflow_io import DueItem

OPENED = datetime(2027, 2, 1, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def step(goal_id: str, owner: str | None = "head-1", escalate_to: str | None = "vp-1", days: int = 2) -> DueItem:
    deadline = OPENED + days * DAY
    return DueItem(
        item_id=goal_id,
        kind="goal_approval",
        owner_id=owner,
        deadline=deadline,
        reminders=[deadline - DAY],
        escalate_to_id=escalate_to,
        escalate_to_hr_at=deadline + DAY,
    )


def test_a_late_step_is_reminded_then_escalated_up_the_line_then_to_hr_each_once() -> None:
    items, sent = [step("g1")], set[str]()
    assert decide_items(items, sent, OPENED, "goal_setting") == []
    assert next_item_wake(items, sent, OPENED) == OPENED + DAY

    (reminder,) = decide_items(items, sent, OPENED + DAY, "goal_setting")
    assert (reminder.kind, reminder.recipients) == ("approval_reminder", ("head-1",))
    assert "g1" in reminder.message and "wait for you" in reminder.message
    assert decide_items(items, sent, OPENED + DAY + timedelta(hours=1), "goal_setting") == []
    assert next_item_wake(items, sent, OPENED + DAY) == OPENED + 2 * DAY

    (escalation,) = decide_items(items, sent, OPENED + 2 * DAY, "goal_setting")
    assert (escalation.kind, escalation.recipients) == ("approval_escalation", ("vp-1", "head-1"))
    assert "waiting for head-1" in escalation.message
    (to_hr,) = decide_items(items, sent, OPENED + 3 * DAY, "goal_setting")
    assert (to_hr.kind, to_hr.recipients) == ("approval_escalation_hr", ("hr", "head-1"))
    assert decide_items(items, sent, OPENED + 9 * DAY, "goal_setting") == []
    assert next_item_wake(items, sent, OPENED + 3 * DAY) is None


def test_a_step_found_past_its_deadline_skips_the_reminder_and_escalates_at_once() -> None:
    sent: set[str] = set()
    notices = decide_items([step("g1")], sent, OPENED + 2 * DAY + timedelta(hours=1), "goal_setting")
    assert [n.kind for n in notices] == ["approval_escalation"]


def test_steps_with_the_same_people_go_out_as_one_message_with_a_stable_key() -> None:
    items = [step("g1"), step("g2"), step("g3", owner="head-2", escalate_to=None)]
    notices = decide_items(items, set(), OPENED + 2 * DAY, "goal_setting")
    assert {(n.kind, n.recipients) for n in notices} == {
        ("approval_escalation", ("vp-1", "head-1")),
        ("approval_escalation", ("hr", "head-2")),  # nobody above the approver: HR
    }
    together = next(n for n in notices if n.recipients == ("vp-1", "head-1"))
    assert "2 approval(s)" in together.message and "g1, g2" in together.message
    again = decide_items(items, set(), OPENED + 2 * DAY, "goal_setting")
    assert [n.step for n in notices] == [n.step for n in again]  # the idempotency key is stable


def test_a_step_that_opens_again_gets_fresh_notices_and_approved_steps_are_forgotten() -> None:
    sent: set[str] = set()
    decide_items([step("g1")], sent, OPENED + 2 * DAY, "goal_setting")
    assert sent
    decide_items([], sent, OPENED + 2 * DAY, "goal_setting")  # approved: no longer pending
    assert sent == set()
    reopened = step("g1", days=5)  # returned and submitted again: a new deadline
    decide_items([step("g1")], sent, OPENED + 2 * DAY, "goal_setting")
    (reminder,) = decide_items([reopened], sent, OPENED + 4 * DAY, "goal_setting")
    assert reminder.kind == "approval_reminder"


def test_a_step_waiting_for_hr_reminds_hr() -> None:
    (reminder,) = decide_items([step("k1", owner=None, escalate_to=None)], set(), OPENED + DAY, "goal_setting")
    assert reminder.recipients == ("hr",)
