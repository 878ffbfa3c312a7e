"""The organisation (HR): the departments and people loaded in the cycles service, and importing
the org file (two CSV files or one JSON document). A rejected file lists every problem with its
file, row and column; nothing is imported until the file is clean."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.common.params import HR
from services.console.auth import ConsoleUser, HrAdmin, access, read_form, read_uploads
from services.console.i18n import N_, _
from services.console.rendering import Page, problem, redirect
from services.console.upstream import Answer, Upstream

__all__ = ["router"]

router = APIRouter()

ORG = Page("org/org.html", N_("Organisation"))
PARTS = ("departments", "employees", "document")


async def org_page_for(request: Request, user: ConsoleUser, rejected: Answer | None = None,
                       report: dict[str, object] | None = None) -> HTMLResponse:  # fmt: skip
    api = Upstream(request, user.token)
    departments, employees = await asyncio.gather(
        api.get("cycles", "/v1/org/departments", {"limit": 500}),
        api.get("cycles", "/v1/org/employees", {"limit": 500}),
    )
    people = Counter(e["department_id"] for e in employees.items())
    return ORG.render(
        request,
        user,
        problem=None if departments.ok else problem(departments, _("the organisation")),
        departments=[{**d, "people": people.get(d["department_id"], 0)} for d in departments.items()],
        total=employees.data.get("total", 0) if employees.ok else 0,
        employees=employees.items(),
        rejected=rejected,
        issues=(rejected.problem or {}).get("errors", []) if rejected is not None else [],
        report=report,
        status_code=422 if rejected is not None else 200,
    )


@router.get(
    "/org",
    summary="The organisation: departments and people, and the org file import (HR)",
    response_class=HTMLResponse,
    **access(*HR),
)
async def org_page(request: Request, user: HrAdmin) -> HTMLResponse:
    return await org_page_for(request, user)


@router.post("/org/import", summary="Import the org file: departments and employees CSV, or one JSON file (HR)",
             **access(*HR))  # fmt: skip
async def import_org(request: Request, user: HrAdmin) -> Response:
    form = await read_form(request)
    files = [u for u in await read_uploads(request) if u.name in PARTS and u.data]
    if not files:
        return redirect("/console/org", error=_("choose the two CSV files, or one JSON file"))
    # Only the files go on to the API (the form's other fields are the console's own).
    outgoing = httpx.Request(
        "POST", "http://org.import", files=[("document" if u.name == "document" else u.name,
                                             (u.filename or u.name, u.data, u.content_type)) for u in files]
    )  # fmt: skip
    dry_run = form.get("dry_run") == "1"
    answer = await Upstream(request, user.token).upload(
        "cycles", "/v1/org/import", content=outgoing.read(), content_type=outgoing.headers["content-type"],
        params={"dry_run": "true"} if dry_run else None,
    )  # fmt: skip
    if not answer.ok:
        return await org_page_for(request, user, rejected=answer)
    report = answer.data
    if dry_run:
        return await org_page_for(request, user, report=report)
    people = report["employees"]
    message = _(
        "Organisation imported: %(created)s people added, %(updated)s changed, %(deactivated)s left.",
        created=people["created"], updated=people["updated"], deactivated=people["deactivated"],
    )  # fmt: skip
    return redirect("/console/org", msg=message if report.get("changed") else _("The organisation is unchanged."))
