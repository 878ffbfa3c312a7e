"""Pure goal-setting rules: weights, value consistency, attainment, roll-up, the approval state machine.

No I/O here, so unit and property-based tests reach every rule directly.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from contracts.goals import Direction, GoalLevel

__all__ = [
    "ATTAINMENT_CAP",
    "COMPANY_OWNER",
    "WEIGHT_TOLERANCE",
    "Action",
    "GoalKind",
    "GoalStatus",
    "Perspective",
    "TransitionError",
    "WeightSum",
    "attainment",
    "next_status",
    "sum_weights",
    "value_problems",
    "weight_message",
    "weighted_mean",
]

WEIGHT_TOLERANCE = 0.01
"""Weights may sum to 100 +/- this (float rounding of e.g. three goals of 33.33/33.33/33.34)."""

ATTAINMENT_CAP = 1.5
"""Attainment is clamped to [0, 1.5] for display and roll-up."""

COMPANY_OWNER = "company"
"""The single owner of company-level KPIs in weight checks."""


class Perspective(StrEnum):
    """Balanced-scorecard perspective of a strategy objective."""

    FINANCIAL = "financial"
    CUSTOMER = "customer"
    INTERNAL_PROCESS = "internal_process"
    LEARNING_GROWTH = "learning_growth"


class GoalKind(StrEnum):
    KPI = "kpi"
    OKR_KEY_RESULT = "okr_key_result"


class GoalStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    RETURNED = "returned"


class Action(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    RETURN = "return"


EDITABLE_STATUSES = frozenset({GoalStatus.DRAFT, GoalStatus.RETURNED})

_TRANSITIONS: dict[Action, tuple[frozenset[GoalStatus], GoalStatus]] = {
    Action.SUBMIT: (frozenset({GoalStatus.DRAFT, GoalStatus.RETURNED}), GoalStatus.SUBMITTED),
    Action.APPROVE: (frozenset({GoalStatus.SUBMITTED}), GoalStatus.APPROVED),
    Action.RETURN: (frozenset({GoalStatus.SUBMITTED}), GoalStatus.RETURNED),
}


class TransitionError(ValueError):
    """A transition the state machine forbids (reported as 409)."""


def next_status(current: GoalStatus, action: Action) -> GoalStatus:
    """The status after ``action``; raises ``TransitionError`` with the reason when forbidden."""
    allowed_from, target = _TRANSITIONS[action]
    if current not in allowed_from:
        sources = " or ".join(sorted(allowed_from))
        raise TransitionError(f"cannot {action.value} a goal that is {current.value}; only {sources} goals can be")
    return target


# -- weights ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightSum:
    level: GoalLevel
    owner: str
    total: float
    goal_count: int

    @property
    def ok(self) -> bool:
        # the epsilon keeps exactly-0.01-off sums (33.33 x 3) inside despite binary float rounding
        return abs(self.total - 100.0) <= WEIGHT_TOLERANCE + 1e-9

    @property
    def message(self) -> str | None:
        return None if self.ok else weight_message(self.level, self.owner, self.total)


def _fmt(value: float) -> str:
    return f"{round(value, 2):g}"


def weight_message(level: GoalLevel, owner: str, total: float) -> str:
    """E.g. "weights of department 'sales' KPIs sum to 90, not 100"."""
    if level is GoalLevel.COMPANY:
        subject = "company KPIs"
    elif level is GoalLevel.DEPARTMENT:
        subject = f"department '{owner}' KPIs"
    else:
        subject = f"employee '{owner}' goals"
    return f"weights of {subject} sum to {_fmt(total)}, not 100"


def sum_weights(goals: Iterable[tuple[GoalLevel, str, float]]) -> list[WeightSum]:
    """Group ``(level, owner, weight)`` by level and owner; sorted by level then owner."""
    totals: dict[tuple[GoalLevel, str], list[float]] = defaultdict(list)
    for level, owner, weight in goals:
        totals[(level, owner)].append(weight)
    order = {GoalLevel.COMPANY: 0, GoalLevel.DEPARTMENT: 1, GoalLevel.INDIVIDUAL: 2}
    return [
        WeightSum(level=level, owner=owner, total=math.fsum(weights), goal_count=len(weights))
        for (level, owner), weights in sorted(totals.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))
    ]


# -- values -------------------------------------------------------------------------------------------
def value_problems(
    *,
    direction: Direction,
    start: float,
    target: float,
    threshold: float | None,
    stretch: float | None,
) -> list[tuple[str, str]]:
    """``(field, reason)`` for each inconsistency between direction, start, target, threshold, stretch."""
    problems: list[tuple[str, str]] = []
    higher = direction is Direction.HIGHER_IS_BETTER
    for field, value in (
        ("start_value", start),
        ("target_value", target),
        ("threshold_value", threshold),
        ("stretch_value", stretch),
    ):
        if value is not None and not math.isfinite(value):
            problems.append((field, f"{field} must be a finite number"))
    if problems:
        return problems
    if higher and target < start:
        problems.append(
            (
                "target_value",
                f"target {_fmt(target)} is below start {_fmt(start)} but the direction is higher_is_better",
            )
        )
    if not higher and target > start:
        problems.append(
            ("target_value", f"target {_fmt(target)} is above start {_fmt(start)} but the direction is lower_is_better")
        )
    if threshold is not None and not (min(start, target) <= threshold <= max(start, target)):
        problems.append(
            (
                "threshold_value",
                f"threshold {_fmt(threshold)} must lie between start {_fmt(start)} and target {_fmt(target)}",
            )
        )
    if stretch is not None and ((higher and stretch < target) or (not higher and stretch > target)):
        word = "at or above" if higher else "at or below"
        problems.append(
            ("stretch_value", f"stretch {_fmt(stretch)} must be {word} target {_fmt(target)} ({direction.value})")
        )
    return problems


# -- progress -----------------------------------------------------------------------------------------
def attainment(*, direction: Direction, start: float, target: float, actual: float) -> float:
    """(actual - start) / (target - start), honouring direction, clamped to [0, ATTAINMENT_CAP].

    For lower_is_better the target lies below the start, so the same ratio is positive as the value
    falls. A zero span (start == target) is all-or-nothing: met (1.0) or not (0.0).
    """
    span = target - start
    if span == 0:
        met = actual >= target if direction is Direction.HIGHER_IS_BETTER else actual <= target
        return 1.0 if met else 0.0
    raw = (actual - start) / span
    return min(max(raw, 0.0), ATTAINMENT_CAP)


def weighted_mean(items: Iterable[tuple[float, float | None]]) -> float | None:
    """Weighted mean of ``(weight, value)`` over the items that have a value; None when none has.

    Children without data yet are left out (their weight is not counted), so early progress is not
    dragged to zero by KPIs whose data-owner has not reported yet.
    """
    pairs = [(w, v) for w, v in items if v is not None and w > 0]
    total = math.fsum(w for w, _ in pairs)
    if total == 0:
        return None
    return math.fsum(w * v for w, v in pairs) / total
