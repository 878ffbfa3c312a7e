"""Ingestion benchmark: Kafka -> tracking consumer -> PostgreSQL, against raw aiokafka consume-only.

    python bench/ingest.py                       # 200k events, 3 rounds; starts Apache Kafka and PostgreSQL
    python bench/ingest.py --consumers 2         # also: two consumer processes in one group
    python bench/ingest.py --bootstrap HOST:PORT --database-url postgresql+asyncpg://... --repeat 1
    python bench/ingest.py --events 50000 --repeat 1 --profile /tmp/ingest.prof
    python bench/ingest.py --latency 20000 --latency-seconds 20     # accepted -> KPI visible, p50/p99

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
    group = f"bench-e2e-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "TANDEM_ENV": "dev", "TANDEM_KAFKA_IDEMPOTENCE": "true" if idempotence else "false"}
    argv = [
        sys.executable,
        "-m",
        "services.cli",
        "tracking",
        "consume",
        "--bootstrap",
        bootstrap,
        "--database-url",
        database_url,
        "--group",
        group,
        "--topic",
        topic,
        "--dlq-topic",
        f"{topic}.dlq",
        "--no-migrate",
        "--max-records",
        str(MAX_RECORDS),
    ]
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


async def latency(
    bootstrap: str, database_url: str, *, rate: float, seconds: float, path: str, idempotence: bool
) -> dict[str, Any]:
    """Delay from an event accepted (Kafka: the producer's acknowledgement; HTTP: the 202 of
    ``POST /v1/ingest/metrics``) to the KPI count including it being readable, at a steady ``rate``.

    Events of one KPI share a key, so one partition, in order: the n-th accepted event of a KPI is
    visible once that KPI's ``event_count`` (what the progress API reads) reaches n. The counts are
    polled every 10 ms; the tracking consumer runs in this process (the service's own set-up).
    """
    import httpx

    from services.common.auth import mint_token
    from services.common.settings import DEV_JWT_SECRET, Settings
    from services.tracking.app import create_app

    topic = f"bench.latency.{uuid.uuid4().hex[:6]}"
    from services.common.kafka_admin import create_topics

    await create_topics(bootstrap, [topic, f"{topic}.dlq"], partitions=4)
    await upgrade("tracking", database_url)
    engine = create_engine(database_url, pool_size=4)
    async with create_session_factory(engine)() as session:
        await service.replace_catalog(
            session=session, catalog=latency_catalog(), late_data_policy=LateDataPolicy.ACCEPT, grace_hours=1,
            check_in_cadence_days=14,
        )  # fmt: skip
    accepted: dict[str, list[float]] = {d: [] for d in LATENCY_DEPARTMENTS}
    visible: dict[str, list[float]] = {d: [] for d in LATENCY_DEPARTMENTS}
    query = select(TrackingKpi.kpi_id, TrackingKpi.event_count).where(TrackingKpi.cycle_id == "latency")
    stop = asyncio.Event()

    async def poll() -> None:
        seen = dict.fromkeys(LATENCY_DEPARTMENTS, 0)
        async with engine.connect() as conn:
            while not stop.is_set():
                now = time.perf_counter()
                for kpi_id, count in (await conn.execute(query)).all():
                    department = kpi_id.removeprefix("out-")
                    visible[department].extend([now] * (count - seen[department]))
                    seen[department] = count
                await conn.rollback()
                await asyncio.sleep(0.01)

    settings = Settings(
        env="test", jwt_secret=DEV_JWT_SECRET + "-bench", outbox_relay=False, cycle_workflows=False,
        kafka_bootstrap_servers=bootstrap, kafka_idempotence=idempotence, database_url=database_url,
        auto_migrate=False, ingest_rate_per_second=10 * rate, ingest_rate_burst=int(10 * rate),
    )  # fmt: skip
    app = create_app(settings, run_consumer=True, topic=topic, dlq_topic=f"{topic}.dlq", group_id=f"lat-{topic}")
    batch = 200 if path == "kafka" else 1000
    tick = batch / rate
    async with app.router.lifespan_context(app):
        poller = asyncio.create_task(poll())
        producer = await create_producer(bootstrap, idempotence=idempotence, linger_ms=2) if path == "kafka" else None
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tracking")
        tokens = {
            d: mint_token(settings, sub=f"sys-{d}", roles=["department_system"], department_id=d)
            for d in LATENCY_DEPARTMENTS
        }
        stamp = datetime.now(UTC).isoformat()

        def payload(department: str) -> dict[str, Any]:
            return {
                "event_id": str(uuid.uuid4()), "source": "bench", "department_id": department,
                "metric": LATENCY_METRIC, "value": 1.0, "unit": "units", "occurred_at": stamp,
            }  # fmt: skip

        acks: dict[str, list[tuple[int, float, int]]] = {d: [] for d in LATENCY_DEPARTMENTS}

        async def deliver(number: int, department: str, events: list[dict[str, Any]]) -> None:
            if producer is not None:
                key = f"{department}:{LATENCY_METRIC}".encode()
                futures = [await producer.send(topic, json.dumps(e).encode(), key=key) for e in events]
                await asyncio.gather(*futures)
            else:
                headers = {"Authorization": f"Bearer {tokens[department]}"}
                answer = await http.post("/v1/ingest/metrics", json={"events": events}, headers=headers)
                assert answer.status_code == 202, answer.text
            acks[department].append((number, time.perf_counter(), len(events)))

        in_flight: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        sent = 0
        try:
            number = 0
            while time.perf_counter() - started < seconds:
                await asyncio.sleep(max(0.0, started + number * tick - time.perf_counter()))
                department = LATENCY_DEPARTMENTS[number % len(LATENCY_DEPARTMENTS)]
                task = asyncio.create_task(deliver(number, department, [payload(department) for _ in range(batch)]))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                number += 1
                sent += batch
            await asyncio.gather(*in_flight)
            for department, done in acks.items():  # in send order: one key, one partition, in order
                for _number, at, size in sorted(done):
                    accepted[department].extend([at] * size)
            elapsed = time.perf_counter() - started
            deadline = time.perf_counter() + 60
            while any(len(visible[d]) < len(accepted[d]) for d in LATENCY_DEPARTMENTS):
                assert time.perf_counter() < deadline, "events not visible after 60 s"
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await poller
            if producer is not None:
                await producer.stop()
            await http.aclose()
    await engine.dispose()
    delays = sorted(v - a for d in LATENCY_DEPARTMENTS for a, v in zip(accepted[d], visible[d], strict=False))
    quantile = statistics.quantiles(delays, n=100)
    result = {
        "path": path,
        "rate_target": rate,
        "rate_achieved": round(sent / elapsed),
        "events": sent,
        "p50_ms": round(quantile[49] * 1000, 1),
        "p99_ms": round(quantile[98] * 1000, 1),
        "max_ms": round(delays[-1] * 1000, 1),
    }
    log(
        f"latency ({path}): {sent:,} events at {result['rate_achieved']:,} ev/s: accepted -> visible "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms"
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
                            idempotence=idempotence,
                        )
                    )  # fmt: skip
            outcome: dict[str, Any] = {"latency": {}}
            for path in ("kafka", "http"):
                mine = [r for r in rounds if r["path"] == path]
                outcome["latency"][path] = {
                    key: statistics.median(r[key] for r in mine) for key in ("rate_achieved", "p50_ms", "p99_ms")
                } | {"rounds": mine}
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
    parser.add_argument("--profile", help="write a cProfile of the (last) in-process end-to-end run to this file")
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
