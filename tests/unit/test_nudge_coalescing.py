"""Nudges are coalesced per workflow, and the last change of a burst is never dropped."""

from __future__ import annotations

import asyncio

from contracts.cycle import Stage, department_workflow_id
from services.common.nudge import WorkflowNudger


class Recording(WorkflowNudger):
    """The nudger with the Temporal signal replaced by a record of (workflow id, time)."""

    def __init__(self, min_interval: float) -> None:
        super().__init__(address="unused:7233", min_interval=min_interval)
        self.sent: list[str] = []

    async def _signal(self, workflow_id: str, department_id: str | None) -> None:
        self.sent.append(workflow_id)


async def test_a_burst_sends_one_signal_now_and_one_after_its_last_change() -> None:
    nudger = Recording(min_interval=0.2)
    sales = department_workflow_id("c1", Stage.RESULT_APPLICATION, "sales")
    finance = department_workflow_id("c1", Stage.RESULT_APPLICATION, "finance")
    for _ in range(20):
        nudger.task_completed(cycle_id="c1", stage=Stage.RESULT_APPLICATION, department_id="sales")
    nudger.task_completed(cycle_id="c1", stage=Stage.RESULT_APPLICATION, department_id="finance")
    await asyncio.sleep(0.05)
    assert nudger.sent == [sales, finance]  # each workflow at once; its burst is held
    await asyncio.sleep(0.3)
    assert nudger.sent == [sales, finance, sales]  # the trailing signal after the burst's last change
    await asyncio.sleep(0.3)
    assert nudger.sent == [sales, finance, sales]  # nothing changed since: nothing more
    nudger.task_completed(cycle_id="c1", stage=Stage.RESULT_APPLICATION, department_id="sales")
    await asyncio.sleep(0.05)
    assert nudger.sent == [sales, finance, sales, sales]  # a quiet interval later: at once again
    await nudger.close()
