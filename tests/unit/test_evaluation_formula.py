"""The final-score formula language is a whitelist over ``ast``: anything else is refused."""

from __future__ import annotations

import pytest

from services.evaluation.scoring import FormulaError, evaluate_formula, parse_formula


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("goals.__class__", "attribute access"),
        ("().__class__.__bases__[0]", "not allowed"),
        ("__import__('os').system('true')", "is not allowed"),
        ("__import__('os')", "calling '__import__'"),
        ("eval('1')", "calling 'eval'"),
        ("open('/etc/passwd')", "calling 'open'"),
        ("goals ** 1000", "constant exponent"),
        ("9 ** 9 ** 9", "constant exponent"),
        ("goals ** peer", "constant exponent"),
        ("10 ** 100", "constant exponent"),
        ("1e300 * goals", "too large"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[goals, peer]", "List is not allowed"),
        ("goals if peer else manager", "IfExp is not allowed"),
        ("goals[0]", "Subscript is not allowed"),
        ("goals > 3", "Compare is not allowed"),
        ("(x := 3)", "NamedExpr is not allowed"),
        ("'text'", "only numbers"),
        ("True + goals", "only numbers"),
        ("salary * 2", "unknown name 'salary'"),
        ("weighted(1)", "only keyword weights"),
        ("weighted(peer=-1)", "a number >= 0"),
        ("weighted(bonus=1)", "unknown component 'bonus'"),
        ("weighted(**{'goals': 1})", "'**' arguments"),
        ("min(*[goals])", "'*' arguments"),
        ("min()", "at least one argument"),
        ("round(goals, 100)", "digits"),
        ("goals; import os", "not a valid expression"),
        ("goals +", "not a valid expression"),
        ("goals + " * 100 + "1", "longer than 500"),
        ("-" * 300 + "goals", "too complex"),
    ],
)
def test_unsafe_or_unknown_formulas_are_rejected(formula: str, reason: str) -> None:
    with pytest.raises(FormulaError) as excinfo:
        parse_formula(formula)
    assert reason in str(excinfo.value)


def test_too_many_nodes_are_rejected() -> None:
    with pytest.raises(FormulaError, match="too complex"):
        parse_formula("+".join(["1"] * 150))


def test_allowed_constructs_evaluate() -> None:
    formula = parse_formula("round(max(goals, manager) * 0.5 + abs(-1) + 2 ** 2 - weighted(peer=1) / 2, 2)")
    values = {"goals": 4.0, "manager": 3.0, "peer": 2.0}
    value, notes, _ = evaluate_formula(formula, values=values, weights={})
    # max(4, 3) * 0.5 + 1 + 4 - 2 / 2 = 2 + 1 + 4 - 1 = 6
    assert value == 6.0 and notes == []


def test_division_by_zero_is_a_note_not_a_crash() -> None:
    value, notes, _ = evaluate_formula(
        parse_formula("goals / (manager - manager)"), values={"goals": 1.0, "manager": 2.0}, weights={}
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
        parse_formula("weighted()"), values={"goals": 4.0, "manager": 2.0}, weights={"goals": 3, "manager": 1}
    )
    assert value == pytest.approx(3.5)  # (3*4 + 1*2) / 4
    assert weights == {"goals": 0.75, "manager": 0.25}
