"""A keyed write that loses a race is answered as a retry (``results.service.records.commit_once``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.exc import IntegrityError

from services.results.service.records import commit_once


class RacingSession:
    """Stands in for the session: its first commit fails as the loser of a unique-key race."""

    def __init__(self, *, lose_first_commit: bool) -> None:
        self.lose_first_commit = lose_first_commit
        self.commits = 0
        self.rollbacks = 0

    async def commit(self) -> None:
        self.commits += 1
        if self.lose_first_commit and self.commits == 1:
            raise IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    async def rollback(self) -> None:
        self.rollbacks += 1


def attempts(*answers: tuple[str, bool]) -> Callable[[], Awaitable[tuple[str, bool]]]:
    """An ``attempt`` answering each given ``(result, replayed)`` in turn."""
    queue = list(answers)

    async def attempt() -> tuple[str, bool]:
        return queue.pop(0)

    return attempt


async def test_a_new_write_is_committed_once() -> None:
    session = RacingSession(lose_first_commit=False)
    assert await commit_once(session, attempts(("new", False))) == ("new", False)  # type: ignore[arg-type]
    assert (session.commits, session.rollbacks) == (1, 0)


async def test_a_replay_commits_nothing() -> None:
    session = RacingSession(lose_first_commit=False)
    assert await commit_once(session, attempts(("stored", True))) == ("stored", True)  # type: ignore[arg-type]
    assert session.commits == 0


async def test_the_loser_of_a_race_answers_with_the_winners_row() -> None:
    session = RacingSession(lose_first_commit=True)
    answer = await commit_once(session, attempts(("mine", False), ("winner's", True)))  # type: ignore[arg-type]
    assert answer == ("winner's", True)
    assert (session.commits, session.rollbacks) == (1, 1)


async def test_without_a_key_the_conflict_stands() -> None:
    session = RacingSession(lose_first_commit=True)
    with pytest.raises(IntegrityError):
        await commit_once(session, attempts(("mine", False)), replayable=False)  # type: ignore[arg-type]
    assert session.rollbacks == 1
