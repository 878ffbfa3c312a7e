"""A worker that is SIGKILLed inside a handoff, for ``test_handoff_crash.py``.

    python -m tests.integration.crash_worker --address HOST:PORT --task-queue Q --marker FILE

It runs the real handoff activities (``workflows.handoffs.HandoffActivities``, configured from the
``TANDEM_*`` environment like ``tandem worker``) and :class:`RunHandoff`, a workflow that runs one
handoff with a short heartbeat timeout. On an activity's first attempt the process SIGKILLs itself
right after the activity's first write call (POST, PUT, PATCH, DELETE) has returned: that call's
effect is in the service's tables and the activity's completion never reaches Temporal, which runs
the activity again on the next worker once the heartbeat times out. Before dying it writes which
call it died after to ``--marker``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.handoffs import CycleRef

HEARTBEAT = timedelta(seconds=1)
"""How soon Temporal gives up on the dead worker's attempt and retries on the next worker."""
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class HandoffCall(BaseModel):
    name: str
    ref: CycleRef


@workflow.defn
class RunHandoff:
    """One handoff activity, as ``ReviewCycleWorkflow`` runs it, but with a 1-second heartbeat timeout."""

    @workflow.run
    async def run(self, call: HandoffCall) -> dict[str, Any]:
        result: dict[str, Any] = await workflow.execute_activity(
            call.name,
            call.ref,
            result_type=dict,
            start_to_close_timeout=timedelta(seconds=120),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200),
                maximum_interval=timedelta(seconds=1),
                maximum_attempts=10,
                non_retryable_error_types=["BadRequest"],
            ),
        )
        return result


async def main(address: str, task_queue: str, marker: Path) -> None:
    import httpx
    from temporalio.worker import Worker

    from contracts.evaluation import evaluation_config
    from services.common.client import ServiceClient, ServiceTokens
    from services.common.settings import Settings
    from workflows.handoffs import HandoffActivities
    from workflows.worker import connect

    class DiesAfterItsFirstWrite(HandoffActivities):
        async def call(self, method: str, service: Any, path: str, **options: Any) -> Any:
            result = await super().call(method, service, path, **options)
            if method in WRITES and activity.info().attempt == 1:
                died = json.dumps({"activity": activity.info().activity_type, "call": f"{method} {path}"})
                await asyncio.to_thread(marker.write_text, died)
                os.kill(os.getpid(), signal.SIGKILL)
            return result

    settings = Settings()
    client = await connect(address)
    async with httpx.AsyncClient(timeout=30) as http:
        tokens = ServiceTokens(settings, sub="system:worker", roles=("hr_admin", "ops"))
        services = ServiceClient.from_settings(settings, http=http, tokens=tokens)
        handoffs = DiesAfterItsFirstWrite(client=services, scoring_config=evaluation_config)
        # No workflow cache: the next worker takes the workflow's tasks at once, not after a sticky timeout.
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[RunHandoff],
            activities=handoffs.all(),
            max_cached_workflows=0,
        )
        await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--marker", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.address, args.task_queue, args.marker))
