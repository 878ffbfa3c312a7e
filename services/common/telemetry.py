"""Prometheus metrics and (optional) OpenTelemetry tracing for every service and the worker.

Metrics live in prometheus_client's default registry, one per process. Every
metric is defined **once, here, at import time**: creating many apps in one
process (tests do) never registers a metric twice. Domain code only imports a
metric object (or one of the small ``record_*`` helpers) and increments it.

Tracing is off unless ``TANDEM_TRACING_ENABLED=true``. When on, each FastAPI app
gets the OpenTelemetry FastAPI instrumentation and the worker's Temporal client
gets ``temporalio.contrib.opentelemetry.TracingInterceptor``. Spans go to the
exporter chosen by ``TANDEM_TRACING_EXPORTER``: ``otlp`` (needs an OTLP exporter
package), ``console``, ``memory`` (tests) or ``auto`` (OTLP when installed, else
console). The SDK and the instrumentation packages are imported only then.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "CONSUMER_LAG",
    "DLQ_EVENTS",
    "EVENTS_DUPLICATE",
    "EVENTS_INGESTED",
    "NOTIFICATIONS_SENT",
    "NOTIFICATION_DELIVERY_FAILURES",
    "REQUEST_LATENCY",
    "STAGE_TRANSITIONS",
    "HTTP_METHODS",
    "OTHER_METHOD",
    "UNMATCHED_ROUTE",
    "MetricsMiddleware",
    "Tracing",
    "configure_tracing",
    "instrument_app",
    "method_label",
    "metrics_response",
    "record_consumer_lag",
    "record_ingest_batch",
    "status_label",
    "temporal_interceptors",
    "trace_headers",
]

log = logging.getLogger(__name__)

# -- metrics (defined once per process) ------------------------------------------------------------

REQUEST_LATENCY = Histogram(
    "tandem_http_request_duration_seconds",
    "HTTP request latency, by service, route template (not the raw path), method and status code.",
    ["service", "route", "method", "status"],
)
EVENTS_INGESTED = Counter(
    "tandem_events_ingested",
    "Metric events stored by the tracking consumer (first delivery of each event_id).",
    ["topic"],
)
EVENTS_DUPLICATE = Counter(
    "tandem_events_duplicate",
    "Redelivered metric events recognised by their event_id and skipped.",
    ["topic"],
)
DLQ_EVENTS = Counter(
    "tandem_events_dead_lettered",
    "Messages rejected by the tracking consumer and published to the dead-letter topic, by source topic.",
    ["topic"],
)
CONSUMER_LAG = Gauge(
    "tandem_consumer_lag",
    "Kafka consumer lag (high watermark minus committed offset) after the last batch, per partition.",
    ["group", "topic", "partition"],
)
STAGE_TRANSITIONS = Counter(
    "tandem_stage_transitions",
    "Stage entry/exit/compensation side effects completed by the worker, by stage and action.",
    ["stage", "action"],
)
NOTIFICATIONS_SENT = Counter(
    "tandem_notifications_sent",
    "Reminders and escalations recorded and handed to the senders (once per idempotency key), by kind and stage.",
    ["kind", "stage"],
)
NOTIFICATION_DELIVERY_FAILURES = Counter(
    "tandem_notification_delivery_failures",
    "Notification deliveries that failed in one sender (webhook, smtp); the record is kept.",
    ["sender"],
)

UNMATCHED_ROUTE = "<unmatched>"
"""Route label of requests that matched no route: raw paths would make the label set unbounded."""
OTHER_METHOD = "OTHER"
"""Method label of every request method outside :data:`HTTP_METHODS`."""
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""The methods that get their own label value. A client may send any token as the method
(``FOO``, ``X-1``, ...): each would otherwise create a new histogram series, kept for the life
of the process, so unknown methods are folded into :data:`OTHER_METHOD`."""


def record_ingest_batch(*, topic: str, inserted: int, duplicates: int, dead_lettered: int) -> None:
    """Count one consumed batch of the tracking consumer."""
    if inserted:
        EVENTS_INGESTED.labels(topic=topic).inc(inserted)
    if duplicates:
        EVENTS_DUPLICATE.labels(topic=topic).inc(duplicates)
    if dead_lettered:
        DLQ_EVENTS.labels(topic=topic).inc(dead_lettered)


def record_consumer_lag(consumer: Any, committed: Mapping[Any, int], *, group: str) -> None:
    """Set the lag gauge from an aiokafka consumer's known high watermarks and the offsets just committed.

    ``consumer.highwater(tp)`` is the watermark of the last fetch response, so
    this costs no extra request to the broker.
    """
    for tp, offset in committed.items():
        high = consumer.highwater(tp)
        if high is not None:
            CONSUMER_LAG.labels(group=group, topic=tp.topic, partition=str(tp.partition)).set(max(high - offset, 0))


def metrics_response(request: Request) -> Response:
    """The process's metrics in the text format the scraper asked for (Prometheus or OpenMetrics)."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(content=encoder(REGISTRY), media_type=content_type)


class MetricsMiddleware:
    """Times every HTTP request into ``REQUEST_LATENCY`` (pure ASGI: no body buffering).

    Every label comes from a fixed set, whatever the client sends: the route *template* (or
    :data:`UNMATCHED_ROUTE`), the method folded by :func:`method_label`, the status code as the
    app answered it. The number of series is bounded by routes x methods x statuses.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before the response started is reported as a 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            REQUEST_LATENCY.labels(
                service=self.service,
                route=_route_template(scope),
                method=method_label(scope.get("method", "")),
                status=status_label(status),
            ).observe(time.perf_counter() - started)


def method_label(method: str) -> str:
    """The method as a label value: one of :data:`HTTP_METHODS`, else :data:`OTHER_METHOD`."""
    return method if method in HTTP_METHODS else OTHER_METHOD


def status_label(status: int) -> str:
    """The status code as a label value; anything outside 100..599 (no valid response) is ``other``."""
    return str(status) if 100 <= status <= 599 else "other"


def _route_template(scope: Scope) -> str:
    # The router stores the matched route in the (shared) scope; its path is the template.
    route = scope.get("route")
    if route is None:
        return UNMATCHED_ROUTE
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED_ROUTE


# -- tracing -------------------------------------------------------------------------------------

_OTLP_EXPORTERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)
_UNTRACED_URLS = r"^[a-z]+://[^/]+/(healthz|metrics)$"
"""Probe and scrape requests: frequent and uninteresting as spans (``/v1/ingest/metrics`` still is traced)."""

_global_provider_set = False


@dataclass(frozen=True)
class Tracing:
    """One tracer provider and its exporter (kept so tests can read an in-memory exporter)."""

    provider: TracerProvider
    exporter: SpanExporter
    exporter_name: str

    def shutdown(self) -> None:
        """Flush pending spans and stop the exporter."""
        self.provider.shutdown()


def _missing(package: str, exc: ImportError) -> RuntimeError:
    return RuntimeError(
        f"TANDEM_TRACING_ENABLED is true but {package} is not installed ({exc}); "
        f"install it (pip install {package}) or set TANDEM_TRACING_ENABLED=false"
    )


def _otlp_exporter(endpoint: str | None) -> SpanExporter | None:
    for module_name in _OTLP_EXPORTERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        exporter: SpanExporter = module.OTLPSpanExporter(endpoint=endpoint) if endpoint else module.OTLPSpanExporter()
        return exporter
    return None


def _exporter(settings: Settings) -> tuple[SpanExporter, str]:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    choice = settings.tracing_exporter
    if choice == "memory":
        return InMemorySpanExporter(), "memory"
    if choice == "console":
        return ConsoleSpanExporter(), "console"
    otlp = _otlp_exporter(settings.otlp_endpoint)
    if otlp is not None:
        return otlp, "otlp"
    if choice == "otlp" or settings.otlp_endpoint:
        raise RuntimeError(
            "TANDEM_TRACING_EXPORTER=otlp (or TANDEM_OTLP_ENDPOINT) needs an OTLP exporter: "
            "pip install opentelemetry-exporter-otlp-proto-http"
        )
    log.info("tracing: no OTLP exporter installed, spans are printed to the console")
    return ConsoleSpanExporter(), "console"


def configure_tracing(settings: Settings, *, service: str) -> Tracing | None:
    """A tracer provider for ``service`` when tracing is enabled, else None.

    The first provider of the process also becomes the global one, so code that
    calls ``opentelemetry.trace.get_tracer`` joins the same traces.
    """
    global _global_provider_set
    if not settings.tracing_enabled:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise _missing("opentelemetry-sdk", exc) from exc
    exporter, name = _exporter(settings)
    provider = TracerProvider(resource=Resource.create({"service.name": f"tandem-{service}"}))
    # Batch for network exporters; synchronous for console/memory so spans are visible at once.
    provider.add_span_processor(BatchSpanProcessor(exporter) if name == "otlp" else SimpleSpanProcessor(exporter))
    if not _global_provider_set:
        trace.set_tracer_provider(provider)
        _global_provider_set = True
    return Tracing(provider=provider, exporter=exporter, exporter_name=name)


def instrument_app(app: FastAPI, tracing: Tracing) -> None:
    """Add the OpenTelemetry FastAPI instrumentation (server spans named ``METHOD /route/{template}``)."""
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as exc:
        raise _missing("opentelemetry-instrumentation-fastapi", exc) from exc
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider, excluded_urls=_UNTRACED_URLS)


def temporal_interceptors(tracing: Tracing | None) -> list[Any]:
    """``[TracingInterceptor]`` for a Temporal client/worker when tracing is on, else ``[]``."""
    if tracing is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracing.provider.get_tracer("tandem.temporal"))]


def trace_headers(headers: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """``headers`` plus the W3C ``traceparent`` of the current span (nothing when tracing is off)."""
    from opentelemetry import propagate

    carrier: MutableMapping[str, str] = {} if headers is None else headers
    propagate.inject(carrier)
    return carrier
