"""The scoring contract: one formula grammar, one rating scale, one calibration guideline and one
``ScoringConfig``, shared by cycle templates (``contracts.templates``) and the evaluation service.

**Components.** A final score combines component scores, each already on the rating scale:
``kpi`` (the weighted attainment of the employee's KPI-tracked goals), ``self``, ``manager``,
``peer``, ``cross_department`` (the mean of the submitted reviews of that relation) and
``collaboration`` (the mean rating the employee's department received from the departments it
works with).

**Formula grammar.** An arithmetic expression over the component names and their weights as
fractions (``w_kpi``... = the component's weight / 100; a component without a weight weighs 0),
with numbers (at most 1e6 in size), ``+ - * /``, parentheses, ``min(...)`` and ``max(...)``; at
most 1000 characters and 200 syntax nodes. :func:`parse_formula` checks it against that
whitelist with :mod:`ast`; :func:`evaluate_formula` walks the tree. Nothing is ever ``eval``'d.

**Missing components.** An employee may lack a component (no goal with data, fewer peer reviews
than the anonymity threshold). In a linear (sub-)expression, such as the default weighted sum
``w_kpi * kpi + w_self * self + ...``, a missing component is dropped and the coefficients of
the present ones are scaled back up to their total, so with weights 50/30/20 and the third
missing, 5 and 5 stay 5 (not 3.33). ``min``/``max`` ignore missing arguments. Any other operation
that needs a missing value makes the result ``None``; the notes say why.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.errors import rule

__all__ = [
    "DEFAULT_FORMULA",
    "MAX_FORMULA_LENGTH",
    "BandLabel",
    "BandLimit",
    "CalibrationGuideline",
    "Formula",
    "FormulaError",
    "FormulaResult",
    "PeerAnonymityThreshold",
    "RatingBand",
    "RatingScale",
    "ScoringComponent",
    "ScoringConfig",
    "evaluate_formula",
    "parse_formula",
    "weight_variable",
]

Percent = Annotated[float, Field(ge=0, le=100)]
BandLabel = Annotated[str, Field(min_length=1, max_length=32)]
"""A rating band's label; results store ratings in 32 characters."""
PeerAnonymityThreshold = Annotated[
    int,
    Field(
        ge=2,
        le=50,
        description="Peer and cross-department ratings count, and are shown, only when at least this many "
        "were submitted.",
    ),
]

_EPS = 1e-9


# -- components -------------------------------------------------------------------------------
class ScoringComponent(StrEnum):
    """The component scores a final-score formula combines, each on the rating scale."""

    KPI = "kpi"
    SELF = "self"
    MANAGER = "manager"
    PEER = "peer"
    CROSS_DEPARTMENT = "cross_department"
    COLLABORATION = "collaboration"


def weight_variable(component: ScoringComponent) -> str:
    """The formula variable holding ``component``'s weight as a fraction (``w_kpi`` = weight / 100)."""
    return f"w_{component.value}"


DEFAULT_FORMULA = " + ".join(f"{weight_variable(c)} * {c.value}" for c in ScoringComponent)
"""The weighted sum of every component (components without a weight weigh 0)."""

_COMPONENTS = frozenset(c.value for c in ScoringComponent)
_WEIGHTS = {weight_variable(c): c for c in ScoringComponent}


# -- formula grammar --------------------------------------------------------------------------
class FormulaError(ValueError):
    """The formula is not in the grammar; the message says why."""


MAX_FORMULA_LENGTH = 1000
_MAX_NODES = 200
_MAX_CONSTANT = 1e6
_FUNCTIONS = frozenset({"min", "max"})
_OPERATORS: tuple[type[ast.AST], ...] = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.UAdd, ast.USub)
_STRUCTURE: tuple[type[ast.AST], ...] = (ast.Expression, ast.Load, ast.BinOp, ast.UnaryOp, *_OPERATORS)


@dataclass(frozen=True)
class Formula:
    """A formula that passed :func:`parse_formula`; ``components`` are the component names it reads."""

    source: str
    tree: ast.Expression
    components: frozenset[str]


def parse_formula(source: str) -> Formula:
    """Parse ``source`` and check it against the grammar; ``FormulaError`` names what is wrong."""
    if len(source) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula is longer than {MAX_FORMULA_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"formula is not a valid expression: {exc.msg} at column {exc.offset}") from exc
    nodes = list(ast.walk(tree))
    if len(nodes) > _MAX_NODES:
        raise FormulaError(f"formula is too complex ({len(nodes)} nodes, at most {_MAX_NODES})")
    callees = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    for node in nodes:
        if id(node) not in callees:
            _check_node(node)
    components = frozenset(n.id for n in nodes if isinstance(n, ast.Name) and n.id in _COMPONENTS)
    return Formula(source=source, tree=tree, components=components)


def _check_node(node: ast.AST) -> None:
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords:
            raise FormulaError("formula may call only min(...) and max(...), without keyword arguments")
        if not node.args:
            raise FormulaError(f"{node.func.id}() in the formula needs at least one argument")
    elif isinstance(node, ast.Name):
        if node.id not in _COMPONENTS and node.id not in _WEIGHTS:
            allowed = ", ".join([*sorted(_COMPONENTS), *sorted(_WEIGHTS)])
            raise FormulaError(f"formula uses unknown name {node.id!r}; allowed: {allowed}, min(), max()")
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"formula constant {node.value!r} is not a number")
        if abs(node.value) > _MAX_CONSTANT:
            raise FormulaError(f"formula constant {node.value:g} is too large (at most {_MAX_CONSTANT:g})")
    elif isinstance(node, ast.BinOp | ast.UnaryOp):
        if not isinstance(node.op, _OPERATORS):
            raise FormulaError("formula may use only + - * / and parentheses")
    elif isinstance(node, ast.Attribute):
        raise FormulaError("formula may not use attribute access ('.')")
    elif not isinstance(node, _STRUCTURE):
        raise FormulaError(f"formula may not contain {type(node).__name__} expressions")


# -- formula evaluation -----------------------------------------------------------------------
class FormulaResult(NamedTuple):
    value: float | None
    """The formula's value; ``None`` when it cannot be computed (the notes say why)."""
    notes: list[str]
    """What was excluded or renormalised, in words."""
    effective_weights: dict[str, float]
    """Share of each present component (summing to 1) in the formula's linear part, if it has one."""


@dataclass
class _Evaluation:
    values: Mapping[str, float | None]
    constants: dict[str, float]
    notes: list[str] = field(default_factory=list)
    effective_weights: dict[str, float] = field(default_factory=dict)

    def missing(self, name: str) -> bool:
        return self.values.get(name) is None


def evaluate_formula(
    formula: Formula, *, values: Mapping[str, float | None], weights: Mapping[ScoringComponent, float]
) -> FormulaResult:
    """Evaluate ``formula`` over component ``values`` (``None`` = missing) and ``weights`` (percent).

    Missing components follow the rule in the module docstring: dropped from linear
    sub-expressions with the present coefficients scaled back up, ignored by ``min``/``max``.
    """
    constants = {variable: weights.get(component, 0.0) / 100 for variable, component in _WEIGHTS.items()}
    state = _Evaluation(values=values, constants=constants)
    try:
        value = _eval(formula.tree.body, state)
    except (ZeroDivisionError, OverflowError) as exc:
        state.notes.append(f"formula could not be evaluated: {exc}")
        return FormulaResult(None, state.notes, {})
    if value is not None and not math.isfinite(value):
        state.notes.append("formula result is not a finite number")
        return FormulaResult(None, state.notes, {})
    if value is None:
        missing = sorted(n for n in formula.components if state.missing(n))
        state.notes.append(f"formula could not be evaluated: missing component(s) {missing}")
    return FormulaResult(value, state.notes, state.effective_weights)


def _linear(node: ast.expr, constants: Mapping[str, float]) -> dict[str | None, float] | None:
    """Coefficients of ``node`` if it is linear in the components (key None = constant term)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return {None: float(node.value)}
    if isinstance(node, ast.Name):
        return {None: constants[node.id]} if node.id in constants else {node.id: 1.0}
    if isinstance(node, ast.UnaryOp):
        inner = _linear(node.operand, constants)
        if inner is None:
            return None
        factor = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return {k: factor * c for k, c in inner.items()}
    if not isinstance(node, ast.BinOp):
        return None
    left, right = _linear(node.left, constants), _linear(node.right, constants)
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


def _eval(node: ast.expr, state: _Evaluation) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return state.constants[node.id] if node.id in state.constants else state.values.get(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, state)
        if operand is None:
            return None
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _eval_binop(node, state)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _eval_min_max(node, node.func.id, state)
    raise FormulaError(f"{type(node).__name__} is not allowed in a formula")  # parse_formula prevents this


def _eval_binop(node: ast.BinOp, state: _Evaluation) -> float | None:
    linear = _linear(node, state.constants)
    if linear is not None:
        return _eval_linear(linear, state)
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
    return left / right


def _eval_linear(linear: Mapping[str | None, float], state: _Evaluation) -> float | None:
    """``sum(c x value) + constant``; missing components are dropped and the present coefficients
    scaled back up to the total of all (non-zero) coefficients, with a note."""
    constant = linear.get(None, 0.0)
    names = {k: c for k, c in linear.items() if k is not None}
    weighted = {k: c for k, c in names.items() if c != 0}
    if not weighted:
        return constant
    present = {k: c for k, c in weighted.items() if not state.missing(k)}
    absent = sorted(k for k in weighted if k not in present)
    total, kept = sum(weighted.values()), sum(present.values())
    if not absent:
        state.effective_weights = {k: c / total for k, c in weighted.items()} if total else {}
        return sum(c * (state.values.get(k) or 0.0) for k, c in names.items()) + constant
    if not present or kept == 0 or total == 0:
        return None
    state.notes.append(
        f"{', '.join(absent)} excluded from the formula (no data); the remaining weights "
        f"{', '.join(sorted(present))} were renormalised from {kept / total:.4g} to 1"
    )
    state.effective_weights = {k: c / kept for k, c in present.items()}
    weighted_sum = sum(c * (state.values.get(k) or 0.0) for k, c in present.items())
    return weighted_sum * total / kept + constant


def _eval_min_max(node: ast.Call, name: str, state: _Evaluation) -> float | None:
    args = [_eval(a, state) for a in node.args]
    present = [a for a in args if a is not None]
    if len(present) < len(args):
        state.notes.append(f"{name}(): missing arguments ignored")
    if not present:
        return None
    return min(present) if name == "min" else max(present)


# -- rating scale -----------------------------------------------------------------------------
class RatingBand(BaseModel):
    """A named score range: ``min_score <= score < max_score`` (the top band includes its max)."""

    model_config = ConfigDict(extra="forbid")

    label: BandLabel
    min_score: float
    max_score: float


class RatingScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float = Field(default=1, description="Lowest possible score.")
    max: float = Field(default=5, description="Highest possible score.")
    bands: list[RatingBand] = Field(
        min_length=1, max_length=20, description="Contiguous ranges from min to max, lowest first."
    )

    @model_validator(mode="after")
    def _bands_cover_the_scale(self) -> RatingScale:
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min >= self.max:
            raise rule(f"rating_scale: min ({self.min:g}) must be below max ({self.max:g})")
        problems: list[str] = []
        labels = [b.label for b in self.bands]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            problems.append(f"band labels must be unique, repeated: {duplicates}")
        for i, band in enumerate(self.bands):
            if band.min_score >= band.max_score:
                problems.append(f"band '{band.label}': min_score {band.min_score:g} must be below max_score")
            if i > 0 and band.min_score != self.bands[i - 1].max_score:
                below = self.bands[i - 1]
                problems.append(
                    f"band '{band.label}' starts at {band.min_score:g} but the band below it ('{below.label}') "
                    f"ends at {below.max_score:g}; bands must be contiguous, lowest first"
                )
        if self.bands[0].min_score != self.min:
            problems.append(
                f"bands must cover the scale: the lowest band must start at the scale min {self.min:g}, "
                f"not {self.bands[0].min_score:g}"
            )
        if self.bands[-1].max_score != self.max:
            problems.append(
                f"bands must cover the scale: the highest band must end at the scale max {self.max:g}, "
                f"not {self.bands[-1].max_score:g}"
            )
        if problems:
            raise rule("rating_scale: " + "; ".join(problems))
        return self

    def band_for(self, score: float) -> str:
        """The label of the band holding ``score``.

        A score a rounding error below a band's ``min_score`` counts in that band; a score off
        the scale gets the nearest end band (final scores are clamped onto the scale first).
        """
        label = self.bands[0].label
        for band in self.bands:
            if score >= band.min_score - _EPS:
                label = band.label
        return label


# -- calibration guideline --------------------------------------------------------------------
class BandLimit(BaseModel):
    """How many of a calibration group may (or must) land in one rating band."""

    model_config = ConfigDict(extra="forbid")

    band: BandLabel = Field(description="A rating_scale band label.")
    max_percent: Percent | None = Field(default=None, description="At most this share of the group.")
    min_percent: Percent | None = Field(default=None, description="At least this share of the group.")

    @model_validator(mode="after")
    def _bounds(self) -> BandLimit:
        if self.max_percent is None and self.min_percent is None:
            raise rule(f"calibration limit for band '{self.band}' needs max_percent or min_percent")
        if self.max_percent is not None and self.min_percent is not None and self.min_percent > self.max_percent:
            raise rule(
                f"calibration limit for band '{self.band}': min_percent {self.min_percent:g} "
                f"exceeds max_percent {self.max_percent:g}"
            )
        return self


class CalibrationGuideline(BaseModel):
    """The target rating distribution that calibration checks each group against."""

    model_config = ConfigDict(extra="forbid")

    limits: list[BandLimit] = Field(default_factory=list, max_length=20)
    min_group_size: int = Field(
        default=10, ge=1, le=10_000, description="Groups smaller than this are not held to the limits."
    )

    def problems(self, scale: RatingScale) -> list[str]:
        """What makes the limits unusable on ``scale`` (unknown bands, impossible totals); empty if none."""
        bands = [b.label for b in scale.bands]
        problems: list[str] = []
        unknown = sorted({limit.band for limit in self.limits} - set(bands))
        if unknown:
            problems.append(f"calibration.limits name unknown band(s) {unknown}; rating_scale bands are {bands}")
        named = [limit.band for limit in self.limits]
        repeated = sorted({b for b in named if named.count(b) > 1})
        if repeated:
            problems.append(f"calibration.limits: one limit per band, repeated: {repeated}")
        min_total = sum(limit.min_percent or 0 for limit in self.limits)
        if min_total > 100 + _EPS:
            problems.append(f"calibration.limits: min_percent values add up to {min_total:g}%, more than 100%")
        caps = {limit.band: limit.max_percent for limit in self.limits if limit.max_percent is not None}
        cap_total = sum(v for v in caps.values() if v)
        if not unknown and set(caps) == set(bands) and cap_total < 100 - _EPS:
            problems.append(
                f"calibration.limits: every band is capped and the caps add up to only {cap_total:g}%, "
                "so no distribution can satisfy them"
            )
        return problems


# -- scoring config ---------------------------------------------------------------------------
class ScoringConfig(BaseModel):
    """How the final score is computed from the component scores, and which band it falls in.

    A template's ``scoring`` section; ``contracts.evaluation.EvaluationConfig`` extends it with
    the evaluation stage's other settings.
    """

    model_config = ConfigDict(extra="forbid")

    weights: dict[ScoringComponent, Percent] = Field(
        description="Component -> weight in percent; the weights sum to 100. Components left out weigh 0."
    )
    rating_scale: RatingScale
    formula: str = Field(
        default=DEFAULT_FORMULA,
        min_length=1,
        max_length=MAX_FORMULA_LENGTH,
        description="Final-score expression over the components (kpi, self, manager, peer, cross_department, "
        "collaboration) and their weights as fractions (w_kpi...), with numbers, + - * /, parentheses, "
        "min() and max(). Parsed safely, never eval'd. The default is the weighted sum.",
    )

    @field_validator("weights")
    @classmethod
    def _weights_sum_to_100(cls, value: dict[ScoringComponent, float]) -> dict[ScoringComponent, float]:
        total = sum(value.values())
        if not math.isclose(total, 100, abs_tol=1e-6):
            weights = ", ".join(f"{k.value}={v:g}" for k, v in value.items())
            raise rule(f"scoring.weights must sum to 100, got {total:g} ({weights})")
        return value

    @field_validator("formula")
    @classmethod
    def _formula_in_grammar(cls, value: str) -> str:
        try:
            parse_formula(value)
        except FormulaError as exc:
            raise rule(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _formula_uses_the_weights(self) -> ScoringConfig:
        used = parse_formula(self.formula).components
        ignored = sorted(c.value for c, w in self.weights.items() if w > 0 and c.value not in used)
        if ignored:
            raise rule(f"scoring.formula ignores weighted component(s) {ignored}; use them or set their weight to 0")
        return self

    def evaluate(self, scores: Mapping[str, float | None]) -> float | None:
        """The formula's value over component ``scores`` (name -> score on the rating scale, ``None`` =
        missing), not yet clamped onto the scale; :func:`evaluate_formula` also gives the notes."""
        return evaluate_formula(parse_formula(self.formula), values=scores, weights=self.weights).value
