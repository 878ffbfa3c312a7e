"""Dependency audit step of ``python -m tests``: known vulnerabilities in every pinned package.

    python -m tests.dependency_audit                                  # report; fail only on what we can fix
    TANDEM_ADVISORY_DB=/path/to/osv python -m tests.dependency_audit  # audit offline, against OSV records
    TANDEM_AUDIT_STRICT=1 python -m tests.dependency_audit            # fail on any known vulnerability
    TANDEM_AUDIT_REQUIRE_DATA=1 python -m tests.dependency_audit      # fail when nothing could be audited

What is audited: every package pinned in ``requirements.lock``, direct and indirect (runtime and
dev), at its pinned version; without the lock file, the installed environment. Packages
installed at another version than the lock pins are listed (drift).

Where the advisories come from:

* ``TANDEM_ADVISORY_DB``: a directory of OSV records (``*.json``, any depth; e.g. the ``PyPI``
  folder of OSV's ``all.zip``), matched here against the pinned versions, with no network;
* otherwise ``pip-audit`` against the PyPI vulnerability service (``-s pypi``; set
  ``TANDEM_AUDIT_SERVICE=osv`` for the OSV API).

Policy: the run fails when a *direct runtime dependency* (``[project.dependencies]``) has a
vulnerability with a released fix: raising our lower bound (and the lock) is in our hands.
Vulnerabilities of indirect or dev-only packages, or without a fix, are reported but do not
fail the run (``TANDEM_AUDIT_STRICT=1`` makes them fail too).

No advisory data is not "no vulnerabilities": when the source answers for none of the packages
(a build machine that reaches the package index but not the vulnerability service, where PyPI's
JSON API answers 404 for every package), the step says ``NOT AUDITED``, names the reason and
how to audit offline, and never prints a count of known vulnerabilities. It does not fail CI
for that (a network without advisory data is not a defect of the code) unless
``TANDEM_AUDIT_REQUIRE_DATA=1``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PIP_AUDIT = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--format", "json"]
TIMEOUT_SECONDS = 120
OFFLINE_HINT = (
    "set TANDEM_ADVISORY_DB to a directory of OSV records (osv.dev's PyPI all.zip, unpacked) to audit offline"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(specs: Iterable[str]) -> set[str]:
    found = (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec) for spec in specs)
    return {canonical(m.group(0)) for m in found if m}


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def direct_dependencies() -> set[str]:
    """The runtime dependencies pyproject.toml names (what a fix of ours can raise)."""
    return _names(_project().get("dependencies", []))


def dev_dependencies() -> set[str]:
    return _names(spec for specs in _project().get("optional-dependencies", {}).values() for spec in specs)


@dataclass(frozen=True)
class Package:
    name: str
    version: str


def locked_packages(path: Path = LOCK) -> list[Package]:
    """``name==version`` pins of a requirements lock file (comments and options ignored)."""
    pins: list[Package] = []
    for line in path.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if match := re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)(\s*;.*)?", requirement):
            pins.append(Package(canonical(match.group(1)), match.group(3)))
    return pins


def installed_packages() -> list[Package]:
    seen: dict[str, Package] = {}
    for dist in importlib.metadata.distributions():
        name = canonical(dist.metadata["Name"] or "")
        if name and name != "tandem":
            seen.setdefault(name, Package(name, dist.version))
    return sorted(seen.values(), key=lambda p: p.name)


def drift(locked: Iterable[Package], installed: Iterable[Package]) -> list[str]:
    """``name locked -> installed`` for each locked package installed at another version (or missing)."""
    have = {p.name: p.version for p in installed}
    return [
        f"{p.name} {p.version} -> {have.get(p.name, 'not installed')}" for p in locked if have.get(p.name) != p.version
    ]


# -- OSV records ------------------------------------------------------------------------------------
def _records(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and not record.get("withdrawn"):
            yield record


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_ranges(version: Version, ranges: list[dict[str, Any]]) -> bool:
    """OSV ``ECOSYSTEM`` ranges: intervals opened by ``introduced``, closed by ``fixed`` (exclusive)
    or ``last_affected`` (inclusive); an interval never closed is open-ended."""
    for span in ranges:
        if span.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        start: Version | None = None
        opened = False
        for event in span.get("events", []):
            if "introduced" in event:
                opened, start = True, None if event["introduced"] == "0" else _version(event["introduced"])
            elif opened and ("fixed" in event or "last_affected" in event or "limit" in event):
                end = _version(event.get("fixed") or event.get("last_affected") or event.get("limit") or "")
                above_start = start is None or version >= start
                inclusive = "last_affected" in event
                if above_start and end is not None and (version <= end if inclusive else version < end):
                    return True
                opened = False
        if opened and (start is None or version >= start):
            return True
    return False


def osv_report(packages: Iterable[Package], directory: Path) -> tuple[dict[str, Any], int]:
    """A report in pip-audit's JSON shape from OSV records on disk, and how many records were read."""
    wanted = {p.name: p for p in packages}
    vulns: dict[str, list[dict[str, Any]]] = {name: [] for name in wanted}
    count = 0
    for record in _records(directory):
        count += 1
        for affected in record.get("affected", []):
            package = affected.get("package", {})
            name = canonical(str(package.get("name", "")))
            if package.get("ecosystem") != "PyPI" or name not in wanted:
                continue
            pinned = wanted[name].version
            version = _version(pinned)
            hit = pinned in affected.get("versions", []) or (
                version is not None and _in_ranges(version, affected.get("ranges", []))
            )
            if hit:
                fixes = sorted(
                    {e["fixed"] for r in affected.get("ranges", []) for e in r.get("events", []) if "fixed" in e},
                    key=lambda v: _version(v) or Version("0"),
                )
                vulns[name].append(
                    {"id": record.get("id", "?"), "fix_versions": fixes, "aliases": record.get("aliases", [])}
                )
    report = {"dependencies": [{"name": p.name, "version": p.version, "vulns": vulns[p.name]} for p in wanted.values()]}
    return report, count


# -- pip-audit ------------------------------------------------------------------------------------
def pip_audit_report(packages: Iterable[Package], *, service: str) -> tuple[dict[str, Any] | None, str]:
    """pip-audit's JSON report for the pinned ``packages`` (no resolution), or None and why not."""
    if importlib.util.find_spec("pip_audit") is None:
        return None, "pip-audit is not installed (pip install -e '.[dev]')"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        pins.write("".join(f"{p.name}=={p.version}\n" for p in packages))
    argv = [*PIP_AUDIT, "--vulnerability-service", service, "--no-deps", "--disable-pip", "-r", pins.name]
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=ROOT)
    except (subprocess.TimeoutExpired, OSError) as exc:
        return None, f"pip-audit did not finish ({type(exc).__name__}: {exc})"
    finally:
        Path(pins.name).unlink(missing_ok=True)
    try:
        report: dict[str, Any] = json.loads(completed.stdout)
    except json.JSONDecodeError:
        tail = " / ".join(completed.stderr.strip().splitlines()[-3:])
        return None, f"pip-audit failed (exit {completed.returncode}): {tail}"
    return report, ""


# -- the verdict ----------------------------------------------------------------------------------
def evaluate(
    report: dict[str, Any], *, direct: set[str], strict: bool, dev: set[str] | None = None, source: str = ""
) -> tuple[list[str], list[str]]:
    """(lines to print, blocking findings) for a report in ``pip-audit --format json``'s shape."""
    dev = dev or set()
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = len(dependencies) - len(skipped)
    findings = [(d, v) for d in dependencies for v in d.get("vulns", [])]
    lines: list[str] = []
    blocking: list[str] = []
    for dep, vuln in findings:
        name = canonical(dep["name"])
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix released"
        aliases = ", ".join(vuln.get("aliases") or [])
        is_blocking = strict or (name in direct and bool(vuln.get("fix_versions")))
        scope = "direct" if name in direct else "dev" if name in dev else "indirect"
        lines.append(
            f"  [{'FAIL' if is_blocking else 'info'}] {dep['name']} {dep['version']} ({scope}): "
            f"{vuln['id']} {aliases} -> fixed in {fixes}"
        )
        if is_blocking:
            blocking.append(f"{dep['name']} {dep['version']} ({vuln['id']})")
    indirect = sum(1 for d in dependencies if canonical(d["name"]) not in direct | dev)
    where = f" against {source}" if source else ""
    if audited == 0:
        reasons = sorted({re.sub(r":.*", "", str(d["skip_reason"])) for d in skipped}) or ["no packages"]
        lines.append(
            f"dependency audit: NOT AUDITED: no advisory data{where} for any of the {len(dependencies)} packages "
            f"({'; '.join(reasons)}); known vulnerabilities: unknown. {OFFLINE_HINT}"
        )
        return lines, blocking
    lines.append(
        f"dependency audit{where}: {audited} packages audited ({indirect} of them indirect), "
        f"{len(skipped)} skipped, {len(findings)} known vulnerabilities, {len(blocking)} blocking"
    )
    if skipped:
        names = ", ".join(sorted(d["name"] for d in skipped)[:10])
        lines.append(f"WARNING: {len(skipped)} packages were NOT audited (no advisory data): {names}")
    if blocking:
        lines.append("raise the lower bound of these in pyproject.toml (and the lock): " + "; ".join(blocking))
    return lines, blocking


def main() -> int:
    strict = os.environ.get("TANDEM_AUDIT_STRICT") == "1"
    require_data = os.environ.get("TANDEM_AUDIT_REQUIRE_DATA") == "1"
    installed = installed_packages()
    if LOCK.exists():
        packages = locked_packages()
        moved = drift(packages, installed)
        print(f"auditing {len(packages)} packages pinned in {LOCK.name} (direct and indirect)")
        if moved:
            print(f"note: {len(moved)} installed at another version than locked: {', '.join(moved[:10])}")
    else:
        packages = installed
        print(f"WARNING: {LOCK.name} is missing; auditing the {len(packages)} installed packages instead")
    database = os.environ.get("TANDEM_ADVISORY_DB")
    if database:
        if not Path(database).is_dir():
            print(f"TANDEM_ADVISORY_DB={database} is not a directory of OSV records")
            return 1
        report, records = osv_report(packages, Path(database))
        source = f"{records} OSV records in {database}"
        if records == 0:
            report = {
                "dependencies": [
                    {"name": p.name, "skip_reason": "the OSV directory holds no records"} for p in packages
                ]
            }
    else:
        service = os.environ.get("TANDEM_AUDIT_SERVICE", "pypi")
        found, why_not = pip_audit_report(packages, service=service)
        if found is None:
            print(f"dependency audit: NOT AUDITED: {why_not}; known vulnerabilities: unknown. {OFFLINE_HINT}")
            return 1 if require_data else 0
        report, source = found, f"the {service} vulnerability service"
    lines, blocking = evaluate(
        report, direct=direct_dependencies(), dev=dev_dependencies(), strict=strict, source=source
    )
    print("\n".join(lines))
    if blocking:
        return 1
    audited = sum(1 for d in report.get("dependencies", []) if not d.get("skip_reason"))
    return 1 if require_data and audited == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
