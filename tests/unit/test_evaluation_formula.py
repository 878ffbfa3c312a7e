"""The final-score formula grammar (``contracts.scoring``) is a whitelist over ``ast``: anything else is
refused, and evaluation never calls ``eval``. Templates and the evaluation service share it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.scoring import (
    DEFAULT_FORMULA,
    FormulaError,
    RatingBand,
    RatingScale,
    ScoringComponent,
    ScoringConfig,
    evaluate_formula,
    parse_formula,
)

SCALE = RatingScale(
    bands=[RatingBand(label="low", min_score=1, max_score=3), RatingBand(label="high", min_score=3, max_score=5)]
)


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("kpi.__class__", "attribute access"),
        ("().__class__.__bases__[0]", "may not contain Subscript"),
        ("__import__('os').system('true')", "formula may call only min(...) and max(...)"),
        ("__import__('os')", "formula may call only min(...) and max(...)"),
        ("eval('1')", "formula may call only min(...) and max(...)"),
        ("open('/etc/passwd')", "formula may call only min(...) and max(...)"),
        ("round(kpi, 2)", "formula may call only min(...) and max(...)"),
        ("max(kpi, default=1)", "without keyword arguments"),
        ("kpi ** 2", "only + - * / and parentheses"),
        ("kpi // 2", "only + - * / and parentheses"),
        ("kpi % 2", "only + - * / and parentheses"),
        ("not kpi", "only + - * / and parentheses"),
        ("1e300 * kpi", "too large"),
        ("lambda: 1", "may not contain Lambda"),
        ("[kpi, peer]", "may not contain List"),
        ("kpi if peer else manager", "may not contain IfExp"),
        ("kpi > 3", "may not contain Compare"),
        ("(x := 3)", "may not contain NamedExpr"),
        ("min(*[kpi])", "may not contain Starred"),
        ("'text'", "is not a number"),
        ("True + kpi", "is not a number"),
        ("salary * 2", "unknown name 'salary'"),
        ("goals * 2", "unknown name 'goals'"),
        ("w_salary * kpi", "unknown name 'w_salary'"),
        ("min()", "needs at least one argument"),
        ("kpi; import os", "not a valid expression"),
        ("kpi +", "not a valid expression"),
        ("kpi + " * 200 + "1", "longer than 1000"),
        ("-" * 300 + "kpi", "too complex"),
    ],
)
def test_unsafe_or_unknown_formulas_are_rejected(formula: str, reason: str) -> None:
    with pytest.raises(FormulaError) as excinfo:
        parse_formula(formula)
    assert reason in str(excinfo.value)


def test_too_many_nodes_are_rejected() -> None:
    with pytest.raises(FormulaError, match="too complex"):
        parse_formula("+".join(["1"] * 150))


def test_every_component_and_weight_variable_is_in_the_grammar() -> None:
    formula = parse_formula(DEFAULT_FORMULA)
    assert formula.components == {c.value for c in ScoringComponent}
    assert "w_collaboration * collaboration" in DEFAULT_FORMULA


def test_allowed_constructs_evaluate() -> None:
    formula = parse_formula("max(kpi, manager) * 0.5 + -(-1) + min(peer, 9) / 2 - w_kpi")
    values: dict[str, float | None] = {"kpi": 4.0, "manager": 3.0, "peer": 2.0}
    value, notes, _ = evaluate_formula(formula, values=values, weights={ScoringComponent.KPI: 100})
    # max(4, 3) * 0.5 + 1 + 2 / 2 - 1 = 2 + 1 + 1 - 1 = 3
    assert value == 3.0 and notes == []


def test_weight_variables_are_the_weights_as_fractions_and_absent_weights_are_zero() -> None:
    formula = parse_formula("w_kpi * 10 + w_peer * 10")
    value, _, _ = evaluate_formula(formula, values={}, weights={ScoringComponent.KPI: 30})
    assert value == pytest.approx(3.0)  # 0.3 * 10 + 0 * 10


def test_division_by_zero_is_a_note_not_a_crash() -> None:
    value, notes, _ = evaluate_formula(
        parse_formula("kpi / (manager - manager)"), values={"kpi": 1.0, "manager": 2.0}, weights={}
    )
    assert value is None
    assert any("could not be evaluated" in n for n in notes)


def test_nothing_is_evaluated_with_python_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("eval/exec must never be called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    value, _, weights = evaluate_formula(
        parse_formula(DEFAULT_FORMULA),
        values={"kpi": 4.0, "manager": 2.0},
        weights={ScoringComponent.KPI: 75, ScoringComponent.MANAGER: 25},
    )
    assert value == pytest.approx(3.5)  # 0.75*4 + 0.25*2
    assert weights == {"kpi": 0.75, "manager": 0.25}


# -- the config the grammar belongs to ---------------------------------------------------------
def test_config_refuses_a_formula_outside_the_grammar_naming_the_field() -> None:
    with pytest.raises(ValidationError) as excinfo:
        ScoringConfig(weights={ScoringComponent.KPI: 100}, rating_scale=SCALE, formula="open('x')")
    error = excinfo.value.errors()[0]
    assert error["loc"] == ("formula",) and "may call only min(...) and max(...)" in error["msg"]


@pytest.mark.parametrize(
    ("weights", "formula", "reason"),
    [
        ({"kpi": 60, "peer": 30}, DEFAULT_FORMULA, "scoring.weights must sum to 100, got 90"),
        ({"kpi": 60, "peer": 40}, "kpi", "formula ignores weighted component(s) ['peer']"),
        ({"bonus": 100}, DEFAULT_FORMULA, "Input should be 'kpi', 'self'"),
    ],
)
def test_config_checks_weights_against_the_formula(weights: dict[str, float], formula: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=r".*") as excinfo:
        ScoringConfig.model_validate({"weights": weights, "rating_scale": SCALE.model_dump(), "formula": formula})
    assert reason in str(excinfo.value)


def test_zero_weights_may_be_left_out_of_the_formula() -> None:
    config = ScoringConfig(
        weights={ScoringComponent.KPI: 100, ScoringComponent.PEER: 0}, rating_scale=SCALE, formula="w_kpi * kpi"
    )
    assert config.evaluate({"kpi": 4.0}) == 4.0
