"""The house layout, kept by a test: module size, import direction, no import circle.

See docs/architecture.md ("Packages" and "One convention across services").
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "workflows", "services")
MAX_LINES = 800
STAGE_SERVICES = ("cycles", "goals", "tracking", "evaluation", "feedback", "results", "console", "committee")


def _modules() -> Iterator[tuple[str, Path]]:
    for package in (*PACKAGES, "devtools", "sdk"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


MODULES = dict(_modules())


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported: module level only (not inside functions or
    ``if TYPE_CHECKING:``), resolved to this project's modules."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try | ast.With):
                visit(node.body)

    visit(tree.body)
    return {name for name in found if name in MODULES}


def test_no_module_is_too_long_to_read_in_one_sitting() -> None:
    long = {
        name: lines
        for name, path in MODULES.items()
        if name.split(".")[0] in PACKAGES and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these along their sections into packages: {long}"


def test_contracts_import_only_pydantic_and_the_standard_library() -> None:
    allowed = {"pydantic", "pydantic_core", "contracts", "__future__", *sys.stdlib_module_names}
    offenders: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        if not name.startswith("contracts"):
            continue
        tree = ast.parse(path.read_text())
        roots = {
            (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "level", 0) == 0
            for alias in (node.names if isinstance(node, ast.Import) else [node])  # type: ignore[list-item]
            if (node.module if isinstance(node, ast.ImportFrom) else alias.name)
        }
        if roots - allowed:
            offenders[name] = roots - allowed
    assert not offenders, offenders


def test_no_service_imports_another_and_plumbing_imports_no_service() -> None:
    offenders = []
    for name, path in MODULES.items():
        parts = name.split(".")
        if parts[0] != "services" or len(parts) < 2 or parts[1] == "cli":
            continue
        own = parts[1]
        for imported in _top_level_imports(path):
            bits = imported.split(".")
            if bits[0] != "services" or len(bits) < 2 or bits[1] in (own, "common"):
                continue
            if bits[1] in STAGE_SERVICES:
                offenders.append(f"{name} -> {imported}")
        if own == "common":
            offenders += [f"{name} -> {i}" for i in _top_level_imports(path) if i.split(".")[:2][-1] in STAGE_SERVICES]
    assert not offenders, offenders


def test_services_never_import_the_development_tooling_at_import_time() -> None:
    offenders = [
        f"{name} -> {imported}"
        for name, path in MODULES.items()
        if name.startswith(("services", "workflows", "contracts"))
        for imported in _top_level_imports(path)
        if imported.startswith(("devtools", "sdk"))
    ]
    assert not offenders, offenders


def test_there_is_no_import_circle() -> None:
    graph = {name: {i for i in _top_level_imports(path) if i != name} for name, path in MODULES.items()}
    # A package imports its submodules' names through __init__; an edge to a package's own child is
    # the package re-exporting, not a circle back to the parent.
    graph = {n: {i for i in deps if not i.startswith(n + ".")} for n, deps in graph.items()}
    seen: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def walk(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                circles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in seen:
                walk(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            walk(node)
    assert not circles, circles[:5]
