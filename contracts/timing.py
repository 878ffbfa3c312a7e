"""Cycle timing, in one place: when stages open, when reminders go out, when a missed deadline
is escalated and what happens then.

The rules, as the department workflow applies them (:func:`decide`):

* **Stage dates.** A stage *opens* the day the previous one closes (the first on the cycle's
  start date); its *deadline* is ``deadline_days`` after it opens; it *closes* ``duration_days``
  after it opens.
* **Reminders** go to the people still pending ``reminder_days_before`` days before each
  deadline (per stage, or the template's cadence). Several cadence points passed at once (a late
  start, a pause) send one reminder, the nearest.
* **Escalation.** At the deadline, whoever is still pending is escalated to the department head;
  ``escalate_days_after_deadline`` days later (at least one day) to HR.
* **Deadline policy.** When HR has been told: ``close`` ends the department's stage with what is
  missing; ``extend`` moves the deadline ``extension_days`` on, once, with fresh reminders and
  escalations, and closes at the new deadline.
* **Items with their own deadlines** (an approval step's, ``contracts.goals.ApprovalStep``) are
  reminded and escalated on that deadline as well (:func:`decide_items`): their owner at each
  reminder time; at the deadline the next one up the owner's line (HR when there is none), the
  owner told too; at ``escalate_to_hr_at`` HR. The stage's own rules still apply around them.
* **Tracking** has no items to complete: it runs to its deadline; the people who answer for a
  department's stale KPIs (their data owners' stewards, as tracking reports them) are reminded
  once per stale episode, and if still stale ``escalate_days_after_deadline`` days later the
  escalation goes to them and to the department head.

``day_seconds`` compresses every duration together (demos and benchmarks run a year in minutes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.cycle import DeadlinePolicy, Stage
from contracts.errors import rule
from contracts.workflow_io import DepartmentCycleInput, DueItem, ReviewCycleInput, StageSchedule

__all__ = [
    "ACTIVE_STAGES",
    "CycleTiming",
    "Decision",
    "DepartmentState",
    "Notice",
    "ReminderDays",
    "StagePlan",
    "StageWindow",
    "build_cycle_input",
    "decide",
    "decide_items",
    "next_item_wake",
    "next_wake",
    "unique_reminders",
]

ACTIVE_STAGES: tuple[Stage, ...] = tuple(s for s in Stage if s is not Stage.CLOSED)
"""The stages a template schedules, in workflow order (``closed`` is the end state)."""

ReminderDays = Annotated[list[Annotated[int, Field(ge=0, le=365)]], Field(max_length=10)]


def unique_reminders(value: list[int], where: str) -> list[int]:
    if len(set(value)) != len(value):
        raise rule(f"{where}: each day may appear once, got {value}")
    return sorted(value, reverse=True)


# -- the plan a template writes ------------------------------------------------------------------
class StagePlan(BaseModel):
    """How long one stage lasts and when its deadline falls."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    duration_days: int = Field(ge=1, le=400, description="Days from the stage opening to the next stage opening.")
    deadline_days: int | None = Field(
        default=None,
        ge=1,
        le=400,
        description="Days after the stage opens by which participants must act; default: duration_days.",
    )
    reminder_days_before: ReminderDays | None = Field(
        default=None, description="Overrides the template's reminder cadence for this stage."
    )

    @field_validator("reminder_days_before")
    @classmethod
    def _reminders(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else unique_reminders(value, "reminder_days_before")

    @model_validator(mode="after")
    def _deadline_within_stage(self) -> StagePlan:
        if self.stage is Stage.CLOSED:
            raise rule("stage 'closed' is the end state of a cycle and has no duration; leave it out")
        if self.deadline_days is not None and self.deadline_days > self.duration_days:
            raise rule(
                f"stage '{self.stage.value}': deadline_days ({self.deadline_days}) is after the stage closes "
                f"(duration_days {self.duration_days})"
            )
        return self

    @property
    def deadline_offset(self) -> int:
        return self.deadline_days if self.deadline_days is not None else self.duration_days


class StageWindow(BaseModel):
    """One stage of a concrete cycle, in dates."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    opens_on: date
    deadline: date
    closes_on: date
    reminders: list[date] = Field(description="Dates reminders are sent, earliest first.")


class CycleTiming(BaseModel):
    """Every timing setting of a template (``CycleTemplateSpec.timing``), validated together."""

    model_config = ConfigDict(extra="forbid")

    stages: list[StagePlan]
    reminder_days_before: list[int]
    escalate_days_after_deadline: int
    deadline_policy: DeadlinePolicy
    extension_days: int

    def plan_for(self, stage: Stage) -> StagePlan:
        for plan in self.stages:
            if plan.stage is stage:
                return plan
        raise KeyError(stage)

    def reminders_for(self, stage: Stage) -> list[int]:
        """Days before the deadline of ``stage`` that reminders go out, largest first."""
        plan = self.plan_for(stage)
        return plan.reminder_days_before if plan.reminder_days_before is not None else self.reminder_days_before

    def problems(self) -> list[str]:
        """Reminders that would go out before their stage opens, named by stage."""
        problems: list[str] = []
        for plan in self.stages:
            early = [d for d in self.reminders_for(plan.stage) if d > plan.deadline_offset]
            if early:
                problems.append(
                    f"stage '{plan.stage.value}': reminder(s) {early} days before the deadline would go out before "
                    f"the stage opens (its deadline is {plan.deadline_offset} days in)"
                )
        return problems

    def windows(self, start: date) -> list[StageWindow]:
        """The stage dates of a cycle that starts on ``start``."""
        windows: list[StageWindow] = []
        opens = start
        for plan in self.stages:
            deadline = opens + timedelta(days=plan.deadline_offset)
            windows.append(
                StageWindow(
                    stage=plan.stage,
                    opens_on=opens,
                    deadline=deadline,
                    closes_on=opens + timedelta(days=plan.duration_days),
                    reminders=[deadline - timedelta(days=d) for d in self.reminders_for(plan.stage)],
                )
            )
            opens = opens + timedelta(days=plan.duration_days)
        return windows


def build_cycle_input(
    *,
    cycle_id: str,
    timing: CycleTiming,
    department_ids: list[str],
    starts_at: datetime,
    day_seconds: float = 86_400,
    recheck_hours: float | None = None,
) -> ReviewCycleInput:
    """The workflow input for a cycle: deadlines and policies from the template's timing.

    ``day_seconds`` compresses time for demos and benchmarks (e.g. 2 s per template day):
    deadlines, reminder offsets, escalation delays and the extension all scale together.
    """
    scale = day_seconds / 86_400
    schedule: list[StageSchedule] = []
    opens = starts_at
    for plan in timing.stages:
        schedule.append(
            StageSchedule(
                stage=plan.stage,
                deadline=opens + timedelta(seconds=plan.deadline_offset * day_seconds),
                reminder_days_before=[d * scale for d in timing.reminders_for(plan.stage)],
            )
        )
        opens = opens + timedelta(seconds=plan.duration_days * day_seconds)
    return ReviewCycleInput(
        cycle_id=cycle_id,
        department_ids=department_ids,
        schedule=schedule,
        reminder_days_before=[d * scale for d in timing.reminder_days_before],
        escalate_to_hr_after_days=max(timing.escalate_days_after_deadline, 1) * scale,
        deadline_policy=timing.deadline_policy,
        extension_days=timing.extension_days * scale,
        recheck_hours=recheck_hours if recheck_hours is not None else max(24 * scale, 1 / 3600),
        day_seconds=day_seconds,
    )


# -- the department workflow's decision ----------------------------------------------------------
@dataclass
class DepartmentState:
    """What a department's stage remembers between checks (the workflow's loop state)."""

    deadline: datetime
    reminders_sent: list[float] = field(default_factory=list)
    escalated_to_head: bool = False
    escalated_to_hr: bool = False
    extended: bool = False
    stale_episode: int = 0
    stale_reminded: bool = False
    stale_since: datetime | None = None

    def move_deadline(self, deadline: datetime) -> None:
        """A moved deadline gets its own reminders and escalations."""
        self.deadline = deadline
        self.reminders_sent, self.escalated_to_head, self.escalated_to_hr = [], False, False


@dataclass(frozen=True)
class Notice:
    """One notification to send: its kind, idempotency step, audience and message."""

    kind: str
    step: str
    audience: str
    """``pending`` (the people still pending), ``data_owners``, ``data_owners_and_head``, ``head``, ``hr``
    or ``named`` (``recipients``)."""
    message: str
    recipients: tuple[str, ...] = ()
    """The people a ``named`` notice goes to (employee ids, or ``hr``)."""


@dataclass(frozen=True)
class Decision:
    notices: tuple[Notice, ...] = ()
    finish: str | None = None
    """The department's outcome when its stage part is over: completed or closed_at_deadline."""
    extend_to: datetime | None = None
    """The new deadline when the policy extends it."""


def decide(inp: DepartmentCycleInput, state: DepartmentState, now: datetime, pending: int) -> Decision:
    """What the department's stage does now, given ``pending`` items; updates ``state`` in place.

    Pure: no I/O and no clock, so unit tests reach every rule without Temporal.
    """
    stage = inp.stage.value
    hr_after = timedelta(days=inp.escalate_to_hr_after_days)
    if inp.stage == Stage.TRACKING:
        if now >= state.deadline:
            return Decision(finish="completed")
        if pending == 0:
            state.stale_reminded = False
            return Decision()
        if not state.stale_reminded:
            state.stale_episode += 1
            state.stale_reminded = True
            state.stale_since = now
            return Decision(
                notices=(
                    Notice(
                        "stale_kpi_reminder",
                        f"stale-{state.stale_episode}-reminder",
                        "data_owners",
                        f"{pending} KPI(s) owned by {inp.department_id} have no recent data",
                    ),
                ),
            )
        since = state.stale_since or now
        if now - since >= hr_after and not state.escalated_to_head:
            state.escalated_to_head = True
            return Decision(
                notices=(
                    Notice(
                        "stale_kpi_escalation",
                        f"stale-{state.stale_episode}-escalation",
                        "data_owners_and_head",
                        f"{pending} KPI(s) owned by {inp.department_id} are still stale",
                    ),
                ),
            )
        return Decision()

    if pending == 0:
        return Decision(finish="completed")
    deadline = state.deadline
    notices: list[Notice] = []
    due = [d for d in inp.reminder_days_before if d not in state.reminders_sent and now >= deadline - timedelta(days=d)]
    if due and now < deadline:
        # Several cadence points passed at once (late start, pause): send one, the nearest.
        state.reminders_sent.extend(due)
        notices.append(
            Notice(
                "reminder",
                f"reminder-{min(due):g}d-{deadline.isoformat()}",
                "pending",
                f"{pending} item(s) due by {deadline.isoformat()} in {stage}",
            )
        )
    if now >= deadline and not state.escalated_to_head:
        state.escalated_to_head = True
        notices.append(
            Notice(
                "escalation_head",
                f"escalation-head-{deadline.isoformat()}",
                "head",
                f"{pending} item(s) in {stage} missed the deadline",
            )
        )
    if now >= deadline + hr_after and not state.escalated_to_hr:
        state.escalated_to_hr = True
        notices.append(
            Notice(
                "escalation_hr",
                f"escalation-hr-{deadline.isoformat()}",
                "hr",
                f"{inp.department_id}: {pending} item(s) in {stage} still missing",
            )
        )
        if inp.deadline_policy == DeadlinePolicy.EXTEND and not state.extended:
            state.extended = True
            return Decision(notices=tuple(notices), extend_to=now + timedelta(days=inp.extension_days))
        return Decision(notices=tuple(notices), finish="closed_at_deadline")
    return Decision(notices=tuple(notices))


def next_wake(inp: DepartmentCycleInput, state: DepartmentState, now: datetime) -> datetime:
    """When the next reminder, escalation or re-check is due (the workflow sleeps until then)."""
    recheck = now + timedelta(hours=inp.recheck_hours)
    candidates = [recheck]
    if inp.stage == Stage.TRACKING:
        candidates.append(state.deadline)
    else:
        hr_after = timedelta(days=inp.escalate_to_hr_after_days)
        candidates += [
            state.deadline - timedelta(days=d) for d in inp.reminder_days_before if d not in state.reminders_sent
        ]
        candidates.append(state.deadline if not state.escalated_to_head else state.deadline + hr_after)
    future = [c for c in candidates if c > now]
    return min(future) if future else recheck


# -- items with their own deadlines (approval steps) ---------------------------------------------
ITEM_LIST = 10
"""Item ids named in one message; the rest are counted."""


def _item_key(item: DueItem) -> str:
    """One item at one deadline: a step that opens again (a new round) has a new deadline, so fresh notices."""
    return f"{item.item_id}@{item.deadline.isoformat()}"


def decide_items(items: Sequence[DueItem], sent: set[str], now: datetime, stage: str) -> list[Notice]:
    """Reminders and escalations of the items with their own deadlines; updates ``sent`` in place.

    Per item: its owner is reminded at its reminder times (several passed at once send one); at its
    deadline the escalation goes to the next one up the owner's line, or HR, and the owner is told;
    at ``escalate_to_hr_at`` HR hears. Notices of one kind to the same people go out as one message.
    Keys of items no longer pending are forgotten, so ``sent`` stays as small as the queue. Pure.
    """
    current = {_item_key(i) for i in items}
    sent.difference_update([k for k in sent if k.rsplit("/", 1)[0] not in current])
    groups: dict[tuple[str, tuple[str, ...]], list[DueItem]] = {}
    for item in items:
        key = _item_key(item)
        owner = item.owner_id or "hr"
        passed = [f"{key}/reminder-{r.isoformat()}" for r in item.reminders if r <= now]
        fresh = [k for k in passed if k not in sent]
        if fresh and now < item.deadline:
            sent.update(fresh)
            groups.setdefault(("approval_reminder", (owner,)), []).append(item)
        if now >= item.deadline and f"{key}/escalation" not in sent:
            sent.update([f"{key}/escalation", *passed])
            target = item.escalate_to_id or "hr"
            groups.setdefault(("approval_escalation", tuple(dict.fromkeys([target, owner]))), []).append(item)
        hr_at = item.escalate_to_hr_at
        if hr_at is not None and now >= hr_at and f"{key}/escalation-hr" not in sent:
            sent.add(f"{key}/escalation-hr")
            groups.setdefault(("approval_escalation_hr", tuple(dict.fromkeys(["hr", owner]))), []).append(item)
    return [_item_notice(kind, recipients, group, stage) for (kind, recipients), group in groups.items()]


def _item_notice(kind: str, recipients: tuple[str, ...], items: list[DueItem], stage: str) -> Notice:
    ids = [i.item_id for i in items]
    named = ", ".join(ids[:ITEM_LIST]) + (f" and {len(ids) - ITEM_LIST} more" if len(ids) > ITEM_LIST else "")
    deadline = min(i.deadline for i in items).isoformat()
    waiting = ", ".join(sorted({i.owner_id or "hr" for i in items}))
    message = {
        "approval_reminder": f"{len(ids)} approval(s) in {stage} wait for you, due by {deadline}: {named}",
        "approval_escalation": f"{len(ids)} approval(s) in {stage} missed their deadline {deadline} "
        f"(waiting for {waiting}): {named}",
        "approval_escalation_hr": f"{len(ids)} approval(s) in {stage} are still waiting for {waiting} "
        f"after their deadline {deadline}: {named}",
    }[kind]
    digest = hashlib.sha256("|".join(sorted(_item_key(i) for i in items)).encode()).hexdigest()[:16]
    return Notice(kind, f"{kind}-{digest}", "named", message, recipients)


def next_item_wake(items: Sequence[DueItem], sent: set[str], now: datetime) -> datetime | None:
    """When the next item reminder or escalation is due, if any."""
    times: list[datetime] = []
    for item in items:
        key = _item_key(item)
        times += [r for r in item.reminders if r < item.deadline and f"{key}/reminder-{r.isoformat()}" not in sent]
        if f"{key}/escalation" not in sent:
            times.append(item.deadline)
        if item.escalate_to_hr_at is not None and f"{key}/escalation-hr" not in sent:
            times.append(item.escalate_to_hr_at)
    future = [t for t in times if t > now]
    return min(future) if future else None
