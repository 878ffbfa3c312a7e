"""Signing in and out: development personas (dev and test only) or a pasted bearer token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.app import PUBLIC as public
from services.common.auth import mint_token
from services.common.settings import Settings
from services.console.auth import COOKIE, read_form, safe_next, sign_in_url
from services.console.i18n import N_, _
from services.console.rendering import Page, redirect

__all__ = ["PUBLIC_PATHS", "router"]

router = APIRouter()

SIGN_IN = Page("signin.html", N_("Sign in"))

PUBLIC_PATHS = ("/console/sign-in", "/console/sign-out")
PUBLIC: dict[str, Any] = {"openapi_extra": {"x-roles": [public]}}
DEV_ROLES = ("hr_admin", "ops", "dept_head", "manager", "employee")


@dataclass(frozen=True)
class Persona:
    label: str
    sub: str
    role: str
    employee_id: str = ""
    department_id: str = ""


PERSONAS = (
    Persona(N_("HR admin"), "hr-admin", "hr_admin"),
    Persona(N_("Ops on call"), "ops-oncall", "ops"),
    Persona(N_("Head of Sales (E0155)"), "E0155", "dept_head", "E0155", "sales"),
    Persona(N_("Manager, Domestic Sales (E0163)"), "E0163", "manager", "E0163", "sales-domestic"),
    Persona(N_("Account manager (E0164)"), "E0164", "employee", "E0164", "sales-domestic"),
)
"""One-click dev sign-ins for the sample organisation (dev and test only)."""


def _dev_mode(settings: Settings) -> bool:
    return settings.env in ("dev", "test")


@router.get(
    "/sign-in",
    summary="Sign-in page: development personas (dev/test only) or a pasted bearer token",
    response_class=HTMLResponse,
    **PUBLIC,
)
async def sign_in_page(request: Request, next: str | None = None, reason: str | None = None) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    personas = [Persona(_(p.label), p.sub, p.role, p.employee_id, p.department_id) for p in PERSONAS]
    return SIGN_IN.render(
        request,
        None,
        target=safe_next(next),
        reason=reason[:300] if reason else None,
        dev_mode=_dev_mode(settings),
        env=settings.env,
        roles=DEV_ROLES,
        personas=personas,
    )


@router.post(
    "/sign-in",
    summary="Sign in: mint a development token (dev/test) or check a pasted one, then set the session cookie",
    **PUBLIC,
)
async def sign_in(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    target = safe_next(form.get("next"))
    back = sign_in_url(target)
    if form.get("mode") == "dev":
        if not _dev_mode(settings):
            return redirect(back, error=_("development sign-in is only available with TANDEM_ENV=dev or test"))
        role = form.get("role", "")
        sub = form.get("sub", "").strip()
        if role not in DEV_ROLES or not sub:
            return redirect(back, error=_("pick a subject and one of the roles %(roles)s", roles=", ".join(DEV_ROLES)))
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
            reason = getattr(exc, "detail", exc)
            return redirect(back, error=_("that token was refused: %(reason)s", reason=reason))
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


@router.post("/sign-out", summary="Sign out: drop the session cookie", **PUBLIC)
async def sign_out() -> Response:
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response
