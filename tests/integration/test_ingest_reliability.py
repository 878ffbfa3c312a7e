"""Ingestion reliability against a real broker and PostgreSQL, proven at the crash window.

Every test spreads its keys over all partitions and checks that the events acknowledged to the
producer are exactly the events counted (acked - counted = {}, nothing twice, KPI sums exact).
The consumer, PostgreSQL and rebalance kill tests also assert that records were really read
again (the consumer's re-read and duplicate counts), so the crash window was hit.

(a) ``kill -9`` the Apache Kafka broker while events are produced (idempotent ``acks=all``
    emitters), restart it on the same data; and the same with a clean broker restart. Re-reads
    count both records fetched again and records the emitters re-sent.
(b) ``kill -9`` the standalone consumer process right after a batch is stored, restart it.
(c) 1,000 malformed among 10,000 valid: exactly those 1,000 in the DLQ once each, with reasons.
(d) ``kill -9`` PostgreSQL (the whole server) mid-batch, restart it on the same data.
(e) A rebalance under load: three consumer processes join one by one while events stream in,
    one leaves cleanly, two are killed mid-batch, a fourth joins and drains the topic.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from devtools.stack.kafka import ApacheKafka, create_topics
from devtools.stack.postgres import PostgresCluster
from sdk.emitter import MetricEmitter
from services.common.db import create_session_factory
from services.tracking.consumer import consumer_lag
from services.tracking.models import TrackingDeadLetter
from tests.integration.conftest_ingest import (
    METRIC,
    dead_letters,
    drained,
    event,
    expected_totals,
    in_process_consumer,
    keyed,
    kpi_totals,
    prepare_db,
    produce,
    read_topic,
    spread_departments,
    stored_count,
    stored_events,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
SPREAD = spread_departments(4)
"""Four departments whose keys land on the four partitions."""


async def _assert_exact(engine: Any, acked: dict[str, float]) -> None:
    """acked - counted = {} and counted - acked = {}; KPI counts and sums exact (nothing twice)."""
    stored = await stored_events(engine)
    assert set(acked) - set(stored) == set(), "acknowledged events missing"
    assert set(stored) - set(acked) == set(), "events stored that were never acknowledged"
    totals = await kpi_totals(engine)
    for department in SPREAD:
        mine = [event_id for event_id in acked if acked[event_id] is not None and _department[event_id] == department]
        assert totals[f"out-{department}"] == (len(mine), sum(acked[i] for i in mine)), department


_department: dict[str, str] = {}
"""event_id -> department, for every event a test emitted."""


def _remember(events: list[Any]) -> dict[str, float]:
    for e in events:
        _department[str(e.event_id)] = e.department_id
    return {str(e.event_id): e.value for e in events}


# -- (a) broker killed or restarted mid-production ----------------------------------------------
@pytest.mark.parametrize("how", ["kill", "restart"])
async def test_a_broker_killed_or_restarted_mid_production_loses_and_duplicates_nothing(
    tmp_path: Path, postgres_url: str, how: str
) -> None:
    broker = ApacheKafka(tmp_path / "kafka-a")
    await broker.start()
    engine = await prepare_db(postgres_url)
    topic, group = f"rel-a-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    try:
        await create_topics(broker.bootstrap_servers, [topic, f"{topic}.dlq"], partitions=4)
        acked: set[uuid.UUID] = set()
        values: dict[str, float] = {}
        emitters = [
            MetricEmitter(
                broker.bootstrap_servers, source="mes", department_id=department, topic=topic,
                delivery_timeout=5.0, retry_backoff=0.5, max_retries=12, on_ack=acked.add,
            )
            for department in SPREAD
        ]  # fmt: skip
        async with in_process_consumer(
            engine=engine, bootstrap_servers=broker.bootstrap_servers, group_id=group, topic=topic,
            dlq_topic=f"{topic}.dlq", max_records=1000,
        ) as consumer:  # fmt: skip
            restart: asyncio.Task[None] | None = None
            for i in range(16_000):
                emitter = emitters[i % len(emitters)]
                value = float(i % 97 + 1)
                event_id = await emitter.emit(METRIC, value, "units", datetime.now(UTC))
                values[str(event_id)] = value
                _department[str(event_id)] = SPREAD[i % len(emitters)]
                if i % 500 == 499:
                    await asyncio.sleep(0.05)  # a steady stream, not one burst
                if i == 6_000:
                    await asyncio.wait_for(_settle(emitters), timeout=30)
                    if how == "kill":
                        os.kill(broker.pid or 0, signal.SIGKILL)  # kill -9 by pid
                        broker.kill()
                    else:
                        await broker.stop()  # a clean shutdown: the producers' acks=all must still hold
                    await asyncio.sleep(1)
                    restart = asyncio.create_task(broker.start())
            assert restart is not None
            await restart
            for emitter in emitters:
                await emitter.flush()
                await emitter.close()
            assert len(acked) == 16_000, f"only {len(acked)} of 16000 acknowledged"
            await wait_for(
                lambda: _has_all(engine, {str(i) for i in acked}), 60, "every acknowledged event in PostgreSQL"
            )
            await asyncio.sleep(1)  # anything re-read after that must not count twice
            reread = consumer.stats.duplicates + consumer.stats.redelivered
        await _assert_exact(engine, {str(i): values[str(i)] for i in acked})
        resent = sum(e.resent for e in emitters)
        # Not asserted: whether events in flight when the broker went are sent again by the emitter (a new
        # producer, counted in ``resent``) or retried inside aiokafka's producer (same producer id, the broker
        # deduplicates, not counted) depends on how long the broker is away; whether the consumer reads
        # records again depends on an offset commit being in flight. The consumer-, PostgreSQL- and
        # rebalance-kill tests assert their re-reads; this one asserts nothing lost and nothing twice.
        print(f"broker {how}: {resent} event(s) re-sent by the emitters; {reread} record(s) read again or duplicate")
    finally:
        await engine.dispose()
        await broker.stop()


async def _settle(emitters: list[MetricEmitter]) -> None:
    """Let part of the stream be acknowledged before the crash, so the crash is mid-stream."""
    while sum(e.acknowledged for e in emitters) < 2_000:
        await asyncio.sleep(0.05)


async def _has_all(engine: Any, ids: set[str]) -> bool:
    return ids <= set(await stored_events(engine))


# -- standalone consumer processes ----------------------------------------------------------------
def _consume_argv(servers: str, url: str, group: str, topic: str, max_records: int) -> list[str]:
    return [
        sys.executable, "-m", "services.cli", "tracking", "consume", "--bootstrap", servers,
        "--database-url", url, "--group", group, "--topic", topic, "--dlq-topic", f"{topic}.dlq",
        "--no-migrate", "--max-records", str(max_records),
    ]  # fmt: skip


def _spawn(argv: list[str], *, idempotence: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "TANDEM_ENV": "dev", "TANDEM_KAFKA_IDEMPOTENCE": "true" if idempotence else "false"}
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _finish(process: subprocess.Popen[str]) -> int:
    """SIGTERM (the consumer stops after its batch in flight); the records it read twice."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=10)
    found = re.search(r"([\d,]+) duplicates", out or "")
    return int(found.group(1).replace(",", "")) if found else 0


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)


async def _backlog(kafka_broker: Any, topic: str, n: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    events = [event(SPREAD[i % len(SPREAD)], float(rng.randint(1, 100))) for i in range(n)]
    await produce(kafka_broker.bootstrap_servers, topic, keyed(events), idempotence=kafka_broker.supports_idempotence)
    return _remember(events)


async def test_b_consumer_killed_mid_batch_resumes_exactly_once(kafka_broker: Any, postgres_url: str) -> None:
    engine = await prepare_db(postgres_url)
    servers = kafka_broker.bootstrap_servers
    topic, group = f"rel-b-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    await create_topics(servers, [topic, f"{topic}.dlq"], partitions=4)
    acked = await _backlog(kafka_broker, topic, 20_000, seed=1)
    # small batches: the consumer must still be mid-backlog when the test notices progress and kills it
    argv = _consume_argv(servers, postgres_url, group, topic, max_records=100)
    first = _spawn(argv, idempotence=kafka_broker.supports_idempotence)
    try:
        await wait_for(lambda: _stored_at_least(engine, 2_000), 45, "the first consumer to store events", 0.02)
        # Kill right after a batch is stored: its offsets are committed by a separate task after
        # the database commit, so they are most likely not committed yet (the window under test).
        await _next_batch(engine)
        _kill(first)
        stored_at_kill = await stored_count(engine)
        assert stored_at_kill < 20_000, "the consumer finished before it could be killed"
    finally:
        if first.poll() is None:
            _kill(first)
    second = _spawn(argv, idempotence=kafka_broker.supports_idempotence)
    try:
        await wait_for(lambda: _stored_at_least(engine, 20_000), 45, "the restarted consumer to store every event")
        await wait_for(lambda: drained(servers, group=group, topic=topic), 30, "the group's lag to return to 0")
    finally:
        reread = _finish(second)
    await _assert_exact(engine, acked)
    assert reread > 0, "the restarted consumer read nothing twice: the crash window was not hit"
    await engine.dispose()


async def _freeze_in_window(
    engine: Any,
    servers: str,
    group: str,
    topic: str,
    victims: list[subprocess.Popen[str]],
    feed: Callable[[], Awaitable[None]],
) -> None:
    """SIGSTOP the victims right after a batch is stored, and keep them frozen only if the database holds
    more events than the group has committed offsets for (every record here is one valid event): a kill
    then lands in the crash window for sure. Otherwise let them run on and try the next batch; if they
    drained the backlog meanwhile (no next batch comes), ``feed`` them more and try again."""
    for _attempt in range(100):
        before = await stored_count(engine)
        try:
            await wait_for(lambda: _stored_more_than(engine, before), 5, "the next batch", 0.005)  # noqa: B023 - awaited here
        except AssertionError:
            await feed()
            continue
        for victim in victims:
            victim.send_signal(signal.SIGSTOP)
        stored = await stored_count(engine)
        lags = await consumer_lag(servers, group_id=group, topic=topic)
        if stored > sum(p.committed or 0 for p in lags):
            return
        for victim in victims:
            victim.send_signal(signal.SIGCONT)
    raise AssertionError("never caught a batch stored with its offsets not yet committed")


async def _next_batch(engine: Any) -> None:
    """Return right after the next batch is stored."""
    before = await stored_count(engine)
    await wait_for(lambda: _stored_more_than(engine, before), 20, "the next batch", 0.005)


async def _stored_at_least(engine: Any, n: int) -> bool:
    return await stored_count(engine) >= n


async def _stored_more_than(engine: Any, n: int) -> bool:
    return await stored_count(engine) > n


# -- (c) malformed events ---------------------------------------------------------------------------
async def test_c_malformed_events_go_to_the_dlq_once_each_and_the_lag_returns_to_zero(
    kafka_broker: Any, postgres_url: str
) -> None:
    engine = await prepare_db(postgres_url)
    servers = kafka_broker.bootstrap_servers
    topic, group = f"rel-c-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    dlq = f"{topic}.dlq"
    await create_topics(servers, [topic, dlq], partitions=4)
    valid = [event(SPREAD[i % 4], float(i % 13)) for i in range(10_000)]
    sample = event(SPREAD[0], 1).model_dump_json()
    malformed = [
        b"{definitely not json",
        b'{"event_id": "not-a-uuid"}',
        sample.replace('"production.output_units"', '"Output Units"').encode(),
        sample.replace('"units"', '"units", "extra_field": 1').encode(),
    ]
    messages = keyed(valid) + [(f"{SPREAD[i % 4]}:{METRIC}".encode(), malformed[i % 4]) for i in range(1_000)]
    random.Random(3).shuffle(messages)
    sent = await produce(servers, topic, messages, idempotence=kafka_broker.supports_idempotence)
    bad_at = {(m.partition, m.offset) for m, (_k, v) in zip(sent, messages, strict=True) if v in malformed}
    assert len({p for p, _o in bad_at}) == 4 and len(bad_at) == 1_000

    async with in_process_consumer(
        engine=engine, bootstrap_servers=servers, group_id=group, topic=topic, dlq_topic=dlq
    ) as consumer:
        await wait_for(
            lambda: drained(servers, group=group, topic=topic), 50, "the consumer group's lag to return to 0"
        )
        assert consumer.stats.dead_lettered == 1_000

    assert await stored_events(engine) == _remember(valid)
    assert await kpi_totals(engine) == expected_totals(valid)
    async with create_session_factory(engine)() as session:
        letters = (await session.scalars(select(TrackingDeadLetter))).all()
        assert {(r.partition, r.offset) for r in letters} == bad_at and all(r.reason for r in letters)
    await engine.dispose()

    published = dead_letters(await read_topic(servers, dlq, at_least=1_000))
    assert len(published) == 1_000, "each malformed message is in the DLQ exactly once"
    assert {(d.partition, d.offset) for d in published} == bad_at
    assert {d.reason.split(":")[0] for d in published} == {"message is not valid JSON", "contract violation"}
    assert {base64.b64decode(d.original_b64) for d in published} == set(malformed)


# -- (d) PostgreSQL killed mid-batch ----------------------------------------------------------------
async def test_d_postgres_killed_mid_batch_loses_and_duplicates_nothing(kafka_broker: Any, session_dir: Path) -> None:
    # under the session directory: readable by the postgres user the server runs as
    cluster = PostgresCluster(session_dir / f"pg-{uuid.uuid4().hex[:6]}", keep=True)
    await cluster.start()
    try:
        url = await cluster.create_database("rel_d")
        await _synchronous_commit(cluster, "rel_d")
        engine = await prepare_db(url)
        servers = kafka_broker.bootstrap_servers
        topic, group = f"rel-d-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
        await create_topics(servers, [topic, f"{topic}.dlq"], partitions=4)
        acked = await _backlog(kafka_broker, topic, 20_000, seed=4)
        async with in_process_consumer(
            engine=engine, bootstrap_servers=servers, group_id=group, topic=topic, dlq_topic=f"{topic}.dlq",
            max_records=200,
        ) as consumer:  # fmt: skip
            await wait_for(lambda: _stored_at_least(engine, 3_000), 45, "the consumer to store events", 0.02)
            assert cluster.process is not None
            cluster.process.kill()  # SIGKILL to the postmaster's process group: every backend too
            cluster.process = None
            stored_at_kill = consumer.stats.inserted
            assert stored_at_kill < 20_000, "the consumer finished before PostgreSQL could be killed"
            await asyncio.sleep(2)
            await engine.dispose()  # the pool's connections died with the server
            await cluster.start()  # crash recovery on the same data directory
            await wait_for(lambda: drained(servers, group=group, topic=topic), 90, "the group's lag to return to 0")
            assert consumer.stats.failures >= 1
            # the batch in flight was rolled back with the server: read again after the restart
            reread = consumer.stats.redelivered
        await _assert_exact(engine, acked)
        assert reread > 0, "nothing was read twice: the crash window was not hit"
        await engine.dispose()
    finally:
        cluster.keep = False
        await cluster.stop()


async def _synchronous_commit(cluster: PostgresCluster, database: str) -> None:
    """The test cluster runs with synchronous_commit=off (fast): a commit acknowledged before its
    WAL is written would be lost by the kill. Production runs with the default (on)."""
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=cluster.port, user=cluster.superuser, database="postgres")
    try:
        await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = on')
    finally:
        await conn.close()


# -- (e) rebalance under load -----------------------------------------------------------------------
async def test_e_three_consumers_joining_and_leaving_under_load_count_exactly_once(
    kafka_broker: Any, postgres_url: str
) -> None:
    engine = await prepare_db(postgres_url)
    servers = kafka_broker.bootstrap_servers
    topic, group = f"rel-e-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    await create_topics(servers, [topic, f"{topic}.dlq"], partitions=4)
    argv = _consume_argv(servers, postgres_url, group, topic, max_records=100)
    idempotence = kafka_broker.supports_idempotence
    acked: dict[str, float] = {}
    processes: list[subprocess.Popen[str]] = []
    reread = 0
    seeds = iter(range(200, 300))

    async def more() -> None:
        """More load, when the consumers drained the backlog before a batch could be caught."""
        acked.update(await _backlog(kafka_broker, topic, 2_000, seed=next(seeds)))
        print("the consumers drained the backlog before a batch was caught: 2,000 more events", flush=True)

    try:
        for step in range(12):
            acked |= await _backlog(kafka_broker, topic, 6_000 if step == 9 else 2_000, seed=100 + step)
            if step in (0, 2, 4):
                processes.append(_spawn(argv, idempotence=idempotence))  # joins: a rebalance under load
            if step == 7:
                reread += _finish(processes[0])  # leaves cleanly: a rebalance
            if step == 9:
                # Both others die together inside the window: a batch stored, its offsets not
                # committed yet (caught frozen, see _freeze_in_window); a new member joins and must
                # re-read what they left, counting it once.
                await _freeze_in_window(engine, servers, group, topic, processes[1:3], more)
                for victim in processes[1:3]:
                    _kill(victim)
                processes.append(_spawn(argv, idempotence=idempotence))
            await asyncio.sleep(0.5)
        await wait_for(lambda: _stored_at_least(engine, len(acked)), 90, "the last consumer to store every event")
        await wait_for(lambda: drained(servers, group=group, topic=topic), 30, "the group's lag to return to 0")
    finally:
        for process in processes:
            with contextlib.suppress(Exception):
                reread += _finish(process)
    await _assert_exact(engine, acked)
    assert reread > 0, "no record was read twice across the rebalances and the kill"
    await engine.dispose()
