"""HR's appeals: status, appeal window, HR resolution deadline (overdue highlighted), history;
taking an appeal under review and resolving it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import HR, CycleId
from services.console.auth import HrAdmin, access, read_form
from services.console.directory import names
from services.console.i18n import N_, _
from services.console.params import AppealId
from services.console.rendering import Notice, Page, cycle_path, fmt_num, problem, redirect, word
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

OPEN_APPEALS = ("submitted", "under_review")
APPEALS = Page("feedback/appeals.html", N_("Appeals"), tab="appeals")


@router.get(
    "/cycles/{cycle_id}/appeals",
    summary="HR appeals: status, appeal window, HR resolution deadline (overdue highlighted), history; review, resolve",
    response_class=HTMLResponse,
    **access(*HR),
)
async def appeals_page(request: Request, cycle_id: CycleId, user: HrAdmin) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    appeals, overdue, results, config, people = await asyncio.gather(
        api.get("feedback", f"{base}/appeals", {"limit": 500}),
        api.get("feedback", "/v1/appeals/overdue", {"cycle_id": cycle_id, "limit": 500}),
        api.get("feedback", f"{base}/results", {"limit": 500}),
        api.get("feedback", f"{base}/config"),
        names(api),
    )
    if not appeals.ok:
        return APPEALS.render(request, user, cycle_id=cycle_id, problem=problem(appeals, _("the appeals")))
    items: list[dict[str, Any]] = appeals.data
    notes = []
    if overdue.ok:  # the feedback service's clock decides what is late
        late = {a["id"] for a in overdue.data}
    else:
        now = datetime.now(UTC).isoformat()
        late = {a["id"] for a in items if a["status"] in OPEN_APPEALS and a["hr_due_at"] < now}
        notes.append(Notice(_("Overdue appeals computed locally: %(error)s", error=overdue.error)))
    if not results.ok:
        notes.append(Notice(_("Appeal windows unavailable: %(error)s", error=results.error)))
    released: list[dict[str, Any]] = results.data if results.ok else []
    return APPEALS.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None,
        open_items=sorted((a for a in items if a["status"] in OPEN_APPEALS), key=lambda a: a["hr_due_at"]),
        closed=[a for a in items if a["status"] not in OPEN_APPEALS],
        late=late,
        window={r["employee_id"]: r.get("appeal_deadline") for r in released},
        ratings=sorted({r["rating"] for r in released}),
        config=config.data if config.ok else None,
        notes=notes,
        people=people,
    )


@router.post("/cycles/{cycle_id}/appeals/{appeal_id}/review", summary="HR takes an appeal under review", **access(*HR))
async def review_appeal(request: Request, cycle_id: CycleId, appeal_id: AppealId, user: HrAdmin) -> Response:
    answer = await Upstream(request, user.token).post("feedback", f"/v1/appeals/{appeal_id}/review")
    back = cycle_path(cycle_id, "appeals")
    if not answer.ok:
        return redirect(back, error=answer.error)
    reviewed = _("Appeal %(id)s of %(employee)s is under review.", id=appeal_id, employee=answer.data["employee_id"])
    return redirect(back, msg=reviewed)


def _resolution(form: dict[str, str]) -> dict[str, Any] | str:
    """The API body of the resolve form, or why the form is wrong (checked here, said plainly)."""
    outcome = form.get("outcome", "")
    score, rating = form.get("new_score", "").strip(), form.get("new_rating", "").strip()
    body: dict[str, Any] = {"outcome": outcome, "note": form.get("note", "").strip()}
    if outcome == "adjusted":
        try:
            body["new_score"] = float(score.replace(",", "."))
        except ValueError:
            return _("an adjusted appeal needs a new score as a number (e.g. 3.4), not %(score)r", score=score)
        if not rating:
            return _("an adjusted appeal needs a new rating (e.g. meets)")
        body["new_rating"] = rating
    elif score or rating:
        return _("a new score and rating go only with the outcome 'adjusted', not %(outcome)r", outcome=outcome)
    return body


@router.post(
    "/cycles/{cycle_id}/appeals/{appeal_id}/resolve",
    summary="HR resolves an appeal: upheld, adjusted (new score and rating) or rejected, with a note",
    **access(*HR),
)
async def resolve_appeal(request: Request, cycle_id: CycleId, appeal_id: AppealId, user: HrAdmin) -> Response:
    back = cycle_path(cycle_id, "appeals")
    body = _resolution(await read_form(request))
    if isinstance(body, str):
        return redirect(back, error=body)
    answer = await Upstream(request, user.token).post("feedback", f"/v1/appeals/{appeal_id}/resolve", body)
    if not answer.ok:
        return redirect(back, error=answer.error)
    a = answer.data
    if a["status"] == "adjusted":
        resolved = _(
            "Appeal %(id)s of %(employee)s resolved: adjusted to %(score)s (%(rating)s).",
            id=appeal_id,
            employee=a["employee_id"],
            score=fmt_num(a["new_score"], 2),
            rating=a["new_rating"],
        )
    else:
        resolved = _(
            "Appeal %(id)s of %(employee)s resolved: %(outcome)s.",
            id=appeal_id,
            employee=a["employee_id"],
            outcome=word(a["status"]),
        )
    return redirect(back, msg=resolved)
