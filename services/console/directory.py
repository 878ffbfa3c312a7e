"""People's names for the pages: the org directory as the signed-in user may read it.

The cycles API scopes the directory (an employee reads their own record, a manager their reports,
a head their department, HR everyone), so a page names whom the user may see and shows the
employee id of anyone else.
"""

from __future__ import annotations

from services.console.upstream import Upstream

__all__ = ["DIRECTORY_LIMIT", "names"]

DIRECTORY_LIMIT = 500
"""People read in one call (the API's page size); beyond that a page shows employee ids."""


async def names(api: Upstream, **filters: str | None) -> dict[str, str]:
    """Employee id -> name, for everyone the user may see (one call)."""
    answer = await api.get("cycles", "/v1/org/employees", {"limit": DIRECTORY_LIMIT, **filters})
    return {e["employee_id"]: e["name"] for e in answer.items()}
