"""Goals: the goal tree (where HR adds objectives and company KPIs), and the approvals of submitted goals."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import APPROVERS, EVERYONE, HR, CycleId
from services.console.auth import Anyone, Approver, ConsoleUser, HrAdmin, access, read_form
from services.console.forms import FormState, refused
from services.console.i18n import N_, _
from services.console.params import DepartmentFilter, GoalId
from services.console.rendering import Page, cycle_path, problem, redirect, word
from services.console.upstream import Upstream
from services.console.views.goal_forms import aggregation_options, direction_options, kind_options

__all__ = ["router"]

router = APIRouter()

TREE = Page("goals/tree.html", N_("Goal tree"), tab="goals")
APPROVALS = Page("goals/approvals.html", N_("Goal approvals"), tab="approvals")


async def goals_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, department_id: str | None = None,
    state: FormState | None = None,
) -> HTMLResponse:  # fmt: skip
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
        hr=user.has(*HR),
        state=state or FormState(),
        perspectives=perspective_options(),
        kinds=kind_options(),
        directions=direction_options(),
        aggregations=aggregation_options(),
    )


def perspective_options() -> list[tuple[str, str]]:
    return [(p, word(p)) for p in ("financial", "customer", "internal_process", "learning_growth")]


@router.get(
    "/cycles/{cycle_id}/goals",
    summary="Goal tree: objectives, company, department and individual goals; HR adds objectives and company KPIs",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def goals_page(
    request: Request, cycle_id: CycleId, user: Anyone, department_id: DepartmentFilter = None
) -> HTMLResponse:
    return await goals_page_for(request, user, cycle_id, department_id)


@router.post("/cycles/{cycle_id}/objectives", summary="Add a strategy objective (HR)", **access(*HR))
async def create_objective(request: Request, cycle_id: CycleId, user: HrAdmin) -> Response:
    form = await read_form(request)
    body = {"name": form.get("name", "").strip(), "perspective": form.get("perspective", ""),
            "description": form.get("description", "").strip()}  # fmt: skip
    answer = await Upstream(request, user.token).post(
        "goals", f"/v1/cycles/{quote(cycle_id, safe='')}/objectives", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="objective")
        return refused(await goals_page_for(request, user, cycle_id, state=state))
    return redirect(cycle_path(cycle_id, "goals"), msg=_("Objective '%(name)s' added.", name=answer.data["name"]))


SCORECARD = Page("goals/scorecard.html", N_("Balanced scorecard"), tab="scorecard")
PERSPECTIVES = {
    "financial": N_("Financial"),
    "customer": N_("Customer"),
    "internal_process": N_("Internal process"),
    "learning_growth": N_("Learning and growth"),
}


@router.get(
    "/cycles/{cycle_id}/scorecard",
    summary="Balanced scorecard: progress rolled up per perspective, for the company or one department",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def scorecard_page(
    request: Request, cycle_id: CycleId, user: Anyone, department_id: DepartmentFilter = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    params = {"department_id": department_id} if department_id else None
    card, cycle = await asyncio.gather(api.get("goals", f"{base}/scorecard", params), api.get("cycles", base))
    return SCORECARD.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if card.ok else problem(card, _("the scorecard")),
        card=card.data if card.ok else None,
        departments=list(cycle.data.get("department_ids", [])) if cycle.ok else [],
        department_id=department_id or "",
        perspectives={key: _(label) for key, label in PERSPECTIVES.items()},
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
