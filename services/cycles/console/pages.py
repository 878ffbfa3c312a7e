"""The console's pages: server-rendered HTML over the service APIs, called with the user's token.

Each route declares its roles with ``console_requires`` (the same roles as the API it reads)
and lists them as ``x-roles``. Forms post back here, the page calls the API, then redirects
(post/redirect/get) with a short message.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.auth import Role, mint_token
from services.common.settings import Settings
from services.cycles.console.auth import (
    COOKIE,
    ConsoleUser,
    console_requires,
    read_form,
    safe_next,
)
from services.cycles.console.upstream import Answer, Upstream
from services.cycles.console.views import (
    Bar,
    bar_chart,
    button_form,
    e,
    fmt_dt,
    fmt_num,
    grouped_bar_chart,
    heat_colour,
    layout,
    meter,
    notice,
    pill,
    sparkline,
    table,
)
from services.cycles.ops import OPS_ROLES, OpsOverview, build_overview, temporal_ui_link

__all__ = ["PUBLIC_PATHS", "router"]

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=True, default_response_class=HTMLResponse)

HR = (Role.HR_ADMIN,)
PEOPLE = (Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
GOAL_PEOPLE = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
APPROVERS = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER)
CALIBRATORS = (Role.HR_ADMIN, Role.DEPT_HEAD)
LEADERS = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.OPS)
CHECK_IN_ROLES = (Role.EMPLOYEE, Role.MANAGER, Role.DEPT_HEAD, Role.HR_ADMIN)
PUBLIC_PATHS = ("/console/sign-in", "/console/sign-out")
DEV_ROLES = ("hr_admin", "ops", "dept_head", "manager", "employee")
PERSONAS = (
    ("HR admin", "hr-admin", "hr_admin", "", ""),
    ("Ops on call", "ops-oncall", "ops", "", ""),
    ("Head of Sales (E0155)", "E0155", "dept_head", "E0155", "sales"),
    ("Manager, Domestic Sales (E0163)", "E0163", "manager", "E0163", "sales-domestic"),
    ("Account manager (E0164)", "E0164", "employee", "E0164", "sales-domestic"),
)
"""One-click dev sign-ins for the sample organisation (dev and test only)."""

CycleId = Annotated[str, Path(min_length=1, max_length=64, description="The review cycle.")]
ItemId = Annotated[str, Path(min_length=1, max_length=64)]


def access(*roles: Role) -> dict[str, Any]:
    """Route keyword arguments listing the roles in OpenAPI (``x-roles``); the check is ``_user(...)``."""
    return {"openapi_extra": {"x-roles": [r.value for r in roles]}}


User = ConsoleUser


def _user(*roles: Role) -> Any:
    return console_requires(*roles)


# -- rendering ------------------------------------------------------------------------------------
def _nav(user: ConsoleUser) -> list[tuple[str, str]]:
    nav = [("Cycles", "/console/cycles")]
    if user.has(*OPS_ROLES):
        nav.append(("Ops", "/console/ops"))
    return nav


def _cycle_nav(user: ConsoleUser, cycle_id: str, active: str) -> str:
    base = f"/console/cycles/{quote(cycle_id, safe='')}"
    items: list[tuple[str, str]] = [("overview", "Overview"), ("goals", "Goal tree"), ("progress", "KPI progress")]
    if user.has(*APPROVERS):
        items.append(("approvals", "Approvals"))
    if user.has(*CALIBRATORS):
        items.append(("calibration", "Calibration"))
    if user.has(*LEADERS):
        items.append(("collaboration", "Collaboration"))
    if user.principal.employee_id:
        items.append(("me", "My page"))
    links = []
    for key, label in items:
        href = base if key == "overview" else f"{base}/{key}"
        cls = ' class="on"' if key == active else ""
        links.append(f'<a{cls} href="{e(href)}">{e(label)}</a>')
    if user.has(*OPS_ROLES):
        links.append(f'<a href="/console/ops?cycle_id={e(quote(cycle_id, safe=""))}">Ops</a>')
    return f'<nav class="sub">{"".join(links)}</nav>'


def _flash(request: Request) -> str:
    parts = []
    if message := request.query_params.get("msg"):
        parts.append(notice(message[:300], "ok"))
    if error := request.query_params.get("error"):
        parts.append(notice(error[:500], "error"))
    return "".join(parts)


def page(
    request: Request,
    user: ConsoleUser,
    title: str,
    body: str,
    *,
    cycle_id: str | None = None,
    active: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    sub = _cycle_nav(user, cycle_id, active) if cycle_id else ""
    html = layout(title=title, body=sub + _flash(request) + body, nav=_nav(user), who=user.label, csrf=user.csrf)
    return HTMLResponse(html, status_code=status_code)


def _redirect(path: str, *, msg: str | None = None, error: str | None = None) -> RedirectResponse:
    sep = "&" if "?" in path else "?"
    if msg:
        path += f"{sep}msg={quote(msg[:300], safe='')}"
    elif error:
        path += f"{sep}error={quote(error[:500], safe='')}"
    return RedirectResponse(path, status_code=303)


def _problem(answer: Answer, what: str) -> str:
    if answer.status == 403:
        return notice(f"You may not see {what}: {answer.error}", "error")
    if answer.status == 404:
        return notice(f"No {what} yet ({answer.error}).")
    return notice(f"Could not load {what}: {answer.error}", "error")


def _cycle_path(cycle_id: str, *rest: str) -> str:
    return "/".join([f"/console/cycles/{quote(cycle_id, safe='')}", *rest])


# -- sign-in --------------------------------------------------------------------------------------
def _dev_mode(settings: Settings) -> bool:
    return settings.env in ("dev", "test")


@router.get(
    "/sign-in",
    summary="Sign-in page: development personas (dev/test only) or a pasted bearer token",
    response_class=HTMLResponse,
    openapi_extra={"x-roles": ["public"]},
)
async def sign_in_page(request: Request, next: str | None = None, reason: str | None = None) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    target = e(safe_next(next))
    body = notice(reason[:300], "error") if reason else ""
    if _dev_mode(settings):
        personas = "".join(
            f'<form class="inline" method="post" action="/console/sign-in">'
            f'<input type="hidden" name="mode" value="dev"><input type="hidden" name="next" value="{target}">'
            f'<input type="hidden" name="sub" value="{e(sub)}"><input type="hidden" name="role" value="{e(role)}">'
            f'<input type="hidden" name="employee_id" value="{e(emp)}">'
            f'<input type="hidden" name="department_id" value="{e(dept)}">'
            f'<button type="submit" class="secondary">{e(label)}</button></form> '
            for label, sub, role, emp, dept in PERSONAS
        )
        options = "".join(f'<option value="{r}">{r}</option>' for r in DEV_ROLES)
        body += (
            '<section class="card"><h2>Development sign-in</h2>'
            f'<p class="muted">Embedded mode ({e(settings.env)}): a development token is minted for whoever you '
            "pick. Production accepts only tokens from your identity provider.</p>"
            f'<form method="post" action="/console/sign-in" data-testid="dev-sign-in">'
            f'<input type="hidden" name="mode" value="dev"><input type="hidden" name="next" value="{target}">'
            '<label>Subject <input name="sub" required maxlength="200" placeholder="e.g. E0164"></label>'
            f'<label>Role <select name="role">{options}</select></label>'
            '<label>Employee id <input name="employee_id" maxlength="64" placeholder="optional"></label>'
            '<label>Department id <input name="department_id" maxlength="64" placeholder="optional"></label>'
            '<button type="submit">Sign in</button></form>'
            f'<p class="muted">Sample organisation:</p><div>{personas}</div></section>'
        )
    body += (
        '<section class="card"><h2>Sign in with a token</h2>'
        '<form method="post" action="/console/sign-in" data-testid="token-sign-in">'
        f'<input type="hidden" name="mode" value="token"><input type="hidden" name="next" value="{target}">'
        '<label>Bearer token <textarea name="token" rows="3" cols="80" required></textarea></label>'
        '<button type="submit">Sign in</button></form></section>'
    )
    return HTMLResponse(layout(title="Sign in", body=body))


@router.post(
    "/sign-in",
    summary="Sign in: mint a development token (dev/test) or check a pasted one, then set the session cookie",
    openapi_extra={"x-roles": ["public"]},
)
async def sign_in(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    target = safe_next(form.get("next"))
    back = f"/console/sign-in?next={quote(target, safe='')}"
    if form.get("mode") == "dev":
        if not _dev_mode(settings):
            return _redirect(back, error="development sign-in is only available with TANDEM_ENV=dev or test")
        role = form.get("role", "")
        sub = form.get("sub", "").strip()
        if role not in DEV_ROLES or not sub:
            return _redirect(back, error="pick a subject and one of the roles " + ", ".join(DEV_ROLES))
        token = mint_token(
            settings,
            sub=sub[:200],
            roles=[role],
            employee_id=form.get("employee_id", "").strip()[:64] or None,
            department_id=form.get("department_id", "").strip()[:64] or None,
        )
    else:
        token = form.get("token", "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        try:
            request.app.state.token_verifier.verify(token)
        except Exception as exc:  # noqa: BLE001 - the reason goes back to the sign-in page
            return _redirect(back, error=f"that token was refused: {getattr(exc, 'detail', exc)}")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=settings.token_ttl_seconds,
        path="/console",
    )
    return response


@router.post("/sign-out", summary="Sign out: drop the session cookie", openapi_extra={"x-roles": ["public"]})
async def sign_out() -> Response:
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


# -- cycles ---------------------------------------------------------------------------------------
@router.get("", summary="Console home (redirects to the cycles)", **access(*PEOPLE))
async def home(user: Annotated[User, _user(*PEOPLE)]) -> Response:
    return RedirectResponse(
        "/console/ops" if user.has(Role.OPS) and not user.has(Role.HR_ADMIN) else "/console/cycles", status_code=303
    )


@router.get(
    "/cycles",
    summary="Cycle dashboard: every cycle with its status; HR creates and starts cycles",
    response_class=HTMLResponse,
    **access(*PEOPLE),
)
async def cycles_page(request: Request, user: Annotated[User, _user(*PEOPLE)]) -> HTMLResponse:
    api = Upstream(request, user.token)
    cycles = await api.get("cycles", "/v1/cycles", {"limit": 100})
    if not cycles.ok:
        return page(request, user, "Review cycles", _problem(cycles, "cycles"))
    rows = []
    for c in cycles.data["items"]:
        path = _cycle_path(c["cycle_id"])
        action = ""
        if user.has(Role.HR_ADMIN) and c["status"] == "draft":
            action = (
                f'<form class="inline" method="post" action="{e(path)}/start" data-testid="start-{e(c["cycle_id"])}">'
                f'<input type="hidden" name="csrf" value="{e(user.csrf)}">'
                '<select name="day_seconds" aria-label="pace"><option value="86400">real time</option>'
                '<option value="2">demo: 2 s per day</option></select> '
                '<button type="submit">Start cycle</button></form>'
            )
        stage = ""
        if c.get("schedule") and c["status"] == "active":
            today = datetime.now(UTC).date().isoformat()
            current = next((s for s in c["schedule"] if s["opens_on"] <= today < s["closes_on"]), None)
            stage = e(current["stage"]) if current else ""
        rows.append(
            [
                f'<a href="{e(path)}">{e(c["name"])}</a><div class="muted">{e(c["cycle_id"])}</div>',
                pill(c["status"]) + (f' <span class="muted">{stage}</span>' if stage else ""),
                f"{e(c['period_start'])} → {e(c['period_end'])}",
                e(", ".join(c["department_ids"])),
                fmt_num(c.get("participants"), 0),
                action,
            ]
        )
    body = (
        '<section class="card">'
        + table(["Cycle", "Status", "Period", "Departments", "People", ""], rows, empty="No cycles yet.")
        + "</section>"
    )
    if user.has(Role.HR_ADMIN):
        body += await _create_form(api, user)
    if user.principal.employee_id:
        body += '<p class="muted">Open a cycle, then "My page" for your goals, check-ins, feedback and result.</p>'
    return page(request, user, "Review cycles", body)


async def _create_form(api: Upstream, user: ConsoleUser) -> str:
    templates = await api.get("cycles", "/v1/templates", {"limit": 100})
    if not templates.ok or not templates.data["items"]:
        return notice("Create a cycle template first (tandem template create) to create cycles here.")
    options = "".join(
        f'<option value="{e(t["template_id"])}">{e(t["name"])} (v{e(t["version"])})</option>'
        for t in templates.data["items"]
    )
    year = datetime.now(UTC).year
    return (
        '<section class="card"><h2>New cycle (draft)</h2>'
        '<form method="post" action="/console/cycles" data-testid="create-cycle">'
        f'<input type="hidden" name="csrf" value="{e(user.csrf)}">'
        '<label>Name <input name="name" required maxlength="200"></label>'
        f'<label>Template <select name="template_id">{options}</select></label>'
        f'<label>Period <input type="date" name="period_start" value="{year}-01-01" required> → '
        f'<input type="date" name="period_end" value="{year}-12-31" required></label>'
        "<label>Departments (comma-separated ids; sub-departments take part too) "
        '<input name="department_ids" required placeholder="sales, finance" size="40"></label>'
        '<button type="submit">Create draft</button></form></section>'
    )


@router.post("/cycles", summary="Create a draft cycle (form of the dashboard)", **access(*HR))
async def create_cycle(request: Request, user: Annotated[User, _user(*HR)]) -> Response:
    form = await read_form(request)
    body = {
        "name": form.get("name", "").strip(),
        "template_id": form.get("template_id", ""),
        "period_start": form.get("period_start", ""),
        "period_end": form.get("period_end", ""),
        "department_ids": [d.strip() for d in form.get("department_ids", "").split(",") if d.strip()],
    }
    answer = await Upstream(request, user.token).post("cycles", "/v1/cycles", body)
    if not answer.ok:
        return _redirect("/console/cycles", error=answer.error)
    return _redirect("/console/cycles", msg=f"Created draft cycle {answer.data['name']} ({answer.data['cycle_id']})")


@router.post(
    "/cycles/{cycle_id}/start", summary="Start a draft cycle (freeze, distribute, start its workflow)", **access(*HR)
)
async def start_cycle(request: Request, cycle_id: CycleId, user: Annotated[User, _user(*HR)]) -> Response:
    form = await read_form(request)
    pace = form.get("day_seconds", "86400")
    answer = await Upstream(request, user.token).post(
        "cycles", f"/v1/cycles/{quote(cycle_id, safe='')}/start", params={"day_seconds": pace}
    )
    if not answer.ok:
        return _redirect("/console/cycles", error=answer.error)
    pending = [d["service"] for d in answer.data["distribution"] if d["status"] != "delivered"]
    message = f"Started {answer.data['name']}: {answer.data['participants']} participants"
    message += f"; snapshot still pending for {', '.join(pending)}" if pending else "; snapshot delivered everywhere"
    return _redirect("/console/cycles", msg=message)


@router.get(
    "/cycles/{cycle_id}",
    summary="One cycle: schedule, snapshot distribution, workflow progress",
    response_class=HTMLResponse,
    **access(*PEOPLE),
)
async def cycle_page(request: Request, cycle_id: CycleId, user: Annotated[User, _user(*PEOPLE)]) -> HTMLResponse:
    api = Upstream(request, user.token)
    cycle = await api.get("cycles", f"/v1/cycles/{quote(cycle_id, safe='')}")
    if not cycle.ok:
        return page(request, user, f"Cycle {cycle_id}", _problem(cycle, "this cycle"), status_code=cycle.status or 502)
    c = cycle.data
    schedule = table(
        ["Stage", "Opens", "Deadline", "Closes", "Reminders"],
        [
            [e(s["stage"]), e(s["opens_on"]), e(s["deadline"]), e(s["closes_on"]), e(", ".join(s["reminders"]))]
            for s in c["schedule"]
        ],
    )
    body = (
        f'<section class="card"><div class="grid"><div>Status<div class="kpi">{pill(c["status"])}</div></div>'
        f'<div>Participants<div class="kpi">{fmt_num(c.get("participants"), 0)}</div></div>'
        f'<div>Period<div class="kpi" style="font-size:1rem">{e(c["period_start"])} → {e(c["period_end"])}</div></div>'
        f"<div>Departments<div>{e(', '.join(c['department_ids']))}</div></div></div></section>"
        f'<section class="card"><h2>Schedule</h2>{schedule}</section>'
    )
    if c["distribution"]:
        body += (
            '<section class="card"><h2>Snapshot distribution</h2>'
            + table(
                ["Service", "Status", "Attempts", "Last error"],
                [
                    [e(d["service"]), pill(d["status"]), e(d["attempts"]), e(d["last_error"] or "")]
                    for d in c["distribution"]
                ],
            )
            + "</section>"
        )
    if user.has(*OPS_ROLES) and c["status"] not in ("draft",):
        status = await api.get("cycles", f"/v1/cycles/{quote(cycle_id, safe='')}/status")
        link = temporal_ui_link(request.app.state.settings, cycle_id)
        body += '<section class="card"><h2>Workflow</h2>'
        if status.ok:
            s = status.data
            body += (
                f"<p>Stage {pill(s['stage'])} · next deadline {fmt_dt(s['next_deadline'])}"
                f'{" · paused" if s["paused"] else ""} · <a href="{e(link)}">Temporal UI</a></p>'
            ) + _completion_table(s["departments"])
        else:
            body += notice(f"Workflow status unavailable: {status.error}", "error")
            body += f'<p><a href="{e(link)}">Open the cycle in the Temporal UI</a></p>'
        body += "</section>"
    return page(request, user, c["name"], body, cycle_id=cycle_id, active="overview")


def _completion_table(departments: list[dict[str, Any]]) -> str:
    return table(
        ["Department", "Done", "Pending", "Completion", "Outcome"],
        [
            [
                e(d["department_id"]),
                f"{e(d['done'])} / {e(d['total'])}",
                e(d["pending"]),
                meter(100 * d["done"] / d["total"] if d["total"] else None),
                e(d.get("outcome") or ""),
            ]
            for d in departments
        ],
        empty="No department has reported yet.",
    )


# -- goals ----------------------------------------------------------------------------------------
def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def _goal_node(node: dict[str, Any]) -> str:
    progress = node.get("progress")
    who = node.get("employee_id") or node.get("department_id") or "company"
    children = "".join(_goal_node(child) for child in node.get("children", []))
    actual = node.get("actual_value")
    return (
        f'<li><strong>{e(node["name"])}</strong> <span class="muted">{e(node["level"])} · {e(who)} · '
        f"weight {fmt_num(node['weight'])}</span> {pill(node['status'])} "
        f"{meter(None if progress is None else 100 * progress)} "
        f'<span class="muted">actual {fmt_num(actual)} / target {fmt_num(node["target_value"])} '
        f"{e(node['unit'])}</span>" + (f"<ul>{children}</ul>" if children else "") + "</li>"
    )


@router.get(
    "/cycles/{cycle_id}/goals",
    summary="Goal tree: objectives, company, department and individual goals",
    response_class=HTMLResponse,
    **access(*PEOPLE),
)
async def goals_page(
    request: Request,
    cycle_id: CycleId,
    user: Annotated[User, _user(*PEOPLE)],
    department_id: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    tree = await Upstream(request, user.token).get(
        "goals", f"/v1/cycles/{quote(cycle_id, safe='')}/tree", {"department_id": department_id}
    )
    if not tree.ok:
        return page(request, user, "Goal tree", _problem(tree, "the goal tree"), cycle_id=cycle_id, active="goals")
    t = tree.data
    parts = [
        f"<p>Company progress {meter(None if t['progress'] is None else 100 * t['progress'])}</p>",
        '<form method="get"><label>Department <input name="department_id" '
        f'value="{e(department_id or "")}" placeholder="all"></label> <button class="secondary">Filter</button></form>',
    ]
    for objective in t["objectives"]:
        kpis = "".join(_goal_node(k) for k in objective["kpis"])
        parts.append(
            f'<section class="card tree"><h2>{e(objective["name"])} <span class="muted">'
            f"{e(objective['perspective'])}</span> {meter(_percent(objective['progress']))}"
            f"</h2><ul>{kpis or '<li class=muted>No KPIs yet.</li>'}</ul></section>"
        )
    if not t["objectives"]:
        parts.append(notice("No objectives in this cycle yet (tandem goals load-sample --cycle …)."))
    return page(request, user, "Goal tree", "".join(parts), cycle_id=cycle_id, active="goals")


@router.get(
    "/cycles/{cycle_id}/approvals",
    summary="Goals waiting for the caller's approval (reports' submitted goals)",
    response_class=HTMLResponse,
    **access(*APPROVERS),
)
async def approvals_page(request: Request, cycle_id: CycleId, user: Annotated[User, _user(*APPROVERS)]) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}/goals"
    submitted, approved = await asyncio.gather(
        api.get("goals", base, {"status": "submitted", "limit": 500}),
        api.get("goals", base, {"status": "approved", "level": "individual", "limit": 50}),
    )
    if not submitted.ok:
        return page(
            request, user, "Goal approvals", _problem(submitted, "goals"), cycle_id=cycle_id, active="approvals"
        )
    own = user.principal.employee_id
    waiting = [g for g in submitted.data["items"] if not own or g.get("employee_id") != own]
    rows = []
    for g in waiting:
        action = _cycle_path(cycle_id, "goals", quote(g["goal_id"], safe=""))
        rows.append(
            [
                f'<strong>{e(g["name"])}</strong><div class="muted">{e(g["goal_id"])}</div>',
                e(g["level"]),
                e(g.get("employee_id") or g.get("department_id") or "company"),
                fmt_num(g["weight"]),
                f"{fmt_num(g['start_value'])} → {fmt_num(g['target_value'])} {e(g['unit'])}",
                button_form(f"{action}/approve", "Approve", csrf=user.csrf, test_id=f"approve-{g['goal_id']}")
                + f' <form class="inline" method="post" action="{e(action)}/return">'
                f'<input type="hidden" name="csrf" value="{e(user.csrf)}">'
                '<input name="comment" placeholder="why it goes back" required maxlength="500"> '
                '<button type="submit" class="secondary">Return</button></form>',
            ]
        )
    body = (
        '<section class="card">'
        + table(["Goal", "Level", "Owner", "Weight", "Target", ""], rows, empty="Nothing is waiting for your approval.")
        + "</section>"
    )
    if approved.ok and approved.data["items"]:
        body += (
            '<section class="card"><h2>Approved</h2>'
            + table(
                ["Goal", "Owner", "By"],
                [
                    [e(g["name"]), e(g.get("employee_id")), e(g.get("status_changed_by"))]
                    for g in approved.data["items"]
                ],
            )
            + "</section>"
        )
    return page(request, user, "Goal approvals", body, cycle_id=cycle_id, active="approvals")


async def _goal_transition(request: Request, user: ConsoleUser, cycle_id: str, goal_id: str, action: str) -> Response:
    form = await read_form(request)
    body = {"comment": form.get("comment", "").strip()} if action == "return" else None
    answer = await Upstream(request, user.token).post(
        "goals", f"/v1/cycles/{quote(cycle_id, safe='')}/goals/{quote(goal_id, safe='')}/{action}", body
    )
    back = _cycle_path(cycle_id, "approvals")
    if not answer.ok:
        return _redirect(back, error=answer.error)
    verb = "Approved" if action == "approve" else "Returned"
    return _redirect(back, msg=f"{verb} goal '{answer.data['name']}' ({goal_id})")


@router.post("/cycles/{cycle_id}/goals/{goal_id}/approve", summary="Approve a submitted goal", **access(*APPROVERS))
async def approve_goal(
    request: Request, cycle_id: CycleId, goal_id: ItemId, user: Annotated[User, _user(*APPROVERS)]
) -> Response:
    return await _goal_transition(request, user, cycle_id, goal_id, "approve")


@router.post(
    "/cycles/{cycle_id}/goals/{goal_id}/return", summary="Return a submitted goal with a comment", **access(*APPROVERS)
)
async def return_goal(
    request: Request, cycle_id: CycleId, goal_id: ItemId, user: Annotated[User, _user(*APPROVERS)]
) -> Response:
    return await _goal_transition(request, user, cycle_id, goal_id, "return")


# -- tracking -------------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/progress",
    summary="KPI progress charts: attainment per KPI, trends, departments",
    response_class=HTMLResponse,
    **access(*PEOPLE),
)
async def progress_page(
    request: Request,
    cycle_id: CycleId,
    user: Annotated[User, _user(*PEOPLE)],
    department_id: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    progress, departments = await asyncio.gather(
        api.get("tracking", f"{base}/progress", {"department_id": department_id, "limit": 200}),
        api.get("tracking", f"{base}/departments/progress"),
    )
    if not progress.ok:
        return page(
            request, user, "KPI progress", _problem(progress, "KPI progress"), cycle_id=cycle_id, active="progress"
        )
    items: list[dict[str, Any]] = progress.data["items"]
    shared = [k for k in items if k["level"] in ("company", "department")] or items
    shown = shared[:25]
    trends = await asyncio.gather(
        *(api.get("tracking", f"{base}/kpis/{quote(k['kpi_id'], safe='')}/progress", {"buckets": 12}) for k in shown)
    )
    chart = bar_chart(
        [Bar(k["name"], k["attainment_pct"], "stale" if k["stale"] else "") for k in shown],
        title="KPI attainment",
    )
    rows = []
    for k, trend in zip(shown, trends, strict=True):
        points = [p["value"] for p in (trend.data.get("trend") or [])] if trend.ok else []
        rows.append(
            [
                f'{e(k["name"])}<div class="muted">{e(k["metric"])} · owner {e(k["owner_department_id"])}</div>',
                f"{fmt_num(k['current_value'])} / {fmt_num(k['target_value'])} {e(k['unit'])}",
                meter(k["attainment_pct"]),
                sparkline(points),
                pill("stale" if k["stale"] else "fresh") + f' <span class="muted">due {fmt_dt(k["due_at"])}</span>',
            ]
        )
    body = (
        f'<p class="muted">As of {fmt_dt(progress.data["as_of"])} · {e(progress.data["total"])} KPI(s) '
        "in your scope</p>"
        f'<section class="card"><h2>Attainment</h2>{chart}</section>'
        '<section class="card"><h2>KPIs</h2>'
        + table(["KPI", "Actual / target", "Attainment", "Trend", "Data"], rows, empty="No KPIs registered yet.")
        + "</section>"
    )
    if departments.ok and departments.data:
        body += (
            '<section class="card"><h2>By department</h2>'
            + bar_chart(
                [
                    Bar(
                        d["department_id"],
                        d["avg_attainment_pct"],
                        f"({d['with_data']}/{d['kpi_count']} with data, {d['stale_count']} stale)",
                    )
                    for d in departments.data
                ],
                title="Department attainment",
            )
            + "</section>"
        )
    return page(request, user, "KPI progress", body, cycle_id=cycle_id, active="progress")


# -- evaluation -----------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/calibration",
    summary="Calibration: rating distribution against the guideline, before and after, audit trail",
    response_class=HTMLResponse,
    **access(*CALIBRATORS),
)
async def calibration_page(
    request: Request, cycle_id: CycleId, user: Annotated[User, _user(*CALIBRATORS)]
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    distribution, adjustments, results = await asyncio.gather(
        api.get("evaluation", f"{base}/calibration/distribution"),
        api.get("evaluation", f"{base}/calibration/adjustments", {"limit": 500}),
        api.get("evaluation", f"{base}/results", {"limit": 500}),
    )
    if not distribution.ok:
        return page(
            request,
            user,
            "Calibration",
            _problem(distribution, "the rating distribution"),
            cycle_id=cycle_id,
            active="calibration",
        )
    bands = [b["label"] for b in distribution.data["bands"]]
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    if results.ok:
        for r in results.data:
            if r.get("computed_rating"):
                before[r["computed_rating"]] += 1
            if r.get("rating"):
                after[r["rating"]] += 1
    else:
        after.update({b["label"]: b["count"] for b in distribution.data["bands"]})
    chart = grouped_bar_chart(
        bands,
        [
            ("before calibration", "#9aa7bd", [before[b] for b in bands]),
            ("after calibration", "#1f5fbf", [after[b] for b in bands]),
        ],
        limits=[b.get("max_count") for b in distribution.data["bands"]],
        title="Rating distribution before and after calibration",
    )
    violations = "".join(notice(v, "error") for v in distribution.data["violations"])
    guideline = table(
        ["Band", "People", "Share", "Guideline", "Max people"],
        [
            [
                e(b["label"]),
                e(b["count"]),
                f"{100 * b['share']:.0f}%",
                e(
                    " ".join(
                        x
                        for x in (
                            f"≤ {100 * b['max_share']:.0f}%" if b.get("max_share") is not None else "",
                            f"≥ {100 * b['min_share']:.0f}%" if b.get("min_share") else "",
                        )
                        if x
                    )
                    or "—"
                ),
                fmt_num(b.get("max_count"), 0),
            ]
            for b in distribution.data["bands"]
        ],
    )
    trail = (
        _problem(adjustments, "the audit trail")
        if not adjustments.ok
        else table(
            ["Employee", "Before", "After", "Reason", "By", "When"],
            [
                [
                    e(a["employee_id"]),
                    f"{fmt_num(a['before_score'], 2)} {e(a['before_rating'] or '')}",
                    f"{fmt_num(a['after_score'], 2)} {e(a['after_rating'])}",
                    e(a["reason"]),
                    e(a["actor"])
                    + (f' <span class="muted">appeal {e(a["appeal_id"])}</span>' if a.get("appeal_id") else ""),
                    fmt_dt(a["created_at"]),
                ]
                for a in adjustments.data
            ],
            empty="No calibration adjustments yet.",
        )
    )
    body = (
        f'<section class="card"><h2>Distribution ({e(distribution.data["total"])} rated)</h2>{chart}'
        f'{violations}{guideline}</section><section class="card"><h2>Before / after</h2>{trail}</section>'
    )
    return page(request, user, "Calibration", body, cycle_id=cycle_id, active="calibration")


# -- results --------------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/collaboration",
    summary="Cross-department collaboration heatmap, strongest and weakest pairs, suggested actions",
    response_class=HTMLResponse,
    **access(*LEADERS),
)
async def collaboration_page(
    request: Request, cycle_id: CycleId, user: Annotated[User, _user(*LEADERS)]
) -> HTMLResponse:
    report = await Upstream(request, user.token).get(
        "results", f"/v1/cycles/{quote(cycle_id, safe='')}/collaboration-report"
    )
    if not report.ok:
        return page(
            request,
            user,
            "Collaboration",
            _problem(report, "the collaboration report"),
            cycle_id=cycle_id,
            active="collaboration",
        )
    r = report.data
    names: dict[str, str] = r["departments"]
    raters = sorted({c["rater_department_id"] for c in r["matrix"]})
    rated = sorted({c["rated_department_id"] for c in r["matrix"]})
    cells = {(c["rater_department_id"], c["rated_department_id"]): c for c in r["matrix"]}
    head = "".join(f"<th>{e(names.get(d, d))}</th>" for d in rated)
    rows = []
    for rater in raters:
        tds = []
        for target in rated:
            cell = cells.get((rater, target))
            if cell is None:
                tds.append('<td style="background:#f0f1f4">·</td>')
                continue
            tip = (
                f"responsiveness {cell['responsiveness']:.1f}, data quality {cell['data_quality']:.1f}, "
                f"reliability {cell['reliability']:.1f}, {cell['ratings']} rating(s)"
            )
            tds.append(
                f'<td style="background:{heat_colour(cell["overall"])}" title="{e(tip)}">{cell["overall"]:.1f}</td>'
            )
        rows.append(f"<tr><th>{e(names.get(rater, rater))}</th>{''.join(tds)}</tr>")
    heatmap = (
        (
            '<table class="heat"><thead><tr><th>rater ↓ / rated →</th>'
            + head
            + "</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
        if rows
        else '<p class="muted">No collaboration ratings yet.</p>'
    )

    def pairs(items: list[dict[str, Any]]) -> str:
        return table(
            ["Pair", "Overall", "Responsiveness", "Data quality", "Reliability"],
            [
                [
                    e(" ↔ ".join(p["department_names"])),
                    fmt_num(p["overall"], 2),
                    fmt_num(p["responsiveness"], 2),
                    fmt_num(p["data_quality"], 2),
                    fmt_num(p["reliability"], 2),
                ]
                for p in items
            ],
        )

    suggestions = table(
        ["Pair", "Weakest dimension", "Actions"],
        [
            [
                e(" ↔ ".join(s["department_names"])),
                f"{e(s['weakest_dimension'])} ({fmt_num(s['weakest_dimension_score'], 2)})",
                "<br>".join(e(a) for a in s["actions"]),
            ]
            for s in r["suggestions"]
        ],
        empty="No suggestions.",
    )
    notes = "".join(notice(n) for n in r.get("notes", []))
    body = (
        f'{notes}<section class="card"><h2>Heatmap (overall, 1–5)</h2>{heatmap}</section>'
        f'<div class="grid"><section class="card"><h2>Strongest pairs</h2>{pairs(r["strongest_pairs"])}</section>'
        f'<section class="card"><h2>Weakest pairs</h2>{pairs(r["weakest_pairs"])}</section></div>'
        f'<section class="card"><h2>Suggested actions</h2>{suggestions}</section>'
    )
    return page(request, user, "Collaboration", body, cycle_id=cycle_id, active="collaboration")


# -- one employee ---------------------------------------------------------------------------------
@router.get("/cycles/{cycle_id}/me", summary="Your own page in this cycle (redirect)", **access(*PEOPLE))
async def my_page(cycle_id: CycleId, user: Annotated[User, _user(*PEOPLE)]) -> Response:
    if not user.principal.employee_id:
        return _redirect(_cycle_path(cycle_id), error="your token has no employee_id, so there is no personal page")
    return RedirectResponse(_cycle_path(cycle_id, "people", quote(user.principal.employee_id, safe="")), 303)


@router.get(
    "/cycles/{cycle_id}/people/{employee_id}",
    summary="One employee: goals, check-ins, feedback, result with acknowledge and appeal",
    response_class=HTMLResponse,
    **access(*PEOPLE),
)
async def person_page(
    request: Request, cycle_id: CycleId, employee_id: ItemId, user: Annotated[User, _user(*PEOPLE)]
) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    emp = quote(employee_id, safe="")
    person, goals, feedback, result, appeals = await asyncio.gather(
        api.get("cycles", f"/v1/org/employees/{emp}"),
        api.get("goals", f"{base}/goals", {"employee_id": employee_id, "level": "individual", "limit": 100}),
        api.get("feedback", f"{base}/feedback", {"recipient_id": employee_id, "limit": 50}),
        api.get("feedback", f"{base}/results/{emp}"),
        api.get("feedback", f"{base}/appeals", {"limit": 100}),
    )
    if not person.ok:
        return page(
            request,
            user,
            f"Employee {employee_id}",
            _problem(person, "this employee"),
            cycle_id=cycle_id,
            active="me",
            status_code=person.status if person.status in (403, 404) else 502,
        )
    p = person.data
    own = user.principal.employee_id == employee_id
    path = _cycle_path(cycle_id, "people", emp)
    body = f'<p class="muted">{e(p["job_title"])} · {e(p["department_id"])} · manager {e(p["manager_id"])}</p>'

    # goals and their check-ins
    body += '<section class="card"><h2>Goals</h2>'
    if goals.ok:
        items = goals.data["items"]
        check_ins = await asyncio.gather(
            *(
                api.get("tracking", f"{base}/kpis/{quote(g['goal_id'], safe='')}/check-ins", {"limit": 3})
                for g in items[:10]
            )
        )
        rows = []
        for i, g in enumerate(items):
            latest = ""
            if i < len(check_ins) and not check_ins[i].ok:
                latest = (
                    '<span class="muted">not tracked yet</span>'
                    if check_ins[i].status == 404
                    else e(check_ins[i].error)
                )
            elif i < len(check_ins):
                ci = check_ins[i].data
                latest = (
                    "".join(
                        f'<div>“{e(c["comment"])}” <span class="muted">confidence {e(c["confidence"])}/5 · '
                        f"{fmt_dt(c['created_at'])}</span></div>"
                        for c in ci["items"]
                    )
                    or '<span class="muted">none yet</span>'
                )
                if ci.get("overdue"):
                    latest += f'<div>{pill("overdue")} <span class="muted">due {fmt_dt(ci["next_due_at"])}</span></div>'
            rows.append(
                [
                    f'<strong>{e(g["name"])}</strong><div class="muted">{e(g["goal_id"])}</div>',
                    pill(g["status"]),
                    fmt_num(g["weight"]),
                    f"{fmt_num(g['start_value'])} → {fmt_num(g['target_value'])} {e(g['unit'])}",
                    latest,
                ]
            )
        body += table(["Goal", "Status", "Weight", "Target", "Check-ins"], rows, empty="No individual goals yet.")
        if items and user.has(*CHECK_IN_ROLES):
            options = "".join(f'<option value="{e(g["goal_id"])}">{e(g["name"])}</option>' for g in items)
            body += (
                f'<form method="post" action="{e(path)}/check-in" data-testid="check-in">'
                f'<input type="hidden" name="csrf" value="{e(user.csrf)}"><h2>Check in</h2>'
                f'<label>Goal <select name="kpi_id">{options}</select></label>'
                '<label>Comment <input name="comment" required maxlength="4000" size="60"></label>'
                '<label>Confidence <select name="confidence">'
                + "".join(f'<option value="{n}"{" selected" if n == 3 else ""}>{n}</option>' for n in range(1, 6))
                + '</select></label><button type="submit">Add check-in</button></form>'
            )
    else:
        body += _problem(goals, "goals")
    body += "</section>"

    # result, acknowledgement, appeal
    body += '<section class="card"><h2>Result</h2>'
    if result.ok:
        r = result.data
        body += (
            f'<div class="grid"><div>Final score<div class="kpi">{fmt_num(r["final_score"], 2)}</div></div>'
            f'<div>Rating<div class="kpi" data-testid="rating">{e(r["rating"])}</div></div>'
            f"<div>Released<div>{fmt_dt(r['released_at'])}</div></div>"
            f"<div>Appeal until<div>{fmt_dt(r['appeal_deadline'])}</div></div></div>"
        )
        if r["acknowledged_at"]:
            body += f'<p data-testid="acknowledged">{pill("acknowledged")} on {fmt_dt(r["acknowledged_at"])}</p>'
        elif own:
            body += button_form(f"{path}/acknowledge", "Acknowledge my result", csrf=user.csrf, test_id="acknowledge")
        else:
            body += f"<p>{pill('not acknowledged')}</p>"
        mine = [a for a in appeals.data if a["employee_id"] == employee_id] if appeals.ok else []
        if mine:
            body += "<h2>Appeals</h2>" + table(
                ["Submitted", "Reason", "Status", "HR due", "Resolution"],
                [
                    [
                        fmt_dt(a["submitted_at"]),
                        e(a["reason"]),
                        pill(a["status"]),
                        fmt_dt(a["hr_due_at"]),
                        e(a["resolution_note"] or ""),
                    ]
                    for a in mine
                ],
            )
        open_appeal = any(a["status"] in ("submitted", "under_review") for a in mine)
        deadline = r.get("appeal_deadline")
        if own and not open_appeal and deadline and deadline > datetime.now(UTC).isoformat():
            body += (
                f'<form method="post" action="{e(path)}/appeal" data-testid="appeal">'
                f'<input type="hidden" name="csrf" value="{e(user.csrf)}"><h2>Appeal</h2>'
                "<label>Why do you contest this result? (at least 10 characters)<br>"
                '<textarea name="reason" rows="3" cols="70" minlength="10" maxlength="2000" required>'
                "</textarea></label>"
                '<button type="submit" class="secondary">Submit appeal</button></form>'
            )
    elif result.status == 404:
        body += notice("No released result yet: results are released after calibration closes.")
    else:
        body += _problem(result, "the result")
    body += "</section>"

    # feedback
    body += '<section class="card"><h2>Feedback and kudos</h2>'
    if feedback.ok:
        body += table(
            ["From", "Kind", "Message", "When"],
            [[e(f["author_id"]), pill(f["kind"]), e(f["message"]), fmt_dt(f["created_at"])] for f in feedback.data],
            empty="No feedback yet.",
        )
    else:
        body += _problem(feedback, "feedback")
    body += "</section>"
    return page(request, user, p["name"], body, cycle_id=cycle_id, active="me" if own else "")


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/acknowledge",
    summary="Acknowledge your own released result",
    **access(*PEOPLE),
)
async def acknowledge(
    request: Request, cycle_id: CycleId, employee_id: ItemId, user: Annotated[User, _user(*PEOPLE)]
) -> Response:
    emp = quote(employee_id, safe="")
    answer = await Upstream(request, user.token).post(
        "feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/results/{emp}/acknowledge"
    )
    back = _cycle_path(cycle_id, "people", emp)
    return (
        _redirect(back, error=answer.error) if not answer.ok else _redirect(back, msg="Result acknowledged. Thank you.")
    )


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/appeal", summary="Appeal your own released result", **access(*PEOPLE)
)
async def appeal(
    request: Request, cycle_id: CycleId, employee_id: ItemId, user: Annotated[User, _user(*PEOPLE)]
) -> Response:
    form = await read_form(request)
    emp = quote(employee_id, safe="")
    back = _cycle_path(cycle_id, "people", emp)
    if user.principal.employee_id != employee_id:
        return _redirect(back, error="only the employee may appeal their own result")
    answer = await Upstream(request, user.token).post(
        "feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/appeals", {"reason": form.get("reason", "").strip()}
    )
    return _redirect(back, error=answer.error) if not answer.ok else _redirect(back, msg="Appeal submitted to HR.")


@router.post(
    "/cycles/{cycle_id}/people/{employee_id}/check-in",
    summary="Check in on one of the employee's goals",
    **access(*CHECK_IN_ROLES),
)
async def check_in(
    request: Request, cycle_id: CycleId, employee_id: ItemId, user: Annotated[User, _user(*CHECK_IN_ROLES)]
) -> Response:
    form = await read_form(request)
    emp = quote(employee_id, safe="")
    confidence = form.get("confidence", "3")
    body = {
        "kpi_id": form.get("kpi_id", ""),
        "comment": form.get("comment", "").strip(),
        "confidence": int(confidence) if confidence.isdigit() else 0,
    }
    answer = await Upstream(request, user.token).post(
        "tracking", f"/v1/cycles/{quote(cycle_id, safe='')}/check-ins", body
    )
    back = _cycle_path(cycle_id, "people", emp)
    return _redirect(back, error=answer.error) if not answer.ok else _redirect(back, msg="Check-in recorded.")


# -- ops ------------------------------------------------------------------------------------------
@router.get(
    "/ops",
    summary="Ops view: what is stuck, where and why, across running cycles",
    response_class=HTMLResponse,
    **access(*OPS_ROLES),
)
async def ops_page(
    request: Request,
    user: Annotated[User, _user(*OPS_ROLES)],
    cycle_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> HTMLResponse:
    state = request.app.state
    async with state.sessions() as session:
        overview = await build_overview(
            session=session, settings=state.settings, http=state.http, gateway=state.temporal, cycle_id=cycle_id
        )
    return page(request, user, "Operations", render_ops(overview))


def render_ops(o: OpsOverview) -> str:
    health = "".join(
        f'<div data-testid="health-{e(h.name)}">{pill("ok" if h.ok else "bad")} <strong>{e(h.name)}</strong>'
        f'<div class="muted">{e(h.detail)} · {h.latency_ms:.0f} ms</div></div>'
        for h in o.health
    )
    parts = [
        f'<p class="muted">Generated {fmt_dt(o.generated_at)} · <a href="{e(o.temporal_ui_url)}">Temporal UI</a></p>',
        f'<section class="card"><h2>Health</h2><div class="grid">{health}</div></section>',
    ]
    parts.append('<section class="card" data-testid="ingestion"><h2>Ingestion</h2>')
    if o.ingestion is not None:
        i = o.ingestion
        lag = "unknown" if i.total_lag is None else str(i.total_lag)
        parts.append(
            f'<div class="grid"><div>Consumer lag<div class="kpi">{e(lag)}</div>'
            f'<div class="muted">{e(i.consumer_group)} on {e(i.topic)}</div></div>'
            f'<div>DLQ depth<div class="kpi">{e(i.dead_letters)}</div></div>'
            f'<div>Events stored<div class="kpi">{e(i.events_stored)}</div></div>'
            f'<div>Unmapped events<div class="kpi">{e(i.unmapped_events)}</div></div></div>'
        )
        if i.lag_error:
            parts.append(notice(i.lag_error, "error"))
        parts.append(
            "<h2>Latest dead letters</h2>"
            + table(
                ["Reason", "Source", "Rejected"],
                [
                    [e(d.reason), f"{e(d.topic)}[{d.partition}]@{d.offset}", fmt_dt(d.rejected_at)]
                    for d in i.latest_dead_letters
                ],
                empty="The DLQ is empty.",
            )
        )
        parts.append(
            "<h2>Unmapped metrics</h2>"
            + table(
                ["Metric", "Department", "Events"],
                [[e(u.metric), e(u.department_id), e(u.events)] for u in i.unmapped_metrics],
                empty="Every metric maps to a KPI.",
            )
        )
    else:
        parts.append(notice(f"Ingestion figures unavailable: {o.ingestion_error}", "error"))
    parts.append("</section>")
    if not o.cycles:
        parts.append(notice("No running cycle."))
    for c in o.cycles:
        path = _cycle_path(c.cycle_id)
        parts.append(
            f'<section class="card" data-testid="cycle-{e(c.cycle_id)}"><h2><a href="{e(path)}">{e(c.name)}</a> '
            f'{pill(c.status)} <span class="muted">{e(c.cycle_id)}</span></h2>'
            f'<p><a href="{e(c.temporal_ui_url)}" data-testid="temporal-link">Workflows in the Temporal UI</a></p>'
        )
        if c.workflow is not None:
            w = c.workflow
            parts.append(
                f"<p>Stage {pill(w.stage)} · next deadline {fmt_dt(w.next_deadline)}"
                f"{' ' + pill('deadline passed') if w.deadline_passed else ''}{' · paused' if w.paused else ''}"
                f" · done: {e(', '.join(w.stages_done) or '—')}</p>"
                + _completion_table([d.model_dump() for d in w.departments])
            )
        else:
            parts.append(notice(f"Workflow status unavailable: {c.workflow_error}", "error"))
        parts.append(
            '<h2>Overdue departments</h2><div data-testid="overdue">'
            + table(
                ["Department", "Stage", "Pending", "Deadline", "Escalated", "Why"],
                [
                    [
                        f"<strong>{e(d.department_id)}</strong>",
                        e(d.stage),
                        e(d.pending),
                        fmt_dt(d.deadline),
                        e(", ".join(d.escalated_to) or "not yet")
                        + f' <span class="muted">{fmt_dt(d.last_escalated_at)}</span>',
                        e(d.reason),
                    ]
                    for d in c.overdue_departments
                ],
                empty="No department is overdue.",
            )
            + "</div>"
        )
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(c.notification_counts.items())) or "none"
        parts.append(
            f'<h2>Escalations</h2><p class="muted">Notifications sent: {e(counts)}</p>'
            + table(
                ["When", "Department", "Stage", "Kind", "To", "Message"],
                [
                    [
                        fmt_dt(x.created_at),
                        e(x.department_id),
                        e(x.stage),
                        pill(x.kind),
                        e(", ".join(x.recipients)),
                        e(x.message),
                    ]
                    for x in c.escalations
                ],
                empty="No escalations.",
            )
        )
        parts.append("<h2>Stale KPIs by data owner</h2>")
        if c.stale_kpis_error:
            parts.append(notice(f"Stale KPIs unavailable: {c.stale_kpis_error}", "error"))
        else:
            parts.append(
                table(
                    ["Data owner", "KPI", "Metric", "Last data", "Was due"],
                    [
                        [e(s.department_id), e(k.name), e(k.metric), fmt_dt(k.last_event_at), fmt_dt(k.due_at)]
                        for s in c.stale_kpis
                        for k in s.kpis
                    ],
                    empty="No stale KPIs.",
                )
            )
        parts.append("</section>")
    return "".join(parts)
