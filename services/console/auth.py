"""Who is using the console: a bearer token or the console's HttpOnly cookie, checked like the API.

* ``console_requires(*roles)`` is the console's ``requires``: it admits a principal from the
  ``Authorization: Bearer`` header or the ``tandem_console`` cookie and records the allowed
  roles on the dependency (``allowed_roles``), so the route matrix can be checked.
* No credentials (or an expired cookie) on a page → a redirect to the sign-in page; an invalid
  bearer header → 401; a role the page does not admit → a 403 page naming the roles.
* Forms posted with the cookie carry a CSRF token derived from the session token.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, HTTPException, Request

from services.common.auth import Principal, Role, TokenVerifier
from services.common.params import APPROVERS, CALIBRATORS, EVERYONE, HR, LEADERS, OPS_ROLES, STAFF
from services.common.settings import Settings
from services.console.i18n import _

__all__ = [
    "COOKIE",
    "ONE_ON_ONE_PARTIES",
    "Anyone",
    "Approver",
    "Calibrator",
    "FINANCE",
    "NOMINATORS",
    "Nominator",
    "HEADS",
    "Head",
    "Member",
    "MEMBERS",
    "POOL_READERS",
    "POOL_WRITERS",
    "PAYROLL_READERS",
    "PoolReader",
    "PoolWriter",
    "FinanceUser",
    "PayrollReader",
    "TEAM_LEADS",
    "TeamLead",
    "HrAdmin",
    "Leader",
    "Operator",
    "Party",
    "Staff",
    "access",
    "ConsoleForbidden",
    "ConsoleUser",
    "SignInRequired",
    "console_requires",
    "csrf_token",
    "read_form",
    "read_uploads",
    "Upload",
    "safe_next",
    "sign_in_url",
]

COOKIE = "tandem_console"
"""HttpOnly cookie holding the signed-in user's bearer token."""


@dataclass(frozen=True)
class ConsoleUser:
    principal: Principal
    token: str
    via_cookie: bool
    csrf: str

    @property
    def label(self) -> str:
        # Identity providers add roles of their own (Keycloak: default-roles-*, offline_access): not ours.
        roles = ", ".join(sorted(r for r in self.principal.roles if r in KNOWN_ROLES))
        name = self.principal.claims.get("name")
        who = name if isinstance(name, str) and name.strip() else self.principal.sub
        if self.principal.employee_id and self.principal.employee_id != who:
            who = f"{who} ({self.principal.employee_id})"
        return f"{who} · {roles}"

    def has(self, *roles: Role | str) -> bool:
        return self.principal.has(*roles)


class SignInRequired(Exception):
    """No valid session: the handler redirects to the sign-in page (and drops a stale cookie)."""

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.next_path = next_path
        self.reason = reason


class ConsoleForbidden(Exception):
    """Signed in, but the page needs another role: the handler renders a 403 page."""

    def __init__(self, user: ConsoleUser, allowed: frozenset[str]) -> None:
        super().__init__(f"this page requires one of the roles {sorted(allowed)}")
        self.user = user
        self.allowed = allowed


def csrf_token(settings: Settings, token: str) -> str:
    """Bound to the session token: a form from another site cannot know it."""
    return hmac.new(settings.jwt_secret.encode(), f"console-csrf:{token}".encode(), hashlib.sha256).hexdigest()[:32]


def safe_next(value: str | None) -> str:
    """Only console paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


@dataclass(frozen=True)
class Upload:
    """A file part of a ``multipart/form-data`` form."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


async def read_form(request: Request) -> dict[str, str]:
    """A form's text fields as a dict (last value wins): ``application/x-www-form-urlencoded``, or the
    text parts of ``multipart/form-data`` (its files: :func:`read_uploads`)."""
    cached: dict[str, str] | None = getattr(request.state, "console_form", None)
    if cached is not None:
        return cached
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        uploads = _multipart(content_type, await request.body())
        request.state.console_uploads = [u for u in uploads if u.filename is not None]
        form = {u.name: u.data.decode("utf-8", errors="replace") for u in uploads if u.filename is None}
    else:
        body = (await request.body()).decode("utf-8", errors="replace")
        form = {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}
    request.state.console_form = form
    return form


async def read_uploads(request: Request) -> list[Upload]:
    """The files of a ``multipart/form-data`` form (none for any other body)."""
    await read_form(request)
    uploads: list[Upload] = getattr(request.state, "console_uploads", [])
    return uploads


def _multipart(content_type: str, body: bytes) -> list[Upload]:
    """The parts of a multipart body, with the standard library's MIME parser (no extra dependency)."""
    from email.message import Message
    from email.parser import BytesParser
    from email.policy import HTTP

    envelope = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", errors="replace")
    message = BytesParser(policy=HTTP).parsebytes(envelope + body)
    payload = message.get_payload() if message.is_multipart() else []
    parts: list[Upload] = []
    for part in payload if isinstance(payload, list) else []:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(data, bytes):
            parts.append(Upload(name, part.get_filename(), part.get_content_type(), data))
    return parts


def _next_of(request: Request) -> str:
    if request.method == "GET":
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return path
    referer = request.headers.get("referer", "")
    marker = referer.find("/console")
    return referer[marker:] if marker >= 0 else "/console"


def _resolve(request: Request) -> ConsoleUser:
    verifier: TokenVerifier = request.app.state.token_verifier
    settings: Settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    if header:
        scheme, _sep, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            raise HTTPException(
                401, "the Authorization header must be 'Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
            )
        principal = verifier.verify(credentials.strip())  # 401 with the reason when invalid
        return ConsoleUser(principal, credentials.strip(), False, csrf_token(settings, credentials.strip()))
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired(_next_of(request))
    try:
        principal = verifier.verify(token)
    except HTTPException as exc:
        if exc.status_code != 401:  # e.g. 503 while the issuer's keys load: the session itself is fine
            raise
        reason = _("your session ended (%(reason)s); sign in again", reason=exc.detail)
        raise SignInRequired(_next_of(request), reason) from exc
    return ConsoleUser(principal, token, True, csrf_token(settings, token))


def console_requires(*roles: Role | str) -> Any:
    """The console's ``requires``: same roles as the API behind the page, cookie or bearer."""
    if not roles:
        raise ValueError("console_requires() needs at least one role")
    allowed = frozenset(str(r) for r in roles)

    async def check(request: Request) -> ConsoleUser:
        user = _resolve(request)
        if not user.principal.has(*allowed):
            raise ConsoleForbidden(user, allowed)
        if request.method == "POST" and user.via_cookie:
            form = await read_form(request)
            if not hmac.compare_digest(form.get("csrf", ""), user.csrf):
                raise HTTPException(403, _("the form's CSRF token is missing or stale; reload the page and try again"))
        return user

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return Depends(check)


def sign_in_url(next_path: str, reason: str | None = None) -> str:
    url = f"/console/sign-in?next={quote(safe_next(next_path), safe='')}"
    return url + (f"&reason={quote(reason, safe='')}" if reason else "")


def access(*roles: Role | str) -> dict[str, Any]:
    """Route keyword arguments listing the roles in OpenAPI (``x-roles``); the check is ``console_requires``."""
    return {"openapi_extra": {"x-roles": [str(r) for r in roles]}}


FINANCE = Role.FINANCE
"""Finance sets and approves the bonus pools and exports payroll (the results API's pool routes)."""
KNOWN_ROLES = frozenset(r.value for r in Role)

ONE_ON_ONE_PARTIES = (Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
"""Who may create and change 1:1s and their action items (the feedback API then checks the parties)."""

# The signed-in user, admitted by the roles of the API behind the page (one alias per role tuple).
Anyone = Annotated[ConsoleUser, console_requires(*EVERYONE)]
Staff = Annotated[ConsoleUser, console_requires(*STAFF)]
HrAdmin = Annotated[ConsoleUser, console_requires(*HR)]
Approver = Annotated[ConsoleUser, console_requires(*APPROVERS)]
Calibrator = Annotated[ConsoleUser, console_requires(*CALIBRATORS)]
Leader = Annotated[ConsoleUser, console_requires(*LEADERS)]
Operator = Annotated[ConsoleUser, console_requires(*OPS_ROLES)]
Party = Annotated[ConsoleUser, console_requires(*ONE_ON_ONE_PARTIES)]

MEMBERS: tuple[Role | str, ...] = (*EVERYONE, FINANCE)
"""Everyone with a page of their own: the people roles and finance (my tasks, preferences)."""
TEAM_LEADS = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER)
"""Who has a team page: a manager their reports, a head their department, HR anyone."""
POOL_READERS: tuple[Role | str, ...] = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.OPS, FINANCE)
POOL_WRITERS: tuple[Role | str, ...] = (Role.HR_ADMIN, FINANCE)
PAYROLL_READERS: tuple[Role | str, ...] = (Role.HR_ADMIN, FINANCE)
"""Who downloads the payroll export: every allocated bonus of the cycle."""
NOMINATORS = (Role.HR_ADMIN, Role.MANAGER)
"""Who nominates peer and cross-department raters (the evaluation API: a manager for their reports)."""
Nominator = Annotated[ConsoleUser, console_requires(*NOMINATORS)]
HEADS = (Role.DEPT_HEAD,)
Head = Annotated[ConsoleUser, console_requires(*HEADS)]
Member = Annotated[ConsoleUser, console_requires(*MEMBERS)]
TeamLead = Annotated[ConsoleUser, console_requires(*TEAM_LEADS)]
PoolReader = Annotated[ConsoleUser, console_requires(*POOL_READERS)]
PoolWriter = Annotated[ConsoleUser, console_requires(*POOL_WRITERS)]
FinanceUser = Annotated[ConsoleUser, console_requires(FINANCE)]
PayrollReader = Annotated[ConsoleUser, console_requires(*PAYROLL_READERS)]
