"""ResultsPublished goes through the transactional outbox and the relay to the real broker,
at least once; the reference payroll consumer applies it exactly once by event id."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import update

from contracts.events import DomainEvent
from contracts.topics import CYCLE_EVENTS
from devtools.stack.kafka import create_topics
from services.common.kafka import create_consumer
from services.common.outbox import OutboxRelay
from services.common.settings import Settings
from services.results.app import create_app
from services.results.models import ResultsOutbox
from services.results.payroll_example import PayrollLedger, apply_event
from tests.integration.test_results_api import matrix, org, results
from tests.support import api_client, auth


async def _consume_for_cycle(consumer: Any, cycle_id: str, wanted: int, timeout: float = 60.0) -> list[bytes]:
    """Messages of ``cycle_id`` (other tests share the topic) until ``wanted`` arrived."""
    found: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(found) < wanted:
        assert asyncio.get_running_loop().time() < deadline, f"only {len(found)} of {wanted} events arrived"
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            found += [r.value for r in records if DomainEvent.model_validate_json(r.value).cycle_id == cycle_id]
    return found


async def test_results_published_is_delivered_at_least_once_and_applied_once(
    settings: Settings, kafka_broker: Any, tmp_path: Path
) -> None:
    await create_topics(kafka_broker.bootstrap_servers, [CYCLE_EVENTS])
    relay_settings = settings.model_copy(
        update={
            "outbox_relay": True,
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_idempotence": kafka_broker.supports_idempotence,
        }
    )
    cycle_id = f"c-{uuid.uuid4().hex[:8]}"
    hr = auth(settings, "hr_admin", sub="hr-1")
    consumer = create_consumer(
        [CYCLE_EVENTS], bootstrap_servers=kafka_broker.bootstrap_servers, group_id=f"payroll-{uuid.uuid4().hex[:8]}"
    )
    await consumer.start()
    try:
        async with api_client(create_app, relay_settings, f"sqlite+aiosqlite:///{tmp_path}/results.db") as client:
            parts = {"participants": org(cycle_id), "results": results(cycle_id), "collaboration": matrix(cycle_id)}
            for path, body in parts.items():
                assert (await client.put(f"/v1/cycles/{cycle_id}/{path}", json=body, headers=hr)).status_code == 200
            await client.put(
                f"/v1/cycles/{cycle_id}/pools/sales", json={"amount_cents": 123_457, "currency": "EUR"}, headers=hr
            )
            await client.post(f"/v1/cycles/{cycle_id}/pools/sales/allocations", json={}, headers=hr)
            fund = {"amount_cents": 50_000, "currency": "EUR"}
            assert (await client.put(f"/v1/cycles/{cycle_id}/award-fund", json=fund, headers=hr)).status_code == 200
            key = {"Idempotency-Key": f"publish-{cycle_id}"}
            published = await client.post(f"/v1/cycles/{cycle_id}/publish", headers={**hr, **key})
            assert published.status_code == 201, published.text
            assert (await client.post(f"/v1/cycles/{cycle_id}/publish", headers={**hr, **key})).status_code == 200

            first = await _consume_for_cycle(consumer, cycle_id, wanted=2)  # the results and the award

            # A crash between "sent" and "marked published": the relay sends the same row again.
            relay: OutboxRelay = client.app.state.outbox_relay  # type: ignore[attr-defined]
            await relay.stop()
            async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
                await session.execute(update(ResultsOutbox).values(published_at=None))
                await session.commit()
            assert await relay.publish_pending() == 2
            second = await _consume_for_cycle(consumer, cycle_id, wanted=2)
    finally:
        await consumer.stop()

    messages = first + second
    assert len(messages) == 4
    events = [DomainEvent.model_validate_json(m) for m in messages]
    assert [e.type for e in events] == ["ResultsPublished", "CollaborationAwardAnnounced"] * 2
    assert events[0].event_id == uuid.UUID(published.json()["event_ids"][0])
    assert [e.event_id for e in events[:2]] == [e.event_id for e in events[2:]]
    ledger = PayrollLedger()
    assert [apply_event(ledger, m) for m in messages] == [True, True, False, False]
    assert ledger.duplicates_ignored == 2
    # the award finance funded reaches payroll with its winner (ops, the department the others rated best)
    assert events[1].payload["winner_department_id"] == "ops" and events[1].payload["fund_cents"] == 50_000
    assert ledger.awards == {cycle_id: ("ops", 50_000, "EUR")}
    sales = {emp: cents for (cycle, emp), (cents, _currency) in ledger.payouts.items() if cycle == cycle_id}
    assert sum(cents for emp, cents in sales.items() if emp in {"s-head", "alice", "bob", "dana"}) == 123_457
    assert ledger.payouts[(cycle_id, "carol")] == (0, None)  # ops has no pool
