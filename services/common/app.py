"""Shared FastAPI plumbing: the app skeleton every service's ``create_app`` builds on.

It wires the token verifier, the database engine (created in the lifespan,
never at import time), clear JSON error bodies and the public health probe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from services.common.audit import AuditMiddleware, install_audit
from services.common.audit_api import audit_router
from services.common.auth import TokenVerifier
from services.common.db import create_engine, create_session_factory
from services.common.errors import PROBLEM_SCHEMA, DomainError
from services.common.kafka import KafkaSecurity, create_producer
from services.common.limits import BodySizeLimitMiddleware
from services.common.migrations import upgrade
from services.common.nudge import WorkflowNudger
from services.common.outbox import OutboxRelay
from services.common.settings import Settings
from services.common.telemetry import MetricsMiddleware, configure_tracing, instrument_app, metrics_response

__all__ = ["PUBLIC", "create_service_app", "route_roles"]

PUBLIC = "public"
"""Marker for the few unauthenticated endpoints (health, metrics); see ``openapi_extra``."""


Hook = Callable[[FastAPI], Awaitable[None]]


def create_service_app(
    *,
    service: str,
    settings: Settings,
    description: str,
    routers: Sequence[APIRouter],
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    outbox_model: Any = None,
    audit_model: Any = None,
) -> FastAPI:
    """Build a service app; its engine and clients live only inside the lifespan.

    With ``audit_model`` (an ``AuditMixin`` table) every change made through ``app.state.sessions``
    is recorded in the audit log, and ``GET /v1/audit`` serves it.
    """

    has_migrations = (Path(__file__).resolve().parent.parent / service / "migrations").is_dir()
    tracing = configure_tracing(settings, service=service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.token_verifier.start()  # the issuer's keys (JWKS) load in the background
        engine = create_engine(settings.database_url_for(service))
        app.state.engine = engine
        app.state.sessions = create_session_factory(engine)
        if audit_model is not None:
            install_audit(app.state.sessions, audit_model, service=service)
        if settings.auto_migrate and has_migrations:
            await upgrade(service, settings.database_url_for(service))
        relay: OutboxRelay | None = None
        try:
            if outbox_model is not None and settings.outbox_relay:
                # Connected by the relay on its first pass, not here: the service starts while Kafka
                # is down, and the outbox is relayed once the broker is back.
                relay = OutboxRelay(
                    sessions=app.state.sessions,
                    model=outbox_model,
                    producer_factory=lambda: create_producer(
                        settings.kafka_bootstrap_servers,
                        idempotence=settings.kafka_idempotence,
                        client_id=f"tandem-{service}",
                        security=KafkaSecurity.from_settings(settings),
                    ),
                )
                relay.start()
            app.state.outbox_relay = relay
            if settings.cycle_workflows:
                app.state.nudger = WorkflowNudger(
                    address=settings.temporal_address,
                    namespace=settings.temporal_namespace,
                    options=settings.temporal_client_options(),
                )
            for hook in on_startup:
                await hook(app)
            yield
        finally:
            for hook in reversed(on_shutdown):
                await hook(app)
            nudger = getattr(app.state, "nudger", None)
            if nudger is not None:
                await nudger.close()
            if relay is not None:
                await relay.close()
            await app.state.token_verifier.aclose()
            await engine.dispose()
            if tracing is not None:
                tracing.shutdown()

    app = FastAPI(
        title=f"Tandem {service} service",
        description=description,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.token_verifier = TokenVerifier(settings)
    app.state.tracing = tracing
    # Added first, so it runs inside the metrics middleware: rejected bodies are counted (401, 413).
    # It needs the route table to know which routes need credentials and whom a bulk push admits;
    # read on the first request, once every router is included.
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        bulk_max_bytes=settings.max_bulk_body_bytes,
        route_roles=lambda: route_roles(app.routes),
    )
    app.add_middleware(MetricsMiddleware, service=service)
    if audit_model is not None:
        app.add_middleware(AuditMiddleware)
    if tracing is not None:
        instrument_app(app, tracing)

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        return JSONResponse(status_code=exc.status_code, content=body)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors[:5])
        return JSONResponse(status_code=422, content={"detail": summary, "errors": errors})

    @app.get(
        "/healthz",
        tags=["ops"],
        summary="Liveness and database readiness (public)",
        openapi_extra={"x-roles": [PUBLIC]},
    )
    async def healthz(request: Request) -> dict[str, str]:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"status": "ok", "service": service}

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics of this process (public; restrict at the network level)",
        openapi_extra={"x-roles": [PUBLIC]},
        response_class=Response,
    )
    async def metrics(request: Request) -> Response:
        return metrics_response(request)

    for router in routers:
        app.include_router(router)
    if audit_model is not None:
        app.include_router(audit_router(audit_model))
    _declare_problem_body(app)
    return app


def route_roles(routes: Sequence[Any], prefix: str = "") -> dict[tuple[str, str], set[str]]:
    """(METHOD, path) -> the roles its ``requires(...)`` dependencies admit, for every API route."""
    from fastapi.routing import APIRoute

    found: dict[tuple[str, str], set[str]] = {}
    for route in routes:
        if isinstance(route, APIRoute):
            allowed = _allowed_roles(route.dependant)
            for method in route.methods or ():
                found[(method, prefix + route.path)] = allowed
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.120)
            found.update(route_roles(route.original_router.routes, prefix + route.include_context.prefix))
    return {key: value for key, value in found.items() if value}


def _allowed_roles(dependant: Any) -> set[str]:
    roles: set[str] = set(getattr(dependant.call, "allowed_roles", ()) or ())
    for sub in dependant.dependencies:
        roles |= _allowed_roles(sub)
    return roles


def _declare_problem_body(app: FastAPI) -> None:
    """Document 422 as the body the handlers really send (not FastAPI's default list), and each
    operation's roles as ``x-roles`` (from its ``requires(...)``) where the route did not say."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            if "HTTPValidationError" in components:
                components["HTTPValidationError"] = PROBLEM_SCHEMA
                components.pop("ValidationError", None)
            roles = route_roles(app.routes)
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    declared = roles.get((method.upper(), path))
                    if declared and "x-roles" not in operation:
                        operation["x-roles"] = sorted(declared)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
