from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.events import MetricEvent


def event(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "source": "crm",
        "department_id": "sales",
        "metric": "sales.revenue",
        "value": 1250.5,
        "unit": "EUR",
        "occurred_at": "2026-03-01T10:00:00Z",
    }
    data.update(overrides)
    return data


def test_valid_event_round_trips_and_keys_by_department_and_metric() -> None:
    parsed = MetricEvent.model_validate(event(dimensions={"region": "EMEA"}))
    assert parsed.message_key == "sales:sales.revenue"
    assert parsed.occurred_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert MetricEvent.model_validate_json(parsed.model_dump_json()) == parsed


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("event_id", "not-a-uuid", "uuid"),
        ("value", float("nan"), "finite"),
        ("value", float("inf"), "finite"),
        ("occurred_at", "2026-03-01T10:00:00", "timezone"),
        ("metric", "Sales Revenue", "not a valid key"),
        ("metric", "sales..revenue", "not a valid key"),
        ("unit", "", "at least 1 character"),
        ("schema_version", 2, "1"),
        # overflow-prone values: refused with a reason instead of failing the batch forever
        ("value", 1e308, "between -1e15 and 1e15"),
        ("value", -1.5e15, "between -1e15 and 1e15"),
        ("occurred_at", "0001-01-01T00:30:00+01:00", "from 1900-01-01"),
        ("occurred_at", "9999-12-31T23:30:00-01:00", "from 1900-01-01"),
        ("occurred_at", "2200-01-01T00:30:00-01:00", "up to (not including) 2200"),
    ],
)
def test_invalid_field_is_rejected_with_a_reason(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        MetricEvent.model_validate(event(**{field: value}))
    errors = info.value.errors()
    assert errors[0]["loc"][0] == field
    assert message in str(info.value)


def test_unit_is_required_and_unknown_fields_are_refused() -> None:
    data = event()
    del data["unit"]
    with pytest.raises(ValidationError, match="unit"):
        MetricEvent.model_validate(data)
    with pytest.raises(ValidationError, match="extra"):
        MetricEvent.model_validate(event(surprise=1))


@pytest.mark.parametrize(
    ("value", "occurred_at"),
    [(1e15, "1900-01-01T00:00:00Z"), (-1e15, "2199-12-31T23:59:59.999999Z"), (0.0, "1900-01-01T01:00:00+01:00")],
)
def test_values_and_instants_at_the_bounds_are_accepted(value: float, occurred_at: str) -> None:
    assert MetricEvent.model_validate(event(value=value, occurred_at=occurred_at)).value == value
