"""Evaluation: calibration (the distribution before and after against the guideline, adjusting a score
with a reason, lenient and strict raters, closing it) and HR's what-if re-scoring."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import CALIBRATORS, HR, CycleId
from services.console.auth import Calibrator, ConsoleUser, HrAdmin, access, read_form
from services.console.charts import grouped_bar_chart
from services.console.directory import names
from services.console.forms import FormState, number, optional, refused
from services.console.i18n import N_, _
from services.console.rendering import Page, cycle_path, problem, redirect
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

CALIBRATION = Page("evaluation/calibration.html", N_("Calibration"), tab="calibration")
WHAT_IF = Page("evaluation/what_if.html", N_("What-if"), tab="calibration")
COMPONENTS = ("kpi", "self", "manager", "peer", "cross_department", "collaboration")
"""The scoring components a what-if may weigh (contracts.scoring.ScoringComponent)."""


def _guideline(band: dict[str, Any]) -> str:
    parts = []
    if band.get("max_share") is not None:
        parts.append(f"≤ {100 * band['max_share']:.0f}%")
    if band.get("min_share"):
        parts.append(f"≥ {100 * band['min_share']:.0f}%")
    return " ".join(parts)


async def calibration_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    hr = user.has(*HR)
    distribution, adjustments, results, config, deviation, people = await asyncio.gather(
        api.get("evaluation", f"{base}/calibration/distribution"),
        api.get("evaluation", f"{base}/calibration/adjustments", {"limit": 500}),
        api.get("evaluation", f"{base}/results", {"limit": 500}),
        api.get("evaluation", f"{base}/config"),
        api.get("evaluation", f"{base}/calibration/deviation"),
        names(api),
    )
    if not distribution.ok:
        return CALIBRATION.render(
            request, user, cycle_id=cycle_id, problem=problem(distribution, _("the rating distribution"))
        )
    # "After" is the distribution the evaluation API reports (the table's count); "before" counts
    # the same people's computed ratings. Both are scoped by the API to what the caller may see.
    rated: list[dict[str, Any]] = results.items()
    before = Counter(str(r["computed_rating"]) for r in rated if r.get("computed_rating"))
    bands = [
        {
            "label": b["label"],
            "before": before[b["label"]],
            "after": b["count"],
            "share": b["share"],
            "guideline": _guideline(b),
            "max_count": b.get("max_count"),
        }
        for b in distribution.data["bands"]
    ]
    chart = grouped_bar_chart(
        [b["label"] for b in bands],
        [
            (_("before calibration"), "#9aa7bd", [b["before"] for b in bands]),
            (_("after calibration"), "#1f5fbf", [b["after"] for b in bands]),
        ],
        limits=[b["max_count"] for b in bands],
        title=_("Rating distribution before and after calibration"),
    )
    scale = (config.data or {}).get("rating_scale", {}) if config.ok else {}
    return CALIBRATION.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None,
        total=distribution.data["total"],
        chart=chart,
        violations=distribution.data["violations"],
        bands=bands,
        adjustments=adjustments.items(),
        trail_problem=None if adjustments.ok else problem(adjustments, _("the audit trail")),
        results=rated,
        people=people,
        rating_options=[("", "—"), *((b["label"], b["label"]) for b in scale.get("bands", []))],
        scale=scale,
        deviation=deviation.data if deviation.ok else None,
        hr=hr,
        state=state or FormState(),
    )


@router.get(
    "/cycles/{cycle_id}/calibration",
    summary="Calibration: distribution against the guideline, scores to adjust, lenient and strict raters, trail",
    response_class=HTMLResponse,
    **access(*CALIBRATORS),
)
async def calibration_page(request: Request, cycle_id: CycleId, user: Calibrator) -> HTMLResponse:
    return await calibration_page_for(request, user, cycle_id)


@router.post(
    "/cycles/{cycle_id}/calibration/adjust",
    summary="Calibrate one employee's score or rating, with a reason (HR; a head within their department)",
    **access(*CALIBRATORS),
)
async def adjust(request: Request, cycle_id: CycleId, user: Calibrator) -> Response:
    form = await read_form(request)
    employee = form.get("employee_id", "")
    body = {
        "employee_id": employee,
        "new_score": number(form.get("new_score")),
        "new_rating": optional(form.get("new_rating")),
        "reason": form.get("reason", "").strip(),
    }
    answer = await Upstream(request, user.token).post(
        "evaluation", f"/v1/cycles/{quote(cycle_id, safe='')}/calibration/adjustments", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id=f"adjust-{employee}")
        return refused(await calibration_page_for(request, user, cycle_id, state))
    return redirect(cycle_path(cycle_id, "calibration"), msg=_("Calibrated %(employee)s.", employee=employee))


async def _hr_step(request: Request, user: ConsoleUser, cycle_id: str, step: str, done: str) -> Response:
    answer = await Upstream(request, user.token).post("evaluation", f"/v1/cycles/{quote(cycle_id, safe='')}/{step}")
    back = cycle_path(cycle_id, "calibration")
    return redirect(back, error=answer.error) if not answer.ok else redirect(back, msg=done)


@router.post("/cycles/{cycle_id}/calibration/compute", summary="Compute every score now (HR)", **access(*HR))
async def compute(request: Request, cycle_id: CycleId, user: HrAdmin) -> Response:
    return await _hr_step(request, user, cycle_id, "scores/compute", _("Scores computed."))


@router.post("/cycles/{cycle_id}/calibration/close", summary="Close calibration: results become final (HR)",
             **access(*HR))  # fmt: skip
async def close(request: Request, cycle_id: CycleId, user: HrAdmin) -> Response:
    return await _hr_step(request, user, cycle_id, "calibration/close",
                          _("Calibration closed: the results are final; later changes only by appeal."))  # fmt: skip


async def what_if_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, state: FormState | None = None, result: Any = None
) -> HTMLResponse:
    config = await Upstream(request, user.token).get("evaluation", f"/v1/cycles/{quote(cycle_id, safe='')}/config")
    weights = (config.data or {}).get("weights", {}) if config.ok else {}
    return WHAT_IF.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if config.ok else problem(config, _("the scoring rules")),
        components=[(c, weights.get(c, 0)) for c in COMPONENTS],
        formula=(config.data or {}).get("formula", "") if config.ok else "",
        state=state or FormState(form_id="what-if"),
        result=result,
    )


@router.get(
    "/cycles/{cycle_id}/what-if",
    summary="What-if: re-score with other weights or another formula (nothing is saved)",
    response_class=HTMLResponse,
    **access(*HR),
)
async def what_if_page(request: Request, cycle_id: CycleId, user: HrAdmin) -> HTMLResponse:
    return await what_if_page_for(request, user, cycle_id)


@router.post(
    "/cycles/{cycle_id}/what-if",
    summary="Run a what-if and show whose score or rating would change",
    response_class=HTMLResponse,
    **access(*HR),
)
async def what_if(request: Request, cycle_id: CycleId, user: HrAdmin) -> HTMLResponse:
    form = await read_form(request)
    weights = {c: number(form.get(f"weights.{c}")) or "0" for c in COMPONENTS}
    body: dict[str, Any] = {"weights": weights}
    if formula := optional(form.get("formula")):
        body["formula"] = formula
    answer = await Upstream(request, user.token).post(
        "evaluation", f"/v1/cycles/{quote(cycle_id, safe='')}/what-if", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="what-if")
        return refused(await what_if_page_for(request, user, cycle_id, state))
    return await what_if_page_for(request, user, cycle_id, FormState(dict(form), form_id="what-if"), answer.data)
