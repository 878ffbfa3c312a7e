"""Results: the cross-department collaboration report (heatmap, pairs, suggested actions)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import LEADERS, CycleId
from services.console.auth import Leader, access
from services.console.exports import csv_response
from services.console.i18n import N_, _
from services.console.rendering import Page, problem
from services.console.upstream import Answer, Upstream

__all__ = ["router"]

router = APIRouter()

COLLABORATION = Page("results/collaboration.html", N_("Collaboration"), tab="collaboration")


def _heatmap(report: dict[str, Any]) -> dict[str, Any]:
    """Rows (raters) and columns (rated departments) of the matrix, and its cells by pair."""
    matrix: list[dict[str, Any]] = report["matrix"]
    return {
        "names": report["departments"],
        "raters": sorted({c["rater_department_id"] for c in matrix}),
        "rated": sorted({c["rated_department_id"] for c in matrix}),
        "cells": {(c["rater_department_id"], c["rated_department_id"]): c for c in matrix},
    }


async def _report(request: Request, token: str, cycle_id: str) -> Answer:
    return await Upstream(request, token).get("results", f"/v1/cycles/{quote(cycle_id, safe='')}/collaboration-report")


@router.get(
    "/cycles/{cycle_id}/collaboration",
    summary="Cross-department collaboration heatmap, strongest and weakest pairs, suggested actions",
    response_class=HTMLResponse,
    **access(*LEADERS),
)
async def collaboration_page(request: Request, cycle_id: CycleId, user: Leader) -> HTMLResponse:
    report, awards = await asyncio.gather(
        _report(request, user.token, cycle_id),
        Upstream(request, user.token).get("results", f"/v1/cycles/{quote(cycle_id, safe='')}/collaboration-awards"),
    )
    return COLLABORATION.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if report.ok else problem(report, _("the collaboration report")),
        r=report.data,
        heat=_heatmap(report.data) if report.ok else None,
        awards=awards.data if awards.ok else None,
    )


@router.get(
    "/cycles/{cycle_id}/collaboration.csv",
    summary="The collaboration report as CSV (UTF-8 with a BOM, so Excel shows Chinese names)",
    response_class=Response,
    **access(*LEADERS),
)
async def collaboration_csv(request: Request, cycle_id: CycleId, user: Leader) -> Response:
    report = await _report(request, user.token, cycle_id)
    if not report.ok:
        return Response(report.error or "", status_code=report.status or 502, media_type="text/plain")
    header = [
        _("Rater department"), _("Rater"), _("Rated department"), _("Rated"), _("Responsiveness"), _("Data quality"),
        _("Reliability"), _("Overall"), _("Ratings"), _("Previous overall"), _("Comments"),
    ]  # fmt: skip
    rows = (
        [c["rater_department_id"], c["rater_department"], c["rated_department_id"], c["rated_department"],
         c["responsiveness"], c["data_quality"], c["reliability"], c["overall"], c["ratings"],
         c.get("previous_overall"), " | ".join(c.get("comments") or [])]
        for c in report.data["matrix"]
    )  # fmt: skip
    return csv_response(f"collaboration-{cycle_id}.csv", header, rows)
