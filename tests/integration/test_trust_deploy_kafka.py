"""The compose deployment's Kafka settings, run against a real Apache Kafka (issue 14, item 8).

Nothing here is written for the test: the broker runs with the ``KAFKA_*`` settings of the
``kafka`` service in deploy/compose.yaml (converted the way the apache/kafka image converts them;
only host names, ports and file paths are moved to this machine), its TLS material comes from
``bootstrap.py --kafka-tls`` as the ``keys`` one-shot writes it, its topics, SCRAM users and
ACLs from the ``kafka-setup`` one-shot's own command line, and every client from the environment
of the compose container it stands for. Then:

* each principal reaches its topics over SCRAM-SHA-512 and TLS and nothing else (deny by default);
* a department system's credentials, had it any, write no topic at all: department systems go
  through the ingest gateway, the only writer of ``metrics.v1``;
* the tracking consumer, with the department check the manifests turn on, dead-letters a record
  naming another department than the one the gateway authenticated, or one the gateway did not stamp.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import (
    AuthenticationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from contracts.topics import CYCLE_EVENTS, METRICS, METRICS_DLQ
from devtools.stack.kafka import ApacheKafka
from devtools.stack.process import free_port
from services.common.kafka import KafkaSecurity, create_consumer, create_producer, principal_headers
from services.common.settings import Settings
from services.tracking.ingest.messages import RawMessage
from services.tracking.ingest.prepare import PRINCIPAL_REASON_PREFIX, prepare_batch
from services.tracking.rules import CatalogIndex
from tests.contract.test_deploy_manifests import bootstrap_module, compose, kafka_properties

PASSWORDS = {
    name: secrets.token_urlsafe(24)
    for name in ("KAFKA_INGEST_PASSWORD", "KAFKA_TRACKING_PASSWORD", "KAFKA_SERVICES_PASSWORD")
}
COMPOSE_PORTS = {"9092": "sasl", "9093": "controller", "9094": "plaintext"}


@dataclass
class Deployment:
    broker: ApacheKafka
    ports: dict[str, int]
    ca_file: Path

    @property
    def admin_servers(self) -> str:
        """The loopback PLAINTEXT listener kafka-setup uses (its anonymous principal is the super user)."""
        return f"127.0.0.1:{self.ports['plaintext']}"

    @property
    def servers(self) -> str:
        """What the containers reach as kafka:9092 (here: localhost, a name in the broker's certificate)."""
        return f"localhost:{self.ports['sasl']}"

    def environment(self, container: str) -> dict[str, str]:
        """The container's compose environment, secrets filled in and addresses moved to this machine."""
        env = {}
        for key, value in compose()["services"][container].get("environment", {}).items():
            value = re.sub(r"\$\{(KAFKA_[A-Z]+_PASSWORD):\?[^}]*\}", lambda m: PASSWORDS[m.group(1)], str(value))
            value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
            env[key] = re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "s" * 40, value)
        if env.get("TANDEM_KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092":
            env["TANDEM_KAFKA_BOOTSTRAP_SERVERS"] = self.servers
        elif env.get("TANDEM_KAFKA_BOOTSTRAP_SERVERS") == "127.0.0.1:9094":
            env["TANDEM_KAFKA_BOOTSTRAP_SERVERS"] = self.admin_servers
        if "TANDEM_KAFKA_SSL_CAFILE" in env:
            env["TANDEM_KAFKA_SSL_CAFILE"] = str(self.ca_file)
        return env

    def settings(self, container: str) -> Settings:
        with pytest.MonkeyPatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("TANDEM_")]:
                patch.delenv(key)
            for key, value in self.environment(container).items():
                patch.setenv(key, value)
            return Settings()

    def security(self, container: str, **override: Any) -> KafkaSecurity:
        settings = self.settings(container)
        if override:
            settings = settings.model_copy(update=override)
        security = KafkaSecurity.from_settings(settings)
        assert security is not None and security.protocol == "SASL_SSL", container
        return security


def broker_properties(ports: dict[str, int], tls_dir: Path) -> dict[str, str]:
    """compose.yaml's broker settings on this machine's free ports, the keystore where ``keys`` put it."""
    props = kafka_properties()
    props.pop("log.dirs")  # ApacheKafka keeps its data in the test's directory
    # What the image's configure script does with the file names it is given (/etc/kafka/secrets/...).
    bootstrap = bootstrap_module()
    props["ssl.keystore.location"] = str(tls_dir / props.pop("ssl.keystore.filename"))
    for credentials, password in (
        ("ssl.keystore.credentials", "ssl.keystore.password"),
        ("ssl.key.credentials", "ssl.key.password"),
    ):
        props[password] = (tls_dir / props.pop(credentials)).read_text()
    assert props["ssl.keystore.location"].endswith(bootstrap.KAFKA_KEYSTORE)

    def here(value: str) -> str:
        value = value.replace("://:", "://127.0.0.1:").replace("kafka:", "localhost:")
        return re.sub(r":(909[234])\b", lambda m: f":{ports[COMPOSE_PORTS[m.group(1)]]}", value)

    return {key: here(value) for key, value in props.items()}


@pytest.fixture(scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    root = Path(tmp_path_factory.mktemp("trust-deploy-kafka"))
    bootstrap = bootstrap_module()
    # The `keys` one-shot's step; "localhost" besides "kafka" because this machine reaches the broker so.
    bootstrap.write_kafka_tls(root / "tls", root / "ca", hosts=["kafka", "localhost"])
    ports: dict[str, int] = {}
    while len(set(ports.values())) < 3:
        ports = {name: free_port() for name in ("sasl", "controller", "plaintext")}
    broker = ApacheKafka(
        root / "broker",
        ports=(ports["plaintext"], ports["controller"]),
        extra_settings=broker_properties(ports, root / "tls"),
    )
    await broker.start()
    deployed = Deployment(broker, ports, root / "ca" / bootstrap.KAFKA_CA)
    try:
        # The `kafka-setup` one-shot: its command line and its environment, as compose runs it.
        setup = compose()["services"]["kafka-setup"]
        with pytest.MonkeyPatch.context() as patch:
            for key, value in deployed.environment("kafka-setup").items():
                patch.setenv(key, value)
            argv = [arg if arg != "300" else "60" for arg in setup["command"]]
            assert await asyncio.to_thread(bootstrap.main, argv) == 0
        yield deployed
    finally:
        await broker.stop()


def metric(department: str, *, source: str = "crm") -> bytes:
    event = {
        "event_id": str(uuid.uuid4()),
        "source": source,
        "department_id": department,
        "metric": f"{department}.revenue",
        "value": 1200.0,
        "unit": "EUR",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(event).encode()


async def produce(deployment: Deployment, container: str, topic: str, value: bytes, **kwargs: Any) -> None:
    producer = await create_producer(deployment.servers, idempotence=False, security=deployment.security(container))
    try:
        await producer.send_and_wait(topic, value, **kwargs)
    finally:
        await producer.stop()


async def refused_write(deployment: Deployment, security: KafkaSecurity, topic: str) -> None:
    producer = await create_producer(deployment.servers, idempotence=False, security=security)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(topic, b"forged")
    finally:
        await producer.stop()


async def read(
    deployment: Deployment, container: str, topic: str, values: list[bytes], *, group: str
) -> list[RawMessage]:
    """The records of ``topic`` holding ``values`` (in arrival order), read as ``container`` in ``group``."""
    consumer = create_consumer(
        [topic], bootstrap_servers=deployment.servers, group_id=group, security=deployment.security(container)
    )
    await consumer.start()
    found: list[RawMessage] = []
    try:
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=500)
            found += [
                RawMessage(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))
                for rs in batch.values()
                for r in rs
                if r.value in values
            ]
            if len(found) >= len(values):
                break
    finally:
        await consumer.stop()
    return found


# -- each principal reaches its topics, over SCRAM and TLS, and nothing else ------------------------
async def test_the_gateway_publishes_metrics_and_the_consumer_reads_them_over_sasl_ssl(deployment: Deployment) -> None:
    tracking = deployment.settings("tracking")
    assert tracking.kafka_security_protocol == "SASL_SSL" and tracking.kafka_sasl_username == "tandem-ingest"
    value = metric("sales")
    # The ingest gateway's producer is idempotent (a topic WRITE ACL is enough for that).
    producer = await create_producer(deployment.servers, idempotence=True, security=deployment.security("tracking"))
    try:
        await producer.send_and_wait(
            METRICS, value, key=b"sales:sales.revenue", headers=principal_headers(sub="crm", department_id="sales")
        )
    finally:
        await producer.stop()
    (record,) = await read(deployment, "tracking-consumer", METRICS, [value], group="tandem-tracking")
    assert dict(record.headers)["tandem-principal-department"] == b"sales"


async def test_each_principal_writes_only_its_own_topics(deployment: Deployment) -> None:
    await produce(deployment, "cycles", CYCLE_EVENTS, b"{}")  # every service's outbox relay
    await produce(deployment, "tracking-consumer", METRICS_DLQ, b"{}")  # the consumer's dead letters
    for container, topic in (
        ("cycles", METRICS),  # no service but the gateway writes metrics
        ("cycles", METRICS_DLQ),
        ("tracking-consumer", METRICS),  # the consumer only reads them
        ("tracking", METRICS_DLQ),
    ):
        await refused_write(deployment, deployment.security(container), topic)


async def test_principals_read_only_what_they_consume(deployment: Deployment) -> None:
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await read(deployment, "cycles", METRICS, [b"anything"], group="tandem-tracking")
    with pytest.raises(GroupAuthorizationFailedError):
        await read(deployment, "tracking-consumer", METRICS, [b"anything"], group="someone-else")


async def test_a_department_s_credentials_write_no_topic(deployment: Deployment) -> None:
    """Department systems have no Kafka user; one made by mistake (or stolen) is refused every topic."""
    await bootstrap_module().upsert_scram_users(
        deployment.admin_servers, {"dept-sales": "sales-secret-1"}, mechanism="SCRAM-SHA-512"
    )
    department = deployment.security(
        "cycles", kafka_sasl_username="dept-sales", kafka_sasl_password=SecretStr("sales-secret-1")
    )
    for topic in (METRICS, METRICS_DLQ, CYCLE_EVENTS):
        await refused_write(deployment, department, topic)


async def test_the_consumer_dead_letters_metrics_the_gateway_did_not_authenticate(deployment: Deployment) -> None:
    consumer = deployment.settings("tracking-consumer")
    assert consumer.kafka_enforce_principal  # TANDEM_KAFKA_ENFORCE_PRINCIPAL in compose.yaml
    own, other, unstamped = metric("sales"), metric("finance"), metric("finance")
    sales = principal_headers(sub="crm", department_id="sales")
    producer = await create_producer(deployment.servers, idempotence=True, security=deployment.security("tracking"))
    try:
        await producer.send_and_wait(METRICS, own, key=b"sales:sales.revenue", headers=sales)
        # A sales system's token, an event naming finance: the stamp says who was authenticated.
        await producer.send_and_wait(METRICS, other, key=b"finance:finance.revenue", headers=sales)
        await producer.send_and_wait(METRICS, unstamped, key=b"finance:finance.revenue")
    finally:
        await producer.stop()
    records = await read(deployment, "tracking-consumer", METRICS, [own, other, unstamped], group="tandem-tracking")
    batch = prepare_batch(records, catalog=CatalogIndex(), enforce_principal=consumer.kafka_enforce_principal)
    assert [m.value for m in batch.messages] == [own]
    reasons = {letter.reason for letter in batch.dead_letters}
    assert reasons == {
        PRINCIPAL_REASON_PREFIX + "the event names department 'finance' but the gateway authenticated 'sales'",
        PRINCIPAL_REASON_PREFIX
        + "no tandem-principal-department header: the record was not published by the ingest gateway",
    }
    for letter in batch.dead_letters:  # the consumer's principal may write them where they belong
        await produce(deployment, "tracking-consumer", METRICS_DLQ, letter.model_dump_json().encode())


async def test_wrong_credentials_and_plaintext_are_refused(deployment: Deployment) -> None:
    with pytest.raises(AuthenticationFailedError, match="refused the credentials of SASL user 'tandem-ingest'"):
        await create_producer(
            deployment.servers, security=deployment.security("tracking", kafka_sasl_password=SecretStr("wrong"))
        )
    with pytest.raises(KafkaConnectionError):
        await create_producer(deployment.servers, idempotence=False, request_timeout_ms=3000)
