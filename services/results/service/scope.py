"""Who the caller is in a cycle: the org snapshot, and the checks every section makes on the caller."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.participants import OrgView, load_org
from services.common.scoping import sees_all
from services.results.models import ResultsDepartment, ResultsParticipant

__all__ = ["acting_sub", "check_department", "my_employee_id", "org_view"]


async def org_view(*, session: AsyncSession, cycle_id: str) -> OrgView:
    return await load_org(session, ResultsParticipant, ResultsDepartment, cycle_id)


def my_employee_id(principal: Principal) -> str:
    """The person the call is for (the ``act`` claim of a service token, else the caller)."""
    me = principal.acting_employee_id
    if not me:
        raise DomainError("this action needs a token with an employee_id claim", status_code=403)
    return me


def acting_sub(principal: Principal) -> str:
    """Who a change is recorded for: the person a service token acts for (``act.sub``), else the caller."""
    act = principal.claims.get("act")
    return str(act["sub"]) if isinstance(act, dict) and isinstance(act.get("sub"), str) else principal.sub


def check_department(principal: Principal, org: OrgView, department_id: str) -> None:
    """HR and ops see every department; a department head only their own (and sub-departments)."""
    if sees_all(principal):
        return
    departments = org.headed_by(principal.employee_id) if principal.employee_id else set()
    if principal.department_id:
        departments |= org.department_tree(principal.department_id)
    if department_id not in departments:
        raise DomainError(f"department {department_id!r} is not in your scope", status_code=403)
