"""A department head's page: the department's KPIs (written and submitted here), the data the
department owes (stale KPIs), and its collaboration ratings of the departments it works with."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.auth import Role
from services.common.params import CycleId
from services.console.auth import HEADS, ConsoleUser, Head, access, read_form
from services.console.forms import FormState, optional, refused
from services.console.i18n import N_, _
from services.console.rendering import Page, cycle_path, problem, redirect
from services.console.upstream import Answer, Upstream
from services.console.views.goal_forms import (
    EDITABLE,
    aggregation_options,
    direction_options,
    kind_options,
    parents_for,
    weight_sum,
)

__all__ = ["department_page_for", "router"]

router = APIRouter()

DEPARTMENT = Page("goals/department.html", N_("Department"), tab="department")
DIMENSIONS = ("responsiveness", "data_quality", "reliability")


def _head(user: ConsoleUser) -> str | None:
    return user.principal.department_id if user.has(Role.DEPT_HEAD) else None


async def department_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, state: FormState | None = None
) -> HTMLResponse:
    department = _head(user)
    if not department:
        missing = Answer(403, None, _("your token names no department (department_id) that you head"))
        return DEPARTMENT.render(request, user, cycle_id=cycle_id, problem=problem(missing, _("your department")))
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    (kpis, settings, stale, links, matrix, parents), advice, history = await asyncio.gather(
        asyncio.gather(
            api.get("goals", f"{base}/goals", {"department_id": department, "level": "department", "limit": 100}),
            api.get("goals", f"{base}/settings"),
            api.get("tracking", f"{base}/stale-kpis"),
            api.get("evaluation", f"{base}/collaborations"),
            api.get("evaluation", f"{base}/collaboration-matrix"),
            parents_for(api, cycle_id, "department", set()),
        ),
        api.get("committee", f"{base}/suggestions/departments/{quote(department, safe='')}"),
        api.get("committee", f"/v1/departments/{quote(department, safe='')}/history"),
    )
    mine = [k for k in kpis.items() if k.get("department_id") == department]
    partners = sorted(
        {
            link["department_b"] if link["department_a"] == department else link["department_a"]
            for link in links.items()
            if department in (link["department_a"], link["department_b"])
        }
    )
    cells = matrix.data.get("cells", []) if matrix.ok else []
    given = {c["rated_department_id"]: c for c in cells if c["rater_department_id"] == department}
    owed = [g for g in (stale.data or {}).get("departments", []) if g.get("department_id") == department]
    return DEPARTMENT.render(
        request,
        user,
        title=_("Department %(department)s", department=department),
        cycle_id=cycle_id,
        problem=None,
        department=department,
        kpis=mine,
        kpis_problem=None if kpis.ok else problem(kpis, _("department KPIs")),
        frozen=bool(settings.data.get("frozen")) if settings.ok else False,
        level="department",
        parents=parents,
        weight_total=weight_sum(mine),
        state=state or FormState(form_id="new-goal"),
        kinds=kind_options(),
        directions=direction_options(),
        aggregations=aggregation_options(),
        editable=EDITABLE,
        stale=owed[0]["kpis"] if owed else [],
        stale_problem=None if stale.ok else problem(stale, _("stale KPIs")),
        partners=partners,
        given=given,
        links_problem=None if links.ok else problem(links, _("collaborating departments")),
        advice=advice.data if advice.ok else None,
        history=history.data["cycles"] if history.ok else [],
        dimensions=[(d, _dimension(d)) for d in DIMENSIONS],
    )


def _dimension(name: str) -> str:
    return {"responsiveness": _("Responsiveness"), "data_quality": _("Data quality"),
            "reliability": _("Reliability")}[name]  # fmt: skip


@router.get(
    "/cycles/{cycle_id}/department",
    summary="Your department (heads): its KPIs, the data it owes, and its collaboration ratings",
    response_class=HTMLResponse,
    **access(*HEADS),
)
async def department_page(request: Request, cycle_id: CycleId, user: Head) -> HTMLResponse:
    return await department_page_for(request, user, cycle_id)


@router.post(
    "/cycles/{cycle_id}/department/ratings",
    summary="Rate a department you work with (responsiveness, data quality, reliability 1-5)",
    **access(*HEADS),
)
async def rate_department(request: Request, cycle_id: CycleId, user: Head) -> Response:
    form = await read_form(request)
    rated = form.get("rated_department_id", "")
    body = {
        "rater_department_id": _head(user),
        "rated_department_id": rated,
        **{d: optional(form.get(d)) for d in DIMENSIONS},
        "comment": optional(form.get("comment")),
    }
    answer = await Upstream(request, user.token).put(
        "evaluation", f"/v1/cycles/{quote(cycle_id, safe='')}/collaboration-ratings", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id=f"rate-{rated}")
        return refused(await department_page_for(request, user, cycle_id, state))
    back = cycle_path(cycle_id, "department") + "#collaboration"
    return redirect(back, msg=_("Rated %(department)s. Thank you.", department=rated))


@router.post(
    "/cycles/{cycle_id}/department/collaborations",
    summary="Declare that your department works with another (so the two may rate each other)",
    **access(*HEADS),
)
async def declare_collaboration(request: Request, cycle_id: CycleId, user: Head) -> Response:
    form = await read_form(request)
    other = form.get("department_b", "").strip()
    answer = await Upstream(request, user.token).post(
        "evaluation",
        f"/v1/cycles/{quote(cycle_id, safe='')}/collaborations",
        {"department_a": _head(user), "department_b": other},
    )
    back = cycle_path(cycle_id, "department") + "#collaboration"
    if not answer.ok:
        return redirect(back, error=answer.error)
    return redirect(back, msg=_("Your department now works with %(department)s.", department=other))
