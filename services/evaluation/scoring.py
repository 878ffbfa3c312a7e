"""Pure scoring rules: KPI attainment, goal score, scale normalisation, the final-score
formula language, rating bands, the distribution and the deviation reports.

Nothing here touches a database or HTTP, so every rule can be checked by hand in a
unit test. Scores move between three kinds of scale:

* goal attainment, a fraction in ``0..cap`` (1.0 = target reached);
* each competency's own scale (``scale_min..scale_max``);
* the cycle's rating scale (``min..max``), on which every component and the final
  score are expressed. ``scale_value`` is the one linear mapping between them.
"""

from __future__ import annotations

import ast
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from contracts.evaluation import COMPONENTS, BandGuideline, LookupRow, RatingScale
from contracts.goals import Direction, ExportedGoal

__all__ = [
    "BandShare",
    "ComponentBreakdown",
    "DistributionReport",
    "FinalScore",
    "Formula",
    "FormulaError",
    "GoalAttainment",
    "GoalScore",
    "GroupDeviation",
    "attainment_score",
    "band_for",
    "deviation_report",
    "distribution_report",
    "evaluate_formula",
    "final_score",
    "goal_attainment",
    "goal_score",
    "lookup_rating",
    "parse_formula",
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


# -- formula language -------------------------------------------------------------------------
class FormulaError(ValueError):
    """The formula is not in the whitelisted expression language."""


_FUNCTIONS = frozenset({"min", "max", "round", "abs", "weighted"})
_MAX_NODES = 200
_MAX_CONSTANT = 1e6
_MAX_EXPONENT = 3
_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Name,
    ast.Call,
    ast.keyword,
    ast.Load,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


@dataclass(frozen=True)
class Formula:
    source: str
    tree: ast.Expression


def parse_formula(source: str, *, names: Sequence[str] = COMPONENTS) -> Formula:
    """Parse and check ``source`` against the whitelist; raises ``FormulaError`` with the reason."""
    if len(source) > 500:
        raise FormulaError("formula is longer than 500 characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"formula is not a valid expression: {exc.msg}") from exc
    nodes = list(ast.walk(tree))
    if len(nodes) > _MAX_NODES:
        raise FormulaError(f"formula is too complex ({len(nodes)} nodes, at most {_MAX_NODES})")
    function_names = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    allowed = set(names)
    for node in nodes:
        if isinstance(node, ast.Attribute):
            raise FormulaError("attribute access ('.') is not allowed in a formula")
        if not isinstance(node, _ALLOWED_NODES):
            raise FormulaError(f"{type(node).__name__} is not allowed in a formula")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise FormulaError(f"only numbers are allowed as constants, not {node.value!r}")
            if abs(node.value) > _MAX_CONSTANT:
                raise FormulaError(f"constant {node.value} is too large (at most {_MAX_CONSTANT:g})")
        elif isinstance(node, ast.Name) and id(node) not in function_names and node.id not in allowed:
            raise FormulaError(f"unknown name {node.id!r}; a formula may use {sorted(allowed)}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = node.right
            if not (
                isinstance(exponent, ast.Constant)
                and isinstance(exponent.value, int | float)
                and abs(exponent.value) <= _MAX_EXPONENT
            ):
                raise FormulaError(f"'**' needs a constant exponent between -{_MAX_EXPONENT} and {_MAX_EXPONENT}")
        elif isinstance(node, ast.Call):
            _check_call(node, allowed)
    return Formula(source=source, tree=tree)


def _check_call(node: ast.Call, allowed: set[str]) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        shown = ast.unparse(node.func)
        raise FormulaError(f"calling {shown!r} is not allowed; functions are {sorted(_FUNCTIONS)}")
    name = node.func.id
    if any(isinstance(a, ast.Starred) for a in node.args):
        raise FormulaError(f"{name}(): '*' arguments are not allowed")
    if name == "weighted":
        if node.args:
            raise FormulaError("weighted() takes only keyword weights, e.g. weighted(goals=60, manager=40)")
        for kw in node.keywords:
            if kw.arg is None:
                raise FormulaError("weighted(): '**' arguments are not allowed")
            if kw.arg not in allowed:
                raise FormulaError(f"weighted(): unknown component {kw.arg!r}; components are {sorted(allowed)}")
            if not (
                isinstance(kw.value, ast.Constant)
                and isinstance(kw.value.value, int | float)
                and not isinstance(kw.value.value, bool)
                and kw.value.value >= 0
            ):
                raise FormulaError(f"weighted(): the weight of {kw.arg!r} must be a number >= 0")
        return
    if node.keywords:
        raise FormulaError(f"{name}() takes no keyword arguments")
    if name in {"min", "max"} and not node.args:
        raise FormulaError(f"{name}() needs at least one argument")
    if name == "abs" and len(node.args) != 1:
        raise FormulaError("abs() takes exactly one argument")
    if name == "round":
        if len(node.args) not in (1, 2):
            raise FormulaError("round() takes one or two arguments")
        if len(node.args) == 2:
            digits = node.args[1]
            if not (isinstance(digits, ast.Constant) and isinstance(digits.value, int) and 0 <= digits.value <= 6):
                raise FormulaError("round(): the number of digits must be a whole number from 0 to 6")


@dataclass
class _Evaluation:
    values: Mapping[str, float | None]
    weights: Mapping[str, float]
    notes: list[str] = field(default_factory=list)
    effective_weights: dict[str, float] = field(default_factory=dict)

    def missing(self, name: str) -> bool:
        return self.values.get(name) is None


def evaluate_formula(
    formula: Formula, *, values: Mapping[str, float | None], weights: Mapping[str, float]
) -> tuple[float | None, list[str], dict[str, float]]:
    """Evaluate ``formula`` over component ``values`` (``None`` = missing).

    Returns the value (``None`` when it cannot be computed), the notes explaining what
    was excluded or renormalised, and the effective weights (shares summing to 1) of
    ``weighted()`` or a linear formula.

    Missing components: ``weighted()`` and any linear sub-expression (``0.6*goals +
    0.4*manager``) drop them and scale the remaining coefficients back up to the same
    total, so 5 and 5 stay 5. ``min``/``max`` ignore missing arguments. Anything else
    that needs a missing value makes the result ``None``.
    """
    state = _Evaluation(values=values, weights=weights)
    try:
        value = _eval(formula.tree.body, state)
    except (ZeroDivisionError, OverflowError) as exc:
        state.notes.append(f"formula could not be evaluated: {exc}")
        return None, state.notes, {}
    if value is not None and not math.isfinite(value):
        state.notes.append("formula result is not a finite number")
        return None, state.notes, {}
    if value is None:
        missing = sorted(n for n in COMPONENTS if state.missing(n))
        state.notes.append(f"formula could not be evaluated: missing component(s) {missing}")
    return value, state.notes, state.effective_weights


def _linear(node: ast.expr) -> dict[str | None, float] | None:
    """Coefficients of ``node`` if it is linear in the names (key None = constant term)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return {None: float(node.value)}
    if isinstance(node, ast.Name):
        return {node.id: 1.0}
    if isinstance(node, ast.UnaryOp):
        inner = _linear(node.operand)
        if inner is None:
            return None
        factor = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return {k: factor * c for k, c in inner.items()}
    if not isinstance(node, ast.BinOp):
        return None
    left, right = _linear(node.left), _linear(node.right)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Add | ast.Sub):
        factor = 1.0 if isinstance(node.op, ast.Add) else -1.0
        combined = dict(left)
        for k, c in right.items():
            combined[k] = combined.get(k, 0.0) + factor * c
        return combined
    if isinstance(node.op, ast.Mult):
        if set(left) == {None}:
            return {k: left[None] * c for k, c in right.items()}
        if set(right) == {None}:
            return {k: right[None] * c for k, c in left.items()}
        return None
    if isinstance(node.op, ast.Div) and set(right) == {None} and right[None] != 0:
        return {k: c / right[None] for k, c in left.items()}
    return None


def _renormalised(coefficients: Mapping[str, float], state: _Evaluation, label: str, *, mean: bool) -> float | None:
    """Sum of ``c x value`` over present names, scaled back up to the full coefficient total
    (``mean=False``, a linear formula) or divided by the present total (``mean=True``, weighted())."""
    present = {k: c for k, c in coefficients.items() if c != 0 and not state.missing(k)}
    absent = sorted(k for k, c in coefficients.items() if c != 0 and state.missing(k))
    total = sum(c for c in coefficients.values() if c != 0)
    kept = sum(present.values())
    if not present or kept == 0 or total == 0:
        return None
    if absent:
        state.notes.append(
            f"{', '.join(absent)} excluded from {label} (no data); the remaining weights "
            f"{', '.join(sorted(present))} were renormalised from {kept / total:.4g} to 1"
        )
    state.effective_weights = {k: c / kept for k, c in present.items()}
    weighted_sum = sum(c * (state.values[k] or 0.0) for k, c in present.items())
    return weighted_sum / kept if mean else weighted_sum * total / kept


def _eval(node: ast.expr, state: _Evaluation) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return state.values.get(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, state)
        if operand is None:
            return None
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _eval_binop(node, state)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _eval_call(node, node.func.id, state)
    raise FormulaError(f"{type(node).__name__} is not allowed in a formula")  # parse_formula prevents this


def _eval_binop(node: ast.BinOp, state: _Evaluation) -> float | None:
    linear = _linear(node)
    if linear is not None:
        names = {k: c for k, c in linear.items() if k is not None}
        constant = linear.get(None, 0.0)
        if not names:
            return constant
        if any(state.missing(k) for k in names):
            part = _renormalised(names, state, "the formula", mean=False)
            return None if part is None else part + constant
        total = sum(names.values())
        state.effective_weights = {k: c / total for k, c in names.items()} if total else {}
        return sum(c * (state.values[k] or 0.0) for k, c in names.items()) + constant
    left = _eval(node.left, state)
    right = _eval(node.right, state)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    if isinstance(node.op, ast.Div):
        return left / right
    if isinstance(node.op, ast.Pow):
        result = left**right
        if isinstance(result, complex):
            raise OverflowError("power of a negative number")
        return float(result)
    raise FormulaError(f"operator {type(node.op).__name__} is not allowed")


def _eval_call(node: ast.Call, name: str, state: _Evaluation) -> float | None:
    if name == "weighted":
        weights = (
            {
                kw.arg: float(kw.value.value)
                for kw in node.keywords
                if kw.arg and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int | float)
            }
            if node.keywords
            else dict(state.weights)
        )
        return _renormalised({k: w for k, w in weights.items() if w > 0}, state, "weighted()", mean=True)
    args = [_eval(a, state) for a in node.args]
    if name in {"min", "max"}:
        present = [a for a in args if a is not None]
        if len(present) < len(args):
            state.notes.append(f"{name}(): missing arguments ignored")
        if not present:
            return None
        return min(present) if name == "min" else max(present)
    if any(a is None for a in args):
        return None
    values = [a for a in args if a is not None]
    if name == "abs":
        return abs(values[0])
    if name == "round":
        return round(values[0], int(values[1]) if len(values) == 2 else 0)
    raise FormulaError(f"calling {name!r} is not allowed")


# -- final score and bands --------------------------------------------------------------------
def band_for(score: float, scale: RatingScale) -> str:
    """The label of the band holding ``score`` (bands are ``[min, max)``, the top one closed)."""
    label = scale.bands[0].label
    for band in scale.bands:
        if score >= band.min - _EPS:
            label = band.label
    return label


class ComponentBreakdown(BaseModel):
    name: str
    value: float | None = Field(description="On the rating scale; None when missing or hidden.")
    status: str = Field(description="'present', 'missing' or 'below_anonymity_threshold'.")
    configured_weight: float = 0.0
    effective_weight: float | None = Field(default=None, description="Share after renormalisation.")
    ratings: int | None = Field(default=None, description="Submitted reviews behind a relation component.")


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
    weights: Mapping[str, float],
    scale: RatingScale,
) -> FinalScore:
    """Evaluate the formula, clamp onto the rating scale, round to 4 decimals and band it."""
    value, notes, effective = evaluate_formula(formula, values=values, weights=weights)
    components = [
        ComponentBreakdown(
            name=name,
            value=None if values.get(name) is None else round(values[name] or 0.0, 4),
            status=statuses.get(name, "missing" if values.get(name) is None else "present"),
            configured_weight=weights.get(name, 0.0),
            effective_weight=round(effective[name], 6) if name in effective else None,
            ratings=ratings.get(name),
        )
        for name in COMPONENTS
    ]
    if value is None:
        return FinalScore(score=None, rating=None, components=components, notes=notes)
    clamped = min(max(value, scale.min), scale.max)
    if clamped != value:
        notes.append(f"formula result {value:.4g} clamped onto the rating scale {scale.min:g}..{scale.max:g}")
    score = round(clamped, 4)
    return FinalScore(score=score, rating=band_for(score, scale), components=components, notes=notes)


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


def distribution_report(
    ratings: Sequence[str], *, scale: RatingScale, guideline: Sequence[BandGuideline]
) -> DistributionReport:
    """Actual share per band against the guideline (a share above max or below min is a violation)."""
    total = len(ratings)
    rules = {g.label: g for g in guideline}
    bands: list[BandShare] = []
    violations: list[str] = []
    for band in reversed(scale.bands):  # top band first, as HR reads it
        count = sum(1 for r in ratings if r == band.label)
        share = count / total if total else 0.0
        rule = rules.get(band.label)
        violation = None
        if rule is not None and total:
            if share > rule.max_share + _EPS:
                violation = f"{band.label}: {share:.0%} of {total} exceeds the guideline maximum {rule.max_share:.0%}"
            elif share < rule.min_share - _EPS:
                violation = f"{band.label}: {share:.0%} of {total} is below the guideline minimum {rule.min_share:.0%}"
        if violation:
            violations.append(violation)
        bands.append(
            BandShare(
                label=band.label,
                count=count,
                share=round(share, 4),
                max_share=rule.max_share if rule else None,
                min_share=rule.min_share if rule else None,
                max_count=math.floor(rule.max_share * total + _EPS) if rule else None,
                violation=violation,
            )
        )
    return DistributionReport(total=total, bands=bands, violations=violations)


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
