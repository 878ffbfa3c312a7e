"""The dependency audit (issue 14: it audited nothing, said "0 known vulnerabilities", never looked
at indirect dependencies, and nothing was pinned): the lock, the policy, OSV records on disk, and
an honest "NOT AUDITED" when there is no advisory data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import dependency_audit
from tests.dependency_audit import (
    LOCK,
    Package,
    canonical,
    dev_dependencies,
    direct_dependencies,
    drift,
    evaluate,
    locked_packages,
    osv_report,
)

REPORT = {
    "dependencies": [
        {"name": "FastAPI", "version": "0.1.0", "vulns": [{"id": "PYSEC-1", "fix_versions": ["0.2.0"], "aliases": []}]},
        {"name": "some_lib", "version": "1.0", "vulns": [{"id": "GHSA-x", "fix_versions": ["1.1"], "aliases": []}]},
        {"name": "pydantic", "version": "2.0", "vulns": [{"id": "PYSEC-2", "fix_versions": [], "aliases": []}]},
        {"name": "clean", "version": "1.0", "vulns": []},
        {"name": "tandem", "skip_reason": "distribution marked as editable"},
    ]
}


def test_only_fixable_vulnerabilities_of_direct_dependencies_block() -> None:
    lines, blocking = evaluate(REPORT, direct={"fastapi", "pydantic"}, strict=False)
    assert blocking == ["FastAPI 0.1.0 (PYSEC-1)"]
    assert "  [info] some_lib 1.0 (indirect): GHSA-x  -> fixed in 1.1" in lines
    assert "  [info] pydantic 2.0 (direct): PYSEC-2  -> fixed in no fix released" in lines
    assert (
        "dependency audit: 4 packages audited (3 of them indirect), 1 skipped, 3 known vulnerabilities, 1 blocking"
        in lines
    )
    assert any(line.startswith("WARNING: 1 packages were NOT audited") for line in lines)


def test_strict_mode_blocks_on_every_finding() -> None:
    _, blocking = evaluate(REPORT, direct=set(), strict=True)
    assert len(blocking) == 3


def test_no_advisory_data_is_never_reported_as_no_vulnerabilities() -> None:
    unreachable = {
        "dependencies": [
            {"name": n, "skip_reason": f"Dependency not found on PyPI and could not be audited: {n} (1.0)"}
            for n in ("fastapi", "anyio", "idna")
        ]
    }
    lines, blocking = evaluate(unreachable, direct={"fastapi"}, strict=False, source="the pypi vulnerability service")
    text = "\n".join(lines)
    assert blocking == [] and "NOT AUDITED" in text and "known vulnerabilities: unknown" in text
    assert "0 known vulnerabilities" not in text and "TANDEM_ADVISORY_DB" in text


def test_direct_dependencies_come_from_pyproject() -> None:
    direct = direct_dependencies()
    assert {"fastapi", "aiokafka", "temporalio"} <= direct
    assert {"pytest", "pip-audit"} <= dev_dependencies()
    assert canonical("Typing_Extensions") == "typing-extensions"


def test_the_lock_pins_every_direct_dependency_and_their_dependencies() -> None:
    pinned = {p.name: p.version for p in locked_packages(LOCK)}
    assert direct_dependencies() | dev_dependencies() <= set(pinned), "refresh requirements.lock"
    assert {"starlette", "anyio", "idna", "h11"} <= set(pinned), "indirect dependencies are pinned too"
    assert all(v[0].isdigit() for v in pinned.values())


def test_drift_lists_packages_installed_at_another_version() -> None:
    locked = [Package("fastapi", "1.0"), Package("anyio", "4.0"), Package("gone", "1")]
    installed = [Package("fastapi", "1.0"), Package("anyio", "4.1")]
    assert drift(locked, installed) == ["anyio 4.0 -> 4.1", "gone 1 -> not installed"]


def osv(directory: Path, name: str, record_id: str, affected: dict[str, Any], **extra: Any) -> None:
    record = {
        "id": record_id,
        "aliases": [f"CVE-{record_id}"],
        "affected": [{"package": {"ecosystem": "PyPI", "name": name}, **affected}],
        **extra,
    }
    (directory / f"{record_id}.json").write_text(json.dumps(record))


def ranges(*events: dict[str, str]) -> dict[str, Any]:
    return {"ranges": [{"type": "ECOSYSTEM", "events": list(events)}]}


@pytest.fixture
def advisory_db(tmp_path: Path) -> Path:
    db = tmp_path / "osv" / "PyPI"
    db.mkdir(parents=True)
    osv(db, "FastAPI", "PYSEC-F1", ranges({"introduced": "0"}, {"fixed": "99.0"}))
    osv(db, "anyio", "GHSA-A1", ranges({"introduced": "1.0"}, {"last_affected": "4.0"}))
    osv(db, "anyio", "GHSA-A2", ranges({"introduced": "0"}, {"fixed": "2.0"}))  # fixed long ago
    osv(db, "idna", "PYSEC-I1", {"versions": ["3.4"]})
    osv(db, "idna", "PYSEC-W", ranges({"introduced": "0"}), withdrawn="2024-01-01T00:00:00Z")
    return db.parent


def test_osv_records_on_disk_are_matched_against_the_pinned_versions(advisory_db: Path) -> None:
    packages = [Package("fastapi", "0.120.0"), Package("anyio", "4.0"), Package("idna", "3.4"), Package("h11", "0.16")]
    report, records = osv_report(packages, advisory_db)
    assert records == 4  # the withdrawn one is not counted
    found = {d["name"]: [v["id"] for v in d["vulns"]] for d in report["dependencies"]}
    assert found == {"fastapi": ["PYSEC-F1"], "anyio": ["GHSA-A1"], "idna": ["PYSEC-I1"], "h11": []}
    lines, blocking = evaluate(report, direct={"fastapi"}, strict=False)
    assert blocking == ["fastapi 0.120.0 (PYSEC-F1)"]
    assert "  [info] anyio 4.0 (indirect): GHSA-A1 CVE-GHSA-A1 -> fixed in no fix released" in lines


def test_the_step_audits_the_lock_offline_and_fails_on_a_fixable_direct_vulnerability(
    advisory_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TANDEM_ADVISORY_DB", str(advisory_db))
    assert dependency_audit.main() == 1
    out = capsys.readouterr().out
    assert f"4 OSV records in {advisory_db}" in out
    assert "[FAIL] fastapi" in out and "indirect" in out and "NOT AUDITED" not in out


def test_the_step_says_when_it_could_not_reach_advisory_data_and_does_not_fail_ci(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TANDEM_ADVISORY_DB", raising=False)
    monkeypatch.setattr(dependency_audit, "pip_audit_report", lambda packages, service: (None, "no network"))
    assert dependency_audit.main() == 0
    out = capsys.readouterr().out
    assert "NOT AUDITED: no network; known vulnerabilities: unknown" in out and "0 known" not in out
    monkeypatch.setenv("TANDEM_AUDIT_REQUIRE_DATA", "1")
    assert dependency_audit.main() == 1
