"""Bonus allocation: exact to the cent (property-based), caps respected, over-pool rejected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.errors import DomainError
from services.results.allocation import Candidate, allocate_pool, cap_cents
from services.results.policy import BonusCaps, LinearCurve, RatingMultiplierCurve

RATINGS = ("below", "meets", "exceeds")
MULTIPLIERS = RatingMultiplierCurve(multipliers={"below": 0.0, "meets": 1.0, "exceeds": 1.5})

people = st.lists(
    st.tuples(st.floats(min_value=1, max_value=5, allow_nan=False), st.sampled_from(RATINGS)),
    min_size=0,
    max_size=40,
).map(lambda rows: [Candidate(f"e{i:03d}", score, rating) for i, (score, rating) in enumerate(rows)])
caps = st.builds(
    BonusCaps,
    max_pct_of_pool=st.one_of(st.none(), st.floats(min_value=0.5, max_value=100, allow_nan=False)),
    max_cents=st.one_of(st.none(), st.integers(min_value=0, max_value=5_000_000)),
)


@settings(max_examples=300, deadline=None)
@given(
    pool=st.integers(min_value=0, max_value=10**11),
    candidates=people,
    curve=st.sampled_from([MULTIPLIERS, LinearCurve(), LinearCurve(floor_score=2.5)]),
    bonus_caps=caps,
)
def test_allocation_sums_exactly_to_the_pool_and_respects_caps(
    pool: int, candidates: list[Candidate], curve: LinearCurve | RatingMultiplierCurve, bonus_caps: BonusCaps
) -> None:
    outcome = allocate_pool(pool_cents=pool, candidates=candidates, curve=curve, caps=bonus_caps, scale_min=1.0)
    amounts = [line.amount_cents for line in outcome.lines]
    assert sum(amounts) + outcome.unallocated_cents == pool
    assert outcome.allocated_cents == sum(amounts) <= pool
    assert all(isinstance(a, int) and a >= 0 for a in amounts)
    cap = cap_cents(bonus_caps, pool)
    if cap is not None:
        assert all(a <= cap for a in amounts)
    weighted = [line for line in outcome.lines if line.weight > 0]
    if weighted and cap is None:
        assert outcome.unallocated_cents == 0  # without caps every cent goes out
    assert all(line.amount_cents == 0 for line in outcome.lines if line.weight == 0)


@settings(max_examples=200, deadline=None)
@given(pool=st.integers(min_value=0, max_value=10**9), candidates=people.filter(lambda c: len(c) >= 2))
def test_a_higher_weight_never_gets_less(pool: int, candidates: list[Candidate]) -> None:
    outcome = allocate_pool(pool_cents=pool, candidates=candidates, curve=LinearCurve(), caps=BonusCaps(), scale_min=1)
    ordered = sorted(outcome.lines, key=lambda line: line.weight)
    # Largest-remainder rounding moves any share by less than one cent.
    for low, high in zip(ordered, ordered[1:], strict=False):
        assert high.amount_cents >= low.amount_cents - 1


def test_largest_remainder_golden_example() -> None:
    three = [Candidate("a", 3.0, "meets"), Candidate("b", 3.0, "meets"), Candidate("c", 3.0, "meets")]
    outcome = allocate_pool(pool_cents=100, candidates=three, curve=MULTIPLIERS, caps=BonusCaps(), scale_min=1)
    # 33.33.. each: one cent left over goes to the first by id (equal remainders).
    assert [line.amount_cents for line in outcome.lines] == [34, 33, 33]

    mixed = [Candidate("a", 4.6, "exceeds"), Candidate("b", 3.0, "meets"), Candidate("c", 2.0, "below")]
    outcome = allocate_pool(pool_cents=1_000_001, candidates=mixed, curve=MULTIPLIERS, caps=BonusCaps(), scale_min=1)
    # 1.5 : 1 : 0 -> 600000.6 and 400000.4 -> a gets the extra cent (larger remainder 0.6).
    assert [line.amount_cents for line in outcome.lines] == [600_001, 400_000, 0]


def test_caps_redistribute_and_leave_the_rest_unallocated_when_everyone_is_capped() -> None:
    people_ = [Candidate("a", 5.0, "exceeds"), Candidate("b", 2.0, "meets"), Candidate("c", 2.0, "meets")]
    outcome = allocate_pool(
        pool_cents=10_000, candidates=people_, curve=LinearCurve(), caps=BonusCaps(max_pct_of_pool=50), scale_min=1
    )
    # Linear weights 4 : 1 : 1 -> a would get 6666.67 > cap 5000; the other 5000 is split 2500 / 2500.
    assert [(line.amount_cents, line.capped) for line in outcome.lines] == [(5000, True), (2500, False), (2500, False)]
    assert outcome.unallocated_cents == 0

    capped_all = allocate_pool(
        pool_cents=10_000, candidates=people_, curve=LinearCurve(), caps=BonusCaps(max_cents=3000), scale_min=1
    )
    assert [line.amount_cents for line in capped_all.lines] == [3000, 3000, 3000]
    assert capped_all.unallocated_cents == 1000
    assert "1000 cents stay unallocated" in capped_all.notes[0]


def test_an_allocation_over_the_pool_is_rejected_with_the_amounts() -> None:
    people_ = [Candidate("a", 4.0, "meets"), Candidate("b", 3.0, "meets")]
    with pytest.raises(DomainError) as error:
        allocate_pool(
            pool_cents=5_000,
            candidates=people_,
            curve=MULTIPLIERS,
            caps=BonusCaps(),
            scale_min=1,
            fixed_cents={"a": 4_000, "b": 1_500},
        )
    assert error.value.status_code == 422
    assert "5500 cents" in error.value.message and "5000 cents" in error.value.message
    assert "over by 500" in error.value.message


def test_fixed_amounts_are_kept_and_the_rest_is_shared() -> None:
    people_ = [Candidate("a", 4.0, "meets"), Candidate("b", 3.0, "meets"), Candidate("c", 3.0, "exceeds")]
    outcome = allocate_pool(
        pool_cents=10_000, candidates=people_, curve=MULTIPLIERS, caps=BonusCaps(), scale_min=1, fixed_cents={"a": 1}
    )
    # 9999 split 1 : 1.5 -> 3999.6 and 5999.4; the larger remainder (b) gets the odd cent.
    assert [(line.amount_cents, line.fixed) for line in outcome.lines] == [(1, True), (4000, False), (5999, False)]


def test_a_rating_without_a_multiplier_is_named() -> None:
    with pytest.raises(DomainError, match=r"no multiplier for rating\(s\) \['outstanding'\]"):
        allocate_pool(
            pool_cents=100,
            candidates=[Candidate("a", 5.0, "outstanding")],
            curve=MULTIPLIERS,
            caps=BonusCaps(),
            scale_min=1,
        )


def test_the_rule_module_imports_no_framework() -> None:
    """``allocation`` stays a pure rule: importing it loads no web, database or Kafka library."""
    import subprocess
    import sys

    probe = (
        "import sys, services.results.allocation; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'starlette', 'sqlalchemy', 'aiokafka', 'confluent_kafka', 'httpx'}))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
