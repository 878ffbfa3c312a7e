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

    python /opt/tandem/bootstrap.py                      # in the image
    python deploy/bootstrap.py --migrate                 # from a checkout
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("tandem.bootstrap")

T = TypeVar("T")


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

    from contracts.topics import CYCLE_EVENTS, METRICS, METRICS_DLQ
    from devtools.stack.kafka import create_topics as create

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


async def register_search_attributes(address: str, namespace: str, *, deadline: float) -> None:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
    from temporalio.client import Client

    from devtools.stack.temporal import SEARCH_ATTRIBUTES

    client = await _retry(f"connect to Temporal at {address}", lambda: Client.connect(address), deadline=deadline)

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
    from services.common.kafka import KafkaSecurity, client_options
    from services.common.settings import Settings

    settings = Settings()
    deadline = time.monotonic() + args.wait
    everything = not (args.topics or args.search_attributes or args.migrate)
    if everything or args.topics:
        await create_topics(
            settings.kafka_bootstrap_servers,
            metrics_partitions=args.metrics_partitions,
            partitions=args.partitions,
            replication_factor=args.replication_factor,
            deadline=deadline,
            security=client_options(KafkaSecurity.from_settings(settings)),
        )
    if everything or args.search_attributes:
        await register_search_attributes(settings.temporal_address, settings.temporal_namespace, deadline=deadline)
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
