"""Ops: what is stuck, where and why, across running cycles.

The page renders the cycles service's ``GET /v1/ops/overview``, called with the signed-in
user's token like every other page: the console reads no database and probes nothing itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.common.params import OPS_ROLES
from services.console.auth import Operator, access
from services.console.i18n import N_, _
from services.console.params import CycleFilter
from services.console.rendering import Page, problem
from services.console.upstream import Upstream

__all__ = ["router"]

router = APIRouter()

OPS = Page("ops/overview.html", N_("Operations"))


def _stale_rows(overview: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per cycle, one row per stale KPI with its data-owner department (the table's rows)."""
    return {
        c["cycle_id"]: [{"owner": s["department_id"], "kpi": k} for s in c["stale_kpis"] for k in s["kpis"]]
        for c in overview["cycles"]
    }


@router.get(
    "/ops",
    summary="Ops view: what is stuck, where and why, across running cycles",
    response_class=HTMLResponse,
    **access(*OPS_ROLES),
)
async def ops_page(request: Request, user: Operator, cycle_id: CycleFilter = None) -> HTMLResponse:
    overview = await Upstream(request, user.token).get("cycles", "/v1/ops/overview", {"cycle_id": cycle_id})
    return OPS.render(
        request,
        user,
        problem=None if overview.ok else problem(overview, _("the ops overview")),
        o=overview.data,
        stale=_stale_rows(overview.data) if overview.ok else {},
    )
