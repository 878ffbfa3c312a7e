"""Schema evolution: the current contracts are compatible with the released ones, and the checker
catches each kind of incompatible change (and lets compatible ones through)."""

from __future__ import annotations

import copy
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from contracts.compat import check, compare, current_schemas, released_schemas

Schema = dict[str, Any]


def test_current_contracts_are_compatible_with_the_released_schemas() -> None:
    problems = check(released_schemas(), current_schemas())
    assert not problems, "\n".join(problems) + (
        "\nKeep the released version and add a new one; after a release, `python -m contracts.compat --release`"
    )


class _PayloadV1(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal_id: str = Field(max_length=64)
    weight: float = Field(ge=0, le=100)
    status: Literal["draft", "approved"]
    comment: str | None = None


class _EventV1(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["GoalThing"] = "GoalThing"
    schema_version: Literal[1] = 1
    payload: _PayloadV1


def _schema() -> Schema:
    return _EventV1.model_json_schema()


def _payload(schema: Schema) -> Schema:
    payload: Schema = schema["$defs"]["_PayloadV1"]
    return payload


def _changed(edit: Any) -> list[str]:
    new = copy.deepcopy(_schema())
    edit(_payload(new))
    return [f"{b.direction}: {b.path}: {b.reason}" for b in compare(_schema(), new)]


def test_the_same_schema_and_documentation_changes_are_compatible() -> None:
    assert compare(_schema(), _schema()) == []
    assert _changed(lambda p: p["properties"]["goal_id"].update(description="the goal", title="Goal")) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: p["properties"].pop("comment"), "backward: payload.comment: was removed"),
        (lambda p: p["required"].remove("goal_id"), "forward: payload.goal_id: is no longer required"),
        (lambda p: p["required"].append("comment"), "backward: payload.comment: became required"),
        (
            lambda p: p["properties"].update(extra={"type": "string"}),
            "forward: payload.extra: is new, and the released schema refuses unknown properties",
        ),
        (
            lambda p: (p["properties"].update(extra={"type": "string"}), p["required"].append("extra")),
            "backward: payload.extra: is new and required",
        ),
        (lambda p: p["properties"]["goal_id"].update(maxLength=32), "backward: payload.goal_id: maxLength tightened"),
        (lambda p: p["properties"]["goal_id"].update(maxLength=128), "forward: payload.goal_id: maxLength loosened"),
        (lambda p: p["properties"]["weight"].update(type="integer"), "backward: payload.weight: type number is no"),
        (lambda p: p["properties"]["weight"].update(type="string"), "forward: payload.weight: type string is new"),
        (lambda p: p["properties"]["status"]["enum"].remove("draft"), "backward: payload.status: value(s) ['draft']"),
        (lambda p: p["properties"]["status"]["enum"].append("late"), "forward: payload.status: value(s) ['late']"),
        (
            lambda p: p["properties"].update(comment={"type": "string"}),
            "backward: payload.comment: type null is no longer accepted",
        ),
        (lambda p: p["properties"]["goal_id"].update(pattern="^g"), "backward: payload.goal_id: pattern '^g' added"),
    ],
)
def test_each_incompatible_change_is_reported_with_its_direction(edit: Any, expected: str) -> None:
    found = _changed(edit)
    assert any(line.startswith(expected) for line in found), found


def test_a_deliberately_incompatible_contract_change_fails_the_check() -> None:
    """What the test above would say about a released schema edited in place, and how a new version passes."""

    class _PayloadEdited(_PayloadV1):
        reviewer_id: str  # a new required field, added to version 1 in place

    class _EventEdited(_EventV1):
        payload: _PayloadEdited

    released = {"domain_event.goal_thing.v1.json": _EventV1.model_json_schema()}
    edited = {"domain_event.goal_thing.v1.json": _EventEdited.model_json_schema()}
    problems = check(released, edited)
    assert problems and "payload.reviewer_id: is new and required" in problems[0]
    assert "raise schema_version" in problems[0]

    # the change as a new version: v1's model stays (the reader of what is on the topic), v2 is new
    class _EventV2(_EventEdited):
        schema_version: Literal[2] = 2  # type: ignore[assignment]

    both = {**released, "domain_event.goal_thing.v2.json": _EventV2.model_json_schema()}
    assert check(released, both) == []
    # dropping the old reader is a break of its own
    only_v2 = {"domain_event.goal_thing.v2.json": _EventV2.model_json_schema()}
    (gone,) = check(released, only_v2)
    assert gone.startswith("domain_event.goal_thing.v1.json: the released schema has no model any more")
