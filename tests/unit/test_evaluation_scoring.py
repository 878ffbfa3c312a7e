"""Golden scoring tests: every expected number is worked out by hand in the comment beside it."""

from __future__ import annotations

import math

import pytest

from contracts.evaluation import LookupRow
from contracts.goals import Direction, ExportedGoal, GoalLevel
from contracts.scoring import (
    DEFAULT_FORMULA,
    BandLimit,
    CalibrationGuideline,
    RatingBand,
    RatingScale,
    ScoringComponent,
    parse_formula,
)
from services.evaluation.scoring import (
    attainment_score,
    deviation_report,
    distribution_report,
    final_score,
    goal_attainment,
    goal_score,
    lookup_rating,
    scale_value,
)

HIGHER = Direction.HIGHER_IS_BETTER
LOWER = Direction.LOWER_IS_BETTER

SCALE = RatingScale(
    min=1,
    max=5,
    bands=[
        RatingBand(label="below", min_score=1, max_score=2.5),
        RatingBand(label="meets", min_score=2.5, max_score=3.5),
        RatingBand(label="exceeds", min_score=3.5, max_score=4.5),
        RatingBand(label="outstanding", min_score=4.5, max_score=5),
    ],
)


def goal(
    goal_id: str,
    *,
    weight: float,
    start: float,
    target: float,
    direction: Direction = HIGHER,
    threshold: float | None = None,
    stretch: float | None = None,
    kpi_id: str | None = "kpi",
) -> ExportedGoal:
    return ExportedGoal(
        goal_id=goal_id,
        level=GoalLevel.INDIVIDUAL,
        name=goal_id,
        employee_id="e1",
        kpi_id=kpi_id,
        weight=weight,
        unit="u",
        direction=direction,
        start_value=start,
        target_value=target,
        threshold_value=threshold,
        stretch_value=stretch,
    )


# -- attainment -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (150, 0.5),  # (150-100)/(200-100)
        (200, 1.0),  # on target
        (260, 1.2),  # 1.6, capped at 1.2
        (80, 0.0),  # -0.2, floored at 0
    ],
)
def test_higher_is_better_linear(actual: float, expected: float) -> None:
    assert attainment_score(direction=HIGHER, start=100, target=200, actual=actual, cap=1.2) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (7, 0.6),  # (7-10)/(5-10) = -3/-5
        (4.5, 1.1),  # (4.5-10)/(5-10) = 5.5/5: below target is over-achievement
        (4, 1.2),  # 6/5 = 1.2 = the cap
        (3, 1.2),  # 7/5 = 1.4, capped
        (12, 0.0),  # worse than the start
    ],
)
def test_lower_is_better_counts_below_target_as_over_achievement(actual: float, expected: float) -> None:
    assert attainment_score(direction=LOWER, start=10, target=5, actual=actual, cap=1.2) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (40, 0.0),  # below the threshold 50
        (50, 0.0),  # threshold -> 0
        (75, 0.5),  # (75-50)/(100-50)
        (100, 1.0),  # target -> 1
        (125, 1.1),  # 1 + (1.2-1) * (125-100)/(150-100)
        (150, 1.2),  # stretch -> cap
        (200, 1.2),  # beyond stretch stays at the cap
    ],
)
def test_threshold_and_stretch_are_piecewise(actual: float, expected: float) -> None:
    value = attainment_score(direction=HIGHER, start=0, target=100, actual=actual, cap=1.2, threshold=50, stretch=150)
    assert value == pytest.approx(expected)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (16, 0.0),  # worse (higher) than the threshold 15
        (12.5, 0.5),  # (15-12.5)/(15-10)
        (7.5, 1.25),  # 1 + (1.5-1) * (10-7.5)/(10-5)
        (1, 1.5),  # past the stretch: the cap 1.5
    ],
)
def test_threshold_and_stretch_for_lower_is_better(actual: float, expected: float) -> None:
    value = attainment_score(direction=LOWER, start=20, target=10, actual=actual, cap=1.5, threshold=15, stretch=5)
    assert value == pytest.approx(expected)


def test_cap_is_configurable() -> None:
    # (300-100)/(200-100) = 2.0; cap 1.5 -> 1.5; cap 3 -> 2.0
    assert attainment_score(direction=HIGHER, start=100, target=200, actual=300, cap=1.5) == pytest.approx(1.5)
    assert attainment_score(direction=HIGHER, start=100, target=200, actual=300, cap=3.0) == pytest.approx(2.0)


def test_lookup_table_maps_actual_ranges_to_a_rating() -> None:
    rows = [
        LookupRow(max_actual=50, rating=1),
        LookupRow(min_actual=50, max_actual=80, rating=3),
        LookupRow(min_actual=80, rating=5),
    ]
    assert lookup_rating(rows, 49.9) == 1
    assert lookup_rating(rows, 50) == 3  # lower bound inclusive
    assert lookup_rating(rows, 80) == 5  # upper bound exclusive
    result = goal_attainment(goal("g", weight=100, start=0, target=100), actual=65, cap=1.2, scale=SCALE, lookup=rows)
    # rating 3 on 1..5 maps back onto 0..1.2: (3-1)/(5-1) * 1.2 = 0.6 (the linear rule would give 0.65)
    assert result.method == "lookup"
    assert result.attainment == pytest.approx(0.6)


def test_lookup_gap_falls_back_to_linear_with_a_note() -> None:
    rows = [LookupRow(min_actual=90, rating=5)]
    result = goal_attainment(goal("g", weight=100, start=0, target=100), actual=65, cap=1.2, scale=SCALE, lookup=rows)
    assert result.method == "linear" and result.attainment == pytest.approx(0.65)
    assert result.note is not None and "outside every lookup range" in result.note


# -- goal score -------------------------------------------------------------------------------
def test_goal_score_is_the_weighted_sum_with_breakdown() -> None:
    a = goal_attainment(goal("a", weight=60, start=0, target=100), actual=50, cap=1.2, scale=SCALE)
    b = goal_attainment(goal("b", weight=40, start=10, target=5, direction=LOWER), actual=4, cap=1.2, scale=SCALE)
    score = goal_score([a, b])
    # 0.60 * 0.5 + 0.40 * 1.2 = 0.30 + 0.48 = 0.78
    assert score.score == pytest.approx(0.78)
    assert [g.contribution for g in score.goals] == [pytest.approx(0.30), pytest.approx(0.48)]
    assert score.notes == []
    # onto the 1..5 scale with cap 1.2: 1 + 0.78 * 4 / 1.2 = 3.6
    assert scale_value(0.78, 0, 1.2, 1, 5) == pytest.approx(3.6)


def test_goal_without_actual_is_excluded_and_weights_renormalised() -> None:
    a = goal_attainment(goal("a", weight=60, start=0, target=100), actual=50, cap=1.2, scale=SCALE)
    b = goal_attainment(goal("b", weight=40, start=0, target=10), actual=None, cap=1.2, scale=SCALE)
    score = goal_score([a, b])
    # only goal a counts: 60 * 0.5 / 60 = 0.5 (not 0.30, which would punish missing data as zero)
    assert score.score == pytest.approx(0.5)
    assert any("goal b excluded" in n for n in score.notes)
    assert any("sum to 60" in n for n in score.notes)


def test_no_goal_data_means_no_goal_score() -> None:
    b = goal_attainment(goal("b", weight=100, start=0, target=10, kpi_id=None), actual=None, cap=1.2, scale=SCALE)
    assert goal_score([b]).score is None


# -- normalisation and bands ------------------------------------------------------------------
def test_competency_scales_are_normalised_onto_the_rating_scale() -> None:
    assert scale_value(7, 0, 10, 1, 5) == pytest.approx(3.8)  # 1 + 7 * 4 / 10
    assert scale_value(3, 1, 4, 1, 5) == pytest.approx(3.6667, abs=1e-4)  # 1 + 2 * 4 / 3


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (1, "below"),
        (2.4999, "below"),
        (2.5, "meets"),
        (3.4999, "meets"),
        (3.5, "exceeds"),
        (4.5, "outstanding"),
        (5, "outstanding"),
    ],
)
def test_band_boundaries(score: float, band: str) -> None:
    assert SCALE.band_for(score) == band


# -- final score ------------------------------------------------------------------------------
WEIGHTS = {ScoringComponent.KPI: 50.0, ScoringComponent.MANAGER: 30.0, ScoringComponent.PEER: 20.0}


def _final(
    formula: str, values: dict[str, float | None], weights: dict[ScoringComponent, float] | None = None
) -> tuple[float | None, list[str]]:
    full: dict[str, float | None] = {c.value: None for c in ScoringComponent}
    full.update(values)
    result = final_score(
        formula=parse_formula(formula), values=full, statuses={}, ratings={}, weights=weights or WEIGHTS, scale=SCALE
    )
    return result.score, result.notes


def test_missing_component_is_excluded_not_averaged_as_zero() -> None:
    # The known failure: (5 + 5 + 0) / 3 = 3.33. Excluding peer and renormalising 50/30 gives 5.
    score, notes = _final(DEFAULT_FORMULA, {"kpi": 5, "manager": 5})
    assert score == 5.0
    assert any("peer excluded" in n and "renormalised" in n for n in notes)


def test_default_formula_is_the_weighted_sum() -> None:
    # 0.5*4 + 0.3*3 + 0.2*2 = 2 + 0.9 + 0.4 = 3.3; components without a weight (self...) weigh 0
    assert _final(DEFAULT_FORMULA, {"kpi": 4, "manager": 3, "peer": 2, "self": 1})[0] == pytest.approx(3.3)


def test_weight_variables_follow_the_configured_weights() -> None:
    # (2*4 + 1*2.5) / 3 = 10.5 / 3 = 3.5 with weights 2:1 given as percent 66.67/33.33
    weights = {ScoringComponent.KPI: 200 / 3, ScoringComponent.MANAGER: 100 / 3}
    assert _final("w_kpi * kpi + w_manager * manager", {"kpi": 4, "manager": 2.5}, weights)[0] == 3.5


def test_linear_formula_renormalises_over_present_components() -> None:
    # 0.5*4 + 0.3*3 = 2.9 over the present weight 0.8 -> 2.9 / 0.8 = 3.625
    score, notes = _final("0.5*kpi + 0.3*manager + 0.2*peer", {"kpi": 4, "manager": 3})
    assert score == pytest.approx(3.625)
    assert any("peer excluded" in n for n in notes)
    # all present: 2 + 0.9 + 0.4 = 3.3
    assert _final("0.5*kpi + 0.3*manager + 0.2*peer", {"kpi": 4, "manager": 3, "peer": 2})[0] == pytest.approx(3.3)


def test_five_and_five_stay_five_in_a_linear_formula() -> None:
    assert _final("(kpi + manager + peer) / 3", {"kpi": 5, "manager": 5})[0] == 5.0


def test_min_ignores_missing_arguments_and_nonlinear_needs_its_inputs() -> None:
    assert _final("min(kpi, peer)", {"kpi": 4})[0] == 4.0
    score, notes = _final("kpi * manager / 5", {"kpi": 4})
    assert score is None
    assert any("missing component" in n for n in notes)


def test_result_is_clamped_onto_the_scale_and_banded() -> None:
    # 4 * 2 = 8 -> clamped to 5 -> 'outstanding'
    score, notes = _final("kpi * 2", {"kpi": 4.0}, {ScoringComponent.KPI: 100})
    assert score == 5.0 and SCALE.band_for(score) == "outstanding"
    assert any("clamped" in n for n in notes)


def test_breakdown_lists_every_component_with_its_weights() -> None:
    full: dict[str, float | None] = {c.value: None for c in ScoringComponent}
    full.update(kpi=4.0, manager=3.0)
    result = final_score(
        formula=parse_formula(DEFAULT_FORMULA), values=full, statuses={}, ratings={}, weights=WEIGHTS, scale=SCALE
    )
    by_name = {c.name: c for c in result.components}
    assert list(by_name) == [c.value for c in ScoringComponent]
    assert (by_name["kpi"].configured_weight, by_name["kpi"].effective_weight) == (50.0, 0.625)  # 50 / 80
    assert (by_name["peer"].status, by_name["peer"].effective_weight) == ("missing", None)


def test_no_component_at_all_gives_no_score() -> None:
    assert _final(DEFAULT_FORMULA, {})[0] is None


# -- calibration reports ----------------------------------------------------------------------
def test_distribution_flags_a_band_above_its_guideline() -> None:
    ratings = ["outstanding"] * 3 + ["exceeds"] * 3 + ["meets"] * 4
    report = distribution_report(
        ratings,
        scale=SCALE,
        guideline=CalibrationGuideline(
            limits=[BandLimit(band="outstanding", max_percent=20), BandLimit(band="meets", min_percent=50)]
        ),
    )
    top = report.bands[0]
    assert (top.label, top.count, top.share, top.max_count) == ("outstanding", 3, 0.3, 2)  # 20% of 10 = 2
    assert top.violation is not None and "exceeds" in top.violation
    meets = next(b for b in report.bands if b.label == "meets")
    assert meets.violation is not None and "below the guideline minimum" in meets.violation  # 40% < 50%
    assert (meets.max_share, meets.min_share, meets.max_count) == (1.0, 0.5, 10)  # no maximum: up to 100%
    assert next(b for b in report.bands if b.label == "below").max_share is None  # no limit for the band
    assert len(report.violations) == 2


def test_deviation_flags_lenient_and_strict_groups_by_z_score() -> None:
    company = [5, 5, 1, 1, 3, 3]  # mean 3, population stdev sqrt(16/6) = 1.63299
    report = {
        g.group_id: g
        for g in deviation_report({"a": [5, 5], "b": [1, 1], "c": [3, 3]}, company=company, z_threshold=1.0)
    }
    assert report["a"].z_score == pytest.approx(2 / math.sqrt(16 / 6), abs=1e-4)  # 1.2247
    assert (report["a"].flag, report["b"].flag, report["c"].flag) == ("lenient", "strict", None)
    assert report["b"].difference == -2.0
