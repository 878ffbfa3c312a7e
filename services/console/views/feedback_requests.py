"""Feedback on request: ask a colleague, in any department, for feedback; answer or decline what you
were asked; read your requests with their answers.

The feedback API keeps the requests and judges every form (yourself, not a participant, a past due
date, a second open request to the same person), so a refusal comes back at its field. An answer
is stored as the giver's attributed feedback to the requester, so it also shows under "Feedback and
kudos" on the requester's page. Open requests asked of you are tasks in "My tasks".
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import STAFF, CycleId
from services.console.auth import ConsoleUser, Staff, access, read_form
from services.console.directory import names
from services.console.forms import FormState, optional, refused
from services.console.i18n import N_, _
from services.console.params import RowId
from services.console.rendering import Notice, Page, cycle_path, problem, redirect
from services.console.upstream import Upstream
from services.console.views.one_on_ones import back_to

__all__ = ["router"]

router = APIRouter()

REQUESTS = Page("feedback/requests.html", N_("Feedback requests"), tab="feedback-requests")
REQUEST = Page("feedback/request.html", N_("Feedback request"), tab="feedback-requests")
LISTED = 500
"""Requests read in one call (the API's page size); the API has no read of a single request."""


def _api_path(cycle_id: str) -> str:
    return f"/v1/cycles/{quote(cycle_id, safe='')}/feedback-requests"


def _open_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open requests first, the soonest due first; then the closed ones, newest first."""
    still_open = sorted((r for r in rows if r["status"] == "open"), key=lambda r: (r["due_date"] or "~", r["id"]))
    closed = sorted((r for r in rows if r["status"] != "open"), key=lambda r: r["id"], reverse=True)
    return still_open + closed


def with_request_names(rows: list[dict[str, Any]], directory: dict[str, str]) -> dict[str, str]:
    """The names the requests carry (both people's, whoever reads them), then the caller's directory."""
    named = {r[f"{who}_id"]: r.get(f"{who}_name") or "" for r in rows for who in ("requester", "giver")}
    return {**{k: v for k, v in named.items() if v}, **directory}


async def requests_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    listed, directory = await asyncio.gather(api.get("feedback", _api_path(cycle_id), {"limit": LISTED}), names(api))
    me = user.principal.employee_id
    rows = listed.items()
    people = with_request_names(rows, directory)
    return REQUESTS.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if listed.ok else problem(listed, _("feedback requests")),
        asked=_open_first([r for r in rows if r["giver_id"] == me]),
        made=_open_first([r for r in rows if r["requester_id"] == me]),
        people=people,
        colleagues=sorted((name, employee) for employee, name in people.items() if employee != me),
        can_ask=bool(me),
        state=state or FormState(form_id="ask"),
        today=date.today().isoformat(),
    )


@router.get(
    "/cycles/{cycle_id}/feedback-requests",
    summary="Feedback requests: ask a colleague; the requests asked of you and yours, with their answers",
    response_class=HTMLResponse,
    **access(*STAFF),
)
async def requests_page(request: Request, cycle_id: CycleId, user: Staff) -> HTMLResponse:
    return await requests_page_for(request, user, cycle_id)


@router.post(
    "/cycles/{cycle_id}/feedback-requests",
    summary="Ask a colleague, in any department, for feedback (a question and an optional due date)",
    **access(*STAFF),
)
async def request_feedback(request: Request, cycle_id: CycleId, user: Staff) -> Response:
    form = await read_form(request)
    body = {
        "giver_id": form.get("giver_id", "").strip(),
        "question": form.get("question", "").strip(),
        "due_date": optional(form.get("due_date")),
    }
    answer = await Upstream(request, user.token).post("feedback", _api_path(cycle_id), body)
    if not answer.ok:
        # Shown on the requests page whichever page posted: its form has every field, the colleague's
        # included, so each refusal lands at its field.
        state = FormState.refused(form, answer, form_id="ask")
        return refused(await requests_page_for(request, user, cycle_id, state))
    back = back_to(form, cycle_id, default="feedback-requests")
    return redirect(back, msg=_("Feedback requested from %(giver)s.", giver=body["giver_id"]))


async def request_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, request_id: int, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    listed, directory = await asyncio.gather(api.get("feedback", _api_path(cycle_id), {"limit": LISTED}), names(api))
    people = with_request_names(listed.items(), directory)
    if not listed.ok:
        return REQUEST.render(request, user, cycle_id=cycle_id, problem=problem(listed, _("this feedback request")),
                              status_code=listed.status if listed.status in (403, 404) else 502)  # fmt: skip
    found = next((r for r in listed.items() if r["id"] == request_id), None)
    if found is None:
        missing = Notice(_("There is no feedback request %(id)s in this cycle that you may see.", id=request_id))
        return REQUEST.render(request, user, cycle_id=cycle_id, problem=missing, status_code=404)
    requester = people.get(found["requester_id"], found["requester_id"])
    return REQUEST.render(
        request,
        user,
        title=_("Feedback requested by %(name)s", name=requester),
        cycle_id=cycle_id,
        problem=None,
        r=found,
        people=people,
        can_answer=found["status"] == "open" and found["giver_id"] == user.principal.employee_id,
        state=state or FormState(),
        action=cycle_path(cycle_id, "feedback-requests", str(request_id)),
    )


@router.get(
    "/cycles/{cycle_id}/feedback-requests/{request_id}",
    summary="One feedback request: the form to answer or decline it (the person asked), or its answer",
    response_class=HTMLResponse,
    **access(*STAFF),
)
async def request_page(request: Request, cycle_id: CycleId, request_id: RowId, user: Staff) -> HTMLResponse:
    return await request_page_for(request, user, cycle_id, request_id)


@router.post(
    "/cycles/{cycle_id}/feedback-requests/{request_id}/answer",
    summary="Answer a feedback request asked of you (your attributed feedback to the requester)",
    **access(*STAFF),
)
async def answer_request(request: Request, cycle_id: CycleId, request_id: RowId, user: Staff) -> Response:
    form = await read_form(request)
    body = {"message": form.get("message", "").strip()}
    answer = await Upstream(request, user.token).post("feedback", f"/v1/feedback-requests/{request_id}/answer", body)
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="answer")
        return refused(await request_page_for(request, user, cycle_id, request_id, state))
    sent = _("Your answer was sent to %(requester)s.", requester=answer.data["requester_id"])
    return redirect(cycle_path(cycle_id, "feedback-requests"), msg=sent)


@router.post(
    "/cycles/{cycle_id}/feedback-requests/{request_id}/decline",
    summary="Decline a feedback request asked of you (the requester sees your reason, if you give one)",
    **access(*STAFF),
)
async def decline_request(request: Request, cycle_id: CycleId, request_id: RowId, user: Staff) -> Response:
    form = await read_form(request)
    body = {"reason": optional(form.get("reason"))}
    answer = await Upstream(request, user.token).post("feedback", f"/v1/feedback-requests/{request_id}/decline", body)
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="decline")
        return refused(await request_page_for(request, user, cycle_id, request_id, state))
    declined = _("You declined the request of %(requester)s.", requester=answer.data["requester_id"])
    return redirect(cycle_path(cycle_id, "feedback-requests"), msg=declined)
