"""The npm tools some tests run (``tools/asyncapi``: the AsyncAPI CLI; ``tools/axe``: axe-core), pinned by
their ``package-lock.json``.

On a fresh clone ``npm ci`` takes about a minute per tool; :func:`start` (called when the session
starts) runs it in the background for each tool that is missing, so the install overlaps the first
tests, and :func:`ensure` waits for it where a test needs the tool. Without npm, ``ensure`` fails the
test and says how to install it: a skipped validation would let an invalid document ship.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {
    "asyncapi": ROOT / "tools" / "asyncapi" / "node_modules" / ".bin" / "asyncapi",
    "axe": ROOT / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js",
}
"""Tool -> the file that shows it is installed."""
_installs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}


def _npm_ci(tool: str) -> tuple[subprocess.Popen[bytes], Path] | None:
    npm = shutil.which("npm")
    if npm is None:
        return None
    log = Path(tempfile.mkstemp(prefix=f"npm-ci-{tool}-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefer-offline"],
            cwd=ROOT / "tools" / tool,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


def start() -> None:
    """Start ``npm ci`` in the background for every tool not installed yet."""
    for tool, marker in TOOLS.items():
        if not marker.exists() and tool not in _installs:
            started = _npm_ci(tool)
            if started is not None:
                _installs[tool] = started


def ensure(tool: str) -> Path:
    """The tool's installed file, after waiting for (or running) its ``npm ci``."""
    marker = TOOLS[tool]
    if marker.exists() and tool not in _installs:
        return marker
    if tool not in _installs:
        started = _npm_ci(tool)
        if started is None:
            pytest.fail(
                f"npm is not installed: tools/{tool} comes from npm. Install Node.js and npm (e.g. `apt-get install "
                "nodejs npm`), then re-run; the tests install the tool themselves."
            )
        _installs[tool] = started
    process, log = _installs[tool]
    returncode = process.wait(timeout=900)
    if returncode != 0 or not marker.exists():
        pytest.fail(f"`npm ci` in tools/{tool} failed ({returncode}):\n{log.read_text(errors='replace')[-4000:]}")
    return marker


def stop() -> None:
    """Stop installs still running when the session ends (a partial one is redone by the next ``npm ci``)."""
    for process, _log in _installs.values():
        if process.poll() is None:
            process.terminate()
