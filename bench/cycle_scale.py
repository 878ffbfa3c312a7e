"""What ``bench.cycle`` measures beyond stage times at scale (1,000 departments, 100,000 people).

* **histories across continue-as-new**: a workflow's runs, followed back from the latest through
  ``continued_execution_run_id``, so a cycle whose parent continued as new is replayed and
  checked whole, and the largest single run (what Temporal's limits apply to) is reported;
* **handoff latency**: for each stage transition, from the moment the last department of the
  stage closed (and from the stage's deadline) to the first task of the next stage (the first
  activity any department workflow of the next stage schedules), for the cycle and for the
  baseline, whose transitions are bare workflows run back to back;
* **memory**: resident memory of the benchmark process, which hosts the worker, and of the
  Temporal server, sampled twice a second; the peak during the cycle and during the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from contracts.cycle import STAGE_ORDER

__all__ = [
    "MemorySampler",
    "PeriodicSampler",
    "fetch_all_runs",
    "fetch_runs",
    "flatten",
    "largest_run",
    "print_scale",
    "rss_mb",
    "transitions",
]


def _seconds(event: HistoryEvent) -> float:
    return float(event.event_time.ToNanoseconds()) / 1e9


# -- histories across continue-as-new -------------------------------------------------------------------------
async def fetch_runs(client: Client, workflow_id: str) -> list[list[HistoryEvent]]:
    """Every run of ``workflow_id``, oldest first: the latest run, then each run it continued from."""
    runs: list[list[HistoryEvent]] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events = list(history.events)
        runs.insert(0, events)
        started = events[0].workflow_execution_started_event_attributes if events else None
        run_id = started.continued_execution_run_id if started is not None else ""
        if not run_id:
            return runs


async def fetch_all_runs(
    client: Client, workflow_ids: Iterable[str], *, parallel: int = 8
) -> dict[str, list[list[HistoryEvent]]]:
    limit = asyncio.Semaphore(parallel)

    async def one(workflow_id: str) -> tuple[str, list[list[HistoryEvent]]]:
        async with limit:
            return workflow_id, await fetch_runs(client, workflow_id)

    return dict(await asyncio.gather(*(one(w) for w in workflow_ids)))


def flatten(runs_by_workflow: Mapping[str, Sequence[Sequence[HistoryEvent]]]) -> dict[str, list[HistoryEvent]]:
    """Each workflow's runs as one sequence of events, in order (event ids restart in every run)."""
    return {w: [e for run in runs for e in run] for w, runs in runs_by_workflow.items()}


def largest_run(runs_by_workflow: Mapping[str, Sequence[Sequence[HistoryEvent]]]) -> dict[str, Any]:
    """The single run with the most events (Temporal limits a run's history: 51,200 events / 50 MB)."""
    best: dict[str, Any] = {"events": 0, "kb": 0.0, "workflow_id": "", "runs": 0}
    for workflow_id, runs in runs_by_workflow.items():
        for run in runs:
            if len(run) > best["events"]:
                best = {
                    "events": len(run),
                    "kb": sum(e.ByteSize() for e in run) / 1024,
                    "workflow_id": workflow_id,
                    "runs": len(runs),
                }
    best["continued_as_new"] = sum(len(runs) - 1 for runs in runs_by_workflow.values())
    return best


# -- handoff latency ------------------------------------------------------------------------------------------
def _first_task(events: Sequence[HistoryEvent]) -> float | None:
    for e in events:
        if e.HasField("activity_task_scheduled_event_attributes"):
            return _seconds(e)
    return None


def transitions(
    departments: Mapping[tuple[str, str], Sequence[HistoryEvent]], deadlines: Mapping[str, datetime] | None = None
) -> list[dict[str, Any]]:
    """Per stage transition: last department of the stage closed -> first task of the next stage (and, with
    ``deadlines``, the stage's deadline -> that first task). ``departments``: (stage, department) -> events."""
    out: list[dict[str, Any]] = []
    for stage, following in zip(STAGE_ORDER, STAGE_ORDER[1:], strict=False):
        closes = [_seconds(events[-1]) for (s, _), events in departments.items() if s == stage.value and events]
        starts = [t for (s, _), events in departments.items() if s == following.value and (t := _first_task(events))]
        if not closes or not starts:
            continue
        row: dict[str, Any] = {
            "from": stage.value,
            "to": following.value,
            "last_close_to_first_task_s": min(starts) - max(closes),
        }
        if deadlines is not None and stage.value in deadlines:
            row["deadline_to_first_task_s"] = min(starts) - deadlines[stage.value].timestamp()
        out.append(row)
    return out


# -- memory ---------------------------------------------------------------------------------------------------
def rss_mb(pid: int | str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeriodicSampler:
    """Calls :meth:`sample` every ``interval`` seconds in the background, and once more when stopped."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()


class MemorySampler(PeriodicSampler):
    """Resident memory of this process (the worker runs in it) and of the Temporal server, twice a second."""

    def __init__(self, server_pid: int | None, interval: float = 0.5) -> None:
        super().__init__(interval)
        self.server_pid = server_pid
        self.samples: list[tuple[float, float, float]] = []

    def sample(self) -> None:
        server = rss_mb(self.server_pid) if self.server_pid else 0.0
        self.samples.append((time.perf_counter(), rss_mb("self"), server))

    def peak(self, start: float, end: float) -> dict[str, float]:
        """Peak RSS (MB) of the benchmark process (worker) and the server between two perf_counter() times."""
        window = [s for s in self.samples if start <= s[0] <= end]
        if not window:
            return {}
        return {"worker_mb": max(s[1] for s in window), "server_mb": max(s[2] for s in window)}


# -- the report -----------------------------------------------------------------------------------------------
def print_scale(console: Console, number: int, scale: Mapping[str, Any]) -> None:
    largest, memory = scale["largest_run"], scale["memory"]
    console.print(
        f"Round {number}: largest single run {largest['events']:,} events / {largest['kb']:,.0f} KB "
        f"({largest['workflow_id']}, {largest['runs']} run(s)); {largest['continued_as_new']} continue-as-new in all; "
        f"baseline largest {scale['baseline_largest_run']['events']:,} events"
    )
    console.print(
        f"Round {number}: peak RSS of the benchmark process (worker) {memory['cycle'].get('worker_mb', 0):,.0f} MB "
        f"during the cycle, {memory['baseline'].get('worker_mb', 0):,.0f} MB during the baseline; Temporal server "
        f"{memory['cycle'].get('server_mb', 0):,.0f} / {memory['baseline'].get('server_mb', 0):,.0f} MB"
    )
    table = Table(
        title=f"Round {number}: stage transitions (last department closed / deadline -> next stage's first task)"
    )
    for column in ("transition", "cycle s", "baseline s", "ratio", "deadline -> first task s"):
        table.add_column(column, justify="left" if column == "transition" else "right")
    for row in scale["transitions"]:
        base = row.get("baseline_last_close_to_first_task_s")
        table.add_row(
            f"{row['from']} -> {row['to']}",
            f"{row['last_close_to_first_task_s']:.2f}",
            "" if base is None else f"{base:.2f}",
            "" if row.get("ratio") is None else f"{row['ratio']:.2f}x",
            f"{row.get('deadline_to_first_task_s', float('nan')):.2f}",
        )
    console.print(table)
