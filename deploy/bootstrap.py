"""One-shot bootstrap of a production Tandem deployment (compose service / Kubernetes Job).

Idempotent; run it before the services start and again before every upgrade:

1. ``--topics``: create ``metrics.v1``, ``metrics.dlq.v1`` and ``cycle.events.v1`` (existing
   topics are left alone: partitions are never changed here, see docs/operations.md);
2. ``--search-attributes``: register Tandem's Temporal search attributes (``CycleId``,
   ``Stage``, ``DepartmentId``, all Keyword) in ``TANDEM_TEMPORAL_NAMESPACE``;
3. ``--migrate``: run every service's Alembic migrations against its database
   (``TANDEM_DATABASE_URL``, ``{service}`` substituted), so the services can run with
   ``TANDEM_AUTO_MIGRATE=false`` and several replicas never race on a migration.

No flag means all three. Everything is read from the same ``TANDEM_*`` variables as the
services; partitions and replication come from the flags or their environment variables.
Each step retries until ``--wait`` seconds have passed (the servers may still be starting).

Three more steps run only when asked (docs/security.md):

4. ``--kafka-principals [NAMES]``: create the SCRAM users of :data:`KAFKA_PRINCIPALS` (passwords
   from ``TANDEM_BOOTSTRAP_KAFKA_*_PASSWORD``) and their ACLs, over a connection allowed to alter
   users and ACLs (compose: the broker's loopback listener; Strimzi declares them as ``KafkaUser``s,
   ``deploy/k8s/kafka/kafka-users.yaml``);
5. ``--service-keys DIR``: one signing key per service that mints tokens (``DIR/<service>/signing.pem``)
   plus the identity provider's, and the public ``--trust-file`` every verifier reads
   (``TANDEM_SERVICE_KEYS``); existing keys are kept;
6. ``--kafka-tls DIR``: a CA and the broker's PKCS#12 keystore for the compose broker's TLS listener,
   the CA certificate in ``--kafka-ca-dir`` for the clients; existing files are kept.

    python /opt/tandem/bootstrap.py                      # in the image
    python deploy/bootstrap.py --migrate                 # from a checkout
    python deploy/bootstrap.py --service-keys keys/      # keys for Kubernetes Secrets
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from contracts.topics import CYCLE_EVENTS, METRICS, METRICS_DLQ
from services.common.kafka_admin import AclBinding

log = logging.getLogger("tandem.bootstrap")

T = TypeVar("T")

TRACKING_GROUP = "tandem-tracking"
"""The tracking consumer's group (``services.tracking.consumer.CONSUMER_GROUP``; a test keeps them equal)."""


# -- Kafka principals and their ACLs ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class KafkaPrincipal:
    """One SCRAM user, what runs as it, and everything it may do (all else is denied)."""

    user: str
    password_env: str
    """The variable holding its password when ``--kafka-principals`` creates it."""
    runs_as: str
    acls: tuple[AclBinding, ...]


def _grants(user: str, *grants: tuple[str, str, tuple[str, ...]]) -> tuple[AclBinding, ...]:
    return tuple(
        AclBinding(f"User:{user}", operation, resource_type=kind, resource_name=name)
        for kind, name, operations in grants
        for operation in operations
    )


KAFKA_PRINCIPALS: tuple[KafkaPrincipal, ...] = (
    KafkaPrincipal(
        "tandem-ingest",
        "TANDEM_BOOTSTRAP_KAFKA_INGEST_PASSWORD",
        "the tracking API: the ingest gateway (the only writer of metrics.v1), its outbox relay, the lag view",
        _grants(
            "tandem-ingest",
            ("topic", METRICS, ("write", "describe", "read")),  # read: the lag view's one-record fetch
            ("topic", CYCLE_EVENTS, ("write", "describe")),
            ("group", TRACKING_GROUP, ("describe",)),  # the lag view reads the group's committed offsets
        ),
    ),
    KafkaPrincipal(
        "tandem-tracking",
        "TANDEM_BOOTSTRAP_KAFKA_TRACKING_PASSWORD",
        "the tracking consumer: reads metrics.v1, dead-letters to metrics.dlq.v1, relays its outbox",
        _grants(
            "tandem-tracking",
            ("topic", METRICS, ("read", "describe")),
            ("group", TRACKING_GROUP, ("read",)),
            ("topic", METRICS_DLQ, ("write", "describe")),
            ("topic", CYCLE_EVENTS, ("write", "describe")),
        ),
    ),
    KafkaPrincipal(
        "tandem-services",
        "TANDEM_BOOTSTRAP_KAFKA_SERVICES_PASSWORD",
        "the other services' outbox relays (and Kubernetes' tracking staleness pod)",
        _grants("tandem-services", ("topic", CYCLE_EVENTS, ("write", "describe"))),
    ),
    KafkaPrincipal(
        "tandem-bootstrap",
        "TANDEM_BOOTSTRAP_KAFKA_BOOTSTRAP_PASSWORD",
        "the bootstrap job on a cluster whose users are managed elsewhere (Strimzi): creates the topics",
        _grants(
            "tandem-bootstrap", *(("topic", t, ("create", "describe")) for t in (METRICS, METRICS_DLQ, CYCLE_EVENTS))
        ),
    ),
)
"""Department systems have no Kafka principal: they send metrics to the ingest gateway
(``POST /v1/ingest/metrics``), which authenticates their department, refuses another department's
events and stamps the department on each record; only the gateway may write ``metrics.v1``, so
the stamp cannot be forged, and the consumer's principal check turns away anything unstamped."""

_SCRAM_MECHANISMS = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}
_SCRAM_ITERATIONS = 8192  # Kafka accepts 4096-16384


def _scram_request_types() -> tuple[type[Any], type[Any]]:
    """AlterUserScramCredentials v0 (API key 51, KIP-554); aiokafka has no call for it."""
    from aiokafka.protocol.api import Request, RequestStruct, Response
    from aiokafka.protocol.types import (
        CompactArray,
        CompactBytes,
        CompactString,
        Int8,
        Int16,
        Int32,
        Schema,
        TaggedFields,
    )

    class AlterUserScramCredentialsResponseV0(Response):
        API_KEY = 51
        API_VERSION = 0
        SCHEMA = Schema(
            ("throttle_time_ms", Int32),
            (
                "results",
                CompactArray(
                    ("user", CompactString("utf-8")),
                    ("error_code", Int16),
                    ("error_message", CompactString("utf-8")),
                    ("tags", TaggedFields),
                ),
            ),
            ("tags", TaggedFields),
        )

    class AlterUserScramCredentialsRequestV0(RequestStruct):
        FLEXIBLE_VERSION = True
        API_KEY = 51
        API_VERSION = 0
        RESPONSE_TYPE = AlterUserScramCredentialsResponseV0
        SCHEMA = Schema(
            ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields))),
            (
                "upsertions",
                CompactArray(
                    ("name", CompactString("utf-8")),
                    ("mechanism", Int8),
                    ("iterations", Int32),
                    ("salt", CompactBytes),
                    ("salted_password", CompactBytes),
                    ("tags", TaggedFields),
                ),
            ),
            ("tags", TaggedFields),
        )

    class AlterUserScramCredentials(Request[AlterUserScramCredentialsRequestV0]):
        API_KEY = 51

        def __init__(self, upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]]) -> None:
            self.upsertions = upsertions

        def build(self, request_struct_class: type[AlterUserScramCredentialsRequestV0]) -> Any:
            return request_struct_class([], self.upsertions, {})

    return AlterUserScramCredentials, AlterUserScramCredentialsResponseV0


async def upsert_scram_users(
    bootstrap_servers: str, users: Mapping[str, str], *, mechanism: str = "SCRAM-SHA-512", **client_options: Any
) -> None:
    """Create or reset SCRAM users ({name: password}); the caller must be allowed to alter them.

    Only the salted password (RFC 5802 ``Hi``) is sent, never the password itself.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import for_code

    code, digest = _SCRAM_MECHANISMS[mechanism]
    request_type, _ = _scram_request_types()
    upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]] = []
    for name, password in users.items():
        salt = secrets.token_bytes(32)
        salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, _SCRAM_ITERATIONS)
        upsertions.append((name, code, _SCRAM_ITERATIONS, salt, salted, {}))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options)
    try:
        await admin.start()
        response = await admin._send_request(request_type(upsertions))  # noqa: SLF001 - no public API
    finally:
        await admin.close()
    for user, error_code, message, _tags in response.results:
        if error_code:
            raise for_code(error_code)(f"SCRAM user {user!r}: {message or ''}".rstrip(": "))


async def ensure_kafka_principals(
    bootstrap_servers: str,
    principals: Sequence[KafkaPrincipal],
    passwords: Mapping[str, str],
    *,
    mechanism: str,
    deadline: float,
    security: dict[str, Any] | None = None,
) -> None:
    """Create (or reset) each principal's SCRAM user and add its ACLs; adding an existing ACL is a no-op."""
    from services.common.kafka_admin import create_acls

    users = {p.user: passwords[p.user] for p in principals}
    await _retry(
        "SCRAM users",
        functools.partial(upsert_scram_users, bootstrap_servers, users, mechanism=mechanism, **(security or {})),
        deadline=deadline,
    )
    acls = [acl for principal in principals for acl in principal.acls]
    await _retry("ACLs", functools.partial(create_acls, bootstrap_servers, acls, **(security or {})), deadline=deadline)
    for principal in principals:
        log.info("Kafka principal User:%s (%s): %d ACLs", principal.user, principal.runs_as, len(principal.acls))


def principal_passwords(names: Sequence[str]) -> tuple[list[KafkaPrincipal], dict[str, str]]:
    """The principals named (every one for ``all``) and their passwords from the environment."""
    known = {p.user: p for p in KAFKA_PRINCIPALS}
    wanted = list(known) if list(names) == ["all"] else list(names)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise SystemExit(f"unknown Kafka principal(s) {unknown}; known: {sorted(known)}")
    missing = [known[n].password_env for n in wanted if not os.environ.get(known[n].password_env)]
    if missing:
        raise SystemExit(f"--kafka-principals needs the password(s) in {missing}")
    return [known[n] for n in wanted], {n: os.environ[known[n].password_env] for n in wanted}


# -- service signing keys -------------------------------------------------------------------------
def write_service_keys(keys_dir: Path, trust_file: Path, services: Sequence[str] | None = None) -> dict[str, str]:
    """One EC P-256 signing key per service (kept if present) and the public trust file; {service: kid}.

    ``keys_dir/<service>/signing.pem`` is readable by its owner only: mount each service's directory
    into that service alone (a key readable by every pod would be the shared secret again).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from services.common.auth import IDENTITY_PROVIDER, SERVICE_KEY_POLICIES, public_jwk

    names = list(services) if services is not None else [*SERVICE_KEY_POLICIES, IDENTITY_PROVIDER]
    jwks, kids = [], {}
    for service in names:
        path = keys_dir / service / "signing.pem"
        if path.is_file():
            key: Any = serialization.load_pem_private_key(path.read_bytes(), password=None)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            _write_private(path, pem)
            log.info("signing key of %s: created %s", service, path)
        jwk = public_jwk(key.public_key(), service=service)
        jwks.append(jwk)
        kids[service] = jwk["kid"]
    trust_file.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(trust_file, (json.dumps({"keys": jwks}, indent=2) + "\n").encode(), mode=0o644)
    log.info("trusted service keys: %s (%s)", trust_file, ", ".join(f"{s}={k}" for s, k in kids.items()))
    return kids


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_atomically(path, data, mode=0o600)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# -- the compose broker's TLS material ------------------------------------------------------------
KAFKA_KEYSTORE = "broker.p12"
KAFKA_KEYSTORE_PASSWORD = "broker.password"
KAFKA_CA = "ca.crt"


def write_kafka_tls(tls_dir: Path, ca_dir: Path, *, hosts: Sequence[str], days: int = 825) -> bool:
    """A CA and a broker certificate for ``hosts`` in a PKCS#12 keystore; ``False`` when they exist already.

    The CA's private key is not kept: nothing else is ever signed with it (a new broker certificate
    means a new CA, which the clients read at their next start). The keystore and its password file
    are world-readable inside ``tls_dir``, which only the broker mounts (the Kafka image runs as
    another user than Tandem's and reads its password from that file).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    keystore, ca_file = tls_dir / KAFKA_KEYSTORE, ca_dir / KAFKA_CA
    if keystore.is_file() and ca_file.is_file():
        log.info("Kafka TLS: %s and %s exist; kept", keystore, ca_file)
        return False
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tandem Kafka CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days + 30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign, crl_sign
        .sign(ca_key, hashes.SHA256())
    )
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(broker_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    password = secrets.token_urlsafe(32)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    p12 = pkcs12.serialize_key_and_certificates(b"broker", broker_key, broker_cert, [ca_cert], encryption)
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(tls_dir / KAFKA_KEYSTORE_PASSWORD, password.encode(), mode=0o644)
    _write_atomically(keystore, p12, mode=0o644)
    _write_atomically(ca_file, ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.info("Kafka TLS: CA %s, broker keystore %s for %s", ca_file, keystore, ", ".join(hosts))
    return True


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


async def _retry(what: str, step: Callable[[], Awaitable[T]], *, deadline: float) -> T:
    """Run ``step`` until it succeeds or ``deadline`` (monotonic) passes; the last error is raised."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await step()
        except Exception as exc:  # noqa: BLE001 - servers may still be starting: retry, then give up loudly
            if time.monotonic() >= deadline:
                log.error("%s: giving up after %d attempts: %s: %s", what, attempt, type(exc).__name__, exc)
                raise
            log.info("%s: not ready yet (%s: %s); retrying", what, type(exc).__name__, exc)
            await asyncio.sleep(min(2.0 * attempt, 10.0))


async def create_topics(
    bootstrap_servers: str,
    *,
    metrics_partitions: int,
    partitions: int,
    replication_factor: int,
    deadline: float,
    security: dict[str, Any] | None = None,
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from services.common.kafka_admin import create_topics as create

    wanted = {METRICS: metrics_partitions, METRICS_DLQ: partitions, CYCLE_EVENTS: partitions}
    for topic, count in wanted.items():
        await _retry(
            f"create topic {topic}",
            functools.partial(
                create, bootstrap_servers, [topic], count, replication_factor=replication_factor, **(security or {})
            ),
            deadline=deadline,
        )

    async def describe() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **(security or {}))
        await admin.start()
        try:
            described = await admin.describe_topics(list(wanted))
        finally:
            await admin.close()
        return {t["topic"]: len(t.get("partitions", ())) for t in described}

    actual = await _retry("describe topics", describe, deadline=deadline)
    for topic, count in wanted.items():
        have = actual.get(topic, 0)
        note = "" if have == count else f" (asked for {count}; existing topics are not changed)"
        log.info("topic %s: %d partitions%s", topic, have, note)


async def register_search_attributes(
    address: str, namespace: str, *, deadline: float, options: Mapping[str, Any] | None = None
) -> None:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
    from temporalio.client import Client

    from devtools.stack.temporal import SEARCH_ATTRIBUTES

    client = await _retry(
        f"connect to Temporal at {address}",
        lambda: Client.connect(address, namespace=namespace, **(options or {})),  # TLS / mTLS / API key
        deadline=deadline,
    )

    async def ensure() -> list[str]:
        # Fails with NOT_FOUND until the namespace exists (auto-setup registers it after start-up).
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        missing = [name for name in SEARCH_ATTRIBUTES if name not in listed.custom_attributes]
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace,
                    search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing},
                )
            )
        return missing

    added = await _retry(f"search attributes in namespace {namespace!r}", ensure, deadline=deadline)
    log.info("search attributes %s: %s", sorted(SEARCH_ATTRIBUTES), f"added {added}" if added else "present")


async def migrate(database_url_for: Callable[[str], str], *, deadline: float) -> None:
    from devtools.stack.local import SERVICE_PORTS
    from services.common.migrations import SERVICES_DIR, upgrade

    for service in SERVICE_PORTS:
        if not (SERVICES_DIR / service / "migrations").is_dir():
            continue
        url = database_url_for(service)
        await _retry(f"migrate {service}", functools.partial(upgrade, service, url), deadline=deadline)
        log.info("migrations of %s: at head", service)


async def run(args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.wait
    if args.kafka_tls is not None:
        write_kafka_tls(args.kafka_tls, args.kafka_ca_dir or args.kafka_tls, hosts=args.kafka_hosts.split(","))
    if args.service_keys is not None:
        write_service_keys(args.service_keys, args.trust_file or args.service_keys / "service-keys.json")
    generated_only = (args.kafka_tls or args.service_keys) and not (
        args.topics or args.search_attributes or args.migrate or args.kafka_principals
    )
    if generated_only:
        return  # key material needs no settings and no servers

    from services.common.kafka import KafkaSecurity, client_options
    from services.common.settings import Settings

    settings = Settings()
    security = client_options(KafkaSecurity.from_settings(settings))
    everything = not (args.topics or args.search_attributes or args.migrate or args.kafka_principals)
    if everything or args.topics:
        await create_topics(
            settings.kafka_bootstrap_servers,
            metrics_partitions=args.metrics_partitions,
            partitions=args.partitions,
            replication_factor=args.replication_factor,
            deadline=deadline,
            security=security,
        )
    if args.kafka_principals:
        principals, passwords = principal_passwords(args.kafka_principals.split(","))
        await ensure_kafka_principals(
            settings.kafka_bootstrap_servers,
            principals,
            passwords,
            mechanism=settings.kafka_sasl_mechanism,
            deadline=deadline,
            security=security,
        )
    if everything or args.search_attributes:
        await register_search_attributes(
            settings.temporal_address,
            settings.temporal_namespace,
            deadline=deadline,
            options=settings.temporal_client_options(),
        )
    if everything or args.migrate:
        await migrate(settings.database_url_for, deadline=deadline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--topics", action="store_true", help="Create the Kafka topics.")
    parser.add_argument("--search-attributes", action="store_true", help="Register the Temporal search attributes.")
    parser.add_argument("--migrate", action="store_true", help="Run every service's migrations.")
    parser.add_argument(
        "--metrics-partitions",
        type=int,
        default=_env_int("TANDEM_BOOTSTRAP_METRICS_PARTITIONS", 6),
        help="Partitions of metrics.v1: the ceiling of useful tracking consumers "
        "(env TANDEM_BOOTSTRAP_METRICS_PARTITIONS, default 6).",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=_env_int("TANDEM_BOOTSTRAP_PARTITIONS", 3),
        help="Partitions of metrics.dlq.v1 and cycle.events.v1 (env TANDEM_BOOTSTRAP_PARTITIONS, default 3).",
    )
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=_env_int("TANDEM_BOOTSTRAP_REPLICATION_FACTOR", 1),
        help="Replication factor of new topics (env TANDEM_BOOTSTRAP_REPLICATION_FACTOR, default 1; 3 in production).",
    )
    parser.add_argument(
        "--wait", type=float, default=180.0, help="Seconds to keep retrying while servers start (default 180)."
    )
    parser.add_argument(
        "--kafka-principals",
        nargs="?",
        const="all",
        metavar="NAMES",
        help="Create these SCRAM users (comma-separated; all without a value) and their ACLs.",
    )
    parser.add_argument(
        "--service-keys", type=Path, metavar="DIR", help="Write the services' signing keys (DIR/<service>/signing.pem)."
    )
    parser.add_argument(
        "--trust-file", type=Path, help="Where to write the trusted public keys (default DIR/service-keys.json)."
    )
    parser.add_argument("--kafka-tls", type=Path, metavar="DIR", help="Write the broker's CA and keystore to DIR.")
    parser.add_argument("--kafka-ca-dir", type=Path, help="Where the clients' ca.crt goes (default: --kafka-tls DIR).")
    parser.add_argument(
        "--kafka-hosts",
        default="kafka,localhost",
        help="Host names of the broker's certificate (default kafka,localhost).",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(run(args))
    except Exception as exc:  # noqa: BLE001 - one readable line and a failing exit code for the job
        log.error("bootstrap failed: %s: %s", type(exc).__name__, exc)
        return 1
    log.info("bootstrap complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
