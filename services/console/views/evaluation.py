"""Evaluation: calibration, the rating distribution before and after against the guideline."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.common.params import CALIBRATORS, CycleId
from services.console.auth import Calibrator, access
from services.console.charts import grouped_bar_chart
from services.console.i18n import N_, _
from services.console.rendering import Page, problem
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

CALIBRATION = Page("evaluation/calibration.html", N_("Calibration"), tab="calibration")


def _guideline(band: dict[str, Any]) -> str:
    parts = []
    if band.get("max_share") is not None:
        parts.append(f"≤ {100 * band['max_share']:.0f}%")
    if band.get("min_share"):
        parts.append(f"≥ {100 * band['min_share']:.0f}%")
    return " ".join(parts)


@router.get(
    "/cycles/{cycle_id}/calibration",
    summary="Calibration: rating distribution against the guideline, before and after, audit trail",
    response_class=HTMLResponse,
    **access(*CALIBRATORS),
)
async def calibration_page(request: Request, cycle_id: CycleId, user: Calibrator) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    distribution, adjustments, results = await asyncio.gather(
        api.get("evaluation", f"{base}/calibration/distribution"),
        api.get("evaluation", f"{base}/calibration/adjustments", {"limit": 500}),
        api.get("evaluation", f"{base}/results", {"limit": 500}),
    )
    if not distribution.ok:
        return CALIBRATION.render(
            request, user, cycle_id=cycle_id, problem=problem(distribution, _("the rating distribution"))
        )
    # "After" is the distribution the evaluation API reports (the table's count); "before" counts
    # the same people's computed ratings. Both are scoped by the API to what the caller may see.
    rated: list[dict[str, Any]] = results.data if results.ok else []
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
    return CALIBRATION.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None,
        total=distribution.data["total"],
        chart=chart,
        violations=distribution.data["violations"],
        bands=bands,
        adjustments=adjustments.data if adjustments.ok else [],
        trail_problem=None if adjustments.ok else problem(adjustments, _("the audit trail")),
    )
