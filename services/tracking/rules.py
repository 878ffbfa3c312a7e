"""Pure tracking rules: aggregation, event-to-KPI routing, attainment, trend, staleness, who answers
for a stale KPI, and the check-in cadence.

Nothing here does I/O, so unit tests reach every rule directly.

Aggregates keep ``count, sum, min, max`` and the latest value with its
``(occurred_at, event_id)``: merging two aggregates is associative and
commutative, so ``avg`` and ``last`` are exact whatever order (or batches)
events arrive in.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from contracts.events import MetricEvent
from contracts.goals import Aggregation, Direction
from contracts.tracking import LateDataPolicy

__all__ = [
    "CHECK_IN_METRIC",
    "Aggregate",
    "CatalogIndex",
    "EventStatus",
    "KpiRule",
    "Routing",
    "aggregate_value",
    "as_utc",
    "attainment_pct",
    "bucket_start",
    "check_in_due_at",
    "check_in_round",
    "fed_by_check_ins",
    "group_batch_deltas",
    "group_deltas",
    "is_stale",
    "period_bounds",
    "responsible_department",
    "stale_due_at",
    "trend_slope",
]


class EventStatus:
    """What happened to a stored raw event."""

    APPLIED = "applied"
    UNMAPPED = "unmapped"
    DEFERRED = "deferred"
    REJECTED = "rejected"


_ZERO = timedelta(0)


def as_utc(value: datetime) -> datetime:
    """Aware datetime at offset 0 (SQLite hands back naive UTC values)."""
    offset = value.utcoffset()
    if offset is None:
        return value.replace(tzinfo=UTC)
    return value if offset == _ZERO else value.astimezone(UTC)


def period_bounds(period_start: date, period_end: date) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC: the period's end date is included whole."""
    start = datetime.combine(period_start, time.min, tzinfo=UTC)
    end = datetime.combine(period_end, time.min, tzinfo=UTC) + timedelta(days=1)
    return start, end


# --------------------------------------------------------------------------- aggregation


@dataclass
class Aggregate:
    """Running statistics of a series of values; ``merge`` is order-independent."""

    count: int = 0
    total: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    last_value: float | None = None
    last_occurred_at: datetime | None = None
    last_event_id: str | None = None

    def add(self, value: float, occurred_at: datetime, event_id: str) -> None:
        self.count += 1
        self.total += value
        self.minimum = value if self.minimum is None else min(self.minimum, value)
        self.maximum = value if self.maximum is None else max(self.maximum, value)
        if self._is_later(occurred_at, event_id):
            self.last_value = value
            self.last_occurred_at = occurred_at
            self.last_event_id = event_id

    def _is_later(self, occurred_at: datetime, event_id: str) -> bool:
        # Ties on occurred_at are broken by event_id, so 'last' never depends on arrival order.
        if self.last_occurred_at is None or self.last_event_id is None:
            return True
        return (occurred_at, event_id) > (self.last_occurred_at, self.last_event_id)

    def merge(self, other: Aggregate) -> Aggregate:
        result = Aggregate(
            count=self.count + other.count,
            total=self.total + other.total,
            minimum=_pick(min, self.minimum, other.minimum),
            maximum=_pick(max, self.maximum, other.maximum),
            last_value=self.last_value,
            last_occurred_at=self.last_occurred_at,
            last_event_id=self.last_event_id,
        )
        if (
            other.last_occurred_at is not None
            and other.last_event_id is not None
            and result._is_later(other.last_occurred_at, other.last_event_id)
        ):
            result.last_value = other.last_value
            result.last_occurred_at = other.last_occurred_at
            result.last_event_id = other.last_event_id
        return result

    def value(self, aggregation: Aggregation | str) -> float | None:
        return aggregate_value(
            Aggregation(aggregation),
            count=self.count,
            total=self.total,
            minimum=self.minimum,
            maximum=self.maximum,
            last_value=self.last_value,
        )


def _pick(choose: Callable[[float, float], float], a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)


def aggregate_value(
    aggregation: Aggregation,
    *,
    count: int,
    total: float,
    minimum: float | None,
    maximum: float | None,
    last_value: float | None,
) -> float | None:
    """The KPI's current value from its running statistics; ``None`` before any event."""
    if count == 0:
        return None
    match aggregation:
        case Aggregation.SUM:
            return total
        case Aggregation.AVG:
            return total / count
        case Aggregation.LAST:
            return last_value
        case Aggregation.MIN:
            return minimum
        case Aggregation.MAX:
            return maximum
        case Aggregation.COUNT:
            return float(count)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def attainment_pct(*, current: float | None, start: float, target: float, direction: Direction | str) -> float | None:
    """Progress from ``start`` towards ``target`` in percent (100 = target reached), honouring direction.

    Not clamped: below the start value is negative, beyond the target is over 100.
    ``None`` without data.
    """
    if current is None:
        return None
    if target == start:
        reached = current >= target if Direction(direction) == Direction.HIGHER_IS_BETTER else current <= target
        return 100.0 if reached else 0.0
    if Direction(direction) == Direction.HIGHER_IS_BETTER:
        return round((current - start) / (target - start) * 100.0, 4)
    return round((start - current) / (start - target) * 100.0, 4)


def bucket_start(occurred_at: datetime, bucket_seconds: int) -> datetime:
    """Start of the fixed-length bucket (aligned on the Unix epoch) that holds ``occurred_at``."""
    epoch = int(as_utc(occurred_at).timestamp())
    return datetime.fromtimestamp(epoch - epoch % bucket_seconds, tz=UTC)


def trend_slope(values: Sequence[float]) -> float | None:
    """Least-squares slope per bucket of ``values`` (oldest first); ``None`` with fewer than two."""
    n = len(values)
    if n < 2:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class KpiRule:
    """What the consumer needs to know about one KPI to route events to it."""

    cycle_id: str
    kpi_id: str
    metric: str
    owner_department_id: str
    department_id: str | None
    employee_id: str | None
    period_start: datetime
    period_end: datetime  # exclusive
    late_data_policy: LateDataPolicy
    bucket_seconds: int

    def matches(self, event: MetricEvent) -> bool:
        return self.matches_fields(
            metric=event.metric,
            department_id=event.department_id,
            employee_id=event.employee_id,
            dimensions=event.dimensions,
        )

    def matches_fields(
        self, *, metric: str, department_id: str, employee_id: str | None, dimensions: Mapping[str, str]
    ) -> bool:
        """Same metric from the data owner; per-person KPIs need the person; a KPI of another
        department than its owner needs ``dimensions['department_id']`` to name it."""
        if metric != self.metric or department_id != self.owner_department_id:
            return False
        if self.employee_id is not None and employee_id != self.employee_id:
            return False
        return (
            self.department_id is None
            or self.department_id == self.owner_department_id
            or dimensions.get("department_id") == self.department_id
        )

    def in_period(self, occurred_at: datetime) -> bool:
        return self.period_start <= occurred_at < self.period_end


@dataclass
class Routing:
    status: str
    targets: list[KpiRule] = field(default_factory=list)
    reason: str | None = None


_UNMAPPED = Routing(EventStatus.UNMAPPED)


_PERIOD_MARGIN = 1.0
"""Seconds kept clear of a period bound on the float fast path of ``route_batch``, so rounding in
``datetime.timestamp()`` can never change the outcome; events that close to a bound take ``route``."""


@dataclass(frozen=True)
class _RouteEntry:
    """The cached routing of one (metric, department, person, department label) key."""

    routing: Routing
    """What ``route`` returns when the event is inside every candidate's period."""
    after: float
    """Epoch seconds: events at ``after <= t < before`` are inside every candidate's period."""
    before: float


@dataclass
class CatalogIndex:
    """Every registered KPI rule, indexed by metric key."""

    rules: list[KpiRule] = field(default_factory=list)
    version: int = 0
    """The catalog version (``tracking_catalog_version``) these rules were loaded at."""
    by_metric: dict[str, list[KpiRule]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_metric = defaultdict(list)
        for rule in self.rules:
            self.by_metric[rule.metric].append(rule)
        self._matching: dict[tuple[str, str, str | None, str | None], list[KpiRule]] = {}
        self._entries: dict[tuple[str, str, str | None, str | None], _RouteEntry] = {}

    def _entry(self, key: tuple[str, str, str | None, str | None], event: MetricEvent) -> _RouteEntry:
        candidates = self.candidates(event)
        if not candidates:
            entry = _RouteEntry(_UNMAPPED, -math.inf, math.inf)
        else:
            entry = _RouteEntry(
                Routing(EventStatus.APPLIED, candidates),
                max(r.period_start.timestamp() for r in candidates) + _PERIOD_MARGIN,
                min(r.period_end.timestamp() for r in candidates) - _PERIOD_MARGIN,
            )
        if len(self._entries) > 100_000:
            self._entries.clear()
        self._entries[key] = entry
        return entry

    def route_batch(self, events: Sequence[MetricEvent]) -> tuple[list[Routing], list[float]]:
        """``route`` for each event, plus ``occurred_at.timestamp()`` of each event.

        Same result as ``route`` per event; events well inside every candidate KPI's period
        (nearly all of them) share one cached ``Routing`` per key and cost a float comparison.
        """
        routes: list[Routing] = []
        stamps: list[float] = []
        entries = self._entries
        for event in events:
            key = (event.metric, event.department_id, event.employee_id, event.dimensions.get("department_id"))
            entry = entries.get(key)
            if entry is None:
                entry = self._entry(key, event)
            stamp = event.occurred_at.timestamp()
            stamps.append(stamp)
            routes.append(entry.routing if entry.after <= stamp < entry.before else self.route(event))
        return routes, stamps

    def candidates(self, event: MetricEvent) -> list[KpiRule]:
        """The KPIs whose mapping matches ``event`` (cached per metric, department, person and label)."""
        key = (event.metric, event.department_id, event.employee_id, event.dimensions.get("department_id"))
        found = self._matching.get(key)
        if found is None:
            if len(self._matching) > 100_000:
                self._matching.clear()
            found = self._matching[key] = [r for r in self.by_metric.get(event.metric, ()) if r.matches(event)]
        return found

    def route(self, event: MetricEvent) -> Routing:
        """Which KPIs count ``event`` and what to record about it (the late-data policy applies per cycle)."""
        candidates = self.candidates(event)
        if not candidates:
            return _UNMAPPED
        occurred_at = as_utc(event.occurred_at)
        if all(r.period_start <= occurred_at < r.period_end for r in candidates):
            return Routing(EventStatus.APPLIED, candidates)
        targets: list[KpiRule] = []
        rejections: list[str] = []
        for rule in candidates:
            if rule.in_period(occurred_at) or rule.late_data_policy == LateDataPolicy.ACCEPT:
                targets.append(rule)
            elif rule.late_data_policy == LateDataPolicy.REJECT:
                rejections.append(
                    f"occurred_at {occurred_at.isoformat()} is outside the period of cycle {rule.cycle_id!r} "
                    f"({rule.period_start.date()} to {(rule.period_end - timedelta(days=1)).date()}) "
                    "and its late-data policy is 'reject'"
                )
        if targets:
            return Routing(EventStatus.APPLIED, targets)
        if rejections:
            return Routing(EventStatus.REJECTED, reason=sorted(set(rejections))[0])
        return Routing(EventStatus.DEFERRED)


def group_deltas(
    applied: Iterable[tuple[float, datetime, str, list[KpiRule]]],
) -> tuple[dict[tuple[str, str], Aggregate], dict[tuple[str, str, datetime], Aggregate]]:
    """Per-(cycle, KPI) and per-(cycle, KPI, bucket) aggregates of one batch of new events.

    ``applied`` yields ``(value, occurred_at in UTC, event_id, target KPIs)``. Events are added
    once, to their bucket; the per-KPI aggregate is the merge of its buckets.
    """
    per_bucket: dict[tuple[str, str, datetime], Aggregate] = {}
    bucket_cache: dict[tuple[int, int], datetime] = {}
    for value, occurred_at, event_id, targets in applied:
        epoch = int(occurred_at.timestamp())
        for rule in targets:
            size = rule.bucket_seconds
            slot = (epoch - epoch % size, size)
            start = bucket_cache.get(slot)
            if start is None:
                start = bucket_cache[slot] = datetime.fromtimestamp(slot[0], tz=UTC)
            key = (rule.cycle_id, rule.kpi_id, start)
            aggregate = per_bucket.get(key)
            if aggregate is None:
                aggregate = per_bucket[key] = Aggregate()
            aggregate.add(value, occurred_at, event_id)
    per_kpi: dict[tuple[str, str], Aggregate] = {}
    for (cycle_id, kpi_id, _start), aggregate in per_bucket.items():
        current = per_kpi.get((cycle_id, kpi_id))
        per_kpi[(cycle_id, kpi_id)] = aggregate if current is None else current.merge(aggregate)
    return per_kpi, per_bucket


def group_batch_deltas(
    indices: Iterable[int],
    *,
    routes: Sequence[Routing],
    stamps: Sequence[float],
    values: Sequence[float],
    occurred: Sequence[datetime],
    event_ids: Callable[[int], str],
) -> tuple[dict[tuple[str, str], Aggregate], dict[tuple[str, str, datetime], Aggregate]]:
    """``group_deltas`` over a columnar batch: the events at ``indices`` (in arrival order) with
    their routing, ``occurred_at`` as epoch seconds and as datetime, value and ``event_ids(i)``.

    Events sharing a routing and a time slot (the largest span that lies inside one bucket of
    every target) are summarised once with builtins, then merged into each target's bucket; the
    event id is only formatted to break a tie on the latest ``occurred_at``.
    Only ``APPLIED`` routings count.
    """
    slot_sizes: dict[int, int] = {}
    groups: dict[tuple[int, int], list[int]] = {}
    for i in indices:
        routing = routes[i]
        if routing.status != EventStatus.APPLIED or not routing.targets:
            continue
        size = slot_sizes.get(id(routing))
        if size is None:
            size = slot_sizes[id(routing)] = math.gcd(*(r.bucket_seconds for r in routing.targets))
        epoch = int(stamps[i])
        key = (id(routing), epoch - epoch % size)
        members = groups.get(key)
        if members is None:
            groups[key] = [i]
        else:
            members.append(i)

    by_id = {id(routes[members[0]]): routes[members[0]] for members in groups.values()}
    per_bucket: dict[tuple[str, str, datetime], Aggregate] = {}
    bucket_cache: dict[int, datetime] = {}
    for (routing_id, slot), members in groups.items():
        group_values = [values[i] for i in members]
        latest = max(stamps[i] for i in members)
        tied = [i for i in members if stamps[i] == latest]
        # Equal floats hold the latest instant (timestamp() rounding is monotonic); compare exactly.
        last = tied[0] if len(tied) == 1 else max(tied, key=lambda i: (occurred[i], event_ids(i)))
        summary = Aggregate(
            count=len(members),
            total=sum(group_values),
            minimum=min(group_values),
            maximum=max(group_values),
            last_value=values[last],
            last_occurred_at=as_utc(occurred[last]),
            last_event_id=event_ids(last),
        )
        for rule in by_id[routing_id].targets:
            start_epoch = slot - slot % rule.bucket_seconds
            start = bucket_cache.get(start_epoch)
            if start is None:
                start = bucket_cache[start_epoch] = datetime.fromtimestamp(start_epoch, tz=UTC)
            bucket_key = (rule.cycle_id, rule.kpi_id, start)
            current = per_bucket.get(bucket_key)
            per_bucket[bucket_key] = summary if current is None else current.merge(summary)
    per_kpi: dict[tuple[str, str], Aggregate] = {}
    for (cycle_id, kpi_id, _start), aggregate in per_bucket.items():
        current_kpi = per_kpi.get((cycle_id, kpi_id))
        per_kpi[(cycle_id, kpi_id)] = aggregate if current_kpi is None else current_kpi.merge(aggregate)
    return per_kpi, per_bucket


# --------------------------------------------------------------------------- staleness


def stale_due_at(
    *,
    last_received_at: datetime | None,
    registered_at: datetime,
    period_start: datetime,
    frequency_hours: float,
    grace_hours: float,
) -> datetime:
    """When the data owner's next event is due: the last arrival (or, before any, the later of
    registration and period start) plus the update frequency plus the grace period."""
    baseline = as_utc(last_received_at) if last_received_at is not None else max(as_utc(registered_at), period_start)
    return baseline + timedelta(hours=frequency_hours + grace_hours)


def is_stale(
    *,
    now: datetime,
    last_received_at: datetime | None,
    registered_at: datetime,
    period_start: datetime,
    period_end: datetime,
    frequency_hours: float,
    grace_hours: float,
) -> bool:
    """A KPI is stale inside its cycle period once its due time has passed; outside the
    period nothing is owed, so it is never stale there."""
    if not period_start <= now < period_end:
        return False
    due = stale_due_at(
        last_received_at=last_received_at,
        registered_at=registered_at,
        period_start=period_start,
        frequency_hours=frequency_hours,
        grace_hours=grace_hours,
    )
    return now > due


def fed_by_check_ins(metric: str) -> bool:
    """Whether a KPI takes its value from check-ins rather than metric events (``CHECK_IN_METRIC``)."""
    return metric == CHECK_IN_METRIC


CHECK_IN_METRIC = ""
"""The metric of a KPI without one (an OKR key result): no ``MetricEvent`` can carry an empty
metric, so nothing routes to it; its value comes from check-ins, and it is never stale for want
of data (its check-in cadence is reminded instead)."""


# --------------------------------------------------------------------------- who answers for stale data


def responsible_department(
    *,
    owner_department_id: str,
    counts_for: Sequence[str | None],
    parents: Mapping[str, str | None],
    cycle_departments: Collection[str],
) -> str | None:
    """The cycle department whose workflow reminds about a KPI's data: the nearest one at or above
    the data owner; for a data owner outside the cycle, the nearest one at or above the first of
    ``counts_for`` that has one (the KPI's department, then its person's); else the cycle's first.

    Exactly one department per KPI, so a stale KPI is reminded once, whoever owns its data.
    """
    for start in (owner_department_id, *counts_for):
        department = start
        seen: set[str] = set()
        while department is not None and department not in seen:
            if department in cycle_departments:
                return department
            seen.add(department)
            department = parents.get(department)
    return min(cycle_departments) if cycle_departments else None


# --------------------------------------------------------------------------- check-in cadence


def check_in_due_at(*, last_check_in_at: datetime | None, registered_at: datetime, cadence_days: int) -> datetime:
    """When the next check-in on a KPI is due: one cadence after the last (or after registration)."""
    return as_utc(last_check_in_at or registered_at) + timedelta(days=cadence_days)


def check_in_round(*, now: datetime, due_at: datetime, cadence_days: int) -> int | None:
    """Which reminder an overdue check-in is at: 0 from its due time, 1 a cadence later, and so on
    (one reminder per round); ``None`` while it is not overdue."""
    if now <= due_at:
        return None
    return int((now - due_at) / timedelta(days=cadence_days))
