"""Tracking API over a real app and database: catalog, progress and scoping, check-ins,
stale KPIs with domain events, and the HTTP ingest endpoint against the real broker."""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import select

from contracts.events import MetricEvent
from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition
from contracts.org import DepartmentRef, OrgSnapshot, Participant
from devtools.stack.kafka import create_topics
from services.common.settings import Settings
from services.tracking.app import create_app
from services.tracking.ingest import RawMessage, ingest_batch, load_catalog
from services.tracking.models import TrackingOutbox
from tests.support import api_client, auth

CYCLE = "cycle-1"


def catalog(frequency_hours: float = 24) -> KpiCatalog:
    today = datetime.now(UTC).date()

    def kpi(kpi_id: str, metric: str, aggregation: Aggregation, **extra: Any) -> KpiDefinition:
        fields: dict[str, Any] = {
            "kpi_id": kpi_id,
            "level": GoalLevel.DEPARTMENT,
            "name": kpi_id,
            "metric": metric,
            "unit": "x",
            "aggregation": aggregation,
            "direction": Direction.HIGHER_IS_BETTER,
            "start_value": 0,
            "target_value": 100,
            "owner_department_id": metric.split(".")[0],
            "update_frequency_hours": frequency_hours,
            "department_id": metric.split(".")[0],
        }
        fields.update(extra)
        return KpiDefinition(**fields)

    return KpiCatalog(
        cycle_id=CYCLE,
        period_start=today - timedelta(days=10),
        period_end=today + timedelta(days=80),
        kpis=[
            kpi("revenue", "sales.revenue", Aggregation.SUM),
            kpi(
                "defects",
                "production.defect_rate",
                Aggregation.AVG,
                direction=Direction.LOWER_IS_BETTER,
                start_value=3,
                target_value=1,
            ),
            kpi(
                "rev-alice",
                "sales.revenue",
                Aggregation.SUM,
                level=GoalLevel.INDIVIDUAL,
                employee_id="alice",
                department_id=None,
                target_value=50,
            ),
            kpi(
                "rev-bob",
                "sales.revenue",
                Aggregation.SUM,
                level=GoalLevel.INDIVIDUAL,
                employee_id="bob",
                department_id=None,
                target_value=50,
            ),
        ],
    )


SNAPSHOT = OrgSnapshot(
    cycle_id=CYCLE,
    departments=[DepartmentRef(department_id="sales", name="Sales", head_employee_id="carol")],
    participants=[
        Participant(employee_id="carol", name="Carol", department_id="sales", job_title="Head", grade="E1"),
        Participant(
            employee_id="alice", name="Alice", department_id="sales", manager_id="carol", job_title="AE", grade="P2"
        ),
        Participant(
            employee_id="bob", name="Bob", department_id="sales", manager_id="carol", job_title="AE", grade="P2"
        ),
    ],
)


def event(metric: str, value: float, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "source": "crm",
        "department_id": metric.split(".")[0],
        "metric": metric,
        "value": value,
        "unit": "x",
        "occurred_at": datetime.now(UTC).isoformat(),
        **extra,
    }


def app_factory() -> Any:
    return functools.partial(create_app, run_consumer=False, staleness_interval=0)


async def _feed(client: Any, events: list[dict[str, Any]]) -> None:
    """What the consumer does per batch, without Kafka (the Kafka path has its own tests)."""
    import json

    engine = client.app.state.engine
    async with engine.connect() as conn, conn.begin():
        index = await load_catalog(conn)
        messages = [RawMessage("metrics.v1", 0, i, None, json.dumps(e).encode()) for i, e in enumerate(events)]
        await ingest_batch(conn, messages, catalog=index)


async def test_progress_rollup_export_and_row_scoping(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin")
    async with api_client(app_factory(), settings, database_url) as client:
        put = await client.put(f"/v1/cycles/{CYCLE}/kpis", json=catalog().model_dump(mode="json"), headers=hr)
        assert put.status_code == 200, put.text
        assert (
            await client.put(f"/v1/cycles/{CYCLE}/participants", json=SNAPSHOT.model_dump(mode="json"), headers=hr)
        ).status_code == 200
        await _feed(
            client,
            [
                event("sales.revenue", 30, employee_id="alice"),
                event("sales.revenue", 20, employee_id="bob"),
                event("sales.revenue", 5),
                event("production.defect_rate", 2.5),
                event("production.defect_rate", 1.5),
            ],
        )
        # re-PUT (idempotent) keeps progress
        assert (
            await client.put(f"/v1/cycles/{CYCLE}/kpis", json=catalog().model_dump(mode="json"), headers=hr)
        ).json()["backfilled_events"] == 0

        page = (await client.get(f"/v1/cycles/{CYCLE}/progress", headers=hr)).json()
        items = {i["kpi_id"]: i for i in page["items"]}
        assert page["total"] == 4
        assert items["revenue"]["current_value"] == 55 and items["revenue"]["attainment_pct"] == 55
        assert items["defects"]["current_value"] == 2.0 and items["defects"]["attainment_pct"] == 50
        assert items["rev-alice"]["current_value"] == 30 and items["rev-alice"]["attainment_pct"] == 60

        alice = auth(settings, "employee", sub="alice", employee_id="alice", department_id="sales")
        visible = (await client.get(f"/v1/cycles/{CYCLE}/progress", headers=alice)).json()
        assert sorted(i["kpi_id"] for i in visible["items"]) == ["defects", "rev-alice", "revenue"]
        hidden = await client.get(f"/v1/cycles/{CYCLE}/kpis/rev-bob/progress", headers=alice)
        assert hidden.status_code == 404
        carol = auth(settings, "manager", sub="carol", employee_id="carol", department_id="sales")
        assert (await client.get(f"/v1/cycles/{CYCLE}/progress", headers=carol)).json()["total"] == 4

        one = (await client.get(f"/v1/cycles/{CYCLE}/kpis/revenue/progress", headers=hr)).json()
        assert sum(p["event_count"] for p in one["trend"]) == 3 and one["trend"][-1]["value"] == 55

        rollup = {
            d["department_id"]: d
            for d in (await client.get(f"/v1/cycles/{CYCLE}/departments/progress", headers=hr)).json()
        }
        assert rollup["production"]["kpi_count"] == 1 and rollup["production"]["avg_attainment_pct"] == 50

        export = (await client.get(f"/v1/cycles/{CYCLE}/progress-export", headers=hr)).json()
        assert {a["kpi_id"]: a["actual_value"] for a in export["actuals"]}["revenue"] == 55
        assert (await client.get(f"/v1/cycles/{CYCLE}/progress-export", headers=alice)).status_code == 403
        missing = await client.get("/v1/cycles/nope/progress", headers=hr)
        assert missing.status_code == 404 and "PUT /v1/cycles/nope/kpis" in missing.json()["detail"]


async def test_check_ins_follow_org_scoping_and_cadence(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin")
    async with api_client(app_factory(), settings, database_url) as client:
        await client.put(
            f"/v1/cycles/{CYCLE}/kpis",
            json=catalog().model_dump(mode="json"),
            headers=hr,
            params={"check_in_cadence_days": 7},
        )
        await client.put(f"/v1/cycles/{CYCLE}/participants", json=SNAPSHOT.model_dump(mode="json"), headers=hr)
        alice = auth(settings, "employee", sub="alice", employee_id="alice", department_id="sales")
        bob = auth(settings, "employee", sub="bob", employee_id="bob", department_id="sales")
        carol = auth(settings, "manager", sub="carol", employee_id="carol", department_id="sales")
        body = {"kpi_id": "rev-alice", "comment": "Two deals slipped to next month", "confidence": 3}
        created = await client.post(f"/v1/cycles/{CYCLE}/check-ins", json=body, headers=alice)
        assert created.status_code == 201 and created.json()["author_role"] == "employee"
        manager = await client.post(f"/v1/cycles/{CYCLE}/check-ins", json={**body, "confidence": 4}, headers=carol)
        assert manager.status_code == 201 and manager.json()["author_role"] == "manager"
        assert (await client.post(f"/v1/cycles/{CYCLE}/check-ins", json=body, headers=bob)).status_code == 403
        invalid = await client.post(f"/v1/cycles/{CYCLE}/check-ins", json={**body, "confidence": 9}, headers=alice)
        assert invalid.status_code == 422 and "confidence" in invalid.json()["detail"]
        listing = (await client.get(f"/v1/cycles/{CYCLE}/kpis/rev-alice/check-ins", headers=alice)).json()
        assert [c["confidence"] for c in listing["items"]] == [4, 3]
        assert listing["cadence_days"] == 7 and listing["overdue"] is False


async def test_stale_kpis_by_owner_pending_report_and_domain_events(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin")
    async with api_client(app_factory(), settings, database_url) as client:
        # frequency 3.6 s and no grace: a KPI without data is stale after a few seconds
        await client.put(
            f"/v1/cycles/{CYCLE}/kpis",
            json=catalog(frequency_hours=0.001).model_dump(mode="json"),
            headers=hr,
            params={"grace_hours": 0},
        )
        await asyncio.sleep(4)
        await _feed(
            client, [event("sales.revenue", 1, employee_id="alice"), event("sales.revenue", 1, employee_id="bob")]
        )
        report = (await client.get(f"/v1/cycles/{CYCLE}/stale-kpis", headers=hr)).json()
        assert [(d["department_id"], [k["kpi_id"] for k in d["kpis"]]) for d in report["departments"]] == [
            ("production", ["defects"])
        ]
        pending = (
            await client.get(
                f"/v1/cycles/{CYCLE}/pending", headers=hr, params={"department_id": "production", "stage": "tracking"}
            )
        ).json()
        assert pending["total"] == 1 and pending["done"] == 0
        assert [(i["item_id"], i["kind"], i["owner_id"], i["deadline"]) for i in pending["pending"]] == [
            ("defects", "stale_kpi", None, None)  # no deadline of its own: the stage's rules apply
        ]
        wrong_stage = await client.get(
            f"/v1/cycles/{CYCLE}/pending", headers=hr, params={"department_id": "production", "stage": "evaluation"}
        )
        assert wrong_stage.status_code == 422

        first = (await client.post(f"/v1/cycles/{CYCLE}/staleness/evaluate", headers=hr)).json()
        assert first["became_stale"] == [f"{CYCLE}/defects"]
        assert (await client.post(f"/v1/cycles/{CYCLE}/staleness/evaluate", headers=hr)).json()["became_stale"] == []
        await _feed(client, [event("production.defect_rate", 2.0)])
        assert (await client.post(f"/v1/cycles/{CYCLE}/staleness/evaluate", headers=hr)).json()["became_fresh"] == [
            f"{CYCLE}/defects"
        ]
        async with client.app.state.sessions() as session:
            types = (await session.scalars(select(TrackingOutbox.event_type).order_by(TrackingOutbox.id))).all()
        assert types == ["KpiStale", "KpiFresh"]


async def test_http_ingest_scopes_department_reports_errors_by_index_and_publishes(
    settings: Settings, database_url: str, kafka_broker: Any
) -> None:
    topic = f"metrics-ingest-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_broker.bootstrap_servers, [topic], partitions=4)
    app_settings = settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_idempotence": kafka_broker.supports_idempotence,
        }
    )
    factory = functools.partial(create_app, run_consumer=False, staleness_interval=0, topic=topic)
    system = auth(settings, "department_system", sub="crm", department_id="sales")
    async with api_client(factory, app_settings, database_url) as client:
        url = "/v1/ingest/metrics"
        foreign = await client.post(
            url, json={"events": [event("sales.revenue", 1), event("finance.cost", 2)]}, headers=system
        )
        assert foreign.status_code == 403 and "index [1]" in foreign.json()["detail"]
        human = await client.post(url, json={"events": [event("sales.revenue", 1)]}, headers=auth(settings, "hr_admin"))
        assert human.status_code == 403
        too_many = await client.post(url, json={"events": [event("sales.revenue", 1)] * 1001}, headers=system)
        assert too_many.status_code == 422 and "1000" in too_many.json()["detail"]

        good = [event("sales.revenue", 10), event("sales.revenue", 20)]
        mixed = [
            good[0],
            event("sales.revenue", float(1), occurred_at="2026-01-01T00:00:00"),
            {**event("sales.revenue", 1), "metric": "Sales Revenue!"},
            good[1],
        ]
        answer = await client.post(url, json={"events": mixed}, headers=system)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["accepted"] == 2
        assert [r["index"] for r in body["rejected"]] == [1, 2]
        assert body["rejected"][0]["errors"][0]["field"] == "occurred_at"
        assert "timezone" in body["rejected"][0]["errors"][0]["message"]
        assert body["rejected"][1]["errors"][0]["field"] == "metric"
        none_valid = await client.post(url, json={"events": [mixed[1]]}, headers=system)
        assert none_valid.status_code == 422 and none_valid.json()["accepted"] == 0
        # What a department system gets wrong: a value that is not a JSON number (as the schema says)
        # and a unit no database stores are refused at the field, not read as 1.0 or dead-lettered later.
        odd = [
            event("sales.revenue", True),
            event("sales.revenue", "1.5"),
            {**event("sales.revenue", 1), "unit": "k\x00g"},
        ]
        refused = await client.post(url, json={"events": odd}, headers=system)
        assert refused.status_code == 422, refused.text
        errors = {r["index"]: r["errors"][0] for r in refused.json()["rejected"]}
        assert [errors[i]["field"] for i in range(3)] == ["value", "value", "unit"]
        assert "valid number" in errors[0]["message"] and "U+0000" in errors[2]["message"]
        # A full request over 5 series (170 KB each) on 4 partitions: some partition holds two
        # series, more than one produce batch (256 KiB each); the body stays under the 1 MiB limit.
        metrics = ["sales.revenue", "sales.orders", "sales.leads", "sales.churn", "sales.nps"]
        label = {f"d{i}": "x" * 200 for i in range(3)}
        large = [event(metrics[i % len(metrics)], float(i), dimensions=label) for i in range(1000)]
        assert (await client.post(url, json={"events": large}, headers=system)).json()["accepted"] == 1000

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_broker.bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        got: list[tuple[int, Any]] = []
        async with asyncio.timeout(30):
            while len(got) < 1002:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    got += [(tp.partition, r) for r in records]
    finally:
        await consumer.stop()
    events = [(partition, MetricEvent.model_validate_json(r.value), r) for partition, r in got]
    assert sorted(str(e.event_id) for _, e, _ in events) == sorted(e["event_id"] for e in [*good, *large])
    # Every record where a keyed send puts it (the default partitioner, one series per partition),
    # in the order sent, stamped with the caller.
    partitioner = DefaultPartitioner()
    for partition, metric_event, record in events:
        assert record.key == metric_event.message_key.encode()
        assert partition == partitioner(record.key, [0, 1, 2, 3], [0, 1, 2, 3])
        assert dict(record.headers)["tandem-principal-department"] == b"sales"
    for metric in metrics:
        values = [e.value for _, e, _ in events if e.metric == metric and e.dimensions]
        assert values == sorted(values) and len(values) == 200
    assert len({partition for partition, *_ in events}) > 1
    # and one partition took more than a produce batch holds, so it was sent as several batches
    per_partition: dict[int, int] = {}
    for partition, _, record in events:
        per_partition[partition] = per_partition.get(partition, 0) + len(record.value)
    assert max(per_partition.values()) > 256 * 1024


async def test_simulator_through_the_lifespan_consumer_to_progress_dlq_and_ops(
    settings: Settings, database_url: str, kafka_broker: Any
) -> None:
    from devtools.simulator import sample_catalog, simulate

    topic = f"metrics-sim-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_broker.bootstrap_servers, [topic, f"{topic}.dlq"], partitions=2)
    app_settings = settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_idempotence": kafka_broker.supports_idempotence,
        }
    )
    factory = functools.partial(
        create_app,
        run_consumer=True,
        staleness_interval=0,
        topic=topic,
        dlq_topic=f"{topic}.dlq",
        group_id=f"tracking-{uuid.uuid4().hex[:6]}",
    )
    hr = auth(settings, "hr_admin")
    today = datetime.now(UTC).date()
    async with api_client(factory, app_settings, database_url) as client:
        sample = sample_catalog(CYCLE, today - timedelta(days=1), today + timedelta(days=60))
        assert (
            await client.put(f"/v1/cycles/{CYCLE}/kpis", json=sample.model_dump(mode="json"), headers=hr)
        ).status_code == 200
        stats = await simulate(
            bootstrap_servers=kafka_broker.bootstrap_servers,
            departments=["sales", "production"],
            rate=400,
            duration=1.0,
            malformed=0.1,
            topic=topic,
            idempotence=kafka_broker.supports_idempotence,
            seed=5,
        )
        assert stats.sent == 400 and stats.acknowledged == stats.sent - stats.malformed > 0
        ops: dict[str, Any] = {}
        async with asyncio.timeout(40):
            while not (ops.get("events_stored") == stats.acknowledged and ops.get("total_lag") == 0):
                await asyncio.sleep(0.5)
                ops = (await client.get("/v1/ops/ingestion", headers=auth(settings, "ops"))).json()
        assert ops["dead_letters"] == stats.malformed and ops["unmapped_events"] == 0
        assert all(d["reason"] for d in ops["latest_dead_letters"])
        progress = (
            await client.get(f"/v1/cycles/{CYCLE}/progress", headers=hr, params={"department_id": "production"})
        ).json()
        assert sum(i["event_count"] for i in progress["items"]) > 0
        rollup = (await client.get(f"/v1/cycles/{CYCLE}/departments/progress", headers=hr)).json()
        assert {d["department_id"] for d in rollup if d["with_data"]} == {"sales", "production"}
        stale = (await client.get(f"/v1/cycles/{CYCLE}/stale-kpis", headers=hr)).json()
        assert stale["departments"] == []  # frequencies are hours: nothing owed yet
