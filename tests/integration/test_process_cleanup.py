"""Killing the process that runs the stack (even with SIGKILL) leaves no child behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from devtools.stack.process import ManagedProcess
    child = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"],
                           log_path=Path(sys.argv[1]) / "sleeper.log")
    child.start()
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_children_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid), "the child outlived its SIGKILLed parent"


def test_stop_terminates_the_whole_process_group(tmp_path: Path) -> None:
    from devtools.stack.process import ManagedProcess

    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"
    )
    proc = ManagedProcess("group", [sys.executable, "-c", script], log_path=tmp_path / "group.log")
    proc.start()
    time.sleep(1.0)
    assert proc.pid is not None
    members = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(int(p.name)) == proc.pid]
    assert len(members) >= 2
    proc.stop(timeout=5)
    time.sleep(0.3)
    assert not any(_alive(pid) for pid in members)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
