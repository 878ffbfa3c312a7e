"""Row scoping of list queries on a cycle's org snapshot, the same in every stage service.

``OrgView.visible_employee_ids`` says whom a caller may see; this applies it to a query, and
loads the snapshot only for callers who do not see everyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from services.common.auth import Principal, Role
from services.common.participants import OrgView

__all__ = ["in_scope", "sees_all"]

Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def sees_all(principal: Principal) -> bool:
    """HR and ops read every row; everyone else only the rows their org scope covers."""
    return principal.has(Role.HR_ADMIN, Role.OPS)


async def in_scope(
    query: Q, employee_id: InstrumentedAttribute[str], *, principal: Principal, org: Callable[[], Awaitable[OrgView]]
) -> Q:
    """``query`` narrowed to the rows of the employees ``principal`` may see (``employee_id`` is the
    column; ``org`` loads the cycle's snapshot)."""
    if sees_all(principal):
        return query
    visible = (await org()).visible_employee_ids(principal) or set()
    return query.where(employee_id.in_(sorted(visible)))
