"""Writing goals: an employee's own goals and a department head's department KPIs.

Both pages list the owner's goals with their status and weight, a form for a new one (aligned to
a KPI one level up, with a live sum of the weights), and per draft or returned goal its edit,
submit and delete forms. Every form posts here; the goals API judges the values and a refusal
comes back next to the field it names.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.auth import Role
from services.common.params import STAFF, CycleId
from services.console.auth import ConsoleUser, Staff, access, read_form
from services.console.forms import FormState, number, optional, refused
from services.console.i18n import N_, _
from services.console.params import GoalId
from services.console.rendering import Page, cycle_path, problem, redirect
from services.console.upstream import Answer, Upstream

__all__ = ["GOAL_FIELDS", "goal_body", "router"]

router = APIRouter()

MY_GOALS = Page("goals/my_goals.html", N_("My goals"), tab="my-goals")
EDITABLE = ("draft", "returned")
GOAL_FIELDS = (
    "name", "description", "kind", "metric", "data_owner_department_id", "unit", "direction", "aggregation",
    "start_value", "target_value", "weight", "parent_id",
)  # fmt: skip
NUMBERS = ("start_value", "target_value", "weight")


def goal_body(form: dict[str, str], *, partial: bool = False) -> dict[str, Any]:
    """The goals API's body from the form, values as typed (the API validates them)."""
    body: dict[str, Any] = {}
    for name in GOAL_FIELDS:
        value = number(form.get(name)) if name in NUMBERS else optional(form.get(name))
        if value is not None or (not partial and name in ("name", "unit")):
            body[name] = value if value is not None else ""
    return body


def kind_options() -> list[tuple[str, str]]:
    return [("okr_key_result", _("Key result (no metric)")), ("kpi", _("KPI (tracked by a metric)"))]


def direction_options() -> list[tuple[str, str]]:
    return [("higher_is_better", _("Higher is better")), ("lower_is_better", _("Lower is better"))]


def aggregation_options() -> list[tuple[str, str]]:
    return [(a, a) for a in ("last", "sum", "avg", "min", "max", "count")]


def weight_sum(goals: list[dict[str, Any]]) -> float:
    return round(sum(float(g.get("weight") or 0) for g in goals), 4)


async def parents_for(api: Upstream, cycle_id: str, level: str, lineage: set[str]) -> list[tuple[str, str]]:
    """The KPIs a new goal may align to: department KPIs of the employee's department line (or shared
    with it) for an individual goal, company KPIs for a department KPI."""
    tree = await api.get("goals", f"/v1/cycles/{quote(cycle_id, safe='')}/tree")
    if not tree.ok:
        return []
    options: list[tuple[str, str]] = []
    for objective in tree.data.get("objectives", []):
        for company in objective.get("kpis", []):
            if level == "department":
                options.append((company["goal_id"], company["name"]))
                continue
            for department in company.get("children", []):
                shared = set(department.get("contributing_department_ids") or [])
                if not lineage or department.get("department_id") in lineage or shared & lineage:
                    options.append((department["goal_id"], f"{department['name']} ({department.get('department_id')})"))
    return options


async def lineage_of(api: Upstream, department_id: str | None) -> set[str]:
    """The department and its parents (goals align to a KPI of one of them)."""
    if not department_id:
        return set()
    departments = await api.get("cycles", "/v1/org/departments", {"limit": 500})
    parents = {d["department_id"]: d.get("parent_id") for d in departments.items()}
    chain: set[str] = set()
    current: str | None = department_id
    while current and current not in chain:
        chain.add(current)
        current = parents.get(current)
    return chain


async def my_goals(request: Request, user: ConsoleUser, cycle_id: str, state: FormState | None = None) -> HTMLResponse:
    me = user.principal.employee_id
    if not me:
        missing = Answer(403, None, _("your token has no employee_id"))
        return MY_GOALS.render(request, user, cycle_id=cycle_id, problem=problem(missing, _("your goals")))
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    person, goals, settings = await asyncio.gather(
        api.get("cycles", f"/v1/org/employees/{quote(me, safe='')}"),
        api.get("goals", f"{base}/goals", {"employee_id": me, "level": "individual", "limit": 100}),
        api.get("goals", f"{base}/settings"),
    )
    department = person.data.get("department_id") if person.ok else user.principal.department_id
    parents = await parents_for(api, cycle_id, "individual", await lineage_of(api, department))
    items = goals.items()
    return MY_GOALS.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if goals.ok else problem(goals, _("your goals")),
        goals=items,
        frozen=bool(settings.data.get("frozen")) if settings.ok else False,
        level="individual",
        owner_department=department,
        parents=parents,
        weight_total=weight_sum(items),
        state=state or FormState(form_id="new-goal"),
        kinds=kind_options(),
        directions=direction_options(),
        aggregations=aggregation_options(),
        editable=EDITABLE,
        back=cycle_path(cycle_id, "my-goals"),
    )


@router.get(
    "/cycles/{cycle_id}/my-goals",
    summary="Your own goals: write, align, weigh (live sum) and submit them",
    response_class=HTMLResponse,
    **access(*STAFF),
)
async def my_goals_page(request: Request, cycle_id: CycleId, user: Staff) -> HTMLResponse:
    return await my_goals(request, user, cycle_id)


PAGES = {"department": "department", "company": "goals"}
"""The page each level's forms live on (individual goals: "my-goals")."""


def _back(form: dict[str, str], cycle_id: str) -> str:
    """The page a goal form came from: the goal tree, the department page or your goals (nothing else)."""
    return cycle_path(cycle_id, PAGES.get(form.get("level", ""), "my-goals"))


async def _again(
    request: Request, user: ConsoleUser, cycle_id: str, form: dict[str, str], state: FormState
) -> Response:
    """The page the form came from, rendered again with the form's state (status 422)."""
    # Imported here: those pages build their goal forms from this module.
    from services.console.views.department import department_page_for
    from services.console.views.goals import goals_page_for

    level = form.get("level")
    if level == "department":
        return refused(await department_page_for(request, user, cycle_id, state))
    if level == "company":
        return refused(await goals_page_for(request, user, cycle_id, state=state))
    return refused(await my_goals(request, user, cycle_id, state))


@router.post("/cycles/{cycle_id}/goals", summary="Create your goal or your department's KPI", **access(*STAFF))
async def create_goal(request: Request, cycle_id: CycleId, user: Staff) -> Response:
    form = await read_form(request)
    body = goal_body(form)
    if form.get("level") == "department":
        if not user.has(Role.DEPT_HEAD):
            return redirect(_back(form, cycle_id), error=_("only a department head writes department KPIs"))
        body.update(level="department", department_id=user.principal.department_id)
    elif form.get("level") == "company":
        body.update(level="company", objective_id=optional(form.get("objective_id")))
        body.pop("parent_id", None)
    else:
        body.update(level="individual", employee_id=user.principal.employee_id)
    answer = await Upstream(request, user.token).post("goals", f"/v1/cycles/{quote(cycle_id, safe='')}/goals", body)
    if not answer.ok:
        form_id = f"company-{form.get('objective_id', '')}" if form.get("level") == "company" else "new-goal"
        return await _again(request, user, cycle_id, form, FormState.refused(form, answer, form_id=form_id))
    return redirect(_back(form, cycle_id), msg=_("Created '%(name)s'.", name=answer.data["name"]))


@router.post("/cycles/{cycle_id}/goals/{goal_id}/edit", summary="Change a draft or returned goal", **access(*STAFF))
async def edit_goal(request: Request, cycle_id: CycleId, goal_id: GoalId, user: Staff) -> Response:
    form = await read_form(request)
    answer = await Upstream(request, user.token).patch(
        "goals", f"/v1/cycles/{quote(cycle_id, safe='')}/goals/{quote(goal_id, safe='')}", goal_body(form, partial=True)
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id=f"edit-{goal_id}")
        return await _again(request, user, cycle_id, form, state)
    return redirect(_back(form, cycle_id), msg=_("Saved '%(name)s'.", name=answer.data["name"]))


async def _goal_step(request: Request, user: ConsoleUser, cycle_id: str, goal_id: str, step: str) -> Response:
    """Submit or delete a goal, back to the page the button was on."""
    form = await read_form(request)
    path = f"/v1/cycles/{quote(cycle_id, safe='')}/goals/{quote(goal_id, safe='')}"
    api = Upstream(request, user.token)
    answer = await (api.post("goals", f"{path}/submit") if step == "submit" else api.delete("goals", path))
    if not answer.ok:
        return redirect(_back(form, cycle_id), error=answer.error)
    if step == "submit":
        return redirect(_back(form, cycle_id), msg=_("Submitted '%(name)s' for approval.", name=answer.data["name"]))
    return redirect(_back(form, cycle_id), msg=_("Deleted goal %(goal_id)s.", goal_id=goal_id))


@router.post("/cycles/{cycle_id}/goals/{goal_id}/submit", summary="Submit a goal for approval", **access(*STAFF))
async def submit_goal(request: Request, cycle_id: CycleId, goal_id: GoalId, user: Staff) -> Response:
    return await _goal_step(request, user, cycle_id, goal_id, "submit")


@router.post("/cycles/{cycle_id}/goals/{goal_id}/delete", summary="Delete a draft or returned goal", **access(*STAFF))
async def delete_goal(request: Request, cycle_id: CycleId, goal_id: GoalId, user: Staff) -> Response:
    return await _goal_step(request, user, cycle_id, goal_id, "delete")
