"""Signing in through the organisation's identity provider: OIDC authorization code with PKCE.

The console is a confidential OIDC client (a backend for the browser): the browser only ever
holds HttpOnly cookies, never a token it could leak to a script.

* ``/console/oidc/login`` sends the browser to the provider's authorization endpoint with a fresh
  ``state``, ``nonce`` and PKCE ``code_challenge`` (S256), remembered in a short-lived cookie;
* ``/console/oidc/callback`` checks ``state``, redeems the code with the ``code_verifier``, checks
  the ID token (signature, audience, issuer, ``nonce``), checks the **access token with the same
  verifier the APIs use**, and sets the session cookies: the access token (sent to the APIs), the
  refresh token and the ID token (the hint for logging out);
* :class:`SessionRefresh` renews the access token with the refresh token shortly before it
  expires, on whatever request comes first; a refused refresh ends the session;
* signing out drops the cookies and sends the browser to the provider's ``end_session_endpoint``.

Configured with ``TANDEM_OIDC_*`` (:class:`OidcSettings`); without ``TANDEM_OIDC_ISSUER`` the
console offers no provider sign-in. The services need no OIDC configuration of their own: they
verify the provider's access tokens with ``TANDEM_JWKS_URL``, ``TANDEM_JWT_ISSUER`` and
``TANDEM_JWT_AUDIENCE``. The claims they read (``roles``, ``employee_id``, ``department_id``)
are mapped in the provider (see ``devtools/stack/keycloak.py`` and docs/console.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.auth import COOKIE

__all__ = [
    "FLOW_COOKIE",
    "ID_COOKIE",
    "REFRESH_COOKIE",
    "LoginFlow",
    "OidcClient",
    "OidcError",
    "OidcSettings",
    "SessionRefresh",
    "TokenSet",
]

REFRESH_COOKIE = "tandem_refresh"
ID_COOKIE = "tandem_id"
FLOW_COOKIE = "tandem_oidc"
"""Holds state, nonce, PKCE verifier and the page to return to, for the ten minutes a login may take."""
FLOW_SECONDS = 600
REFRESH_MARGIN_SECONDS = 30
"""Renew an access token this long before it expires, so a page's API calls never race its expiry."""


class OidcSettings(BaseSettings):
    """``TANDEM_OIDC_*``: the console's registration at the identity provider."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_OIDC_", extra="ignore", env_ignore_empty=True)

    issuer: str | None = Field(default=None, description="The provider's issuer URL, e.g. https://idp/realms/tandem.")
    client_id: str = Field(default="tandem-console")
    client_secret: SecretStr | None = Field(default=None, description="The console's client secret (confidential).")
    scopes: str = Field(default="openid", description="Requested scopes; the claims come from the provider's mappers.")
    provider_name: str = Field(default="Keycloak", description="Shown on the sign-in button.")
    redirect_url: str | None = Field(
        default=None, description="The callback URL registered at the provider; default: this console's own URL."
    )

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)


class OidcError(Exception):
    """The provider refused, or its answer did not check out; the message is shown on the sign-in page."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    expires_in: int
    refresh_expires_in: int

    @classmethod
    def of(cls, body: dict[str, Any]) -> TokenSet:
        if not isinstance(body.get("access_token"), str):
            raise OidcError("the identity provider answered without an access token")
        return cls(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
            expires_in=int(body.get("expires_in") or 300),
            refresh_expires_in=int(body.get("refresh_expires_in") or 0),
        )

    @property
    def session_seconds(self) -> int:
        """How long the cookies live: the refresh token's life (0 means no expiry: a day), else the access token's."""
        if self.refresh_token:
            return self.refresh_expires_in or 24 * 3600
        return self.expires_in


@dataclass(frozen=True)
class LoginFlow:
    """One login in progress: what the callback must find again."""

    state: str
    nonce: str
    verifier: str
    next_path: str

    def cookie(self) -> str:
        return base64.urlsafe_b64encode(json.dumps(self.__dict__).encode()).decode()

    @classmethod
    def from_cookie(cls, value: str | None) -> LoginFlow | None:
        if not value:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(value.encode()))
            return cls(**{k: str(data[k]) for k in ("state", "nonce", "verifier", "next_path")})
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcClient:
    """The provider's endpoints (from its discovery document, read once) and the three exchanges."""

    def __init__(self, settings: OidcSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self._metadata: dict[str, Any] | None = None
        self._keys: jwt.PyJWKSet | None = None

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            issuer = (self.settings.issuer or "").rstrip("/")
            try:
                response = await self.http.get(f"{issuer}/.well-known/openid-configuration")
            except httpx.HTTPError as exc:
                raise OidcError(f"the identity provider at {issuer} is unreachable ({type(exc).__name__})") from exc
            if response.status_code != 200:
                raise OidcError(f"the identity provider's discovery document answered {response.status_code}")
            self._metadata = response.json()
        return self._metadata

    @staticmethod
    def start(next_path: str) -> LoginFlow:
        return LoginFlow(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            next_path=next_path,
        )

    async def authorization_url(self, flow: LoginFlow, redirect_uri: str, *, locale: str | None = None) -> str:
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.scopes,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": flow.challenge,
            "code_challenge_method": "S256",
        }
        if locale:
            query["ui_locales"] = locale
        return f"{(await self.metadata())['authorization_endpoint']}?{urlencode(query)}"

    async def _token(self, form: dict[str, str]) -> TokenSet:
        form = {**form, "client_id": self.settings.client_id}
        if self.settings.client_secret is not None:
            form["client_secret"] = self.settings.client_secret.get_secret_value()
        try:
            response = await self.http.post((await self.metadata())["token_endpoint"], data=form)
        except httpx.HTTPError as exc:
            raise OidcError(f"the identity provider is unreachable ({type(exc).__name__})") from exc
        if response.status_code != 200:
            try:
                body = response.json()
                reason = body.get("error_description") or body.get("error") or response.text[:200]
            except ValueError:
                reason = response.text[:200]
            raise OidcError(f"the identity provider refused ({response.status_code}): {reason}")
        return TokenSet.of(response.json())

    async def redeem(self, code: str, flow: LoginFlow, redirect_uri: str) -> TokenSet:
        """The tokens for an authorization code, with the ID token checked against the flow's nonce."""
        tokens = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": flow.verifier,
            }
        )
        if tokens.id_token is not None:
            claims = await self._id_claims(tokens.id_token)
            if claims.get("nonce") != flow.nonce:
                raise OidcError("the ID token's nonce does not match this sign-in; start again")
        return tokens

    async def refresh(self, refresh_token: str) -> TokenSet:
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def _signing_key(self, token: str) -> Any:
        """The provider's key that signed ``token``; the key set is fetched again for a key id not seen yet."""
        kid = jwt.get_unverified_header(token).get("kid")
        for attempt in range(2):
            if self._keys is None or attempt:
                response = await self.http.get((await self.metadata())["jwks_uri"])
                if response.status_code != 200:
                    raise OidcError(f"the identity provider's key set answered {response.status_code}")
                self._keys = jwt.PyJWKSet.from_dict(response.json())
            for key in self._keys.keys:
                if kid is None or key.key_id == kid:
                    return key.key
        raise OidcError(f"the identity provider has no signing key {kid!r}")

    async def _id_claims(self, id_token: str) -> dict[str, Any]:
        metadata = await self.metadata()
        try:
            key = await self._signing_key(id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=["RS256", "ES256", "PS256"],
                audience=self.settings.client_id,
                issuer=metadata.get("issuer", self.settings.issuer),
            )
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token does not check out: {exc}") from exc
        return claims

    async def logout_url(self, id_token: str | None, after: str) -> str | None:
        """Where to send the browser to end the provider's session too (None: the provider has no such endpoint)."""
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except OidcError:
            return None
        if not endpoint:
            return None
        query = {"client_id": self.settings.client_id, "post_logout_redirect_uri": after}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(query)}"


def unverified_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT without checking it (only to decide when to refresh; the APIs verify)."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


def SessionRefresh(app: ASGIApp) -> ASGIApp:  # noqa: N802 - used like a middleware class
    """Renews the session's access token before the request reaches a page.

    When the ``tandem_console`` cookie is missing or expires within :data:`REFRESH_MARGIN_SECONDS`
    and a refresh token is present, the provider is asked for new tokens; the request then goes
    on with the new access token, and the response sets the new cookies. A refused refresh drops
    the session cookies, so the page sends the visitor to sign in.
    """

    async def refreshing(scope: Scope, receive: Receive, send: Send) -> None:
        oidc: OidcClient | None = getattr(scope["app"].state, "oidc", None) if "app" in scope else None
        if scope["type"] != "http" or oidc is None or not scope["path"].startswith("/console"):
            await app(scope, receive, send)
            return
        cookies = _request_cookies(scope)
        refresh_token = cookies.get(REFRESH_COOKIE)
        access = cookies.get(COOKIE)
        expiry = unverified_expiry(access) if access else None
        if not refresh_token or (expiry is not None and expiry > time.time() + REFRESH_MARGIN_SECONDS):
            await app(scope, receive, send)
            return
        try:
            tokens: TokenSet | None = await oidc.refresh(refresh_token)
        except OidcError:
            tokens = None
        secure = scope.get("scheme") == "https"
        if tokens is None:
            for name in (COOKIE, REFRESH_COOKIE, ID_COOKIE):
                cookies.pop(name, None)
            set_cookies = [_expired(name) for name in (COOKIE, REFRESH_COOKIE, ID_COOKIE)]
        else:
            cookies[COOKIE] = tokens.access_token
            if tokens.refresh_token:
                cookies[REFRESH_COOKIE] = tokens.refresh_token
            set_cookies = session_cookies(tokens, secure=secure)
        _replace_cookie_header(scope, cookies)

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for value in set_cookies:
                    headers.append("set-cookie", value)
            await send(message)

        await app(scope, receive, send_with_cookies)

    return refreshing


def _request_cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is ignored, as starlette does
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def _replace_cookie_header(scope: Scope, cookies: dict[str, str]) -> None:
    headers = [(k, v) for k, v in scope.get("headers", []) if k != b"cookie"]
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode("latin-1")))
    scope["headers"] = headers


def _cookie(name: str, value: str, max_age: int, *, secure: bool) -> str:
    return f"{name}={value}; Max-Age={max_age}; Path=/console; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def _expired(name: str) -> str:
    return f'{name}=""; Max-Age=0; Path=/console; HttpOnly; SameSite=Lax'


def session_cookies(tokens: TokenSet, *, secure: bool) -> list[str]:
    """The ``Set-Cookie`` values of a signed-in session: access token, refresh token, ID token."""
    lifetime = tokens.session_seconds
    values = [_cookie(COOKIE, tokens.access_token, lifetime, secure=secure)]
    if tokens.refresh_token:
        values.append(_cookie(REFRESH_COOKIE, tokens.refresh_token, lifetime, secure=secure))
    if tokens.id_token:
        values.append(_cookie(ID_COOKIE, tokens.id_token, lifetime, secure=secure))
    return values


def expired_session_cookies() -> list[str]:
    return [_expired(name) for name in (COOKIE, REFRESH_COOKIE, ID_COOKIE, FLOW_COOKIE)]
