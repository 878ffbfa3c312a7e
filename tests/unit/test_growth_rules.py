"""The growth-path rules as pure functions: the ladder's checks, performance tiers, the 9-box and
promotion readiness with its next steps."""

from __future__ import annotations

import pytest

from services.committee.growth import (
    Level,
    ReadinessStatus,
    Tier,
    check_levels,
    nine_box,
    performance_tier,
    readiness,
)
from services.common.errors import DomainError

G5 = Level(grade="G5", title="Specialist", competencies={"collab": 3, "delivery": 3})
G6 = Level(grade="G6", title="Senior", competencies={"collab": 4, "delivery": 4})
NAMES = {"collab": "Collaboration", "delivery": "Delivery"}


def test_a_ladder_keeps_every_competency_at_the_same_or_a_higher_expectation() -> None:
    check_levels([G5, G6])
    with pytest.raises(DomainError) as skipped:
        check_levels([G5, Level(grade="G6", title="Senior", competencies={"collab": 4})])
    assert skipped.value.field == "levels[1].competencies" and "skips delivery" in skipped.value.message
    with pytest.raises(DomainError) as lower:
        check_levels([G5, Level(grade="G6", title="Senior", competencies={"collab": 4, "delivery": 2})])
    assert lower.value.field == "levels[1].competencies" and "expects less of delivery" in lower.value.message
    with pytest.raises(DomainError) as twice:
        check_levels([G5, G5])
    assert twice.value.field == "levels[1].grade"


@pytest.mark.parametrize(
    ("score", "tier"), [(1.0, Tier.LOW), (2.32, Tier.LOW), (2.34, Tier.MEDIUM), (3.66, Tier.MEDIUM), (3.67, Tier.HIGH)]
)
def test_performance_is_the_third_of_the_scale_the_score_sits_in(score: float, tier: Tier) -> None:
    assert performance_tier(score, 1, 5) == tier


def test_the_nine_box_numbers_performance_columns_and_potential_rows() -> None:
    assert [nine_box(p, q) for p in Tier for q in Tier] == list(range(1, 10))
    assert nine_box(Tier.HIGH, Tier.MEDIUM) == 8


def test_readiness_from_the_profile_and_the_last_two_cycles() -> None:
    ready = readiness(next_level=G6, profile={"collab": 4, "delivery": 5}, performances=[Tier.MEDIUM, Tier.HIGH],
                      names=NAMES)  # fmt: skip
    assert (ready.status, ready.met, ready.total, ready.next_steps) == (ReadinessStatus.READY, 2, 2, [])
    # every competency met but a low cycle among the last two: not yet ready
    dip = readiness(
        next_level=G6, profile={"collab": 4, "delivery": 4}, performances=[Tier.LOW, Tier.HIGH], names=NAMES
    )
    assert dip.status == ReadinessStatus.DEVELOPING and "a low one in the last two cycles" in dip.reasons[1]
    half = readiness(next_level=G6, profile={"collab": 3, "delivery": 5}, performances=[Tier.MEDIUM], names=NAMES)
    assert half.status == ReadinessStatus.DEVELOPING
    (step,) = half.next_steps
    assert (step.competency_id, step.actual, step.expected, step.gap) == ("collab", 3, 4, 1)
    assert step.text_en == "Raise Collaboration from 3 to 4, as Senior expects"
    assert step.text_zh == "将Collaboration从3提升到4（Senior的要求）"
    never = readiness(next_level=G6, profile={}, performances=[Tier.MEDIUM], names=NAMES)
    assert never.status == ReadinessStatus.NOT_YET and [s.actual for s in never.next_steps] == [None, None]
    assert "not rated yet" in never.next_steps[0].text_en and "尚无评分" in never.next_steps[0].text_zh
    top = readiness(next_level=None, profile={"collab": 5}, performances=[Tier.HIGH], names=NAMES)
    assert (top.status, top.next_grade, top.next_steps) == (ReadinessStatus.TOP_LEVEL, None, [])
