"""A workflow with an activity on the real dev server, and a 30-day sleep on the time-skipping server."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import Worker

from contracts.probe import ProbeInput, ProbeResult
from workflows.probe import StackProbeWorkflow, probe_echo


async def test_workflow_with_activity_runs_on_real_dev_server(temporal_client: Any) -> None:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(temporal_client, task_queue=task_queue, workflows=[StackProbeWorkflow], activities=[probe_echo]):
        result: ProbeResult = await temporal_client.execute_workflow(
            StackProbeWorkflow.run,
            ProbeInput(nonce="n-123"),
            id=f"wf-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    assert result.nonce == "n-123"
    assert "@" in result.worker_identity


@activity.defn
async def stamp(label: str) -> str:
    return f"stamped:{label}"


@workflow.defn
class SleepThirtyDays:
    @workflow.run
    async def run(self, label: str) -> list[str]:
        started = workflow.now()
        await workflow.sleep(timedelta(days=30))
        elapsed = workflow.now() - started
        stamped = await workflow.execute_activity(stamp, label, start_to_close_timeout=timedelta(seconds=10))
        return [stamped, str(elapsed.days)]


async def test_thirty_day_sleep_passes_on_time_skipping_server(time_skipping_env: Any) -> None:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(time_skipping_env.client, task_queue=task_queue, workflows=[SleepThirtyDays], activities=[stamp]):
        result = await time_skipping_env.client.execute_workflow(
            SleepThirtyDays.run, "x", id=f"wf-{uuid.uuid4()}", task_queue=task_queue
        )
    assert result == ["stamped:x", "30"]
