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
