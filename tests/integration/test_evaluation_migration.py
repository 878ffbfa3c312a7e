"""Configurations stored before the one scoring contract are carried over by the migration and score as
before; one the grammar can no longer express answers a clear 409 instead of a server error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from contracts.evaluation import EvaluationConfig
from contracts.scoring import ScoringComponent, parse_formula
from services.common.db import create_engine
from services.common.errors import DomainError
from services.common.migrations import alembic_config, upgrade
from services.evaluation.models import EvaluationInput
from services.evaluation.scoring import final_score
from services.evaluation.service.records import parse_config

BEFORE = "0557ad7ab53a"
BANDS = [("below", 1, 2.5), ("meets", 2.5, 3.5), ("exceeds", 3.5, 4.5), ("outstanding", 4.5, 5)]


def old_config(**changes: Any) -> dict[str, Any]:
    """A configuration as the evaluation service stored it before (its default shape)."""
    config: dict[str, Any] = {
        "rating_scale": {"min": 1, "max": 5, "bands": [{"label": n, "min": lo, "max": hi} for n, lo, hi in BANDS]},
        "competencies": [{"competency_id": "overall", "name": "Overall", "scale_min": 1, "scale_max": 5}],
        "component_weights": {"goals": 50, "manager": 30, "peer": 20, "collaboration": 10},
        "formula": "weighted()",
        "calibration_guideline": [{"label": "outstanding", "max_share": 0.2, "min_share": 0.0}],
        "peer_anonymity_threshold": 3,
        "attainment_cap": 1.2,
        "rater_limits": {"peer": {"min": 0, "max": 3}},
        "lookup_tables": {},
        "deviation_z_threshold": 1.0,
    }
    return {**config, **changes}


STORED = {
    "weighted": old_config(),
    # what the workflow sent for the sample template: its formula with the weights as numbers
    "translated": old_config(
        component_weights={"goals": 50, "manager": 25, "peer": 10, "cross_department": 10, "self": 5},
        formula="0.5 * goals + 0.25 * manager + 0.1 * peer + 0.1 * cross_department + 0.05 * self",
        calibration_guideline=[{"label": "meets", "max_share": 1.0, "min_share": 0.25}],
    ),
    "inline": old_config(formula="round(weighted(goals=60, manager=40), 2)"),
}


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config("evaluation")
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def _payloads(url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            rows = (await conn.execute(select(EvaluationInput.cycle_id, EvaluationInput.payload))).all()
    finally:
        await engine.dispose()
    return {cycle_id: json.loads(payload) for cycle_id, payload in rows}


def _score(config: EvaluationConfig, **values: float) -> float | None:
    full: dict[str, float | None] = {c.value: None for c in ScoringComponent}
    full.update(values)
    formula = parse_formula(config.formula)
    scale = config.rating_scale
    return final_score(formula=formula, values=full, statuses={}, ratings={}, weights=config.weights, scale=scale).score


async def test_stored_configurations_are_carried_over(database_url: str) -> None:
    await upgrade("evaluation", database_url, BEFORE)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            rows = [
                {
                    "cycle_id": cycle_id,
                    "kind": "config",
                    "payload": json.dumps(payload),
                    "received_at": datetime.now(UTC),
                    "received_by": "hr",
                }
                for cycle_id, payload in STORED.items()
            ]
            await conn.execute(insert(EvaluationInput), rows)
    finally:
        await engine.dispose()

    await upgrade("evaluation", database_url)
    stored = await _payloads(database_url)
    weighted = parse_config(json.dumps(stored["weighted"]), "weighted")
    assert weighted.formula == "w_kpi * kpi + w_manager * manager + w_peer * peer + w_collaboration * collaboration"
    assert sum(weighted.weights.values()) == pytest.approx(100)
    assert [(b.label, b.min_score, b.max_score) for b in weighted.rating_scale.bands] == BANDS
    assert [(limit.band, limit.max_percent, limit.min_percent) for limit in weighted.calibration.limits] == [
        ("outstanding", 20, None)
    ]
    assert weighted.competencies[0].competency_id == "overall"  # the rest passes unchanged
    # the numbers of test_evaluation_api: peer missing (50*3.6 + 30*4.1 + 10*4) / 90 = 3.8111; all 3.8455
    assert _score(weighted, kpi=3.6, manager=4.1, collaboration=4.0) == 3.8111
    assert _score(weighted, kpi=3.6, manager=4.1, peer=4.0, collaboration=4.0) == 3.8455

    translated = parse_config(json.dumps(stored["translated"]), "translated")
    assert translated.formula == "0.5 * kpi + 0.25 * manager + 0.1 * peer + 0.1 * cross_department + 0.05 * self"
    assert translated.weights[ScoringComponent.KPI] == 50
    # cross_department missing: (0.5*3.6 + 0.25*4.1 + 0.1*4.0 + 0.05*2.0) / 0.9 = 3.69444
    assert _score(translated, kpi=3.6, manager=4.1, peer=4.0, self=2.0) == 3.6944
    assert [(limit.band, limit.max_percent, limit.min_percent) for limit in translated.calibration.limits] == [
        ("meets", 100, 25)
    ]

    with pytest.raises(DomainError) as refused:
        parse_config(json.dumps(stored["inline"]), "inline")
    assert refused.value.status_code == 409 and "PUT /v1/cycles/inline/config again" in refused.value.message

    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, BEFORE)
    finally:
        await engine.dispose()
    back = await _payloads(database_url)
    assert back["translated"]["formula"] == STORED["translated"]["formula"]
    assert back["translated"]["rating_scale"] == STORED["translated"]["rating_scale"]
    assert back["weighted"]["calibration_guideline"] == [{"label": "outstanding", "max_share": 0.2, "min_share": 0.0}]
    assert "goals" in back["weighted"]["formula"] and "w_" not in back["weighted"]["formula"]
    assert set(back["weighted"]["component_weights"]) == {"goals", "manager", "peer", "collaboration"}
