"""Pure scoring rules: KPI attainment, goal score, scale normalisation, the final score and
its breakdown, the distribution and the deviation reports.

The final-score formula, its grammar and the rating scale are the scoring contract
(``contracts.scoring``), the same one templates are validated with; this module applies them.
Nothing here touches a database or HTTP, so every rule can be checked by hand in a
unit test. Scores move between three kinds of scale:

* goal attainment, a fraction in ``0..cap`` (1.0 = target reached);
* each competency's own scale (``scale_min..scale_max``);
* the cycle's rating scale (``min..max``), on which every component and the final
  score are expressed. ``scale_value`` is the one linear mapping between them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from contracts.evaluation import LookupRow
from contracts.goals import Direction, ExportedGoal
from contracts.scoring import CalibrationGuideline, Formula, RatingScale, ScoringComponent, evaluate_formula

__all__ = [
    "BandShare",
    "ComponentBreakdown",
    "DistributionReport",
    "FinalScore",
    "GoalAttainment",
    "GoalScore",
    "GroupDeviation",
    "attainment_score",
    "bound_component",
    "deviation_report",
    "distribution_report",
    "final_score",
    "goal_attainment",
    "goal_score",
    "lookup_rating",
    "scale_value",
]

_EPS = 1e-9


# -- normalisation ----------------------------------------------------------------------------
def scale_value(value: float, src_min: float, src_max: float, dst_min: float, dst_max: float) -> float:
    """Map ``value`` linearly from ``src_min..src_max`` onto ``dst_min..dst_max``."""
    if src_max == src_min:
        raise ValueError("source scale is empty (min == max)")
    return dst_min + (value - src_min) * (dst_max - dst_min) / (src_max - src_min)


# -- KPI attainment ---------------------------------------------------------------------------
def attainment_score(
    *,
    direction: Direction,
    start: float,
    target: float,
    actual: float,
    cap: float,
    threshold: float | None = None,
    stretch: float | None = None,
) -> float:
    """Attainment of one KPI, in ``0..cap``.

    Without threshold/stretch it is ``(actual - start) / (target - start)``. Values are
    compared in "goodness" space (negated for lower-is-better), so a lower-is-better KPI
    that ends below its target is over-achieved. With a threshold, actuals worse than
    it score 0 and the threshold->target segment maps onto 0->1; with a stretch point,
    the target->stretch segment maps onto 1->cap. The result is clamped to ``0..cap``.
    """
    sign = 1.0 if direction == Direction.HIGHER_IS_BETTER else -1.0
    a, s, t = sign * actual, sign * start, sign * target
    if threshold is not None and a < sign * threshold:
        return 0.0
    if a < t:
        if threshold is not None:
            th = sign * threshold
            value = (a - th) / (t - th)
        else:
            value = (a - s) / (t - s) if t != s else 0.0
    elif stretch is not None:
        st = sign * stretch
        value = 1.0 + (cap - 1.0) * (a - t) / (st - t)
    else:
        value = (a - s) / (t - s) if t != s else 1.0
    return min(max(value, 0.0), cap)


def lookup_rating(rows: Sequence[LookupRow], actual: float) -> float | None:
    """The rating of the first row whose ``[min_actual, max_actual)`` holds ``actual``."""
    for row in rows:
        if row.min_actual is not None and actual < row.min_actual:
            continue
        if row.max_actual is not None and actual >= row.max_actual:
            continue
        return row.rating
    return None


class GoalAttainment(BaseModel):
    goal_id: str
    name: str
    kpi_id: str | None
    weight: float
    direction: Direction
    start_value: float
    target_value: float
    threshold_value: float | None = None
    stretch_value: float | None = None
    actual_value: float | None
    attainment: float | None = Field(description="0..cap; None when the goal has no actual value.")
    method: str = Field(description="'linear', 'threshold_stretch', 'lookup' or 'missing'.")
    contribution: float | None = Field(default=None, description="Share of the goal score: weight x attainment.")
    note: str | None = None


def goal_attainment(
    goal: ExportedGoal,
    *,
    actual: float | None,
    cap: float,
    scale: RatingScale,
    lookup: Sequence[LookupRow] | None = None,
) -> GoalAttainment:
    """Attainment of one goal; a lookup-table rating is mapped back onto ``0..cap``."""
    base = GoalAttainment(
        goal_id=goal.goal_id,
        name=goal.name,
        kpi_id=goal.kpi_id,
        weight=goal.weight,
        direction=goal.direction,
        start_value=goal.start_value,
        target_value=goal.target_value,
        threshold_value=goal.threshold_value,
        stretch_value=goal.stretch_value,
        actual_value=actual,
        attainment=None,
        method="missing",
    )
    if actual is None:
        reason = "no KPI tracks it" if goal.kpi_id is None else f"no actual value for KPI {goal.kpi_id!r}"
        return base.model_copy(update={"note": f"excluded: {reason}"})
    if lookup:
        rating = lookup_rating(lookup, actual)
        if rating is not None:
            value = scale_value(rating, scale.min, scale.max, 0.0, cap)
            return base.model_copy(
                update={
                    "attainment": value,
                    "method": "lookup",
                    "note": f"lookup table: actual {actual:g} -> rating {rating:g}",
                }
            )
        note: str | None = f"actual {actual:g} is outside every lookup range; linear attainment used"
    else:
        note = None
    value = attainment_score(
        direction=goal.direction,
        start=goal.start_value,
        target=goal.target_value,
        actual=actual,
        cap=cap,
        threshold=goal.threshold_value,
        stretch=goal.stretch_value,
    )
    method = "threshold_stretch" if goal.threshold_value is not None or goal.stretch_value is not None else "linear"
    return base.model_copy(update={"attainment": value, "method": method, "note": note})


class GoalScore(BaseModel):
    score: float | None = Field(description="Weighted attainment, 0..cap; None when no goal has data.")
    weight_used: float
    goals: list[GoalAttainment]
    notes: list[str] = Field(default_factory=list)


def goal_score(goals: Sequence[GoalAttainment]) -> GoalScore:
    """``sum(weight/100 x attainment)``; goals without data are excluded and the rest renormalised."""
    scored = [g for g in goals if g.attainment is not None and g.weight > 0]
    used = sum(g.weight for g in scored)
    notes = [f"goal {g.goal_id} {g.note}" for g in goals if g.attainment is None and g.note]
    if not scored or used <= 0:
        return GoalScore(score=None, weight_used=0.0, goals=list(goals), notes=notes or ["no goal has data"])
    if abs(used - 100.0) > _EPS:
        notes.append(f"weights of scored goals sum to {used:g}, not 100; renormalised to 100")
    breakdown = [
        g.model_copy(update={"contribution": g.weight / used * g.attainment}) if g.attainment is not None else g
        for g in goals
    ]
    score = sum(g.weight * (g.attainment or 0.0) for g in scored) / used
    return GoalScore(score=score, weight_used=used, goals=breakdown, notes=notes)


# -- final score ------------------------------------------------------------------------------
class ComponentBreakdown(BaseModel):
    name: str
    value: float | None = Field(description="On the rating scale; None when missing or hidden.")
    status: str = Field(description="'present', 'missing' or 'below_anonymity_threshold'.")
    configured_weight: float = 0.0
    effective_weight: float | None = Field(default=None, description="Share after renormalisation.")
    ratings: int | None = Field(
        default=None,
        description="Submitted reviews behind a relation component; rating departments behind collaboration.",
    )


class FinalScore(BaseModel):
    score: float | None
    rating: str | None
    components: list[ComponentBreakdown]
    notes: list[str] = Field(default_factory=list)


def final_score(
    *,
    formula: Formula,
    values: Mapping[str, float | None],
    statuses: Mapping[str, str],
    ratings: Mapping[str, int],
    weights: Mapping[ScoringComponent, float],
    scale: RatingScale,
) -> FinalScore:
    """Evaluate the formula, clamp onto the rating scale, round to 4 decimals and band it."""
    value, notes, effective = evaluate_formula(formula, values=values, weights=weights)
    components = [
        ComponentBreakdown(
            name=c.value,
            value=None if values.get(c) is None else round(values[c] or 0.0, 4),
            status=statuses.get(c, "missing" if values.get(c) is None else "present"),
            configured_weight=weights.get(c, 0.0),
            effective_weight=round(effective[c], 6) if c in effective else None,
            ratings=ratings.get(c),
        )
        for c in ScoringComponent
    ]
    if value is None:
        return FinalScore(score=None, rating=None, components=components, notes=notes)
    clamped = min(max(value, scale.min), scale.max)
    if clamped != value:
        notes.append(f"formula result {value:.4g} clamped onto the rating scale {scale.min:g}..{scale.max:g}")
    score = round(clamped, 4)
    return FinalScore(score=score, rating=scale.band_for(score), components=components, notes=notes)


_ROUNDING = 1.5e-4
"""Both scores are rounded to 4 decimals before they are compared."""


def bound_component(
    final: FinalScore, *, without: FinalScore, component: str, weight: float, scale: RatingScale
) -> FinalScore:
    """``final`` held within ``weight``/100 of the scale's range of ``without`` (the same person
    scored without ``component``; the scale's midpoint when nothing else scores them).

    Invariant: a component weighted ``w`` moves a score by at most ``w/100 × (max − min)``. A
    weighted sum with every component present already keeps it; renormalisation over missing
    components (or a formula that amplifies one) would not, so one department's collaboration
    rating could otherwise decide the whole score of a department with little other data.
    """
    if final.score is None or weight <= 0:
        return final
    bound = weight / 100 * (scale.max - scale.min)
    baseline = without.score if without.score is not None else (scale.min + scale.max) / 2
    if abs(final.score - baseline) <= bound + _ROUNDING:
        return final
    low, high = max(baseline - bound, scale.min), min(baseline + bound, scale.max)
    score = round(min(max(final.score, low), high), 4)
    note = (
        f"{component} would move the score from {baseline:.4g} to {final.score:.4g}, more than its weight allows "
        f"({weight:g}% of the scale: {bound:.4g}); held at {score:g}"
    )
    return final.model_copy(update={"score": score, "rating": scale.band_for(score), "notes": [*final.notes, note]})


# -- calibration reports ----------------------------------------------------------------------
class BandShare(BaseModel):
    label: str
    count: int
    share: float
    max_share: float | None = None
    min_share: float | None = None
    max_count: int | None = Field(default=None, description="Most people the guideline allows in this band.")
    violation: str | None = None


class DistributionReport(BaseModel):
    total: int
    bands: list[BandShare]
    violations: list[str]
    limits_applied: bool = Field(
        default=True, description="False when the group is smaller than the guideline's min_group_size."
    )
    notes: list[str] = Field(default_factory=list)


def distribution_report(
    ratings: Sequence[str], *, scale: RatingScale, guideline: CalibrationGuideline
) -> DistributionReport:
    """Actual share per band against the guideline's limits (above max or below min is a violation).

    A limit without a maximum allows 100%, one without a minimum requires 0%. A group smaller than
    the guideline's ``min_group_size`` is not held to the limits (a share of a handful of people
    says little): its bands are reported without violations, with a note.
    """
    total = len(ratings)
    applied = total >= guideline.min_group_size
    limits = {
        limit.band: (
            (limit.max_percent if limit.max_percent is not None else 100) / 100,
            (limit.min_percent or 0) / 100,
        )
        for limit in guideline.limits
    }
    bands: list[BandShare] = []
    violations: list[str] = []
    for band in reversed(scale.bands):  # top band first, as HR reads it
        count = sum(1 for r in ratings if r == band.label)
        share = count / total if total else 0.0
        max_share, min_share = limits.get(band.label, (None, None))
        violation = None
        if max_share is not None and min_share is not None and total and applied:
            if share > max_share + _EPS:
                violation = f"{band.label}: {share:.0%} of {total} exceeds the guideline maximum {max_share:.0%}"
            elif share < min_share - _EPS:
                violation = f"{band.label}: {share:.0%} of {total} is below the guideline minimum {min_share:.0%}"
        if violation:
            violations.append(violation)
        bands.append(
            BandShare(
                label=band.label,
                count=count,
                share=round(share, 4),
                max_share=max_share,
                min_share=min_share,
                max_count=math.floor(max_share * total + _EPS) if max_share is not None else None,
                violation=violation,
            )
        )
    notes = (
        []
        if applied
        else [
            f"a group of {total} is smaller than the guideline's min_group_size {guideline.min_group_size}: "
            "its limits are not applied"
        ]
    )
    return DistributionReport(total=total, bands=bands, violations=violations, limits_applied=applied, notes=notes)


class GroupDeviation(BaseModel):
    group_id: str
    count: int
    mean: float
    difference: float = Field(description="Group mean minus company mean, on the rating scale.")
    z_score: float = Field(description="Difference in company standard deviations (0 when they are all equal).")
    flag: str | None = Field(default=None, description="'lenient', 'strict' or None.")


def deviation_report(
    groups: Mapping[str, Sequence[float]], *, company: Sequence[float], z_threshold: float
) -> list[GroupDeviation]:
    """How far each group's mean sits from the company mean, in company standard deviations.

    ``z = (group mean - company mean) / population stdev of all company scores``; a group
    with ``z >= z_threshold`` is flagged lenient, ``z <= -z_threshold`` strict.
    """
    if not company:
        return []
    mean = statistics.fmean(company)
    stdev = statistics.pstdev(company) if len(company) > 1 else 0.0
    report = []
    for group_id, scores in sorted(groups.items()):
        if not scores:
            continue
        group_mean = statistics.fmean(scores)
        difference = group_mean - mean
        z = difference / stdev if stdev > _EPS else 0.0
        flag = "lenient" if z >= z_threshold else "strict" if z <= -z_threshold else None
        report.append(
            GroupDeviation(
                group_id=group_id,
                count=len(scores),
                mean=round(group_mean, 4),
                difference=round(difference, 4),
                z_score=round(z, 4),
                flag=flag,
            )
        )
    return report
