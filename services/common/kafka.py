"""Kafka producer and consumer factories with safe defaults.

Producers are idempotent with ``acks=all``. Some Kafka-protocol brokers (the
embedded ``tansu``) answer ``InitProducerId`` with an error; then the factory
logs it and falls back to a plain ``acks=all`` producer. That is safe because
ingestion deduplicates on ``event_id``. Consumers never auto-commit: offsets
are committed only after the database transaction that used them.

Production brokers need authentication: ``KafkaSecurity.from_settings(settings)``
turns the ``TANDEM_KAFKA_SECURITY_PROTOCOL`` / ``_SASL_*`` / ``_SSL_*`` settings
into client options (SASL/SCRAM, TLS, mTLS); pass it as ``security=`` to the
factories, or spread ``client_options(security)`` into any other aiokafka client.
See docs/security.md for the principals and ACLs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

if TYPE_CHECKING:
    from services.common.settings import Settings

__all__ = [
    "PRINCIPAL_DEPARTMENT_HEADER",
    "PRINCIPAL_HEADER",
    "KafkaSecurity",
    "client_options",
    "create_consumer",
    "create_producer",
    "principal_headers",
    "principal_mismatch",
    "start_client",
]

PRINCIPAL_HEADER = "tandem-principal"
"""Record header: the ``sub`` of the caller the ingest gateway authenticated."""

PRINCIPAL_DEPARTMENT_HEADER = "tandem-principal-department"
"""Record header: the department the gateway authenticated the caller for (see docs/security.md)."""

_AUTHENTICATION_ERRORS = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
_SASL_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client authenticates to the brokers: SASL/SCRAM, TLS, or mutual TLS.

    ``protocol`` is Kafka's ``security.protocol``. ``SASL_*`` needs ``username``
    and ``password``; ``SSL``/``SASL_SSL`` verify the brokers against ``cafile``
    (else the system CAs) and present ``certfile``/``keyfile`` when given (mTLS).
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    key_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.protocol not in _PROTOCOLS:
            raise ValueError(f"unknown Kafka security protocol {self.protocol!r}; valid: {', '.join(_PROTOCOLS)}")
        if self.protocol.startswith("SASL_"):
            if self.sasl_mechanism not in _SASL_MECHANISMS:
                raise ValueError(
                    f"unsupported SASL mechanism {self.sasl_mechanism!r}; valid: {', '.join(_SASL_MECHANISMS)}"
                )
            if not (self.username and self.password):
                raise ValueError(f"Kafka security protocol {self.protocol} needs a SASL username and password")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("mTLS needs both a client certificate and its key")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity | None:
        """The settings' security options; ``None`` for a plain, unauthenticated connection."""
        if settings.kafka_security_protocol == "PLAINTEXT":
            return None
        password = settings.kafka_sasl_password
        key_password = settings.kafka_ssl_key_password
        return cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password is not None else None,
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            key_password=key_password.get_secret_value() if key_password is not None else None,
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL_"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password
        if self.uses_tls:
            options["ssl_context"] = create_ssl_context(
                cafile=self.cafile,
                certfile=self.certfile,
                keyfile=self.keyfile,
                password=self.key_password,
            )
        return options


def client_options(security: KafkaSecurity | None) -> dict[str, Any]:
    """``security.client_options()``, or nothing for a plain connection."""
    return security.client_options() if security is not None else {}


def principal_headers(*, sub: str, department_id: str) -> list[tuple[str, bytes]]:
    """The headers the ingest gateway stamps on what it publishes for an authenticated caller."""
    return [(PRINCIPAL_HEADER, sub.encode()), (PRINCIPAL_DEPARTMENT_HEADER, department_id.encode())]


def principal_mismatch(headers: Sequence[tuple[str, bytes]] | None, *, department_id: str) -> str | None:
    """Why a record's gateway-stamped department disagrees with its event's, or ``None`` if it agrees.

    For a consumer that accepts only what the ingest gateway published (docs/security.md).
    """
    stamped = dict(headers or ()).get(PRINCIPAL_DEPARTMENT_HEADER)
    if stamped is None:
        return f"no {PRINCIPAL_DEPARTMENT_HEADER} header: the record was not published by the ingest gateway"
    if stamped.decode(errors="replace") != department_id:
        return (
            f"the event names department {department_id!r} but the gateway authenticated "
            f"{stamped.decode(errors='replace')!r}"
        )
    return None


log = logging.getLogger(__name__)


async def create_producer(
    bootstrap_servers: str,
    *,
    idempotence: bool = True,
    client_id: str = "tandem",
    security: KafkaSecurity | None = None,
    **overrides: Any,
) -> AIOKafkaProducer:
    """A started producer: idempotent when the broker supports it, always ``acks=all``.

    An authentication failure raises ``AuthenticationFailedError`` naming the user,
    and an unreachable broker ``KafkaConnectionError``; neither is mistaken for a
    broker without idempotence.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
        "retry_backoff_ms": 200,
        **client_options(security),
        **overrides,
    }
    if idempotence:
        producer = AIOKafkaProducer(enable_idempotence=True, **options)
        try:
            await start_client(producer, bootstrap_servers=bootstrap_servers, security=security)
            return producer
        except KafkaError as exc:
            await producer.stop()
            if isinstance(exc, (*_AUTHENTICATION_ERRORS, KafkaConnectionError)):
                raise
            log.warning(
                "broker %s refused an idempotent producer (%s: %s); falling back to acks=all "
                "without idempotence, deduplication on event_id keeps ingestion exact",
                bootstrap_servers,
                type(exc).__name__,
                exc,
            )
    producer = AIOKafkaProducer(**options)
    try:
        await start_client(producer, bootstrap_servers=bootstrap_servers, security=security)
    except BaseException:
        await producer.stop()
        raise
    return producer


class _AuthenticationFailures(logging.Handler):
    """Collects aiokafka's log lines about refused credentials during one start()."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Authentication failed" in message or "SaslAuthenticationFailed" in message:
            self.messages.append(message)


async def start_client(client: Any, *, bootstrap_servers: str, security: KafkaSecurity | None = None) -> None:
    """``await client.start()``; refused credentials raise ``AuthenticationFailedError``.

    aiokafka logs the broker's SASL error and raises only "Unable to bootstrap"
    (``KafkaConnectionError``); this turns that into an error that says who was refused.
    """
    capture = _AuthenticationFailures()
    logger = logging.getLogger("aiokafka")
    logger.addHandler(capture)
    try:
        await client.start()
    except KafkaConnectionError as exc:
        if not capture.messages:
            raise
        who = (
            f"SASL user {security.username!r} ({security.sasl_mechanism})"
            if security is not None and security.protocol.startswith("SASL_")
            else "this client"
        )
        raise AuthenticationFailedError(
            f"Kafka at {bootstrap_servers} refused the credentials of {who}: {capture.messages[-1]}"
        ) from exc
    finally:
        logger.removeHandler(capture)


def create_consumer(
    topics: Sequence[str],
    *,
    bootstrap_servers: str,
    group_id: str,
    client_id: str = "tandem",
    security: KafkaSecurity | None = None,
    **overrides: Any,
) -> AIOKafkaConsumer:
    """A consumer in ``group_id`` with manual commits, reading from the earliest offset.

    Not started: call ``await consumer.start()``; pass ``listener=`` to
    ``consumer.subscribe`` separately when a rebalance listener is needed
    (then give ``topics=()``).
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 5000,
        "fetch_max_bytes": 32 * 1024 * 1024,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        **client_options(security),
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **options)
