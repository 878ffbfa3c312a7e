"""Pure committee rules: who sits on a committee, and how a decision moves to done.

No I/O here, so unit tests reach every rule directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.committee import CommitteeFunction, DecisionStatus, MemberRole

__all__ = [
    "OWNER_MAY_SET",
    "TRANSITIONS",
    "Seat",
    "TransitionError",
    "composition_problems",
    "next_decision_status",
]


@dataclass(frozen=True)
class Seat:
    employee_id: str
    function: CommitteeFunction
    role: MemberRole


def composition_problems(seats: Sequence[Seat]) -> list[str]:
    """Why a committee's members do not make a committee (empty when they do).

    The article asks for a *cross-department* committee with a role division between HR,
    business, finance and IT: every function holds at least one seat. One chair runs the meetings
    and receives escalations; one secretary keeps the agenda and minutes.
    """
    problems: list[str] = []
    duplicates = sorted(e for e, n in Counter(s.employee_id for s in seats).items() if n > 1)
    if duplicates:
        problems.append(f"members: each person sits once; {duplicates} appear more than once")
    present = {s.function for s in seats}
    missing = [f.value for f in CommitteeFunction if f not in present]
    if missing:
        problems.append(f"members: no seat for {missing}; HR, business, finance and IT each need at least one member")
    roles = Counter(s.role for s in seats)
    for role in (MemberRole.CHAIR, MemberRole.SECRETARY):
        if roles[role] != 1:
            problems.append(f"members: a committee has exactly one {role.value}, got {roles[role]}")
    return problems


TRANSITIONS: dict[DecisionStatus, frozenset[DecisionStatus]] = {
    DecisionStatus.OPEN: frozenset({DecisionStatus.IN_PROGRESS, DecisionStatus.DONE, DecisionStatus.CANCELLED}),
    DecisionStatus.IN_PROGRESS: frozenset({DecisionStatus.OPEN, DecisionStatus.DONE, DecisionStatus.CANCELLED}),
    DecisionStatus.DONE: frozenset(),
    DecisionStatus.CANCELLED: frozenset(),
}
"""A done or cancelled decision is final: the committee takes a new decision instead of reopening one."""

OWNER_MAY_SET = frozenset({DecisionStatus.OPEN, DecisionStatus.IN_PROGRESS, DecisionStatus.DONE})
"""What a decision's owner may set; cancelling is the committee's call."""


class TransitionError(ValueError):
    """A status change the rules do not allow; the message says why."""


def next_decision_status(current: DecisionStatus, wanted: DecisionStatus, *, by_owner_only: bool) -> DecisionStatus:
    """``wanted`` if the move is allowed (``by_owner_only``: the caller is the owner, not a committee manager)."""
    if wanted == current:
        return current
    if wanted not in TRANSITIONS[current]:
        raise TransitionError(f"a {current.value} decision cannot become {wanted.value}")
    if by_owner_only and wanted not in OWNER_MAY_SET:
        raise TransitionError(f"only the committee (hr_admin or a member department head) can set {wanted.value}")
    return wanted
