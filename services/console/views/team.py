"""The team page: a manager's reports (a head's department, or any department for HR) with their
goals, reviews, result and bonus in one table; nominating peer and cross-department raters; a CSV."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.auth import Role
from services.common.params import CycleId
from services.console.auth import NOMINATORS, TEAM_LEADS, ConsoleUser, Nominator, TeamLead, access, read_form
from services.console.directory import names
from services.console.exports import csv_response
from services.console.forms import FormState, optional, refused
from services.console.i18n import N_, _
from services.console.params import DepartmentFilter
from services.console.rendering import Page, cycle_path, problem, redirect
from services.console.upstream import Answer, Upstream

__all__ = ["router"]

router = APIRouter()

TEAM = Page("people/team.html", N_("Team"), tab="team")
TEAM_SIZE = 200
"""People shown on one team page."""


@dataclass
class Member:
    employee_id: str
    name: str
    job_title: str
    department_id: str
    goals: Counter[str]
    weight: float
    reviews: list[dict[str, Any]]
    rating: str | None
    score: float | None
    acknowledged: bool | None
    bonus_cents: int | None
    currency: str | None


def _scope(user: ConsoleUser, department_id: str | None) -> dict[str, str | None]:
    """Whose team: a manager's direct reports, else a department (the head's own by default)."""
    if department_id and user.has(Role.HR_ADMIN, Role.DEPT_HEAD):
        return {"department_id": department_id}
    if user.has(Role.MANAGER) and user.principal.employee_id:
        return {"manager_id": user.principal.employee_id}
    if user.has(Role.DEPT_HEAD) and user.principal.department_id:
        return {"department_id": user.principal.department_id}
    return {"department_id": department_id}


async def _members(api: Upstream, cycle_id: str, scope: dict[str, str | None]) -> tuple[list[Member], list[Answer]]:
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    people, goals, assignments, results, released, bonuses = await asyncio.gather(
        api.get("cycles", "/v1/org/employees", {"limit": TEAM_SIZE, **scope}),
        api.get("goals", f"{base}/goals", {"level": "individual", "limit": 500}),
        api.get("evaluation", f"{base}/assignments", {"limit": 500}),
        api.get("evaluation", f"{base}/results", {"limit": 500}),
        api.get("feedback", f"{base}/results", {"limit": 500}),
        api.get("results", f"{base}/bonuses", {"limit": 500}),
    )
    by_goal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in goals.items():
        by_goal[g.get("employee_id") or ""].append(g)
    by_review: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in assignments.items():
        by_review[a["reviewee_id"]].append(a)
    scores = {r["employee_id"]: r for r in results.items()}
    acks = {r["employee_id"]: bool(r.get("acknowledged_at")) for r in released.items()}
    money = {b["employee_id"]: b for b in bonuses.items()}
    members = [
        Member(
            employee_id=p["employee_id"],
            name=p["name"],
            job_title=p.get("job_title", ""),
            department_id=p["department_id"],
            goals=Counter(g["status"] for g in by_goal[p["employee_id"]]),
            weight=round(sum(float(g["weight"]) for g in by_goal[p["employee_id"]]), 2),
            reviews=sorted(by_review[p["employee_id"]], key=lambda a: a["relation"]),
            rating=(scores.get(p["employee_id"]) or {}).get("rating"),
            score=(scores.get(p["employee_id"]) or {}).get("final_score"),
            acknowledged=acks.get(p["employee_id"]),
            bonus_cents=(money.get(p["employee_id"]) or {}).get("amount_cents"),
            currency=(money.get(p["employee_id"]) or {}).get("currency"),
        )
        for p in people.items()
    ]
    return members, [people, goals, assignments]


async def team_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, department_id: str | None, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    scope = _scope(user, department_id)
    (members, answers), visible = await asyncio.gather(_members(api, cycle_id, scope), names(api))
    failed = next((a for a in answers if not a.ok), None)
    return TEAM.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=problem(failed, _("your team")) if failed is not None and failed is answers[0] else None,
        notices=[problem(a, _("part of the team page")) for a in answers[1:] if not a.ok],
        members=members,
        member_options=[(m.employee_id, f"{m.name} ({m.employee_id})") for m in members],
        scope=scope,
        can_nominate=user.has(Role.HR_ADMIN, Role.MANAGER),
        people=sorted(visible.items(), key=lambda item: item[0]),
        state=state or FormState(form_id="nominate"),
        csv_link=cycle_path(cycle_id, "team.csv") + (f"?department_id={quote(department_id)}" if department_id else ""),
    )


@router.get(
    "/cycles/{cycle_id}/team",
    summary="Your team: reports (a department for heads and HR) with goals, reviews, result and bonus",
    response_class=HTMLResponse,
    **access(*TEAM_LEADS),
)
async def team_page(
    request: Request, cycle_id: CycleId, user: TeamLead, department_id: DepartmentFilter = None
) -> HTMLResponse:
    return await team_page_for(request, user, cycle_id, department_id)


@router.get(
    "/cycles/{cycle_id}/team.csv",
    summary="Your team as CSV (UTF-8 with a BOM, for Excel)",
    response_class=Response,
    **access(*TEAM_LEADS),
)
async def team_csv(
    request: Request, cycle_id: CycleId, user: TeamLead, department_id: DepartmentFilter = None
) -> Response:
    members, _answers = await _members(Upstream(request, user.token), cycle_id, _scope(user, department_id))
    header = [_("Employee id"), _("Name"), _("Department"), _("Goals approved"), _("Goals"), _("Reviews submitted"),
              _("Reviews"), _("Rating"), _("Score"), _("Acknowledged"), _("Bonus"), _("Currency")]  # fmt: skip
    rows = (
        [m.employee_id, m.name, m.department_id, m.goals.get("approved", 0) + m.goals.get("frozen", 0),
         sum(m.goals.values()), sum(1 for r in m.reviews if r["status"] == "submitted"), len(m.reviews), m.rating,
         m.score, "" if m.acknowledged is None else m.acknowledged,
         None if m.bonus_cents is None else f"{m.bonus_cents / 100:.2f}", m.currency]
        for m in members
    )  # fmt: skip
    return csv_response(f"team-{cycle_id}.csv", header, rows)


@router.post(
    "/cycles/{cycle_id}/team/raters",
    summary="Nominate a peer or cross-department rater for one of your reports",
    **access(*NOMINATORS),
)
async def nominate_rater(request: Request, cycle_id: CycleId, user: Nominator) -> Response:
    form = await read_form(request)
    body = {
        "reviewee_id": optional(form.get("reviewee_id")),
        "rater_id": optional(form.get("rater_id")),
        "relation": form.get("relation", "peer"),
    }
    answer = await Upstream(request, user.token).post(
        "evaluation", f"/v1/cycles/{quote(cycle_id, safe='')}/assignments", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="nominate")
        return refused(await team_page_for(request, user, cycle_id, optional(form.get("department_id")), state))
    message = _("%(rater)s will review %(reviewee)s.", rater=body["rater_id"], reviewee=body["reviewee_id"])
    return redirect(cycle_path(cycle_id, "team"), msg=message)
