"""Anonymity of peer and cross-department reviews, as pure rules.

**Batches.** An anonymous relation's aggregate (the summary's mean, per-competency means and
comments, and the score's ``peer`` / ``cross_department`` component) holds the earliest whole
multiple of the anonymity threshold of its submitted reviews, in submission order: with a
threshold of 3, reviews 1-3 count once the third arrives, reviews 4-6 once the sixth arrives,
and a fourth or fifth review waits for the sixth. The invariant: *two reads of an aggregate,
whenever made and by whoever, differ by whole batches of at least ``threshold`` reviews*, so the
difference between two reads (a reviewee polling their summary, a manager re-reading a report's
score after each recompute, the audit log's before and after of a result) never isolates one
rater. Counting every submitted review instead made the mean move with each one: the reviewee,
who sees how many were submitted, recovered each later rater's ratings and comment from the
change.

**Locks.** Raters write under the promise the configuration makes when they are asked. Once a
cycle's review assignments exist, the threshold cannot change (a lower one would show smaller
groups; any change would also move the batch boundaries, and the difference between two
batchings can isolate a rater), and neither visibility setting may become more revealing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from contracts.evaluation import EvaluationConfig, ManagerPeerVisibility, PeerVisibility

__all__ = ["Submitted", "counted", "locked_change"]


class Submitted(Protocol):
    """A submitted review as the batching rule needs it (an ``EvaluationAssignment`` row)."""

    @property
    def assignment_id(self) -> str: ...

    @property
    def submitted_at(self) -> datetime | None: ...


R = TypeVar("R", bound=Submitted)

_REVEALS: dict[str, int] = {
    PeerVisibility.COUNTS_ONLY.value: 0,
    PeerVisibility.AGGREGATE.value: 1,
    PeerVisibility.AGGREGATE_WITH_COMMENTS.value: 2,
    ManagerPeerVisibility.AGGREGATE.value: 0,
    ManagerPeerVisibility.ATTRIBUTED.value: 1,
}
"""How much each visibility shows: a change to a higher number reveals more than raters were told."""


def counted(reviews: Sequence[R], threshold: int) -> list[R]:
    """The reviews an anonymous relation's aggregate holds: the earliest ``threshold × k`` by
    submission time (ties by assignment id), for the largest ``k`` the submitted reviews allow;
    none below the threshold."""
    ordered = sorted(reviews, key=lambda r: (r.submitted_at.timestamp() if r.submitted_at else 0.0, r.assignment_id))
    return ordered[: len(ordered) - len(ordered) % threshold] if threshold > 0 else ordered


def locked_change(current: EvaluationConfig, proposed: EvaluationConfig) -> tuple[str, str] | None:
    """``(field, reason)`` when ``proposed`` changes what raters were promised under ``current``
    (checked once review assignments exist); ``None`` when the change is allowed."""
    if proposed.peer_anonymity_threshold != current.peer_anonymity_threshold:
        return (
            "peer_anonymity_threshold",
            f"the anonymity threshold is locked at {current.peer_anonymity_threshold} once review assignments "
            f"exist (asked for {proposed.peer_anonymity_threshold}): raters were promised groups of that size",
        )
    for name in ("peer_visibility", "peer_visibility_for_managers"):
        old, new = getattr(current, name).value, getattr(proposed, name).value
        if _REVEALS[new] > _REVEALS[old]:
            return (
                name,
                f"{name} cannot change from {old!r} to {new!r} once review assignments exist: it would show "
                "raters' reviews more openly than they were told when asked",
            )
    return None
