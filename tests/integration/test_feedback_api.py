"""Feedback service over HTTP on SQLite and PostgreSQL: release gating, scoped reads,
acknowledgement, appeals with deadlines (clock injected, no sleeping), the appeal
adjustment sent to a real in-process evaluation receiver, withdrawal, 1:1s and kudos."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from services.common.settings import Settings
from services.feedback.app import create_app
from services.feedback.models import FeedbackOutbox
from tests.support import api_client, auth

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class EvaluationReceiver:
    """A small real FastAPI app standing in for the appeal-adjustments endpoints of evaluation and results
    (the same path on both; ``calls`` records which service's URL was called)."""

    settings: Settings
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/cycles/{cycle_id}/appeal-adjustments")
        async def receive(cycle_id: str, request: Request) -> JSONResponse:
            token = request.headers["authorization"].removeprefix("Bearer ")
            claims = jwt.decode(
                token, self.settings.jwt_secret, algorithms=["HS256"], audience=self.settings.jwt_audience
            )
            service = "results" if str(request.url).startswith(self.settings.results_url) else "evaluation"
            self.calls.append(
                {"cycle_id": cycle_id, "body": await request.json(), "claims": claims, "service": service}
            )
            if self.fail_with:
                return JSONResponse({"detail": "calibration is locked"}, status_code=self.fail_with)
            return JSONResponse({"recorded": True})

        return app


def refuse_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def org(cycle_id: str) -> dict[str, Any]:
    return {
        "cycle_id": cycle_id,
        "departments": [
            {"department_id": "sales", "name": "Sales", "head_employee_id": "s-head"},
            {"department_id": "ops", "name": "Operations", "head_employee_id": "o-head"},
        ],
        "participants": [
            {"employee_id": "s-head", "name": "Sam", "department_id": "sales", "job_title": "Head", "grade": "G7"},
            {
                "employee_id": "alice",
                "name": "Alice",
                "department_id": "sales",
                "manager_id": "s-head",
                "job_title": "AE",
                "grade": "G4",
            },
            {
                "employee_id": "bob",
                "name": "Bob",
                "department_id": "sales",
                "manager_id": "s-head",
                "job_title": "AE",
                "grade": "G3",
            },
            {"employee_id": "o-head", "name": "Olga", "department_id": "ops", "job_title": "Head", "grade": "G7"},
            {
                "employee_id": "carol",
                "name": "Carol",
                "department_id": "ops",
                "manager_id": "o-head",
                "job_title": "Planner",
                "grade": "G4",
            },
        ],
    }


def results(cycle_id: str) -> dict[str, Any]:
    def r(emp: str, dept: str, mgr: str | None, score: float, rating: str) -> dict[str, Any]:
        return {
            "employee_id": emp,
            "department_id": dept,
            "manager_id": mgr,
            "final_score": score,
            "rating": rating,
            "calibrated": True,
        }

    return {
        "cycle_id": cycle_id,
        "scale_min": 1,
        "scale_max": 5,
        "results": [
            r("s-head", "sales", None, 4.0, "meets"),
            r("alice", "sales", "s-head", 4.6, "exceeds"),
            r("bob", "sales", "s-head", 2.1, "below"),
            r("o-head", "ops", None, 3.5, "meets"),
            r("carol", "ops", "o-head", 3.2, "meets"),
        ],
    }


@pytest.fixture
async def client(settings: Settings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app, settings, database_url) as http:
        http.app.state.clock = Clock(T0)  # type: ignore[attr-defined]
        yield http


def hr(settings: Settings) -> dict[str, str]:
    return auth(settings, "hr_admin", sub="hr-1")


def emp(settings: Settings, employee_id: str, *roles: str, department_id: str | None = None) -> dict[str, str]:
    return auth(
        settings, *(roles or ("employee",)), sub=employee_id, employee_id=employee_id, department_id=department_id
    )


async def setup_cycle(client: httpx.AsyncClient, settings: Settings, *, push: bool = True) -> str:
    cycle_id = f"c-{uuid.uuid4().hex[:8]}"
    response = await client.put(f"/v1/cycles/{cycle_id}/participants", json=org(cycle_id), headers=hr(settings))
    assert response.status_code == 200, response.text
    if push:
        response = await client.put(f"/v1/cycles/{cycle_id}/results", json=results(cycle_id), headers=hr(settings))
        assert response.status_code == 200, response.text
    return cycle_id


async def outbox_types(client: httpx.AsyncClient) -> list[str]:
    async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        return list((await session.scalars(select(FeedbackOutbox.event_type).order_by(FeedbackOutbox.id))).all())


async def test_release_only_after_calibrated_results_and_scoped_reads(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    cycle_id = await setup_cycle(client, settings, push=False)
    refused = await client.post(f"/v1/cycles/{cycle_id}/release", headers=hr(settings))
    assert refused.status_code == 409
    assert "no calibrated results" in refused.json()["detail"]

    pushed = await client.put(
        f"/v1/cycles/{cycle_id}/results?calibration_closed=false", json=results(cycle_id), headers=hr(settings)
    )
    assert pushed.json()["received"] == 5
    refused = await client.post(f"/v1/cycles/{cycle_id}/release", headers=hr(settings))
    assert refused.status_code == 409
    assert "calibration is not closed" in refused.json()["detail"]

    # Before release an employee sees nothing, not even their own result.
    assert (await client.get(f"/v1/cycles/{cycle_id}/results", headers=emp(settings, "alice"))).json() == []
    assert (await client.get(f"/v1/cycles/{cycle_id}/results/alice", headers=emp(settings, "alice"))).status_code == 404

    marker = await client.put(f"/v1/cycles/{cycle_id}/config", json={"calibration_closed": True}, headers=hr(settings))
    assert marker.json()["calibration_closed"] is True
    assert (await client.post(f"/v1/cycles/{cycle_id}/release", headers=emp(settings, "alice"))).status_code == 403
    released = await client.post(f"/v1/cycles/{cycle_id}/release", headers=hr(settings))
    assert released.status_code == 200, released.text
    assert released.json()["released"] == 5
    assert released.json()["appeal_deadline"] == (T0 + timedelta(days=14)).isoformat().replace("+00:00", "Z")
    again = await client.post(f"/v1/cycles/{cycle_id}/release", headers=hr(settings))
    assert again.json() == {**again.json(), "released": 0, "already_released": 5}
    assert await outbox_types(client) == ["ResultsReleased"]

    own = await client.get(f"/v1/cycles/{cycle_id}/results/alice", headers=emp(settings, "alice"))
    assert own.status_code == 200
    assert own.json()["rating"] == "exceeds"
    other = await client.get(f"/v1/cycles/{cycle_id}/results/bob", headers=emp(settings, "alice"))
    assert other.status_code == 404  # not 403: that would tell bob has a result (issue 14)
    assert "within your scope" in other.json()["detail"]
    listed = await client.get(f"/v1/cycles/{cycle_id}/results", headers=emp(settings, "alice"))
    assert [r["employee_id"] for r in listed.json()] == ["alice"]
    manager = await client.get(f"/v1/cycles/{cycle_id}/results", headers=emp(settings, "s-head", "manager", "employee"))
    assert [r["employee_id"] for r in manager.json()] == ["alice", "bob", "s-head"]
    cross = await client.get(f"/v1/cycles/{cycle_id}/results/carol", headers=emp(settings, "s-head", "manager"))
    assert cross.status_code == 404

    # Acknowledgement: own result only, timestamped once.
    assert (
        await client.post(f"/v1/cycles/{cycle_id}/results/bob/acknowledge", headers=emp(settings, "alice"))
    ).status_code == 403
    ack = await client.post(f"/v1/cycles/{cycle_id}/results/alice/acknowledge", headers=emp(settings, "alice"))
    assert ack.status_code == 200
    first = ack.json()["acknowledged_at"]
    client.app.state.clock.now = T0 + timedelta(hours=2)  # type: ignore[attr-defined]
    ack2 = await client.post(f"/v1/cycles/{cycle_id}/results/alice/acknowledge", headers=emp(settings, "alice"))
    assert ack2.json()["acknowledged_at"] == first
    assert (await outbox_types(client)).count("ResultAcknowledged") == 1

    pending = await client.get(
        f"/v1/cycles/{cycle_id}/pending", params={"department_id": "sales", "stage": "feedback"}, headers=hr(settings)
    )
    report = pending.json()
    assert (report["total"], report["done"]) == (3, 1)
    assert {(i["item_id"], i["kind"]) for i in report["pending"]} == {
        ("bob", "result_acknowledgement"),
        ("s-head", "result_acknowledgement"),
    }
    wrong_stage = await client.get(
        f"/v1/cycles/{cycle_id}/pending", params={"department_id": "sales", "stage": "evaluation"}, headers=hr(settings)
    )
    assert wrong_stage.status_code == 422


async def test_appeal_window_hr_deadline_and_adjustment_through_evaluation(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    receiver = EvaluationReceiver(settings)
    await client.app.state.http.aclose()  # type: ignore[attr-defined]
    client.app.state.http = httpx.AsyncClient(  # type: ignore[attr-defined]
        transport=httpx.ASGITransport(app=receiver.app()), base_url="http://evaluation"
    )
    clock: Clock = client.app.state.clock  # type: ignore[attr-defined]
    cycle_id = await setup_cycle(client, settings)
    await client.put(
        f"/v1/cycles/{cycle_id}/config", json={"appeal_window_days": 7, "hr_resolution_days": 5}, headers=hr(settings)
    )
    assert (await client.post(f"/v1/cycles/{cycle_id}/release", headers=hr(settings))).status_code == 200

    # Late appeal: one second after release + 7 days.
    clock.now = T0 + timedelta(days=7, seconds=1)
    late = await client.post(
        f"/v1/cycles/{cycle_id}/appeals",
        json={"reason": "My pipeline numbers were wrong."},
        headers=emp(settings, "carol"),
    )
    assert late.status_code == 409
    assert "2026-06-08T09:00:00+00:00" in late.json()["detail"]

    clock.now = T0 + timedelta(days=6)
    submitted = await client.post(
        f"/v1/cycles/{cycle_id}/appeals",
        json={"reason": "Two of my deals were booked to the wrong quarter."},
        headers=emp(settings, "bob"),
    )
    assert submitted.status_code == 201, submitted.text
    appeal = submitted.json()
    assert appeal["status"] == "submitted"
    assert appeal["hr_due_at"].startswith("2026-06-12T09:00:00")
    duplicate = await client.post(
        f"/v1/cycles/{cycle_id}/appeals", json={"reason": "Trying a second time."}, headers=emp(settings, "bob")
    )
    assert duplicate.status_code == 409
    other = await client.post(
        f"/v1/cycles/{cycle_id}/appeals", json={"reason": "Appeal for someone else?"}, headers=emp(settings, "o-head")
    )
    assert other.status_code == 201  # o-head appeals their own result; nobody can appeal another's
    # Scoped: alice cannot read bob's appeal; bob's manager can.
    assert (await client.get(f"/v1/appeals/{appeal['id']}", headers=emp(settings, "alice"))).status_code == 404
    mine = await client.get(f"/v1/cycles/{cycle_id}/appeals", headers=emp(settings, "s-head", "manager"))
    assert [a["employee_id"] for a in mine.json()] == ["bob"]

    # HR overdue: nothing before the deadline, both after it.
    overdue = await client.get("/v1/appeals/overdue", params={"cycle_id": cycle_id}, headers=auth(settings, "ops"))
    assert overdue.json() == []
    clock.now = T0 + timedelta(days=11, hours=1)
    overdue = await client.get("/v1/appeals/overdue", params={"cycle_id": cycle_id}, headers=auth(settings, "ops"))
    assert [a["employee_id"] for a in overdue.json()] == ["bob", "o-head"]
    assert (await client.get("/v1/appeals/overdue", headers=emp(settings, "bob"))).status_code == 403

    reviewing = await client.post(f"/v1/appeals/{appeal['id']}/review", headers=hr(settings))
    assert reviewing.json()["status"] == "under_review"

    # Evaluation refuses: 502, nothing changes, the appeal stays open.
    receiver.fail_with = 409
    failed = await client.post(
        f"/v1/appeals/{appeal['id']}/resolve",
        json={"outcome": "adjusted", "note": "Deals re-booked", "new_score": 3.1, "new_rating": "meets"},
        headers=hr(settings),
    )
    assert failed.status_code == 502
    assert failed.json()["detail"] == (
        "the evaluation service refused the adjustment (409: calibration is locked); the appeal stays open"
    )
    assert (await client.get(f"/v1/appeals/{appeal['id']}", headers=hr(settings))).json()["status"] == "under_review"

    # Evaluation unreachable: 502 naming the network failure; the appeal stays open.
    receiving = client.app.state.http  # type: ignore[attr-defined]
    client.app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(refuse_connection))  # type: ignore[attr-defined]
    unreachable = await client.post(
        f"/v1/appeals/{appeal['id']}/resolve",
        json={"outcome": "adjusted", "note": "Deals re-booked", "new_score": 3.1, "new_rating": "meets"},
        headers=hr(settings),
    )
    await client.app.state.http.aclose()  # type: ignore[attr-defined]
    client.app.state.http = receiving  # type: ignore[attr-defined]
    assert unreachable.status_code == 502
    assert unreachable.json()["detail"] == (
        "could not reach the evaluation service to record the adjustment (ConnectError); "
        "the appeal stays open, retry the resolution"
    )
    assert (await client.get(f"/v1/appeals/{appeal['id']}", headers=hr(settings))).json()["status"] == "under_review"

    receiver.fail_with = None
    bad = await client.post(
        f"/v1/appeals/{appeal['id']}/resolve",
        json={"outcome": "adjusted", "note": "Deals re-booked", "new_score": 7.0, "new_rating": "meets"},
        headers=hr(settings),
    )
    assert bad.status_code == 422
    assert "outside the cycle's scale" in bad.json()["detail"]
    resolved = await client.post(
        f"/v1/appeals/{appeal['id']}/resolve",
        json={"outcome": "adjusted", "note": "Deals re-booked", "new_score": 3.1, "new_rating": "meets"},
        headers=hr(settings),
    )
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "adjusted"
    assert [(e["action"], e["from_status"], e["to_status"]) for e in body["events"]] == [
        ("submit", None, "submitted"),
        ("start_review", "submitted", "under_review"),
        ("resolve", "under_review", "adjusted"),
    ]
    # evaluation records it first, then results (so pay follows), with the same body and the acting HR person
    assert [c["service"] for c in receiver.calls[-2:]] == ["evaluation", "results"]
    assert receiver.calls[-2]["body"] == receiver.calls[-1]["body"]
    last_call = receiver.calls[-1]
    assert last_call["cycle_id"] == cycle_id
    assert last_call["body"] == {
        "employee_id": "bob",
        "new_score": 3.1,
        "new_rating": "meets",
        "reason": "Deals re-booked",
        "appeal_id": str(appeal["id"]),
    }
    assert last_call["claims"]["sub"] == "system:feedback"
    assert last_call["claims"]["roles"] == ["hr_admin"]
    assert last_call["claims"]["act"] == {"sub": "hr-1"}  # the HR person who resolved the appeal
    bob = await client.get(f"/v1/cycles/{cycle_id}/results/bob", headers=emp(settings, "bob"))
    assert (bob.json()["final_score"], bob.json()["rating"], bob.json()["adjusted_by_appeal_id"]) == (
        3.1,
        "meets",
        appeal["id"],
    )
    again = await client.post(
        f"/v1/appeals/{appeal['id']}/resolve", json={"outcome": "rejected", "note": "x"}, headers=hr(settings)
    )
    assert again.status_code == 409

    # Reject straight from 'submitted': the review step is still recorded.
    rejected = await client.post(
        f"/v1/appeals/{other.json()['id']}/resolve",
        json={"outcome": "rejected", "note": "No new facts"},
        headers=hr(settings),
    )
    assert [e["to_status"] for e in rejected.json()["events"]] == ["submitted", "under_review", "rejected"]
    # the failed adjustment (evaluation only) and the successful one (evaluation, results); rejection calls nothing
    assert [c["service"] for c in receiver.calls] == ["evaluation", "evaluation", "results"]
    overdue = await client.get("/v1/appeals/overdue", params={"cycle_id": cycle_id}, headers=auth(settings, "ops"))
    assert overdue.json() == []
    types = await outbox_types(client)
    assert types.count("AppealSubmitted") == 2 and types.count("AppealResolved") == 2


async def test_a_compressed_cycle_counts_its_appeal_window_in_its_own_days(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A demo cycle with 60-second days: a 7-day appeal window closes 7 minutes after release, HR's 5 days
    are 5 minutes, and the state the publication waits for says so."""
    clock: Clock = client.app.state.clock  # type: ignore[attr-defined]
    cycle_id = await setup_cycle(client, settings)
    await client.put(
        f"/v1/cycles/{cycle_id}/config", json={"appeal_window_days": 7, "hr_resolution_days": 5}, headers=hr(settings)
    )
    bad = await client.post(f"/v1/cycles/{cycle_id}/release", params={"day_seconds": 0}, headers=hr(settings))
    assert bad.status_code == 422 and "day_seconds" in bad.text
    released = await client.post(f"/v1/cycles/{cycle_id}/release", params={"day_seconds": 60}, headers=hr(settings))
    assert released.status_code == 200, released.text
    assert released.json()["appeal_deadline"] == (T0 + timedelta(minutes=7)).isoformat().replace("+00:00", "Z")
    clock.now = T0 + timedelta(minutes=3)
    appeal = await client.post(
        f"/v1/cycles/{cycle_id}/appeals", json={"reason": "Within the window."}, headers=emp(settings, "bob")
    )
    assert appeal.status_code == 201, appeal.text
    assert appeal.json()["hr_due_at"].startswith((T0 + timedelta(minutes=8)).isoformat()[:19])
    clock.now = T0 + timedelta(minutes=7, seconds=1)
    late = await client.post(
        f"/v1/cycles/{cycle_id}/appeals", json={"reason": "Too late now."}, headers=emp(settings, "carol")
    )
    assert late.status_code == 409 and "7 days after the result was released" in late.json()["detail"]
    state = (await client.get(f"/v1/cycles/{cycle_id}/appeal-state", headers=hr(settings))).json()
    assert state["window_open"] is False and [a["employee_id"] for a in state["open_appeals"]] == ["bob"]


async def test_withdraw_keeps_released_results(client: httpx.AsyncClient, settings: Settings) -> None:
    cycle_id = await setup_cycle(client, settings)
    assert (await client.post(f"/v1/cycles/{cycle_id}/release", headers=hr(settings))).status_code == 200
    # A late re-push after release changes nothing already released.
    later = results(cycle_id)
    later["results"][1]["final_score"] = 1.0
    repush = await client.put(f"/v1/cycles/{cycle_id}/results", json=later, headers=hr(settings))
    assert repush.json()["kept_released"] == 5
    withdrawn = await client.post(f"/v1/cycles/{cycle_id}/withdraw", headers=hr(settings))
    assert withdrawn.json() == {
        "cycle_id": cycle_id,
        "withdrawn": 0,
        "kept_released": 5,
        "released_employee_ids": ["alice", "bob", "carol", "o-head", "s-head"],
    }

    other = await setup_cycle(client, settings)
    withdrawn = await client.post(f"/v1/cycles/{other}/withdraw", headers=hr(settings))
    assert (withdrawn.json()["withdrawn"], withdrawn.json()["kept_released"]) == (5, 0)
    assert (await client.post(f"/v1/cycles/{other}/release", headers=hr(settings))).status_code == 409
    assert (await client.get(f"/v1/cycles/{other}/results/alice", headers=hr(settings))).json()["status"] == "withdrawn"


async def test_one_on_ones_and_cross_department_kudos(client: httpx.AsyncClient, settings: Settings) -> None:
    cycle_id = await setup_cycle(client, settings, push=False)
    manager = emp(settings, "s-head", "manager", "employee")
    created = await client.post(
        f"/v1/cycles/{cycle_id}/one-on-ones",
        json={"employee_id": "alice", "scheduled_for": "2026-06-03T10:00:00Z", "agenda": ["Q3 pipeline"]},
        headers=manager,
    )
    assert created.status_code == 201, created.text
    meeting = created.json()
    assert (meeting["manager_id"], meeting["employee_id"]) == ("s-head", "alice")
    not_mine = await client.post(
        f"/v1/cycles/{cycle_id}/one-on-ones",
        json={"employee_id": "carol", "scheduled_for": "2026-06-03T10:00:00Z"},
        headers=manager,
    )
    assert not_mine.status_code == 403
    item = await client.post(
        f"/v1/one-on-ones/{meeting['id']}/action-items",
        json={"description": "Share the forecast", "owner_id": "alice", "due_date": "2026-06-10"},
        headers=manager,
    )
    assert item.status_code == 201
    bad_owner = await client.post(
        f"/v1/one-on-ones/{meeting['id']}/action-items",
        json={"description": "x", "owner_id": "carol", "due_date": "2026-06-10"},
        headers=manager,
    )
    assert bad_owner.status_code == 422 and bad_owner.json()["field"] == "owner_id"
    done = await client.patch(
        f"/v1/one-on-ones/{meeting['id']}/action-items/{item.json()['id']}",
        json={"done": True},
        headers=emp(settings, "alice"),
    )
    assert done.json()["done"] is True
    notes = await client.patch(
        f"/v1/one-on-ones/{meeting['id']}", json={"notes": "Good progress"}, headers=emp(settings, "alice")
    )
    assert notes.json()["notes"] == "Good progress"
    assert (await client.get(f"/v1/one-on-ones/{meeting['id']}", headers=emp(settings, "bob"))).status_code == 404
    hr_read = await client.get(f"/v1/one-on-ones/{meeting['id']}", headers=hr(settings))
    assert hr_read.json()["action_items"][0]["owner_id"] == "alice"
    assert (
        await client.patch(f"/v1/one-on-ones/{meeting['id']}", json={"notes": "x"}, headers=hr(settings))
    ).status_code == 403
    by_employee = await client.post(
        f"/v1/cycles/{cycle_id}/one-on-ones",
        json={"employee_id": "carol", "scheduled_for": "2026-06-04T10:00:00Z"},
        headers=emp(settings, "carol"),
    )
    assert by_employee.json()["manager_id"] == "o-head"
    assert [
        m["employee_id"] for m in (await client.get(f"/v1/cycles/{cycle_id}/one-on-ones", headers=manager)).json()
    ] == ["alice"]

    # Kudos across departments: carol (ops) -> alice (sales); visible to alice, her manager, carol; not to bob.
    kudos = await client.post(
        f"/v1/cycles/{cycle_id}/feedback",
        json={"recipient_id": "alice", "kind": "kudos", "message": "Thanks for the clean handover!"},
        headers=emp(settings, "carol"),
    )
    assert kudos.status_code == 201
    assert kudos.json()["author_id"] == "carol"
    self_kudos = await client.post(
        f"/v1/cycles/{cycle_id}/feedback",
        json={"recipient_id": "carol", "kind": "kudos", "message": "me"},
        headers=emp(settings, "carol"),
    )
    assert self_kudos.status_code == 422
    for viewer, headers, expected in [
        ("alice", emp(settings, "alice"), 1),
        ("s-head", manager, 1),
        ("carol", emp(settings, "carol"), 1),
        ("bob", emp(settings, "bob"), 0),
        ("o-head", emp(settings, "o-head", "manager"), 0),
    ]:
        seen = (await client.get(f"/v1/cycles/{cycle_id}/feedback", headers=headers)).json()
        assert len(seen) == expected, viewer


async def test_outbox_events_are_counted_once_per_change(client: httpx.AsyncClient, settings: Settings) -> None:
    cycle_id = await setup_cycle(client, settings)
    for _ in range(3):
        await client.post(f"/v1/cycles/{cycle_id}/release", headers=hr(settings))
    async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        count = await session.scalar(select(func.count()).select_from(FeedbackOutbox))
    assert count == 1


async def test_feedback_on_request_across_departments(client: httpx.AsyncClient, settings: Settings) -> None:
    """Bob (sales) asks Carol (operations) for feedback; she answers once, as her attributed feedback; a
    second request goes to Alice, who declines. Who sees what follows the notes' own rule."""
    clock: Clock = client.app.state.clock  # type: ignore[attr-defined]
    cycle_id = await setup_cycle(client, settings, push=False)
    base = f"/v1/cycles/{cycle_id}/feedback-requests"
    bob, carol, alice = emp(settings, "bob"), emp(settings, "carol"), emp(settings, "alice")
    ask = {"giver_id": "carol", "question": "How was my hand-over of the Q3 plan?", "due_date": "2026-06-20"}

    for body, named in [
        ({**ask, "giver_id": "bob"}, "giver_id"),  # yourself
        ({**ask, "giver_id": "nobody"}, "giver_id"),  # not a participant
        ({**ask, "due_date": "2026-05-01"}, "due_date"),  # before today (the clock is 2026-06-01)
        ({**ask, "question": ""}, "question"),
    ]:
        refused = await client.post(base, json=body, headers=bob)
        assert refused.status_code == 422 and named in refused.text, refused.text
    made = await client.post(base, json=ask, headers=bob)
    assert made.status_code == 201, made.text
    request = made.json()
    assert (request["requester_id"], request["giver_id"], request["status"]) == ("bob", "carol", "open")
    assert (request["requester_name"], request["giver_name"]) == ("Bob", "Carol")  # from the cycle's snapshot
    again = await client.post(base, json=ask, headers=bob)
    assert again.status_code == 409 and "still open" in again.json()["detail"]

    # Carol sees it as a request to answer; Bob's manager sees it; Olga (Carol's manager) and Alice do not.
    asked = (await client.get(base, params={"status": "open"}, headers=carol)).json()
    assert [r["id"] for r in asked] == [request["id"]]
    assert [r["id"] for r in (await client.get(base, headers=emp(settings, "s-head", "manager"))).json()] == [
        request["id"]
    ]
    assert (await client.get(base, headers=alice)).json() == []
    assert (await client.get(base, headers=emp(settings, "o-head", "manager"))).json() == []
    bad_status = await client.get(base, params={"status": "closed"}, headers=bob)
    assert bad_status.status_code == 422 and "status" in bad_status.text

    answer = f"/v1/feedback-requests/{request['id']}/answer"
    assert (await client.post(answer, json={"message": "x"}, headers=alice)).status_code == 404  # not hers
    own = await client.post(answer, json={"message": "Great plan."}, headers=bob)
    assert own.status_code == 403 and "only 'carol'" in own.json()["detail"]
    clock.now = T0 + timedelta(days=2)
    answered = await client.post(answer, json={"message": "Clear and early; add the risks next time."}, headers=carol)
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "answered" and answered.json()["answer"].startswith("Clear and early")
    assert (await client.post(answer, json={"message": "twice"}, headers=carol)).status_code == 409
    notes = (await client.get(f"/v1/cycles/{cycle_id}/feedback", headers=bob)).json()
    assert [(n["author_id"], n["recipient_id"], n["kind"]) for n in notes] == [("carol", "bob", "feedback")]
    mine = (await client.get(base, headers=bob)).json()
    assert mine[0]["answer"] == "Clear and early; add the risks next time."

    second = (await client.post(base, json={**ask, "giver_id": "alice"}, headers=bob)).json()
    declined = await client.post(
        f"/v1/feedback-requests/{second['id']}/decline", json={"reason": "I was not on that project."}, headers=alice
    )
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert declined.json()["decline_reason"] == "I was not on that project."
    assert (await client.post(base, json={**ask, "giver_id": "alice"}, headers=bob)).status_code == 201  # may re-ask


async def test_a_request_kept_from_the_manager_stays_between_the_two(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Bob asks Carol without sharing it with his manager: Sam (his manager) sees neither the request nor the
    answer note; HR does. A shared one (the default) Sam sees, answer included."""
    cycle_id = await setup_cycle(client, settings, push=False)
    base = f"/v1/cycles/{cycle_id}/feedback-requests"
    bob, carol, sam = emp(settings, "bob"), emp(settings, "carol"), emp(settings, "s-head", "manager")
    private = await client.post(
        base,
        json={"giver_id": "carol", "question": "Honestly: my tone in meetings?", "share_with_manager": False},
        headers=bob,
    )
    assert private.status_code == 201 and private.json()["share_with_manager"] is False
    answer = f"/v1/feedback-requests/{private.json()['id']}/answer"
    assert (await client.post(answer, json={"message": "Sometimes curt."}, headers=carol)).status_code == 200
    shared = await client.post(base, json={"giver_id": "alice", "question": "My Q3 deck?"}, headers=bob)
    assert shared.status_code == 201 and shared.json()["share_with_manager"] is True
    answered = f"/v1/feedback-requests/{shared.json()['id']}/answer"
    assert (await client.post(answered, json={"message": "Clear."}, headers=emp(settings, "alice"))).status_code == 200

    assert [r["question"] for r in (await client.get(base, headers=sam)).json()] == ["My Q3 deck?"]
    notes = f"/v1/cycles/{cycle_id}/feedback"
    assert [n["message"] for n in (await client.get(notes, headers=sam)).json()] == ["Clear."]
    assert len((await client.get(base, headers=hr(settings))).json()) == 2
    assert {n["message"] for n in (await client.get(notes, headers=bob)).json()} == {"Sometimes curt.", "Clear."}
