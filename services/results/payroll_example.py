"""A reference downstream consumer of ``ResultsPublished``, ``ResultsCorrected`` and
``CollaborationAwardAnnounced`` (what payroll would do).

Delivery on ``cycle.events.v1`` is at-least-once, so the consumer keeps the ids of the events it
has applied and ignores repeats. Lines carry absolute values, and each person's last applied
sequence is kept (the publication is 0, a correction its ``sequence``): a line older than what was
applied is ignored, so a correction is applied once and a replayed or late publication never
moves a corrected payout back. A real consumer stores both in its own database, in the same
transaction as the payouts it records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.events import DomainEvent
from contracts.results import (
    COLLABORATION_AWARD_ANNOUNCED,
    RESULTS_CORRECTED,
    RESULTS_PUBLISHED,
    CollaborationAwardAnnouncedPayload,
    PublishedResultLine,
    ResultsCorrectedPayload,
    ResultsPublishedPayload,
)

__all__ = ["PayrollLedger", "apply_event"]

_READ = (RESULTS_PUBLISHED, RESULTS_CORRECTED, COLLABORATION_AWARD_ANNOUNCED)


@dataclass
class PayrollLedger:
    applied_event_ids: set[str] = field(default_factory=set)
    payouts: dict[tuple[str, str], tuple[int, str | None]] = field(default_factory=dict)
    """(cycle_id, employee_id) -> (bonus cents, currency)."""
    sequences: dict[tuple[str, str], int] = field(default_factory=dict)
    """(cycle_id, employee_id) -> the sequence of the line applied last (0: the publication)."""
    awards: dict[str, tuple[str, int, str | None]] = field(default_factory=dict)
    """cycle_id -> (winning department, award fund in cents, currency): paid to the department."""
    duplicates_ignored: int = 0
    stale_lines_ignored: int = 0


def _apply_line(ledger: PayrollLedger, cycle_id: str, line: PublishedResultLine, sequence: int) -> None:
    key = (cycle_id, line.employee_id)
    if sequence <= ledger.sequences.get(key, -1):
        ledger.stale_lines_ignored += 1
        return
    ledger.payouts[key] = (line.bonus_cents, line.currency)
    ledger.sequences[key] = sequence


def apply_event(ledger: PayrollLedger, raw: bytes | str) -> bool:
    """Apply one message from ``cycle.events.v1``; returns False for a repeat or another event type."""
    event = DomainEvent.model_validate_json(raw)
    if event.type not in _READ or event.schema_version != 1:
        return False  # another type, or a contract version this consumer does not read yet
    event_id = str(event.event_id)
    if event_id in ledger.applied_event_ids:
        ledger.duplicates_ignored += 1
        return False
    if event.type == COLLABORATION_AWARD_ANNOUNCED:
        award = CollaborationAwardAnnouncedPayload.model_validate(event.payload)
        if award.winner_department_id is not None and award.fund_cents:
            ledger.awards[award.cycle_id] = (award.winner_department_id, award.fund_cents, award.currency)
    elif event.type == RESULTS_PUBLISHED:
        published = ResultsPublishedPayload.model_validate(event.payload)
        for line in published.lines:
            _apply_line(ledger, published.cycle_id, line, 0)
    else:
        corrected = ResultsCorrectedPayload.model_validate(event.payload)
        for line in corrected.lines:
            _apply_line(ledger, corrected.cycle_id, line, corrected.sequence)
    ledger.applied_event_ids.add(event_id)
    return True
