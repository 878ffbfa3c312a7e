"""``/metrics`` on a real service app (database + migrations), HTTP spans with tracing on, and
Temporal spans from ``TracingInterceptor`` on the real dev server."""

from __future__ import annotations

import uuid
from typing import Any

from opentelemetry import trace
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.worker import Worker

from contracts.probe import ProbeInput
from services.common.settings import Settings
from services.common.telemetry import configure_tracing, temporal_interceptors
from services.goals.app import create_app
from tests.support import api_client, auth
from workflows.probe import StackProbeWorkflow, probe_echo

OBJECTIVE_ROUTE = "/v1/cycles/{cycle_id}/objectives/{objective_id}"


def _latency_counts(text: str) -> dict[tuple[str, str, str], float]:
    """(route, method, status) -> observation count of the goals service's request-latency histogram."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = families["tandem_http_request_duration_seconds"]
    assert histogram.type == "histogram"
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in histogram.samples
        if s.name.endswith("_count") and s.labels["service"] == "goals"
    }


async def test_metrics_endpoint_reports_latency_by_route_template(settings: Settings, database_url: str) -> None:
    cycle_id = f"c-{uuid.uuid4().hex[:8]}"
    async with api_client(create_app, settings, database_url) as client:
        first = await client.get("/metrics")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/plain; version=")
        before = _latency_counts(first.text)

        headers = auth(settings, "hr_admin")
        listed = await client.get(f"/v1/cycles/{cycle_id}/objectives", headers=headers)
        assert listed.status_code == 200, listed.text
        for objective_id in ("o-1", "o-2"):
            missing = await client.get(f"/v1/cycles/{cycle_id}/objectives/{objective_id}", headers=headers)
            assert missing.status_code == 404, missing.text
        assert (await client.get(f"/v1/cycles/{cycle_id}/objectives")).status_code == 401

        after = _latency_counts((await client.get("/metrics")).text)
        scraped = (await client.get("/metrics")).text

    def grew(key: tuple[str, str, str]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew(("/v1/cycles/{cycle_id}/objectives", "GET", "200")) == 1
    assert grew((OBJECTIVE_ROUTE, "GET", "404")) == 2
    assert grew(("/v1/cycles/{cycle_id}/objectives", "GET", "401")) == 1
    assert not any(cycle_id in route for route, _, _ in after), "raw paths leaked into the route label"
    for counter in ("tandem_events_ingested_total", "tandem_notifications_sent_total", "tandem_consumer_lag"):
        assert f"# TYPE {counter.removesuffix('_total')}" in scraped


async def test_metrics_endpoint_is_public_and_in_openapi(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        spec = (await client.get("/openapi.json")).json()
        assert (await client.get("/metrics")).status_code == 200  # no token: scraped by Prometheus
    assert spec["paths"]["/metrics"]["get"]["x-roles"] == ["public"]


async def test_tracing_on_produces_server_spans_that_join_the_callers_trace(
    settings: Settings, database_url: str
) -> None:
    traced = settings.model_copy(update={"tracing_enabled": True, "tracing_exporter": "memory"})
    caller_trace = uuid.uuid4().hex
    traceparent = f"00-{caller_trace}-{uuid.uuid4().hex[:16]}-01"
    async with api_client(create_app, traced, database_url) as client:
        tracing = client.app.state.tracing  # type: ignore[attr-defined]
        response = await client.get(
            "/v1/cycles/c-traced/objectives", headers={**auth(settings, "ops"), "traceparent": traceparent}
        )
        assert response.status_code == 200, response.text
        await client.get("/metrics")
        await client.get("/healthz")
    spans = tracing.exporter.get_finished_spans()
    server = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    assert [s.name for s in server] == ["GET /v1/cycles/{cycle_id}/objectives"], "probes and scrapes are not traced"
    span = server[0]
    assert format(span.context.trace_id, "032x") == caller_trace
    assert span.attributes["http.route"] == "/v1/cycles/{cycle_id}/objectives"
    assert span.resource.attributes["service.name"] == "tandem-goals"


async def test_tracing_interceptor_traces_a_workflow_and_its_activity(
    settings: Settings, temporal_client: Client
) -> None:
    tracing = configure_tracing(
        settings.model_copy(update={"tracing_enabled": True, "tracing_exporter": "memory"}), service="worker"
    )
    assert tracing is not None
    config: Any = {**temporal_client.config(), "interceptors": temporal_interceptors(tracing)}
    client = Client(**config)
    task_queue = f"tq-{uuid.uuid4()}"
    workflow_id = f"wf-traced-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[StackProbeWorkflow], activities=[probe_echo]):
        result = await client.execute_workflow(
            StackProbeWorkflow.run, ProbeInput(nonce="traced"), id=workflow_id, task_queue=task_queue
        )
    assert result.nonce == "traced"
    tracing.shutdown()
    spans = tracing.exporter.get_finished_spans()  # type: ignore[attr-defined]
    names = {s.name for s in spans}
    for expected in (
        "StartWorkflow:StackProbeWorkflow",
        "RunWorkflow:StackProbeWorkflow",
        "StartActivity:probe_echo",
        "RunActivity:probe_echo",
    ):
        assert expected in names, f"{expected} not in {sorted(names)}"
    assert len({s.context.trace_id for s in spans}) == 1, "client, workflow and activity share one trace"


async def test_unknown_methods_and_paths_do_not_grow_the_label_set(settings: Settings, database_url: str) -> None:
    """Issue 14: each unknown method was a new histogram series; now they fold into ``OTHER``."""
    async with api_client(create_app, settings, database_url) as client:
        before = _latency_counts((await client.get("/metrics")).text)
        for i in range(50):
            await client.request(f"PROBE{i}", "/v1/cycles/c-1/objectives")
            await client.request(f"SCAN{i}", f"/wp-admin/{i}.php")
        after = _latency_counts((await client.get("/metrics")).text)
    new = set(after) - set(before)
    assert len(new) <= 3, sorted(new)[:10]
    assert {method for _, method, _ in new} <= {"OTHER", "GET"}
    assert not any("wp-admin" in route for route, _, _ in after)
