"""Every handoff survives its worker being SIGKILLed in the middle of it, with exactly one effect.

The same cycle runs twice, each on its own fresh databases, with the same people doing the same
things between the handoffs (the path of ``test_cycle_settings``):

* **clean**: each handoff runs once, in process, as the workflow would run it;
* **crashed**: each handoff runs in :class:`~tests.integration.crash_worker.RunHandoff` on a real
  Temporal server. A worker process (``crash_worker``) takes its first attempt and is SIGKILLed right
  after the first write call of the activity returned, its effect stored, its completion never
  reported. Temporal runs the activity again on the next worker once the heartbeat times out.

The services run as real HTTP servers (uvicorn) on their real databases; tracking is the real
tracking service. After each handoff, the row count of every table of every service (outboxes and
audit logs included) must be the same in both runs: a retried handoff added nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client
from temporalio.worker import Worker

from contracts.evaluation import evaluation_config
from contracts.handoffs import HANDOFF_RESULTS, CycleRef, Handoff
from services.common.client import SERVICES, ServiceClient, ServiceTokens
from services.common.settings import Settings
from services.cycles.app import create_app as cycles_app
from services.evaluation.app import create_app as evaluation_app
from services.feedback.app import create_app as feedback_app
from services.goals.app import create_app as goals_app
from services.results.app import create_app as results_app
from services.tracking.app import create_app as tracking_app
from tests.conftest import _fresh_postgres_database
from tests.integration.crash_worker import HandoffCall, RunHandoff
from tests.integration.test_cycle_settings import (
    CYCLE_DEPARTMENTS,
    PEOPLE,
    T0,
    Clock,
    Stack,
    everyone_reviewed,
    full_template,
    new_cycle,
    review,
    set_goals,
)
from tests.support import auth
from workflows.handoffs import HandoffActivities

HANDOFFS = [
    "open_goal_setting",
    "freeze_goals",
    "hand_catalog_to_tracking",
    "hand_progress_to_evaluation",
    "open_evaluation",
    "close_evaluation",
    "hand_results_to_feedback",
    "hand_results_to_results",
    "release_results",
    "open_result_application",
    "publish_results",
    "record_closed",
]
"""Every handoff of a cycle, in the order the workflow runs them."""
AHEAD = 3
"""Crash workers kept starting up ahead of the handoff that needs one."""
SERVICE_APPS = {
    "cycles": cycles_app,
    "goals": goals_app,
    "evaluation": evaluation_app,
    "feedback": feedback_app,
    "results": results_app,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ToPorts(httpx.AsyncBaseTransport):
    """``http://<service>.test`` (the helpers' addresses) to that service's real port."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = self.ports[request.url.host.removesuffix(".test")]
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def table_counts(database_urls: list[str]) -> dict[str, int]:
    """Rows per table, over every service database."""
    counts: dict[str, int] = {}
    for url in database_urls:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
                for table in tables:
                    if table != "alembic_version" and not table.startswith("alembic_version"):
                        counts[table] = int((await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one())
        finally:
            await engine.dispose()
    return counts


@dataclass
class Run(Stack):
    """The settings test's stack over real HTTP; ``handoff`` records the table counts after each handoff."""

    database_urls: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    crash: Crash | None = None

    async def handoff(self, name: str, cycle_id: str, **ref: Any) -> Any:
        call = CycleRef(cycle_id=cycle_id, department_ids=CYCLE_DEPARTMENTS, **ref)
        if self.crash is None:
            result: Handoff = await self.env.run(getattr(self.handoffs, name), call)
        else:
            result = await self.crash.run(name, call, self.handoffs)
        self.counts[f"{name} #{sum(k.startswith(name) for k in self.counts) + 1}"] = await table_counts(
            self.database_urls
        )
        return result


@dataclass
class Crash:
    """Runs a handoff on a worker process that is SIGKILLed inside it, then on a worker in this process."""

    client: Client
    address: str
    env: dict[str, str]
    workdir: Path
    died_after: dict[str, str] = field(default_factory=dict)
    """Handoff -> the write call its worker died after."""
    completed: list[str] = field(default_factory=list)
    """Handoffs that made no write call (their worker is killed after they completed)."""
    _ready: list[tuple[subprocess.Popen[str], str]] = field(default_factory=list)
    """Workers started ahead (a Python process takes seconds to start; handoffs follow each other fast)."""

    def _spawn(self) -> tuple[subprocess.Popen[str], str]:
        queue = f"crash-{uuid.uuid4().hex[:8]}"
        argv = [sys.executable, "-m", "tests.integration.crash_worker", "--address", self.address]
        argv += ["--task-queue", queue, "--marker", str(self.workdir / f"{queue}.json")]
        return subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), queue

    def close(self) -> None:
        for worker, _queue in self._ready:
            worker.kill()
            worker.wait()

    async def run(self, name: str, ref: CycleRef, handoffs: HandoffActivities) -> Handoff:
        while len(self._ready) < AHEAD + 1:
            self._ready.append(self._spawn())
        worker, queue = self._ready.pop(0)
        handle = await self.client.start_workflow(
            RunHandoff.run, HandoffCall(name=name, ref=ref), id=queue, task_queue=queue
        )
        died = asyncio.ensure_future(asyncio.to_thread(worker.wait))
        result = asyncio.ensure_future(handle.result())
        await asyncio.wait({died, result}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if result.done():  # no write call: nothing to die after; the worker goes anyway
            worker.kill()
            await died
            self.completed.append(name)
            first_attempt = True
        else:
            returncode = await asyncio.wait_for(died, timeout=5)
            stderr = worker.stderr.read() if worker.stderr else ""
            assert returncode == -9, f"{name}: the worker exited {returncode}, not SIGKILLed:\n{stderr[-3000:]}"
            self.died_after[name] = json.loads((self.workdir / f"{queue}.json").read_text())["call"]
            async with Worker(
                self.client, task_queue=queue, workflows=[RunHandoff], activities=handoffs.all(), max_cached_workflows=0
            ):
                await asyncio.wait_for(result, timeout=60)
            first_attempt = False
        history = [e async for e in handle.fetch_history_events()]
        started = [
            e.activity_task_started_event_attributes.attempt
            for e in history
            if e.HasField("activity_task_started_event_attributes")
        ]
        # the attempt that completed: the first (no write), or a retry (a slow call may time out once more)
        assert len(started) == 1 and (started[0] == 1) == first_attempt, f"{name}: attempts {started}"
        return HANDOFF_RESULTS[name].model_validate(result.result())


@pytest.fixture
async def two_databases(postgres_server: Any, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Fresh databases for the two runs: PostgreSQL, or SQLite (a file per service) in the local loop."""
    if postgres_server is None:
        yield tuple(f"sqlite+aiosqlite:///{tmp_path}/{run}-{{service}}.db" for run in ("clean", "crashed"))  # type: ignore[misc]
        return
    async with _fresh_postgres_database(postgres_server) as clean, _fresh_postgres_database(postgres_server) as crashed:
        yield clean, crashed


@asynccontextmanager
async def served_stack(settings: Settings, url: str) -> AsyncIterator[Run]:
    """Cycles, goals, tracking, evaluation, feedback and results as real HTTP servers on ``url`` (one
    database, or a SQLite file per ``{service}``)."""
    ports: dict[str, int] = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    sqlite = url.startswith("sqlite")
    base = settings.model_copy(update={"database_url": url, **{f"{n}_url": u for n, u in urls.items()}})
    apps: dict[str, FastAPI] = {name: factory(base) for name, factory in SERVICE_APPS.items()}
    apps["tracking"] = tracking_app(base, run_consumer=False, staleness_interval=0)
    http = httpx.AsyncClient(transport=ToPorts(ports), timeout=30)
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    async with AsyncExitStack() as stack:
        stack.push_async_callback(http.aclose)
        for name, app in apps.items():  # one at a time: the services' migrations run at start-up
            config = uvicorn.Config(app, host="127.0.0.1", port=ports[name], log_level="warning", ws="none")
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            servers.append((server, task))
            while not server.started:
                assert not task.done(), "a service did not start"
                await asyncio.sleep(0.05)

        async def stop() -> None:
            for server, _task in servers:
                server.should_exit = True
            await asyncio.gather(*(task for _server, task in servers))

        stack.push_async_callback(stop)
        clocks = {name: Clock(T0) for name in ("feedback", "results")}
        for name, clock in clocks.items():
            apps[name].state.clock = clock
        tokens = ServiceTokens(base, sub="system:worker", roles=("hr_admin", "ops"))
        handoffs = HandoffActivities(
            client=ServiceClient(http=http, urls={n: f"http://{n}.test" for n in SERVICES}, tokens=tokens),
            scoring_config=evaluation_config,
        )
        names = [*SERVICE_APPS, "tracking"]
        database_urls = [url.format(service=n) for n in names] if sqlite else [url]
        yield Run(settings=base, http=http, handoffs=handoffs, clocks=clocks, database_urls=database_urls)


async def a_whole_cycle(run: Run) -> None:
    """Every handoff of a cycle, with what people do between them (as in ``test_cycle_settings``)."""
    cycle_id = await new_cycle(run, full_template("crash"))  # open_goal_setting
    base = f"/v1/cycles/{cycle_id}"
    await set_goals(run, cycle_id)
    for name in HANDOFFS[1:5]:
        await run.handoff(name, cycle_id)
    for peer in ["S2", "S3"]:
        await run.call(
            "evaluation", "POST", f"{base}/assignments", json={"reviewee_id": "S1", "rater_id": peer}, ok=201
        )
        await review(run, cycle_id, rater=peer, reviewee="S1", relation="peer", results=4, teamwork=4)
    await everyone_reviewed(run, cycle_id, {e: (3.0, 3.0) for e, d, _ in PEOPLE if d in CYCLE_DEPARTMENTS})
    await run.call("evaluation", "POST", f"{base}/scores/compute")
    await run.call("evaluation", "POST", f"{base}/calibration/close")
    for name in HANDOFFS[5:10]:
        assert (await run.handoff(name, cycle_id)).ready, name
    await run.call("results", "PUT", f"{base}/pools/sales", json={"amount_cents": 100_000, "currency": "EUR"})
    finance = auth(run.settings, "finance", sub="fin-fay")  # the template wants finance's approval of the pool
    await run.call("results", "POST", f"{base}/pools/sales/approval", headers=finance)
    await run.call("results", "POST", f"{base}/pools/sales/allocations", json={}, ok=201)
    run.clocks["feedback"].now = T0 + timedelta(days=6)  # past the appeal window
    for name in HANDOFFS[10:]:
        assert (await run.handoff(name, cycle_id)).ready, name


async def test_a_worker_killed_inside_each_handoff_leaves_exactly_one_effect(
    settings: Settings, two_databases: tuple[str, str], temporal_server: Any, temporal_client: Client, tmp_path: Path
) -> None:
    clean_url, crashed_url = two_databases
    async with served_stack(settings, clean_url) as clean:
        await a_whole_cycle(clean)

    async with served_stack(settings, crashed_url) as crashed:
        env = {
            **os.environ,
            "TANDEM_ENV": "test",
            "TANDEM_JWT_SECRET": settings.jwt_secret,
            **{f"TANDEM_{n.upper()}_URL": getattr(crashed.settings, f"{n}_url") for n in SERVICES},
        }
        crash = Crash(temporal_client, temporal_server.address, env, tmp_path)
        crashed.crash = crash
        try:
            await a_whole_cycle(crashed)
        finally:
            crash.close()

    print("\n[crash] the worker died after:", json.dumps(crash.died_after, indent=1))
    # close_evaluation's one write (scores/compute) is refused once HR closed calibration: nothing to die after
    assert crash.completed == ["close_evaluation"]
    assert sorted(crash.died_after) == sorted(set(HANDOFFS) - {"close_evaluation"})
    assert list(crashed.counts) == list(clean.counts)
    for step, counts in clean.counts.items():
        differ = {t: (n, crashed.counts[step].get(t)) for t, n in counts.items() if crashed.counts[step].get(t) != n}
        assert not differ, f"after {step}: rows per table (clean, crashed) differ: {differ}"
