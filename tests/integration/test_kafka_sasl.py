"""Kafka security against a real Apache Kafka broker with SASL/SCRAM and ACLs.

A dedicated broker (not the session one) runs in a temp directory with a
SASL_PLAINTEXT SCRAM-SHA-256 listener and the StandardAuthorizer, set up the way
docs/security.md describes production: the ingest gateway's principal may write
``metrics``, the tracking consumer's principal may read it, and a department
system's own principal may not write it at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.errors import AuthenticationFailedError, TopicAuthorizationFailedError

from devtools.stack.kafka import AclBinding, ApacheKafka, create_acls, create_topics
from services.common.kafka import (
    PRINCIPAL_DEPARTMENT_HEADER,
    PRINCIPAL_HEADER,
    KafkaSecurity,
    create_consumer,
    create_producer,
    principal_headers,
    principal_mismatch,
)
from services.common.settings import Settings

TOPIC = "metrics.sasl-test.v1"
GROUP = "tandem-tracking-sasl-test"
USERS = {"tandem-ingest": "ingest-pw-1", "tandem-tracking": "tracking-pw-2", "dept-sales": "sales-pw-3"}


def scram(user: str, password: str | None = None) -> KafkaSecurity:
    """Security options built the way the services build them: from Settings."""
    settings = Settings(
        env="dev",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username=user,
        kafka_sasl_password=password if password is not None else USERS[user],
    )
    security = KafkaSecurity.from_settings(settings)
    assert security is not None
    return security


@pytest.fixture(scope="module")
async def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ApacheKafka]:
    broker = ApacheKafka(Path(tmp_path_factory.mktemp("kafka-sasl")), sasl_scram_users=USERS, acl_authorizer=True)
    await broker.start()
    try:
        # Set up over the PLAINTEXT admin listener, whose anonymous principal is the super user.
        await create_topics(broker.bootstrap_servers, [TOPIC], partitions=2)
        await create_acls(
            broker.bootstrap_servers,
            [
                AclBinding("User:tandem-ingest", "write", resource_name=TOPIC),
                AclBinding("User:tandem-ingest", "describe", resource_name=TOPIC),
                AclBinding("User:tandem-tracking", "read", resource_name=TOPIC),
                AclBinding("User:tandem-tracking", "describe", resource_name=TOPIC),
                AclBinding("User:tandem-tracking", "read", resource_type="group", resource_name=GROUP),
            ],
        )
        yield broker
    finally:
        await broker.stop()


async def test_the_right_credentials_produce_and_consume_with_the_principal_headers(
    sasl_broker: ApacheKafka, caplog: pytest.LogCaptureFixture
) -> None:
    servers = sasl_broker.sasl_bootstrap_servers
    assert servers != sasl_broker.bootstrap_servers
    value = uuid.uuid4().hex.encode()
    producer = await create_producer(servers, idempotence=True, security=scram("tandem-ingest"))
    # A topic WRITE ACL is enough for an idempotent producer (no cluster IDEMPOTENT_WRITE needed).
    assert "refused an idempotent producer" not in caplog.text
    try:
        await producer.send_and_wait(
            TOPIC, value, key=b"sales|sales.revenue", headers=principal_headers(sub="crm", department_id="sales")
        )
    finally:
        await producer.stop()
    consumer = create_consumer([TOPIC], bootstrap_servers=servers, group_id=GROUP, security=scram("tandem-tracking"))
    await consumer.start()
    try:
        records = []
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=500)
            records += [r for rs in batch.values() for r in rs if r.value == value]
            if records:
                break
    finally:
        await consumer.stop()
    (record,) = records
    assert dict(record.headers) == {PRINCIPAL_HEADER: b"crm", PRINCIPAL_DEPARTMENT_HEADER: b"sales"}


async def test_a_wrong_password_fails_with_an_authentication_error(sasl_broker: ApacheKafka) -> None:
    servers = sasl_broker.sasl_bootstrap_servers
    with pytest.raises(AuthenticationFailedError, match="refused the credentials of SASL user 'tandem-ingest'"):
        await create_producer(servers, security=scram("tandem-ingest", "not-the-password"))
    with pytest.raises(AuthenticationFailedError, match="invalid credentials"):
        await create_producer(servers, idempotence=False, security=scram("nobody", "whatever"))


async def test_a_department_principal_cannot_write_the_metrics_topic(sasl_broker: ApacheKafka) -> None:
    # Authenticated, but no ACL: department systems write through the ingest gateway only.
    producer = await create_producer(
        sasl_broker.sasl_bootstrap_servers, idempotence=False, security=scram("dept-sales")
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(TOPIC, b"forged", key=b"finance|finance.cost")
    finally:
        await producer.stop()


async def test_the_consumer_principal_cannot_write_either(sasl_broker: ApacheKafka) -> None:
    producer = await create_producer(
        sasl_broker.sasl_bootstrap_servers, idempotence=False, security=scram("tandem-tracking")
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(TOPIC, b"forged", key=b"sales|sales.revenue")
    finally:
        await producer.stop()


def test_principal_headers_round_trip_and_mismatches_are_explained() -> None:
    headers = principal_headers(sub="crm", department_id="sales")
    assert principal_mismatch(headers, department_id="sales") is None
    assert principal_mismatch(headers, department_id="finance") == (
        "the event names department 'finance' but the gateway authenticated 'sales'"
    )
    assert "not published by the ingest gateway" in str(principal_mismatch(None, department_id="sales"))
