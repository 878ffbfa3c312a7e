"""What the sections of the results service layer share: the cycle row, its preconditions, and
committing a keyed write exactly once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.templates import SettingsVersion
from services.common.errors import DomainError
from services.results.models import ResultsCycle
from services.results.policy import ResultsPolicy

__all__ = [
    "SERVICE",
    "commit_once",
    "get_cycle",
    "get_policy",
    "policy_version",
    "rating_labels",
    "read_policy_version",
    "require_results",
    "same_cycle",
]

SERVICE = "results"
T = TypeVar("T")


async def get_cycle(*, session: AsyncSession, cycle_id: str, create: bool = False) -> ResultsCycle:
    cycle = await session.get(ResultsCycle, cycle_id)
    if cycle is None:
        if not create:
            raise DomainError(f"cycle {cycle_id!r} has no result data yet", status_code=404, field="cycle_id")
        cycle = ResultsCycle(cycle_id=cycle_id)
        session.add(cycle)
    return cycle


async def get_policy(*, session: AsyncSession, cycle_id: str) -> ResultsPolicy:
    cycle = await session.get(ResultsCycle, cycle_id)
    if cycle is None or cycle.policy is None:
        return ResultsPolicy()
    return ResultsPolicy.model_validate(cycle.policy)


def rating_labels(cycle: ResultsCycle) -> list[str]:
    """The cycle's rating bands, lowest first; empty while unknown (results pushed without bands)."""
    return list(cycle.rating_labels or [])


def policy_version(cycle: ResultsCycle | None) -> SettingsVersion:
    """Who set the cycle's policy (defaults: version 0 from the template)."""
    if cycle is None:
        return SettingsVersion.of(None, None, None, None)
    return SettingsVersion.of(
        cycle.policy_version, cycle.policy_source, cycle.policy_changed_by, cycle.policy_changed_at
    )


async def read_policy_version(*, session: AsyncSession, cycle_id: str) -> SettingsVersion:
    return policy_version(await session.get(ResultsCycle, cycle_id))


def require_results(cycle: ResultsCycle) -> None:
    if cycle.results_received_at is None:
        raise DomainError(
            f"cycle {cycle.cycle_id!r} has no calibrated results yet (evaluation pushes them after calibration)",
            status_code=409,
        )


def same_cycle(what: str, body_cycle_id: str, cycle_id: str) -> None:
    """A pushed body names its cycle; it must be the one in the URL."""
    if body_cycle_id != cycle_id:
        raise DomainError(f"{what} for cycle {body_cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id")


async def commit_once(
    session: AsyncSession, attempt: Callable[[], Awaitable[tuple[T, bool]]], *, replayable: bool = True
) -> tuple[T, bool]:
    """Run ``attempt`` (it answers ``(result, replayed)``) and commit what it wrote.

    Two requests with the same key can both find nothing stored and both write; the unique
    constraint lets one commit and fails the other. The loser rolls back and runs ``attempt``
    again, which now finds the winner's row and answers as a retry would (or refuses, as a retry
    would). Without a key (``replayable=False``) there is nothing to replay: the error stands.
    """
    try:
        result, replayed = await attempt()
        if not replayed:
            await session.commit()
        return result, replayed
    except IntegrityError:  # from the commit, or from a flush inside ``attempt``
        await session.rollback()
        if not replayable:
            raise
    result, replayed = await attempt()
    if not replayed:
        await session.commit()
    return result, replayed
