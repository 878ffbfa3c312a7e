"""1:1s: yours as manager or report (HR reads all), recording one, and its action items."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.auth import Role
from services.common.params import STAFF, CycleId
from services.console.auth import ONE_ON_ONE_PARTIES, Party, Staff, access, read_form, safe_next
from services.console.i18n import N_, _
from services.console.params import RowId
from services.console.rendering import Page, cycle_path, problem, redirect
from services.console.upstream import Upstream, not_asked

__all__ = ["back_to", "now_minute", "router"]

router = APIRouter()

ONE_ON_ONES = Page("feedback/one_on_ones.html", N_("1:1s"), tab="one-on-ones")


def now_minute() -> str:
    """Now, as the value of a ``datetime-local`` field (UTC)."""
    return datetime.now(UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")


def back_to(form: dict[str, str], cycle_id: str, default: str = "one-on-ones") -> str:
    """Where a form posted from several pages returns: a page of this cycle (never elsewhere), else
    the cycle's ``default`` page (the 1:1s page)."""
    back = safe_next(form.get("back"))
    prefix = cycle_path(cycle_id)
    return back if back == prefix or back.startswith(prefix + "/") else cycle_path(cycle_id, default)


@router.get(
    "/cycles/{cycle_id}/one-on-ones",
    summary="1:1s: yours as manager or report (HR reads all), with action items; record a 1:1 with a report",
    response_class=HTMLResponse,
    **access(*STAFF),
)
async def one_on_ones_page(request: Request, cycle_id: CycleId, user: Staff) -> HTMLResponse:
    api = Upstream(request, user.token)
    me = user.principal.employee_id
    manages = bool(me) and user.has(Role.MANAGER)
    meetings, reports = await asyncio.gather(
        api.get("feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/one-on-ones", {"limit": 500}),
        api.get("cycles", "/v1/org/employees", {"manager_id": me, "limit": 500}) if manages else not_asked(),
    )
    if not meetings.ok:
        return ONE_ON_ONES.render(request, user, cycle_id=cycle_id, problem=problem(meetings, _("1:1s")))
    form: dict[str, Any] | None = None
    if manages:
        direct = [(r["employee_id"], r["name"]) for r in reports.data["items"]] if reports.ok and reports.data else []
        form = {"fixed": None, "reports": direct}
    elif me and user.has(*ONE_ON_ONE_PARTIES):
        form = {"fixed": (me, _("you with your manager")), "reports": []}
    # grouped by the other person; HR (no employee id) sees "manager with report"
    grouped: dict[str, list[dict[str, Any]]] = {}
    for m in meetings.data:
        other = m["employee_id"] if m["employee_id"] != me else m["manager_id"]
        key = other if me else _("%(manager)s with %(employee)s", manager=m["manager_id"], employee=m["employee_id"])
        grouped.setdefault(key, []).append(m)
    groups = [
        {
            "who": who,
            "link": cycle_path(cycle_id, "people", quote(who, safe="")) if me else None,
            "meetings": group,
            "open_items": sum(1 for m in group for i in m["action_items"] if not i["done"]),
        }
        for who, group in sorted(grouped.items())
    ]
    return ONE_ON_ONES.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None,
        path=cycle_path(cycle_id, "one-on-ones"),
        form=form,
        groups=groups,
        party=user.has(*ONE_ON_ONE_PARTIES),
        today=datetime.now(UTC).date().isoformat(),
        now=now_minute(),
    )


def _scheduled_for(value: str) -> str | None:
    """A ``datetime-local`` value (taken as UTC) or an ISO timestamp, as ISO with a zone; None when invalid."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@router.post(
    "/cycles/{cycle_id}/one-on-ones",
    summary="Record a 1:1 (a manager with a report, or an employee with their manager)",
    **access(*ONE_ON_ONE_PARTIES),
)
async def create_one_on_one(request: Request, cycle_id: CycleId, user: Party) -> Response:
    form = await read_form(request)
    back = back_to(form, cycle_id)
    when = _scheduled_for(form.get("scheduled_for", ""))
    if when is None:
        return redirect(
            back, error=_("'when' must be a date and time, not %(value)r", value=form.get("scheduled_for", ""))
        )
    body = {
        "employee_id": form.get("employee_id", "").strip(),
        "scheduled_for": when,
        "agenda": [line.strip() for line in form.get("agenda", "").splitlines() if line.strip()],
        "notes": form.get("notes", "").strip(),
    }
    answer = await Upstream(request, user.token).post(
        "feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/one-on-ones", body
    )
    if not answer.ok:
        return redirect(back, error=answer.error)
    m = answer.data
    recorded = _(
        "1:1 of %(manager)s with %(employee)s recorded for %(when)s UTC.",
        manager=m["manager_id"],
        employee=m["employee_id"],
        when=when[:16],
    )
    return redirect(back, msg=recorded)


@router.post(
    "/cycles/{cycle_id}/one-on-ones/{one_on_one_id}/action-items",
    summary="Add an action item (owner and due date) to a 1:1",
    **access(*ONE_ON_ONE_PARTIES),
)
async def add_action_item(request: Request, cycle_id: CycleId, one_on_one_id: RowId, user: Party) -> Response:
    form = await read_form(request)
    back = back_to(form, cycle_id)
    body = {
        "description": form.get("description", "").strip(),
        "owner_id": form.get("owner_id", "").strip(),
        "due_date": form.get("due_date", "").strip(),
    }
    answer = await Upstream(request, user.token).post("feedback", f"/v1/one-on-ones/{one_on_one_id}/action-items", body)
    if not answer.ok:
        return redirect(back, error=answer.error)
    item = answer.data
    return redirect(
        back, msg=_("Action item added for %(owner)s, due %(due)s.", owner=item["owner_id"], due=item["due_date"])
    )


@router.post(
    "/cycles/{cycle_id}/one-on-ones/{one_on_one_id}/action-items/{item_id}",
    summary="Mark a 1:1 action item done (or not done)",
    **access(*ONE_ON_ONE_PARTIES),
)
async def update_action_item(
    request: Request, cycle_id: CycleId, one_on_one_id: RowId, item_id: RowId, user: Party
) -> Response:
    form = await read_form(request)
    back = back_to(form, cycle_id)
    done = form.get("done", "0") in ("1", "on", "true")
    answer = await Upstream(request, user.token).call(
        "PATCH", "feedback", f"/v1/one-on-ones/{one_on_one_id}/action-items/{item_id}", body={"done": done}
    )
    if not answer.ok:
        return redirect(back, error=answer.error)
    item = answer.data
    if item["done"]:
        return redirect(back, msg=_("Action item '%(description)s' is done.", description=item["description"]))
    return redirect(back, msg=_("Action item '%(description)s' is open again.", description=item["description"]))
