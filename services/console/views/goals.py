"""Goals: the goal tree, and the approvals of reports' submitted goals."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import APPROVERS, EVERYONE, CycleId
from services.console.auth import Anyone, Approver, ConsoleUser, access, read_form
from services.console.i18n import N_, _
from services.console.params import DepartmentFilter, GoalId
from services.console.rendering import Page, cycle_path, problem, redirect
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

TREE = Page("goals/tree.html", N_("Goal tree"), tab="goals")
APPROVALS = Page("goals/approvals.html", N_("Goal approvals"), tab="approvals")


@router.get(
    "/cycles/{cycle_id}/goals",
    summary="Goal tree: objectives, company, department and individual goals",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def goals_page(
    request: Request, cycle_id: CycleId, user: Anyone, department_id: DepartmentFilter = None
) -> HTMLResponse:
    tree = await Upstream(request, user.token).get(
        "goals", f"/v1/cycles/{quote(cycle_id, safe='')}/tree", {"department_id": department_id}
    )
    return TREE.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if tree.ok else problem(tree, _("the goal tree")),
        tree=tree.data,
        department_id=department_id,
    )


@router.get(
    "/cycles/{cycle_id}/approvals",
    summary="Goals waiting for the caller's approval (reports' submitted goals)",
    response_class=HTMLResponse,
    **access(*APPROVERS),
)
async def approvals_page(request: Request, cycle_id: CycleId, user: Approver) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}/goals"
    submitted, approved = await asyncio.gather(
        api.get("goals", base, {"status": "submitted", "limit": 500}),
        api.get("goals", base, {"status": "approved", "level": "individual", "limit": 50}),
    )
    own = user.principal.employee_id
    return APPROVALS.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if submitted.ok else problem(submitted, _("goals")),
        # an approver never approves their own goal: it waits for their manager
        waiting=[g for g in submitted.data["items"] if not own or g.get("employee_id") != own] if submitted.ok else [],
        approved=approved.data["items"] if approved.ok else [],
    )


async def _goal_transition(request: Request, user: ConsoleUser, cycle_id: str, goal_id: str, action: str) -> Response:
    form = await read_form(request)
    body = {"comment": form.get("comment", "").strip()} if action == "return" else None
    answer = await Upstream(request, user.token).post(
        "goals", f"/v1/cycles/{quote(cycle_id, safe='')}/goals/{quote(goal_id, safe='')}/{action}", body
    )
    back = cycle_path(cycle_id, "approvals")
    if not answer.ok:
        return redirect(back, error=answer.error)
    if action == "approve":
        return redirect(
            back, msg=_("Approved goal '%(name)s' (%(goal_id)s)", name=answer.data["name"], goal_id=goal_id)
        )
    return redirect(back, msg=_("Returned goal '%(name)s' (%(goal_id)s)", name=answer.data["name"], goal_id=goal_id))


@router.post("/cycles/{cycle_id}/goals/{goal_id}/approve", summary="Approve a submitted goal", **access(*APPROVERS))
async def approve_goal(request: Request, cycle_id: CycleId, goal_id: GoalId, user: Approver) -> Response:
    return await _goal_transition(request, user, cycle_id, goal_id, "approve")


@router.post(
    "/cycles/{cycle_id}/goals/{goal_id}/return", summary="Return a submitted goal with a comment", **access(*APPROVERS)
)
async def return_goal(request: Request, cycle_id: CycleId, goal_id: GoalId, user: Approver) -> Response:
    return await _goal_transition(request, user, cycle_id, goal_id, "return")
