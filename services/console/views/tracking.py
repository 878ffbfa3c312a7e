"""Tracking: KPI progress charts (attainment, trends, departments)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.common.params import EVERYONE, CycleId
from services.console.auth import Anyone, access
from services.console.charts import Bar, bar_chart, sparkline
from services.console.i18n import N_, _
from services.console.params import DepartmentFilter
from services.console.rendering import Page, problem
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

PROGRESS = Page("tracking/progress.html", N_("KPI progress"), tab="progress")

SHOWN_KPIS = 25
"""KPIs charted on one page (each costs one trend call)."""


@router.get(
    "/cycles/{cycle_id}/progress",
    summary="KPI progress charts: attainment per KPI, trends, departments",
    response_class=HTMLResponse,
    **access(*EVERYONE),
)
async def progress_page(
    request: Request, cycle_id: CycleId, user: Anyone, department_id: DepartmentFilter = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    progress, departments = await asyncio.gather(
        api.get("tracking", f"{base}/progress", {"department_id": department_id, "limit": 200}),
        api.get("tracking", f"{base}/departments/progress"),
    )
    if not progress.ok:
        return PROGRESS.render(request, user, cycle_id=cycle_id, problem=problem(progress, _("KPI progress")))
    items: list[dict[str, Any]] = progress.data["items"]
    # The shared KPIs (company and department) tell the story; individual ones only when alone.
    shown = ([k for k in items if k["level"] in ("company", "department")] or items)[:SHOWN_KPIS]
    trends = await asyncio.gather(
        *(api.get("tracking", f"{base}/kpis/{quote(k['kpi_id'], safe='')}/progress", {"buckets": 12}) for k in shown)
    )
    kpis = [
        {**k, "trend": sparkline([p["value"] for p in (t.data.get("trend") or [])] if t.ok else [])}
        for k, t in zip(shown, trends, strict=True)
    ]
    by_department = None
    if departments.ok and departments.data:
        by_department = bar_chart(
            [
                Bar(
                    d["department_id"],
                    d["avg_attainment_pct"],
                    _(
                        "(%(with_data)s/%(kpis)s with data, %(stale)s stale)",
                        with_data=d["with_data"],
                        kpis=d["kpi_count"],
                        stale=d["stale_count"],
                    ),
                )
                for d in departments.data
            ],
            title=_("Department attainment"),
        )
    return PROGRESS.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None,
        as_of=progress.data["as_of"],
        total=progress.data["total"],
        # the chart and the table are drawn from the same rows
        chart=bar_chart(
            [Bar(k["name"], k["attainment_pct"], _("stale") if k["stale"] else "") for k in kpis],
            title=_("KPI attainment"),
        ),  # fmt: skip
        kpis=kpis,
        departments=by_department,
    )
