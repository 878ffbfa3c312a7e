"""Aggregation math, event routing (late-data policies) and staleness rules of tracking."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.events import MetricEvent
from contracts.goals import Aggregation, Direction
from contracts.tracking import LateDataPolicy
from services.tracking.ingest import parse_message
from services.tracking.rules import (
    Aggregate,
    CatalogIndex,
    EventStatus,
    KpiRule,
    attainment_pct,
    bucket_start,
    group_deltas,
    is_stale,
    period_bounds,
    stale_due_at,
    trend_slope,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
START, END = period_bounds(date(2026, 1, 1), date(2026, 3, 31))


def rule(**overrides: Any) -> KpiRule:
    data: dict[str, Any] = {
        "cycle_id": "c1",
        "kpi_id": "revenue",
        "metric": "sales.revenue",
        "owner_department_id": "sales",
        "department_id": "sales",
        "employee_id": None,
        "period_start": START,
        "period_end": END,
        "late_data_policy": LateDataPolicy.ACCEPT,
        "bucket_seconds": 3600,
    }
    data.update(overrides)
    return KpiRule(**data)


def event(**overrides: Any) -> MetricEvent:
    data: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "source": "crm",
        "department_id": "sales",
        "metric": "sales.revenue",
        "value": 10.0,
        "unit": "EUR",
        "occurred_at": T0,
    }
    data.update(overrides)
    return MetricEvent(**data)


# --------------------------------------------------------------------------- aggregation


def test_each_aggregation_from_running_statistics() -> None:
    agg = Aggregate()
    for i, value in enumerate([5.0, 1.0, 9.0, 3.0]):
        agg.add(value, T0 + timedelta(minutes=i), f"e{i}")
    assert agg.value(Aggregation.SUM) == 18.0
    assert agg.value(Aggregation.AVG) == 4.5
    assert agg.value(Aggregation.MIN) == 1.0
    assert agg.value(Aggregation.MAX) == 9.0
    assert agg.value(Aggregation.COUNT) == 4.0
    assert agg.value(Aggregation.LAST) == 3.0  # latest occurred_at, not the largest value
    assert Aggregate().value(Aggregation.SUM) is None


def test_last_is_by_occurred_at_not_arrival_and_ties_break_on_event_id() -> None:
    late_arrival = Aggregate()
    late_arrival.add(7.0, T0 + timedelta(hours=1), "b")
    late_arrival.add(2.0, T0, "a")  # arrives later but happened earlier
    assert late_arrival.value(Aggregation.LAST) == 7.0
    tie_one, tie_two = Aggregate(), Aggregate()
    tie_one.add(1.0, T0, "a")
    tie_one.add(2.0, T0, "b")
    tie_two.add(2.0, T0, "b")
    tie_two.add(1.0, T0, "a")
    assert tie_one.value(Aggregation.LAST) == tie_two.value(Aggregation.LAST) == 2.0


@given(
    st.lists(
        st.tuples(st.integers(-10_000, 10_000), st.integers(0, 50)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 40),
    st.randoms(use_true_random=False),
)
def test_merging_batches_in_any_order_equals_one_pass(
    values: list[tuple[int, int]], split: int, rng: random.Random
) -> None:
    items = [(float(v), T0 + timedelta(minutes=m), f"e{i:03d}") for i, (v, m) in enumerate(values)]
    whole = Aggregate()
    for item in items:
        whole.add(*item)
    shuffled = items[:]
    rng.shuffle(shuffled)
    first, second = Aggregate(), Aggregate()
    for item in shuffled[:split]:
        first.add(*item)
    for item in shuffled[split:]:
        second.add(*item)
    for merged in (first.merge(second), second.merge(first)):
        assert merged.count == whole.count
        assert merged.total == pytest.approx(whole.total)
        assert merged.minimum == whole.minimum and merged.maximum == whole.maximum
        assert (merged.last_value, merged.last_occurred_at) == (whole.last_value, whole.last_occurred_at)


def test_batch_deltas_group_per_kpi_and_bucket() -> None:
    kpi = rule()
    events = [event(value=1.0), event(value=2.0, occurred_at=T0 + timedelta(hours=1))]
    per_kpi, per_bucket = group_deltas((e.value, e.occurred_at, str(e.event_id), [kpi]) for e in events)
    assert per_kpi[("c1", "revenue")].total == 3.0
    assert sorted(a.total for a in per_bucket.values()) == [1.0, 2.0]


# --------------------------------------------------------------------------- attainment, trend


@pytest.mark.parametrize(
    ("current", "start", "target", "direction", "expected"),
    [
        (50.0, 0.0, 100.0, Direction.HIGHER_IS_BETTER, 50.0),
        (120.0, 0.0, 100.0, Direction.HIGHER_IS_BETTER, 120.0),
        (2.0, 3.0, 1.0, Direction.LOWER_IS_BETTER, 50.0),  # defect rate 3% -> 1%, now 2%
        (4.0, 3.0, 1.0, Direction.LOWER_IS_BETTER, -50.0),
        (5.0, 5.0, 5.0, Direction.HIGHER_IS_BETTER, 100.0),
        (4.0, 5.0, 5.0, Direction.HIGHER_IS_BETTER, 0.0),
        (None, 0.0, 1.0, Direction.HIGHER_IS_BETTER, None),
    ],
)
def test_attainment_honours_direction(
    current: float | None, start: float, target: float, direction: Direction, expected: float | None
) -> None:
    assert attainment_pct(current=current, start=start, target=target, direction=direction) == expected


def test_trend_slope_and_buckets() -> None:
    assert trend_slope([1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert trend_slope([5.0]) is None
    assert bucket_start(datetime(2026, 3, 1, 12, 34, tzinfo=UTC), 3600) == datetime(2026, 3, 1, 12, tzinfo=UTC)


# --------------------------------------------------------------------------- routing


def test_routing_matches_owner_person_and_department_dimension() -> None:
    person = rule(kpi_id="rev-e1", employee_id="e1", department_id=None)
    cross = rule(kpi_id="cost-prod", metric="finance.cost", owner_department_id="finance", department_id="production")
    index = CatalogIndex([rule(), person, cross])
    assert {r.kpi_id for r in index.route(event(employee_id="e1")).targets} == {"revenue", "rev-e1"}
    assert {r.kpi_id for r in index.route(event(employee_id="e2")).targets} == {"revenue"}
    assert index.route(event(department_id="finance")).status == EventStatus.UNMAPPED  # not the data owner
    assert index.route(event(metric="sales.unknown")).status == EventStatus.UNMAPPED
    cost = event(department_id="finance", metric="finance.cost")
    assert index.route(cost).status == EventStatus.UNMAPPED
    labelled = event(department_id="finance", metric="finance.cost", dimensions={"department_id": "production"})
    routed = index.route(labelled)
    assert [r.kpi_id for r in routed.targets] == ["cost-prod"]


@pytest.mark.parametrize(
    ("policy", "status"),
    [
        (LateDataPolicy.ACCEPT, EventStatus.APPLIED),
        (LateDataPolicy.REJECT, EventStatus.REJECTED),
        (LateDataPolicy.NEXT_PERIOD, EventStatus.DEFERRED),
    ],
)
def test_late_data_policy_for_events_outside_the_period(policy: LateDataPolicy, status: str) -> None:
    index = CatalogIndex([rule(late_data_policy=policy)])
    late = event(occurred_at=datetime(2026, 4, 2, tzinfo=UTC))
    routed = index.route(late)
    assert routed.status == status
    if status == EventStatus.REJECTED:
        assert routed.reason is not None and "outside the period of cycle 'c1'" in routed.reason
    assert index.route(event(occurred_at=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))).status == EventStatus.APPLIED


def test_an_event_in_another_cycles_period_is_not_rejected_by_the_old_cycle() -> None:
    old = rule(late_data_policy=LateDataPolicy.REJECT)
    new_start, new_end = period_bounds(date(2026, 4, 1), date(2026, 6, 30))
    new = rule(cycle_id="c2", period_start=new_start, period_end=new_end, late_data_policy=LateDataPolicy.REJECT)
    routed = CatalogIndex([old, new]).route(event(occurred_at=datetime(2026, 4, 2, tzinfo=UTC)))
    assert routed.status == EventStatus.APPLIED and [r.cycle_id for r in routed.targets] == ["c2"]


def test_parse_message_reasons_are_readable() -> None:
    assert parse_message(b"{nope").startswith("message is not valid JSON")  # type: ignore[union-attr]
    assert parse_message(None) == "message has no value (tombstone)"
    reason = parse_message(b'{"event_id": "x", "source": "crm"}')
    assert isinstance(reason, str) and reason.startswith("contract violation:") and "event_id" in reason
    good = event()
    assert parse_message(good.model_dump_json().encode()) == good


# --------------------------------------------------------------------------- staleness


def stale(now: datetime, last: datetime | None, *, freq: float = 24, grace: float = 2) -> bool:
    return is_stale(
        now=now,
        last_received_at=last,
        registered_at=datetime(2026, 1, 10, tzinfo=UTC),
        period_start=START,
        period_end=END,
        frequency_hours=freq,
        grace_hours=grace,
    )


def test_stale_only_after_frequency_plus_grace() -> None:
    last = datetime(2026, 2, 1, 8, tzinfo=UTC)
    assert not stale(last + timedelta(hours=26), last)  # exactly at the deadline: still fresh
    assert stale(last + timedelta(hours=26, seconds=1), last)
    assert not stale(last + timedelta(hours=25), last, grace=2)


def test_without_any_event_the_clock_starts_at_registration_or_period_start() -> None:
    assert not stale(datetime(2026, 1, 11, 1, tzinfo=UTC), None)
    assert stale(datetime(2026, 1, 11, 3, tzinfo=UTC), None)
    due = stale_due_at(
        last_received_at=None,
        registered_at=datetime(2025, 12, 1, tzinfo=UTC),
        period_start=START,
        frequency_hours=24,
        grace_hours=0,
    )
    assert due == START + timedelta(hours=24)


def test_nothing_is_stale_outside_the_period() -> None:
    old = datetime(2025, 1, 1, tzinfo=UTC)
    assert not stale(datetime(2026, 4, 2, tzinfo=UTC), old)
    assert not stale(datetime(2025, 12, 31, tzinfo=UTC), old)
