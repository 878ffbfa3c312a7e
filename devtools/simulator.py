"""Realistic metric streams for the sample organisation's KPIs (``tandem simulate``).

``EventGenerator`` makes the events (and, on request, a share of malformed
messages); ``simulate`` streams them at a rate through ``MetricEmitter`` s, one
per department, so the end-to-end demo can call it as a function.
``sample_catalog`` is the matching KPI catalog, for a tracking service that
has no catalog from goal setting yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from contracts.events import metric_message_key
from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition
from contracts.topics import METRICS
from sdk.emitter import MetricEmitter
from services.common.kafka import create_producer

__all__ = [
    "DEPARTMENTS",
    "SAMPLE_METRICS",
    "EventGenerator",
    "MetricSpec",
    "SimulatedEvent",
    "SimulationStats",
    "sample_catalog",
    "simulate",
]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the sample organisation and how its values behave."""

    department_id: str
    metric: str
    name: str
    unit: str
    aggregation: Aggregation
    direction: Direction
    mean: float
    spread: float
    start_value: float
    target_value: float
    frequency_hours: float
    lower: float | None = None
    upper: float | None = None

    def sample(self, rng: random.Random) -> float:
        value = rng.gauss(self.mean, self.spread)
        if self.lower is not None:
            value = max(self.lower, value)
        if self.upper is not None:
            value = min(self.upper, value)
        return round(value, 2)


SAMPLE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "sales",
        "sales.revenue",
        "Revenue",
        "EUR",
        Aggregation.SUM,
        Direction.HIGHER_IS_BETTER,
        1_800.0,
        900.0,
        0.0,
        5_000_000.0,
        1.0,
        lower=10.0,
    ),
    MetricSpec(
        "sales",
        "sales.orders",
        "Orders",
        "count",
        Aggregation.SUM,
        Direction.HIGHER_IS_BETTER,
        3.0,
        2.0,
        0.0,
        8_000.0,
        1.0,
        lower=1.0,
    ),
    MetricSpec(
        "finance",
        "finance.cost",
        "Operating cost",
        "EUR",
        Aggregation.SUM,
        Direction.LOWER_IS_BETTER,
        900.0,
        400.0,
        3_000_000.0,
        2_500_000.0,
        24.0,
        lower=0.0,
    ),
    MetricSpec(
        "finance",
        "finance.budget_variance",
        "Budget variance",
        "%",
        Aggregation.LAST,
        Direction.LOWER_IS_BETTER,
        3.0,
        1.5,
        8.0,
        2.0,
        24.0,
    ),
    MetricSpec(
        "production",
        "production.output_units",
        "Output",
        "units",
        Aggregation.SUM,
        Direction.HIGHER_IS_BETTER,
        40.0,
        10.0,
        0.0,
        1_200_000.0,
        1.0,
        lower=0.0,
    ),
    MetricSpec(
        "production",
        "production.defect_rate",
        "Defect rate",
        "%",
        Aggregation.AVG,
        Direction.LOWER_IS_BETTER,
        1.8,
        0.6,
        3.0,
        1.0,
        4.0,
        lower=0.0,
        upper=100.0,
    ),
    MetricSpec(
        "production",
        "production.on_time_delivery",
        "On-time delivery",
        "%",
        Aggregation.AVG,
        Direction.HIGHER_IS_BETTER,
        93.0,
        3.0,
        88.0,
        97.0,
        24.0,
        lower=0.0,
        upper=100.0,
    ),
    MetricSpec(
        "hr",
        "hr.attrition_rate",
        "Attrition",
        "%",
        Aggregation.LAST,
        Direction.LOWER_IS_BETTER,
        11.0,
        1.0,
        14.0,
        9.0,
        168.0,
        lower=0.0,
        upper=100.0,
    ),
    MetricSpec(
        "it",
        "it.uptime",
        "Uptime",
        "%",
        Aggregation.AVG,
        Direction.HIGHER_IS_BETTER,
        99.7,
        0.2,
        99.0,
        99.9,
        1.0,
        lower=0.0,
        upper=100.0,
    ),
    MetricSpec(
        "procurement",
        "procurement.supplier_lead_time",
        "Supplier lead time",
        "days",
        Aggregation.AVG,
        Direction.LOWER_IS_BETTER,
        12.0,
        3.0,
        16.0,
        10.0,
        24.0,
        lower=1.0,
    ),
    MetricSpec(
        "quality",
        "quality.first_pass_yield",
        "First-pass yield",
        "%",
        Aggregation.AVG,
        Direction.HIGHER_IS_BETTER,
        95.0,
        2.0,
        92.0,
        98.0,
        24.0,
        lower=0.0,
        upper=100.0,
    ),
)
"""The sample organisation's metrics, one or more per department."""

DEPARTMENTS: tuple[str, ...] = tuple(dict.fromkeys(spec.department_id for spec in SAMPLE_METRICS))


def sample_catalog(cycle_id: str, period_start: date, period_end: date) -> KpiCatalog:
    """A department-level KPI per sample metric (owner = the department that emits it)."""
    return KpiCatalog(
        cycle_id=cycle_id,
        period_start=period_start,
        period_end=period_end,
        kpis=[
            KpiDefinition(
                kpi_id=f"{spec.metric.replace('.', '-')}",
                level=GoalLevel.DEPARTMENT,
                name=spec.name,
                metric=spec.metric,
                unit=spec.unit,
                aggregation=spec.aggregation,
                direction=spec.direction,
                start_value=spec.start_value,
                target_value=spec.target_value,
                owner_department_id=spec.department_id,
                update_frequency_hours=spec.frequency_hours,
                department_id=spec.department_id,
            )
            for spec in SAMPLE_METRICS
        ],
    )


@dataclass(frozen=True)
class SimulatedEvent:
    department_id: str
    key: bytes
    value: bytes
    malformed: bool
    metric: str | None = None
    amount: float | None = None
    unit: str | None = None
    employee_id: str | None = None


_MALFORMED_KINDS = ("not_json", "missing_field", "bad_metric", "naive_time", "wrong_type", "unknown_field")


def believable_means(
    targets: Mapping[str, tuple[Aggregation, float, float]],
    *,
    departments: Sequence[str],
    events: float,
    seed: int = 0,
) -> dict[str, float]:
    """Per-event means that land each metric near its KPI over a stream of ``events`` valid events.

    ``targets``: metric -> (aggregation, start value, target value), e.g. from the cycle's KPIs. A sum's
    events add up to 80-115 % of its target; a level (avg, last) sits 50-110 % of the way from start
    to target. So a demo's compressed tracking stage ends with attainment on the targets' scale, not at
    1 % of them.
    """
    rng = random.Random(seed)
    specs = [s for s in SAMPLE_METRICS if s.department_id in set(departments)]
    per_metric = max(1.0, events / max(1, len(specs)))  # events pick a metric uniformly
    means: dict[str, float] = {}
    for spec in specs:
        if spec.metric not in targets:
            continue
        aggregation, start, target = targets[spec.metric]
        attainment = rng.uniform(0.8, 1.15) if aggregation == Aggregation.SUM else rng.uniform(0.5, 1.1)
        if aggregation == Aggregation.SUM:
            means[spec.metric] = max(0.0, (target - start) * attainment / per_metric)
        elif aggregation in (Aggregation.AVG, Aggregation.LAST):
            means[spec.metric] = start + (target - start) * attainment
    return means


class EventGenerator:
    """Endless stream of sample events for ``departments``; ``malformed`` is the share of broken ones."""

    def __init__(
        self,
        departments: Sequence[str],
        *,
        malformed: float = 0.0,
        seed: int | None = None,
        employees: dict[str, list[str]] | None = None,
        means: Mapping[str, float] | None = None,
    ) -> None:
        """``means``: metric -> the mean value of one event, replacing the sample's (see :func:`believable_means`)."""
        unknown = sorted(set(departments) - set(DEPARTMENTS))
        if unknown:
            raise ValueError(f"unknown department(s) {unknown}; the sample organisation has {list(DEPARTMENTS)}")
        if not 0.0 <= malformed <= 1.0:
            raise ValueError("malformed must be a share between 0 and 1")
        self.specs = [s for s in SAMPLE_METRICS if s.department_id in set(departments)]
        if not self.specs:
            raise ValueError("choose at least one department")
        self.malformed = malformed
        self.rng = random.Random(seed)
        self.employees = employees or {}
        self.means = dict(means or {})

    def next(self, now: datetime | None = None) -> SimulatedEvent:
        spec = self.rng.choice(self.specs)
        now = now or datetime.now(UTC)
        key = metric_message_key(spec.department_id, spec.metric).encode()
        if self.malformed and self.rng.random() < self.malformed:
            return SimulatedEvent(spec.department_id, key, self._broken(spec, now), True)
        people = self.employees.get(spec.department_id)
        employee_id = self.rng.choice(people) if people and spec.aggregation == Aggregation.SUM else None
        payload = {
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "source": f"sim-{spec.department_id}",
            "department_id": spec.department_id,
            "metric": spec.metric,
            "value": self._value(spec),
            "unit": spec.unit,
            "occurred_at": now.isoformat(),
            "employee_id": employee_id,
            "dimensions": {"simulated": "true"},
        }
        return SimulatedEvent(
            spec.department_id,
            key,
            json.dumps(payload).encode(),
            False,
            metric=spec.metric,
            amount=float(payload["value"]),  # type: ignore[arg-type]
            unit=spec.unit,
            employee_id=employee_id,
        )

    def _value(self, spec: MetricSpec) -> float:
        mean = self.means.get(spec.metric)
        if mean is None:
            return spec.sample(self.rng)
        # sums vary a lot event to event; a level (avg, last) only a little around its mean
        spread = abs(mean) * (0.4 if spec.aggregation == Aggregation.SUM else 0.02)
        value = self.rng.gauss(mean, spread)
        return round(max(0.0, value) if spec.aggregation == Aggregation.SUM else value, 2)

    def _broken(self, spec: MetricSpec, now: datetime) -> bytes:
        kind = self.rng.choice(_MALFORMED_KINDS)
        base: dict[str, object] = {
            "event_id": str(uuid.uuid4()),
            "source": f"sim-{spec.department_id}",
            "department_id": spec.department_id,
            "metric": spec.metric,
            "value": self._value(spec),
            "unit": spec.unit,
            "occurred_at": now.isoformat(),
        }
        if kind == "not_json":
            return b"{not json: " + spec.metric.encode()
        if kind == "missing_field":
            del base["value"]
        elif kind == "bad_metric":
            base["metric"] = spec.metric.upper() + "!"
        elif kind == "naive_time":
            base["occurred_at"] = now.replace(tzinfo=None).isoformat()
        elif kind == "wrong_type":
            base["value"] = "lots"
        else:
            base["colour"] = "blue"
        return json.dumps(base).encode()


@dataclass
class SimulationStats:
    sent: int = 0
    malformed: int = 0
    acknowledged: int = 0
    elapsed: float = 0.0
    by_department: dict[str, int] = field(default_factory=dict)


async def simulate(
    *,
    bootstrap_servers: str,
    departments: Sequence[str],
    rate: float,
    duration: float,
    malformed: float = 0.0,
    topic: str = METRICS,
    idempotence: bool = True,
    seed: int | None = None,
    employees: dict[str, list[str]] | None = None,
    progress: Callable[[SimulationStats], None] | None = None,
    means: Mapping[str, float] | None = None,
) -> SimulationStats:
    """Stream ``rate * duration`` events at ``rate`` per second, then flush; returns what was sent.

    A slow machine sends every planned event late rather than fewer events: the count is exact.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    generator = EventGenerator(departments, malformed=malformed, seed=seed, employees=employees, means=means)
    stats = SimulationStats(by_department={d: 0 for d in departments})
    emitters = {
        d: MetricEmitter(bootstrap_servers, source=f"sim-{d}", department_id=d, topic=topic, idempotence=idempotence)
        for d in departments
    }
    raw = await create_producer(bootstrap_servers, idempotence=idempotence, client_id="tandem-simulator-raw")
    raw_futures: list[asyncio.Future[object]] = []
    total = max(1, int(duration * rate))
    tick = 0.05
    started = time.monotonic()
    try:
        for emitter in emitters.values():
            await emitter.start()
        started = time.monotonic()
        while stats.sent < total:
            elapsed = time.monotonic() - started
            due = min(total, int((elapsed + tick) * rate)) - stats.sent
            now = datetime.now(UTC)
            for _ in range(max(0, due)):
                event = generator.next(now)
                stats.sent += 1
                stats.by_department[event.department_id] += 1
                if event.malformed:
                    stats.malformed += 1
                    raw_futures.append(await raw.send(topic, event.value, key=event.key))
                    continue
                assert event.metric is not None and event.amount is not None and event.unit is not None
                await emitters[event.department_id].emit(
                    event.metric,
                    event.amount,
                    event.unit,
                    now,
                    employee_id=event.employee_id,
                    dimensions={"simulated": "true"},
                )
            stats.elapsed = time.monotonic() - started
            stats.acknowledged = sum(e.acknowledged for e in emitters.values())
            if progress is not None:
                progress(stats)
            await asyncio.sleep(max(0.0, started + stats.sent / rate - time.monotonic()))
        for emitter in emitters.values():
            await emitter.flush()
        await asyncio.gather(*raw_futures)
    finally:
        for emitter in emitters.values():
            await emitter.close()
        with contextlib.suppress(Exception):
            await raw.stop()
    stats.elapsed = time.monotonic() - started
    stats.acknowledged = sum(e.acknowledged for e in emitters.values())
    if progress is not None:
        progress(stats)
    return stats
