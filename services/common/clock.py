"""The services' clock: ``NowDep`` in routes, replaceable in tests (``app.state.clock``)
so deadlines can be tested without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

__all__ = ["NowDep", "current_time", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def current_time(request: Request) -> datetime:
    """The app's clock (``app.state.clock``, default the wall clock)."""
    clock: Callable[[], datetime] = getattr(request.app.state, "clock", utc_now)
    return clock()


NowDep = Annotated[datetime, Depends(current_time)]
