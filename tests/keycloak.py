"""A real Keycloak for the tests that sign in through OIDC (``devtools/stack/keycloak.py``).

``keycloak_server`` starts one Keycloak per test session (dev mode, in-memory database); each test
module loads a realm of its own (:func:`load_realm`) with its users and the console's redirect
URLs. Import the fixture where it is needed (``from tests.keycloak import keycloak_server``; the
e2e conftest does so for the browser tests).

The services verify the Keycloak access tokens with RS256 against the realm's JWKS
(:func:`keycloak_settings`). :class:`PeopleAndServiceTokens` also admits the HS256 tokens the
services and the worker mint for each other with the test secret (production signs those with each
process's own key, ``TANDEM_SERVICE_SIGNING_KEY``, trusted through ``TANDEM_SERVICE_KEYS``).
"""

from __future__ import annotations

import html
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import jwt
import pytest

from devtools.stack.keycloak import KeycloakServer, RealmUser, realm
from services.common.auth import Principal, TokenVerifier
from services.common.settings import Settings
from services.console.oidc import OidcSettings

__all__ = [
    "PeopleAndServiceTokens",
    "KeycloakRealm",
    "keycloak_server",
    "keycloak_settings",
    "load_realm",
    "sign_in_through_keycloak",
]


_shared: dict[str, Any] = {"server": None, "users": 0}
"""One Keycloak for the whole session: the fixture is imported by several modules (each import is a
fixture of its own to pytest), and each of them reuses the process the first one started."""


@pytest.fixture(scope="session")
async def keycloak_server(session_dir: Path) -> AsyncIterator[KeycloakServer]:
    """Keycloak for the session (about 16 s to start; the distribution is cached in ~/.cache/tandem)."""
    if _shared["server"] is None:
        server = KeycloakServer(session_dir / "keycloak")
        await server.start(lambda message: print(f"[keycloak] {message}", flush=True))
        _shared["server"] = server
    _shared["users"] += 1
    try:
        yield _shared["server"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            _shared["server"].stop()
            _shared["server"] = None


@dataclass(frozen=True)
class KeycloakRealm:
    server: KeycloakServer
    name: str
    client_id: str
    client_secret: str

    @property
    def issuer(self) -> str:
        return self.server.issuer(self.name)

    @property
    def jwks_url(self) -> str:
        return self.server.jwks_url(self.name)

    def oidc(self) -> OidcSettings:
        return OidcSettings(issuer=self.issuer, client_id=self.client_id, client_secret=self.client_secret)


async def load_realm(
    server: KeycloakServer, *, console_urls: Sequence[str], users: Sequence[RealmUser], access_token_seconds: int = 300
) -> KeycloakRealm:
    """A fresh realm (unique name) with ``users``, whose console client may return to ``console_urls``."""
    name = f"tandem-{uuid.uuid4().hex[:8]}"
    secret = secrets.token_urlsafe(24)
    await server.load_realm(
        realm(
            name=name,
            console_urls=console_urls,
            client_secret=secret,
            users=users,
            access_token_seconds=access_token_seconds,
        )
    )
    return KeycloakRealm(server, name, "tandem-console", secret)


def keycloak_settings(settings: Settings, kc_realm: KeycloakRealm) -> Settings:
    """``settings`` whose verifier checks the realm's RS256 access tokens (JWKS, issuer, audience)."""
    return settings.model_copy(
        update={"jwks_url": kc_realm.jwks_url, "jwt_issuer": kc_realm.issuer, "jwt_audience": "tandem"}
    )


class PeopleAndServiceTokens(TokenVerifier):
    """People's tokens from Keycloak (RS256, JWKS); the services' own tokens (HS256, shared secret).

    Chosen by the token's unverified ``iss``; each is then fully verified by its own verifier.
    """

    def __init__(self, people: Settings, services: Settings) -> None:
        super().__init__(people)
        self.services = TokenVerifier(services)
        self.services_issuer = services.jwt_issuer

    def verify(self, token: str) -> Principal:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            issuer = None
        if issuer == self.services_issuer:
            return self.services.verify(token)
        return super().verify(token)


async def sign_in_through_keycloak(
    console: httpx.AsyncClient, path: str, *, username: str, password: str
) -> httpx.Response:
    """Follow the console's OIDC sign-in over plain HTTP like a browser would, up to the page at ``path``.

    ``console`` talks to the console (its base URL registered in the realm); Keycloak is reached at
    its real address. Keycloak's login cookies are ``Secure`` (a browser keeps them on
    http://127.0.0.1, httpx does not), so they are carried by hand.
    """
    response = await console.get(path)
    keycloak_cookies: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=30) as browser:
        for _step in range(12):
            if response.status_code not in (302, 303):
                break
            target = urljoin(str(response.url), response.headers["location"])
            if target.startswith(str(console.base_url)):
                response = await console.get(target[len(str(console.base_url).rstrip("/")) :])
                continue
            response = await browser.get(target, headers=_cookie_header(keycloak_cookies))
            keycloak_cookies.update(_set_cookies(response))
            if response.status_code == 200 and "kc-form-login" in response.text:
                action = html.unescape(re.search(r'action="([^"]+)"', response.text).group(1))  # type: ignore[union-attr]
                response = await browser.post(
                    action,
                    data={"username": username, "password": password},
                    headers=_cookie_header(keycloak_cookies),
                )
                keycloak_cookies.update(_set_cookies(response))
    return response


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    found: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name, _sep, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def _cookie_header(cookies: dict[str, str]) -> dict[str, Any]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
