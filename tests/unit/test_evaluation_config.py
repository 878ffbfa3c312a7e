"""``contracts.evaluation.evaluation_config``: every scoring setting of a cycle template reaches the
evaluation service's configuration as it is (one grammar, no translation), and the evaluation
service scores with it as the template's own ``ScoringConfig`` would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts.evaluation import DEFAULT_COMPETENCIES, EvaluationConfig, evaluation_config
from contracts.scoring import DEFAULT_FORMULA, ScoringComponent, parse_formula
from contracts.templates import CycleTemplateSpec
from services.evaluation.scoring import final_score

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org" / "template.json"


BANDS = [("low", 0, 4), ("solid", 4, 8), ("top", 8, 10)]


def band(label: str, low: float, high: float) -> dict[str, Any]:
    return {"label": label, "min_score": low, "max_score": high}


def template(**changes: Any) -> CycleTemplateSpec:
    body = json.loads(SAMPLE.read_text())
    body.update(changes)
    return CycleTemplateSpec.model_validate(body)


def test_every_template_setting_reaches_the_config() -> None:
    spec = template(
        scoring={
            "weights": {"kpi": 40, "manager": 30, "peer": 15, "collaboration": 15},
            "rating_scale": {"min": 0, "max": 10, "bands": [band(*b) for b in BANDS]},
            "formula": "max(w_kpi * kpi + w_manager * manager + w_peer * peer + w_collaboration * collaboration, 1)",
        },
        calibration={
            "limits": [{"band": "top", "max_percent": 15}, {"band": "low", "min_percent": 5}],
            "min_group_size": 4,
        },
        peer_anonymity_threshold=5,
    )
    config = evaluation_config(spec)

    assert isinstance(config, EvaluationConfig)
    assert config.weights == {
        ScoringComponent.KPI: 40,
        ScoringComponent.MANAGER: 30,
        ScoringComponent.PEER: 15,
        ScoringComponent.COLLABORATION: 15,
    }
    assert config.formula == spec.scoring.formula  # the same grammar: passed as written
    assert config.rating_scale == spec.scoring.rating_scale
    assert [(b.label, b.min_score, b.max_score) for b in config.rating_scale.bands] == BANDS
    assert config.calibration == spec.calibration
    assert [(limit.band, limit.max_percent, limit.min_percent) for limit in config.calibration.limits] == [
        ("top", 15, None),
        ("low", None, 5),
    ]
    assert config.calibration.min_group_size == 4
    assert config.peer_anonymity_threshold == 5
    # what a template does not set keeps the evaluation defaults
    assert config.competencies == list(DEFAULT_COMPETENCIES)
    assert (config.attainment_cap, config.deviation_z_threshold) == (1.2, 1.0)
    # and the config travels over HTTP as JSON and comes back equal
    assert EvaluationConfig.model_validate_json(config.model_dump_json()) == config


def test_the_sample_template_scores_the_same_in_the_template_and_in_evaluation() -> None:
    spec = template()
    config = evaluation_config(spec)
    values: dict[str, float | None] = {c.value: None for c in ScoringComponent}
    values.update(kpi=3.6, manager=4.1, peer=4.0, self=2.0)  # cross_department and collaboration missing
    result = final_score(
        formula=parse_formula(config.formula),
        values=values,
        statuses={},
        ratings={},
        weights=config.weights,
        scale=config.rating_scale,
    )
    # cross_department (10%) missing: (0.5*3.6 + 0.25*4.1 + 0.1*4.0 + 0.05*2.0) / 0.9 = 3.325 / 0.9 = 3.69444
    assert result.score == pytest.approx(3.6944)
    assert spec.scoring.evaluate(values) == pytest.approx(3.325 / 0.9)
    assert result.rating == "meets"
    assert any("cross_department excluded" in n for n in result.notes)


def test_a_template_without_a_formula_uses_the_weighted_sum() -> None:
    body = json.loads(SAMPLE.read_text())
    del body["scoring"]["formula"]
    config = evaluation_config(CycleTemplateSpec.model_validate(body))
    assert config.formula == DEFAULT_FORMULA
    assert config.evaluate({"kpi": 5, "manager": 5}) == pytest.approx(5.0)  # missing components renormalised


def test_the_config_checks_calibration_bands_like_the_template() -> None:
    spec = template()
    with pytest.raises(ValueError, match=r"calibration.limits name unknown band\(s\) \['superstar'\]"):
        EvaluationConfig.model_validate(
            {
                **evaluation_config(spec).model_dump(),
                "calibration": {"limits": [{"band": "superstar", "max_percent": 5}]},
            }
        )
