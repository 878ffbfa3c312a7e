"""Composition root of the console: the web console as its own service, with no database.

Every page is rendered from the service APIs, called over HTTP with the signed-in user's token
(:mod:`services.console.upstream`), so the console holds no state of its own beyond the
session cookie. It is built on the same plumbing as the other services (token verifier, body
limits, metrics, tracing) but not on ``create_service_app``, whose lifespan opens a database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.app import PUBLIC
from services.common.auth import TokenVerifier
from services.common.limits import BodySizeLimitMiddleware
from services.common.settings import Settings
from services.common.telemetry import MetricsMiddleware, configure_tracing, instrument_app, metrics_response
from services.console.auth import COOKIE, ConsoleForbidden, SignInRequired, sign_in_url
from services.console.i18n import LocaleMiddleware, _
from services.console.oidc import OidcClient, OidcSettings, SessionRefresh
from services.console.rendering import build_templates, render
from services.console.upstream import TIMEOUT
from services.console.views import include_views

__all__ = ["app_from_env", "create_app"]

SERVICE = "console"


def create_app(
    settings: Settings, *, http_client: httpx.AsyncClient | None = None, oidc: OidcSettings | None = None
) -> FastAPI:
    """Build the console. ``http_client`` (to reach the services and the identity provider) is created
    in the lifespan unless given; a given client is used as is and not closed (tests mount in-process
    services on it). ``oidc`` defaults to the ``TANDEM_OIDC_*`` environment."""
    tracing = configure_tracing(settings, service=SERVICE)
    oidc_settings = oidc if oidc is not None else OidcSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.http = http_client or httpx.AsyncClient(timeout=TIMEOUT)
        app.state.oidc = OidcClient(oidc_settings, app.state.http) if oidc_settings.enabled else None
        app.state.token_verifier.start()  # the issuer's keys (JWKS) load in the background
        try:
            yield
        finally:
            await app.state.token_verifier.aclose()
            if http_client is None:
                await app.state.http.aclose()
            if tracing is not None:
                tracing.shutdown()

    app = FastAPI(
        title="Tandem console",
        description=(
            "The web console: server-rendered pages over the service APIs, each called with the "
            "signed-in user's token. No database."
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = SERVICE
    app.state.token_verifier = TokenVerifier(settings)
    app.state.templates = build_templates()
    app.state.tracing = tracing
    app.add_middleware(SessionRefresh)
    app.add_middleware(LocaleMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, bulk_max_bytes=settings.max_bulk_body_bytes
    )
    app.add_middleware(MetricsMiddleware, service=SERVICE)
    if tracing is not None:
        instrument_app(app, tracing)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, exc: SignInRequired) -> Response:
        response = RedirectResponse(sign_in_url(exc.next_path, exc.reason), status_code=303)
        if exc.reason:
            response.delete_cookie(COOKIE, path="/console")
        return response

    @app.exception_handler(ConsoleForbidden)
    async def _forbidden(request: Request, exc: ConsoleForbidden) -> HTMLResponse:
        roles = ", ".join(sorted(exc.allowed))
        return render(request, exc.user, "forbidden.html", title=_("Not allowed"), roles=roles, status_code=403)

    @app.get("/", summary="The console (redirect)", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/console", status_code=303)

    @app.get("/healthz", tags=["ops"], summary="Liveness (public; the console holds no database)",
             openapi_extra={"x-roles": [PUBLIC]})  # fmt: skip
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": SERVICE}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics of this process (public)",
             openapi_extra={"x-roles": [PUBLIC]}, response_class=Response)  # fmt: skip
    async def metrics(request: Request) -> Response:
        return metrics_response(request)

    include_views(app)
    return app


def app_from_env() -> FastAPI:
    return create_app(Settings())
