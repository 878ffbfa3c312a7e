"""Signing in to the console through a real Keycloak: authorization code with PKCE, the tokens
checked, the cycles API accepting the Keycloak access token (RS256 via JWKS), refresh before expiry,
a refused refresh ending the session, and logout ending the Keycloak session too.

The realm maps the claims in one place (``devtools/stack/keycloak.py``): ``roles``, ``employee_id``,
``department_id``, ``aud`` = tandem, ``sub`` = the username.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from devtools.stack.keycloak import KeycloakServer, RealmUser
from services.common.settings import Settings
from services.console.auth import COOKIE
from services.console.oidc import ID_COOKIE, REFRESH_COOKIE, OidcClient, OidcError
from tests.integration.test_console_access import console_world
from tests.keycloak import keycloak_server, keycloak_settings, load_realm, sign_in_through_keycloak

__all__ = ["keycloak_server"]

ZHANG_WEI = RealmUser(
    "zhangwei", "pw-zhangwei", ["dept_head", "manager", "employee"], "伟", "张",
    employee_id="E1001", department_id="sales", display_name="张伟",
)  # fmt: skip


def _expired_token() -> str:
    """A token whose ``exp`` has passed (the console reads only ``exp`` to decide to refresh)."""
    return jwt.encode({"sub": "x", "exp": int(time.time()) - 60}, "k" * 32, algorithm="HS256")


async def test_sign_in_refresh_and_logout_through_keycloak(
    keycloak_server: KeycloakServer, settings: Settings, one_database_url: str
) -> None:
    kc = await load_realm(keycloak_server, console_urls=["http://test"], users=[ZHANG_WEI])
    with_keycloak = keycloak_settings(settings, kc)
    async with console_world(with_keycloak, one_database_url, oidc=kc.oidc()) as world:
        client = world.client
        page = await client.get("/console/sign-in", params={"next": "/console/tasks"})
        assert "Sign in with Keycloak" in page.text and "Sign in with a token" not in page.text
        assert "Development sign-in" not in page.text  # TANDEM_ENV=test

        landed = await sign_in_through_keycloak(
            client, "/console/oidc/login?next=/console/tasks", username="zhangwei", password="pw-zhangwei"
        )
        assert landed.status_code == 200 and str(landed.url).endswith("/console/tasks"), landed.text[:500]
        assert "张伟 (E1001) · dept_head, employee, manager" in landed.text  # Keycloak's own roles left out
        assert {COOKIE, REFRESH_COOKIE, ID_COOKIE} <= set(client.cookies.keys())

        # The services accept the access token: RS256 from the realm's JWKS, the claims mapped by the realm.
        access = client.cookies[COOKIE]
        me = await world.cycles.get("/v1/me", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 200, me.text
        assert me.json() == {
            "sub": "zhangwei", "roles": sorted(me.json()["roles"]), "employee_id": "E1001", "department_id": "sales",
        } and {"dept_head", "manager", "employee"} <= set(me.json()["roles"])  # fmt: skip

        # An access token about to expire is renewed with the refresh token before the page runs.
        client.cookies.set(COOKIE, _expired_token(), domain="test.local", path="/console")
        renewed = await client.get("/console/tasks")
        assert renewed.status_code == 200 and "张伟 (E1001)" in renewed.text
        assert any(h.startswith(f"{COOKIE}=ey") for h in renewed.headers.get_list("set-cookie"))

        # A refused refresh ends the session: back to sign-in, the cookies dropped.
        client.cookies.set(COOKIE, _expired_token(), domain="test.local", path="/console")
        client.cookies.set(REFRESH_COOKIE, "not-a-refresh-token", domain="test.local", path="/console")
        ended = await client.get("/console/tasks")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/console/sign-in")
        assert all("Max-Age=0" in h for h in ended.headers.get_list("set-cookie"))

        # Sign in again, then sign out: the console sends the browser to end the Keycloak session too.
        client.cookies.clear()
        await sign_in_through_keycloak(
            client, "/console/oidc/login?next=/console/tasks", username="zhangwei", password="pw-zhangwei"
        )
        refresh_token = client.cookies[REFRESH_COOKIE]
        out = await client.post("/console/sign-out")
        logout = urlsplit(out.headers["location"])
        assert out.status_code == 303 and logout.path.endswith("/protocol/openid-connect/logout")
        query = parse_qs(logout.query)
        assert query["post_logout_redirect_uri"] == ["http://test/console/sign-in?signed_out=1"]
        assert query["id_token_hint"] and query["client_id"] == ["tandem-console"]
        async with httpx.AsyncClient() as browser:
            back = await browser.get(out.headers["location"])
        assert back.status_code == 302 and back.headers["location"] == "http://test/console/sign-in?signed_out=1"
        assert "Max-Age=0" in out.headers["set-cookie"]
        oidc = OidcClient(kc.oidc(), httpx.AsyncClient())
        try:
            await oidc.refresh(refresh_token)
        except OidcError as exc:
            assert "refused" in str(exc)
        else:
            raise AssertionError("the refresh token outlived the Keycloak session")


async def test_a_forged_or_stale_callback_is_refused(
    keycloak_server: KeycloakServer, settings: Settings, one_database_url: str
) -> None:
    kc = await load_realm(keycloak_server, console_urls=["http://test"], users=[ZHANG_WEI])
    async with console_world(keycloak_settings(settings, kc), one_database_url, oidc=kc.oidc()) as world:
        client = world.client
        # a callback without a login started here (no flow cookie), or with another state, sets no session
        forged = await client.get("/console/oidc/callback", params={"code": "abc", "state": "guess"})
        assert forged.status_code == 303 and "expired+or+was+started" in forged.headers["location"].replace("%20", "+")
        started = await client.get("/console/oidc/login", params={"next": "https://evil.example/"})
        assert started.status_code == 303 and "code_challenge_method=S256" in started.headers["location"]
        wrong = await client.get("/console/oidc/callback", params={"code": "abc", "state": "not-the-state"})
        assert "error=" in wrong.headers["location"] and COOKIE not in client.cookies
        refused = await client.get("/console/oidc/callback", params={"error": "access_denied"})
        assert "access_denied" in refused.headers["location"]
        # the page to return to never leaves the console, whatever ``next`` said
        landed = await sign_in_through_keycloak(
            client, "/console/oidc/login?next=https://evil.example/", username="zhangwei", password="pw-zhangwei"
        )
        assert urlsplit(str(landed.url)).path == "/console/tasks"
