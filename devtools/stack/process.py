"""Child-process management for the local stack: start, wait until ready, stop.

Every server of the embedded stack (Temporal, Kafka, PostgreSQL) and every
Tandem service runs as a child process started through :class:`ManagedProcess`.
Each has a log file in the state directory; when a server fails to start, the
raised :class:`StartupError` carries the tail of that log so the user sees why.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

__all__ = [
    "ManagedProcess",
    "StartupError",
    "free_port",
    "log_tail",
    "port_open",
    "wait_until",
]


class StartupError(RuntimeError):
    """A server did not become ready; the message includes its log tail."""


def free_port() -> int:
    """Pick a free TCP port on 127.0.0.1 by binding to port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    interval: float = 0.25,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``check`` until it is true, ``alive`` turns false, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            if await check():
                return True
        except Exception:  # noqa: BLE001 - a failing probe just means "not yet"
            pass
        await asyncio.sleep(interval)
    return False


class ManagedProcess:
    """One child process with a log file and a process group of its own.

    The child gets its own session (``start_new_session``) so that stopping it
    also stops anything it spawned; with ``kill_with_parent`` Linux's
    ``PR_SET_PDEATHSIG`` makes the child die if this process is killed with -9.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        kill_with_parent: bool = True,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.kill_with_parent = kill_with_parent
        self.user = user
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        full_env = dict(os.environ)
        if self.env:
            full_env.update(self.env)
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=str(self.cwd) if self.cwd else None,
            start_new_session=True,
            preexec_fn=_die_with_parent if self.kill_with_parent else None,
            user=self.user,
        )
        log.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def fail(self, reason: str) -> StartupError:
        status = "" if self.alive() else f" (exit code {self.popen.returncode if self.popen else '?'})"
        return StartupError(
            f"{self.name} failed to start: {reason}{status}.\nLast lines of {self.log_path}:\n{log_tail(self.log_path)}"
        )

    async def wait_ready(self, check: Callable[[], Awaitable[bool]], *, timeout: float) -> None:
        if not await wait_until(check, timeout=timeout, alive=self.alive):
            reason = "it exited during start-up" if not self.alive() else f"not ready after {timeout:.0f}s"
            self.stop()
            raise self.fail(reason)

    def kill(self) -> None:
        """SIGKILL the whole process group (used by crash tests)."""
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Whatever the leader left behind in its group goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.wait()


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when its parent dies (no orphans)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        pass
