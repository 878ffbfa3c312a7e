"""Ingestion benchmark: Kafka -> tracking consumer -> PostgreSQL, against raw aiokafka consume-only.

    python bench/ingest.py                       # 200k events, 3 rounds; starts Apache Kafka and PostgreSQL
    python bench/ingest.py --consumers 2         # also: two consumer processes in one group
    python bench/ingest.py --bootstrap HOST:PORT --database-url postgresql+asyncpg://... --repeat 1
    python bench/ingest.py --events 50000 --repeat 1 --profile /tmp/ingest.prof
    python bench/ingest.py --latency 20000 --latency-seconds 10     # accepted -> KPI visible, p50/p99
    python bench/ingest.py --latency 20000 --repeat 1 --profile /tmp/app.prof     # also: cProfile of the HTTP app

Steps: produce N sample-organisation events (``devtools.simulator.EventGenerator``)
to a fresh topic once. Then, per round: read them all with a bare ``AIOKafkaConsumer`` (consume
only, no decoding, one offset commit per batch), and run the real ``TrackingConsumer`` from
offset 0 into a fresh database until every event is committed in PostgreSQL. Each round is
verified (every event stored once, count and total of every KPI exact).

Both rates are steady-state rates over the same span: from the end of the first batch (its offset
commit) to the end of the last, counting the events after the first batch; the group join and
first fetch are reported apart. Also printed: CPU time per event of the consumer process, the
PostgreSQL server and the Kafka broker (Linux ``/proc``), which is far steadier than wall time on
a shared machine. With ``--consumers K`` (K > 1) the consumers are ``tandem tracking consume``
processes in one group, and completion is observed in the database.

``--latency RATE``: accepted -> visible at a steady RATE, over Kafka and over HTTP ingest, with
the load generator (``bench/ingest_load.py``, open-loop), a standalone ``tandem tracking consume``
and, for HTTP, the tracking app under uvicorn each in its own process (see ``latency``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes  # noqa: F401 - preloaded: devtools.stack.process imports it in a preexec_fn after fork
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from contracts.tracking import LateDataPolicy  # noqa: E402
from devtools.simulator import DEPARTMENTS, EventGenerator, sample_catalog  # noqa: E402
from services.common.db import create_engine, create_session_factory  # noqa: E402
from services.common.kafka import create_producer  # noqa: E402
from services.common.migrations import upgrade  # noqa: E402
from services.tracking import service  # noqa: E402
from services.tracking.consumer import DEFAULT_MAX_RECORDS, TrackingConsumer, freeze_startup_heap  # noqa: E402
from services.tracking.models import TrackingKpi, TrackingMetricEvent  # noqa: E402

CYCLE_ID = "bench"
MAX_RECORDS = DEFAULT_MAX_RECORDS
"""Records per batch (``getmany(max_records=...)``) for both the raw consumer and the tracking consumer
(``--max-records`` changes it for both); the default is the consumer's own."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- CPU accounting

_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int | None) -> float:
    """User + system CPU seconds of ``root`` and every live descendant (Linux ``/proc``), so the
    cost per event of the broker and PostgreSQL can be told apart on a shared machine."""
    if root is None:
        return 0.0
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _cpu) in stats.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(stats[pid][1] for pid in tree if pid in stats)


def cpu_now(servers: dict[str, int | None], consumers: list[int] | None = None) -> dict[str, float]:
    """CPU seconds so far: the consumer (this process, or the given consumer processes) and each server."""
    if consumers is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        mine = usage.ru_utime + usage.ru_stime
    else:
        mine = sum(tree_cpu_seconds(pid) for pid in consumers)
    return {"consumer": mine, **{name: tree_cpu_seconds(pid) for name, pid in servers.items()}}


@dataclass
class Run:
    events: int  # counted in the rate (after the first batch)
    seconds: float
    cpu: dict[str, float]  # CPU seconds per component over the same span
    startup: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Events per second after the first batch (0 when everything came in that first batch)."""
        return self.events / self.seconds if self.events and self.seconds > 0 else 0.0

    def cpu_us_per_event(self) -> dict[str, float]:
        if not self.events:
            return {}
        return {name: round(seconds / self.events * 1e6, 1) for name, seconds in self.cpu.items()}


# --------------------------------------------------------------------------- steps


async def produce(bootstrap: str, topic: str, count: int, idempotence: bool) -> tuple[dict[str, float], dict[str, int]]:
    generator = EventGenerator(list(DEPARTMENTS), seed=42)
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    producer = await create_producer(
        bootstrap, idempotence=idempotence, linger_ms=20, max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024
    )
    started = time.perf_counter()
    now = datetime.now(UTC)
    try:
        futures = []
        for i in range(count):
            event = generator.next(now - timedelta(seconds=i % 3600))
            assert event.metric is not None and event.amount is not None
            sums[event.metric] += event.amount
            counts[event.metric] += 1
            futures.append(await producer.send(topic, event.value, key=event.key))
            if len(futures) >= 20_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - started
    log(f"produced {count:,} events in {elapsed:.1f}s ({count / elapsed:,.0f} ev/s)")
    return dict(sums), dict(counts)


async def consume_only(bootstrap: str, topic: str, count: int, servers: dict[str, int | None]) -> Run:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_RECORDS,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    started = time.perf_counter()
    await consumer.start()
    try:
        seen = first = 0
        first_done: float | None = None
        cpu_first: dict[str, float] = {}
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=MAX_RECORDS)
            seen += sum(len(records) for records in batch.values())
            if batch:
                await consumer.commit()
                if first_done is None:
                    first, first_done, cpu_first = seen, time.perf_counter(), cpu_now(servers)
        finished, cpu_end = time.perf_counter(), cpu_now(servers)
        assert first_done is not None
        return Run(
            events=count - first,
            seconds=finished - first_done,
            cpu={k: cpu_end[k] - cpu_first[k] for k in cpu_end},
            startup=first_done - started,
        )
    finally:
        await consumer.stop()


async def end_to_end(
    bootstrap: str,
    topic: str,
    count: int,
    database_url: str,
    idempotence: bool,
    servers: dict[str, int | None],
    profile: str | None = None,
) -> Run:
    """The real ``TrackingConsumer`` in this process until every event is committed."""
    engine = create_engine(database_url, pool_size=4)
    done = asyncio.Event()
    consumer: TrackingConsumer | None = None
    first: list[tuple[int, float, dict[str, float]]] = []

    def on_batch(_result: Any) -> None:  # runs after the batch's DB commit (its offset commit is queued)
        assert consumer is not None
        if not first:
            first.append((consumer.stats.inserted, time.perf_counter(), cpu_now(servers)))
        if consumer.stats.inserted >= count:
            done.set()

    consumer = TrackingConsumer(
        engine=engine,
        bootstrap_servers=bootstrap,
        group_id=f"bench-e2e-{uuid.uuid4().hex[:6]}",
        topic=topic,
        dlq_topic=f"{topic}.dlq",
        idempotence=idempotence,
        max_records=MAX_RECORDS,
        on_batch=on_batch,
    )
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    await done.wait()
    await consumer.flush_offsets()  # the run ends when the last batch's offsets are committed too
    finished, cpu_end = time.perf_counter(), cpu_now(servers)
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
        log(f"profile written to {profile}")
    stats = consumer.stats
    consumer.stop()
    await asyncio.wait_for(task, timeout=30)
    await engine.dispose()
    inserted_first, first_done, cpu_first = first[0]
    return Run(
        events=count - inserted_first,
        seconds=finished - first_done,
        cpu={k: cpu_end[k] - cpu_first[k] for k in cpu_end},
        startup=first_done - started,
        notes={
            "batches": stats.batches,
            "fast_batches": stats.fast_batches,
            "phase_seconds": {
                "fetch": round(stats.fetch_seconds, 2),
                "validate_route": round(stats.prepare_seconds, 2),
                "wait_previous_write": round(stats.backpressure_seconds, 2),
                "database": round(stats.database_seconds, 2),
                "offset_commit": round(stats.offset_commit_seconds, 2),
            },
        },
    )


def consumer_command(
    bootstrap: str, database_url: str, group: str, topic: str, idempotence: bool
) -> tuple[dict[str, str], list[str]]:
    """Environment and argv of a standalone ``tandem tracking consume`` process (as in production)."""
    env = {**os.environ, "TANDEM_ENV": "dev", "TANDEM_KAFKA_IDEMPOTENCE": "true" if idempotence else "false"}
    argv = [
        sys.executable, "-m", "services.cli", "tracking", "consume", "--bootstrap", bootstrap,
        "--database-url", database_url, "--group", group, "--topic", topic, "--dlq-topic", f"{topic}.dlq",
        "--no-migrate", "--max-records", str(MAX_RECORDS),
    ]  # fmt: skip
    return env, argv


async def end_to_end_processes(
    bootstrap: str,
    topic: str,
    count: int,
    database_url: str,
    idempotence: bool,
    servers: dict[str, int | None],
    processes: int,
) -> Run:
    """``processes`` standalone ``tandem tracking consume`` processes in one group; completion is
    observed in the database (the sum of the KPI event counts, polled every 20 ms)."""
    env, argv = consumer_command(bootstrap, database_url, f"bench-e2e-{uuid.uuid4().hex[:6]}", topic, idempotence)
    engine = create_engine(database_url)
    query = select(func.coalesce(func.sum(TrackingKpi.event_count), 0)).where(TrackingKpi.cycle_id == CYCLE_ID)

    async def stored() -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    children = [
        subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    pids = [child.pid for child in children]
    started = time.perf_counter()
    try:
        first: tuple[int, float, dict[str, float]] | None = None
        while True:
            seen = await stored()
            if first is None and seen > 0:
                first = (seen, time.perf_counter(), cpu_now(servers, pids))
            if seen >= count:
                finished, cpu_end = time.perf_counter(), cpu_now(servers, pids)
                break
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"only {seen:,} of {count:,} events stored after 10 minutes")
            await asyncio.sleep(0.02)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        await engine.dispose()
    assert first is not None
    seen_first, first_done, cpu_first = first
    return Run(
        events=count - seen_first,
        seconds=finished - first_done,
        cpu={k: cpu_end[k] - cpu_first[k] for k in cpu_end},
        startup=first_done - started,
        notes={"processes": processes},
    )


# --------------------------------------------------------------------------- latency

LATENCY_DEPARTMENTS = [f"lat{i}" for i in range(8)]
LATENCY_METRIC = "production.output_units"


def latency_catalog() -> Any:
    from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition

    today = datetime.now(UTC).date()
    return KpiCatalog(
        cycle_id="latency",
        period_start=date(today.year - 1, 1, 1),
        period_end=date(today.year + 1, 12, 31),
        kpis=[
            KpiDefinition(
                kpi_id=f"out-{d}", level=GoalLevel.DEPARTMENT, name=d, metric=LATENCY_METRIC, unit="units",
                aggregation=Aggregation.SUM, direction=Direction.HIGHER_IS_BETTER, start_value=0, target_value=1e9,
                owner_department_id=d, update_frequency_hours=1, department_id=d,
            )
            for d in LATENCY_DEPARTMENTS
        ],
    )  # fmt: skip


LOAD_SCRIPT = Path(__file__).resolve().with_name("ingest_load.py")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds."""
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else ordered * 99
    return {
        "p50_ms": round(cut[49] * 1000, 1),
        "p99_ms": round(cut[98] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def latency(
    bootstrap: str,
    database_url: str,
    *,
    rate: float,
    seconds: float,
    path: str,
    idempotence: bool,
    servers: dict[str, int | None],
    logs: Path,
    profile: str | None = None,
) -> dict[str, Any]:
    """Delay from an event accepted (Kafka: the producer's acknowledgement; HTTP: the 202 of
    ``POST /v1/ingest/metrics``) to the KPI count including it being readable, at a steady ``rate``.

    Three kinds of process, as in production: the load generator (``bench/ingest_load.py generate``,
    open-loop at ``rate``), a standalone ``tandem tracking consume`` process, and for HTTP the
    tracking app under uvicorn (``ingest_load.py serve``, in-process consumer off). This process
    only polls the KPIs' ``event_count`` (what the progress API reads) in the tracking database
    every 10 ms. The delay of the n-th event a KPI accepted (in time order) is the time until that
    KPI's count reaches n (events of one KPI share a key, so one partition: on Kafka they are
    consumed in acknowledgement order; HTTP requests of one department may overlap). Also reported:
    the same from each tick's intended send time (corrects coordinated omission: includes any lag
    of the generator and the time to be accepted), and the CPU time per event of every process.
    """
    from services.common.auth import mint_token
    from services.common.kafka_admin import create_topics
    from services.common.settings import DEV_JWT_SECRET, Settings

    topic = f"bench.latency.{uuid.uuid4().hex[:6]}"
    await create_topics(bootstrap, [topic, f"{topic}.dlq"], partitions=4)
    await upgrade("tracking", database_url)
    engine = create_engine(database_url, pool_size=2)
    async with create_session_factory(engine)() as session:
        await service.replace_catalog(
            session=session, catalog=latency_catalog(), late_data_policy=LateDataPolicy.ACCEPT, grace_hours=1,
            check_in_cadence_days=14,
        )  # fmt: skip
    visible: dict[str, list[float]] = {d: [] for d in LATENCY_DEPARTMENTS}
    query = select(TrackingKpi.kpi_id, TrackingKpi.event_count).where(TrackingKpi.cycle_id == "latency")
    stop = asyncio.Event()

    async def poll() -> None:
        seen = dict.fromkeys(LATENCY_DEPARTMENTS, 0)
        async with engine.connect() as conn:
            while not stop.is_set():
                now = time.monotonic()  # the snapshot is taken when the query starts
                for kpi_id, count in (await conn.execute(query)).all():
                    department = kpi_id.removeprefix("out-")
                    visible[department].extend([now] * (count - seen[department]))
                    seen[department] = count
                await conn.rollback()
                await asyncio.sleep(0.01)

    async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} after {timeout:.0f} s (logs in {logs})")
            await asyncio.sleep(0.05)

    os.makedirs(logs, exist_ok=True)
    children: dict[str, Any] = {}
    poller: asyncio.Task[None] | None = None
    config: dict[str, Any] = {
        "path": path, "bootstrap": bootstrap, "topic": topic, "idempotence": idempotence, "rate": rate,
        "seconds": seconds, "batch": 200 if path == "kafka" else 1000, "departments": LATENCY_DEPARTMENTS,
        "metric": LATENCY_METRIC,
    }  # fmt: skip
    try:
        env, argv = consumer_command(bootstrap, database_url, f"lat-{topic}", topic, idempotence)
        with open(logs / f"{path}-consumer.log", "wb") as out:
            children["consumer"] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        if path == "http":
            port = free_port()
            serve = json.dumps(
                {"bootstrap": bootstrap, "idempotence": idempotence, "database_url": database_url}
                | {"topic": topic, "rate": rate, "port": port, "profile": profile}
            )
            with open(logs / "http-app.log", "wb") as out:
                argv = [sys.executable, str(LOAD_SCRIPT), "serve", serve]
                children["app"] = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            config["url"] = f"http://127.0.0.1:{port}"
            settings = Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-bench")
            config["tokens"] = {
                d: mint_token(settings, sub=f"sys-{d}", roles=["department_system"], department_id=d)
                for d in LATENCY_DEPARTMENTS
            }
            import httpx

            async with httpx.AsyncClient(base_url=config["url"]) as client:
                for _ in range(600):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
                else:
                    raise TimeoutError(f"tracking app not up after 60 s (logs in {logs})")
        poller = asyncio.create_task(poll())
        with open(logs / f"{path}-generator.log", "wb") as out:
            generator = await asyncio.create_subprocess_exec(
                sys.executable, str(LOAD_SCRIPT), "generate", json.dumps(config), cwd=ROOT,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=out, limit=64 * 1024 * 1024,
            )  # fmt: skip
        children["generator"] = generator
        ready = await asyncio.wait_for(generator.stdout.readline(), 180)  # type: ignore[union-attr]
        if not ready:
            raise RuntimeError(f"the generator ended before it was ready (logs in {logs})")
        # The warm-up event of every department is visible: group joined, connections open.
        await until(lambda: all(visible[d] for d in LATENCY_DEPARTMENTS), 90, "warm-up events not visible")
        pids = {name: child.pid for name, child in children.items()}
        cpu_start = {name: tree_cpu_seconds(pid) for name, pid in (pids | servers).items()}
        generator.stdin.write(b"go\n")  # type: ignore[union-attr]
        await generator.stdin.drain()  # type: ignore[union-attr]
        line = await asyncio.wait_for(generator.stdout.readline(), seconds + 300)  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the generator ended without a result (logs in {logs})")
        cpu_generator = tree_cpu_seconds(generator.pid)
        await generator.wait()
        run = json.loads(line)
        rows = sorted(run["rows"], key=lambda r: r[4])  # by acceptance time
        accepted: dict[str, list[float]] = {d: [] for d in LATENCY_DEPARTMENTS}
        intended: dict[str, list[float]] = {d: [] for d in LATENCY_DEPARTMENTS}
        for _n, department, due, _sent, at, size, ok in rows:
            if ok:
                accepted[department].extend([at] * size)
                intended[department].extend([due] * size)
        for times in intended.values():
            times.sort()
        await until(
            lambda: all(len(visible[d]) >= 1 + len(accepted[d]) for d in LATENCY_DEPARTMENTS),
            120, "accepted events not visible",
        )  # fmt: skip
        cpu_end = {name: tree_cpu_seconds(pid) for name, pid in (pids | servers).items()}
        cpu_end["generator"] = cpu_generator
    finally:
        stop.set()
        if poller is not None:
            await poller
        for child in children.values():
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
        for child in children.values():
            if isinstance(child, subprocess.Popen):
                try:
                    child.wait(20)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(10)
            else:
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.wait_for(child.wait(), 20)
        await engine.dispose()
    started = run["started"]
    events = sum(len(a) for a in accepted.values())
    sent = sum(size for *_, size, _ok in rows)
    nominal = len(rows) * run["tick"]
    to_visible = [v - a for d in LATENCY_DEPARTMENTS for a, v in zip(accepted[d], visible[d][1:], strict=False)]
    from_intended = [v - i for d in LATENCY_DEPARTMENTS for i, v in zip(intended[d], visible[d][1:], strict=False)]
    result = {
        "path": path,
        "rate_target": rate,
        "rate_offered": round(sent / (max(r[3] for r in rows) - started + run["tick"])),
        # accepted events over the nominal window, or up to the last acceptance when that came later
        "rate_achieved": round(events / max(nominal, max(r[4] for r in rows if r[6]) - started)) if events else 0,
        "events": events,
        "events_refused": sent - events,
        "errors": run["errors"],
        "generator_behind_max_ms": round(max(r[3] - r[2] for r in rows) * 1000, 1),
        "acknowledgement": percentiles([r[4] - r[3] for r in rows]),
        **percentiles(to_visible),
        "from_intended": percentiles(from_intended),
        "cpu_us_per_event": {
            name: round((cpu_end[name] - cpu_start.get(name, 0.0)) / max(events, 1) * 1e6, 1) for name in cpu_end
        },
    }
    log(
        f"latency ({path}): {events:,} events accepted ({sent - events:,} refused), offered "
        f"{result['rate_offered']:,} ev/s, achieved {result['rate_achieved']:,} ev/s; accepted -> visible p50 "
        f"{result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms; from the intended send "
        f"time p50 {result['from_intended']['p50_ms']} ms, p99 {result['from_intended']['p99_ms']} ms; "
        f"acknowledgement p50 {result['acknowledgement']['p50_ms']} ms, p99 {result['acknowledgement']['p99_ms']} ms; "
        f"generator behind by at most {result['generator_behind_max_ms']} ms; CPU us/event {result['cpu_us_per_event']}"
    )
    return result


async def prepare_database(database_url: str) -> None:
    await upgrade("tracking", database_url)
    engine = create_engine(database_url)
    today = datetime.now(UTC).date()
    try:
        async with create_session_factory(engine)() as session:
            await service.replace_catalog(
                session=session,
                catalog=sample_catalog(CYCLE_ID, date(today.year - 1, 1, 1), date(today.year + 1, 12, 31)),
                late_data_policy=LateDataPolicy.ACCEPT,
                grace_hours=1,
                check_in_cadence_days=14,
            )
    finally:
        await engine.dispose()


async def verify(database_url: str, sums: dict[str, float], counts: dict[str, int]) -> None:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            stored = (await session.execute(select(func.count()).select_from(TrackingMetricEvent))).scalar_one()
            kpis = (await session.scalars(select(TrackingKpi).where(TrackingKpi.cycle_id == CYCLE_ID))).all()
    finally:
        await engine.dispose()
    expected = sum(counts.values())
    assert stored == expected, f"stored {stored} events, expected {expected}"
    assert len(kpis) == len(counts), f"{len(kpis)} KPIs, expected {len(counts)}"
    for kpi in kpis:
        assert kpi.event_count == counts.get(kpi.metric, 0), f"{kpi.kpi_id}: count {kpi.event_count}"
        assert abs(kpi.value_sum - sums.get(kpi.metric, 0.0)) < 1e-6 * max(1.0, abs(kpi.value_sum)), kpi.kpi_id
    log(f"verified: {stored:,} events stored once each; count and total of all {len(kpis)} KPIs exact")


def describe(label: str, run: Run) -> None:
    cpu = ", ".join(f"{name} {us:.1f}" for name, us in run.cpu_us_per_event().items())
    log(
        f"{label}: {run.events:,} events in {run.seconds:.2f}s = {run.rate:,.0f} ev/s "
        f"(start-up {run.startup:.2f}s excluded); CPU us/event: {cpu}"
    )
    if "phase_seconds" in run.notes:
        log(
            f"  consumer phases over the whole run (s): {run.notes['phase_seconds']}, {run.notes['batches']} batches "
            f"({run.notes['fast_batches']} by the single-statement path)"
        )


def summary(runs: list[Run]) -> dict[str, Any]:
    rates = [r.rate for r in runs]
    per_event = [r.cpu_us_per_event() for r in runs]
    return {
        "events_per_s_median": round(statistics.median(rates)),
        "events_per_s_runs": [round(x) for x in rates],
        "cpu_us_per_event_median": {
            name: round(statistics.median(p[name] for p in per_event), 1) for name in per_event[0]
        },
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.database_url and args.repeat > 1:
        raise SystemExit("--database-url runs one round (--repeat 1): each round needs an empty database")
    tmp = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    os.chmod(tmp, 0o755)
    broker: Any = None
    postgres: Any = None
    try:
        if args.bootstrap:
            bootstrap, idempotence = args.bootstrap, True
        else:
            from devtools.stack.kafka import ApacheKafka

            broker = ApacheKafka(tmp / "kafka")
            await broker.start(log)
            bootstrap, idempotence = broker.bootstrap_servers, True
        if not args.database_url:
            from devtools.stack.postgres import PostgresCluster

            postgres = PostgresCluster(tmp / "postgres")
            await postgres.start(log)
        servers = {
            "postgres": postgres.pid if postgres is not None else None,
            "broker": broker.pid if broker is not None else None,
        }
        from services.common.kafka_admin import create_topics

        if args.latency:
            rounds = []
            for round_no in range(1, args.repeat + 1):
                log(f"--- latency round {round_no}/{args.repeat}")
                for path in ("kafka", "http"):
                    url = args.database_url or await postgres.create_database(f"lat_{uuid.uuid4().hex[:8]}")
                    rounds.append(
                        await latency(
                            bootstrap, url, rate=args.latency, seconds=args.latency_seconds, path=path,
                            idempotence=idempotence, servers=servers, logs=tmp / f"logs-{round_no}",
                            profile=args.profile,
                        )
                    )  # fmt: skip
            outcome: dict[str, Any] = {"latency": {}, "max_records": MAX_RECORDS, "cpus": os.cpu_count()}
            for path in ("kafka", "http"):
                mine = [r for r in rounds if r["path"] == path]
                outcome["latency"][path] = {
                    key: statistics.median(r[key] for r in mine)
                    for key in ("rate_offered", "rate_achieved", "p50_ms", "p99_ms")
                } | {"rounds": mine}
                median = outcome["latency"][path]
                log(
                    f"latency {path}: medians of {len(mine)} rounds: achieved {median['rate_achieved']:,} ev/s, "
                    f"p50 {median['p50_ms']} ms, p99 {median['p99_ms']} ms"
                )
            print(json.dumps(outcome, indent=2))
            return outcome
        topic = f"bench.metrics.{uuid.uuid4().hex[:6]}"
        await create_topics(bootstrap, [topic, f"{topic}.dlq"], partitions=args.partitions)
        sums, counts = await produce(bootstrap, topic, args.events, idempotence)

        async def fresh_database() -> str:
            url: str = args.database_url or await postgres.create_database(f"bench_{uuid.uuid4().hex[:8]}")
            await prepare_database(url)
            return url

        modes: list[tuple[str, Callable[[str], Awaitable[Run]]]] = [
            (
                "end to end (1 consumer, in process)",
                lambda url: end_to_end(bootstrap, topic, args.events, url, idempotence, servers, args.profile),
            )
        ]
        if args.consumers > 1:
            modes.append(
                (
                    f"end to end ({args.consumers} consumer processes)",
                    lambda url: end_to_end_processes(
                        bootstrap, topic, args.events, url, idempotence, servers, args.consumers
                    ),
                )
            )
        # As the standalone consumer (tandem tracking consume) does after start-up; once, before every
        # round, so the consume-only baseline runs under the same collector settings as the consumer.
        freeze_startup_heap()
        raw_runs: list[Run] = []
        e2e_runs: dict[str, list[Run]] = {label: [] for label, _ in modes}
        for round_no in range(1, args.repeat + 1):
            log(f"--- round {round_no}/{args.repeat}")
            raw = await consume_only(bootstrap, topic, args.events, servers)
            describe("raw aiokafka consume-only", raw)
            raw_runs.append(raw)
            for label, run_mode in modes:
                url = await fresh_database()
                run = await run_mode(url)
                describe(label, run)
                await verify(url, sums, counts)
                e2e_runs[label].append(run)

        raw_median = statistics.median(r.rate for r in raw_runs)
        result: dict[str, Any] = {
            "events": args.events,
            "partitions": args.partitions,
            "rounds": args.repeat,
            "max_records": MAX_RECORDS,
            "cpus": os.cpu_count(),
            "raw_consume": summary(raw_runs),
            "end_to_end": {},
        }
        print()
        for label, runs in e2e_runs.items():
            entry = summary(runs)
            entry["ratio_of_medians"] = round(entry["events_per_s_median"] / raw_median, 3)
            entry["ratio_per_round"] = [round(e.rate / r.rate, 3) for e, r in zip(runs, raw_runs, strict=True)]
            result["end_to_end"][label] = entry
            print(
                f"{label}: median {entry['events_per_s_median']:,} ev/s vs raw consume-only median "
                f"{raw_median:,.0f} ev/s: ratio {entry['ratio_of_medians']:.2f}"
            )
        print(json.dumps(result, indent=2))
        return result
    finally:
        if broker is not None:
            await broker.stop()
        if postgres is not None:
            await postgres.stop()
        with contextlib.suppress(OSError):
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (each: consume-only, then end to end)")
    parser.add_argument("--consumers", type=int, default=1, help="also run this many consumer processes (> 1)")
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting Apache Kafka")
    parser.add_argument("--database-url", help="use this PostgreSQL (postgresql+asyncpg://...); one round only")
    parser.add_argument("--max-records", type=int, default=MAX_RECORDS, help="records per batch, both consumers")
    parser.add_argument(
        "--profile",
        help="write a cProfile of the (last) in-process end-to-end run (with --latency: of the HTTP app) to this file",
    )
    parser.add_argument(
        "--latency", type=float, metavar="RATE", help="instead: accepted-to-visible latency at RATE ev/s (Kafka, HTTP)"
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="length of each latency run")
    parser.add_argument("--json", dest="json_path", type=Path, help="also write the results as JSON to this file")
    arguments = parser.parse_args()
    MAX_RECORDS = arguments.max_records
    outcome = asyncio.run(main(arguments))
    if arguments.json_path is not None:
        arguments.json_path.write_text(json.dumps(outcome, indent=2))
