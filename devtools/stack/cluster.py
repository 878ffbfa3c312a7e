"""Production shape, locally: three Kafka brokers, PostgreSQL for every service, several of each process.

What ``deploy/k8s`` describes, on one machine, for tests and benchmarks:

* :class:`KafkaCluster`: N Apache Kafka nodes in KRaft mode (each a broker and a controller voter),
  every topic replicated N times with ``min.insync.replicas`` (default 3 and 2, as in production), so
  one broker can be lost while producers keep ``acks=all``;
* :class:`RoundRobinProxy`: a TCP load balancer in this process in front of a service's replicas,
  as a Kubernetes Service is (a connection goes to the next replica that accepts it);
* :class:`ProductionShape`: the whole deployment: its own Temporal dev server, the Kafka cluster,
  a bootstrap step (topics with replication, every service's migrations run once, as the
  bootstrap Job does), then ``replicas`` of each HTTP service behind a proxy, ``workers`` Temporal
  workers and ``consumers`` tracking consumers, each a process of its own that can be killed.

Everything listens on 127.0.0.1 with free ports, logs to ``<state_dir>/logs`` and is stopped by
:meth:`ProductionShape.stop`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import socket
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.stack.kafka import KAFKA_VERSION, ApacheKafka, admin_check, create_topics
from devtools.stack.process import ManagedProcess, StartupError, free_port, port_open, wait_until
from devtools.stack.temporal import TemporalDevServer

__all__ = ["KafkaCluster", "ProductionShape", "RoundRobinProxy", "ShapeConfig"]

Progress = Callable[[str], None]

SERVICES = ("cycles", "goals", "tracking", "evaluation", "feedback", "results")
"""The HTTP services of a cycle (the console holds no data and is left out)."""
CONSUMER_GROUP = "tandem-tracking"
"""The group ``tandem tracking consume`` joins by default."""


def _quiet(_message: str) -> None:
    return None


# -- Kafka ---------------------------------------------------------------------------------------------------
class KafkaCluster:
    """``nodes`` Apache Kafka nodes, each broker and KRaft controller, formatted with one cluster id.

    Replication is the production setting: every internal and default topic has ``nodes``
    replicas and ``min.insync.replicas`` (2 of 3), unclean leader election stays off. Losing one
    node keeps the controller quorum (2 of 3 voters) and every partition writable with ``acks=all``.
    """

    provider = "apache"
    supports_idempotence = True

    def __init__(
        self, state_dir: Path, *, nodes: int = 3, min_insync_replicas: int = 2, version: str = KAFKA_VERSION
    ) -> None:
        if nodes < 1 or not 1 <= min_insync_replicas <= nodes:
            raise ValueError(
                f"need nodes >= 1 and 1 <= min_insync_replicas <= nodes (got {nodes}, {min_insync_replicas})"
            )
        self.state_dir = Path(state_dir)
        self.replication_factor = nodes
        self.min_insync_replicas = min_insync_replicas
        used: set[int] = set()
        ports: dict[int, tuple[int, int]] = {}
        for node_id in range(1, nodes + 1):
            pair = (_unused_port(used), _unused_port(used))
            ports[node_id] = pair
        voters = ",".join(f"{node_id}@127.0.0.1:{controller}" for node_id, (_, controller) in ports.items())
        replicas, isr = str(nodes), str(min_insync_replicas)
        settings = {
            "controller.quorum.voters": voters,
            "default.replication.factor": replicas,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": isr,
            "unclean.leader.election.enable": "false",
            # A killed broker is fenced after this long without a heartbeat (the single-node
            # provider keeps it short too); leadership of its partitions then moves.
            "broker.session.timeout.ms": "3000",
        }
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=").lstrip("-") or "tandem"
        self.nodes: dict[int, ApacheKafka] = {
            node_id: ApacheKafka(
                self.state_dir / f"node-{node_id}",
                version=version,
                node_id=node_id,
                ports=pair,
                cluster_id=cluster_id,
                extra_settings=settings,
            )
            for node_id, pair in ports.items()
        }

    @property
    def bootstrap_servers(self) -> str:
        """Every node, so a client can bootstrap while any one of them is down."""
        return ",".join(node.bootstrap_servers for node in self.nodes.values())

    @property
    def pid(self) -> int | None:
        return next((node.pid for node in self.nodes.values() if node.pid), None)

    def alive(self) -> list[int]:
        return [node_id for node_id, node in self.nodes.items() if node.pid is not None]

    async def start(self, progress: Progress | None = None) -> None:
        """Start every node at once: a controller quorum needs a majority before any node is ready."""
        await asyncio.gather(*(node.start(progress) for node in self.nodes.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes.values()), return_exceptions=True)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (a crash: no controlled shutdown, no leadership handed over first)."""
        self.nodes[node_id].kill()

    async def restart(self, node_id: int, progress: Progress | None = None) -> None:
        await self.nodes[node_id].start(progress)

    async def healthy(self) -> bool:
        return await admin_check(self.bootstrap_servers)

    async def create_topics(self, topics: list[str], partitions: int) -> None:
        await create_topics(self.bootstrap_servers, topics, partitions, replication_factor=self.replication_factor)

    async def leaders(self, topic: str) -> dict[int, int]:
        """Partition -> node id of its current leader (-1 while it has none)."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5000)
        try:
            await admin.start()
            [described] = await admin.describe_topics([topic])
            return {int(p["partition"]): int(p["leader"]) for p in described["partitions"]}
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    async def wait_for_leaders(
        self, topic: str, *, excluding: int | None = None, timeout: float = 60.0
    ) -> dict[int, int]:
        """Wait until every partition of ``topic`` has a leader (other than ``excluding``)."""
        found: dict[int, int] = {}

        async def settled() -> bool:
            nonlocal found
            found = await self.leaders(topic)
            return bool(found) and all(leader >= 0 and leader != excluding for leader in found.values())

        if not await wait_until(settled, timeout=timeout, interval=0.5):
            raise StartupError(f"partitions of {topic} without a leader after {timeout:.0f}s: {found}")
        return found

    async def group_members(self, group: str) -> int:
        """How many members the consumer group has right now (0 while it rebalances or is empty)."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5000)
        try:
            await admin.start()
            [response] = await admin.describe_consumer_groups([group])
            # DescribeGroups: groups = [(error_code, group_id, state, protocol_type, protocol, members, ...)]
            [described] = response.groups
            return len(described[5]) if described[2] == "Stable" else 0
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    def __repr__(self) -> str:
        return f"KafkaCluster(state_dir={str(self.state_dir)!r}, nodes={len(self.nodes)})"


def _unused_port(used: set[int]) -> int:
    port = free_port()
    while port in used:
        port = free_port()
    used.add(port)
    return port


# -- load balancing ------------------------------------------------------------------------------------------
class RoundRobinProxy:
    """A TCP load balancer: each new connection goes to the next backend that accepts it.

    Like a Kubernetes Service in front of a Deployment: a replica that is down refuses the
    connection and the next one is tried, so callers only see an error when every replica is down.
    Runs in the current event loop.
    """

    def __init__(self, name: str, backends: list[int], *, host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self.backends = list(backends)
        self.port = free_port()
        self.connections: dict[int, int] = dict.fromkeys(self.backends, 0)
        self._next = itertools.cycle(range(len(self.backends)))
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = asyncio.Event()
        self._open.set()
        self.held = 0
        """Connections accepted while held (they wait, then go through once released)."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def hold(self) -> None:
        """Accept new connections but forward nothing until :meth:`release`: a replica set that hangs
        (a long GC pause, a stuck dependency). Bytes the caller sends meanwhile are delivered later,
        even if the caller is gone by then, as with a request already in a server's socket buffer."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if not self._open.is_set():
                self.held += 1
                await self._open.wait()
            upstream = await self._connect()
            if upstream is None:
                return
            up_reader, up_writer = upstream
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            port = self.backends[next(self._next)]
            try:
                connection = await asyncio.wait_for(asyncio.open_connection(self.host, port), 2.0)
            except (OSError, TimeoutError):
                continue
            self.connections[port] += 1
            return connection
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


# -- the deployment ------------------------------------------------------------------------------------------
@dataclass
class ShapeConfig:
    state_dir: Path
    database_url: str
    """PostgreSQL for every service (one database, each service's tables prefixed with its name)."""
    replicas: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(SERVICES, 2))
    workers: int = 2
    consumers: int = 2
    kafka_nodes: int = 3
    min_insync_replicas: int = 2
    metrics_partitions: int = 6
    extra_env: Mapping[str, str] = field(default_factory=dict)


class ProductionShape:
    """The deployment of ``deploy/k8s`` as local processes (see the module docstring)."""

    def __init__(self, config: ShapeConfig) -> None:
        self.config = config
        self.state_dir = Path(config.state_dir)
        self.logs = self.state_dir / "logs"
        self.kafka = KafkaCluster(
            self.state_dir / "kafka", nodes=config.kafka_nodes, min_insync_replicas=config.min_insync_replicas
        )
        self.temporal = TemporalDevServer(self.state_dir / "temporal", persistent=False)
        self.ports: dict[str, int] = {
            f"{service}-{n}": free_port() for service, count in config.replicas.items() for n in range(1, count + 1)
        }
        self.ports |= {f"worker-{n}": free_port() for n in range(1, config.workers + 1)}
        self.proxies = {
            service: RoundRobinProxy(service, [self.ports[f"{service}-{n}"] for n in range(1, count + 1)])
            for service, count in config.replicas.items()
            if count > 0
        }
        self.processes: dict[str, ManagedProcess] = {}

    # -- addresses
    def url(self, service: str) -> str:
        """The service as its callers see it: through its proxy."""
        return self.proxies[service].url

    def urls(self) -> dict[str, str]:
        return {service: proxy.url for service, proxy in self.proxies.items()}

    @property
    def workers(self) -> list[str]:
        return [name for name in self.processes if name.startswith("worker-")]

    @property
    def consumers(self) -> list[str]:
        return [name for name in self.processes if name.startswith("consumer-")]

    def worker_identity(self, name: str) -> str:
        """The identity a worker process reports to Temporal (the SDK's default: ``pid@host``)."""
        return f"{self.processes[name].pid}@{socket.gethostname()}"

    def env(self) -> dict[str, str]:
        return {
            "TANDEM_ENV": "dev",
            "TANDEM_STATE_DIR": str(self.state_dir),
            "TANDEM_DATABASE_URL": self.config.database_url,
            "TANDEM_AUTO_MIGRATE": "false",  # the bootstrap step ran them once, as in production
            "TANDEM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "TANDEM_KAFKA_IDEMPOTENCE": "true",
            "TANDEM_TEMPORAL_ADDRESS": self.temporal.address,
            "TANDEM_TRACKING_CONSUMER": "0",  # the consumers run as processes of their own
            "TANDEM_TRACKING_STALENESS_INTERVAL": "0",
            **{f"TANDEM_{service.upper()}_URL": proxy.url for service, proxy in self.proxies.items()},
            **self.config.extra_env,
        }

    # -- lifecycle
    async def start(self, progress: Progress = _quiet) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            await asyncio.gather(self.kafka.start(progress), self.temporal.start(progress), self._migrate(progress))
            await self._bootstrap_topics()
            progress(f"Kafka cluster of {len(self.kafka.nodes)} ready; topics replicated; migrations done")
            for proxy in self.proxies.values():
                await proxy.start()
            for name in self.ports:
                self.processes[name] = self._spawn(name)
            for n in range(1, self.config.consumers + 1):
                self.processes[f"consumer-{n}"] = self._spawn(f"consumer-{n}")
            await asyncio.gather(*(self._wait_ready(name) for name in self.processes))
            await self._wait_for_consumers(self.config.consumers)
        except BaseException:
            await self.stop()
            raise
        progress(f"production shape up in {time.monotonic() - started:.0f}s: {', '.join(self.processes)}")

    async def _migrate(self, progress: Progress) -> None:
        from services.common.migrations import upgrade

        for service in SERVICES:
            await upgrade(service, self.config.database_url)
        progress("migrations of every service applied")

    async def _bootstrap_topics(self) -> None:
        from contracts.topics import ALL_TOPICS

        await self.kafka.create_topics(list(ALL_TOPICS), self.config.metrics_partitions)

    def _argv(self, name: str) -> list[str]:
        kind = name.rsplit("-", 1)[0]
        cli = [sys.executable, "-m", "services.cli"]
        if kind == "worker":
            return [*cli, "worker", "--metrics-port", str(self.ports[name])]
        if kind == "consumer":
            return [*cli, "tracking", "consume", "--no-migrate"]
        return [*cli, "serve", kind, "--port", str(self.ports[name]), "--host", "127.0.0.1"]

    def _spawn(self, name: str) -> ManagedProcess:
        process = ManagedProcess(name, self._argv(name), log_path=self.logs / f"{name}.log", env=self.env())
        process.start()
        return process

    async def _wait_ready(self, name: str) -> None:
        if name.startswith("consumer-"):
            return  # no probe port: ready when the group has every member (_wait_for_consumers)
        await self.processes[name].wait_ready(_http_ok(f"http://127.0.0.1:{self.ports[name]}/healthz"), timeout=90)

    async def _wait_for_consumers(self, members: int, timeout: float = 90.0) -> None:
        """Until the tracking consumers' group is stable with every member (each then owns partitions)."""

        async def joined() -> bool:
            return await self.kafka.group_members(CONSUMER_GROUP) == members

        alive = lambda: all(self.processes[n].alive() for n in self.consumers)  # noqa: E731
        if not await wait_until(joined, timeout=timeout, interval=0.5, alive=alive):
            dead = [n for n in self.consumers if not self.processes[n].alive()]
            raise (
                self.processes[dead[0]].fail("it exited")
                if dead
                else StartupError(
                    f"the consumer group {CONSUMER_GROUP} did not reach {members} members in {timeout:.0f}s"
                )
            )

    def kill(self, name: str) -> None:
        """SIGKILL one process (``goals-1``, ``worker-2``, ``consumer-1``...)."""
        self.processes[name].kill()

    async def restart(self, name: str) -> None:
        self.processes[name].kill()
        self.processes[name] = self._spawn(name)
        await self._wait_ready(name)
        if name.startswith("consumer-"):
            await self._wait_for_consumers(len(self.consumers))

    async def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            await asyncio.to_thread(process.stop, 10)
        self.processes.clear()
        for proxy in self.proxies.values():
            await proxy.stop()
        await self.kafka.stop()
        await self.temporal.stop()


def _http_ok(url: str) -> Callable[[], Any]:
    async def check() -> bool:
        import httpx

        if not port_open(int(url.rsplit(":", 1)[1].split("/", 1)[0])):
            return False
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(url)).status_code == 200

    return check
