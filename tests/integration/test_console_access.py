"""Console access control over HTTP, on SQLite and PostgreSQL: every page declares its roles, signed-out
visitors are sent to sign-in, a bad bearer token is a 401, a wrong role a 403 page, forms need the CSRF
token, and sign-in mints dev tokens only with TANDEM_ENV=dev, offering personas from the loaded organisation.

The console is its own service with no database: ``console_world`` runs it in-process next to a real
cycles service (on the test's database), and the console reaches every API over HTTP."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi.routing import APIRoute

from services.common.auth import Role, mint_token
from services.common.settings import Settings
from services.console.app import create_app as create_console_app
from services.console.auth import COOKIE, FINANCE, csrf_token
from services.console.oidc import OidcSettings
from services.console.views import FAMILIES, PUBLIC_PATHS
from services.cycles.app import create_app as create_cycles_app
from tests.integration.test_cycles_org_import import import_sample
from tests.integration.test_ops_overview import offline
from tests.support import api_client, auth

CYCLE = "cyc-console-test"
CYCLES_URL = "http://cycles.test"

PEOPLE = {"hr_admin", "ops", "dept_head", "manager", "employee"}
STAFF = {"hr_admin", "dept_head", "manager", "employee"}
MEMBERS = {*PEOPLE, "finance"}
PAGES: list[tuple[str, set[str]]] = [
    ("/console", MEMBERS),
    ("/console/tasks", MEMBERS),
    ("/console/preferences", MEMBERS),
    ("/console/templates", {"hr_admin"}),
    ("/console/org", {"hr_admin"}),
    ("/console/audit", {"hr_admin", "ops", "auditor"}),
    (f"/console/cycles/{CYCLE}/my-goals", STAFF),
    (f"/console/cycles/{CYCLE}/reviews", STAFF),
    (f"/console/cycles/{CYCLE}/feedback-requests", STAFF),
    (f"/console/cycles/{CYCLE}/team", {"hr_admin", "dept_head", "manager"}),
    (f"/console/cycles/{CYCLE}/department", {"dept_head"}),
    (f"/console/cycles/{CYCLE}/what-if", {"hr_admin"}),
    (f"/console/cycles/{CYCLE}/pools", {"hr_admin", "dept_head", "ops", "finance"}),
    ("/console/cycles", {"hr_admin", "ops", "dept_head", "manager", "employee"}),
    (f"/console/cycles/{CYCLE}/goals", {"hr_admin", "ops", "dept_head", "manager", "employee"}),
    (f"/console/cycles/{CYCLE}/scorecard", {"hr_admin", "ops", "dept_head", "manager", "employee"}),
    (f"/console/cycles/{CYCLE}/progress", {"hr_admin", "ops", "dept_head", "manager", "employee"}),
    (f"/console/cycles/{CYCLE}/approvals", {"hr_admin", "dept_head", "manager"}),
    (f"/console/cycles/{CYCLE}/calibration", {"hr_admin", "dept_head"}),
    (f"/console/cycles/{CYCLE}/collaboration", {"hr_admin", "dept_head", "manager", "ops"}),
    (f"/console/cycles/{CYCLE}/appeals", {"hr_admin"}),
    (f"/console/cycles/{CYCLE}/one-on-ones", {"hr_admin", "dept_head", "manager", "employee"}),
    ("/console/ops", {"hr_admin", "ops"}),
    ("/console/growth", PEOPLE),
    ("/console/decisions", PEOPLE),
    ("/console/committees", {"hr_admin", "dept_head"}),
    ("/console/career-frameworks", PEOPLE),
    ("/console/calibration-sessions/s-1", {"hr_admin", "dept_head"}),
    (f"/console/cycles/{CYCLE}/nine-box", {"hr_admin", "dept_head", "manager"}),
]
ROLES = ("hr_admin", "ops", "dept_head", "manager", "employee", "auditor", "department_system", "finance")


@dataclass
class ConsoleWorld:
    client: httpx.AsyncClient
    """The console (``client.app`` is its FastAPI app)."""
    cycles: httpx.AsyncClient
    """The cycles service's API (``cycles.app``)."""


@asynccontextmanager
async def console_world(
    settings: Settings,
    database_url: str,
    *,
    mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    oidc: OidcSettings | None = None,
    **changes: Any,
) -> AsyncIterator[ConsoleWorld]:
    """The console and a real cycles service on ``database_url``, in-process and talking HTTP.

    Other services are down (``offline``) unless ``mounts`` (URL -> transport) and ``changes``
    (``feedback_url=...``) put an in-process one at some URL; the cycles service reaches them too.
    """
    service_settings = offline(settings, cycles_url=CYCLES_URL, **changes)
    async with AsyncExitStack() as stack:
        outbound = await stack.enter_async_context(httpx.AsyncClient(mounts=dict(mounts or {})))
        cycles = await stack.enter_async_context(
            api_client(functools.partial(create_cycles_app, http_client=outbound), service_settings, database_url)
        )
        cycles_app = cycles.app  # type: ignore[attr-defined]
        to_services = {**(mounts or {}), CYCLES_URL: httpx.ASGITransport(app=cycles_app)}
        http = await stack.enter_async_context(httpx.AsyncClient(mounts=to_services))
        console = create_console_app(service_settings, http_client=http, oidc=oidc or OidcSettings(issuer=None))
        await stack.enter_async_context(console.router.lifespan_context(console))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://test")
        )
        client.app = console  # type: ignore[attr-defined]
        yield ConsoleWorld(client, cycles)


def _allowed_roles(route: APIRoute) -> set[str]:
    found: set[str] = set()
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        found |= set(getattr(dependant.call, "allowed_roles", ()))
        stack.extend(dependant.dependencies)
    return found


def test_every_console_route_declares_its_roles_and_a_summary(settings: Settings) -> None:
    routes = [r for family in FAMILIES for r in family.router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 101
    for route in routes:
        path = f"/console{route.path}"
        assert route.summary, f"{path} has no summary"
        declared = set((route.openapi_extra or {}).get("x-roles", []))
        if path in PUBLIC_PATHS:
            assert declared == {"public"} and not _allowed_roles(route), path
            continue
        assert declared and declared == _allowed_roles(route), f"{path}: x-roles {declared}"
        assert "department_system" not in declared, path
        assert declared <= {r.value for r in Role} | {FINANCE}, path
    # the console's OpenAPI document lists every route with its roles, and no database endpoint
    spec = create_console_app(settings).openapi()
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    assert len(operations) == len(routes) + 2  # + /healthz and /metrics
    assert all(op.get("x-roles") for op in operations)
    assert "/v1/audit" not in spec["paths"]


def signed_in(client: httpx.AsyncClient, settings: Settings, role: str, **claims: Any) -> str:
    """Put a session cookie for ``role`` on ``client``; returns the CSRF token of that session."""
    token = mint_token(settings, sub=f"{role}-user", roles=[role], **claims)
    client.cookies.set(COOKIE, token, domain="test.local", path="/console")
    return csrf_token(settings, token)


async def test_pages_redirect_401_and_403_like_the_api(settings: Settings, database_url: str) -> None:
    async with console_world(settings, database_url) as world:
        client = world.client
        for path, allowed in PAGES:
            anonymous = await client.get(path)
            assert anonymous.status_code == 303, path
            target = urlsplit(anonymous.headers["location"])
            assert target.path == "/console/sign-in" and parse_qs(target.query)["next"] == [path]

            invalid = await client.get(path, headers={"Authorization": "Bearer not-a-jwt"})
            assert invalid.status_code == 401 and "invalid token" in invalid.json()["detail"], path

            for role in ROLES:
                response = await client.get(path, headers=auth(settings, role), follow_redirects=False)
                if role in allowed:
                    assert response.status_code in (200, 303), (path, role, response.text[:300])
                else:
                    assert response.status_code == 403, (path, role, response.status_code)
                    assert "This page requires one of the roles" in response.text
                    assert all(r in response.text for r in sorted(allowed)), (path, role)

        # an expired cookie sends the visitor back to sign-in with the reason, and drops the cookie
        expired = mint_token(settings, sub="old", roles=["hr_admin"], ttl_seconds=-60)
        client.cookies.set(COOKIE, expired, domain="test.local", path="/console")
        response = await client.get("/console/cycles")
        assert response.status_code == 303 and "token+has+expired" in response.headers["location"].replace("%20", "+")
        assert "Max-Age=0" in response.headers["set-cookie"]
        client.cookies.clear()


async def test_forms_need_the_role_and_the_csrf_token(settings: Settings, database_url: str) -> None:
    async with console_world(settings, database_url) as world:
        client = world.client
        csrf = signed_in(client, settings, "manager", employee_id="E0163")
        start = await client.post(f"/console/cycles/{CYCLE}/start", data={"csrf": csrf})
        assert start.status_code == 403 and "hr_admin" in start.text

        csrf = signed_in(client, settings, "hr_admin")
        forged = await client.post(f"/console/cycles/{CYCLE}/start", data={"day_seconds": "2"})
        assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
        stale = await client.post(f"/console/cycles/{CYCLE}/start", data={"csrf": "0" * 32})
        assert stale.status_code == 403

        # with the token the form reaches the API, whose answer comes back as a message
        real = await client.post(f"/console/cycles/{CYCLE}/start", data={"csrf": csrf})
        assert real.status_code == 303
        message = parse_qs(urlsplit(real.headers["location"]).query)["error"][0]
        assert message.startswith("cycles answered 404:") and CYCLE in message, message

        # a bearer header (API-style use) needs no CSRF token
        client.cookies.clear()
        bearer = await client.post(f"/console/cycles/{CYCLE}/start", headers=auth(settings, "hr_admin"))
        assert bearer.status_code == 303

        # sign-out is always allowed and clears the cookie
        signed_in(client, settings, "employee", employee_id="E0164")
        out = await client.post("/console/sign-out")
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
        assert "Max-Age=0" in out.headers["set-cookie"]


async def test_sign_in_mints_dev_tokens_only_in_dev(settings: Settings, database_url: str) -> None:
    development = settings.model_copy(update={"env": "dev"})
    async with console_world(development, database_url) as world:
        client = world.client
        page = await client.get("/console/sign-in", params={"next": "/console/ops"})
        assert page.status_code == 200 and "Development sign-in" in page.text and 'value="/console/ops"' in page.text
        assert "No organisation is loaded yet" in page.text and "Sign in with a token" in page.text

        # the personas come from the organisation loaded in the cycles service
        await import_sample(world.cycles, development)
        page = await client.get("/console/sign-in")
        assert "Head: Anna Nguyen (E0155)" in page.text, page.text[:3000]
        assert 'name="roles" value="dept_head,manager,employee"' in page.text

        signed = await client.post(
            "/console/sign-in",
            data={"mode": "dev", "sub": "E0164", "roles": "employee", "employee_id": "E0164", "next": "/console/ops"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/console/ops"
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
        claims = client.app.state.token_verifier.verify(client.cookies[COOKIE])  # type: ignore[attr-defined]
        assert claims.sub == "E0164" and claims.roles == frozenset({"employee"}) and claims.employee_id == "E0164"
        # the employee may not open ops: 403 page, not a redirect loop
        assert (await client.get("/console/ops")).status_code == 403
        # the first page after signing in is "My tasks"
        home = await client.get("/console")
        assert home.status_code == 303 and home.headers["location"] == "/console/tasks"

        # never redirect off the console after sign-in
        outside = await client.post(
            "/console/sign-in", data={"mode": "dev", "sub": "x", "role": "ops", "next": "https://evil.example/"}
        )
        assert outside.headers["location"] == "/console"
        unknown_role = await client.post("/console/sign-in", data={"mode": "dev", "sub": "x", "role": "root"})
        assert unknown_role.status_code == 303 and "error=" in unknown_role.headers["location"]

    # Any other environment refuses development sign-in: the test environment too. Without an identity
    # provider, a pasted token is checked with the APIs' verifier (the test environment's secret here).
    async with console_world(settings, database_url) as world:
        client = world.client
        page = await client.get("/console/sign-in")
        assert "Development sign-in" not in page.text and "Sign in with a token" in page.text
        refused = await client.post("/console/sign-in", data={"mode": "dev", "sub": "x", "role": "hr_admin"})
        assert "only+available" in refused.headers["location"].replace("%20", "+")
        assert COOKIE not in client.cookies
        bad = await client.post("/console/sign-in", data={"mode": "token", "token": "nonsense"})
        assert "error=" in bad.headers["location"] and COOKIE not in client.cookies
        token = mint_token(settings, sub="ops-1", roles=["ops"])
        good = await client.post("/console/sign-in", data={"mode": "token", "token": f"Bearer {token}"})
        assert good.status_code == 303 and client.cookies[COOKIE] == token
        ops_page = await client.get("/console/ops")
        assert ops_page.status_code == 200 and "Operations" in ops_page.text and "ops-1 · ops" in ops_page.text

    # Production verifies tokens with public keys only (the identity provider's JWKS here).
    production = settings.model_copy(
        update={"env": "prod", "jwt_secret": "a-real-production-secret-of-32-chars-or-more",
                "jwks_url": "http://127.0.0.1:9/realms/tandem/protocol/openid-connect/certs"}
    )  # fmt: skip
    async with console_world(production, database_url) as world:
        client = world.client
        page = await client.get("/console/sign-in")
        assert "Development sign-in" not in page.text and "Sign in with a token" in page.text
        refused = await client.post("/console/sign-in", data={"mode": "dev", "sub": "x", "role": "hr_admin"})
        assert "only+available" in refused.headers["location"].replace("%20", "+") and COOKIE not in client.cookies
        hs256 = mint_token(settings, sub="ops-1", roles=["ops"])
        forged = await client.post("/console/sign-in", data={"mode": "token", "token": hs256})
        assert "error=" in forged.headers["location"] and COOKIE not in client.cookies
