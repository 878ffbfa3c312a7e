"""Schema evolution checks: is every exported schema still compatible with the last released one?

``schemas/released/`` keeps the JSON Schemas of the last release. A schema file (one contract at
one version, e.g. ``domain_event.goal_approved.v1.json``) may change only in ways that both sides
survive:

* **backward**: everything valid under the released schema is valid under the current one, so
  events already on the topics (and requests from services not yet redeployed) are still read;
* **forward**: everything valid under the current schema is valid under the released one, so a
  consumer built against the released schema still reads what is written now (our schemas forbid
  unknown properties, and so do the readers generated from them).

A change that breaks either is a new version: a new model with the ``schema_version`` raised (a new
file), while the old model stays exported as the reader of the old version. A released file
without a current model is a break too: its events may still be on the topic. Descriptions,
titles and defaults may change freely. ``python -m contracts.compat`` prints the problems;
``python -m contracts.compat --release`` makes the current schemas the released ones.

The comparison is structural over the JSON Schema pydantic emits (``$ref``/``$defs``, ``anyOf``,
``type``, ``enum``/``const``, bounds, ``pattern``/``format``, ``properties``/``required``/
``additionalProperties``, ``items``): it errs on the side of reporting.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

__all__ = ["RELEASED_DIR", "Break", "check", "compare", "main", "released_schemas"]

RELEASED_DIR: Final = Path(__file__).parent / "schemas" / "released"

Direction = Literal["backward", "forward"]
Schema = dict[str, Any]

_ANNOTATIONS: Final = frozenset({"title", "description", "default", "examples", "deprecated", "$comment"})
_LOWER: Final = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER: Final = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_WHY: Final[dict[Direction, str]] = {
    "backward": "what was written under the released schema is refused now",
    "forward": "a reader of the released schema refuses what is written now",
}


@dataclass(frozen=True)
class Break:
    """One incompatibility: where in the schema, in which direction, and why."""

    path: str
    direction: Direction
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '(root)'}: {self.reason} ({self.direction}: {_WHY[self.direction]})"


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.roots = (old_root, new_root)
        self.active: set[tuple[str, str]] = set()

    def resolve(self, schema: Schema, side: int) -> tuple[Schema, str | None]:
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema, None
        target: Any = self.roots[side]
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}, ref

    def compare(self, old: Schema, new: Schema, path: str) -> list[Break]:
        old, old_ref = self.resolve(old, 0)
        new, new_ref = self.resolve(new, 1)
        if old_ref and new_ref:
            if (old_ref, new_ref) in self.active:  # a recursive model: already being compared above
                return []
            self.active.add((old_ref, new_ref))
        try:
            return self._compare(_strip(old), _strip(new), path)
        finally:
            self.active.discard((old_ref or "", new_ref or ""))

    def _compare(self, old: Schema, new: Schema, path: str) -> list[Break]:
        if old == new:
            return []
        if _branches(old) is not None or _branches(new) is not None:
            return self._union(old, new, path)
        breaks = _types(old, new, path) + _values(old, new, path) + _bounds(old, new, path)
        breaks += _strings(old, new, path)
        if "items" in old or "items" in new:
            breaks += self.compare(old.get("items", {}), new.get("items", {}), f"{path}[]")
        if _is_object(old) or _is_object(new):
            breaks += self._object(old, new, path)
        return breaks

    def _union(self, old: Schema, new: Schema, path: str) -> list[Break]:
        olds, news = _branches(old) or [old], _branches(new) or [new]
        breaks: list[Break] = []
        for branch in olds:
            found = [self._only(self.compare(branch, n, path), "backward") for n in news]
            if all(found):
                best = min(found, key=len)
                breaks += best or [
                    Break(path, "backward", f"values of the form {_brief(branch)} are no longer accepted")
                ]
        for branch in news:
            found = [self._only(self.compare(o, branch, path), "forward") for o in olds]
            if all(found):
                best = min(found, key=len)
                breaks += best or [Break(path, "forward", f"values of the form {_brief(branch)} are new")]
        return breaks

    @staticmethod
    def _only(breaks: list[Break], direction: Direction) -> list[Break]:
        return [b for b in breaks if b.direction == direction]

    def _object(self, old: Schema, new: Schema, path: str) -> list[Break]:
        old_props: dict[str, Schema] = old.get("properties", {})
        new_props: dict[str, Schema] = new.get("properties", {})
        old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
        old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
        breaks: list[Break] = []
        for name in sorted(old_props.keys() & new_props.keys()):
            breaks += self.compare(old_props[name], new_props[name], _join(path, name))
            if name in new_req and name not in old_req:
                breaks.append(Break(_join(path, name), "backward", "became required"))
            if name in old_req and name not in new_req:
                breaks.append(Break(_join(path, name), "forward", "is no longer required"))
        for name in sorted(old_props.keys() - new_props.keys()):
            where = _join(path, name)
            if new_extra is False:
                breaks.append(Break(where, "backward", "was removed, and unknown properties are refused"))
            elif isinstance(new_extra, dict):
                breaks += self._only(self.compare(old_props[name], new_extra, where), "backward")
            if name in old_req:
                breaks.append(Break(where, "forward", "was required and is removed"))
        for name in sorted(new_props.keys() - old_props.keys()):
            where = _join(path, name)
            if name in new_req:
                breaks.append(Break(where, "backward", "is new and required"))
            if old_extra is False:
                breaks.append(Break(where, "forward", "is new, and the released schema refuses unknown properties"))
            elif isinstance(old_extra, dict):
                breaks += self._only(self.compare(old_extra, new_props[name], where), "forward")
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            breaks += self.compare(old_extra, new_extra, f"{path}{{*}}")
        elif old_extra is not False and new_extra is False:
            breaks.append(Break(path, "backward", "no longer accepts additional properties"))
        elif old_extra is False and new_extra is not False:
            breaks.append(Break(path, "forward", "now accepts additional properties"))
        return breaks


def _strip(schema: Schema) -> Schema:
    return {k: v for k, v in schema.items() if k not in _ANNOTATIONS}


def _branches(schema: Schema) -> list[Schema] | None:
    branches = schema.get("anyOf", schema.get("oneOf"))
    return list(branches) if isinstance(branches, list) else None


def _is_object(schema: Schema) -> bool:
    return schema.get("type") == "object" or "properties" in schema or "additionalProperties" in schema


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _brief(schema: Schema) -> str:
    return json.dumps(_strip(schema), sort_keys=True)[:120]


def _type_set(schema: Schema) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return set(kind) if isinstance(kind, list) else {kind}


def _accepts(types: set[str], kind: str) -> bool:
    return kind in types or (kind == "integer" and "number" in types)


def _types(old: Schema, new: Schema, path: str) -> list[Break]:
    old_types, new_types = _type_set(old), _type_set(new)
    breaks = []
    if new_types is not None:
        lost = sorted(t for t in (old_types or {"any"}) if not _accepts(new_types, t))
        if lost:
            breaks.append(Break(path, "backward", f"type {'/'.join(lost)} is no longer accepted"))
    if old_types is not None:
        gained = sorted(t for t in (new_types or {"any"}) if not _accepts(old_types, t))
        if gained:
            breaks.append(Break(path, "forward", f"type {'/'.join(gained)} is new"))
    return breaks


def _allowed_values(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _values(old: Schema, new: Schema, path: str) -> list[Break]:
    old_values, new_values = _allowed_values(old), _allowed_values(new)
    breaks = []
    if new_values is not None:
        lost = [v for v in old_values or ["(any value)"] if v not in new_values]
        if lost:
            breaks.append(Break(path, "backward", f"value(s) {lost} are no longer allowed"))
    if old_values is not None:
        gained = [v for v in new_values or ["(any value)"] if v not in old_values]
        if gained:
            breaks.append(Break(path, "forward", f"value(s) {gained} are new"))
    return breaks


def _bounds(old: Schema, new: Schema, path: str) -> list[Break]:
    breaks = []
    for key in (*_LOWER, *_UPPER):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        lower = key in _LOWER
        if after is not None and (before is None or (after > before if lower else after < before)):
            breaks.append(Break(path, "backward", f"{key} tightened from {before} to {after}"))
        else:
            breaks.append(Break(path, "forward", f"{key} loosened from {before} to {after}"))
    if old.get("multipleOf") != new.get("multipleOf"):
        for direction in ("backward", "forward"):
            breaks.append(Break(path, direction, f"multipleOf changed from {old.get('multipleOf')}"))
    return breaks


def _strings(old: Schema, new: Schema, path: str) -> list[Break]:
    breaks = []
    for key in ("pattern", "format"):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if after is not None:
            breaks.append(
                Break(path, "backward", f"{key} {after!r} {'replaces ' + repr(before) if before else 'added'}")
            )
        if before is not None:
            breaks.append(Break(path, "forward", f"{key} {before!r} {'replaced' if after else 'removed'}"))
    return breaks


def compare(old: Schema, new: Schema) -> list[Break]:
    """Every incompatibility between a released schema and the current one (empty: compatible)."""
    return _Comparison(old, new).compare(old, new, "")


def released_schemas(directory: Path = RELEASED_DIR) -> dict[str, Schema]:
    return {path.name: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def check(released: Mapping[str, Schema], current: Mapping[str, Schema]) -> list[str]:
    """The problems, one line each: a released schema without a reader, or an incompatible change."""
    problems = []
    for name, old in sorted(released.items()):
        if name not in current:
            problems.append(
                f"{name}: the released schema has no model any more; keep the model of this version exported "
                "as the reader of what is already on the topics and in flight"
            )
            continue
        for found in compare(old, current[name]):
            problems.append(
                f"{name}: {found}. Keep this version's model as it was and add the change as a new version "
                "(raise schema_version; the old model stays exported as its reader)"
            )
    return problems


def current_schemas() -> dict[str, Schema]:
    from contracts.schema_export import render_model_schemas

    return {name: json.loads(text) for name, text in render_model_schemas().items()}


def main(argv: list[str]) -> int:
    if argv == ["--release"]:
        from contracts.schema_export import render_model_schemas

        shutil.rmtree(RELEASED_DIR, ignore_errors=True)
        RELEASED_DIR.mkdir(parents=True)
        for name, text in render_model_schemas().items():
            (RELEASED_DIR / name).write_text(text)
        sys.stdout.write(f"released {len(list(RELEASED_DIR.glob('*.json')))} schemas to {RELEASED_DIR}\n")
        return 0
    problems = check(released_schemas(), current_schemas())
    for problem in problems:
        sys.stdout.write(f"{problem}\n")
    sys.stdout.write(f"{len(problems)} incompatible change(s)\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
