"""The audit log: each service's append-only log, read through its API with the user's token
(HR and ops see sensitive columns redacted; the auditor role reads them raw), filtered, paged,
and downloadable as CSV (UTF-8 with a BOM)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.common.auth import Role
from services.common.client import SERVICES, ServiceName
from services.console.auth import ConsoleUser, access, console_requires
from services.console.exports import csv_response
from services.console.formats import parse_local_input
from services.console.i18n import N_, _
from services.console.rendering import Page, problem
from services.console.upstream import Answer, Upstream

__all__ = ["router"]

router = APIRouter()

AUDIT = Page("ops/audit.html", N_("Audit log"))
READERS = (Role.HR_ADMIN, Role.OPS, Role.AUDITOR)
"""The roles of every service's ``GET /v1/audit``."""
PAGE = 50
CSV_ROWS = 500
"""Entries in one CSV download (the API's largest page)."""
Auditor = Annotated[ConsoleUser, console_requires(*READERS)]
AUDITED: tuple[str, ...] = tuple(s for s in SERVICES if s in get_args(ServiceName))
ACTIONS = ("", "create", "update", "delete", "read")


@dataclass
class AuditFilters:
    """The page's filters (query parameters), the same for the page and its CSV."""

    service: str = Query(default="cycles", max_length=32)
    entity: str = Query(default="", max_length=128)
    actor: str = Query(default="", max_length=256)
    action: str = Query(default="", max_length=16)
    since: str = Query(default="", max_length=32, description="A local date and time (your time zone).")
    until: str = Query(default="", max_length=32, description="A local date and time (your time zone).")
    offset: int = Query(default=0, ge=0, le=1_000_000)

    def shown(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v and k != "offset"}


async def _entries(request: Request, user: ConsoleUser, filters: AuditFilters, limit: int) -> tuple[str, Answer]:
    service = filters.service if filters.service in AUDITED else "cycles"
    query = {
        "entity": filters.entity or None,
        "actor": filters.actor or None,
        "action": filters.action or None,
        "since": _instant(filters.since),
        "until": _instant(filters.until),
        "limit": limit,
        "offset": filters.offset,
    }
    answer = await Upstream(request, user.token).get(service, "/v1/audit", query)  # type: ignore[arg-type]
    return service, answer


def _instant(value: str | None) -> str | None:
    moment = parse_local_input(value) if value else None
    return moment.isoformat() if moment is not None else None


def _compact(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@router.get(
    "/audit",
    summary="The audit log of one service: who changed what and when, filtered and paged",
    response_class=HTMLResponse,
    **access(*READERS),
)
async def audit_page(request: Request, filters: Annotated[AuditFilters, Depends()], user: Auditor) -> HTMLResponse:
    chosen, answer = await _entries(request, user, filters, PAGE)
    items = [{**e, "before_text": _compact(e.get("before")), "after_text": _compact(e.get("after"))}
             for e in answer.items()]  # fmt: skip
    return AUDIT.render(
        request,
        user,
        problem=None if answer.ok else problem(answer, _("the audit log")),
        services=AUDITED,
        actions=ACTIONS,
        filters={**asdict(filters), "service": chosen},
        items=items,
        has_more=bool(answer.ok and answer.data.get("has_more")),
        next_offset=filters.offset + PAGE,
        prev_offset=max(0, filters.offset - PAGE),
        query=urlencode(filters.shown()),
    )


@router.get(
    "/audit.csv",
    summary="The audit log of one service as CSV (UTF-8 with a BOM), with the page's filters",
    response_class=Response,
    **access(*READERS),
)
async def audit_csv(request: Request, filters: Annotated[AuditFilters, Depends()], user: Auditor) -> Response:
    chosen, answer = await _entries(request, user, filters, CSV_ROWS)
    if not answer.ok:
        return Response(answer.error or "", status_code=answer.status or 502, media_type="text/plain")
    header = ["id", "occurred_at", "actor", "action", "entity", "entity_id", "request_id", "changed", "before", "after"]
    rows = (
        [e["id"], e["occurred_at"], e["actor"], e["action"], e["entity"], e["entity_id"], e.get("request_id"),
         " ".join(e.get("changed") or []), _compact(e.get("before")), _compact(e.get("after"))]
        for e in answer.items()
    )  # fmt: skip
    return csv_response(f"audit-{chosen}.csv", header, rows)
