"""Pure goal-setting rules: weights (property-based), values, attainment, roll-up and the state machine."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from contracts.goals import Direction, GoalLevel
from services.goals.rules import (
    ATTAINMENT_CAP,
    WEIGHT_TOLERANCE,
    Action,
    GoalStatus,
    TransitionError,
    attainment,
    next_status,
    sum_weights,
    value_problems,
    weight_message,
    weighted_mean,
)

levels = st.sampled_from(list(GoalLevel))
owners = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)
positive = st.floats(min_value=0.01, max_value=100, allow_nan=False, allow_infinity=False)


def _scaled_to_100(raw: list[float]) -> list[float]:
    total = math.fsum(raw)
    return [w * 100 / total for w in raw]


@given(raw=st.lists(positive, min_size=1, max_size=40), level=levels, owner=owners)
def test_weights_scaled_to_100_always_pass(raw: list[float], level: GoalLevel, owner: str) -> None:
    [result] = sum_weights((level, owner, w) for w in _scaled_to_100(raw))
    assert result.ok and result.message is None and result.goal_count == len(raw)


@given(
    raw=st.lists(positive, min_size=1, max_size=40),
    level=levels,
    owner=owners,
    delta=st.floats(min_value=0.02, max_value=500, allow_nan=False),
)
def test_weights_off_by_more_than_the_tolerance_fail_naming_owner_level_and_sum(
    raw: list[float], level: GoalLevel, owner: str, delta: float
) -> None:
    weights = _scaled_to_100(raw)
    weights[0] += delta
    [result] = sum_weights((level, owner, w) for w in weights)
    assert not result.ok
    assert result.message is not None and result.message.endswith(", not 100")
    assert f"sum to {round(result.total, 2):g}" in result.message
    assert ("company KPIs" if level is GoalLevel.COMPANY else f"'{owner}'") in result.message


@given(entries=st.lists(st.tuples(levels, owners, positive), max_size=60))
def test_sums_group_by_level_and_owner(entries: list[tuple[GoalLevel, str, float]]) -> None:
    sums = sum_weights(entries)
    assert sum(s.goal_count for s in sums) == len(entries)
    assert len({(s.level, s.owner) for s in sums}) == len(sums)
    for s in sums:
        expected = math.fsum(w for lv, o, w in entries if (lv, o) == (s.level, s.owner))
        assert s.total == pytest.approx(expected)
    order = [list(GoalLevel).index(s.level) for s in sums]
    assert order == sorted(order)


def test_weight_tolerance_edges() -> None:
    [inside] = sum_weights(
        [(GoalLevel.INDIVIDUAL, "e1", 33.33), (GoalLevel.INDIVIDUAL, "e1", 33.33), (GoalLevel.INDIVIDUAL, "e1", 33.33)]
    )
    assert inside.total == pytest.approx(99.99) and inside.ok
    [outside] = sum_weights([(GoalLevel.INDIVIDUAL, "e1", 99.98)])
    assert not outside.ok and WEIGHT_TOLERANCE == 0.01


def test_weight_messages() -> None:
    assert weight_message(GoalLevel.DEPARTMENT, "sales", 90) == "weights of department 'sales' KPIs sum to 90, not 100"
    assert weight_message(GoalLevel.COMPANY, "company", 100.5) == "weights of company KPIs sum to 100.5, not 100"
    assert (
        weight_message(GoalLevel.INDIVIDUAL, "e7", 33.333333) == "weights of employee 'e7' goals sum to 33.33, not 100"
    )


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(start=finite, target=finite, actual=finite, direction=st.sampled_from(list(Direction)))
def test_attainment_is_clamped(start: float, target: float, actual: float, direction: Direction) -> None:
    value = attainment(direction=direction, start=start, target=target, actual=actual)
    assert 0.0 <= value <= ATTAINMENT_CAP


@given(start=finite, span=st.floats(min_value=0.001, max_value=1e5), a=finite, b=finite)
def test_attainment_is_monotone_in_the_better_direction(start: float, span: float, a: float, b: float) -> None:
    assume(a <= b)
    higher = (
        attainment(direction=Direction.HIGHER_IS_BETTER, start=start, target=start + span, actual=x) for x in (a, b)
    )
    lower = (
        attainment(direction=Direction.LOWER_IS_BETTER, start=start, target=start - span, actual=x) for x in (a, b)
    )
    h_a, h_b = higher
    l_a, l_b = lower
    assert h_a <= h_b and l_a >= l_b


def test_attainment_examples() -> None:
    assert attainment(direction=Direction.HIGHER_IS_BETTER, start=0, target=100, actual=50) == 0.5
    assert attainment(direction=Direction.HIGHER_IS_BETTER, start=0, target=100, actual=250) == 1.5
    assert attainment(direction=Direction.HIGHER_IS_BETTER, start=10, target=100, actual=5) == 0.0
    assert attainment(direction=Direction.LOWER_IS_BETTER, start=3.0, target=2.0, actual=2.5) == pytest.approx(0.5)
    assert attainment(direction=Direction.LOWER_IS_BETTER, start=5, target=5, actual=4) == 1.0
    assert attainment(direction=Direction.HIGHER_IS_BETTER, start=5, target=5, actual=4) == 0.0


@given(value=st.floats(min_value=0, max_value=1.5), weights=st.lists(positive, min_size=1, max_size=10))
def test_weighted_mean_of_equal_values_is_that_value(value: float, weights: list[float]) -> None:
    assert weighted_mean((w, value) for w in weights) == pytest.approx(value)


def test_weighted_mean_leaves_out_children_without_data() -> None:
    assert weighted_mean([(70, 0.4), (30, 1.0)]) == pytest.approx(0.58)
    assert weighted_mean([(50, 0.8), (50, None)]) == pytest.approx(0.8)
    assert weighted_mean([(50, None)]) is None and weighted_mean([]) is None


def test_state_machine_table() -> None:
    allowed = {
        (GoalStatus.DRAFT, Action.SUBMIT): GoalStatus.SUBMITTED,
        (GoalStatus.RETURNED, Action.SUBMIT): GoalStatus.SUBMITTED,
        (GoalStatus.SUBMITTED, Action.APPROVE): GoalStatus.APPROVED,
        (GoalStatus.SUBMITTED, Action.RETURN): GoalStatus.RETURNED,
    }
    for status in GoalStatus:
        for action in Action:
            if (status, action) in allowed:
                assert next_status(status, action) is allowed[(status, action)]
            else:
                with pytest.raises(TransitionError, match=f"cannot {action.value} a goal that is {status.value}"):
                    next_status(status, action)


def test_value_problems() -> None:
    ok = value_problems(direction=Direction.HIGHER_IS_BETTER, start=0, target=10, threshold=5, stretch=12)
    assert ok == []
    assert value_problems(direction=Direction.LOWER_IS_BETTER, start=3, target=5, threshold=None, stretch=None) == [
        ("target_value", "target 5 is above start 3 but the direction is lower_is_better")
    ]
    fields = [
        f for f, _ in value_problems(direction=Direction.HIGHER_IS_BETTER, start=0, target=10, threshold=11, stretch=9)
    ]
    assert fields == ["threshold_value", "stretch_value"]
    assert value_problems(direction=Direction.LOWER_IS_BETTER, start=5, target=2, threshold=None, stretch=1) == []
    assert value_problems(
        direction=Direction.HIGHER_IS_BETTER, start=math.inf, target=1, threshold=None, stretch=None
    ) == [("start_value", "start_value must be a finite number")]
