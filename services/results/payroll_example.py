"""A reference downstream consumer of ``ResultsPublished`` (what payroll would do).

Delivery on ``cycle.events.v1`` is at-least-once, so the consumer keeps the ids of
the events it has applied and ignores repeats. A real consumer stores those ids in
its own database in the same transaction as the payouts it records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.events import DomainEvent
from contracts.results import RESULTS_PUBLISHED, ResultsPublishedPayload

__all__ = ["PayrollLedger", "apply_event"]


@dataclass
class PayrollLedger:
    applied_event_ids: set[str] = field(default_factory=set)
    payouts: dict[tuple[str, str], tuple[int, str | None]] = field(default_factory=dict)
    """(cycle_id, employee_id) -> (bonus cents, currency)."""
    duplicates_ignored: int = 0


def apply_event(ledger: PayrollLedger, raw: bytes | str) -> bool:
    """Apply one message from ``cycle.events.v1``; returns False for a repeat or another event type."""
    event = DomainEvent.model_validate_json(raw)
    if event.type != RESULTS_PUBLISHED:
        return False
    event_id = str(event.event_id)
    if event_id in ledger.applied_event_ids:
        ledger.duplicates_ignored += 1
        return False
    payload = ResultsPublishedPayload.model_validate(event.payload)
    for line in payload.lines:
        ledger.payouts[(payload.cycle_id, line.employee_id)] = (line.bonus_cents, line.currency)
    ledger.applied_event_ids.add(event_id)
    return True
