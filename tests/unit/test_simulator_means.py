"""Simulated department data on the KPIs' own scale: a demo's tracking stage ends near its targets."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from contracts.goals import Aggregation
from devtools.simulator import EventGenerator, believable_means

TARGETS = {
    "sales.revenue": (Aggregation.SUM, 0.0, 48_000_000.0),
    "sales.forecast_accuracy": (Aggregation.AVG, 70.0, 85.0),
    "finance.budget_variance": (Aggregation.LAST, 6.0, 2.0),
}


def test_a_stream_of_the_planned_length_adds_up_to_about_the_target() -> None:
    events = 3_000
    means = believable_means(TARGETS, departments=["sales", "finance"], events=events, seed=3)
    generator = EventGenerator(["sales", "finance"], seed=4, means=means)
    totals: dict[str, float] = {}
    last: dict[str, float] = {}
    now = datetime(2026, 3, 1, tzinfo=UTC)
    for _ in range(events):
        event = generator.next(now)
        assert event.metric is not None and event.amount is not None
        totals[event.metric] = totals.get(event.metric, 0.0) + event.amount
        last[event.metric] = event.amount
    assert 0.65 * 48_000_000 <= totals["sales.revenue"] <= 1.35 * 48_000_000, totals["sales.revenue"]
    assert 2.0 - 1 <= last["finance.budget_variance"] <= 6.0 + 1  # between start and target, not 1 % of it
    assert "sales.forecast_accuracy" not in means  # no department system simulates it


def test_metrics_without_a_kpi_keep_the_sample_values() -> None:
    means = believable_means(TARGETS, departments=["production"], events=100, seed=1)
    assert means == {}
    generator = EventGenerator(["production"], seed=random.Random(2).randint(0, 99), means=means)
    assert generator.next().amount is not None
