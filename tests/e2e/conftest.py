"""The whole product as processes: every service and the worker, on the session's real
Temporal dev server, Kafka broker and PostgreSQL, started once for the e2e cycle's module and
stopped after it (its consumer, roll-up and staleness loops would otherwise keep running beside
every later test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devtools.stack.local import SERVICE_PORTS, LocalStack, StackConfig
from devtools.stack.process import free_port
from services.common.settings import Settings
from tests.keycloak import keycloak_server

__all__ = ["keycloak_server", "running_stack"]


@pytest.fixture(scope="module")
async def running_stack(
    session_dir: Path, temporal_server: Any, kafka_broker: Any, postgres_server: Any, settings: Settings
) -> AsyncIterator[LocalStack]:
    from contracts.topics import ALL_TOPICS
    from devtools.stack.kafka import create_topics

    if postgres_server is None:
        database_url = f"sqlite+aiosqlite:///{session_dir}/e2e/{{service}}.db"
    elif isinstance(postgres_server, str):
        database_url = postgres_server
    else:
        database_url = await postgres_server.create_database("tandem_e2e")
    await create_topics(kafka_broker.bootstrap_servers, ALL_TOPICS)
    stack = LocalStack(
        StackConfig(
            state_dir=session_dir / "e2e",
            kafka="external",
            kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
            database_url=database_url,
            temporal_address=temporal_server.address,
            service_ports={name: free_port() for name in SERVICE_PORTS},
            worker_port=free_port(),
            extra_env={
                "TANDEM_ENV": "test",
                # The tracking service consumes metrics.v1 and evaluates staleness, as in production.
                "TANDEM_TRACKING_CONSUMER": "1",
                "TANDEM_TRACKING_STALENESS_INTERVAL": "2",
                "TANDEM_TRACKING_ROLLUP_INTERVAL": "2",  # the live roll-up too
                "TANDEM_JWT_SECRET": settings.jwt_secret,
                "TANDEM_KAFKA_IDEMPOTENCE": "true" if kafka_broker.supports_idempotence else "false",
            },
        )
    )
    await stack.start(lambda message: print(f"[tandem e2e] {message}"))
    yield stack
    await stack.stop()
