"""Metrics middleware, domain counters, the worker probe app and the tracing switch, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry import trace
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from temporalio.contrib.opentelemetry import TracingInterceptor

from services.common import telemetry
from services.common.app import PUBLIC, create_service_app
from services.common.settings import DEV_JWT_SECRET, Settings
from services.common.telemetry import (
    UNMATCHED_ROUTE,
    MetricsMiddleware,
    configure_tracing,
    instrument_app,
    record_consumer_lag,
    record_ingest_batch,
    temporal_interceptors,
    trace_headers,
)
from workflows.worker import build_probe_app

SETTINGS = Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-unit")
TRACED = SETTINGS.model_copy(update={"tracing_enabled": True, "tracing_exporter": "memory"})


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _latency_count(service: str, route: str, method: str, status: str) -> float:
    labels = {"service": service, "route": route, "method": method, "status": status}
    return _value("tandem_http_request_duration_seconds_count", **labels)


def _toy_app(service: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(MetricsMiddleware, service=service)

    @app.get("/items/{item_id}")
    async def read_item(item_id: str) -> dict[str, str]:
        if item_id == "missing":
            raise HTTPException(status_code=404, detail="no such item")
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unhandled")

    return app


@pytest.fixture
async def toy() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_toy_app("toy"), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_latency_is_labelled_by_route_template_method_and_status(toy: httpx.AsyncClient) -> None:
    before_ok = _latency_count("toy", "/items/{item_id}", "GET", "200")
    before_missing = _latency_count("toy", "/items/{item_id}", "GET", "404")
    assert (await toy.get("/items/a")).status_code == 200
    assert (await toy.get("/items/b")).status_code == 200
    assert (await toy.get("/items/missing")).status_code == 404
    assert _latency_count("toy", "/items/{item_id}", "GET", "200") == before_ok + 2
    assert _latency_count("toy", "/items/{item_id}", "GET", "404") == before_missing + 1
    assert (
        REGISTRY.get_sample_value(
            "tandem_http_request_duration_seconds_count",
            {"service": "toy", "route": "/items/a", "method": "GET", "status": "200"},
        )
        is None
    ), "raw paths must never become label values"


async def test_unmatched_paths_share_one_label_and_crashes_count_as_500(toy: httpx.AsyncClient) -> None:
    before_unmatched = _latency_count("toy", UNMATCHED_ROUTE, "GET", "404")
    before_boom = _latency_count("toy", "/boom", "GET", "500")
    assert (await toy.get("/no/such/path/123")).status_code == 404
    assert (await toy.get("/boom")).status_code == 500
    assert _latency_count("toy", UNMATCHED_ROUTE, "GET", "404") == before_unmatched + 1
    assert _latency_count("toy", "/boom", "GET", "500") == before_boom + 1


def _series(service: str) -> set[tuple[str, str, str]]:
    """(route, method, status) of every latency series of ``service`` in the registry."""
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"])
        for family in REGISTRY.collect()
        if family.name == "tandem_http_request_duration_seconds"
        for s in family.samples
        if s.name.endswith("_count") and s.labels["service"] == service
    }


async def test_unknown_methods_are_folded_so_the_series_stay_bounded() -> None:
    """Issue 14: every unknown HTTP method used to create a new histogram series, forever."""
    transport = httpx.ASGITransport(app=_toy_app("toy-methods"), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/items/a")).status_code == 200
        for i in range(200):
            await client.request(f"M{i}X", "/items/a")
            await client.request(f"WEIRD{i}", f"/no/such/{i}")
    series = _series("toy-methods")
    assert len(series) <= 4, sorted(series)[:10]  # GET 200, OTHER on the route and unmatched: not 400 series
    assert {method for _, method, _ in series} == {"GET", "OTHER"}
    assert {route for route, _, _ in series} == {"/items/{item_id}", UNMATCHED_ROUTE}
    assert telemetry.method_label("PATCH") == "PATCH" and telemetry.method_label("get") == telemetry.OTHER_METHOD
    assert telemetry.status_label(0) == "other" and telemetry.status_label(404) == "404"


def test_service_apps_can_be_built_many_times_in_one_process() -> None:
    apps = [
        create_service_app(service=f"svc{i % 2}", settings=SETTINGS, description="test", routers=[]) for i in range(3)
    ]
    spec = apps[-1].openapi()
    metrics_op = spec["paths"]["/metrics"]["get"]
    assert metrics_op["x-roles"] == [PUBLIC]
    assert metrics_op["summary"]
    assert all(app.state.tracing is None for app in apps), "tracing is off by default"


def test_ingest_batch_counters_and_lag_gauge() -> None:
    topic = "metrics.unit-test"
    record_ingest_batch(topic=topic, inserted=5, duplicates=2, dead_lettered=1)
    record_ingest_batch(topic=topic, inserted=3, duplicates=0, dead_lettered=0)
    assert _value("tandem_events_ingested_total", topic=topic) == 8
    assert _value("tandem_events_duplicate_total", topic=topic) == 2
    assert _value("tandem_events_dead_lettered_total", topic=topic) == 1

    @dataclass(frozen=True)
    class Partition:  # the two attributes of aiokafka's TopicPartition the helper reads
        topic: str
        partition: int

    class Watermarks:  # aiokafka's consumer.highwater(): None until the first fetch of a partition
        def highwater(self, tp: Partition) -> int | None:
            return {0: 120, 1: 40}.get(tp.partition)

    record_consumer_lag(
        Watermarks(), {Partition(topic, 0): 100, Partition(topic, 1): 40, Partition(topic, 2): 7}, group="g-unit"
    )
    assert _value("tandem_consumer_lag", group="g-unit", topic=topic, partition="0") == 20
    assert _value("tandem_consumer_lag", group="g-unit", topic=topic, partition="1") == 0
    assert (
        REGISTRY.get_sample_value("tandem_consumer_lag", {"group": "g-unit", "topic": topic, "partition": "2"}) is None
    ), "no watermark yet: no guess"


async def test_worker_probe_app_serves_health_and_the_domain_counters() -> None:
    telemetry.STAGE_TRANSITIONS.labels(stage="tracking", action="exit").inc()
    telemetry.NOTIFICATIONS_SENT.labels(kind="escalation_hr", stage="evaluation").inc()
    transport = httpx.ASGITransport(app=build_probe_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        health = await client.get("/healthz")
        scraped = await client.get("/metrics")
    assert health.json()["service"] == "worker"
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    for name in (
        "tandem_events_ingested",
        "tandem_events_dead_lettered",
        "tandem_consumer_lag",
        "tandem_stage_transitions",
        "tandem_notifications_sent",
        "tandem_http_request_duration_seconds",
    ):
        assert name in families, f"{name} missing from the worker's /metrics"
    transitions = [s for s in families["tandem_stage_transitions"].samples if s.name.endswith("_total")]
    assert any(s.labels == {"stage": "tracking", "action": "exit"} and s.value >= 1 for s in transitions)


async def test_openmetrics_is_served_when_asked_for() -> None:
    transport = httpx.ASGITransport(app=build_probe_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        scraped = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert scraped.headers["content-type"].startswith("application/openmetrics-text")
    assert scraped.text.rstrip().endswith("# EOF")


def test_tracing_is_off_by_default() -> None:
    assert configure_tracing(SETTINGS, service="unit") is None
    assert temporal_interceptors(None) == []


async def test_tracing_switch_produces_http_spans_in_memory() -> None:
    tracing = configure_tracing(TRACED, service="unit")
    assert tracing is not None and tracing.exporter_name == "memory"
    app = _toy_app("toy-traced")
    instrument_app(app, tracing)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/items/42")).status_code == 200
    spans: Any = tracing.exporter.get_finished_spans()  # type: ignore[attr-defined]
    server = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    assert [s.name for s in server] == ["GET /items/{item_id}"]
    assert server[0].attributes["http.route"] == "/items/{item_id}"
    assert server[0].resource.attributes["service.name"] == "tandem-unit"
    tracing.shutdown()


def test_trace_headers_carry_the_current_span() -> None:
    tracing = configure_tracing(TRACED, service="unit")
    assert tracing is not None
    assert "traceparent" not in trace_headers(), "outside a span there is nothing to propagate"
    with tracing.provider.get_tracer("unit").start_as_current_span("outer") as span:
        headers = trace_headers({"Authorization": "Bearer x"})
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert headers["Authorization"] == "Bearer x"
    assert headers["traceparent"].split("-")[1] == trace_id
    interceptors = temporal_interceptors(tracing)
    assert len(interceptors) == 1 and isinstance(interceptors[0], TracingInterceptor)
    tracing.shutdown()


def test_otlp_without_an_exporter_package_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_OTLP_EXPORTERS", ("tandem_no_such_exporter_module",))
    with pytest.raises(RuntimeError, match="pip install opentelemetry-exporter-otlp-proto-http"):
        configure_tracing(TRACED.model_copy(update={"tracing_exporter": "otlp"}), service="unit")
    auto = configure_tracing(TRACED.model_copy(update={"tracing_exporter": "auto"}), service="unit")
    assert auto is not None and auto.exporter_name == "console", "auto falls back to the console"
    auto.shutdown()
