"""The cross-department performance committee: its workflow contracts and its timing rules.

Two workflows serve the committee (``workflows/committee.py``):

* ``CommitteeMeetingWorkflow``: one meeting. A Temporal Schedule (id :func:`committee_schedule_id`)
  starts it at the committee's cadence; its one activity asks the committee service to open the
  meeting with an agenda generated from the cycle's live data.
* ``CommitteeDecisionWorkflow``: one decision (id :func:`decision_workflow_id`), tracked to done:
  reminders to the owner before the due date, escalation to the chair at the due date, to HR
  after ``escalate_to_hr_after_days``, then a reminder to the owner every ``overdue_reminder_days``
  until the decision is done or cancelled. :func:`decide_decision` is the whole rule, pure.

The cadence and the decision timing follow the cycle's grammar (``contracts.timing``): reminder
days before a due date, a ``Notice`` per notification, ``day_seconds`` compressing every duration
together for demos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from contracts.cycle import Stage
from contracts.ids import Id
from contracts.timing import Notice, ReminderDays, unique_reminders

__all__ = [
    "COMMITTEE_EVENT_PAYLOADS",
    "AgendaEntry",
    "CalibrationAdjustmentLinkedPayload",
    "CalibrationSessionOpenedPayload",
    "CommitteeChangedPayload",
    "CommitteeCreatedPayload",
    "CommitteeFunction",
    "CommitteeMeetingInput",
    "CommitteeSeat",
    "DecisionChanged",
    "DecisionChangedPayload",
    "DecisionOutcome",
    "DecisionPolicy",
    "DecisionQuery",
    "DecisionRecordedPayload",
    "DecisionSnapshot",
    "DecisionState",
    "DecisionStatus",
    "DecisionStatusChangedPayload",
    "DecisionStep",
    "DecisionTrackingInput",
    "DecisionTrackingProgress",
    "MeetingCadence",
    "MeetingOpenedPayload",
    "MeetingPrepared",
    "MeetingRequest",
    "MemberRole",
    "MinutesRecordedPayload",
    "committee_schedule_id",
    "decide_decision",
    "decision_workflow_id",
    "meeting_workflow_id",
    "next_decision_wake",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommitteeFunction(StrEnum):
    """The role division the committee is built on: one seat or more for each function."""

    HR = "hr"
    BUSINESS = "business"
    FINANCE = "finance"
    IT = "it"


class MemberRole(StrEnum):
    CHAIR = "chair"
    """Runs the meetings; overdue decisions are escalated to the chair first."""
    SECRETARY = "secretary"
    """Keeps the agenda and minutes; the committee reads other services acting for the secretary."""
    MEMBER = "member"


class DecisionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (DecisionStatus.DONE, DecisionStatus.CANCELLED)


# -- ids ------------------------------------------------------------------------------------------
def committee_schedule_id(committee_id: str) -> str:
    return f"committee-{committee_id}-meetings"


def meeting_workflow_id(committee_id: str) -> str:
    """The Schedule's workflow id; each run gets the scheduled time appended by Temporal."""
    return f"committee-{committee_id}-meeting"


def decision_workflow_id(decision_id: str) -> str:
    return f"committee-decision-{decision_id}"


# -- the meeting cadence --------------------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MeetingCadence(_Model):
    """When the committee meets: from ``first_meeting_at``, every ``every_days`` days."""

    first_meeting_at: AwareDatetime
    every_days: int = Field(default=30, ge=1, le=366, description="Days between meetings (30 = monthly).")
    day_seconds: float = Field(
        default=86_400, gt=0, le=86_400, description="Seconds per day (compressed for demos, e.g. 2)."
    )

    @property
    def every(self) -> timedelta:
        return timedelta(seconds=self.every_days * self.day_seconds)

    @property
    def offset(self) -> timedelta:
        """The Schedule interval's offset from the Unix epoch, so its first firing is ``first_meeting_at``."""
        return (self.first_meeting_at - _EPOCH) % self.every

    def meeting_times(self, until: datetime) -> list[datetime]:
        """Every meeting up to ``until`` (inclusive): what the Schedule fires, computed without Temporal."""
        times: list[datetime] = []
        moment = self.first_meeting_at
        while moment <= until:
            times.append(moment)
            moment = moment + self.every
        return times


class CommitteeMeetingInput(_Model):
    """Start input of ``CommitteeMeetingWorkflow`` (fixed when the Schedule is created)."""

    committee_id: Id
    cycle_id: Id | None = Field(default=None, description="A per-cycle committee's cycle; else the active one.")


class MeetingRequest(_Model):
    """Activity ``prepare_committee_meeting``: open one meeting with its agenda (idempotent on the key)."""

    committee_id: Id
    idempotency_key: str = Field(min_length=1, max_length=300, description="The scheduled run's workflow id.")
    held_at: AwareDatetime
    cycle_id: Id | None = None


class MeetingPrepared(_Model):
    meeting_id: Id
    cycle_id: Id | None
    agenda_items: int = Field(ge=0)
    created: bool = Field(description="False when the idempotency key had already opened this meeting.")


# -- decisions ------------------------------------------------------------------------------------
class DecisionPolicy(_Model):
    """How a committee's decisions are chased (the committee's setting; every decision copies it)."""

    reminder_days_before: ReminderDays = Field(default_factory=lambda: [3, 1])
    escalate_to_hr_after_days: float = Field(
        default=3, ge=0, le=365, description="Days after the due date (and the chair's escalation) before HR hears."
    )
    overdue_reminder_days: float = Field(
        default=7, gt=0, le=365, description="While overdue, the owner is reminded again this often."
    )
    recheck_hours: float = Field(default=24, gt=0, le=24 * 30, description="Re-read the decision at least this often.")
    day_seconds: float = Field(default=86_400, gt=0, le=86_400, description="Seconds per day (compressed demos).")

    @field_validator("reminder_days_before")
    @classmethod
    def _reminders(cls, value: list[int]) -> list[int]:
        return unique_reminders(value, "reminder_days_before")

    def days(self, count: float) -> timedelta:
        return timedelta(seconds=count * self.day_seconds)


class DecisionTrackingInput(_Model):
    """Start input of ``CommitteeDecisionWorkflow``; also its continue-as-new state."""

    decision_id: Id
    policy: DecisionPolicy = Field(default_factory=DecisionPolicy)
    history_event_limit: int = Field(default=10_000, ge=100, description="Continue as new beyond this.")
    # continue-as-new state
    due_at: AwareDatetime | None = None
    reminders_sent: list[float] = Field(default_factory=list)
    escalated_to_chair: bool = False
    escalated_to_hr: bool = False
    overdue_reminders: int = 0
    reminders: int = 0
    escalations: int = 0


class DecisionQuery(_Model):
    decision_id: Id


class DecisionSnapshot(_Model):
    """What the committee service says about a decision now (the workflow re-reads it at every check)."""

    decision_id: Id
    committee_id: Id
    cycle_id: Id
    stage: Stage = Field(
        description="The cycle's stage when the decision was taken (notifications are filed under it)."
    )
    title: str = Field(max_length=300)
    status: DecisionStatus
    owner_id: Id
    owner_department_id: Id
    chair_id: Id | None = None
    due_at: AwareDatetime


class DecisionChanged(_Model):
    """Signal: the decision changed (status, owner, due date); the workflow re-reads it now."""

    reason: str = Field(default="", max_length=200)


class DecisionTrackingProgress(_Model):
    decision_id: Id
    status: DecisionStatus | None = None
    due_at: AwareDatetime | None = None
    reminders: int = 0
    escalations: int = 0


class DecisionOutcome(_Model):
    decision_id: Id
    outcome: DecisionStatus
    reminders: int = 0
    escalations: int = 0


@dataclass
class DecisionState:
    """What a decision's workflow remembers between checks."""

    due_at: datetime | None = None
    reminders_sent: list[float] = field(default_factory=list)
    escalated_to_chair: bool = False
    escalated_to_hr: bool = False
    overdue_reminders: int = 0

    def move_due(self, due_at: datetime) -> None:
        """A new due date gets its own reminders and escalations (as a moved stage deadline does)."""
        self.due_at = due_at
        self.reminders_sent, self.escalated_to_chair, self.escalated_to_hr = [], False, False
        self.overdue_reminders = 0


@dataclass(frozen=True)
class DecisionStep:
    notices: tuple[Notice, ...] = ()
    finish: DecisionStatus | None = None


def decide_decision(
    policy: DecisionPolicy, state: DecisionState, now: datetime, decision: DecisionSnapshot
) -> DecisionStep:
    """What the decision's workflow does now; updates ``state`` in place. Pure: no I/O, no clock.

    * done or cancelled: finish;
    * a due date other than the one remembered (first check, or moved): start its timing afresh;
    * before the due date: one reminder to the owner at each ``reminder_days_before`` point (several
      points passed at once send one, the nearest);
    * at the due date: escalate to the chair (``decision_overdue``, the owner is told too);
    * ``escalate_to_hr_after_days`` later: escalate to HR;
    * after that: remind the owner every ``overdue_reminder_days`` until the decision is done.
    """
    if decision.status.finished:
        return DecisionStep(finish=decision.status)
    if state.due_at != decision.due_at:
        state.move_due(decision.due_at)
    due = decision.due_at
    title = f"'{decision.title}'"
    notices: list[Notice] = []
    points = [d for d in policy.reminder_days_before if d not in state.reminders_sent and now >= due - policy.days(d)]
    if points and now < due:
        state.reminders_sent.extend(points)
        notices.append(
            Notice(
                "decision_reminder",
                f"reminder-{min(points):g}d-{due.isoformat()}",
                "owner",
                f"Committee decision {title} is due on {due.isoformat()}",
            )
        )
    if now >= due and not state.escalated_to_chair:
        state.escalated_to_chair = True
        notices.append(
            Notice("decision_overdue", f"overdue-{due.isoformat()}", "owner", f"Decision {title} is overdue")
        )
        notices.append(
            Notice(
                "decision_escalation_chair",
                f"escalation-chair-{due.isoformat()}",
                "chair",
                f"Decision {title} owned by {decision.owner_id} missed its due date {due.isoformat()}",
            )
        )
    hr_at = due + policy.days(policy.escalate_to_hr_after_days)
    if now >= hr_at and not state.escalated_to_hr:
        state.escalated_to_hr = True
        notices.append(
            Notice(
                "decision_escalation_hr",
                f"escalation-hr-{due.isoformat()}",
                "hr",
                f"Decision {title} owned by {decision.owner_id} is still open after its due date {due.isoformat()}",
            )
        )
    elif state.escalated_to_hr:
        repeats = int((now - hr_at) / policy.days(policy.overdue_reminder_days))
        if repeats > state.overdue_reminders:
            state.overdue_reminders = repeats
            notices.append(
                Notice(
                    "decision_overdue",
                    f"overdue-{repeats}-{due.isoformat()}",
                    "owner",
                    f"Decision {title} is still overdue (due {due.isoformat()})",
                )
            )
    return DecisionStep(notices=tuple(notices))


def next_decision_wake(policy: DecisionPolicy, state: DecisionState, now: datetime) -> datetime:
    """When the next reminder, escalation or re-check is due (the workflow sleeps until then)."""
    candidates = [now + timedelta(seconds=policy.recheck_hours * 3600 * policy.day_seconds / 86_400)]
    if state.due_at is not None:
        due = state.due_at
        hr_at = due + policy.days(policy.escalate_to_hr_after_days)
        candidates += [due - policy.days(d) for d in policy.reminder_days_before if d not in state.reminders_sent]
        candidates.append(due if not state.escalated_to_chair else hr_at)
        if state.escalated_to_hr:
            candidates.append(hr_at + policy.days(policy.overdue_reminder_days) * (state.overdue_reminders + 1))
    future = [c for c in candidates if c > now]
    return min(future) if future else candidates[0]


# -- domain events ----------------------------------------------------------------------------------
class _Payload(BaseModel):
    """What the committee service writes on ``cycle.events.v1`` (the ``payload`` of its domain events;
    the typed events themselves are registered in ``contracts/domain_events.py``)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class CommitteeSeat(_Payload):
    employee_id: Id
    department_id: Id
    function: CommitteeFunction
    role: MemberRole


class CommitteeCreatedPayload(_Payload):
    committee_id: Id
    name: str = Field(max_length=200)
    standing: bool = Field(description="True: no cycle of its own; each meeting covers the active cycle.")
    members: list[CommitteeSeat]
    cadence: MeetingCadence | None


class CommitteeChangedPayload(_Payload):
    committee_id: Id
    changed: list[str] = Field(description="What changed: name, members, decision_policy, agenda_rules, cadence.")
    cadence: MeetingCadence | None = None
    by: str = Field(max_length=200)


class AgendaEntry(_Payload):
    item_id: str = Field(max_length=200)
    kind: str = Field(max_length=64)


class MeetingOpenedPayload(_Payload):
    committee_id: Id
    meeting_id: Id
    held_at: AwareDatetime
    stage: str | None = Field(max_length=32)
    agenda: list[AgendaEntry]


class MinutesRecordedPayload(_Payload):
    committee_id: Id
    meeting_id: Id
    attendees: list[Id]


class DecisionRecordedPayload(_Payload):
    committee_id: Id
    meeting_id: Id
    decision_id: Id
    title: str = Field(max_length=300)
    owner_id: Id
    due_at: AwareDatetime
    agenda_item_id: str | None = Field(max_length=200)


class DecisionStatusChangedPayload(_Payload):
    decision_id: Id
    from_status: DecisionStatus
    to_status: DecisionStatus
    note: str | None = Field(max_length=2000)
    by: str = Field(max_length=200)


class DecisionChangedPayload(_Payload):
    decision_id: Id
    changed: list[str]
    owner_id: Id
    due_at: AwareDatetime
    by: str = Field(max_length=200)


class CalibrationSessionOpenedPayload(_Payload):
    committee_id: Id
    meeting_id: Id
    session_id: Id
    decision_id: Id | None


class CalibrationAdjustmentLinkedPayload(_Payload):
    session_id: Id
    decision_id: Id | None
    adjustment_id: int
    employee_id: Id


COMMITTEE_EVENT_PAYLOADS: dict[str, type[BaseModel]] = {
    "CommitteeCreated": CommitteeCreatedPayload,
    "CommitteeChanged": CommitteeChangedPayload,
    "CommitteeMeetingOpened": MeetingOpenedPayload,
    "CommitteeMinutesRecorded": MinutesRecordedPayload,
    "CommitteeDecisionRecorded": DecisionRecordedPayload,
    "CommitteeDecisionStatusChanged": DecisionStatusChangedPayload,
    "CommitteeDecisionChanged": DecisionChangedPayload,
    "CommitteeCalibrationSessionOpened": CalibrationSessionOpenedPayload,
    "CommitteeCalibrationAdjustmentLinked": CalibrationAdjustmentLinkedPayload,
}
"""Event type -> payload model: every domain event the committee service emits (schema_version 1)."""
