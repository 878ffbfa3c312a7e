"""Growth paths and the 9-box: a person's own view of where they stand and what comes next; a
manager's or HR's talent review of a cycle (the 9-box, potential ratings and their calibration, the
team's readiness). Everything comes from the committee API with the user's token, which scopes it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.auth import Role
from services.common.params import APPROVERS, EVERYONE, HR, CycleId
from services.console.auth import Anyone, Approver, ConsoleUser, HrAdmin, access, console_requires, read_form
from services.console.directory import names
from services.console.forms import FormState, optional, refused
from services.console.i18n import N_, _
from services.console.params import EmployeeId
from services.console.rendering import Page, cycle_path, pick, problem, redirect
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

GROWTH = Page("growth/growth.html", N_("Growth path"))
NINE_BOX = Page("growth/nine_box.html", N_("Talent review (9-box)"), tab="nine-box")
FRAMEWORKS = Page("growth/frameworks.html", N_("Career frameworks"))
TIERS = ("low", "medium", "high")
BOX_ROWS = ((7, 8, 9), (4, 5, 6), (1, 2, 3))
"""Box numbers as the grid shows them: potential from high (top) to low, performance low to high
left to right (box = performance * 3 + potential + 1, each counted from 0)."""


def growth_path(employee_id: str) -> str:
    return f"/console/people/{quote(employee_id, safe='')}/growth"


PlanCreator = Annotated[ConsoleUser, console_requires(Role.HR_ADMIN, Role.MANAGER)]


@router.get("/growth", summary="My growth path (redirects to your own page)", **access(*EVERYONE))
async def my_growth(user: Anyone) -> Response:
    if not user.principal.employee_id:
        return redirect("/console/tasks", error=_("Growth paths are for people with an employee id."))
    return RedirectResponse(growth_path(user.principal.employee_id), status_code=303)


@router.get(
    "/people/{employee_id}/growth",
    summary="A person's growth path: history over cycles, readiness for the next level, next steps, 9-box",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def growth_page(request: Request, employee_id: EmployeeId, user: Anyone) -> HTMLResponse:
    answer = await Upstream(request, user.token).get("committee", f"/v1/people/{quote(employee_id, safe='')}/growth")
    if not answer.ok:
        return GROWTH.render(request, user, problem=problem(answer, _("the growth path")), view=None)
    view: dict[str, Any] = answer.data
    latest = view["history"][-1]["cycle_id"] if view["history"] else None
    advice = None
    if latest:
        found = await Upstream(request, user.token).get(
            "committee", f"/v1/cycles/{quote(latest, safe='')}/suggestions/people/{quote(employee_id, safe='')}"
        )
        advice = found.data if found.ok else None
    expected = (view.get("next_level") or {}).get("competencies", {})
    current = (view.get("current_level") or {}).get("competencies", {})
    competencies = sorted({*view["profile"], *expected, *current})
    return GROWTH.render(
        request,
        user,
        title=_("Growth path of %(name)s", name=view["name"]),
        problem=None,
        view=view,
        competencies=competencies,
        expected=expected,
        current=current,
        advice=advice,
        can_plan=user.has(*PLAN_CREATORS) and user.principal.employee_id != employee_id and bool(latest),
    )


async def nine_box_for(
    request: Request, user: ConsoleUser, cycle_id: str, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    me = user.principal.employee_id
    box, people = await asyncio.gather(api.get("committee", f"{base}/nine-box"), names(api))
    team = await api.get("committee", f"/v1/teams/{quote(me, safe='')}/growth") if me else None
    advice = None
    if me and team is not None and team.ok and team.data["members"]:
        found = await api.get("committee", f"{base}/suggestions/teams/{quote(me, safe='')}")
        advice = found.data if found.ok else None
    grid: dict[int, list[dict[str, Any]]] = {n: [] for n in range(1, 10)}
    for position in box.items():
        grid[position["box"]].append(position)
    return NINE_BOX.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if box.ok else problem(box, _("the 9-box")),
        grid=grid,
        rows=BOX_ROWS,
        tiers=TIERS,
        people=sorted(((e, f"{n} ({e})") for e, n in people.items() if e != me), key=lambda p: p[1]),
        team=team.data["members"] if team is not None and team.ok else [],
        can_calibrate=user.has(*HR),
        advice=advice,
        state=state or FormState(),
    )


@router.get(
    "/cycles/{cycle_id}/nine-box",
    summary="Talent review: the 9-box of the people you see, potential ratings, your team's readiness",
    response_class=HTMLResponse,
    **access(*APPROVERS),
)
async def nine_box_page(request: Request, cycle_id: CycleId, user: Approver) -> HTMLResponse:
    return await nine_box_for(request, user, cycle_id)


@router.post(
    "/cycles/{cycle_id}/potential",
    summary="Rate a person's potential (their manager or head, or HR)",
    **access(*APPROVERS),
)
async def rate_potential(request: Request, cycle_id: CycleId, user: Approver) -> Response:
    form = await read_form(request)
    employee_id = (form.get("employee_id") or "").strip()
    body = {"potential": form.get("potential", ""), "note": form.get("note", "").strip()}
    answer = await Upstream(request, user.token).put(
        "committee", f"/v1/cycles/{quote(cycle_id, safe='')}/potential/{quote(employee_id or '-', safe='')}", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="rate")
        if answer.status == 404:
            state.errors.setdefault("employee_id", answer.error or "")
        return refused(await nine_box_for(request, user, cycle_id, state))
    return redirect(cycle_path(cycle_id, "nine-box"), msg=_("Potential of %(employee)s rated.", employee=employee_id))


@router.post(
    "/cycles/{cycle_id}/potential/calibration",
    summary="Calibrate a potential rating for the committee, with the reason (HR)",
    **access(*HR),
)
async def calibrate_potential(request: Request, cycle_id: CycleId, user: HrAdmin) -> Response:
    form = await read_form(request)
    employee_id = (form.get("employee_id") or "").strip()
    body = {"potential": form.get("potential", ""), "reason": form.get("reason", "").strip(),
            "session_id": optional(form.get("session_id"))}  # fmt: skip
    answer = await Upstream(request, user.token).post(
        "committee",
        f"/v1/cycles/{quote(cycle_id, safe='')}/potential/{quote(employee_id or '-', safe='')}/calibration",
        body,
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="calibrate")
        if answer.status == 404:
            state.errors.setdefault("employee_id", answer.error or "")
        return refused(await nine_box_for(request, user, cycle_id, state))
    return redirect(
        cycle_path(cycle_id, "nine-box"), msg=_("Potential of %(employee)s calibrated.", employee=employee_id)
    )


def parse_levels(text: str) -> list[dict[str, Any]] | str:
    """Levels typed one per line, lowest first: ``G5 | Specialist | collab=3, delivery=3``; or what is wrong."""
    levels = []
    for number, line in enumerate((raw for raw in text.splitlines() if raw.strip()), start=1):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not parts[0] or not parts[1]:
            return _("line %(n)s: write grade | title | competency=score, ...", n=number)
        competencies: dict[str, float] = {}
        for item in (p.strip() for p in parts[2].split(",") if p.strip()):
            key, _sep, value = item.partition("=")
            try:
                competencies[key.strip()] = float(value)
            except ValueError:
                return _("line %(n)s: %(item)s is not competency=score", n=number, item=item)
        levels.append({"grade": parts[0], "title": parts[1], "competencies": competencies})
    return levels or _("write at least one level")


def format_levels(levels: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{lv['grade']} | {lv['title']} | " + ", ".join(f"{k}={v:g}" for k, v in lv["competencies"].items())
        for lv in levels
    )


async def frameworks_for(request: Request, user: ConsoleUser, state: FormState | None = None) -> HTMLResponse:
    frameworks = await Upstream(request, user.token).get("committee", "/v1/career-frameworks")
    return FRAMEWORKS.render(
        request,
        user,
        problem=None if frameworks.ok else problem(frameworks, _("the career frameworks")),
        frameworks=[{**f, "text": format_levels(f["levels"])} for f in frameworks.items()],
        can_edit=user.has(*HR),
        state=state or FormState(),
    )


@router.get(
    "/career-frameworks",
    summary="Career frameworks: each job family's levels and the competencies they expect; HR edits them",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def frameworks_page(request: Request, user: Anyone) -> HTMLResponse:
    return await frameworks_for(request, user)


@router.post("/career-frameworks", summary="Set a job family's career ladder (HR)", **access(*HR))
async def set_framework(request: Request, user: HrAdmin) -> Response:
    form = await read_form(request)
    family = (form.get("job_family") or "").strip()
    levels = parse_levels(form.get("levels", ""))
    if isinstance(levels, str):
        return refused(
            await frameworks_for(request, user, FormState(dict(form), {"levels": levels}, None, "framework"))
        )
    body = {"name": form.get("name", "").strip(), "levels": levels,
            "job_titles": [t.strip() for t in form.get("job_titles", "").split(",") if t.strip()]}  # fmt: skip
    answer = await Upstream(request, user.token).put(
        "committee", f"/v1/career-frameworks/{quote(family or '-', safe='')}", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="framework")
        for field in [f for f in state.errors if f.startswith("levels")]:
            state.errors.setdefault("levels", state.errors.pop(field))
        if answer.status == 422 and not answer.fields:
            state.errors.setdefault("job_family", answer.error or "")
        return refused(await frameworks_for(request, user, state))
    return redirect("/console/career-frameworks", msg=_("Career framework %(family)s saved.", family=family))


PLAN_CREATORS = (Role.HR_ADMIN, Role.MANAGER)
"""Who opens a development plan (the results API: HR, or a manager for their reports)."""


@router.post(
    "/people/{employee_id}/growth/plan",
    summary="Put the next steps to the next level into the person's development plan (manager or HR)",
    **access(*PLAN_CREATORS),
)
async def plan_next_steps(request: Request, employee_id: EmployeeId, user: PlanCreator) -> Response:
    await read_form(request)
    api = Upstream(request, user.token)
    back = growth_path(employee_id)
    view = await api.get("committee", f"/v1/people/{quote(employee_id, safe='')}/growth")
    if not view.ok:
        return redirect(back, error=view.error)
    steps = (view.data.get("readiness") or {}).get("next_steps", [])
    if not steps or not view.data["history"]:
        return redirect(back, error=_("There are no next steps to plan."))
    cycle = quote(view.data["history"][-1]["cycle_id"], safe="")
    created = await api.post("results", f"/v1/cycles/{cycle}/development-plans", {"employee_id": employee_id,
                             "summary": _("Towards %(level)s", level=view.data["next_level"]["title"])})  # fmt: skip
    if created.ok:
        plan = created.data
    elif created.status == 409:  # the person has a plan in this cycle already: add to it
        plans = await api.get("results", f"/v1/cycles/{cycle}/development-plans", {"limit": 500})
        plan = next((p for p in plans.items() if p["employee_id"] == employee_id), None)
        if plan is None:
            return redirect(back, error=created.error)
    else:
        return redirect(back, error=created.error)
    present = {item["description"] for item in plan.get("items", [])}
    added = 0
    for step in steps:
        text = pick({"en": step["text_en"], "zh_Hans": step["text_zh"]})
        if text in present:
            continue
        item = await api.post(
            "results", f"/v1/development-plans/{plan['id']}/items", {"description": text, "owner_id": employee_id}
        )
        if not item.ok:
            return redirect(back, error=item.error)
        added += 1
    return redirect(back, msg=_("%(added)s next step(s) added to the development plan.", added=added))
