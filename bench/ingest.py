"""Ingestion benchmark: Kafka -> tracking consumer -> PostgreSQL, against raw aiokafka consume-only.

    python bench/ingest.py                       # 200k events; starts Apache Kafka and PostgreSQL in a temp dir
    python bench/ingest.py --bootstrap HOST:PORT --database-url postgresql+asyncpg://...
    python bench/ingest.py --events 50000 --profile /tmp/ingest.prof

Steps: produce N sample-organisation events (``services.tracking.simulator.EventGenerator``)
to a fresh topic; read them all with a bare ``AIOKafkaConsumer`` (consume only, no decoding);
then run the real ``TrackingConsumer`` from offset 0 and time it until every event is
committed in PostgreSQL. Verifies the stored count and every KPI's total, prints both rates
and their ratio (end-to-end / consume-only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes  # noqa: F401 - preloaded: services.stack.process imports it in a preexec_fn after fork
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from contracts.tracking import LateDataPolicy  # noqa: E402
from services.common.db import create_engine, create_session_factory  # noqa: E402
from services.common.kafka import create_producer  # noqa: E402
from services.common.migrations import upgrade  # noqa: E402
from services.tracking import service  # noqa: E402
from services.tracking.consumer import TrackingConsumer  # noqa: E402
from services.tracking.models import TrackingKpi, TrackingMetricEvent  # noqa: E402
from services.tracking.simulator import DEPARTMENTS, EventGenerator, sample_catalog  # noqa: E402


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


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


async def consume_only(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batch:
                started = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
            if batch:
                await consumer.commit()
        assert started is not None
        return time.perf_counter() - started
    finally:
        await consumer.stop()


@dataclass
class Run:
    seconds: float
    cpu: dict[str, float]  # CPU seconds per component during the timed run


async def end_to_end(
    bootstrap: str,
    topic: str,
    count: int,
    database_url: str,
    idempotence: bool,
    profile: str | None,
    servers: dict[str, int | None],
    max_records: int,
) -> Run:
    engine = create_engine(database_url, pool_size=4)
    done = asyncio.Event()
    consumer: TrackingConsumer | None = None
    first_batch: list[float] = []
    cpu_at_first: dict[str, float] = {}

    def on_batch(_result: Any) -> None:
        assert consumer is not None
        if not first_batch:
            first_batch.append(time.perf_counter())
            cpu_at_first.update(cpu_now(servers))
        if consumer.stats.inserted >= count:
            done.set()

    consumer = TrackingConsumer(
        engine=engine,
        bootstrap_servers=bootstrap,
        group_id=f"bench-e2e-{uuid.uuid4().hex[:6]}",
        topic=topic,
        dlq_topic=f"{topic}.dlq",
        idempotence=idempotence,
        max_records=max_records,
        on_batch=on_batch,
    )
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    await done.wait()
    finished = time.perf_counter()
    cpu_at_end = cpu_now(servers)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
        log(f"profile written to {profile}")
    stats = consumer.stats
    log(
        f"consumer phases: {stats.batches} batches; fetch {stats.fetch_seconds:.2f}s, "
        f"validate+route {stats.prepare_seconds:.2f}s, waiting for the previous write "
        f"{stats.backpressure_seconds:.2f}s; in the write task: database {stats.database_seconds:.2f}s, "
        f"offset commit {stats.offset_commit_seconds:.2f}s"
    )
    consumer.stop()
    await asyncio.wait_for(task, timeout=30)
    await engine.dispose()
    log(f"consumer start-up (join group, first fetch) took {first_batch[0] - started:.2f}s, excluded from the rate")
    # Timed from the first batch like the consume-only run; both exclude the group join.
    # (The first batch's own work is inside the timed span: its callback runs after its commit.)
    return Run(finished - first_batch[0], {k: cpu_at_end[k] - cpu_at_first[k] for k in cpu_at_end})


def cpu_now(servers: dict[str, int | None]) -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"consumer": usage.ru_utime + usage.ru_stime, **{k: tree_cpu_seconds(v) for k, v in servers.items()}}


async def verify(database_url: str, cycle_id: str, sums: dict[str, float], counts: dict[str, int]) -> None:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            stored = (await session.execute(select(func.count()).select_from(TrackingMetricEvent))).scalar_one()
            kpis = (await session.scalars(select(TrackingKpi).where(TrackingKpi.cycle_id == cycle_id))).all()
    finally:
        await engine.dispose()
    expected = sum(counts.values())
    assert stored == expected, f"stored {stored} events, expected {expected}"
    for kpi in kpis:
        assert kpi.event_count == counts.get(kpi.metric, 0), f"{kpi.kpi_id}: count {kpi.event_count}"
        assert abs(kpi.value_sum - sums.get(kpi.metric, 0.0)) < 1e-6 * max(1.0, abs(kpi.value_sum)), kpi.kpi_id
    log(f"verified: {stored:,} events stored once each; count and total of all {len(kpis)} KPIs exact")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    os.chmod(tmp, 0o755)
    broker: Any = None
    postgres: Any = None
    try:
        if args.bootstrap:
            bootstrap, idempotence = args.bootstrap, True
        else:
            from services.stack.kafka import ApacheKafka

            broker = ApacheKafka(tmp / "kafka")
            await broker.start(log)
            bootstrap, idempotence = broker.bootstrap_servers, True
        if args.database_url:
            database_url = args.database_url
        else:
            from services.stack.postgres import PostgresCluster

            postgres = PostgresCluster(tmp / "postgres")
            await postgres.start(log)
            database_url = await postgres.create_database(f"bench_{uuid.uuid4().hex[:8]}")
        from services.stack.kafka import create_topics

        topic = f"bench.metrics.{uuid.uuid4().hex[:6]}"
        await create_topics(bootstrap, [topic, f"{topic}.dlq"], partitions=args.partitions)
        await upgrade("tracking", database_url)
        cycle_id = "bench"
        engine = create_engine(database_url)
        today = datetime.now(UTC).date()
        async with create_session_factory(engine)() as session:
            await service.replace_catalog(
                session=session,
                catalog=sample_catalog(cycle_id, date(today.year - 1, 1, 1), date(today.year + 1, 12, 31)),
                late_data_policy=LateDataPolicy.ACCEPT,
                grace_hours=1,
                check_in_cadence_days=14,
            )
        await engine.dispose()

        sums, counts = await produce(bootstrap, topic, args.events, idempotence)
        raw_seconds = await consume_only(bootstrap, topic, args.events)
        raw_rate = args.events / raw_seconds
        log(f"raw aiokafka consume-only: {args.events:,} in {raw_seconds:.2f}s = {raw_rate:,.0f} ev/s")
        e2e_seconds = await end_to_end(bootstrap, topic, args.events, database_url, idempotence, args.profile)
        e2e_rate = args.events / e2e_seconds
        log(f"end-to-end into PostgreSQL: {args.events:,} in {e2e_seconds:.2f}s = {e2e_rate:,.0f} ev/s")
        await verify(database_url, cycle_id, sums, counts)
        result = {
            "events": args.events,
            "partitions": args.partitions,
            "cpus": os.cpu_count(),
            "raw_consume_events_per_s": round(raw_rate),
            "end_to_end_events_per_s": round(e2e_rate),
            "ratio": round(e2e_rate / raw_rate, 3),
        }
        print(json.dumps(result, indent=2))
        print(
            f"\nend-to-end {e2e_rate:,.0f} ev/s vs raw consume-only {raw_rate:,.0f} ev/s: "
            f"ratio {e2e_rate / raw_rate:.2f}"
        )
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
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting Apache Kafka")
    parser.add_argument("--database-url", help="use this PostgreSQL (postgresql+asyncpg://...)")
    parser.add_argument("--profile", help="write a cProfile of the end-to-end run to this file")
    asyncio.run(main(parser.parse_args()))
