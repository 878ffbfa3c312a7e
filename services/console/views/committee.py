"""The cross-department performance committee: its committees and meetings (the agenda generated from
the cycle's data, the minutes, the decisions with their owner and due date) for HR and the heads who
sit on it; and "My decisions" for everyone a decision is assigned to. The committee API scopes it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import CALIBRATORS, EVERYONE, HR, STAFF
from services.console.auth import Anyone, Calibrator, ConsoleUser, HrAdmin, Staff, access, read_form
from services.console.directory import names
from services.console.forms import FormState, refused
from services.console.i18n import N_, _, current_timezone
from services.console.rendering import Page, pick, problem, redirect
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

COMMITTEES = Page("committee/committees.html", N_("Performance committee"))
MEETING = Page("committee/meeting.html", N_("Committee meeting"))
DECISIONS = Page("committee/decisions.html", N_("My decisions"))
SESSION = Page("committee/session.html", N_("Calibration session"))
Id = Annotated[str, Path(min_length=1, max_length=64)]
DECISION_STATUSES = ("open", "in_progress", "done", "cancelled")


def _q(value: str) -> str:
    return quote(value, safe="")


def meeting_path(committee_id: str, meeting_id: str) -> str:
    return f"/console/committees/{_q(committee_id)}/meetings/{_q(meeting_id)}"


FUNCTIONS = (("hr", N_("HR")), ("business", N_("Business")), ("finance", N_("Finance")), ("it", N_("IT")))
ROLES = (("member", N_("Member")), ("chair", N_("Chair")), ("secretary", N_("Secretary")))


async def committees_page_for(request: Request, user: ConsoleUser, state: FormState | None = None) -> HTMLResponse:
    api = Upstream(request, user.token)
    committees, people, cycles = await asyncio.gather(
        api.get("committee", "/v1/committees"),
        api.get("cycles", "/v1/org/employees", {"limit": 500}),
        api.get("cycles", "/v1/cycles", {"limit": 100}),
    )
    meetings = await asyncio.gather(
        *(api.get("committee", f"/v1/committees/{_q(c['committee_id'])}/meetings") for c in committees.items())
    )
    rows = [{"committee": c, "meetings": m.items()} for c, m in zip(committees.items(), meetings, strict=True)]
    return COMMITTEES.render(
        request,
        user,
        problem=None if committees.ok else problem(committees, _("the committees")),
        rows=rows,
        people=[(e["employee_id"], f"{e['name']} ({e['employee_id']})") for e in people.items()],
        cycles=[(c["cycle_id"], c["name"]) for c in cycles.items() if c["status"] in ("active", "paused", "draft")],
        functions=[(value, _(label)) for value, label in FUNCTIONS],
        roles=[(value, _(label)) for value, label in ROLES],
        can_create=user.has(*HR),
        state=state or FormState(),
    )


@router.get(
    "/committees",
    summary="The committees you sit on (HR: all): members by function, cadence and meetings; HR creates one",
    response_class=HTMLResponse,
    **access(*CALIBRATORS),
)
async def committees_page(request: Request, user: Calibrator) -> HTMLResponse:
    return await committees_page_for(request, user)


@router.post(
    "/committees",
    summary="Create a committee: a seat for each function (HR, business, finance, IT) with its role",
    **access(*HR),
)
async def create_committee(request: Request, user: HrAdmin) -> Response:
    form = await read_form(request)
    api = Upstream(request, user.token)
    directory = {e["employee_id"]: e for e in (await api.get("cycles", "/v1/org/employees", {"limit": 500})).items()}
    members = []
    for function, _label in FUNCTIONS:
        employee_id = form.get(f"{function}_member", "").strip()
        if employee_id:
            person = directory.get(employee_id, {})
            members.append({"employee_id": employee_id, "name": person.get("name", ""),
                            "department_id": person.get("department_id", "-"), "function": function,
                            "role": form.get(f"{function}_role", "member")})  # fmt: skip
    body = {"name": form.get("name", "").strip(), "cycle_id": form.get("cycle_id") or None, "members": members}
    answer = await api.post("committee", "/v1/committees", body)
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="committee")
        return refused(await committees_page_for(request, user, state))
    return redirect("/console/committees", msg=_("Committee %(name)s created.", name=answer.data["name"]))


@router.post(
    "/committees/{committee_id}/meetings",
    summary="Open a meeting now: its agenda is generated from the cycle's data",
    **access(*CALIBRATORS),
)
async def open_meeting(request: Request, committee_id: Id, user: Calibrator) -> Response:
    await read_form(request)
    answer = await Upstream(request, user.token).post("committee", f"/v1/committees/{_q(committee_id)}/meetings", {})
    if not answer.ok:
        return redirect("/console/committees", error=answer.error)
    return redirect(meeting_path(committee_id, answer.data["meeting_id"]), msg=_("Meeting opened."))


async def meeting_page_for(
    request: Request, user: ConsoleUser, committee_id: str, meeting_id: str, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/committees/{_q(committee_id)}"
    meeting, decisions, people, sessions = await asyncio.gather(
        api.get("committee", f"{base}/meetings/{_q(meeting_id)}"),
        api.get("committee", f"{base}/decisions"),
        names(api),
        api.get("committee", f"{base}/meetings/{_q(meeting_id)}/calibration-sessions"),
    )
    if not meeting.ok:
        return MEETING.render(request, user, problem=problem(meeting, _("the meeting")), meeting=None)
    data: dict[str, Any] = meeting.data
    return MEETING.render(
        request,
        user,
        problem=None,
        meeting=data,
        committee_id=committee_id,
        decisions=[d for d in decisions.items() if d["meeting_id"] == meeting_id],
        people=people,
        owners=sorted(((e, f"{n} ({e})") for e, n in people.items()), key=lambda p: p[1]),
        agenda_options=[(item["item_id"], pick(item["title"])) for item in data["agenda"]],
        decision_options=[(d["decision_id"], d["title"]) for d in decisions.items() if d["meeting_id"] == meeting_id],
        # who may open a session may list them; for anyone else the list is left out
        sessions=sessions.items() if sessions.ok else None,
        state=state or FormState(),
    )


@router.get(
    "/committees/{committee_id}/meetings/{meeting_id}",
    summary="A committee meeting: the agenda generated from data, the minutes, the decisions",
    response_class=HTMLResponse,
    **access(*CALIBRATORS),
)
async def meeting_page(request: Request, committee_id: Id, meeting_id: Id, user: Calibrator) -> HTMLResponse:
    return await meeting_page_for(request, user, committee_id, meeting_id)


@router.post(
    "/committees/{committee_id}/meetings/{meeting_id}/minutes",
    summary="Record the meeting's minutes",
    **access(*CALIBRATORS),
)
async def record_minutes(request: Request, committee_id: Id, meeting_id: Id, user: Calibrator) -> Response:
    form = await read_form(request)
    body = {"minutes": form.get("minutes", "").strip()}
    answer = await Upstream(request, user.token).put(
        "committee", f"/v1/committees/{_q(committee_id)}/meetings/{_q(meeting_id)}/minutes", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="minutes")
        return refused(await meeting_page_for(request, user, committee_id, meeting_id, state))
    return redirect(meeting_path(committee_id, meeting_id), msg=_("Minutes recorded."))


def _end_of_day(value: str) -> str | None:
    """A date typed in the form, as the end of that day in the user's time zone (ISO), or None."""
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time(23, 59), tzinfo=current_timezone()).isoformat()


@router.post(
    "/committees/{committee_id}/meetings/{meeting_id}/decisions",
    summary="Record a decision with its owner and due date (tracked to done with reminders)",
    **access(*CALIBRATORS),
)
async def record_decision(request: Request, committee_id: Id, meeting_id: Id, user: Calibrator) -> Response:
    form = await read_form(request)
    due = _end_of_day(form.get("due_date", ""))
    if due is None:
        state = FormState(dict(form), {"due_date": _("choose the date it must be done by")}, None, "decision")
        return refused(await meeting_page_for(request, user, committee_id, meeting_id, state))
    body = {"title": form.get("title", "").strip(), "description": form.get("description", "").strip(),
            "owner_id": form.get("owner_id", "").strip(), "due_at": due,
            "agenda_item_id": form.get("agenda_item_id") or None}  # fmt: skip
    answer = await Upstream(request, user.token).post(
        "committee", f"/v1/committees/{_q(committee_id)}/meetings/{_q(meeting_id)}/decisions", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="decision", rename={"due_at": "due_date"})
        return refused(await meeting_page_for(request, user, committee_id, meeting_id, state))
    return redirect(meeting_path(committee_id, meeting_id), msg=_("Decision recorded."))


@router.get(
    "/decisions",
    summary="My decisions: what the committee asked of you, with due dates; change their status",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def decisions_page(request: Request, user: Anyone) -> HTMLResponse:
    answer = await Upstream(request, user.token).get("committee", "/v1/decisions/mine")
    return DECISIONS.render(
        request,
        user,
        problem=None if answer.ok else problem(answer, _("your decisions")),
        decisions=answer.items(),
        statuses=DECISION_STATUSES,
        can_change=user.has(*STAFF),
    )


@router.post(
    "/decisions/{decision_id}/status",
    summary="Move a decision assigned to you on (in progress, done) with a note",
    **access(*STAFF),
)
async def change_status(request: Request, decision_id: Id, user: Staff) -> Response:
    form = await read_form(request)
    body = {"status": form.get("status", ""), "note": form.get("note", "").strip() or None}
    answer = await Upstream(request, user.token).post("committee", f"/v1/decisions/{_q(decision_id)}/status", body)
    if not answer.ok:
        return redirect("/console/decisions", error=answer.error)
    return redirect("/console/decisions", msg=_("Decision %(title)s updated.", title=answer.data["title"]))


@router.post(
    "/committees/{committee_id}/meetings/{meeting_id}/calibration-sessions",
    summary="Open a calibration session of the committee (its adjustments record the session and decision)",
    **access(*CALIBRATORS),
)
async def open_session(request: Request, committee_id: Id, meeting_id: Id, user: Calibrator) -> Response:
    form = await read_form(request)
    body = {"decision_id": form.get("decision_id") or None, "note": form.get("note", "").strip()}
    answer = await Upstream(request, user.token).post(
        "committee", f"/v1/committees/{_q(committee_id)}/meetings/{_q(meeting_id)}/calibration-sessions", body
    )
    if not answer.ok:
        return redirect(meeting_path(committee_id, meeting_id), error=answer.error)
    return redirect(
        f"/console/calibration-sessions/{_q(answer.data['session_id'])}", msg=_("Calibration session opened.")
    )


async def session_page_for(
    request: Request, user: ConsoleUser, session_id: str, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    held, people = await asyncio.gather(api.get("committee", f"/v1/calibration-sessions/{_q(session_id)}"), names(api))
    if not held.ok:
        return SESSION.render(request, user, problem=problem(held, _("the calibration session")), held=None)
    config = await api.get("evaluation", f"/v1/cycles/{_q(held.data['cycle_id'])}/config")
    bands = [b["label"] for b in (config.data or {}).get("rating_scale", {}).get("bands", [])] if config.ok else []
    return SESSION.render(
        request,
        user,
        problem=None,
        held=held.data,
        people=people,
        everyone=sorted(((e, f"{n} ({e})") for e, n in people.items()), key=lambda p: p[1]),
        bands_options=[(b, b) for b in bands],
        state=state or FormState(),
    )


@router.get(
    "/calibration-sessions/{session_id}",
    summary="A committee calibration session: its adjustments, and the form to adjust a result in it",
    response_class=HTMLResponse,
    **access(*CALIBRATORS),
)
async def session_page(request: Request, session_id: Id, user: Calibrator) -> HTMLResponse:
    return await session_page_for(request, user, session_id)


@router.post(
    "/calibration-sessions/{session_id}/adjustments",
    summary="Calibrate a result in the committee's session (score or rating, with the reason)",
    **access(*CALIBRATORS),
)
async def adjust_in_session(request: Request, session_id: Id, user: Calibrator) -> Response:
    form = await read_form(request)
    score = (form.get("new_score") or "").strip()
    body: dict[str, Any] = {"employee_id": form.get("employee_id", ""), "reason": form.get("reason", "").strip(),
                            "new_rating": form.get("new_rating") or None}  # fmt: skip
    if score:
        try:
            body["new_score"] = float(score.replace(",", "."))
        except ValueError:
            state = FormState(dict(form), {"new_score": _("write a score such as 3.5")}, None, "adjust")
            return refused(await session_page_for(request, user, session_id, state))
    answer = await Upstream(request, user.token).post(
        "committee", f"/v1/calibration-sessions/{_q(session_id)}/adjustments", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="adjust")
        return refused(await session_page_for(request, user, session_id, state))
    return redirect(
        f"/console/calibration-sessions/{_q(session_id)}",
        msg=_("Calibrated %(employee)s in the session.", employee=answer.data["employee_id"]),
    )
