"""The console's pages: server-rendered HTML over the service APIs, called with the user's token.

Each route declares its roles with ``console_requires`` (the same roles as the API it reads)
and lists them as ``x-roles``. Forms post back here, the page calls the API, then redirects
(post/redirect/get) with a short message.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
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
ONE_ON_ONE_READERS = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
"""Who may list 1:1s (feedback ``GET /one-on-ones``): the parties, and HR reads."""
ONE_ON_ONE_PARTIES = (Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
"""Who may create and change 1:1s and their action items (the feedback API then checks the parties)."""
OPEN_APPEALS = ("submitted", "under_review")
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
AppealId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The appeal (feedback service id).")]
RowId = Annotated[int, Path(ge=1, le=2_147_483_647, description="A 1:1 or action item id (feedback service).")]


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
    if user.has(*HR):
        items.append(("appeals", "Appeals"))
    if user.has(*ONE_ON_ONE_READERS):
        items.append(("one-on-ones", "1:1s"))
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
    if user.has(*HR):
        body += (
            '<section class="card"><h2>Appeals</h2><p>Employees\' appeals of their released results, with the '
            f'appeal window and HR\'s resolution deadline: <a href="{e(_cycle_path(cycle_id, "appeals"))}" '
            'data-testid="appeals-link">review and resolve appeals</a>.</p></section>'
        )
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
    person, goals, feedback, result, appeals, meetings = await asyncio.gather(
        api.get("cycles", f"/v1/org/employees/{emp}"),
        api.get("goals", f"{base}/goals", {"employee_id": employee_id, "level": "individual", "limit": 100}),
        api.get("feedback", f"{base}/feedback", {"recipient_id": employee_id, "limit": 50}),
        api.get("feedback", f"{base}/results/{emp}"),
        api.get("feedback", f"{base}/appeals", {"limit": 100}),
        api.get("feedback", f"{base}/one-on-ones", {"limit": 500}) if user.has(*ONE_ON_ONE_READERS) else _not_asked(),
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

    # 1:1s of this employee (as report or as manager)
    if user.has(*ONE_ON_ONE_READERS):
        body += '<section class="card" data-testid="one-on-ones"><h2>1:1s</h2>'
        if meetings.ok:
            theirs = [m for m in meetings.data if employee_id in (m["employee_id"], m["manager_id"])]
            body += _one_on_ones(user, cycle_id, theirs, back=path)
        else:
            body += _problem(meetings, "1:1s")
        me = user.principal.employee_id
        if me and user.has(*ONE_ON_ONE_PARTIES):
            if own and p.get("manager_id"):
                body += _one_on_one_form(
                    user, cycle_id, back=path, fixed=(employee_id, f"you with your manager {p['manager_id']}")
                )
            elif not own and user.has(Role.MANAGER):
                body += _one_on_one_form(user, cycle_id, back=path, fixed=(employee_id, f"you with {p['name']}"))
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


# -- appeals (HR) ---------------------------------------------------------------------------------
async def _not_asked() -> Answer:
    """Stands in for a call the page does not make for this role."""
    return Answer(0, [], None)


def _history(events: list[dict[str, Any]]) -> str:
    rows = [
        [
            fmt_dt(ev["at"]),
            e(ev["actor"]),
            e(ev["action"]),
            f"{e(ev['from_status'] or '—')} → {e(ev['to_status'])}",
            e(ev["note"] or ""),
        ]
        for ev in events
    ]
    return (
        f"<details><summary>History ({len(rows)} step{'s' if len(rows) != 1 else ''})</summary>"
        + table(["When", "Who", "Action", "Status", "Note"], rows, empty="No steps recorded.")
        + "</details>"
    )


def _resolve_form(user: ConsoleUser, action: str, appeal: dict[str, Any], ratings: list[str]) -> str:
    options = "".join(f'<option value="{o}">{o}</option>' for o in ("upheld", "adjusted", "rejected"))
    choices = "".join(f'<option value="{e(r)}"></option>' for r in ratings)
    return (
        f'<form method="post" action="{e(action)}" data-testid="resolve-{e(appeal["id"])}">'
        f'<input type="hidden" name="csrf" value="{e(user.csrf)}">'
        f'<label>Outcome <select name="outcome">{options}</select></label>'
        "<label>Note (kept with the appeal; the employee sees it)<br>"
        '<textarea name="note" rows="2" cols="70" maxlength="2000" required></textarea></label>'
        "<label>New score and rating (only when adjusted) "
        f'<input name="new_score" inputmode="decimal" size="6" placeholder="{fmt_num(appeal["previous_score"], 2)}"> '
        f'<input name="new_rating" list="ratings-{e(appeal["id"])}" size="14" maxlength="32" '
        f'placeholder="{e(appeal["previous_rating"])}"><datalist id="ratings-{e(appeal["id"])}">{choices}</datalist>'
        '</label><button type="submit">Resolve</button></form>'
    )


@router.get(
    "/cycles/{cycle_id}/appeals",
    summary="HR appeals: status, appeal window, HR resolution deadline (overdue highlighted), history; review, resolve",
    response_class=HTMLResponse,
    **access(*HR),
)
async def appeals_page(request: Request, cycle_id: CycleId, user: Annotated[User, _user(*HR)]) -> HTMLResponse:
    api = Upstream(request, user.token)
    base = f"/v1/cycles/{quote(cycle_id, safe='')}"
    appeals, overdue, results, config = await asyncio.gather(
        api.get("feedback", f"{base}/appeals", {"limit": 500}),
        api.get("feedback", "/v1/appeals/overdue", {"cycle_id": cycle_id, "limit": 500}),
        api.get("feedback", f"{base}/results", {"limit": 500}),
        api.get("feedback", f"{base}/config"),
    )
    if not appeals.ok:
        return page(request, user, "Appeals", _problem(appeals, "the appeals"), cycle_id=cycle_id, active="appeals")
    items: list[dict[str, Any]] = appeals.data
    if overdue.ok:  # the feedback service's clock decides what is late
        late = {a["id"] for a in overdue.data}
    else:
        now = datetime.now(UTC).isoformat()
        late = {a["id"] for a in items if a["status"] in OPEN_APPEALS and a["hr_due_at"] < now}
    window = {r["employee_id"]: r.get("appeal_deadline") for r in results.data} if results.ok else {}
    ratings = sorted({r["rating"] for r in results.data}) if results.ok else []
    open_items = sorted((a for a in items if a["status"] in OPEN_APPEALS), key=lambda a: a["hr_due_at"])
    closed = [a for a in items if a["status"] not in OPEN_APPEALS]
    body = (
        f'<section class="card"><div class="grid"><div>Open<div class="kpi" data-testid="open-count">'
        f"{len(open_items)}</div></div>"
        f'<div>Overdue for HR<div class="kpi" data-testid="overdue-count">{len(late)}</div></div>'
        f'<div>Resolved<div class="kpi">{len(closed)}</div></div>'
    )
    if config.ok:
        body += (
            f"<div>Rules<div>appeals within {e(config.data['appeal_window_days'])} days of release; "
            f"HR resolves within {e(config.data['hr_resolution_days'])} days of submission</div></div>"
        )
    body += "</div></section>"
    if not overdue.ok:
        body += notice(f"Overdue appeals computed locally: {overdue.error}")
    if not results.ok:
        body += notice(f"Appeal windows unavailable: {results.error}")
    for a in open_items:
        action = _cycle_path(cycle_id, "appeals", str(a["id"]))
        is_late = a["id"] in late
        person = _cycle_path(cycle_id, "people", quote(a["employee_id"], safe=""))
        due = fmt_dt(a["hr_due_at"]) + (f" {pill('overdue')}" if is_late else "")
        body += (
            f'<section class="card{" overdue" if is_late else ""}" data-testid="appeal-{e(a["id"])}">'
            f'<h2>Appeal {e(a["id"])}: <a href="{e(person)}">{e(a["employee_id"])}</a> '
            f'<span class="muted">{e(a["department_id"])}</span> {pill(a["status"])}</h2>'
            f"<p>“{e(a['reason'])}”</p>"
            f'<div class="grid"><div>Result appealed<div>{fmt_num(a["previous_score"], 2)} '
            f"{e(a['previous_rating'])}</div></div>"
            f"<div>Submitted<div>{fmt_dt(a['submitted_at'])}</div></div>"
            f"<div>Appeal window ends<div>{fmt_dt(window.get(a['employee_id']))}</div></div>"
            f'<div>HR must resolve by<div data-testid="hr-due">{due}</div></div></div>' + _history(a["events"])
        )
        if a["status"] == "submitted":
            body += (
                "<p>"
                + button_form(
                    f"{action}/review", "Take under review", csrf=user.csrf, secondary=True, test_id=f"review-{a['id']}"
                )
                + "</p>"
            )
        body += _resolve_form(user, f"{action}/resolve", a, ratings) + "</section>"
    if not open_items:
        body += notice("No open appeal.")
    body += (
        '<section class="card"><h2>Resolved</h2>'
        + table(
            ["Appeal", "Employee", "Outcome", "Result", "Resolved", "Note", "History"],
            [
                [
                    e(a["id"]),
                    e(a["employee_id"]),
                    pill(a["status"]),
                    f"{fmt_num(a['previous_score'], 2)} {e(a['previous_rating'])}"
                    + (f" → {fmt_num(a['new_score'], 2)} {e(a['new_rating'])}" if a["status"] == "adjusted" else ""),
                    f"{fmt_dt(a['resolved_at'])} by {e(a['resolved_by'])}"
                    + (f" {pill('late')}" if a["resolved_at"] and a["resolved_at"] > a["hr_due_at"] else ""),
                    e(a["resolution_note"] or ""),
                    _history(a["events"]),
                ]
                for a in closed
            ],
            empty="No appeal resolved yet.",
        )
        + "</section>"
    )
    return page(request, user, "Appeals", body, cycle_id=cycle_id, active="appeals")


@router.post("/cycles/{cycle_id}/appeals/{appeal_id}/review", summary="HR takes an appeal under review", **access(*HR))
async def review_appeal(
    request: Request, cycle_id: CycleId, appeal_id: AppealId, user: Annotated[User, _user(*HR)]
) -> Response:
    answer = await Upstream(request, user.token).post("feedback", f"/v1/appeals/{appeal_id}/review")
    back = _cycle_path(cycle_id, "appeals")
    if not answer.ok:
        return _redirect(back, error=answer.error)
    return _redirect(back, msg=f"Appeal {appeal_id} of {answer.data['employee_id']} is under review.")


@router.post(
    "/cycles/{cycle_id}/appeals/{appeal_id}/resolve",
    summary="HR resolves an appeal: upheld, adjusted (new score and rating) or rejected, with a note",
    **access(*HR),
)
async def resolve_appeal(
    request: Request, cycle_id: CycleId, appeal_id: AppealId, user: Annotated[User, _user(*HR)]
) -> Response:
    form = await read_form(request)
    back = _cycle_path(cycle_id, "appeals")
    outcome = form.get("outcome", "")
    score, rating = form.get("new_score", "").strip(), form.get("new_rating", "").strip()
    body: dict[str, Any] = {"outcome": outcome, "note": form.get("note", "").strip()}
    if outcome == "adjusted":
        try:
            body["new_score"] = float(score.replace(",", "."))
        except ValueError:
            return _redirect(back, error=f"an adjusted appeal needs a new score as a number (e.g. 3.4), not {score!r}")
        if not rating:
            return _redirect(back, error="an adjusted appeal needs a new rating (e.g. meets)")
        body["new_rating"] = rating
    elif score or rating:
        return _redirect(back, error=f"a new score and rating go only with the outcome 'adjusted', not {outcome!r}")
    answer = await Upstream(request, user.token).post("feedback", f"/v1/appeals/{appeal_id}/resolve", body)
    if not answer.ok:
        return _redirect(back, error=answer.error)
    a = answer.data
    change = f" to {fmt_num(a['new_score'], 2)} ({a['new_rating']})" if a["status"] == "adjusted" else ""
    return _redirect(back, msg=f"Appeal {appeal_id} of {a['employee_id']} resolved: {a['status']}{change}.")


# -- 1:1s -----------------------------------------------------------------------------------------
def _back_to(form: dict[str, str], cycle_id: str) -> str:
    """Where a 1:1 form returns: a page of this cycle (never elsewhere), else the 1:1s page."""
    back = safe_next(form.get("back"))
    prefix = _cycle_path(cycle_id)
    return back if back == prefix or back.startswith(prefix + "/") else _cycle_path(cycle_id, "one-on-ones")


def _one_on_ones(user: ConsoleUser, cycle_id: str, meetings: list[dict[str, Any]], *, back: str) -> str:
    """Each 1:1 with its agenda, notes and action items; its parties get the item forms."""
    if not meetings:
        return '<p class="muted">No 1:1 recorded yet.</p>'
    me = user.principal.employee_id
    today = datetime.now(UTC).date().isoformat()
    parts = []
    for m in meetings:
        party = bool(me) and me in (m["manager_id"], m["employee_id"]) and user.has(*ONE_ON_ONE_PARTIES)
        action = _cycle_path(cycle_id, "one-on-ones", str(m["id"]), "action-items")
        agenda = "".join(f"<li>{e(a)}</li>" for a in m["agenda"]) or '<li class="muted">no agenda</li>'
        rows = []
        for item in m["action_items"]:
            checked = " checked" if item["done"] else ""
            if party:
                done = (
                    f'<form class="inline" method="post" action="{e(action)}/{e(item["id"])}" '
                    f'data-testid="item-{e(item["id"])}"><input type="hidden" name="csrf" value="{e(user.csrf)}">'
                    f'<input type="hidden" name="back" value="{e(back)}"><input type="hidden" name="done" value="0">'
                    f'<label class="inline"><input type="checkbox" name="done" value="1"{checked}> done</label> '
                    '<button type="submit" class="secondary">Save</button></form>'
                )
            else:
                done = f'<input type="checkbox" disabled{checked} aria-label="done">'
            late = not item["done"] and item["due_date"] < today
            rows.append(
                [
                    e(item["description"]),
                    e(item["owner_id"]),
                    e(item["due_date"]) + (f" {pill('overdue')}" if late else ""),
                    done,
                ]
            )
        parts.append(
            f'<div class="card" data-testid="one-on-one-{e(m["id"])}" style="border-top:1px solid #e6e9ef;'
            f'padding-top:.5rem"><h3>{fmt_dt(m["scheduled_for"])} · {e(m["manager_id"])} with '
            f'{e(m["employee_id"])}</h3><div class="grid"><div><strong>Agenda</strong><ul>{agenda}</ul></div>'
            f'<div><strong>Notes</strong><p style="white-space:pre-wrap">{e(m["notes"]) if m["notes"] else "—"}</p>'
            "</div></div>" + table(["Action item", "Owner", "Due", "Done"], rows, empty="No action items.")
        )
        if party:
            owners = "".join(f'<option value="{e(o)}">{e(o)}</option>' for o in (m["employee_id"], m["manager_id"]))
            parts.append(
                f'<form method="post" action="{e(action)}" data-testid="add-item-{e(m["id"])}">'
                f'<input type="hidden" name="csrf" value="{e(user.csrf)}"><input type="hidden" name="back" '
                f'value="{e(back)}"><input name="description" required maxlength="1000" size="40" '
                f'placeholder="new action item" aria-label="action item"> <select name="owner_id" aria-label="owner">'
                f'{owners}</select> <input type="date" name="due_date" required aria-label="due date"> '
                '<button type="submit" class="secondary">Add action item</button></form>'
            )
        parts.append("</div>")
    return "".join(parts)


def _one_on_one_form(
    user: ConsoleUser,
    cycle_id: str,
    *,
    back: str,
    fixed: tuple[str, str] | None = None,
    reports: Sequence[tuple[str, str]] = (),
) -> str:
    """The "new 1:1" form: for one fixed person (their page) or a choice of reports."""
    if fixed is not None:
        who = f'<input type="hidden" name="employee_id" value="{e(fixed[0])}"><p class="muted">{e(fixed[1])}</p>'
    elif reports:
        options = "".join(f'<option value="{e(i)}">{e(n)} ({e(i)})</option>' for i, n in reports)
        who = f'<label>Report <select name="employee_id">{options}</select></label>'
    else:
        who = '<label>Employee id <input name="employee_id" required maxlength="64"></label>'
    when = datetime.now(UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")
    return (
        f'<form method="post" action="{e(_cycle_path(cycle_id, "one-on-ones"))}" data-testid="new-one-on-one">'
        f'<input type="hidden" name="csrf" value="{e(user.csrf)}"><input type="hidden" name="back" value="{e(back)}">'
        f"<h3>New 1:1</h3>{who}"
        f'<label>When (UTC) <input type="datetime-local" name="scheduled_for" value="{when}" required></label>'
        '<label>Agenda (one topic per line)<br><textarea name="agenda" rows="3" cols="60"></textarea></label>'
        '<label>Notes<br><textarea name="notes" rows="3" cols="60" maxlength="20000"></textarea></label>'
        '<button type="submit">Record 1:1</button></form>'
    )


@router.get(
    "/cycles/{cycle_id}/one-on-ones",
    summary="1:1s: yours as manager or report (HR reads all), with action items; record a 1:1 with a report",
    response_class=HTMLResponse,
    **access(*ONE_ON_ONE_READERS),
)
async def one_on_ones_page(
    request: Request, cycle_id: CycleId, user: Annotated[User, _user(*ONE_ON_ONE_READERS)]
) -> HTMLResponse:
    api = Upstream(request, user.token)
    me = user.principal.employee_id
    meetings, reports = await asyncio.gather(
        api.get("feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/one-on-ones", {"limit": 500}),
        api.get("cycles", "/v1/org/employees", {"manager_id": me, "limit": 500})
        if me and user.has(Role.MANAGER)
        else _not_asked(),
    )
    path = _cycle_path(cycle_id, "one-on-ones")
    if not meetings.ok:
        return page(request, user, "1:1s", _problem(meetings, "1:1s"), cycle_id=cycle_id, active="one-on-ones")
    items: list[dict[str, Any]] = meetings.data
    body = ""
    if me and user.has(Role.MANAGER):
        direct = [(r["employee_id"], r["name"]) for r in reports.data["items"]] if reports.ok and reports.data else []
        body += '<section class="card">' + _one_on_one_form(user, cycle_id, back=path, reports=direct) + "</section>"
    elif me and user.has(*ONE_ON_ONE_PARTIES):
        body += (
            '<section class="card">'
            + _one_on_one_form(user, cycle_id, back=path, fixed=(me, "you with your manager"))
            + "</section>"
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in items:
        other = m["employee_id"] if m["employee_id"] != me else m["manager_id"]
        groups.setdefault(other if me else f"{m['manager_id']} with {m['employee_id']}", []).append(m)
    for who, group in sorted(groups.items()):
        open_items = sum(1 for m in group for i in m["action_items"] if not i["done"])
        link = ""
        if me:
            person = _cycle_path(cycle_id, "people", quote(who, safe=""))
            link = f' <a class="muted" href="{e(person)}">their page</a>'
        body += (
            f'<section class="card"><h2>{e(who)}{link} <span class="muted">{len(group)} 1:1(s), '
            f"{open_items} open action item(s)</span></h2>"
            + _one_on_ones(user, cycle_id, group, back=path)
            + "</section>"
        )
    if not items:
        body += notice("No 1:1 recorded in this cycle yet.")
    return page(request, user, "1:1s", body, cycle_id=cycle_id, active="one-on-ones")


def _scheduled_for(value: str) -> str | None:
    """A ``datetime-local`` value (taken as UTC) or an ISO timestamp, as ISO with a zone; None when invalid."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@router.post(
    "/cycles/{cycle_id}/one-on-ones",
    summary="Record a 1:1 (a manager with a report, or an employee with their manager)",
    **access(*ONE_ON_ONE_PARTIES),
)
async def create_one_on_one(
    request: Request, cycle_id: CycleId, user: Annotated[User, _user(*ONE_ON_ONE_PARTIES)]
) -> Response:
    form = await read_form(request)
    back = _back_to(form, cycle_id)
    when = _scheduled_for(form.get("scheduled_for", ""))
    if when is None:
        return _redirect(back, error=f"'when' must be a date and time, not {form.get('scheduled_for', '')!r}")
    body = {
        "employee_id": form.get("employee_id", "").strip(),
        "scheduled_for": when,
        "agenda": [line.strip() for line in form.get("agenda", "").splitlines() if line.strip()],
        "notes": form.get("notes", "").strip(),
    }
    answer = await Upstream(request, user.token).post(
        "feedback", f"/v1/cycles/{quote(cycle_id, safe='')}/one-on-ones", body
    )
    if not answer.ok:
        return _redirect(back, error=answer.error)
    m = answer.data
    return _redirect(back, msg=f"1:1 of {m['manager_id']} with {m['employee_id']} recorded for {when[:16]} UTC.")


@router.post(
    "/cycles/{cycle_id}/one-on-ones/{one_on_one_id}/action-items",
    summary="Add an action item (owner and due date) to a 1:1",
    **access(*ONE_ON_ONE_PARTIES),
)
async def add_action_item(
    request: Request, cycle_id: CycleId, one_on_one_id: RowId, user: Annotated[User, _user(*ONE_ON_ONE_PARTIES)]
) -> Response:
    form = await read_form(request)
    back = _back_to(form, cycle_id)
    body = {
        "description": form.get("description", "").strip(),
        "owner_id": form.get("owner_id", "").strip(),
        "due_date": form.get("due_date", "").strip(),
    }
    answer = await Upstream(request, user.token).post("feedback", f"/v1/one-on-ones/{one_on_one_id}/action-items", body)
    if not answer.ok:
        return _redirect(back, error=answer.error)
    item = answer.data
    return _redirect(back, msg=f"Action item added for {item['owner_id']}, due {item['due_date']}.")


@router.post(
    "/cycles/{cycle_id}/one-on-ones/{one_on_one_id}/action-items/{item_id}",
    summary="Mark a 1:1 action item done (or not done)",
    **access(*ONE_ON_ONE_PARTIES),
)
async def update_action_item(
    request: Request,
    cycle_id: CycleId,
    one_on_one_id: RowId,
    item_id: RowId,
    user: Annotated[User, _user(*ONE_ON_ONE_PARTIES)],
) -> Response:
    form = await read_form(request)
    back = _back_to(form, cycle_id)
    done = form.get("done", "0") in ("1", "on", "true")
    answer = await Upstream(request, user.token).call(
        "PATCH", "feedback", f"/v1/one-on-ones/{one_on_one_id}/action-items/{item_id}", body={"done": done}
    )
    if not answer.ok:
        return _redirect(back, error=answer.error)
    state = "done" if answer.data["done"] else "open again"
    return _redirect(back, msg=f"Action item '{answer.data['description']}' is {state}.")


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
