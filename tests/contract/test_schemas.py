from __future__ import annotations

from contracts.schema_export import SCHEMA_DIR, render_schemas


def test_checked_in_json_schemas_are_current() -> None:
    rendered = render_schemas()
    stale = [
        name
        for name, text in rendered.items()
        if not (SCHEMA_DIR / name).exists() or (SCHEMA_DIR / name).read_text() != text
    ]
    assert not stale, f"stale JSON Schemas {stale}: run `python -m contracts.schema_export`"
    on_disk = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert on_disk == set(rendered), f"schemas without a model: {sorted(on_disk - set(rendered))}"


def test_metric_event_schema_documents_the_key_pattern() -> None:
    text = render_schemas()["metric_event.v1.json"]
    assert '"event_id"' in text and '"format": "uuid"' in text
