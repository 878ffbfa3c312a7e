"""API keys for the tracking service's HTTP ingest, over HTTP against the real database and broker.

HR issues, lists, rotates and revokes keys; a department system ingests with ``X-API-Key`` and is
held to its own department exactly like a department_system token. Only a salted hash is stored.
The app's clock (``app.state.clock``) is moved to cross the rotation overlap, nothing sleeps.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select

from contracts.events import MetricEvent
from devtools.stack.kafka import create_topics
from services.common.api_keys import parse_key, verify_secret
from services.common.kafka import PRINCIPAL_DEPARTMENT_HEADER, PRINCIPAL_HEADER
from services.common.settings import Settings
from services.tracking.app import create_app
from services.tracking.models import TrackingApiKey, TrackingAudit
from tests.support import api_client, auth

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INGEST = "/v1/ingest/metrics"


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def event(department_id: str = "sales", value: float = 1.0) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "source": "crm",
        "department_id": department_id,
        "metric": f"{department_id}.revenue",
        "value": value,
        "unit": "kEUR",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def key_header(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


@asynccontextmanager
async def tracking(
    settings: Settings, database_url: str, kafka_broker: Any, clock: Clock
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The tracking app publishing to a fresh topic of the real broker, on ``clock``."""
    topic = f"metrics-api-keys-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_broker.bootstrap_servers, [topic], partitions=1)
    app_settings = settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_idempotence": kafka_broker.supports_idempotence,
        }
    )
    factory = functools.partial(create_app, run_consumer=False, staleness_interval=0, topic=topic)
    async with api_client(factory, app_settings, database_url) as client:
        client.app.state.clock = clock  # type: ignore[attr-defined]
        yield client, topic


async def published(kafka_broker: Any, topic: str, count: int) -> list[tuple[MetricEvent, dict[str, bytes]]]:
    """The first ``count`` records of ``topic``: the event and its headers."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_broker.bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    got: list[tuple[MetricEvent, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [(MetricEvent.model_validate_json(r.value), dict(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return got


async def test_an_issued_key_ingests_for_its_department_only_and_is_stored_hashed(
    settings: Settings, database_url: str, kafka_broker: Any
) -> None:
    hr = auth(settings, "hr_admin", sub="hr-hana")
    async with tracking(settings, database_url, kafka_broker, Clock(T0)) as (client, topic):
        created = await client.post(
            "/v1/api-keys", json={"department_id": "sales", "name": "crm", "expires_in_days": 90}, headers=hr
        )
        assert created.status_code == 201, created.text
        issued = created.json()
        key, key_id = issued["key"], issued["key_id"]
        assert parse_key(key)[0] == key_id and key.startswith(f"tdk_{key_id}_")
        assert issued["department_id"] == "sales" and issued["status"] == "active"
        assert issued["expires_at"] == (T0 + timedelta(days=90)).isoformat().replace("+00:00", "Z")
        _, secret = parse_key(key)

        good = [event(value=10), event(value=20)]
        accepted = await client.post(INGEST, json={"events": good}, headers=key_header(key))
        assert accepted.status_code == 202, accepted.text
        assert accepted.json() == {"accepted": 2, "rejected": []}

        foreign = await client.post(INGEST, json={"events": [event(), event("finance")]}, headers=key_header(key))
        assert foreign.status_code == 403
        assert foreign.json()["detail"] == (
            "a department system may publish only for its own department 'sales'; "
            "events at index [1] name another department"
        )

        forged = f"tdk_{key_id}_{'A' * 43}"
        unknown = f"tdk_{'z' * 16}_{secret}"
        for wrong in (forged, unknown):
            refused = await client.post(INGEST, json={"events": [event()]}, headers=key_header(wrong))
            assert refused.status_code == 401
            assert refused.json()["detail"] == "invalid X-API-Key: unknown key or wrong secret"
        malformed = await client.post(INGEST, json={"events": [event()]}, headers=key_header("Bearer nope"))
        assert malformed.status_code == 401 and "not a Tandem API key" in malformed.json()["detail"]
        anonymous = await client.post(INGEST, json={"events": [event()]})
        assert anonymous.status_code == 401
        assert anonymous.json()["detail"] == (  # refused before the body is read (issue 14)
            "missing credentials: send a bearer token (or an X-API-Key header where the endpoint takes one); "
            "the request body was not read"
        )
        token = auth(settings, "department_system", sub="crm", department_id="sales")
        both = await client.post(INGEST, json={"events": [event()]}, headers={**token, **key_header(key)})
        assert both.status_code == 401 and "not both" in both.json()["detail"]
        by_token = await client.post(INGEST, json={"events": [event(value=30)]}, headers=token)
        assert by_token.status_code == 202  # the token path is unchanged

        listed = await client.get("/v1/api-keys", params={"department_id": "sales"}, headers=hr)
        assert listed.status_code == 200
        page = listed.json()
        assert page["total"] == 1 and [k["key_id"] for k in page["items"]] == [key_id]
        assert set(page["items"][0]) == {
            "key_id",
            "department_id",
            "name",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "replaces",
        }
        assert secret not in listed.text and "sha256$" not in listed.text
        assert (await client.get("/v1/api-keys", params={"limit": 501}, headers=hr)).status_code == 422

        async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
            row = await session.get(TrackingApiKey, key_id)
            assert row is not None
            columns = {c.key: getattr(row, c.key) for c in TrackingApiKey.__table__.columns}
            assert all(secret not in str(value) for value in columns.values()), "the plaintext secret is stored"
            assert row.secret_hash.startswith("sha256$") and verify_secret(secret, row.secret_hash)
            audit = (
                await session.scalars(select(TrackingAudit).where(TrackingAudit.entity == "tracking_api_key"))
            ).all()
            assert [(a.action, a.entity_id, a.actor) for a in audit] == [("create", key_id, "hr-hana")]
            assert all(secret not in f"{a.before}{a.after}" for a in audit)

    records = await published(kafka_broker, topic, 3)
    assert len(records) == 3
    by_event = {str(e.event_id): headers for e, headers in records}
    for sent in good:  # published on behalf of the key, stamped with its principal
        headers = by_event[sent["event_id"]]
        assert headers[PRINCIPAL_HEADER] == f"api-key:{key_id}".encode()
        assert headers[PRINCIPAL_DEPARTMENT_HEADER] == b"sales"


async def test_rotation_keeps_the_old_key_for_the_overlap_and_revocation_ends_a_key(
    settings: Settings, database_url: str, kafka_broker: Any
) -> None:
    hr = auth(settings, "hr_admin")
    clock = Clock(T0)
    async with tracking(settings, database_url, kafka_broker, clock) as (client, topic):

        async def ingest(key: str) -> httpx.Response:
            return await client.post(INGEST, json={"events": [event()]}, headers=key_header(key))

        old = (await client.post("/v1/api-keys", json={"department_id": "sales", "name": "crm"}, headers=hr)).json()
        assert old["expires_at"] is None  # no lifetime: valid until rotated or revoked

        clock.now = T0 + timedelta(days=30)
        rotated = await client.post(f"/v1/api-keys/{old['key_id']}/rotate", json={"overlap_hours": 12}, headers=hr)
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()
        assert new["replaces"] == old["key_id"] and new["department_id"] == "sales" and new["key"] != old["key"]
        again = await client.post(f"/v1/api-keys/{old['key_id']}/rotate", headers=hr)
        assert again.status_code == 409
        assert again.json()["detail"] == (
            f"API key {old['key_id']!r} was already rotated to {new['key_id']!r}; rotate {new['key_id']!r} instead"
        )

        clock.now = T0 + timedelta(days=30, hours=11, minutes=59)  # within the overlap: both work
        assert (await ingest(old["key"])).status_code == 202
        assert (await ingest(new["key"])).status_code == 202

        clock.now = T0 + timedelta(days=30, hours=12)  # the overlap is over
        expired = await ingest(old["key"])
        assert expired.status_code == 401
        assert expired.json()["detail"] == (
            f"X-API-Key refused: key {old['key_id']} expired at 2026-04-01T21:00:00+00:00; ask HR for a new key"
        )
        assert (await ingest(new["key"])).status_code == 202
        statuses = {k["key_id"]: k["status"] for k in (await client.get("/v1/api-keys", headers=hr)).json()["items"]}
        assert statuses == {old["key_id"]: "expired", new["key_id"]: "active"}

        revoked = await client.post(f"/v1/api-keys/{new['key_id']}/revoke", headers=hr)
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        assert "key" not in revoked.json()
        refused = await ingest(new["key"])
        assert refused.status_code == 401 and f"key {new['key_id']} was revoked at" in refused.json()["detail"]
        clock.now += timedelta(hours=1)
        revoked_again = await client.post(f"/v1/api-keys/{new['key_id']}/revoke", headers=hr)
        assert revoked_again.json()["revoked_at"] == revoked.json()["revoked_at"]  # the first time stands
        late = await client.post(f"/v1/api-keys/{new['key_id']}/rotate", headers=hr)
        assert late.status_code == 409
        assert late.json()["detail"] == (
            f"key {new['key_id']} is revoked or expired; issue a new key instead of rotating"
        )
        assert (await client.post("/v1/api-keys/nosuchkey/revoke", headers=hr)).status_code == 404
        assert (await client.post("/v1/api-keys/nosuchkey/rotate", headers=hr)).status_code == 404

    records = await published(kafka_broker, topic, 3)
    senders = sorted(headers[PRINCIPAL_HEADER].decode() for _, headers in records)
    assert senders == sorted([f"api-key:{old['key_id']}", f"api-key:{new['key_id']}", f"api-key:{new['key_id']}"])


async def test_only_hr_admin_manages_keys(settings: Settings, database_url: str, kafka_broker: Any) -> None:
    hr = auth(settings, "hr_admin")
    async with tracking(settings, database_url, kafka_broker, Clock(T0)) as (client, _):
        issued = (await client.post("/v1/api-keys", json={"department_id": "sales", "name": "crm"}, headers=hr)).json()
        for role, claims in (
            ("employee", {"employee_id": "alice", "department_id": "sales"}),
            ("dept_head", {"employee_id": "carol", "department_id": "sales"}),
            ("ops", {}),
            ("department_system", {"department_id": "sales"}),
        ):
            caller = auth(settings, role, **claims)
            calls = [
                await client.post("/v1/api-keys", json={"department_id": "sales", "name": "mine"}, headers=caller),
                await client.get("/v1/api-keys", headers=caller),
                await client.post(f"/v1/api-keys/{issued['key_id']}/rotate", headers=caller),
                await client.post(f"/v1/api-keys/{issued['key_id']}/revoke", headers=caller),
            ]
            assert [c.status_code for c in calls] == [403] * 4, (role, [c.text for c in calls])
        # an API key is a department system: it cannot manage keys either (no bearer token, 401)
        as_key = await client.get("/v1/api-keys", headers=key_header(issued["key"]))
        assert as_key.status_code == 401
        listed = (await client.get("/v1/api-keys", headers=hr)).json()
        assert listed["total"] == 1 and listed["items"][0]["status"] == "active"
        invalid = await client.post("/v1/api-keys", json={"department_id": "sales/../x", "name": ""}, headers=hr)
        assert invalid.status_code == 422
