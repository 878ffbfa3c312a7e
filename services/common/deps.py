"""``Annotated`` dependency aliases shared by every service's routes, so routes stay one-liners."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.auth import Principal, current_principal

__all__ = ["CurrentPrincipal", "SessionDep", "get_session"]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request from the factory the app's lifespan put on ``app.state.sessions``."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
