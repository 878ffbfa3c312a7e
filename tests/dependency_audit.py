"""Dependency audit step of ``python -m tests``: known vulnerabilities in the installed packages.

    python -m tests.dependency_audit           # report; fail only on what we can fix ourselves
    TANDEM_AUDIT_STRICT=1 python -m tests.dependency_audit   # fail on any known vulnerability

Runs ``pip-audit`` against the PyPI vulnerability service (``-s pypi``; OSV is often
unreachable from build machines) over the current environment, prints every finding
with its fix versions, and a one-line summary.

Policy: the run fails when a *direct runtime dependency* (``[project.dependencies]``)
has a vulnerability with a released fix: raising our lower bound is in our hands.
Vulnerabilities of transitive or dev-only packages, or without a fix, are reported
but do not fail the run (``TANDEM_AUDIT_STRICT=1`` makes them fail too). When the
audit cannot run at all (no network), it says so loudly and does not fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PIP_AUDIT = [
    sys.executable,
    "-m",
    "pip_audit",
    "--progress-spinner",
    "off",
    "--vulnerability-service",
    "pypi",
    "--skip-editable",
    "--format",
    "json",
]
TIMEOUT_SECONDS = 120


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec) for spec in project.get("dependencies", []))
    return {canonical(m.group(0)) for m in names if m}


def evaluate(report: dict[str, Any], *, direct: set[str], strict: bool) -> tuple[list[str], list[str]]:
    """(lines to print, blocking findings) for a ``pip-audit --format json`` report."""
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    findings = [(d, v) for d in dependencies for v in d.get("vulns", [])]
    lines: list[str] = []
    blocking: list[str] = []
    for dep, vuln in findings:
        name = canonical(dep["name"])
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix released"
        aliases = ", ".join(vuln.get("aliases") or [])
        is_blocking = strict or (name in direct and bool(vuln.get("fix_versions")))
        scope = "direct" if name in direct else "transitive/dev"
        lines.append(
            f"  [{'FAIL' if is_blocking else 'info'}] {dep['name']} {dep['version']} ({scope}): "
            f"{vuln['id']} {aliases} -> fixed in {fixes}"
        )
        if is_blocking:
            blocking.append(f"{dep['name']} {dep['version']} ({vuln['id']})")
    audited = len(dependencies) - len(skipped)
    lines.append(
        f"dependency audit: {audited} packages audited, {len(skipped)} skipped, "
        f"{len(findings)} known vulnerabilities, {len(blocking)} blocking"
    )
    if skipped and not audited:
        reasons = {re.sub(r":.*", "", str(d["skip_reason"])) for d in skipped}
        lines.append(f"WARNING: the vulnerability service audited none of the packages ({'; '.join(sorted(reasons))})")
    if blocking:
        lines.append("raise the lower bound of these in pyproject.toml (or upgrade them): " + "; ".join(blocking))
    return lines, blocking


def main() -> int:
    strict = os.environ.get("TANDEM_AUDIT_STRICT") == "1"
    if importlib.util.find_spec("pip_audit") is None:
        print("pip-audit is not installed: pip install -e '.[dev]' (or pip install pip-audit)")
        return 1
    try:
        completed = subprocess.run(PIP_AUDIT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=ROOT)
    except (subprocess.TimeoutExpired, OSError) as exc:
        print(f"WARNING: the dependency audit could not run ({type(exc).__name__}: {exc}); NOTHING WAS AUDITED")
        return 0
    try:
        report: dict[str, Any] = json.loads(completed.stdout)
    except json.JSONDecodeError:
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
        print(f"WARNING: the dependency audit could not run (exit {completed.returncode}); NOTHING WAS AUDITED\n{tail}")
        return 0
    lines, blocking = evaluate(report, direct=direct_dependencies(), strict=strict)
    print("\n".join(lines))
    return 1 if blocking else 0


if __name__ == "__main__":
    sys.exit(main())
