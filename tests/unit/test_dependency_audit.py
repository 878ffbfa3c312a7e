"""The dependency-audit policy: fixable vulnerabilities of direct dependencies fail, the rest is reported."""

from __future__ import annotations

from tests.dependency_audit import canonical, direct_dependencies, evaluate

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
    assert "  [info] some_lib 1.0 (transitive/dev): GHSA-x  -> fixed in 1.1" in lines
    assert "  [info] pydantic 2.0 (direct): PYSEC-2  -> fixed in no fix released" in lines
    assert "dependency audit: 4 packages audited, 1 skipped, 3 known vulnerabilities, 1 blocking" in lines


def test_strict_mode_blocks_on_every_finding() -> None:
    _, blocking = evaluate(REPORT, direct=set(), strict=True)
    assert len(blocking) == 3


def test_direct_dependencies_come_from_pyproject() -> None:
    direct = direct_dependencies()
    assert {"fastapi", "aiokafka", "temporalio"} <= direct
    assert canonical("Typing_Extensions") == "typing-extensions"
