"""Review-cycle benchmark: one whole cycle for N employees in M departments on a real Temporal dev server.

    python -m bench.cycle --employees 10000 --departments 50 [--rounds 2] [--address host:port] [--json out.json]

The stage services are simulated in process: activities with the real names
(``check_pending``, ``send_notification`` and the typed stage handoffs) backed by an
in-memory org. Every ``check_pending`` for (stage, department) answers who is
still pending, then a batch of that department's people acts. A few departments
are deliberately slow: they miss the deadline, so reminders and escalations go
through ``send_notification`` (idempotent on its key) and the stage closes at
the deadline; in tracking their KPIs go stale (stale reminder, then escalation).
Stage durations are compressed to seconds (deadlines a few seconds apart,
reminders and the HR delay in fractions of a day, re-checks every second).

In the same run, on the same server, a baseline replays exactly the same work
with bare workflows (``bench.BaselineScriptWorkflow``): for every (stage,
department) one client-started workflow issuing the same activity calls, with
the same inputs, in the same order, with the same timers (all read back from
that department child's history), all departments of a stage at once. The
ratio cycle / baseline is the cost of our orchestration (parent, children,
progress signals, search attributes, queries). Because both runs wait on the
same timers, the table also shows the "active" ratio: time beyond the longest
department's timers, cycle over baseline.

At the end it checks correctness (every department of every stage has an
outcome, no notification went out twice, services, histories and baseline agree
on every call), profiles both runs from their histories (workflow-task latency,
history size, signals) and samples /proc to show how much CPU other processes
took: the benchmark machine is shared. ``--rounds`` repeats cycle + baseline
pairs and reports the median.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError

from bench import BaselineScript, BaselineScriptWorkflow, BaselineStep
from bench.cycle_scale import (
    MemorySampler,
    PeriodicSampler,
    fetch_all_runs,
    flatten,
    largest_run,
    print_scale,
    transitions,
)
from bench.support import proc_jiffies, split_employees
from contracts.cycle import STAGE_ORDER, DeadlinePolicy, Stage, department_workflow_id, review_cycle_workflow_id
from contracts.handoffs import HANDOFF_RESULTS, HANDOFF_STAGE, CycleRef, Handoff
from contracts.workflow_io import (
    CycleStatus,
    DepartmentOutcome,
    NotificationRequest,
    NotificationResult,
    PendingQuery,
    PendingSummary,
    ReviewCycleInput,
    StageAction,
    StageActionResult,
    StageSchedule,
)
from devtools.stack.temporal import SEARCH_ATTRIBUTES, TemporalDevServer
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.review_cycle import ReviewCycleWorkflow
from workflows.worker import build_worker, connect

__all__ = ["Plan", "SimulatedOrg", "StageScripts", "main"]

DAY_S = 86_400.0
ALL_DEPARTMENTS = "*"
ACTIVITY_INPUTS: dict[str, type] = {
    "check_pending": PendingQuery,
    "send_notification": NotificationRequest,
    "stage_action": StageAction,
    **{name: CycleRef for name in HANDOFF_RESULTS},
}
TARGET_RATIO = 1.5


# -- the simulated org ----------------------------------------------------------------------------------
@dataclass
class Department:
    department_id: str
    employee_ids: list[str]
    slow: bool
    batch: int = 0
    """People who act between two checks of one stage."""

    @property
    def head_id(self) -> str:
        return self.employee_ids[0]

    @property
    def kpis(self) -> int:
        return max(1, len(self.employee_ids) // 2)


class SimulatedOrg:
    """The stage services, in memory: who is pending per (stage, department), and what was sent.

    Counts every activity call per (stage, department, activity) and stamps the
    wall-clock time of each stage action, so stage durations are measured the
    same way for the cycle and the baseline.
    """

    def __init__(self, departments: Sequence[Department], *, stale_checks: int) -> None:
        self.departments = {d.department_id: d for d in departments}
        self.stale_checks = stale_checks
        self._pending: dict[tuple[Stage, str], list[str]] = {}
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.notifications: dict[str, NotificationRequest] = {}
        self.notification_calls: Counter[str] = Counter()
        self.stage_marks: dict[tuple[str, str], float] = {}
        self.actions: Counter[tuple[str, str]] = Counter()

    @property
    def department_ids(self) -> list[str]:
        return list(self.departments)

    def fresh_copy(self) -> SimulatedOrg:
        return SimulatedOrg(list(self.departments.values()), stale_checks=self.stale_checks)

    @activity.defn(name="check_pending")
    async def check_pending(self, query: PendingQuery) -> PendingSummary:
        key = (query.stage.value, query.department_id, "check_pending")
        self.calls[key] += 1
        department = self.departments[query.department_id]
        if query.stage == Stage.TRACKING:
            # A slow department's KPIs are stale for its first checks: stale reminder, then escalation.
            stale = max(1, department.kpis // 10) if department.slow and self.calls[key] <= self.stale_checks else 0
            return PendingSummary(
                total=department.kpis,
                done=department.kpis - stale,
                pending=stale,
                owner_ids=[department.head_id] if stale else [],
                head_employee_id=department.head_id,
            )
        pending = self._pending.setdefault((query.stage, query.department_id), list(department.employee_ids))
        total = len(department.employee_ids)
        summary = PendingSummary(
            total=total,
            done=total - len(pending),
            pending=len(pending),
            owner_ids=pending[:50],
            head_employee_id=department.head_id,
        )
        del pending[: department.batch]  # until the next check, a batch of people acts
        return summary

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        self.calls[(request.stage.value, request.department_id, "send_notification")] += 1
        self.notification_calls[request.idempotency_key] += 1
        created = request.idempotency_key not in self.notifications
        if created:
            self.notifications[request.idempotency_key] = request
        return NotificationResult(notification_id=request.idempotency_key, created=created)

    @activity.defn(name="stage_action")
    async def stage_action(self, action: StageAction) -> StageActionResult:
        self.calls[(action.stage.value, ALL_DEPARTMENTS, "stage_action")] += 1
        self.actions[(action.stage.value, action.action)] += 1
        self.stage_marks.setdefault((action.stage.value, action.action), time.perf_counter())
        return StageActionResult(detail=f"simulated {action.action} of {action.stage.value}")

    def handoff(self, name: str) -> Callable[..., Any]:
        """A simulated typed handoff: counted per stage like ``stage_action`` was."""
        stage, action = HANDOFF_STAGE[name]
        result_type = HANDOFF_RESULTS[name]

        @activity.defn(name=name)
        async def run(ref: CycleRef) -> Handoff:
            self.calls[(stage, ALL_DEPARTMENTS, name)] += 1
            self.actions[(stage, name)] += 1
            self.stage_marks.setdefault((stage, action), time.perf_counter())
            return result_type(detail=f"simulated {name}")

        return run

    def activities(self) -> list[Callable[..., Any]]:
        handoffs = [self.handoff(name) for name in HANDOFF_RESULTS]
        return [self.check_pending, self.send_notification, self.stage_action, *handoffs]

    def stage_window(self, stage: Stage) -> tuple[float, float]:
        """From the stage's first opening handoff to its first closing one. Tracking opens with goal
        setting's close, and feedback closes with result application's opening."""
        index = STAGE_ORDER.index(stage)
        enter = self.stage_marks.get((stage.value, "enter"))
        if enter is None:
            enter = self.stage_marks[(STAGE_ORDER[index - 1].value, "exit")]
        end = self.stage_marks.get((stage.value, "exit"))
        if end is None:
            end = self.stage_marks[(STAGE_ORDER[index + 1].value, "enter")]
        return enter, end

    def stage_seconds(self, stage: Stage) -> float:
        start, end = self.stage_window(stage)
        return end - start

    def created(self, stage: Stage, department_id: str) -> list[NotificationRequest]:
        return [n for n in self.notifications.values() if n.stage == stage and n.department_id == department_id]


@dataclass(frozen=True)
class Plan:
    """Compressed stage durations, derived from the org so fast departments finish before the reminders."""

    recheck_s: float
    stage_s: float
    tracking_s: float
    hr_after_s: float
    slack_s: float
    reminder_fractions: tuple[float, ...] = (0.4, 0.15)

    @property
    def reminder_days_before(self) -> list[float]:
        return [f * self.stage_s / DAY_S for f in self.reminder_fractions]

    def total_s(self) -> float:
        """The planned length of the whole cycle."""
        return 4 * (self.stage_s + self.hr_after_s + self.slack_s) + self.tracking_s + self.slack_s

    def schedule(self, start: datetime) -> list[StageSchedule]:
        """Deadlines a few seconds apart; a stage whose slow departments close at deadline + HR delay gets that."""
        out: list[StageSchedule] = []
        at = start
        for stage in STAGE_ORDER:
            tracking = stage == Stage.TRACKING
            at += timedelta(seconds=self.tracking_s if tracking else self.stage_s)
            out.append(StageSchedule(stage=stage, deadline=at))
            at += timedelta(seconds=self.slack_s + (0 if tracking else self.hr_after_s))
        return out


def build_org(
    *, employees: int, departments: int, slow: int, batch: int, recheck_s: float, stage_s: float | None, seed: int
) -> tuple[SimulatedOrg, Plan]:
    rng = random.Random(seed)
    sizes = split_employees(employees, departments, rng)
    slow_ids = set(rng.sample(range(departments), k=min(slow, departments)))
    next_id = 0
    depts: list[Department] = []
    for i, size in enumerate(sizes):
        ids = [f"e{n:06d}" for n in range(next_id, next_id + size)]
        next_id += size
        depts.append(Department(department_id=f"dept-{i:03d}", employee_ids=ids, slow=i in slow_ids, batch=batch))
    fast_sizes = [len(d.employee_ids) for d in depts if not d.slow] or [1]
    fast_finish_s = math.ceil(max(fast_sizes) / batch) * recheck_s
    hr_after_s = max(2.0, 2 * recheck_s)
    # Fast departments must be done before the first reminder (at 60% of the stage), with room for lag.
    derived_stage_s = max(8.0, math.ceil((fast_finish_s + 3 * recheck_s) / 0.6))
    stale_checks = math.ceil(hr_after_s / recheck_s) + 2
    plan = Plan(
        recheck_s=recheck_s,
        stage_s=stage_s or derived_stage_s,
        tracking_s=stale_checks * recheck_s + 4.0,
        hr_after_s=hr_after_s,
        slack_s=2.0,
    )
    checks_in_stage = math.ceil((plan.stage_s + plan.hr_after_s) / recheck_s) + 1
    for d in depts:
        if d.slow:  # at most half of them act before the stage closes
            d.batch = len(d.employee_ids) // (2 * checks_in_stage)
    return SimulatedOrg(depts, stale_checks=stale_checks), plan


# -- reading histories: the scripts to replay, and where the time went ---------------------------------------
def _seconds(event: HistoryEvent) -> float:
    return float(event.event_time.ToNanoseconds()) / 1e9


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class HistoryStats:
    """Aggregated over a group of workflow histories."""

    workflows: int = 0
    events: list[int] = field(default_factory=list)
    history_bytes: list[int] = field(default_factory=list)
    workflow_tasks: int = 0
    wft_schedule_to_start: list[float] = field(default_factory=list)
    wft_start_to_complete: list[float] = field(default_factory=list)
    activity_schedule_to_close: list[float] = field(default_factory=list)
    timer_lateness: list[float] = field(default_factory=list)
    timer_seconds: float = 0.0
    signals_sent: int = 0
    signals_received: int = 0
    children_started: int = 0
    continued_as_new: int = 0

    def add(self, events: Sequence[HistoryEvent]) -> None:
        by_id = {e.event_id: e for e in events}
        self.workflows += 1
        self.events.append(len(events))
        self.history_bytes.append(sum(e.ByteSize() for e in events))
        for e in events:
            kind = e.WhichOneof("attributes")
            if kind == "workflow_task_started_event_attributes":
                scheduled = by_id[e.workflow_task_started_event_attributes.scheduled_event_id]
                self.wft_schedule_to_start.append(_seconds(e) - _seconds(scheduled))
            elif kind == "workflow_task_completed_event_attributes":
                self.workflow_tasks += 1
                started = by_id[e.workflow_task_completed_event_attributes.started_event_id]
                self.wft_start_to_complete.append(_seconds(e) - _seconds(started))
            elif kind == "activity_task_completed_event_attributes":
                scheduled = by_id[e.activity_task_completed_event_attributes.scheduled_event_id]
                self.activity_schedule_to_close.append(_seconds(e) - _seconds(scheduled))
            elif kind == "timer_fired_event_attributes":
                started = by_id[e.timer_fired_event_attributes.started_event_id]
                wanted = started.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
                self.timer_lateness.append(_seconds(e) - _seconds(started) - wanted)
                self.timer_seconds += wanted
            elif kind == "signal_external_workflow_execution_initiated_event_attributes":
                self.signals_sent += 1
            elif kind == "workflow_execution_signaled_event_attributes":
                self.signals_received += 1
            elif kind == "child_workflow_execution_started_event_attributes":
                self.children_started += 1
            elif kind == "workflow_execution_continued_as_new_event_attributes":
                self.continued_as_new += 1

    def summary(self) -> dict[str, float]:
        ms = 1000.0
        return {
            "workflows": self.workflows,
            "events_mean": statistics.fmean(self.events) if self.events else 0.0,
            "events_max": max(self.events, default=0),
            "history_kb_mean": statistics.fmean(self.history_bytes) / 1024 if self.history_bytes else 0.0,
            "history_kb_max": max(self.history_bytes, default=0) / 1024,
            "workflow_tasks": self.workflow_tasks,
            "wft_schedule_to_start_ms_mean": ms * _mean(self.wft_schedule_to_start),
            "wft_schedule_to_start_ms_p95": ms * _percentile(self.wft_schedule_to_start, 0.95),
            "wft_start_to_complete_ms_mean": ms * _mean(self.wft_start_to_complete),
            "wft_start_to_complete_ms_p95": ms * _percentile(self.wft_start_to_complete, 0.95),
            "activity_schedule_to_close_ms_mean": ms * _mean(self.activity_schedule_to_close),
            "activity_schedule_to_close_ms_p95": ms * _percentile(self.activity_schedule_to_close, 0.95),
            "timer_lateness_ms_mean": ms * _mean(self.timer_lateness),
            "timer_lateness_ms_p95": ms * _percentile(self.timer_lateness, 0.95),
            "timer_seconds": self.timer_seconds,
            "signals_sent": self.signals_sent,
            "signals_received": self.signals_received,
            "children_started": self.children_started,
            "continued_as_new": self.continued_as_new,
        }


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


async def script_of(client: Client, stage: Stage, department_id: str, events: Sequence[HistoryEvent]) -> BaselineScript:
    """The activity calls (decoded inputs) and timers of one history, in order."""
    script = BaselineScript(stage=stage.value, department_id=department_id)
    for e in events:
        kind = e.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            attrs = e.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            [arg] = await client.data_converter.decode(list(attrs.input.payloads), [ACTIVITY_INPUTS[name]])
            step = BaselineStep(activity=name)
            if name == "check_pending":
                step.query = arg
            elif name == "send_notification":
                step.notification = arg
            elif name == "stage_action":
                step.action = arg
            else:
                step.ref = arg
            script.steps.append(step)
        elif kind == "timer_started_event_attributes":
            duration = e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
            script.steps.append(BaselineStep(sleep_seconds=duration))
    return script


# -- who used the CPU ---------------------------------------------------------------------------------------
class CpuSampler(PeriodicSampler):
    """Samples /proc twice a second: how busy the machine was, and how much of it was us or the server.

    The machine is shared, so "others" (everything but this process and the Temporal
    server) says whether a slow stage was our fault or a neighbour's.
    """

    def __init__(self, server_pid: int | None, interval: float = 0.5) -> None:
        super().__init__(interval)
        self.server_pid = server_pid
        self.samples: list[tuple[float, float, float, float, float]] = []
        self.available = Path("/proc/stat").exists()

    def sample(self) -> None:
        if not self.available:
            return
        cpu = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        total, idle = sum(cpu), cpu[3] + cpu[4]
        server = proc_jiffies(self.server_pid) if self.server_pid else 0.0
        self.samples.append((time.perf_counter(), total, idle, proc_jiffies("self"), server))

    def usage(self, start: float, end: float) -> dict[str, float]:
        """Percent of all cores between two perf_counter() times: busy, bench, server, others."""
        window = [s for s in self.samples if start <= s[0] <= end]
        before = [s for s in self.samples if s[0] < start]
        if before:
            window.insert(0, before[-1])
        if len(window) < 2:
            return {}
        first, last = window[0], window[-1]
        total = last[1] - first[1]
        if total <= 0:
            return {}
        busy = 100 * (total - (last[2] - first[2])) / total
        bench = 100 * (last[3] - first[3]) / total
        server = 100 * (last[4] - first[4]) / total
        return {"busy": busy, "bench": bench, "server": server, "others": max(0.0, busy - bench - server)}


# -- runs ----------------------------------------------------------------------------------------------------
@dataclass
class CycleRun:
    cycle_id: str
    workflow_id: str
    started: float
    total_s: float
    final: CycleStatus
    stage_s: dict[str, float]
    queries: int
    child_ids: dict[tuple[Stage, str], str]
    deadlines: dict[str, datetime]


@dataclass
class BaselineRun:
    started: float
    total_s: float
    stage_s: dict[str, float]
    workflows: list[tuple[str, str, str]]
    """(stage, department or "*", workflow id) of every bare workflow."""


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """An existing server may lack Tandem's search attributes (the dev server we start registers them)."""
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k not in listed.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={k: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in missing},
            )
        )
    return list(missing)


async def run_cycle(
    client: Client, org: SimulatedOrg, plan: Plan, progress: Progress, history_limit: int | None = None
) -> CycleRun:
    cycle_id = f"bench-{uuid.uuid4().hex[:10]}"
    task_queue = f"bench-cycle-{uuid.uuid4()}"
    departments = org.department_ids
    inp = ReviewCycleInput(
        cycle_id=cycle_id,
        department_ids=departments,
        schedule=plan.schedule(datetime.now(UTC)),
        reminder_days_before=plan.reminder_days_before,
        escalate_to_hr_after_days=plan.hr_after_s / DAY_S,
        deadline_policy=DeadlinePolicy.CLOSE,
        recheck_hours=plan.recheck_s / 3600,
        max_concurrent_children=min(500, len(departments)),
        **({"history_event_limit": history_limit} if history_limit else {}),
    )
    task = progress.add_task("review cycle", total=len(STAGE_ORDER) * len(departments))
    queries = 0
    worker = build_worker(
        client,
        task_queue=task_queue,
        workflows=[ReviewCycleWorkflow, DepartmentCycleWorkflow],
        activities=org.activities(),
    )
    async with worker:
        started = time.perf_counter()
        handle = await client.start_workflow(
            ReviewCycleWorkflow.run, inp, id=review_cycle_workflow_id(cycle_id), task_queue=task_queue
        )
        result = asyncio.ensure_future(handle.result())
        give_up = started + 3 * plan.total_s() + 120
        failed_queries: list[str] = []
        while not result.done():
            await asyncio.wait({result}, timeout=1.0)
            if result.done():
                break
            if time.perf_counter() > give_up:
                await handle.terminate("benchmark time limit")
                raise RuntimeError(
                    f"the review cycle {handle.id} did not finish within {give_up - started:.0f}s "
                    f"(planned {plan.total_s():.0f}s); last query errors: {failed_queries[-3:]}"
                )
            try:
                status = await handle.query(ReviewCycleWorkflow.status)
            except RPCError as exc:  # a busy or failing workflow task: keep waiting, show it
                failed_queries.append(str(exc))
                progress.update(task, description=f"review cycle · query failed ({len(failed_queries)})")
                continue
            queries += 1
            finished = len(status.stages_done) * len(departments) + sum(1 for d in status.departments if d.outcome)
            progress.update(task, completed=finished, description=f"review cycle · {status.stage}")
        final = await result
        total = time.perf_counter() - started
    progress.update(task, completed=len(STAGE_ORDER) * len(departments), description="review cycle · closed")
    return CycleRun(
        cycle_id=cycle_id,
        workflow_id=handle.id,
        started=started,
        total_s=total,
        final=final,
        stage_s={s.value: org.stage_seconds(s) for s in STAGE_ORDER},
        queries=queries,
        child_ids={(s, d): department_workflow_id(cycle_id, s, d) for s in STAGE_ORDER for d in departments},
        deadlines={s.stage.value: s.deadline for s in inp.schedule},
    )


@dataclass
class StageScripts:
    """What one stage did: the parent's enter and exit calls, and each department child's calls and timers."""

    stage: Stage
    enter: list[BaselineStep]
    departments: list[BaselineScript]
    exit: list[BaselineStep]

    def timer_floor_s(self) -> float:
        """The longest sum of timers of one department: no run of this stage can be shorter."""
        return max((sum(step.sleep_seconds for step in d.steps) for d in self.departments), default=0.0)


async def run_baseline(
    client: Client,
    org: SimulatedOrg,
    stages: Sequence[StageScripts],
    concurrency: int,
    progress: Progress,
    label: str = "baseline",
) -> BaselineRun:
    """Per stage: every department's script at once, as bare client-started workflows.

    The parent's stage actions run as short bare workflows between stages; like the
    parent, one stage's exit and the next stage's enter run back to back (in one run).
    """
    run_id = uuid.uuid4().hex[:10]
    task_queue = f"bench-baseline-{run_id}"
    task = progress.add_task(label, total=sum(len(s.departments) for s in stages))
    workflows: list[tuple[str, str, str]] = []
    limit = asyncio.Semaphore(concurrency)

    async def execute(script: BaselineScript, suffix: str) -> None:
        workflow_id = f"bench-baseline-{run_id}-{len(workflows):05d}-{script.stage}-{suffix}"
        workflows.append((script.stage, script.department_id, workflow_id))
        await client.execute_workflow(BaselineScriptWorkflow.run, script, id=workflow_id, task_queue=task_queue)

    async def department(script: BaselineScript) -> None:
        async with limit:
            await execute(script, script.department_id)
        progress.advance(task)

    worker = build_worker(
        client, task_queue=task_queue, workflows=[BaselineScriptWorkflow], activities=org.activities()
    )
    async with worker:
        started = time.perf_counter()
        edge: list[BaselineStep] = []
        for scripts in stages:
            progress.update(task, description=f"{label} · {scripts.stage.value}")
            edge += scripts.enter
            if edge:
                await execute(BaselineScript(scripts.stage.value, ALL_DEPARTMENTS, edge), "edge")
            await asyncio.gather(*(department(s) for s in scripts.departments))
            edge = list(scripts.exit)
        if edge:
            await execute(BaselineScript(stages[-1].stage.value, ALL_DEPARTMENTS, edge), "edge")
        total = time.perf_counter() - started
    return BaselineRun(
        started=started,
        total_s=total,
        stage_s={s.stage.value: org.stage_seconds(s.stage) for s in stages},
        workflows=workflows,
    )


async def warm_up(client: Client, org: SimulatedOrg, progress: Progress) -> None:
    """A few tiny workflows first, so neither run pays for a cold server, worker or sandbox."""
    stage, department = Stage.GOAL_SETTING, org.department_ids[0]
    query = PendingQuery(cycle_id="warm-up", department_id=department, stage=stage)
    action = StageAction(cycle_id="warm-up", stage=stage, action="enter")
    scripts = StageScripts(
        stage=stage,
        enter=[BaselineStep("stage_action", action=action)],
        departments=[
            BaselineScript(
                stage.value, department, [BaselineStep("check_pending", query=query), BaselineStep(sleep_seconds=0.2)]
            )
            for _ in range(10)
        ],
        exit=[BaselineStep("stage_action", action=action.model_copy(update={"action": "exit"}))],
    )
    await run_baseline(client, org.fresh_copy(), [scripts], 10, progress, "warm-up")


async def build_scripts(client: Client, cycle: CycleRun, histories: dict[str, list[Any]]) -> list[StageScripts]:
    parent = await script_of(client, Stage.GOAL_SETTING, ALL_DEPARTMENTS, histories[cycle.workflow_id])
    out: list[StageScripts] = []
    for stage in STAGE_ORDER:
        # The last stage's exit also carries what the workflow does once the cycle is over
        # (recording it closed in the cycles service).
        closing = {(stage.value, "exit")} | ({("closed", "enter")} if stage == STAGE_ORDER[-1] else set())
        out.append(
            StageScripts(
                stage=stage,
                enter=[s for s in parent.steps if _handoff_of(s) == (stage.value, "enter")],
                departments=[
                    await script_of(client, stage, department, histories[workflow_id])
                    for (st, department), workflow_id in cycle.child_ids.items()
                    if st == stage
                ],
                exit=[s for s in parent.steps if _handoff_of(s) in closing],
            )
        )
    return out


def _handoff_of(step: BaselineStep) -> tuple[str, str] | None:
    """(stage, enter|exit) of a parent step that is a handoff."""
    return HANDOFF_STAGE.get(step.activity) if step.ref is not None else None


# -- correctness -----------------------------------------------------------------------------------------------
@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warning_only: bool = False


def verify(
    org: SimulatedOrg,
    baseline_org: SimulatedOrg,
    cycle: CycleRun,
    outcomes: dict[tuple[Stage, str], DepartmentOutcome],
    scripts: Sequence[StageScripts],
    plan: Plan,
    decisions: Mapping[tuple[Stage, str], list[float]] | None = None,
) -> list[Check]:
    """``decisions``: when each department workflow looked at a check's answer (epoch seconds of the workflow
    task after each ``check_pending``), from its history. A reminder is due only if one of them fell in the
    reminder window before the deadline: a workflow that started late, or whose checks were delayed past
    the window on a busy machine, escalates without one, by design (``contracts.timing.decide``)."""
    checks: list[Check] = []
    final = cycle.final
    checks.append(
        Check(
            "cycle closed after all five stages",
            final.stage == Stage.CLOSED and final.stages_done == list(STAGE_ORDER),
            f"stage={final.stage}, done={[str(s) for s in final.stages_done]}",
        )
    )
    valid = {"completed", "closed_at_deadline"}
    missing = [k for k in cycle.child_ids if k not in outcomes or outcomes[k].outcome not in valid]
    checks.append(
        Check(
            "every department of every stage reported an outcome",
            not missing,
            f"{len(outcomes)}/{len(cycle.child_ids)} outcomes"
            + (f"; missing/invalid: {missing[:5]}" if missing else ""),
        )
    )
    # Notifications: one per idempotency key, and at most one per (stage, department, step).
    repeated = {k: n for k, n in org.notification_calls.items() if n > 1}
    per_step: Counter[tuple[str, str, str]] = Counter()
    for request in org.notifications.values():
        per_step[(request.stage.value, request.department_id, request.kind)] += 1
    too_many = {k: n for k, n in per_step.items() if n > (len(plan.reminder_fractions) if k[2] == "reminder" else 1)}
    checks.append(
        Check(
            "no notification was duplicated",
            not too_many,
            f"{len(org.notifications)} sent, {sum(org.notification_calls.values())} calls, "
            f"{len(repeated)} key(s) retried and deduplicated" + (f"; too many: {too_many}" if too_many else ""),
        )
    )
    mismatched = [k for k, o in outcomes.items() if o.reminders + o.escalations != len(org.created(k[0], k[1]))]
    checks.append(
        Check(
            "outcome counts match the notifications the services recorded",
            not mismatched,
            f"{len(outcomes) - len(mismatched)}/{len(outcomes)} agree"
            + (f"; e.g. {mismatched[:3]}" if mismatched else ""),
        )
    )
    # The deliberately slow departments missed every deadline and were escalated to the head, then HR.
    slow_problems: list[str] = []
    started_late: list[str] = []
    for department in (d for d in org.departments.values() if d.slow):
        for stage in STAGE_ORDER:
            kinds = {n.kind for n in org.created(stage, department.department_id)}
            outcome = outcomes.get((stage, department.department_id))
            deadline = cycle.deadlines[stage.value].timestamp()
            looked = [t for t in (decisions or {}).get((stage, department.department_id), []) if t < deadline]
            if stage == Stage.TRACKING:
                stale = looked[: org.stale_checks]
                in_time = bool(stale)
                expected = {"stale_kpi_reminder"} if in_time else set()
                if any(t - stale[0] >= plan.hr_after_s for t in stale):
                    expected.add("stale_kpi_escalation")
            else:
                window = deadline - max(plan.reminder_fractions) * plan.stage_s
                in_time = decisions is None or any(t >= window for t in looked)
                expected = {"escalation_head", "escalation_hr"} | ({"reminder"} if in_time else set())
                if outcome is None or outcome.outcome != "closed_at_deadline":
                    slow_problems.append(f"{department.department_id}/{stage.value}: {outcome and outcome.outcome}")
            if not in_time:
                started_late.append(f"{department.department_id}/{stage.value}")
            if not expected <= kinds:
                slow_problems.append(f"{department.department_id}/{stage.value}: sent {sorted(kinds)}")
    checks.append(
        Check(
            "slow departments were reminded, escalated (head, then HR) and closed at the deadline",
            not slow_problems,
            "; ".join(slow_problems[:4])
            or "as expected"
            + (f" (no reminder due where no check fell in its window: {started_late[:3]})" if started_late else ""),
        )
    )
    late_fast = [
        f"{d}/{s.value}"
        for (s, d), o in outcomes.items()
        if not org.departments[d].slow and s != Stage.TRACKING and o.outcome != "completed"
    ]
    checks.append(
        Check(
            "fast departments finished before their deadline",
            not late_fast,
            f"{len(late_fast)} late: {late_fast[:5]}" if late_fast else "all completed",
            warning_only=True,
        )
    )
    # Every activity call: the services' counters, the histories and the baseline all agree.
    from_history: Counter[tuple[str, str, str]] = Counter()
    for stage_scripts in scripts:
        edges = BaselineScript(stage_scripts.stage.value, ALL_DEPARTMENTS, stage_scripts.enter + stage_scripts.exit)
        for script in (edges, *stage_scripts.departments):
            for call in script.steps:
                if call.activity:
                    called_in = HANDOFF_STAGE[call.activity][0] if call.ref is not None else script.stage
                    from_history[(called_in, script.department_id, call.activity)] += 1
    checks.append(
        Check(
            "activity calls per (stage, department): services == histories",
            from_history == org.calls,
            f"{sum(org.calls.values())} calls counted, {sum(from_history.values())} in histories",
        )
    )
    checks.append(
        Check(
            "baseline made the same calls per (stage, department)",
            baseline_org.calls == org.calls,
            f"{sum(baseline_org.calls.values())} baseline calls vs {sum(org.calls.values())}",
        )
    )
    # The workflow's real handoffs (contracts/handoffs.py), each exactly once, then the cycle recorded
    # closed; withdraw_results only runs when a cycle is cancelled.
    handoffs_expected = {(owner, name) for name, (owner, _) in HANDOFF_STAGE.items() if name != "withdraw_results"}
    repeated_actions = {k: n for k, n in org.actions.items() if n != 1}
    missing_actions = sorted(handoffs_expected - set(org.actions))
    unhandoffs_expected_actions = sorted(set(org.actions) - handoffs_expected)
    checks.append(
        Check(
            "each stage handoff ran exactly once, then the cycle recorded closed",
            not missing_actions and not unhandoffs_expected_actions and not repeated_actions,
            f"{sum(org.actions.values())} handoffs (expected {len(handoffs_expected)})"
            + (f"; missing {missing_actions}" if missing_actions else "")
            + (f"; unhandoffs_expected {unhandoffs_expected_actions}" if unhandoffs_expected_actions else "")
            + (f"; repeated {repeated_actions}" if repeated_actions else ""),
        )
    )
    return checks


# -- the whole benchmark ---------------------------------------------------------------------------------------
@dataclass
class Options:
    employees: int
    departments: int
    slow_departments: int
    batch: int
    recheck_seconds: float
    stage_seconds: float | None
    address: str | None
    namespace: str
    seed: int
    rounds: int
    json_path: Path | None
    history_limit: int | None = None


async def benchmark(opts: Options, console: Console) -> dict[str, Any]:
    org, plan = build_org(
        employees=opts.employees,
        departments=opts.departments,
        slow=opts.slow_departments,
        batch=opts.batch,
        recheck_s=opts.recheck_seconds,
        stage_s=opts.stage_seconds,
        seed=opts.seed,
    )
    console.print(
        f"[bold]Review-cycle benchmark[/]: {opts.employees:,} employees in {opts.departments} departments "
        f"({opts.slow_departments} slow), batch {opts.batch}/check; stage {plan.stage_s:g}s, tracking "
        f"{plan.tracking_s:g}s, recheck {plan.recheck_s:g}s, HR escalation +{plan.hr_after_s:g}s; "
        f"{opts.rounds} round(s); {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f}"
    )
    rounds: list[dict[str, Any]] = []
    async with _temporal(opts, console) as (address, server_pid):
        client = await connect(address, opts.namespace)
        added = await ensure_search_attributes(client, opts.namespace)
        if added:
            console.print(f"registered search attributes {added}")
        cpu = CpuSampler(server_pid)
        cpu.start()
        memory = MemorySampler(server_pid)
        memory.start()
        progress = Progress(
            TextColumn("{task.description:<36}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("departments·stages"),
            TimeElapsedColumn(),
            console=console,
        )
        try:
            with progress:
                await warm_up(client, org, progress)
                for number in range(1, opts.rounds + 1):
                    rounds.append(
                        await run_round(client, org.fresh_copy(), plan, opts, (cpu, memory), progress, number)
                    )
        finally:
            await cpu.stop()
            await memory.stop()
    for report in rounds:
        _print(console, report)
    summary = _summary(opts, plan, rounds)
    if len(rounds) > 1:
        _print_summary(console, summary)
    if opts.json_path:
        opts.json_path.write_text(json.dumps(summary, indent=2, default=str))
        console.print(f"results written to {opts.json_path}")
    return summary


async def run_round(
    client: Client,
    org: SimulatedOrg,
    plan: Plan,
    opts: Options,
    samplers: tuple[CpuSampler, MemorySampler],
    progress: Progress,
    number: int,
) -> dict[str, Any]:
    """One review cycle, then the baseline replaying exactly its calls and timers; both measured and checked."""
    cpu, memory = samplers
    load_before = os.getloadavg()
    cycle = await run_cycle(client, org, plan, progress, opts.history_limit)
    runs = await fetch_all_runs(client, [cycle.workflow_id, *cycle.child_ids.values()])
    histories = flatten(runs)
    scripts = await build_scripts(client, cycle, histories)
    baseline_org = org.fresh_copy()
    baseline = await run_baseline(client, baseline_org, scripts, min(500, opts.departments), progress)
    load_after = os.getloadavg()
    baseline_runs = await fetch_all_runs(client, [w for _, _, w in baseline.workflows])
    baseline_histories = flatten(baseline_runs)
    outcomes = await _outcomes(client, cycle)

    parent_stats, child_stats, baseline_stats = HistoryStats(), HistoryStats(), HistoryStats()
    for run in runs[cycle.workflow_id]:
        parent_stats.add(run)
    for workflow_id in cycle.child_ids.values():
        for run in runs[workflow_id]:
            child_stats.add(run)
    for events in baseline_histories.values():
        baseline_stats.add(events)
    scale = {
        "largest_run": largest_run(runs),
        "baseline_largest_run": largest_run(baseline_runs),
        "transitions": _transitions(cycle, histories, baseline, baseline_histories),
        "memory": {
            "cycle": memory.peak(cycle.started, cycle.started + cycle.total_s),
            "baseline": memory.peak(baseline.started, baseline.started + baseline.total_s),
        },
    }
    decisions = {key: [t for run in runs[w] for t in _decision_times(run)] for key, w in cycle.child_ids.items()}
    checks = verify(org, baseline_org, cycle, outcomes, scripts, plan, decisions)

    floors = {s.stage: s.timer_floor_s() for s in scripts}
    stages = []
    for stage in STAGE_ORDER:
        per_stage: Counter[str] = Counter()
        for (st, _, name), n in org.calls.items():
            if st == stage.value:
                per_stage[name] += n
        cycle_s, base_s = cycle.stage_s[stage.value], baseline.stage_s[stage.value]
        cycle_departments = {d: histories[w] for (st, d), w in cycle.child_ids.items() if st == stage}
        baseline_departments = {
            d: baseline_histories[w] for st, d, w in baseline.workflows if st == stage.value and d != ALL_DEPARTMENTS
        }
        stages.append(
            {
                "stage": stage.value,
                "cycle_s": cycle_s,
                "baseline_s": base_s,
                "ratio": _ratio(cycle_s, base_s),
                "timer_floor_s": floors[stage],
                "active_ratio": _ratio(cycle_s - floors[stage], base_s - floors[stage]),
                "check_pending": per_stage["check_pending"],
                "send_notification": per_stage["send_notification"],
                "notifications_sent": sum(1 for n in org.notifications.values() if n.stage == stage),
                "cycle_slowest_department": _slowest(cycle_departments),
                "baseline_slowest_department": _slowest(baseline_departments),
                "cycle_cpu_pct": cpu.usage(*org.stage_window(stage)),
                "baseline_cpu_pct": cpu.usage(*baseline_org.stage_window(stage)),
            }
        )
    floor = sum(floors.values())
    return {
        "round": number,
        "stages": stages,
        "cycle_total_s": cycle.total_s,
        "baseline_total_s": baseline.total_s,
        "ratio": cycle.total_s / baseline.total_s,
        "timer_floor_s": floor,
        "active_ratio": _ratio(cycle.total_s - floor, baseline.total_s - floor),
        "activity_calls": sum(org.calls.values()),
        "status_queries": cycle.queries,
        "cycle_cpu_pct": cpu.usage(cycle.started, cycle.started + cycle.total_s),
        "baseline_cpu_pct": cpu.usage(baseline.started, baseline.started + baseline.total_s),
        "load_average": {"before": list(load_before), "after": list(load_after)},
        "profile": {
            "cycle_parent": parent_stats.summary(),
            "cycle_children": child_stats.summary(),
            "baseline": baseline_stats.summary(),
        },
        "checks": [asdict(c) for c in checks],
        "scale": scale,
    }


def _decision_times(events: Sequence[HistoryEvent]) -> list[float]:
    """When the workflow decided on each ``check_pending`` answer: the workflow task after its completion
    (``workflow.now()`` in that task is the task's start)."""
    names = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    out: list[float] = []
    waiting = False
    for e in events:
        if e.HasField("activity_task_completed_event_attributes"):
            scheduled = e.activity_task_completed_event_attributes.scheduled_event_id
            waiting = waiting or names.get(scheduled) == "check_pending"
        elif waiting and e.HasField("workflow_task_started_event_attributes"):
            out.append(_seconds(e))
            waiting = False
    return out


def _transitions(
    cycle: CycleRun, histories: dict[str, list[Any]], baseline: BaselineRun, baseline_histories: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    """Each stage transition in the cycle next to the same transition in the baseline."""
    ours = transitions({(s.value, d): histories[w] for (s, d), w in cycle.child_ids.items()}, cycle.deadlines)
    bare = transitions({(s, d): baseline_histories[w] for s, d, w in baseline.workflows if d != ALL_DEPARTMENTS})
    by_edge = {(row["from"], row["to"]): row for row in bare}
    for row in ours:
        base = by_edge.get((row["from"], row["to"]), {})
        row["baseline_last_close_to_first_task_s"] = base.get("last_close_to_first_task_s")
        row["ratio"] = _ratio(row["last_close_to_first_task_s"], base.get("last_close_to_first_task_s") or 0.0)
    return ours


def _slowest(histories: dict[str, list[Any]]) -> dict[str, Any]:
    """The department workflow that ran longest: its duration, its timers and its calls."""
    best: dict[str, Any] = {}
    for department, events in histories.items():
        if not events:
            continue
        duration = _seconds(events[-1]) - _seconds(events[0])
        if duration > best.get("seconds", -1.0):
            stats = HistoryStats()
            stats.add(events)
            best = {
                "department": department,
                "seconds": duration,
                "timer_seconds": stats.timer_seconds,
                "activities": len(stats.activity_schedule_to_close),
                "workflow_tasks": stats.workflow_tasks,
            }
    return best


@contextlib.asynccontextmanager
async def _temporal(opts: Options, console: Console) -> Any:
    if opts.address:
        yield opts.address, None
        return
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as state:
        server = TemporalDevServer(Path(state), namespace=opts.namespace, persistent=True)
        await server.start(progress=lambda message: console.print(message))
        try:
            yield server.address, server.pid
        finally:
            await server.stop()


async def _outcomes(client: Client, cycle: CycleRun) -> dict[tuple[Stage, str], DepartmentOutcome]:
    out: dict[tuple[Stage, str], DepartmentOutcome] = {}
    for key, workflow_id in cycle.child_ids.items():
        with contextlib.suppress(Exception):
            out[key] = await client.get_workflow_handle(workflow_id, result_type=DepartmentOutcome).result()
    return out


def _summary(opts: Options, plan: Plan, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = [r[key] for r in rounds if r[key] is not None]
        return statistics.median(values) if values else None

    return {
        "parameters": {
            "employees": opts.employees,
            "departments": opts.departments,
            "slow_departments": opts.slow_departments,
            "batch": opts.batch,
            "seed": opts.seed,
            "rounds": opts.rounds,
            "plan": asdict(plan),
            "cpus": os.cpu_count(),
        },
        "median_ratio": median("ratio"),
        "median_active_ratio": median("active_ratio"),
        "median_cycle_total_s": median("cycle_total_s"),
        "median_baseline_total_s": median("baseline_total_s"),
        "target_ratio": TARGET_RATIO,
        "all_checks_passed": all(c["ok"] or c["warning_only"] for r in rounds for c in r["checks"]),
        "rounds": rounds,
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}x"


def _pct(usage: dict[str, float], key: str) -> str:
    return f"{usage[key]:.0f}" if key in usage else "?"


def _print(console: Console, report: dict[str, Any]) -> None:
    number = report["round"]
    table = Table(
        title=f"Round {number}: time per stage (wall clock, stage_action enter -> exit; total: start -> result)",
        caption="floor: the longest department's timers, identical in both runs; active = (time - floor) / "
        "(baseline - floor); others: CPU % of the machine used by other processes (cycle / baseline)",
    )
    columns = ("stage", "cycle s", "baseline s", "ratio", "floor s", "active", "checks", "notify", "others %")
    for column in columns:
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in report["stages"]:
        table.add_row(
            row["stage"],
            f"{row['cycle_s']:.2f}",
            f"{row['baseline_s']:.2f}",
            _x(row["ratio"]),
            f"{row['timer_floor_s']:.2f}",
            _x(row["active_ratio"]),
            str(row["check_pending"]),
            str(row["send_notification"]),
            f"{_pct(row['cycle_cpu_pct'], 'others')} / {_pct(row['baseline_cpu_pct'], 'others')}",
        )
    ratio = report["ratio"]
    style = "green" if ratio <= TARGET_RATIO else "red"
    table.add_row(
        "[bold]total[/]",
        f"{report['cycle_total_s']:.2f}",
        f"{report['baseline_total_s']:.2f}",
        f"[{style}]{ratio:.3f}x[/]",
        f"{report['timer_floor_s']:.2f}",
        _x(report["active_ratio"]),
        str(sum(r["check_pending"] for r in report["stages"])),
        str(sum(r["send_notification"] for r in report["stages"])),
        f"{_pct(report['cycle_cpu_pct'], 'others')} / {_pct(report['baseline_cpu_pct'], 'others')}",
    )
    console.print(table)

    profile = report["profile"]
    prof = Table(title=f"Round {number}: where the time goes (from the histories)")
    prof.add_column("metric")
    for column in ("cycle parent", "cycle children", "baseline"):
        prof.add_column(column, justify="right")
    for key in profile["baseline"]:
        values = [profile[group][key] for group in ("cycle_parent", "cycle_children", "baseline")]
        prof.add_row(key, *(f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" for v in values))
    prof.add_row(
        "CPU % of machine: bench/server/others",
        "",
        "/".join(_pct(report["cycle_cpu_pct"], k) for k in ("bench", "server", "others")),
        "/".join(_pct(report["baseline_cpu_pct"], k) for k in ("bench", "server", "others")),
    )
    console.print(prof)

    slow = Table(title=f"Round {number}: slowest department workflow per stage (run time, its timers, its calls)")
    slow.add_column("stage")
    slow.add_column("cycle", justify="right")
    slow.add_column("baseline", justify="right")
    for row in report["stages"]:
        cells = []
        for key in ("cycle_slowest_department", "baseline_slowest_department"):
            d = row[key]
            cells.append(f"{d['department']}: {d['seconds']:.2f}s, timers {d['timer_seconds']:.1f}s, {d['activities']}")
        slow.add_row(row["stage"], *cells)
    console.print(slow)

    result = Table(title=f"Round {number}: correctness")
    result.add_column("check")
    result.add_column("result")
    result.add_column("detail")
    for check in report["checks"]:
        mark = "[green]ok[/]" if check["ok"] else ("[yellow]warn[/]" if check["warning_only"] else "[red]FAIL[/]")
        result.add_row(check["name"], mark, check["detail"])
    console.print(result)
    print_scale(console, number, report["scale"])
    console.print(
        f"round {number}: ratio {ratio:.3f}x (target <= {TARGET_RATIO}x), active ratio "
        f"{_x(report['active_ratio'])}; orchestration overhead "
        f"{report['cycle_total_s'] - report['baseline_total_s']:+.2f}s over {report['activity_calls']:,} activity calls"
    )


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title="All rounds")
    for column in ("round", "cycle s", "baseline s", "ratio", "active", "others % (cycle / baseline)", "checks"):
        table.add_column(column, justify="right")
    for r in summary["rounds"]:
        passed = all(c["ok"] or c["warning_only"] for c in r["checks"])
        table.add_row(
            str(r["round"]),
            f"{r['cycle_total_s']:.2f}",
            f"{r['baseline_total_s']:.2f}",
            _x(r["ratio"]),
            _x(r["active_ratio"]),
            f"{_pct(r['cycle_cpu_pct'], 'others')} / {_pct(r['baseline_cpu_pct'], 'others')}",
            "[green]ok[/]" if passed else "[red]FAIL[/]",
        )
    table.add_row(
        "median",
        f"{summary['median_cycle_total_s']:.2f}",
        f"{summary['median_baseline_total_s']:.2f}",
        _x(summary["median_ratio"]),
        _x(summary["median_active_ratio"]),
        "",
        "[green]ok[/]" if summary["all_checks_passed"] else "[red]FAIL[/]",
    )
    console.print(table)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cycle", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--employees", type=int, default=10_000, help="N employees (default 10,000)")
    parser.add_argument("--departments", type=int, default=50, help="M departments (default 50)")
    parser.add_argument("--slow-departments", type=int, default=2, help="departments that miss every deadline")
    parser.add_argument("--batch", type=int, default=50, help="people of a department who act between two checks")
    parser.add_argument(
        "--recheck-seconds", type=float, default=1.0, help="re-check interval (>= 1, the child's floor)"
    )
    parser.add_argument("--stage-seconds", type=float, default=None, help="stage length (default: derived)")
    parser.add_argument("--address", default=None, help="an existing Temporal server (default: start a dev server)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1, help="cycle + baseline pairs to run (the median is reported)")
    parser.add_argument("--json", dest="json_path", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument(
        "--history-limit",
        type=int,
        default=None,
        help="the workflows continue as new past this many events (default: the workflow's, 10,000; min 100)",
    )
    args = parser.parse_args(argv)
    if args.employees < args.departments or args.departments < 1:
        parser.error("--employees must be at least --departments, and --departments at least 1")
    if args.departments > 1000:
        parser.error("--departments: a review cycle takes at most 1000 departments")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.history_limit is not None and args.history_limit < 100:
        parser.error("--history-limit must be at least 100")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if args.recheck_seconds < 1:
        parser.error("--recheck-seconds must be at least 1 (the department workflow never waits less)")
    return Options(
        employees=args.employees,
        departments=args.departments,
        slow_departments=args.slow_departments,
        batch=args.batch,
        recheck_seconds=args.recheck_seconds,
        stage_seconds=args.stage_seconds,
        address=args.address,
        namespace=args.namespace,
        seed=args.seed,
        rounds=args.rounds,
        json_path=args.json_path,
        history_limit=args.history_limit,
    )


def main(argv: Sequence[str] | None = None) -> int:
    console = Console()
    if not console.is_terminal:  # piped to a file: keep the tables readable
        console = Console(width=160)
    summary = asyncio.run(benchmark(parse_args(argv), console))
    return 0 if summary["all_checks_passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
