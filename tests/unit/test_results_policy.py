"""The results policy of a template: default labels resolved against the template's rating scale (the
two highest bands promote, the lowest gets a plan), labels checked against it, and the payroll example
applying ``ResultsCorrected`` once and never behind a newer line."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.events import DomainEvent
from contracts.results import (
    LEGACY_DEVELOPMENT_RATINGS,
    RESULTS_CORRECTED,
    RESULTS_PUBLISHED,
    ResultsPolicy,
    results_policy,
)
from contracts.templates import CycleTemplateSpec
from services.results.payroll_example import PayrollLedger, apply_event

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org" / "template.json"


def test_default_labels_come_from_the_templates_scale() -> None:
    pushed = results_policy(CycleTemplateSpec.model_validate_json(SAMPLE.read_text()))
    assert pushed.rating_labels == ["needs improvement", "partially meets", "meets", "exceeds", "outstanding"]
    assert pushed.policy.promotion.ratings == ["exceeds", "outstanding"]
    assert pushed.policy.development.ratings == ["needs improvement"]
    # without a known scale (results pushed by an older sender) the earlier defaults stay
    assert ResultsPolicy().development_ratings([]) == list(LEGACY_DEVELOPMENT_RATINGS)


def test_labels_that_are_not_bands_are_named() -> None:
    policy = ResultsPolicy.model_validate(
        {
            "promotion": {"ratings": ["exceeds", "star"]},
            "curve": {"type": "rating_multiplier", "multipliers": {"meets": 1, "gold": 2}},
        }
    )
    assert policy.problems(["below", "meets", "exceeds"], where="results.") == [
        "results.promotion.ratings: ['star'] are not rating bands; the bands are ['below', 'meets', 'exceeds']",
        "results.curve.multipliers: ['gold'] are not rating bands; the bands are ['below', 'meets', 'exceeds']",
        "results.curve.multipliers: no multiplier for band(s) ['below', 'exceeds']",
    ]
    assert policy.problems([]) == []  # the scale is not known: nothing to check against


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    event = DomainEvent(
        event_id=uuid.uuid4(),
        type=kind,
        service="results",
        cycle_id="c",
        occurred_at=datetime.now(UTC),
        payload=payload,
    )
    return event.model_dump_json().encode()


def _line(employee: str, cents: int, **previous: Any) -> dict[str, Any]:
    line = {"employee_id": employee, "department_id": "d", "final_score": 3.0, "rating": "meets"}
    return {**line, "bonus_cents": cents, "currency": "EUR", **previous}


def test_payroll_applies_a_correction_once_and_never_behind_a_newer_line() -> None:
    published = _event(
        RESULTS_PUBLISHED,
        {"cycle_id": "c", "publication_id": "p", "part": 1, "parts": 1, "departments": [], "lines": [_line("a", 100)]},
    )
    previous = {"previous_final_score": 3.0, "previous_rating": "meets", "previous_bonus_cents": 100}

    def correction(sequence: int, cents: int) -> bytes:
        body = {"cycle_id": "c", "publication_id": "p", "correction_id": f"k{sequence}", "sequence": sequence}
        body |= {"part": 1, "parts": 1, "reason": "appeal", "departments": [], "lines": [_line("a", cents, **previous)]}
        return _event(RESULTS_CORRECTED, body)

    first, second = correction(1, 150), correction(2, 120)
    ledger = PayrollLedger()
    assert [apply_event(ledger, m) for m in (published, second, first, second)] == [True, True, True, False]
    assert ledger.payouts[("c", "a")] == (120, "EUR")  # correction 1 arrived late: behind correction 2
    assert (ledger.duplicates_ignored, ledger.stale_lines_ignored) == (1, 1)
    newer = json.loads(correction(3, 90))
    newer["schema_version"] = 2
    assert apply_event(ledger, json.dumps(newer)) is False  # a contract version this consumer does not read
