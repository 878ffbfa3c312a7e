"""Bonus pools: finance and HR set each department's pool, HR allocates it by calibrated score and
publishes the results; heads and ops read. The allocation downloads as CSV (UTF-8 with a BOM)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from babel.numbers import NumberFormatError, parse_decimal
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import HR, CycleId
from services.console.auth import (
    FINANCE,
    PAYROLL_READERS,
    POOL_READERS,
    POOL_WRITERS,
    ConsoleUser,
    FinanceUser,
    HrAdmin,
    PayrollReader,
    PoolReader,
    PoolWriter,
    access,
    read_form,
)
from services.console.directory import names
from services.console.exports import csv_response
from services.console.forms import FormState, refused
from services.console.i18n import N_, _, current_locale
from services.console.params import DepartmentId
from services.console.rendering import Page, cycle_path, problem, redirect
from services.console.upstream import Answer, Upstream

__all__ = ["router"]

router = APIRouter()

POOLS = Page("results/pools.html", N_("Bonus pools"), tab="pools")


def parse_amount(text: str) -> int | None:
    """An amount typed in the page's locale (``50,000.00``, ``50000``) as cents; None if unreadable."""
    try:
        value = parse_decimal(text.strip(), locale=current_locale(), strict=False)
    except (NumberFormatError, InvalidOperation, ValueError):
        return None
    cents = (Decimal(value) * 100).quantize(Decimal(1))
    return int(cents) if cents == Decimal(value) * 100 else None


async def pools_page_for(
    request: Request, user: ConsoleUser, cycle_id: str, state: FormState | None = None
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    cycle, pools, people, policy, fund = await asyncio.gather(
        api.get("cycles", base),
        api.get("results", f"{base}/pools"),
        names(api),
        api.get("results", f"{base}/policy"),
        api.get("results", f"{base}/award-fund"),
    )
    by_department = {p["department_id"]: p for p in pools.items()}
    departments = list(cycle.data.get("department_ids", [])) if cycle.ok else sorted(by_department)
    allocations: list[Answer] = list(
        await asyncio.gather(*(api.get("results", f"{base}/pools/{quote(d, safe='')}/allocation") for d in departments))
    )
    rows: list[dict[str, Any]] = [
        {"department_id": d, "pool": by_department.get(d), "allocation": a.data if a.ok else None}
        for d, a in zip(departments, allocations, strict=True)
    ]
    return POOLS.render(
        request,
        user,
        cycle_id=cycle_id,
        problem=None if pools.ok else problem(pools, _("the bonus pools")),
        rows=rows,
        people=people,
        can_set=user.has(*POOL_WRITERS),
        can_allocate=user.has(*HR),
        can_approve=user.has(FINANCE),
        needs_approval=policy.ok and policy.data.get("pool_approval") == "finance",
        can_export=user.has(*PAYROLL_READERS),
        fund=fund.data if fund.ok else None,
        state=state or FormState(),
        key=uuid.uuid4().hex,
    )


@router.get(
    "/cycles/{cycle_id}/pools",
    summary="Bonus pools per department: budget, allocation by calibrated score, publication",
    response_class=HTMLResponse,
    **access(*POOL_READERS),
)
async def pools_page(request: Request, cycle_id: CycleId, user: PoolReader) -> HTMLResponse:
    return await pools_page_for(request, user, cycle_id)


@router.post(
    "/cycles/{cycle_id}/pools/{department_id}",
    summary="Set a department's bonus pool (finance budget, in the currency's units)",
    **access(*POOL_WRITERS),
)
async def set_pool(request: Request, cycle_id: CycleId, department_id: DepartmentId, user: PoolWriter) -> Response:
    form = await read_form(request)
    form_id = f"pool-{department_id}"
    cents = parse_amount(form.get("amount", ""))
    if cents is None:
        state = FormState(dict(form), {"amount": _("write an amount such as 50,000.00")}, None, form_id)
        return refused(await pools_page_for(request, user, cycle_id, state))
    body = {"amount_cents": cents, "currency": form.get("currency", "").strip().upper(),
            "source": form.get("source", "").strip() or "finance budget"}  # fmt: skip
    answer = await Upstream(request, user.token).put(
        "results", f"/v1/cycles/{quote(cycle_id, safe='')}/pools/{quote(department_id, safe='')}", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id=form_id, rename={"amount_cents": "amount"})
        return refused(await pools_page_for(request, user, cycle_id, state))
    return redirect(cycle_path(cycle_id, "pools"), msg=_("Pool of %(department)s set.", department=department_id))


@router.post(
    "/cycles/{cycle_id}/award-fund",
    summary="Fund the collaboration award (finance's budget, paid to the winning department)",
    **access(*POOL_WRITERS),
)
async def set_award_fund(request: Request, cycle_id: CycleId, user: PoolWriter) -> Response:
    form = await read_form(request)
    cents = parse_amount(form.get("amount", ""))
    if cents is None:
        state = FormState(dict(form), {"amount": _("write an amount such as 50,000.00")}, None, "award-fund")
        return refused(await pools_page_for(request, user, cycle_id, state))
    body = {"amount_cents": cents, "currency": form.get("currency", "").strip().upper(),
            "source": form.get("source", "").strip() or "finance budget"}  # fmt: skip
    answer = await Upstream(request, user.token).put(
        "results", f"/v1/cycles/{quote(cycle_id, safe='')}/award-fund", body
    )
    if not answer.ok:
        state = FormState.refused(form, answer, form_id="award-fund", rename={"amount_cents": "amount"})
        return refused(await pools_page_for(request, user, cycle_id, state))
    return redirect(cycle_path(cycle_id, "pools"), msg=_("Collaboration award fund set."))


@router.post(
    "/cycles/{cycle_id}/pools/{department_id}/approve",
    summary="Finance approves a department's pool as set (allocation waits for it when the policy says so)",
    **access(FINANCE),
)
async def approve_pool(request: Request, cycle_id: CycleId, department_id: DepartmentId, user: FinanceUser) -> Response:
    await read_form(request)
    answer = await Upstream(request, user.token).post(
        "results", f"/v1/cycles/{quote(cycle_id, safe='')}/pools/{quote(department_id, safe='')}/approval"
    )
    back = cycle_path(cycle_id, "pools")
    if not answer.ok:
        return redirect(back, error=answer.error)
    return redirect(back, msg=_("Pool of %(department)s approved.", department=department_id))


@router.post(
    "/cycles/{cycle_id}/pools/{department_id}/allocate",
    summary="Allocate a department's pool by calibrated score (exact to the cent; a double click allocates once)",
    **access(*HR),
)
async def allocate(request: Request, cycle_id: CycleId, department_id: DepartmentId, user: HrAdmin) -> Response:
    form = await read_form(request)
    answer = await Upstream(request, user.token).post(
        "results",
        f"/v1/cycles/{quote(cycle_id, safe='')}/pools/{quote(department_id, safe='')}/allocations",
        {},
        idempotency_key=f"console/{form.get('key') or uuid.uuid4().hex}",
    )
    back = cycle_path(cycle_id, "pools")
    if not answer.ok:
        return redirect(back, error=answer.error)
    return redirect(back, msg=_("Pool of %(department)s allocated.", department=department_id))


@router.post("/cycles/{cycle_id}/publish", summary="Publish the cycle's results (once)", **access(*HR))
async def publish(request: Request, cycle_id: CycleId, user: HrAdmin) -> Response:
    # The same key as the workflow's own publication: whoever comes second gets the first one back.
    answer = await Upstream(request, user.token).post(
        "results", f"/v1/cycles/{quote(cycle_id, safe='')}/publish", idempotency_key=f"{cycle_id}/publish"
    )
    back = cycle_path(cycle_id, "pools")
    return redirect(back, error=answer.error) if not answer.ok else redirect(back, msg=_("Results published."))


@router.get(
    "/cycles/{cycle_id}/pools/{department_id}/allocation.csv",
    summary="A department's allocation as CSV (UTF-8 with a BOM, for Excel)",
    response_class=Response,
    **access(*POOL_READERS),
)
async def allocation_csv(
    request: Request, cycle_id: CycleId, department_id: DepartmentId, user: PoolReader
) -> Response:
    api = Upstream(request, user.token)
    allocation, people = await asyncio.gather(
        api.get("results", f"/v1/cycles/{quote(cycle_id, safe='')}/pools/{quote(department_id, safe='')}/allocation"),
        names(api),
    )
    if not allocation.ok:
        return Response(allocation.error or "", status_code=allocation.status or 502, media_type="text/plain")
    data = allocation.data
    header = [
        _("Employee id"),
        _("Name"),
        _("Rating"),
        _("Score"),
        _("Weight"),
        _("Amount"),
        _("Currency"),
        _("Capped"),
    ]
    rows = (
        [line["employee_id"], people.get(line["employee_id"], ""), line["rating"], line["final_score"], line["weight"],
         f"{line['amount_cents'] / 100:.2f}", data["currency"], line["capped"]]
        for line in data["lines"]
    )  # fmt: skip
    return csv_response(f"allocation-{cycle_id}-{department_id}.csv", header, rows)


@router.get(
    "/cycles/{cycle_id}/payroll.csv",
    summary="Payroll export: every allocated bonus of the cycle as CSV (UTF-8 with a BOM), for finance and HR",
    response_class=Response,
    **access(*PAYROLL_READERS),
)
async def payroll_csv(request: Request, cycle_id: CycleId, user: PayrollReader) -> Response:
    api = Upstream(request, user.token)
    path = f"/v1/cycles/{quote(cycle_id, safe='')}/bonuses"
    people = await names(api)
    lines: list[dict[str, Any]] = []
    while True:  # the API pages at 500
        page = await api.get("results", path, {"limit": 500, "offset": len(lines)})
        if not page.ok:
            return Response(page.error or "", status_code=page.status or 502, media_type="text/plain")
        lines += page.items()
        if len(page.items()) < 500:
            break
    header = [_("Employee id"), _("Name"), _("Department"), _("Rating"), _("Amount"), _("Currency")]
    rows = (
        [b["employee_id"], people.get(b["employee_id"], ""), b["department_id"], b["rating"],
         f"{b['amount_cents'] / 100:.2f}", b["currency"]]
        for b in lines
    )  # fmt: skip
    return csv_response(f"payroll-{cycle_id}.csv", header, rows)


@router.post(
    "/cycles/{cycle_id}/development-plans/generate",
    summary="Draft a development plan for everyone below the cycle's threshold (HR; idempotent)",
    **access(*HR),
)
async def generate_plans(request: Request, cycle_id: CycleId, user: HrAdmin) -> Response:
    answer = await Upstream(request, user.token).post(
        "results", f"/v1/cycles/{quote(cycle_id, safe='')}/development-plans/generate"
    )
    back = cycle_path(cycle_id, "pools")
    if not answer.ok:
        return redirect(back, error=answer.error)
    return redirect(back, msg=_("%(created)s development plan(s) drafted.", created=answer.data.get("created", 0)))
