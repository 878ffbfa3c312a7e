"""Every domain event has a model; the outbox refuses what its model refuses, before anything is written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from contracts.domain_events import (
    DOMAIN_EVENTS,
    GoalApproved,
    GoalsFrozenPayload,
    GoalTransition,
    InvalidDomainEvent,
    TypedDomainEvent,
    UnknownDomainEvent,
    build_event,
    event_model,
    parse_domain_event,
)
from contracts.events import DomainEvent
from contracts.feedback import FeedbackEventType
from contracts.schema_export import SCHEMA_MODELS, schema_mode
from services.common.outbox import OutboxMixin, add_event, new_event


def example_value(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A valid instance of a pydantic JSON Schema (every property filled): one event of each type."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return example_value(target, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"] or schema["anyOf"]
        return example_value(branches[0], root)
    kind = schema.get("type")
    if kind == "object":
        extra = schema.get("additionalProperties")
        if "properties" not in schema and isinstance(extra, dict):
            return {"key": example_value(extra, root)}
        return {name: example_value(sub, root) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_value(schema.get("items", {}), root)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("format") == "date-time":
        return datetime(2026, 3, 1, 12, tzinfo=UTC).isoformat()
    if schema.get("format") == "date":
        return "2026-03-01"
    return ("x" * max(int(schema.get("minLength", 1)), 3))[: int(schema.get("maxLength", 64))]


def example_event(model: type[TypedDomainEvent], cycle_id: str = "cy-1") -> dict[str, Any]:
    schema = model.model_json_schema(mode=schema_mode(model))
    event: dict[str, Any] = example_value(schema, schema)
    event["cycle_id"] = cycle_id
    return event


def test_every_event_type_has_one_model_per_version_and_an_exported_schema() -> None:
    keys = [(m.event_type(), m.version()) for m in DOMAIN_EVENTS]
    assert len(set(keys)) == len(keys)
    assert {t.value for t in FeedbackEventType} <= {t for t, _ in keys}
    exported = {m for m in SCHEMA_MODELS.values() if isinstance(m, type) and issubclass(m, TypedDomainEvent)}
    assert exported == set(DOMAIN_EVENTS)
    assert SCHEMA_MODELS["domain_event.goal_approved.v1"] is GoalApproved


@pytest.mark.parametrize("model", DOMAIN_EVENTS, ids=lambda m: m.event_type())
def test_each_type_round_trips_through_the_envelope(model: type[TypedDomainEvent]) -> None:
    event = model.model_validate(example_event(model))
    wire = event.model_dump_json()
    assert DomainEvent.model_validate_json(wire).type == model.event_type()  # the envelope reads every event
    parsed = parse_domain_event(wire)
    assert type(parsed) is model and parsed == event
    schema = model.model_json_schema(mode="serialization")
    assert {"event_id", "type", "schema_version", "payload", "occurred_at"} <= set(schema["required"])


def test_build_event_refuses_a_payload_that_does_not_fit_with_the_field() -> None:
    with pytest.raises(InvalidDomainEvent, match=r"'GoalsFrozen' v1 does not match its contract: payload\.frozen_by"):
        build_event(service="goals", type="GoalsFrozen", cycle_id="c", payload={"goals_by_status": {}})
    with pytest.raises(InvalidDomainEvent, match="carries a GoalTransition payload, not a GoalsFrozenPayload"):
        build_event(service="goals", type="GoalApproved", payload=GoalsFrozenPayload(goals_by_status={}, frozen_by="x"))
    with pytest.raises(UnknownDomainEvent, match="no contract for domain event 'GoalTeleported'"):
        build_event(service="goals", type="GoalTeleported", payload={})
    with pytest.raises(UnknownDomainEvent, match="'GoalApproved' version 9"):
        event_model("GoalApproved", 9)


class _Base(DeclarativeBase):
    pass


class _Outbox(OutboxMixin, _Base):
    __tablename__ = "test_outbox"


class _Session:
    """Collects what ``add_event`` stages (the outbox writes nothing else)."""

    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, row: Any) -> None:
        self.added.append(row)


def _session() -> tuple[_Session, AsyncSession]:
    fake = _Session()
    return fake, fake  # type: ignore[return-value]


def test_the_outbox_refuses_an_invalid_event_before_writing_it() -> None:
    fake, session = _session()
    untyped = DomainEvent(
        event_id=uuid.uuid4(),
        type="GoalApproved",
        service="goals",
        cycle_id="c",
        occurred_at=datetime.now(UTC),
        payload={"goal_id": "g1", "level": "individual"},
    )
    with pytest.raises(InvalidDomainEvent, match="payload.from_status: Field required"):
        add_event(session, _Outbox, untyped)
    unknown = untyped.model_copy(update={"type": "Whatever"})
    with pytest.raises(UnknownDomainEvent):
        add_event(session, _Outbox, unknown)
    assert fake.added == []

    good = new_event(
        service="goals",
        type="GoalApproved",
        cycle_id="c",
        subject_id="g1",
        payload=GoalTransition(
            goal_id="g1",
            level="individual",
            employee_id="e1",
            department_id="d1",
            from_status="submitted",
            to_status="approved",
            actor="m1",
            comment=None,
        ),
    )
    add_event(session, _Outbox, good)
    (row,) = fake.added
    assert (row.event_type, row.key, row.topic) == ("GoalApproved", "c", "cycle.events.v1")
    assert type(parse_domain_event(row.payload)) is GoalApproved


def test_a_payload_model_is_typed_not_a_dict() -> None:
    annotations = {m.event_type(): m.model_fields["payload"].annotation for m in DOMAIN_EVENTS}
    assert all(isinstance(a, type) and issubclass(a, BaseModel) for a in annotations.values()), annotations
