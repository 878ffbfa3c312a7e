"""The embedded local stack: Temporal, Kafka, the database, every service and the worker.

``tandem up`` builds a :class:`LocalStack`, starts it, writes ``<state>/stack.json``
(URLs and pids, read by ``tandem status`` and ``tandem down``) and stops
everything on Ctrl-C or SIGTERM, leaving no child process behind.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.topics import ALL_TOPICS
from devtools.stack.kafka import KafkaBroker, create_topics, make_broker
from devtools.stack.postgres import PostgresCluster
from devtools.stack.process import ManagedProcess, port_open
from devtools.stack.temporal import TemporalDevServer
from services.common.db import is_sqlite

__all__ = ["NO_DATABASE", "SERVICE_PORTS", "WORKER_METRICS_PORT", "LocalStack", "StackConfig", "read_stack_file"]

SERVICE_PORTS: dict[str, int] = {
    "cycles": 8000,
    "goals": 8001,
    "tracking": 8002,
    "evaluation": 8003,
    "feedback": 8004,
    "results": 8005,
    "console": 8006,
    "committee": 8007,
}
"""Service name -> HTTP port of the local stack. A service runs when ``services/<name>/app.py`` exists."""

NO_DATABASE = frozenset({"console"})
"""Services that hold no database (``tandem status`` checks no database for them)."""

WORKER_METRICS_PORT = 8009

Progress = Callable[[str], None]


@dataclass
class StackConfig:
    state_dir: Path = Path(".tandem")
    kafka: str = "auto"
    kafka_bootstrap_servers: str | None = None
    database_url: str | None = None
    """None: a SQLite file per service in the state dir; 'postgres': a throwaway local cluster."""
    temporal_address: str | None = None
    """None: start the Temporal dev server; else connect to this address."""
    host: str = "127.0.0.1"
    service_ports: dict[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    worker_port: int = WORKER_METRICS_PORT
    run_services: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


def available_services() -> list[str]:
    import services

    root = Path(services.__file__).resolve().parent
    return [name for name in SERVICE_PORTS if (root / name / "app.py").exists()]


def stack_file(state_dir: Path) -> Path:
    return state_dir / "stack.json"


def read_stack_file(state_dir: Path) -> dict[str, Any] | None:
    path = stack_file(state_dir)
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.state_dir = config.state_dir.resolve()
        self.temporal: TemporalDevServer | None = None
        self.kafka: KafkaBroker | None = None
        self.postgres: PostgresCluster | None = None
        self.children: dict[str, ManagedProcess] = {}
        self.database_url = ""
        self.temporal_address = ""
        self.temporal_ui_url = ""

    # -- environment handed to every service and the worker ---------------------------------
    def child_env(self) -> dict[str, str]:
        assert self.kafka is not None
        return {
            "TANDEM_ENV": os.environ.get("TANDEM_ENV", "dev"),
            "TANDEM_STATE_DIR": str(self.state_dir),
            "TANDEM_DATABASE_URL": self.database_url,
            "TANDEM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "TANDEM_KAFKA_IDEMPOTENCE": "true" if self.kafka.supports_idempotence else "false",
            "TANDEM_TEMPORAL_ADDRESS": self.temporal_address,
            "TANDEM_TEMPORAL_UI_URL": self.temporal_ui_url,
            **{
                f"TANDEM_{name.upper()}_URL": f"http://{self.config.host}:{port}"
                for name, port in self.config.service_ports.items()
            },
            "TANDEM_WORKER_URL": self.url_of("worker"),
            **self.config.extra_env,
        }

    async def start(self, progress: Progress) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        try:
            await self._start_servers(progress)
            if self.config.run_services:
                await self._start_services(progress)
        except BaseException:
            await self.stop(progress)
            raise
        self.write_stack_file()

    async def _start_servers(self, progress: Progress) -> None:
        if self.config.temporal_address:
            self.temporal_address = self.config.temporal_address
            self.temporal_ui_url = os.environ.get("TANDEM_TEMPORAL_UI_URL", "")
            progress(f"using external Temporal at {self.temporal_address}")
        else:
            self.temporal = TemporalDevServer(self.state_dir)
            await self.temporal.start(progress)
            self.temporal_address = self.temporal.address
            self.temporal_ui_url = self.temporal.ui_url

        self.kafka = make_broker(
            self.config.kafka,
            state_dir=self.state_dir,
            bootstrap_servers=self.config.kafka_bootstrap_servers,
        )
        await self.kafka.start(progress)
        await create_topics(self.kafka.bootstrap_servers, ALL_TOPICS)
        progress(f"Kafka ({self.kafka.provider}) ready at {self.kafka.bootstrap_servers}")

        url = self.config.database_url
        if url == "postgres":
            self.postgres = PostgresCluster(self.state_dir / "postgres", keep=True)
            await self.postgres.start(progress)
            self.database_url = self.postgres.url()
        elif url:
            self.database_url = url
        else:
            self.database_url = f"sqlite+aiosqlite:///{self.state_dir}/db/{{service}}.db"
        kind = "SQLite" if is_sqlite(self.database_url.replace("{service}", "x")) else "PostgreSQL"
        progress(f"database: {kind} ({self.database_display})")

    @property
    def database_display(self) -> str:
        return redact_url(self.database_url)

    async def _start_services(self, progress: Progress) -> None:
        env = self.child_env()
        logs = self.state_dir / "logs"
        for name in available_services():
            port = self.config.service_ports[name]
            if port_open(port, self.config.host):
                raise RuntimeError(f"port {port} for the {name} service is already in use")
            self.children[name] = self._spawn(name, env, logs)
        self.children["worker"] = self._spawn("worker", env, logs)
        for name in self.children:
            await self._wait_child(name)
            progress(f"{name} ready on {self.url_of(name)}")

    def url_of(self, name: str) -> str:
        port = self.config.worker_port if name == "worker" else self.config.service_ports[name]
        return f"http://{self.config.host}:{port}"

    def _spawn(self, name: str, env: dict[str, str], logs: Path) -> ManagedProcess:
        if name == "worker":
            argv = [sys.executable, "-m", "services.cli", "worker", "--metrics-port", str(self.config.worker_port)]
        else:
            port = str(self.config.service_ports[name])
            argv = [sys.executable, "-m", "services.cli", "serve", name, "--port", port, "--host", self.config.host]
        proc = ManagedProcess(name, argv, log_path=logs / f"{name}.log", env=env)
        proc.start()
        return proc

    async def _wait_child(self, name: str) -> None:
        await self.children[name].wait_ready(_http_ok(f"{self.url_of(name)}/healthz"), timeout=60)

    async def restart(self, name: str, *, kill: bool = False) -> None:
        """Stop (or SIGKILL) one service or the worker and start it again (crash tests)."""
        proc = self.children[name]
        if kill:
            proc.kill()
        else:
            proc.stop()
        self.children[name] = self._spawn(name, self.child_env(), self.state_dir / "logs")
        await self._wait_child(name)

    def write_stack_file(self) -> None:
        assert self.kafka is not None
        data = {
            "pid": os.getpid(),
            "state_dir": str(self.state_dir),
            "temporal": {
                "address": self.temporal_address,
                "ui": self.temporal_ui_url,
                "pid": self.temporal.pid if self.temporal else None,
            },
            "kafka": {
                "provider": self.kafka.provider,
                "bootstrap_servers": self.kafka.bootstrap_servers,
                "pid": self.kafka.pid,
            },
            "database_url": self.database_url,
            "postgres_pid": self.postgres.pid if self.postgres else None,
            "services": {
                name: {
                    "url": f"http://{self.config.host}:{self.config.service_ports[name]}",
                    "pid": proc.pid,
                }
                for name, proc in self.children.items()
                if name != "worker"
            },
            "worker": {
                "url": self.url_of("worker"),
                "pid": self.children["worker"].pid if "worker" in self.children else None,
            },
        }
        stack_file(self.state_dir).write_text(json.dumps(data, indent=2))

    async def stop(self, progress: Progress | None = None) -> None:
        for name, proc in reversed(list(self.children.items())):
            if progress:
                progress(f"stopping {name}")
            proc.stop()
        self.children.clear()
        if self.kafka is not None:
            if progress:
                progress("stopping Kafka")
            await self.kafka.stop()
        if self.temporal is not None:
            if progress:
                progress("stopping Temporal")
            await self.temporal.stop()
        if self.postgres is not None:
            if progress:
                progress("stopping PostgreSQL")
            await self.postgres.stop()
        path = stack_file(self.state_dir)
        if path.exists():
            path.unlink()


def redact_url(url: str) -> str:
    """The URL with any password hidden (``{service}`` placeholder kept)."""
    from sqlalchemy.engine import make_url

    rendered = make_url(url.replace("{service}", "SERVICE")).render_as_string(hide_password=True)
    return rendered.replace("SERVICE", "{service}")


def _http_ok(url: str) -> Callable[[], Any]:
    async def check() -> bool:
        import httpx

        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(url)
            return response.status_code == 200

    return check
