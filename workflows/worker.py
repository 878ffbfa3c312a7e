"""The Tandem worker: runs the review-cycle workflows and their activities.

``tandem worker`` (started by ``tandem up``) connects one long-lived client,
registers every workflow and activity, and serves ``/healthz`` and
``/metrics`` on a small HTTP port for probes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from contracts.task_queues import REVIEW_CYCLE_TASK_QUEUE
from workflows.activities import CycleActivities, evaluation_config
from workflows.committee import CommitteeActivities, CommitteeDecisionWorkflow, CommitteeMeetingWorkflow
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.handoffs import HandoffActivities
from workflows.probe import StackProbeWorkflow, probe_echo
from workflows.review_cycle import ReviewCycleWorkflow

__all__ = ["WORKFLOWS", "activities_for", "build_probe_app", "build_worker", "connect", "run_worker"]

log = logging.getLogger(__name__)

WORKFLOWS: list[type] = [ReviewCycleWorkflow, DepartmentCycleWorkflow, StackProbeWorkflow]
WORKFLOWS += [CommitteeMeetingWorkflow, CommitteeDecisionWorkflow]


def activities_for(settings: Any, http: Any) -> list[Any]:
    """Every activity callable, bound to its dependencies (built by the caller, not at import)."""
    from services.common.client import ServiceClient, ServiceTokens

    tokens = ServiceTokens(settings, sub="system:worker", roles=("hr_admin", "ops"))
    client = ServiceClient.from_settings(settings, http=http, tokens=tokens)
    handoffs = HandoffActivities(client=client, scoring_config=evaluation_config, console_url=settings.console_url)
    cycle = CycleActivities(handoffs=handoffs)
    committee = CommitteeActivities(handoffs=handoffs)
    return [probe_echo, *cycle.all(), *committee.all()]


async def connect(
    address: str,
    namespace: str = "default",
    *,
    interceptors: Sequence[Any] = (),
    options: Mapping[str, Any] | None = None,
) -> Client:
    """A client with the pydantic converter; ``interceptors`` (e.g. tracing) also apply to its workers.

    ``options`` are the TLS and API-key arguments (``Settings.temporal_client_options()``). Left out,
    they are read from the ``TANDEM_TEMPORAL_TLS*`` / ``TANDEM_TEMPORAL_API_KEY`` environment, so a
    caller holding only an address (the committee service) connects the way the rest of the process does.
    """
    if options is None:
        from services.common.settings import TemporalClientSettings

        options = TemporalClientSettings().temporal_client_options()
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        interceptors=list(interceptors),
        **options,
    )


def build_worker(
    client: Client,
    *,
    task_queue: str = REVIEW_CYCLE_TASK_QUEUE,
    workflows: Sequence[type] | None = None,
    activities: Sequence[Any] | None = None,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows if workflows is not None else WORKFLOWS),
        activities=list(activities if activities is not None else [probe_echo]),
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_concurrent_activities=100,
    )


def build_probe_app() -> Any:
    """The worker's probe endpoint: ``/healthz`` and the process's Prometheus ``/metrics``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from services.common.telemetry import metrics_response  # also defines the domain counters

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "worker", "task_queue": REVIEW_CYCLE_TASK_QUEUE})

    async def metrics(request: Request) -> Response:
        return metrics_response(request)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


async def run_worker(settings: Any, *, metrics_port: int, host: str = "127.0.0.1") -> None:
    """Run the worker and its probe endpoint until cancelled."""
    import httpx
    import uvicorn

    from services.common.telemetry import configure_tracing, temporal_interceptors

    tracing = configure_tracing(settings, service="worker")
    client = await connect(
        settings.temporal_address,
        settings.temporal_namespace,
        interceptors=temporal_interceptors(tracing),
        options=settings.temporal_client_options(),
    )
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
    worker = build_worker(client, activities=activities_for(settings, http))
    server = uvicorn.Server(uvicorn.Config(build_probe_app(), host=host, port=metrics_port, log_level="warning"))
    log.info("worker polling %s on %s", REVIEW_CYCLE_TASK_QUEUE, settings.temporal_address)
    try:
        async with worker:
            await server.serve()
    finally:
        await http.aclose()
        if tracing is not None:
            tracing.shutdown()
    await asyncio.sleep(0)
