"""Who the caller is in a cycle: the org snapshot, and the checks every section makes on the caller."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.participants import OrgView, load_org
from services.feedback.models import FeedbackDepartment, FeedbackParticipant

__all__ = ["is_hr", "my_employee_id", "org_view"]


async def org_view(*, session: AsyncSession, cycle_id: str) -> OrgView:
    return await load_org(session, FeedbackParticipant, FeedbackDepartment, cycle_id)


def is_hr(principal: Principal) -> bool:
    return principal.has(Role.HR_ADMIN)


def my_employee_id(principal: Principal) -> str:
    """The person the call is for (the ``act`` claim of a service token, else the caller)."""
    me = principal.acting_employee_id
    if not me:
        raise DomainError(
            "this action needs a token with an employee_id claim (it acts on your own records)",
            status_code=403,
            field="employee_id",
        )
    return me
