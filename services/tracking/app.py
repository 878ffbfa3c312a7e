"""Composition root of the tracking service.

Besides the API, the lifespan runs three background tasks:

* the Kafka consumer (``consumer.TrackingConsumer``), unless
  ``TANDEM_TRACKING_CONSUMER=0`` (default: on, except with ``TANDEM_ENV=test``);
* the staleness evaluator and the check-in reminders (``reminders.CheckInReminders``, through the
  cycles service), every ``TANDEM_TRACKING_STALENESS_INTERVAL`` seconds (default 60; 0 turns it
  off; off by default with ``TANDEM_ENV=test``);
* the live roll-up (``rollup.RollupPusher``): changed KPI progress pushed to goals at most every
  ``rollup_interval`` seconds (default 2; 0 turns it off; off by default with ``TANDEM_ENV=test``),
  marked by the consumer's per-batch hook and by check-ins with a value.

``GET /healthz`` adds the consumer's health: ``"status": "degraded"`` and an ``ingestion`` object
(``paused`` with the error, or ``stalled since ...`` on a partition with lag whose committed
offset does not advance) when ingestion is not running; still 200, so a readiness probe keeps
serving the API (progress reads work while ingestion waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from sqlalchemy import text

from contracts.topics import METRICS, METRICS_DLQ
from services.common.app import create_service_app
from services.common.auth import Role
from services.common.client import ServiceClient, ServiceTokens
from services.common.db import session_scope
from services.common.kafka import KafkaSecurity
from services.common.participants import participants_router
from services.common.settings import Settings
from services.tracking import api_keys, service
from services.tracking.api import router
from services.tracking.consumer import CONSUMER_GROUP, TrackingConsumer
from services.tracking.ingest.liveness import LagWatch
from services.tracking.models import TrackingAudit, TrackingDepartment, TrackingOutbox, TrackingParticipant
from services.tracking.publisher import MetricPublisher
from services.tracking.reminders import CheckInReminders
from services.tracking.rollup import DEFAULT_INTERVAL, DEFAULT_RECONCILE, RollupPusher

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    run_consumer: bool | None = None,
    staleness_interval: float | None = None,
    topic: str = METRICS,
    dlq_topic: str = METRICS_DLQ,
    group_id: str = CONSUMER_GROUP,
    rollup_interval: float | None = None,
    rollup_reconcile: float = DEFAULT_RECONCILE,
    http_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """Build the app. ``http_client`` (to reach goals and cycles) is created in the lifespan unless
    given; a given client is used as is and not closed (tests mount in-process services on it)."""
    testing = settings.env == "test"
    consume = next(v for v in (run_consumer, settings.tracking_consumer, not testing) if v is not None)
    interval = next(
        v for v in (staleness_interval, settings.tracking_staleness_interval, 0.0 if testing else 60.0) if v is not None
    )
    push_default = 0.0 if testing else DEFAULT_INTERVAL
    push_every = next(v for v in (rollup_interval, settings.tracking_rollup_interval, push_default) if v is not None)

    async def start(app: FastAPI) -> None:
        app.state.http = http_client if http_client is not None else httpx.AsyncClient(timeout=10.0)
        tokens = ServiceTokens(settings, sub="system:tracking", roles=(Role.HR_ADMIN.value,))
        app.state.services = ServiceClient.from_settings(settings, http=app.state.http, tokens=tokens)
        app.state.check_in_reminders = CheckInReminders(client=app.state.services)
        app.state.rollup = (
            RollupPusher(
                sessions=app.state.sessions,
                client=app.state.services,
                interval=push_every,
                reconcile=rollup_reconcile,
            )
            if push_every > 0
            else None
        )
        app.state.metric_publisher = MetricPublisher(
            settings.kafka_bootstrap_servers,
            idempotence=settings.kafka_idempotence,
            topic=topic,
            security=KafkaSecurity.from_settings(settings),
        )
        app.state.tracking_tasks = []
        if consume:
            consumer = TrackingConsumer(
                engine=app.state.engine,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                group_id=group_id,
                topic=topic,
                dlq_topic=dlq_topic,
                idempotence=settings.kafka_idempotence,
                security=KafkaSecurity.from_settings(settings),
                enforce_principal=settings.kafka_enforce_principal,
                on_batch=app.state.rollup.on_batch if app.state.rollup is not None else None,
            )
            app.state.tracking_consumer = consumer
            app.state.tracking_tasks.append(asyncio.create_task(consumer.run(), name="tracking-consumer"))
        if interval > 0:
            app.state.tracking_tasks.append(
                asyncio.create_task(_staleness_loop(app, interval), name="tracking-staleness")
            )
        if app.state.rollup is not None:
            app.state.tracking_tasks.append(asyncio.create_task(app.state.rollup.run(), name="tracking-rollup"))

    async def stop(app: FastAPI) -> None:
        consumer: TrackingConsumer | None = getattr(app.state, "tracking_consumer", None)
        if consumer is not None:
            consumer.stop()  # finishes the batch in flight; the staleness loop is just cancelled
        for task in app.state.tracking_tasks:
            if task.get_name() != "tracking-consumer":
                task.cancel()
        for task in app.state.tracking_tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5.0)
        await app.state.metric_publisher.close()
        if http_client is None:
            await app.state.http.aclose()

    app = create_service_app(
        service="tracking",
        settings=settings,
        description=(
            "Metric ingestion (Kafka consumer and HTTP ingest), KPI progress, check-ins, "
            "data-owner SLAs (stale KPIs) and ingestion ops figures."
        ),
        routers=[router, api_keys.router, participants_router(TrackingParticipant, TrackingDepartment)],
        on_startup=[start],
        on_shutdown=[stop],
        outbox_model=TrackingOutbox,
        audit_model=TrackingAudit,
    )
    app.state.tracking_topic = topic
    app.state.tracking_group = group_id
    app.state.ingestion_watch = LagWatch()
    # Ahead of the shared probe (same path and body, plus ingestion); the shared one stays documented.
    app.router.routes.insert(0, APIRoute("/healthz", _healthz, methods=["GET"], include_in_schema=False))
    return app


async def _healthz(request: Request) -> dict[str, Any]:
    """The shared liveness and database probe, plus the in-process consumer's health."""
    async with request.app.state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    body: dict[str, Any] = {"status": "ok", "service": "tracking"}
    consumer: TrackingConsumer | None = getattr(request.app.state, "tracking_consumer", None)
    if consumer is not None:
        health = consumer.health()
        body["ingestion"] = {
            "state": health.state,
            "status": health.message,
            "since": health.since.isoformat() if health.since else None,
            "partition": health.partition,
            "last_error": health.last_error,
        }
        if health.state in ("paused", "stalled"):
            body["status"] = "degraded"
    return body


async def _staleness_loop(app: FastAPI, interval: float) -> None:
    """Staleness, then the check-in reminders due, every ``interval`` seconds."""
    reminders: CheckInReminders = app.state.check_in_reminders
    while True:
        await asyncio.sleep(interval)
        try:
            async with session_scope(app.state.sessions) as session:
                result = await service.evaluate_staleness(session=session)
            if result.became_stale or result.became_fresh:
                log.info("staleness: %d stale, %d fresh", len(result.became_stale), len(result.became_fresh))
            async with session_scope(app.state.sessions) as session:
                sent = await reminders.send_due(session=session)
            if sent:
                log.info("check-in reminders: %d sent", sent)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - try again next interval
            log.exception("staleness evaluation or check-in reminders failed")


def app_from_env() -> FastAPI:
    return create_app(Settings())
