"""A one-activity workflow that proves a worker is polling and can run activities.

``tandem status`` starts it and waits a few seconds; the answer is the worker's
health as seen through Temporal, not just "the process exists".
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from contracts.probe import ProbeInput, ProbeResult

__all__ = ["StackProbeWorkflow", "probe_echo"]


@activity.defn
async def probe_echo(request: ProbeInput) -> ProbeResult:
    return ProbeResult(nonce=request.nonce, worker_identity=f"{os.getpid()}@{socket.gethostname()}")


@workflow.defn
class StackProbeWorkflow:
    @workflow.run
    async def run(self, request: ProbeInput) -> ProbeResult:
        return await workflow.execute_activity(probe_echo, request, start_to_close_timeout=timedelta(seconds=10))
