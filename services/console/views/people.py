"""One employee's page in a cycle: goals and check-ins, the released result with acknowledge and
appeal, feedback and kudos, and their 1:1s; and the forms it posts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.auth import Role
from services.common.params import APPROVERS, EVERYONE, STAFF, CycleId
from services.console.auth import ONE_ON_ONE_PARTIES, Anyone, Approver, ConsoleUser, Staff, access, read_form
from services.console.i18n import N_, _
from services.console.params import EmployeeId, RowId
from services.console.rendering import Notice, Page, cycle_path, problem, redirect
from services.console.upstream import Answer, Upstream, not_asked
from services.console.views.one_on_ones import now_minute

__all__ = ["router"]

router = APIRouter()

PERSON = Page("feedback/person.html", N_("Employee"), tab="me")

OPEN_APPEALS = ("submitted", "under_review")
CHECKED_IN_GOALS = 10
"""Goals whose latest check-ins the page fetches (one call each)."""


@router.get("/cycles/{cycle_id}/me", summary="Your own page in this cycle (redirect)", **access(*EVERYONE))
async def my_page(cycle_id: CycleId, user: Anyone) -> Response:
    if not user.principal.employee_id:
        return redirect(cycle_path(cycle_id), error=_("your token has no employee_id, so there is no personal page"))
    return RedirectResponse(cycle_path(cycle_id, "people", quote(user.principal.employee_id, safe="")), 303)


def _result_problem(result: Answer) -> Notice | None:
    if result.ok:
        return None
    if result.status == 404:
        return Notice(_("No released result yet: results are released after calibration closes."))
    return problem(result, _("the result"))


@router.get(
    "/cycles/{cycle_id}/people/{employee_id}",
    summary="One employee: goals, check-ins, feedback, result with acknowledge and appeal",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def person_page(request: Request, cycle_id: CycleId, employee_id: EmployeeId, user: Anyone) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    emp = quote(employee_id, safe="")
    reads_one_on_ones = user.has(*STAFF)
    person, goals, feedback, result, appeals, meetings, bonuses, plans = await asyncio.gather(
        api.get("cycles", f"/v1/org/employees/{emp}"),
        api.get("goals", f"{base}/goals", {"employee_id": employee_id, "level": "individual", "limit": 100}),
        api.get("feedback", f"{base}/feedback", {"recipient_id": employee_id, "limit": 50}),
        api.get("feedback", f"{base}/results/{emp}"),
        api.get("feedback", f"{base}/appeals", {"limit": 100}),
        api.get("feedback", f"{base}/one-on-ones", {"limit": 500}) if reads_one_on_ones else not_asked(),
        api.get("results", f"{base}/bonuses", {"limit": 500}),
        api.get("results", f"{base}/development-plans", {"limit": 100}),
    )
    own = user.principal.employee_id == employee_id
    if not person.ok:
        return PERSON.render(
            request,
            user,
            title=_("Employee %(employee_id)s", employee_id=employee_id),
            cycle_id=cycle_id,
            problem=problem(person, _("this employee")),
            status_code=person.status if person.status in (403, 404) else 502,
        )
    p = person.data
    items: list[dict[str, Any]] = goals.data["items"] if goals.ok else []
    check_ins: list[Answer | None] = list(
        await asyncio.gather(
            *(
                api.get("tracking", f"{base}/kpis/{quote(g['goal_id'], safe='')}/check-ins", {"limit": 3})
                for g in items[:CHECKED_IN_GOALS]
            )
        )
    )
    check_ins += [None] * (len(items) - len(check_ins))
    mine = [a for a in appeals.data if a["employee_id"] == employee_id] if appeals.ok else []
    deadline = str(result.data.get("appeal_deadline") or "") if result.ok else ""
    open_appeal = any(a["status"] in OPEN_APPEALS for a in mine)
    return PERSON.render(
        request,
        user,
        title=p["name"],
        tab=PERSON.tab if own else "",
        cycle_id=cycle_id,
        problem=None,
        p=p,
        path=cycle_path(cycle_id, "people", emp),
        own=own,
        goals=[{**g, "check_ins": c} for g, c in zip(items, check_ins, strict=True)],
        goals_problem=None if goals.ok else problem(goals, _("goals")),
        can_check_in=user.has(*STAFF),
        result=result.data if result.ok else None,
        result_problem=_result_problem(result),
        appeals=mine,
        can_appeal=own and not open_appeal and deadline > datetime.now(UTC).isoformat(),
        feedback=feedback.data if feedback.ok else [],
        feedback_problem=None if feedback.ok else problem(feedback, _("feedback")),
        can_give_feedback=user.has(*STAFF) and bool(user.principal.employee_id),
        bonus=next((b for b in bonuses.items() if b["employee_id"] == employee_id), None),
        plans=[plan for plan in plans.items() if plan["employee_id"] == employee_id],
        can_plan=user.has(*APPROVERS) and not own,
        one_on_ones=_one_on_ones(user, p, meetings, employee_id=employee_id, own=own) if reads_one_on_ones else None,
        today=datetime.now(UTC).date().isoformat(),
        now=now_minute(),
    )


def _one_on_ones(
    user: ConsoleUser, person: dict[str, Any], meetings: Answer, *, employee_id: str, own: bool
) -> dict[str, Any]:
    """The page's 1:1 section: this employee's 1:1s (as report or as manager), and whom a new one is with."""
    form = None
    if user.principal.employee_id and user.has(*ONE_ON_ONE_PARTIES):
        if own and person.get("manager_id"):
            form = (employee_id, _("you with your manager %(manager)s", manager=person["manager_id"]))
        elif not own and user.has(Role.MANAGER):
            form = (employee_id, _("you with %(name)s", name=person["name"]))
    return {
        "meetings": [m for m in meetings.data if employee_id in (m["employee_id"], m["manager_id"])]
        if meetings.ok
        else [],
        "problem": None if meetings.ok else problem(meetings, _("1:1s")),
        "party": user.has(*ONE_ON_ONE_PARTIES),
        "form": form,
    }


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/acknowledge",
    summary="Acknowledge your own released result",
    **access(*EVERYONE),
)
async def acknowledge(request: Request, cycle_id: CycleId, employee_id: EmployeeId, user: Anyone) -> Response:
    emp = quote(employee_id, safe="")
    answer = await Upstream(request, user.token).post(
        "feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/results/{emp}/acknowledge"
    )
    back = cycle_path(cycle_id, "people", emp)
    return (
        redirect(back, error=answer.error)
        if not answer.ok
        else redirect(back, msg=_("Result acknowledged. Thank you."))
    )


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/appeal", summary="Appeal your own released result", **access(*EVERYONE)
)
async def appeal(request: Request, cycle_id: CycleId, employee_id: EmployeeId, user: Anyone) -> Response:
    form = await read_form(request)
    back = cycle_path(cycle_id, "people", quote(employee_id, safe=""))
    if user.principal.employee_id != employee_id:
        return redirect(back, error=_("only the employee may appeal their own result"))
    answer = await Upstream(request, user.token).post(
        "feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/appeals", {"reason": form.get("reason", "").strip()}
    )
    return redirect(back, error=answer.error) if not answer.ok else redirect(back, msg=_("Appeal submitted to HR."))


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/check-in",
    summary="Check in on one of the employee's goals",
    **access(*STAFF),
)
async def check_in(request: Request, cycle_id: CycleId, employee_id: EmployeeId, user: Staff) -> Response:
    form = await read_form(request)
    confidence = form.get("confidence", "3")
    body = {
        "kpi_id": form.get("kpi_id", ""),
        "comment": form.get("comment", "").strip(),
        "confidence": int(confidence) if confidence.isdigit() else 0,
    }
    answer = await Upstream(request, user.token).post(
        "tracking", f"/v1/cycles/{quote(cycle_id, safe='')}/check-ins", body
    )
    back = cycle_path(cycle_id, "people", quote(employee_id, safe=""))
    return redirect(back, error=answer.error) if not answer.ok else redirect(back, msg=_("Check-in recorded."))


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/feedback",
    summary="Give feedback or kudos to a colleague (attributed, not anonymous)",
    **access(*STAFF),
)
async def give_feedback(request: Request, cycle_id: CycleId, employee_id: EmployeeId, user: Staff) -> Response:
    form = await read_form(request)
    recipient = form.get("recipient_id", "").strip() or employee_id
    body = {"recipient_id": recipient, "kind": form.get("kind", "kudos"), "message": form.get("message", "").strip()}
    answer = await Upstream(request, user.token).post(
        "feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/feedback", body
    )
    back = cycle_path(cycle_id, "people", quote(employee_id, safe=""))
    if not answer.ok:
        return redirect(back, error=answer.error)
    sent = (
        _("Kudos sent to %(recipient)s.", recipient=recipient)
        if body["kind"] == "kudos"
        else _("Feedback sent to %(recipient)s.", recipient=recipient)
    )
    return redirect(back, msg=sent)


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/plans/{plan_id}/items/{item_id}",
    summary="Mark an item of a development plan done (or not done)",
    **access(*EVERYONE),
)
async def plan_item(
    request: Request, cycle_id: CycleId, employee_id: EmployeeId, plan_id: RowId, item_id: RowId, user: Anyone
) -> Response:
    form = await read_form(request)
    answer = await Upstream(request, user.token).patch(
        "results", f"/v1/development-plans/{plan_id}/items/{item_id}", {"done": form.get("done") == "1"}
    )
    back = cycle_path(cycle_id, "people", quote(employee_id, safe=""))
    return redirect(back, error=answer.error) if not answer.ok else redirect(back, msg=_("Development plan updated."))


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/plans/{plan_id}/items",
    summary="Add an action to a development plan (HR, the manager or the head)",
    **access(*APPROVERS),
)
async def add_plan_item(
    request: Request, cycle_id: CycleId, employee_id: EmployeeId, plan_id: RowId, user: Approver
) -> Response:
    form = await read_form(request)
    body = {
        "description": form.get("description", "").strip(),
        "owner_id": form.get("owner_id", "").strip() or employee_id,
        "due_date": form.get("due_date") or None,
    }
    answer = await Upstream(request, user.token).post("results", f"/v1/development-plans/{plan_id}/items", body)
    back = cycle_path(cycle_id, "people", quote(employee_id, safe=""))
    return redirect(back, error=answer.error) if not answer.ok else redirect(back, msg=_("Action added to the plan."))
