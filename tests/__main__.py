"""The whole test suite, as the README's second command and CI run it: ruff (lint and format), mypy,
the dependency audit, pytest.

    python -m tests            # everything (Apache Kafka + PostgreSQL by default)
    python -m tests -k kafka   # extra arguments go to pytest

Each step prints its duration; the exit status is non-zero if any step failed.
"""

from __future__ import annotations

import subprocess
import sys
import time

STEPS: list[tuple[str, list[str]]] = [
    ("ruff", [sys.executable, "-m", "ruff", "check", "."]),
    ("format", [sys.executable, "-m", "ruff", "format", "--check", "."]),
    ("mypy", [sys.executable, "-m", "mypy"]),
    # Every package pinned in requirements.lock, direct and indirect, against TANDEM_ADVISORY_DB (OSV records)
    # or pip-audit's service; fails only on fixable vulns of direct dependencies, says NOT AUDITED without data.
    ("audit", [sys.executable, "-m", "tests.dependency_audit"]),
]


def main(pytest_args: list[str]) -> int:
    failed: list[str] = []
    timings: list[tuple[str, float]] = []
    steps = [*STEPS, ("pytest", [sys.executable, "-m", "pytest", *pytest_args])]
    for name, argv in steps:
        print(f"\n=== {name}: {' '.join(argv[1:])}", flush=True)
        started = time.monotonic()
        code = subprocess.call(argv)
        timings.append((name, time.monotonic() - started))
        if code != 0:
            failed.append(f"{name} (exit {code})")
    print("\n=== summary")
    for name, seconds in timings:
        print(f"  {name:<8} {seconds:7.1f}s")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    print("all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
