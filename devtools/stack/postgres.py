"""A throwaway PostgreSQL cluster built with Debian's ``initdb``/``pg_ctl`` binaries.

Tests (and ``tandem up --db postgres``) use it so they never depend on a system
service: the cluster lives in its own directory, listens on 127.0.0.1 on a free
port, trusts local connections and is deleted when stopped (unless kept).
PostgreSQL refuses to run as root, so under root it runs as the ``postgres``
user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from devtools.stack.process import ManagedProcess, StartupError, free_port, port_open

__all__ = ["PostgresCluster", "find_postgres_bin"]


def find_postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding ``initdb`` (Debian layout)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise FileNotFoundError(
        "PostgreSQL server binaries (initdb, postgres) were not found; install them with: apt-get install -y postgresql"
    )


class PostgresCluster:
    """One PostgreSQL cluster in ``data_dir`` with superuser ``tandem`` and trust auth."""

    def __init__(self, data_dir: Path, *, port: int | None = None, keep: bool = False) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.keep = keep
        self.bin_dir = find_postgres_bin()
        self.run_as: str | None = "postgres" if os.geteuid() == 0 else None
        self.process: ManagedProcess | None = None
        self.superuser = "tandem"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def url(self, database: str = "tandem", *, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def _chown(self, path: Path) -> None:
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, *argv: str) -> None:
        result = subprocess.run(list(argv), capture_output=True, text=True, user=self.run_as, check=False)
        if result.returncode != 0:
            raise StartupError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")

    async def start(self, progress: Callable[[str], None] | None = None) -> None:
        pgdata = self.data_dir / "pgdata"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        if not (pgdata / "PG_VERSION").exists():
            if progress:
                progress(f"initialising PostgreSQL cluster in {pgdata}")
            self._run(
                str(self.bin_dir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
        if port_open(self.port):
            raise StartupError(f"port {self.port} is already in use")
        if progress:
            progress(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        self.process = ManagedProcess(
            "postgres",
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(pgdata),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.data_dir}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            log_path=self.data_dir / "postgres.log",
            user=self.run_as,
        )
        self.process.start()
        await self.process.wait_ready(self.healthy, timeout=60)
        await self.create_database("tandem")

    async def healthy(self) -> bool:
        if not port_open(self.port):
            return False
        import asyncpg

        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user=self.superuser, database="postgres")
        try:
            await conn.execute("SELECT 1")
        finally:
            await conn.close()
        return True

    async def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; return its SQLAlchemy URL."""
        import asyncpg

        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user=self.superuser, database="postgres")
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    async def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)
