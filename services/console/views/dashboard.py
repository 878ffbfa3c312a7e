"""The cycle dashboard: every cycle, creating and starting one (HR), and one cycle's overview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.auth import Role
from services.common.params import EVERYONE, HR, MACHINE, OPS_ROLES, STAFF, CycleId
from services.common.settings import Settings
from services.console.auth import FINANCE, MEMBERS, Anyone, ConsoleUser, HrAdmin, Member, Operator, access, read_form
from services.console.formats import local_input, parse_local_input
from services.console.forms import FormState, refused
from services.console.i18n import N_, _
from services.console.rendering import Page, cycle_path, problem, redirect, word
from services.console.upstream import Upstream

__all__ = ["router", "temporal_ui_link"]

router = APIRouter()

CYCLES = Page("dashboard/cycles.html", N_("Review cycles"))
CYCLE = Page("dashboard/cycle.html", N_("Cycle"), tab="overview")


def temporal_ui_link(settings: Settings, cycle_id: str) -> str:
    """The Temporal Web UI's workflow list filtered to one cycle (the ``CycleId`` search attribute)."""
    base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{quote(settings.temporal_namespace, safe='')}/workflows"
    return f"{base}?query={quote(f'CycleId={chr(34)}{cycle_id}{chr(34)}', safe='')}"


@router.get("", summary="Console home (redirects to my tasks; ops to the ops view)", **access(*MEMBERS))
async def home(user: Member) -> Response:
    only_ops = user.has(Role.OPS) and not user.has(*STAFF, FINANCE)
    return RedirectResponse("/console/ops" if only_ops else "/console/tasks", status_code=303)


def _current_stage(cycle: dict[str, Any]) -> str:
    """The stage whose window holds today, for an active cycle with a schedule."""
    if not cycle.get("schedule") or cycle["status"] != "active":
        return ""
    today = datetime.now(UTC).date().isoformat()
    current = next((s for s in cycle["schedule"] if s["opens_on"] <= today < s["closes_on"]), None)
    return str(current["stage"]) if current else ""


@router.get(
    "/cycles",
    summary="Cycle dashboard: every cycle with its status; HR creates and starts cycles",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def cycles_page(request: Request, user: Anyone) -> HTMLResponse:
    api = Upstream(request, user.token)
    cycles = await api.get("cycles", "/v1/cycles", {"limit": 100})
    if not cycles.ok:
        return CYCLES.render(request, user, problem=problem(cycles, _("cycles")))
    create = None
    if user.has(Role.HR_ADMIN):
        templates = await api.get("cycles", "/v1/templates", {"limit": 100})
        create = {
            "templates": templates.data["items"] if templates.ok else [],
            "year": datetime.now(UTC).year,
        }
    return CYCLES.render(
        request,
        user,
        problem=None,
        cycles=[{**c, "stage": _current_stage(c)} for c in cycles.data["items"]],
        can_start=user.has(Role.HR_ADMIN),
        create=create,
    )


@router.post("/cycles", summary="Create a draft cycle (form of the dashboard)", **access(*HR))
async def create_cycle(request: Request, user: HrAdmin) -> Response:
    form = await read_form(request)
    body = {
        "name": form.get("name", "").strip(),
        "template_id": form.get("template_id", ""),
        "period_start": form.get("period_start", ""),
        "period_end": form.get("period_end", ""),
        "department_ids": [d.strip() for d in form.get("department_ids", "").split(",") if d.strip()],
    }
    answer = await Upstream(request, user.token).post("cycles", "/v1/cycles", body)
    if not answer.ok:
        return redirect("/console/cycles", error=answer.error)
    created = _(
        "Created draft cycle %(name)s (%(cycle_id)s)", name=answer.data["name"], cycle_id=answer.data["cycle_id"]
    )
    return redirect("/console/cycles", msg=created)


@router.post(
    "/cycles/{cycle_id}/start", summary="Start a draft cycle (freeze, distribute, start its workflow)", **access(*HR)
)
async def start_cycle(request: Request, cycle_id: CycleId, user: HrAdmin) -> Response:
    form = await read_form(request)
    answer = await Upstream(request, user.token).post(
        "cycles",
        f"/v1/cycles/{quote(cycle_id, safe='')}/start",
        params={"day_seconds": form.get("day_seconds", "86400")},
    )
    if not answer.ok:
        return redirect("/console/cycles", error=answer.error)
    started = answer.data
    pending = [d["service"] for d in started["distribution"] if d["status"] != "delivered"]
    if pending:
        message = _(
            "Started %(name)s: %(participants)s participants; snapshot still pending for %(services)s",
            name=started["name"],
            participants=started["participants"],
            services=", ".join(pending),
        )
    else:
        message = _(
            "Started %(name)s: %(participants)s participants; snapshot delivered everywhere",
            name=started["name"],
            participants=started["participants"],
        )
    return redirect("/console/cycles", msg=message)


async def cycle_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    cycle = await api.get("cycles", f"/v1/cycles/{quote(cycle_id, safe='')}")
    if not cycle.ok:
        title = _("Cycle %(cycle_id)s", cycle_id=cycle_id)
        return CYCLE.render(
            request, user, title=title, problem=problem(cycle, _("this cycle")), status_code=cycle.status or 502
        )
    workflow = None
    if user.has(*OPS_ROLES) and cycle.data["status"] != "draft":
        workflow = {
            "status": await api.get("cycles", f"/v1/cycles/{quote(cycle_id, safe='')}/status"),
            "link": temporal_ui_link(request.app.state.settings, cycle_id),
        }
    running = cycle.data["status"] in ("active", "paused")
    return CYCLE.render(
        request,
        user,
        title=cycle.data["name"],
        cycle_id=cycle_id,
        problem=None,
        c=cycle.data,
        workflow=workflow,
        show_appeals=user.has(*HR),
        control=user.has(*HR) and running,
        resolves_incidents=user.has(*MACHINE) and running,
        stages=[(s["stage"], word(s["stage"])) for s in cycle.data.get("schedule", [])],
        state=state or FormState(),
        now=local_input(),
    )


@router.get(
    "/cycles/{cycle_id}",
    summary="One cycle: schedule, snapshot distribution, workflow progress; HR's cycle controls",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def cycle_page(request: Request, cycle_id: CycleId, user: Anyone) -> HTMLResponse:
    return await cycle_page_for(request, user, cycle_id)


ControlAction = Literal["pause", "resume", "cancel", "extend", "force-stage"]


def _control_body(action: str, form: dict[str, str]) -> dict[str, Any] | None:
    reason = form.get("reason", "").strip()
    if action == "cancel":
        return {"reason": reason}
    if action == "force-stage":
        return {"stage": form.get("stage", ""), "reason": reason}
    if action == "extend":
        moment = parse_local_input(form.get("new_deadline", ""))
        deadline = moment.isoformat() if moment is not None else form.get("new_deadline", "")
        return {"stage": form.get("stage", ""), "new_deadline": deadline, "reason": reason}
    return None


@router.post(
    "/cycles/{cycle_id}/control/{action}",
    summary="HR's cycle controls: pause, resume, cancel, extend a deadline, force the current stage",
    **access(*HR),
)
async def control_cycle(request: Request, cycle_id: CycleId, action: ControlAction, user: HrAdmin) -> Response:
    form = await read_form(request)
    answer = await Upstream(request, user.token).post(
        "cycles", f"/v1/cycles/{quote(cycle_id, safe='')}/{action}", _control_body(action, form)
    )
    if not answer.ok:
        return refused(await cycle_page_for(request, user, cycle_id, FormState.refused(form, answer, form_id=action)))
    done = {
        "pause": _("Cycle paused: no reminders and no stage changes until you resume it."),
        "resume": _("Cycle resumed."),
        "cancel": _("Cycle cancelled; unreleased results are withdrawn."),
        "extend": _("Deadline extended."),
        "force-stage": _("Stage completed by HR decision; the cycle moves on."),
    }[action]
    return redirect(cycle_path(cycle_id) + "#control", msg=done)


@router.post(
    "/cycles/{cycle_id}/incident",
    summary="Resolve the cycle's incident (a refused handoff): retry it, or skip it",
    **access(*MACHINE),
)
async def resolve_incident(request: Request, cycle_id: CycleId, user: Operator) -> Response:
    form = await read_form(request)
    body = {"action": form.get("action", ""), "reason": form.get("reason", "").strip()}
    answer = await Upstream(request, user.token).post("cycles", f"/v1/cycles/{quote(cycle_id, safe='')}/incident", body)
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="incident")
        return refused(await cycle_page_for(request, user, cycle_id, state))
    return redirect(cycle_path(cycle_id) + "#control", msg=_("Incident resolved: %(action)s.", action=body["action"]))
