"""Signing in and out: the organisation's identity provider (OIDC), development personas, or a token.

* With ``TANDEM_OIDC_ISSUER`` set, the sign-in page offers the identity provider
  (:mod:`services.console.oidc`: authorization code with PKCE, refresh, logout).
* With ``TANDEM_ENV=dev`` only (``tandem up``, ``tandem demo``), it also offers development
  sign-in: personas from the organisation loaded in the cycles service, and a free-form subject.
  Every other environment refuses it.
* Without an identity provider, a bearer token can be pasted (checked with the APIs' verifier).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.app import PUBLIC as public
from services.common.auth import Role, mint_token
from services.common.settings import Settings
from services.console.auth import COOKIE, read_form, safe_next, sign_in_url
from services.console.i18n import N_, _, current_locale
from services.console.oidc import (
    FLOW_COOKIE,
    FLOW_SECONDS,
    ID_COOKIE,
    LoginFlow,
    OidcClient,
    OidcError,
    expired_session_cookies,
    session_cookies,
)
from services.console.rendering import Page, redirect
from services.console.upstream import Upstream

__all__ = ["PUBLIC_PATHS", "Persona", "dev_personas", "router"]

router = APIRouter()

SIGN_IN = Page("signin.html", N_("Sign in"))

PUBLIC_PATHS = ("/console/sign-in", "/console/sign-out", "/console/oidc/login", "/console/oidc/callback")
PUBLIC: dict[str, Any] = {"openapi_extra": {"x-roles": [public]}}
DEV_ROLES = tuple(r.value for r in Role if r is not Role.DEPARTMENT_SYSTEM)
PERSONA_DEPARTMENTS = 8
"""Departments whose head, a manager and an employee get a one-click sign-in (the rest: the free form)."""


@dataclass(frozen=True)
class Persona:
    """A one-click development sign-in: who, with which roles and scoping claims."""

    label: str
    sub: str
    roles: tuple[str, ...]
    employee_id: str = ""
    department_id: str = ""

    @property
    def role_list(self) -> str:
        return ",".join(self.roles)


@dataclass
class PersonaRow:
    department: str
    people: list[Persona] = field(default_factory=list)


def dev_mode(settings: Settings) -> bool:
    """Development sign-in mints tokens for anyone: only ``tandem up`` / ``tandem demo`` (TANDEM_ENV=dev)."""
    return settings.env == "dev"


def oidc_of(request: Request) -> OidcClient | None:
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    return client


async def dev_personas(request: Request) -> tuple[list[Persona], list[PersonaRow], str | None]:
    """HR and ops, then per top-level department its head, a manager and an employee, from the
    organisation loaded in the cycles service (read with a development HR token)."""
    settings: Settings = request.app.state.settings
    fixed = [
        Persona(_("HR admin"), "hr-admin", ("hr_admin",)),
        Persona(_("Ops on call"), "ops-oncall", ("ops",)),
    ]
    if "finance" in DEV_ROLES:  # once the services know the finance role
        fixed.append(Persona(_("Finance"), "finance-1", ("finance",)))
    token = mint_token(settings, sub="system:console-sign-in", roles=["hr_admin"], ttl_seconds=60)
    api = Upstream(request, token)
    departments = await api.get("cycles", "/v1/org/departments", {"limit": 500})
    employees = await api.get("cycles", "/v1/org/employees", {"limit": 500})
    if not departments.ok or not employees.ok:
        return fixed, [], departments.error or employees.error
    return fixed, _org_personas(departments.data["items"], employees.data["items"]), None


def _org_personas(departments: list[dict[str, Any]], employees: list[dict[str, Any]]) -> list[PersonaRow]:
    by_id = {d["department_id"]: d for d in departments}
    roots = {d["department_id"] for d in departments if not d.get("parent_id")}
    children: dict[str, list[str]] = defaultdict(list)
    for d in departments:
        if d.get("parent_id"):
            children[d["parent_id"]].append(d["department_id"])
    managers = {e["manager_id"] for e in employees if e.get("manager_id")}
    people = {e["employee_id"]: e for e in employees}
    # Top-level departments: under the root (the executive office), or roots themselves when flat.
    tops = [d for d in departments if d.get("parent_id") in roots] or [by_id[r] for r in sorted(roots)]
    rows: list[PersonaRow] = []
    for top in sorted(tops, key=lambda d: d["department_id"])[:PERSONA_DEPARTMENTS]:
        tree, stack = set(), [top["department_id"]]
        while stack:
            current = stack.pop()
            tree.add(current)
            stack.extend(children.get(current, []))
        staff = sorted((e for e in employees if e["department_id"] in tree), key=lambda e: e["employee_id"])
        row = PersonaRow(top["name"])
        head = people.get(top.get("head_employee_id") or "")
        if head is not None:
            roles = (
                ("dept_head", "manager", "employee") if head["employee_id"] in managers else ("dept_head", "employee")
            )
            row.people.append(_persona(_("Head"), head, roles, top["department_id"]))
        manager = next((e for e in staff if e["employee_id"] in managers and e is not head), None)
        if manager is not None:
            row.people.append(_persona(_("Manager"), manager, ("manager", "employee"), manager["department_id"]))
        under = manager["employee_id"] if manager is not None else (head or {}).get("employee_id")
        employee = next((e for e in staff if e.get("manager_id") == under and e["employee_id"] not in managers), None)
        employee = employee or next((e for e in staff if e["employee_id"] not in managers), None)
        if employee is not None:
            row.people.append(_persona(_("Employee"), employee, ("employee",), employee["department_id"]))
        if row.people:
            rows.append(row)
    return rows


def _persona(role_label: str, person: dict[str, Any], roles: tuple[str, ...], department_id: str) -> Persona:
    label = _("%(role)s: %(name)s (%(employee_id)s)", role=role_label, name=person["name"],
              employee_id=person["employee_id"])  # fmt: skip
    return Persona(label, person["employee_id"], roles, person["employee_id"], department_id)


@router.get(
    "/sign-in",
    summary="Sign-in page: the identity provider, development personas (dev only) or a pasted bearer token",
    response_class=HTMLResponse,
    **PUBLIC,
)
async def sign_in_page(
    request: Request, next: str | None = None, reason: str | None = None, signed_out: bool = False
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    oidc = oidc_of(request)
    fixed: list[Persona] = []
    rows: list[PersonaRow] = []
    org_problem = None
    if dev_mode(settings):
        fixed, rows, org_problem = await dev_personas(request)
    target = safe_next(next)
    return SIGN_IN.render(
        request,
        None,
        target=target,
        reason=reason[:300] if reason else None,
        signed_out=signed_out,
        dev_mode=dev_mode(settings),
        env=settings.env,
        roles=DEV_ROLES,
        personas=fixed,
        persona_rows=rows,
        org_problem=org_problem,
        oidc=oidc.settings.provider_name if oidc is not None else None,
        oidc_link=f"/console/oidc/login?next={quote(target, safe='')}",
        token_form=oidc is None,
    )


def _set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=max_age,
        path="/console",
    )


@router.post(
    "/sign-in",
    summary="Sign in: mint a development token (dev only) or check a pasted one, then set the session cookie",
    **PUBLIC,
)
async def sign_in(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    target = safe_next(form.get("next"))
    back = sign_in_url(target)
    if form.get("mode") == "dev":
        if not dev_mode(settings):
            return redirect(back, error=_("development sign-in is only available with TANDEM_ENV=dev"))
        roles = [r.strip() for r in (form.get("roles") or form.get("role", "")).split(",") if r.strip()]
        sub = form.get("sub", "").strip()
        if not roles or any(r not in DEV_ROLES for r in roles) or not sub:
            return redirect(back, error=_("pick a subject and one of the roles %(roles)s", roles=", ".join(DEV_ROLES)))
        token = mint_token(
            settings,
            sub=sub[:200],
            roles=roles,
            employee_id=form.get("employee_id", "").strip()[:64] or None,
            department_id=form.get("department_id", "").strip()[:64] or None,
        )
    else:
        if oidc_of(request) is not None:
            return redirect(back, error=_("sign in with your organisation's account"))
        token = form.get("token", "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        try:
            request.app.state.token_verifier.verify(token)
        except Exception as exc:  # noqa: BLE001 - the reason goes back to the sign-in page
            reason = getattr(exc, "detail", exc)
            return redirect(back, error=_("that token was refused: %(reason)s", reason=reason))
    response = RedirectResponse(target, status_code=303)
    _set_session(response, request, token, settings.token_ttl_seconds)
    return response


def _callback_url(request: Request, oidc: OidcClient) -> str:
    return oidc.settings.redirect_url or str(request.url_for("oidc_callback"))


@router.get("/oidc/login", summary="Sign in with the identity provider (OIDC, PKCE): redirect there", **PUBLIC)
async def oidc_login(request: Request, next: str | None = None) -> Response:
    oidc = oidc_of(request)
    if oidc is None:
        return redirect(sign_in_url(safe_next(next)), error=_("no identity provider is configured"))
    flow = oidc.start(safe_next(next))
    try:
        url = await oidc.authorization_url(flow, _callback_url(request, oidc), locale=_provider_locale())
    except OidcError as exc:
        return redirect(sign_in_url(flow.next_path), error=str(exc))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE, flow.cookie(), max_age=FLOW_SECONDS, httponly=True, samesite="lax",
        secure=request.url.scheme == "https", path="/console",
    )  # fmt: skip
    return response


def _provider_locale() -> str:
    """The identity provider's page in the console's language (BCP 47 for ``ui_locales``)."""
    return "zh-CN" if current_locale() == "zh_Hans" else "en"


@router.get(
    "/oidc/callback",
    name="oidc_callback",
    summary="The identity provider's answer: redeem the code, check the tokens, set the session cookies",
    **PUBLIC,
)
async def oidc_callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    oidc = oidc_of(request)
    flow = LoginFlow.from_cookie(request.cookies.get(FLOW_COOKIE))
    back = sign_in_url(flow.next_path if flow else "/console")
    if oidc is None:
        return redirect(back, error=_("no identity provider is configured"))
    if error:
        return redirect(back, error=_("the identity provider refused: %(reason)s", reason=error_description or error))
    if flow is None or not state or state != flow.state or not code:
        return redirect(back, error=_("this sign-in expired or was started elsewhere; sign in again"))
    try:
        tokens = await oidc.redeem(code, flow, _callback_url(request, oidc))
        request.app.state.token_verifier.verify(tokens.access_token)
    except OidcError as exc:
        return redirect(back, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the APIs would refuse this token: say why
        reason = getattr(exc, "detail", exc)
        return redirect(back, error=_("the identity provider's token is not accepted here: %(reason)s", reason=reason))
    response = RedirectResponse(flow.next_path, status_code=303)
    for value in session_cookies(tokens, secure=request.url.scheme == "https"):
        response.headers.append("set-cookie", value)
    response.delete_cookie(FLOW_COOKIE, path="/console")
    return response


@router.post("/sign-out", summary="Sign out: drop the session cookies (and end the provider's session)", **PUBLIC)
async def sign_out(request: Request) -> Response:
    oidc = oidc_of(request)
    target = "/console/sign-in"
    if oidc is not None and (request.cookies.get(ID_COOKIE) or request.cookies.get(COOKIE)):
        after = str(request.url_for("sign_in_page")) + "?signed_out=1"
        target = await oidc.logout_url(request.cookies.get(ID_COOKIE), after) or target
    response = RedirectResponse(target, status_code=303)
    for value in expired_session_cookies():
        response.headers.append("set-cookie", value)
    return response
