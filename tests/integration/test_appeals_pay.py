"""Appeals reach pay: an appeal adjusted before publication changes what is published; publication
waits for open appeals under the ``wait_for_appeals`` policy (the handoff says which appeals and who
resolves them); an appeal adjusted after publication goes to payroll as ``ResultsCorrected`` through
the results outbox and the relay to the real broker, and the payroll example applies it once.

The services run in process as in ``test_cycle_settings`` (the workflow's handoff activities drive
them); the results service relays its outbox to Kafka, where the test reads ``cycle.events.v1``.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from contracts.events import DomainEvent
from contracts.results import COLLABORATION_AWARD_ANNOUNCED, RESULTS_CORRECTED, RESULTS_PUBLISHED
from contracts.topics import CYCLE_EVENTS
from devtools.stack.kafka import create_topics
from services.common.kafka import create_consumer
from services.common.settings import Settings
from services.results.payroll_example import PayrollLedger, apply_event
from tests.integration.test_cycle_settings import (
    CYCLE_DEPARTMENTS,
    PEOPLE,
    T0,
    Stack,
    cycle_stack,
    everyone_reviewed,
    full_template,
    new_cycle,
)

SALES = ["S0", "S1", "S2", "S3", "S4"]


async def _events_of(consumer: Any, cycle_id: str, wanted: int, timeout: float = 60.0) -> list[bytes]:
    """Messages of ``cycle_id`` on the topic (other tests share it) until ``wanted`` arrived."""
    found: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(found) < wanted:
        assert asyncio.get_running_loop().time() < deadline, f"only {len(found)} of {wanted} events arrived"
        for records in (await consumer.getmany(timeout_ms=500)).values():
            found += [r.value for r in records if DomainEvent.model_validate_json(r.value).cycle_id == cycle_id]
    return found


async def _appeal(stack: Stack, cycle_id: str, employee_id: str) -> int:
    body = {"reason": "My customer escalations were not taken into account."}
    appeal = await stack.call(
        "feedback", "POST", f"/v1/cycles/{cycle_id}/appeals", json=body, headers=stack.person(employee_id), ok=201
    )
    return int(appeal["id"])


async def _adjust(stack: Stack, appeal_id: int, score: float, rating: str) -> None:
    body = {"outcome": "adjusted", "note": "escalations re-counted", "new_score": score, "new_rating": rating}
    await stack.call("feedback", "POST", f"/v1/appeals/{appeal_id}/resolve", json=body)


async def _sales_bonuses(stack: Stack, cycle_id: str) -> dict[str, int]:
    allocation = await stack.call("results", "GET", f"/v1/cycles/{cycle_id}/pools/sales/allocation")
    return {line["employee_id"]: line["amount_cents"] for line in allocation["lines"]}


async def _to_result_application(stack: Stack, cycle_id: str) -> None:
    """Goal setting to feedback with everyone reviewed; sales scores 3, 3, 3, 4 and 2 (S0..S4)."""
    await stack.handoff("freeze_goals", cycle_id)
    await stack.handoff("hand_progress_to_evaluation", cycle_id)
    await stack.handoff("open_evaluation", cycle_id)
    scores = {e: (3.0, 3.0) for e, d, _ in PEOPLE if d in CYCLE_DEPARTMENTS}
    scores.update(S3=(4.0, 4.0), S4=(2.0, 2.0))
    await everyone_reviewed(stack, cycle_id, scores)
    await stack.call("evaluation", "POST", f"/v1/cycles/{cycle_id}/scores/compute")
    await stack.call("evaluation", "POST", f"/v1/cycles/{cycle_id}/calibration/close")
    for name in ("close_evaluation", "hand_results_to_feedback", "hand_results_to_results", "release_results"):
        assert (await stack.handoff(name, cycle_id)).ready, name


async def test_appeals_change_what_is_published_and_correct_it_afterwards(
    settings: Settings, database_url: str, kafka_broker: Any
) -> None:
    await create_topics(kafka_broker.bootstrap_servers, [CYCLE_EVENTS])

    def relaying(s: Settings) -> Settings:
        return s.model_copy(
            update={
                "outbox_relay": True,
                "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
                "kafka_idempotence": kafka_broker.supports_idempotence,
            }
        )

    consumer = create_consumer(
        [CYCLE_EVENTS], bootstrap_servers=kafka_broker.bootstrap_servers, group_id=f"payroll-{uuid.uuid4().hex[:8]}"
    )
    await consumer.start()
    template = full_template("appeals reach pay", results={"publication": "wait_for_appeals"})
    try:
        async with cycle_stack(settings, database_url, results_settings=relaying) as stack:
            cycle_id = await new_cycle(stack, template)
            base = f"/v1/cycles/{cycle_id}"
            await _to_result_application(stack, cycle_id)

            # S1 appeals during feedback; result application opens with the appeal still open.
            stack.clocks["feedback"].now = T0 + timedelta(days=1)
            first = await _appeal(stack, cycle_id, "S1")
            await stack.handoff("open_result_application", cycle_id)
            await stack.call("results", "PUT", f"{base}/pools/sales", json={"amount_cents": 100_000, "currency": "EUR"})
            await stack.call("results", "POST", f"{base}/pools/sales/allocations", json={}, ok=201)
            # linear curve, weight = score - 1: 2, 2, 2, 3, 1 of 10
            assert await _sales_bonuses(stack, cycle_id) == {
                "S0": 20_000,
                "S1": 20_000,
                "S2": 20_000,
                "S3": 30_000,
                "S4": 10_000,
            }

            # Publication waits: the handoff names the open appeal and who resolves it.
            waiting = await stack.handoff("publish_results", cycle_id)
            assert not waiting.ready and waiting.blocked is not None
            assert f"#{first} (S1, HR due 2026-06-05)" in waiting.blocked.reason
            assert (waiting.blocked.service, waiting.blocked.unblock_by) == ("feedback", "hr_admin")
            assert "resolve the open appeals" in waiting.blocked.action

            # HR adjusts S1 before publication: evaluation, then results, re-divide the sales pool.
            await _adjust(stack, first, 4.8, "outstanding")
            before_publication = await _sales_bonuses(stack, cycle_id)
            # weights 2, 3.8, 2, 3, 1 of 11.8: S1 100000 * 3.8 / 11.8 = 32203.4
            assert before_publication["S1"] == 32_203 and sum(before_publication.values()) == 100_000
            allocation = await stack.call("results", "GET", f"{base}/pools/sales/allocation")
            assert any(f"after appeal {first}" in note for note in allocation["notes"])

            # S2 appeals too; the window is open until day 5, so publication still waits...
            stack.clocks["feedback"].now = T0 + timedelta(days=2)
            second = await _appeal(stack, cycle_id, "S2")
            assert not (await stack.handoff("publish_results", cycle_id)).ready
            # ...until HR switches the cycle to publish now and correct later.
            policy = await stack.call("results", "GET", f"{base}/policy")
            await stack.call("results", "PUT", f"{base}/policy", json={**policy, "publication": "publish_and_correct"})
            assert (await stack.handoff("publish_results", cycle_id)).ready

            # S2's appeal is adjusted after publication: a correction goes to payroll.
            await _adjust(stack, second, 4.0, "exceeds")
            after_correction = await _sales_bonuses(stack, cycle_id)
            assert after_correction["S2"] > before_publication["S2"] and sum(after_correction.values()) == 100_000

            messages = await _events_of(consumer, cycle_id, wanted=3)
    finally:
        await consumer.stop()

    every = [DomainEvent.model_validate_json(m) for m in messages]
    # the collaboration award is announced with the publication (no department rated another here)
    assert [e.type for e in every] == [RESULTS_PUBLISHED, COLLABORATION_AWARD_ANNOUNCED, RESULTS_CORRECTED]
    award = every[1].payload
    assert award["winner_department_id"] is None and award["fund_cents"] is None and award["reason"]
    messages = [m for m, e in zip(messages, every, strict=True) if e.type != COLLABORATION_AWARD_ANNOUNCED]
    events = [e for e in every if e.type != COLLABORATION_AWARD_ANNOUNCED]
    published, corrected = events
    lines = {line["employee_id"]: line for line in published.payload["lines"]}
    assert lines["S1"]["bonus_cents"] == 32_203 and lines["S1"]["rating"] == "outstanding"  # the appeal is in
    assert corrected.schema_version == 1
    correction = corrected.payload
    assert correction["publication_id"] == published.payload["publication_id"] and correction["sequence"] == 1
    assert correction["appeal_id"] == str(second)
    changed = {line["employee_id"]: line for line in correction["lines"]}
    assert set(changed) == set(SALES)  # S2's higher score re-divides the whole sales pool
    assert (changed["S2"]["rating"], changed["S2"]["previous_rating"]) == ("exceeds", "meets")
    assert changed["S2"]["bonus_cents"] == after_correction["S2"]
    assert changed["S2"]["previous_bonus_cents"] == before_publication["S2"]

    # Payroll applies the publication, then the correction, each once (a redelivery is ignored)...
    ledger = PayrollLedger()
    assert [apply_event(ledger, m) for m in [*messages, messages[1]]] == [True, True, False]
    assert ledger.duplicates_ignored == 1
    paid = {e: ledger.payouts[(cycle_id, e)][0] for e in SALES}
    assert paid == after_correction
    # ...and a publication arriving after its correction does not move a corrected payout back.
    reordered = PayrollLedger()
    assert [apply_event(reordered, m) for m in reversed(messages)] == [True, True]
    assert {e: reordered.payouts[(cycle_id, e)][0] for e in SALES} == after_correction
    assert reordered.stale_lines_ignored == len(SALES)
