"""Kafka administration every part may need: a readiness check, topics and ACLs.

Used by the ops overview (is the broker up?), the services' start-up and the local stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.protocol.admin import CreateAclsRequest

__all__ = ["DEFAULT_PARTITIONS", "AclBinding", "admin_check", "create_acls", "create_topics"]

#: Partitions of auto-created topics and the default of :func:`create_topics`.
DEFAULT_PARTITIONS = 4

_PROBE_TIMEOUT = 5.0

# Consumer group used by the readiness probe. Right after a broker restart, Kafka
# 4.x answers OffsetFetch v3 with a top-level COORDINATOR_LOAD_IN_PROGRESS /
# NOT_COORDINATOR error and no partitions; aiokafka (0.14) ignores that top-level
# error and reports "no committed offset", so a consumer joining in that window
# would silently fall back to auto_offset_reset. start() therefore waits until an
# OffsetFetch for this group succeeds; with offsets.topic.num.partitions=1 that
# one group covers the whole offsets topic.
_PROBE_GROUP = "tandem-readiness-probe"


async def admin_check(
    bootstrap_servers: str,
    timeout: float = _PROBE_TIMEOUT,
    *,
    group_coordinator: bool = False,
    **client_options: object,
) -> bool:
    """True when the cluster answers a describe-cluster call with at least one broker.

    With ``group_coordinator``, also require that the consumer-group coordinator has
    loaded its state (see :data:`_PROBE_GROUP` for why this matters after a restart).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(timeout * 1000),
        **client_options,  # SASL / SSL, e.g. KafkaSecurity.client_options()
    )
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            cluster = await admin.describe_cluster()
            if not cluster.get("brokers"):
                return False
            if group_coordinator:
                # While __consumer_offsets is created or loaded, FindCoordinator fails or
                # OffsetFetch answers with a top-level error and no partitions, which
                # list_consumer_group_offsets turns into an empty dict.
                probe = TopicPartition(_PROBE_GROUP, 0)
                offsets = await admin.list_consumer_group_offsets(_PROBE_GROUP, partitions=[probe])
                return probe in offsets
        return True
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return False
    finally:
        with contextlib.suppress(Exception):  # closing a half-open client may fail too
            await admin.close()


async def create_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    replication_factor: int = 1,
    **client_options: object,
) -> None:
    """Create ``topics`` if they do not exist yet; existing topics are left as they are.

    ``client_options`` are extra admin-client options, e.g. ``KafkaSecurity.client_options()``.
    Raises the broker's error (an ``aiokafka.errors.KafkaError``) for any other failure.
    """
    if not topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options)
    try:
        await admin.start()
        response = await admin.create_topics([NewTopic(name, partitions, replication_factor) for name in topics])
    finally:
        await admin.close()
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        if code == 0:
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            continue
        message = entry[2] if len(entry) > 2 and entry[2] else ""
        raise error(f"creating topic {name!r}: {message}".rstrip(": "))


_ACL_RESOURCE_TYPES = {"topic": 2, "group": 3, "cluster": 4, "transactional_id": 5}
_ACL_PATTERN_TYPES = {"literal": 3, "prefixed": 4}
_ACL_OPERATIONS = {
    "all": 2, "read": 3, "write": 4, "create": 5, "delete": 6, "alter": 7, "describe": 8,
    "idempotent_write": 12,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AclBinding:
    """One ALLOW rule: ``principal`` may do ``operation`` on a resource (``kafka-acls --add``)."""

    principal: str
    """``User:<name>``, e.g. ``User:tandem-ingest``."""
    operation: str
    """``read``, ``write``, ``describe``, ``create``, ``delete``, ``alter``, ``idempotent_write`` or ``all``."""
    resource_type: str = "topic"
    resource_name: str = "*"
    pattern_type: str = "literal"
    """``literal`` (the name, or ``*`` for all) or ``prefixed``."""

    def __post_init__(self) -> None:
        for value, valid, what in (
            (self.resource_type, _ACL_RESOURCE_TYPES, "resource type"),
            (self.pattern_type, _ACL_PATTERN_TYPES, "pattern type"),
            (self.operation, _ACL_OPERATIONS, "operation"),
        ):
            if value not in valid:
                raise ValueError(f"unknown ACL {what} {value!r}; valid: {', '.join(valid)}")
        if not self.principal.startswith("User:"):
            raise ValueError(f"ACL principal must look like 'User:<name>', not {self.principal!r}")


async def create_acls(bootstrap_servers: str, acls: Sequence[AclBinding], **client_options: object) -> None:
    """Add ALLOW ``acls`` on a cluster with an authorizer (the caller must be allowed to alter ACLs).

    aiokafka's admin client has no ACL call, so this sends the CreateAcls request
    (API key 30, version 1) itself. ``client_options`` are extra admin-client options
    (e.g. ``KafkaSecurity.client_options()``). Raises the broker's error per failed rule.
    """
    if not acls:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options)
    try:
        await admin.start()
        for acl in acls:
            request = CreateAclsRequest(
                resource_type=_ACL_RESOURCE_TYPES[acl.resource_type],
                resource_name=acl.resource_name,
                resource_pattern_type_filter=_ACL_PATTERN_TYPES[acl.pattern_type],
                principal=acl.principal,
                host="*",
                operation=_ACL_OPERATIONS[acl.operation],
                permission_type=3,  # ALLOW
            )
            response = await admin._send_request(request)  # noqa: SLF001 - no public ACL API in aiokafka
            for code, message in response.creation_responses:
                if code != 0:
                    raise for_code(code)(f"creating ACL {acl}: {message or ''}".rstrip(": "))
    finally:
        await admin.close()
