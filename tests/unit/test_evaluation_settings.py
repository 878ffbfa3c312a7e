"""A template's evaluation settings: lookup tables keyed by KPI template key, metric or goal id (no gaps,
no overlaps, every actual covered), competency weights, rater limits, and the configuration built from
the template keeping every one of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.evaluation import (
    DEFAULT_RATER_LIMITS,
    EvaluationConfig,
    EvaluationSettings,
    LookupTable,
    Relation,
    evaluation_config,
)
from contracts.templates import CycleTemplateSpec
from services.evaluation.scoring import lookup_rating
from services.evaluation.service.records import review_score

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org" / "template.json"


def rows(*bounds: float, ratings: tuple[float, ...]) -> list[dict[str, Any]]:
    """Contiguous rows: open below the first bound, open above the last."""
    edges: list[float | None] = [None, *bounds, None]
    return [
        {"min_actual": low, "max_actual": high, "rating": rating}
        for low, high, rating in zip(edges[:-1], edges[1:], ratings, strict=True)
    ]


def test_a_lookup_table_is_sorted_and_covers_every_actual() -> None:
    table = LookupTable.model_validate(
        {"metric": "sales.orders", "rows": list(reversed(rows(50, 100, ratings=(1, 3, 5))))}
    )
    assert table.key == ("metric", "sales.orders")
    assert [r.rating for r in table.rows] == [1, 3, 5]
    assert [lookup_rating(table.rows, a) for a in (-5, 49.9, 50, 99, 100, 1e9)] == [1, 1, 3, 3, 5, 5]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rows": rows(10, ratings=(1, 2))}, "names exactly one of template_key, metric or goal_id, got none"),
        ({"metric": "m", "goal_id": "g", "rows": rows(10, ratings=(1, 2))}, "got ['metric', 'goal_id']"),
        (
            {"metric": "m", "rows": [{"max_actual": 10, "rating": 1}, {"min_actual": 12, "rating": 2}]},
            "lookup table for metric 'm': gap between 10 and 12",
        ),
        (
            {"metric": "m", "rows": [{"max_actual": 10, "rating": 1}, {"min_actual": 8, "rating": 2}]},
            "rows overlap between 8 and 10",
        ),
        ({"metric": "m", "rows": [{"min_actual": 0, "rating": 1}]}, "the lowest row must be open below"),
        ({"template_key": "t", "rows": [{"max_actual": 5, "rating": 1}]}, "the highest row must be open above"),
    ],
)
def test_a_lookup_table_with_gaps_or_overlaps_is_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        LookupTable.model_validate(body)


def test_the_goal_id_table_wins_over_the_template_key_and_the_metric() -> None:
    settings = EvaluationSettings.model_validate(
        {
            "lookup_tables": [
                {"metric": "sales.orders", "rows": rows(ratings=(1,))},
                {"template_key": "sales-orders", "rows": rows(ratings=(2,))},
                {"goal_id": "g-7", "rows": rows(ratings=(3,))},
            ]
        }
    )

    def rating(**keys: Any) -> float | None:
        table = settings.table_for(**keys)
        return table.rows[0].rating if table else None

    assert rating(goal_ids=["g-7"], template_key="sales-orders", metric="sales.orders") == 3
    assert rating(goal_ids=["g-8"], template_key="sales-orders", metric="sales.orders") == 2
    assert rating(goal_ids=["g-8"], template_key=None, metric="sales.orders") == 1
    assert rating(goal_ids=["g-8"], template_key="other", metric="other") is None


def test_the_earlier_shape_of_lookup_tables_reads_as_goal_id_tables() -> None:
    settings = EvaluationSettings.model_validate({"lookup_tables": {"g-1": rows(ratings=(4,))}})
    assert [t.key for t in settings.lookup_tables] == [("goal_id", "g-1")]


def test_rater_limits_left_out_keep_their_defaults() -> None:
    settings = EvaluationSettings.model_validate({"rater_limits": {"peer": {"min": 2, "max": 4}}})
    assert settings.rater_limits[Relation.PEER].model_dump() == {"min": 2, "max": 4}
    assert settings.rater_limits[Relation.CROSS_DEPARTMENT] == DEFAULT_RATER_LIMITS[Relation.CROSS_DEPARTMENT]


def test_competency_weights_weigh_a_review() -> None:
    spec = CycleTemplateSpec.model_validate(
        {
            **json.loads(SAMPLE.read_text()),
            "evaluation": {
                "competencies": [
                    {"competency_id": "a", "name": "A", "weight": 75},
                    {"competency_id": "b", "name": "B", "scale_min": 0, "scale_max": 10, "weight": 25},
                ]
            },
        }
    )
    config = evaluation_config(spec)
    # a: 5 on 1..5 -> 5; b: 0 on 0..10 -> 1; (75*5 + 25*1) / 100 = 4.0
    assert review_score({"a": 5, "b": 0}, config) == pytest.approx(4.0)
    unweighted = EvaluationConfig.model_validate(
        {**config.model_dump(), "competencies": [{**c.model_dump(), "weight": None} for c in config.competencies]}
    )
    assert review_score({"a": 5, "b": 0}, unweighted) == pytest.approx(3.0)


def test_every_evaluation_setting_of_the_template_reaches_the_config() -> None:
    settings = {
        "competencies": [{"competency_id": "x", "name": "X"}],
        "rater_limits": {"peer": {"min": 1, "max": 9}, "cross_department": {"min": 0, "max": 4}},
        "lookup_tables": [{"template_key": "k", "rows": rows(3, ratings=(1, 5))}],
        "attainment_cap": 1.4,
        "deviation_z_threshold": 0.8,
        "peer_visibility": "counts_only",
        "collaboration": {"min_rater_departments": 3},
    }
    spec = CycleTemplateSpec.model_validate({**json.loads(SAMPLE.read_text()), "evaluation": settings})
    config = evaluation_config(spec).model_dump(mode="json")
    for name, value in EvaluationSettings.model_validate(settings).model_dump(mode="json").items():
        assert config[name] == value, name
