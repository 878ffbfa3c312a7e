"""Results service over HTTP on SQLite and PostgreSQL: pools and idempotent allocation,
promotions, development plans, the collaboration report (JSON, CSV, HTML), awards,
idempotent publishing through the outbox, and the workflow's pending report."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from contracts.domain_events import parse_domain_event
from contracts.results import CollaborationAwardAnnouncedPayload
from services.common.settings import Settings
from services.results.app import create_app
from services.results.models import ResultsOutbox
from tests.support import api_client, auth

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def org(cycle_id: str) -> dict[str, Any]:
    def p(emp: str, dept: str, mgr: str | None, grade: str) -> dict[str, Any]:
        return {
            "employee_id": emp,
            "name": emp.title(),
            "department_id": dept,
            "manager_id": mgr,
            "job_title": "Staff",
            "grade": grade,
        }

    return {
        "cycle_id": cycle_id,
        "departments": [
            {"department_id": "sales", "name": "Sales", "head_employee_id": "s-head"},
            {"department_id": "ops", "name": "Operations", "head_employee_id": "o-head"},
            {"department_id": "fin", "name": "Finance", "head_employee_id": "f-head"},
        ],
        "participants": [
            p("s-head", "sales", None, "G7"),
            p("alice", "sales", "s-head", "G4"),
            p("bob", "sales", "s-head", "G3"),
            p("dana", "sales", "s-head", "G7"),
            p("o-head", "ops", None, "G7"),
            p("carol", "ops", "o-head", "G4"),
            p("f-head", "fin", None, "G7"),
        ],
    }


def results(cycle_id: str) -> dict[str, Any]:
    rows = [
        ("s-head", "sales", None, 4.0, "meets"),
        ("alice", "sales", "s-head", 4.6, "exceeds"),
        ("bob", "sales", "s-head", 2.1, "below"),
        ("dana", "sales", "s-head", 4.8, "exceeds"),
        ("o-head", "ops", None, 3.5, "meets"),
        ("carol", "ops", "o-head", 3.2, "meets"),
        ("f-head", "fin", None, 3.0, "meets"),
    ]
    return {
        "cycle_id": cycle_id,
        "scale_min": 1,
        "scale_max": 5,
        "results": [
            {"employee_id": e, "department_id": d, "manager_id": m, "final_score": s, "rating": r, "calibrated": True}
            for e, d, m, s, r in rows
        ],
    }


def matrix(cycle_id: str, shift: float = 0.0) -> dict[str, Any]:
    def c(rater: str, rated: str, r: float, d: float, rel: float, comments: list[str] | None = None) -> dict[str, Any]:
        overall = round((r + d + rel) / 3 + shift, 3)
        return {
            "rater_department_id": rater,
            "rated_department_id": rated,
            "responsiveness": r + shift,
            "data_quality": d + shift,
            "reliability": rel + shift,
            "overall": overall,
            "ratings": 3,
            "comments": comments or [],
        }

    return {
        "cycle_id": cycle_id,
        "cells": [
            c("sales", "ops", 4.5, 4.5, 4.5),
            c("ops", "sales", 4.0, 4.5, 4.0),
            c("sales", "fin", 2.5, 1.5, 3.0, ["Reports have missing figures", "numbers inconsistent"]),
            c("fin", "sales", 3.0, 2.0, 3.0),
            c("ops", "fin", 3.5, 3.0, 3.5),
            c("fin", "ops", 4.0, 4.0, 4.0),
        ],
    }


def goals(cycle_id: str) -> dict[str, Any]:
    def g(goal_id: str, dept: str, contributors: list[str]) -> dict[str, Any]:
        return {
            "goal_id": goal_id,
            "level": "department",
            "name": f"Goal {goal_id}",
            "department_id": dept,
            "weight": 50,
            "unit": "%",
            "direction": "higher_is_better",
            "start_value": 0,
            "target_value": 100,
            "contributing_department_ids": contributors,
        }

    return {"cycle_id": cycle_id, "goals": [g("g1", "ops", ["sales"]), g("g2", "ops", ["fin"]), g("g3", "sales", [])]}


@pytest.fixture
async def client(settings: Settings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app, settings, database_url) as http:
        http.app.state.clock = lambda: NOW  # type: ignore[attr-defined]
        yield http


def hr(settings: Settings) -> dict[str, str]:
    return auth(settings, "hr_admin", sub="hr-1")


def person(settings: Settings, employee_id: str, *roles: str, department_id: str | None = None) -> dict[str, str]:
    return auth(
        settings, *(roles or ("employee",)), sub=employee_id, employee_id=employee_id, department_id=department_id
    )


async def setup_cycle(client: httpx.AsyncClient, settings: Settings) -> str:
    cycle_id = f"c-{uuid.uuid4().hex[:8]}"
    for path, body in [
        ("participants", org(cycle_id)),
        ("results", results(cycle_id)),
        ("collaboration", matrix(cycle_id)),
        ("goals", goals(cycle_id)),
    ]:
        response = await client.put(f"/v1/cycles/{cycle_id}/{path}", json=body, headers=hr(settings))
        assert response.status_code == 200, (path, response.text)
    return cycle_id


async def outbox_rows(client: httpx.AsyncClient, cycle_id: str) -> list[ResultsOutbox]:
    async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        return list((await session.scalars(select(ResultsOutbox).where(ResultsOutbox.key == cycle_id))).all())


async def test_pool_allocation_is_exact_idempotent_and_rejects_over_pool(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    cycle_id = await setup_cycle(client, settings)
    url = f"/v1/cycles/{cycle_id}/pools/sales/allocations"
    no_pool = await client.post(url, json={}, headers=hr(settings))
    assert no_pool.status_code == 409 and "no bonus pool" in no_pool.json()["detail"]

    pool = await client.put(
        f"/v1/cycles/{cycle_id}/pools/sales", json={"amount_cents": 1_000_001, "currency": "EUR"}, headers=hr(settings)
    )
    assert pool.status_code == 200 and pool.json()["amount_cents"] == 1_000_001
    bad_currency = await client.put(
        f"/v1/cycles/{cycle_id}/pools/ops", json={"amount_cents": 5, "currency": "euro"}, headers=hr(settings)
    )
    assert bad_currency.status_code == 422 and "currency" in bad_currency.json()["detail"]
    unknown = await client.put(
        f"/v1/cycles/{cycle_id}/pools/legal", json={"amount_cents": 5, "currency": "EUR"}, headers=hr(settings)
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "department_id"
    assert (
        await client.post(url, json={}, headers=person(settings, "s-head", "manager", "dept_head"))
    ).status_code == 403

    body = {
        "curve": {"type": "rating_multiplier", "multipliers": {"exceeds": 1.5, "meets": 1.0, "below": 0}},
        "caps": {"max_pct_of_pool": 40},
    }
    key = {"Idempotency-Key": f"alloc-{cycle_id}-sales"}
    first = await client.post(url, json=body, headers={**hr(settings), **key})
    assert first.status_code == 201, first.text
    allocation = first.json()
    lines = {line["employee_id"]: line for line in allocation["lines"]}
    assert sum(line["amount_cents"] for line in lines.values()) + allocation["unallocated_cents"] == 1_000_001
    # Weights 1.5 (alice), 1.5 (dana), 1.0 (s-head), 0 (bob) -> 375000.375, 375000.375, 250000.25 (all under
    # the 40% cap); the one cent left goes to the first of the equal largest remainders (alice).
    assert [lines[e]["amount_cents"] for e in ("alice", "bob", "dana", "s-head")] == [375_001, 0, 375_000, 250_000]
    assert allocation["allocated_cents"] == 1_000_001 and not allocation["replayed"]

    retry = await client.post(url, json=body, headers={**hr(settings), **key})
    assert retry.status_code == 200
    assert retry.json()["id"] == allocation["id"] and retry.json()["replayed"] is True
    current = await client.get(f"/v1/cycles/{cycle_id}/pools/sales/allocation", headers=hr(settings))
    assert current.json()["id"] == allocation["id"]
    reused = await client.post(url, json={"caps": {"max_cents": 10}}, headers={**hr(settings), **key})
    assert reused.status_code == 422 and "Idempotency-Key" in reused.json()["detail"]

    over = await client.post(url, json={"fixed": {"alice": 900_000, "dana": 200_000}}, headers=hr(settings))
    assert over.status_code == 422
    assert "1100000 cents" in over.json()["detail"] and "1000001 cents" in over.json()["detail"]
    # The rejected allocation changed nothing.
    current = await client.get(f"/v1/cycles/{cycle_id}/pools/sales/allocation", headers=hr(settings))
    assert current.json()["id"] == allocation["id"]

    # Dept heads read their own department's allocation only.
    own = await client.get(
        f"/v1/cycles/{cycle_id}/pools/sales/allocation", headers=person(settings, "s-head", "dept_head")
    )
    assert own.status_code == 200
    other = await client.get(
        f"/v1/cycles/{cycle_id}/pools/sales/allocation", headers=person(settings, "o-head", "dept_head")
    )
    assert other.status_code == 403
    # Employees see bonuses only once published.
    assert (await client.get(f"/v1/cycles/{cycle_id}/bonuses", headers=person(settings, "alice"))).json() == []


async def test_promotions_development_plans_and_pending(client: httpx.AsyncClient, settings: Settings) -> None:
    cycle_id = await setup_cycle(client, settings)
    policy = {
        "promotion": {"ratings": ["exceeds"], "min_score": 4.5, "grade_ladder": ["G3", "G4", "G5", "G6", "G7"]},
        "development": {"ratings": ["below"], "below_score": 3.1},
    }
    assert (await client.put(f"/v1/cycles/{cycle_id}/policy", json=policy, headers=hr(settings))).status_code == 200
    nominated = await client.post(f"/v1/cycles/{cycle_id}/promotions/nominate", headers=hr(settings))
    assert nominated.status_code == 200
    # dana is 'exceeds' 4.8 but already at the top grade G7.
    assert nominated.json() == [
        {
            "employee_id": "alice",
            "department_id": "sales",
            "grade": "G4",
            "rating": "exceeds",
            "final_score": 4.6,
            "reasons": [
                "rating 'exceeds' is in the promotion band ['exceeds']",
                "score 4.6 >= 4.5",
                "grade G4 is below the top grade G7",
            ],
        }
    ]
    assert (await client.get(f"/v1/cycles/{cycle_id}/promotions", headers=person(settings, "bob"))).json() == []

    generated = await client.post(f"/v1/cycles/{cycle_id}/development-plans/generate", headers=hr(settings))
    assert generated.json() == {"created": 2, "already_had_plan": 0}  # bob (below) and f-head (3.0 < 3.1)
    again = await client.post(f"/v1/cycles/{cycle_id}/development-plans/generate", headers=hr(settings))
    assert again.json() == {"created": 0, "already_had_plan": 2}
    bob_plans = (await client.get(f"/v1/cycles/{cycle_id}/development-plans", headers=person(settings, "bob"))).json()
    assert [(p["employee_id"], p["owner_id"], p["status"]) for p in bob_plans] == [("bob", "s-head", "draft")]
    assert (
        await client.get(f"/v1/cycles/{cycle_id}/development-plans", headers=person(settings, "alice"))
    ).json() == []
    plan_id = bob_plans[0]["id"]
    assert (await client.get(f"/v1/development-plans/{plan_id}", headers=person(settings, "alice"))).status_code == 404

    pending = await client.get(
        f"/v1/cycles/{cycle_id}/pending",
        params={"department_id": "sales", "stage": "result_application"},
        headers=hr(settings),
    )
    assert {(i["item_id"], i["kind"]) for i in pending.json()["pending"]} == {
        ("pool-sales", "bonus_pool_budget"),
        (f"plan-{plan_id}", "development_plan_items"),
    }

    manager = person(settings, "s-head", "manager")
    activate = await client.patch(f"/v1/development-plans/{plan_id}", json={"status": "active"}, headers=manager)
    assert activate.status_code == 409 and "at least one item" in activate.json()["detail"]
    item = await client.post(
        f"/v1/development-plans/{plan_id}/items",
        json={"description": "Pair with a senior AE on two deals", "owner_id": "bob"},
        headers=manager,
    )
    assert item.status_code == 201 and item.json()["due_date"] == "2026-09-29"  # 90 days from NOW
    assert (
        await client.post(
            f"/v1/development-plans/{plan_id}/items",
            json={"description": "x", "owner_id": "bob"},
            headers=person(settings, "o-head", "manager"),
        )
    ).status_code == 404  # a manager of another department does not see the plan at all (issue 14)
    done = await client.patch(
        f"/v1/development-plans/{plan_id}/items/{item.json()['id']}",
        json={"done": True},
        headers=person(settings, "bob"),
    )
    assert done.status_code == 200 and done.json()["done"] is True
    moved = await client.patch(
        f"/v1/development-plans/{plan_id}/items/{item.json()['id']}",
        json={"due_date": "2027-01-01"},
        headers=person(settings, "bob"),
    )
    assert moved.status_code == 403
    assert (await client.patch(f"/v1/development-plans/{plan_id}", json={"status": "active"}, headers=manager)).json()[
        "status"
    ] == "active"

    await client.put(
        f"/v1/cycles/{cycle_id}/pools/sales", json={"amount_cents": 100, "currency": "EUR"}, headers=hr(settings)
    )
    pending = await client.get(
        f"/v1/cycles/{cycle_id}/pending", params={"department_id": "sales"}, headers=auth(settings, "ops")
    )
    assert [i["kind"] for i in pending.json()["pending"]] == ["bonus_allocation"]
    await client.post(f"/v1/cycles/{cycle_id}/pools/sales/allocations", json={}, headers=hr(settings))
    pending = (
        await client.get(f"/v1/cycles/{cycle_id}/pending", params={"department_id": "sales"}, headers=hr(settings))
    ).json()
    assert (pending["total"], pending["done"], pending["pending"]) == (2, 2, [])


async def test_collaboration_report_json_csv_html_and_award(client: httpx.AsyncClient, settings: Settings) -> None:
    previous = f"prev-{uuid.uuid4().hex[:8]}"
    assert (
        await client.put(
            f"/v1/cycles/{previous}/collaboration", json=matrix(previous, shift=-0.5), headers=hr(settings)
        )
    ).status_code == 200
    cycle_id = await setup_cycle(client, settings)
    linked = await client.put(
        f"/v1/cycles/{cycle_id}/collaboration",
        params={"previous_cycle_id": previous},
        json=matrix(cycle_id),
        headers=hr(settings),
    )
    assert linked.status_code == 200
    head = person(settings, "s-head", "dept_head", department_id="sales")
    assert (
        await client.get(f"/v1/cycles/{cycle_id}/collaboration-report", headers=person(settings, "alice"))
    ).status_code == 403

    report = (await client.get(f"/v1/cycles/{cycle_id}/collaboration-report", headers=head)).json()
    assert report["previous_cycle_id"] == previous
    assert len(report["matrix"]) == 6
    assert report["strongest_pairs"][0]["department_names"] == ["Operations", "Sales"]
    weakest = report["weakest_pairs"][0]
    assert weakest["department_ids"] == ["fin", "sales"]
    suggestion = report["suggestions"][0]
    assert suggestion["weakest_dimension"] == "data_quality"
    assert suggestion["matched_keywords"] == ["inconsistent", "missing"]
    assert any("shared definitions" in a for a in suggestion["actions"])
    assert {c["change"] for c in report["changes"]} == {0.5}

    csv_response = await client.get(f"/v1/cycles/{cycle_id}/collaboration-report.csv", headers=head)
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert csv_response.content.startswith("\ufeff".encode())  # a BOM, so Excel reads UTF-8 names right
    rows = list(csv.DictReader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    sales_fin = next(r for r in rows if (r["rater_department_id"], r["rated_department_id"]) == ("sales", "fin"))
    assert (sales_fin["rated_department"], sales_fin["change"]) == ("Finance", "0.5")
    assert sales_fin["comments"] == "Reports have missing figures | numbers inconsistent"

    page = await client.get(f"/v1/cycles/{cycle_id}/collaboration-report.html", headers=hr(settings))
    assert page.headers["content-type"].startswith("text/html")
    assert 'class="heatmap"' in page.text and "<script" not in page.text
    assert f"Compared with cycle {previous}" in page.text
    assert "Finance &harr; Sales" in page.text  # the weakest pair, with its suggestions
    assert "shared definitions" in page.text

    awards = (await client.get(f"/v1/cycles/{cycle_id}/collaboration-awards", headers=person(settings, "carol"))).json()
    assert awards["winner"]["department_id"] == "ops"
    assert "contributed to shared goal g1 'Goal g1'" in awards["winner"]["evidence"]
    assert awards["winner"]["shared_goals"] == 2
    assert awards["announced"] is None  # computed live until publication records it

    # finance funds the award; publication records and announces it, once; the fund is fixed then
    finance = auth(settings, "finance", sub="fin-fay")
    refused = await client.put(f"/v1/cycles/{cycle_id}/award-fund", json={"amount_cents": 1, "currency": "eur"},
                               headers=finance)  # fmt: skip
    assert refused.status_code == 422 and "currency" in refused.text
    assert (await client.put(f"/v1/cycles/{cycle_id}/award-fund", json={"amount_cents": 5_000, "currency": "EUR"},
                             headers=person(settings, "s-head", "dept_head"))).status_code == 403  # fmt: skip
    fund = await client.put(
        f"/v1/cycles/{cycle_id}/award-fund", json={"amount_cents": 500_000, "currency": "EUR"}, headers=finance
    )
    assert fund.status_code == 200 and fund.json()["updated_by"] == "fin-fay"
    assert (await client.post(f"/v1/cycles/{cycle_id}/publish", headers=hr(settings))).status_code == 201
    announced = (await client.get(f"/v1/cycles/{cycle_id}/collaboration-awards", headers=head)).json()["announced"]
    assert (announced["winner_department_id"], announced["winner_name"]) == ("ops", "Operations")
    assert (announced["fund_cents"], announced["currency"], announced["announced_by"]) == (500_000, "EUR", "hr-1")
    late = await client.put(
        f"/v1/cycles/{cycle_id}/award-fund", json={"amount_cents": 9, "currency": "EUR"}, headers=finance
    )
    assert late.status_code == 409 and late.json()["field"] == "amount_cents" and "announced" in late.json()["detail"]


async def test_publish_once_per_key_through_the_outbox(client: httpx.AsyncClient, settings: Settings) -> None:
    cycle_id = await setup_cycle(client, settings)
    await client.put(
        f"/v1/cycles/{cycle_id}/pools/sales", json={"amount_cents": 10_000, "currency": "EUR"}, headers=hr(settings)
    )
    refused = await client.post(f"/v1/cycles/{cycle_id}/publish", headers=hr(settings))
    assert refused.status_code == 409 and "['sales']" in refused.json()["detail"]
    await client.post(f"/v1/cycles/{cycle_id}/pools/sales/allocations", json={}, headers=hr(settings))

    key = {"Idempotency-Key": f"publish-{cycle_id}"}
    first = await client.post(f"/v1/cycles/{cycle_id}/publish", headers={**hr(settings), **key})
    assert first.status_code == 201, first.text
    retry = await client.post(f"/v1/cycles/{cycle_id}/publish", headers={**hr(settings), **key})
    assert retry.status_code == 200 and retry.json()["replayed"] is True
    assert retry.json()["event_ids"] == first.json()["event_ids"]
    other = await client.post(f"/v1/cycles/{cycle_id}/publish", headers={**hr(settings), "Idempotency-Key": "other"})
    assert other.status_code == 409
    rows = await outbox_rows(client, cycle_id)
    assert [(r.event_type, r.event_id) for r in rows][:1] == [("ResultsPublished", first.json()["event_ids"][0])]
    # and the collaboration award, announced once with the publication (no fund was set here)
    (award,) = [r for r in rows if r.event_type == "CollaborationAwardAnnounced"]
    assert len(rows) == 2
    announced = parse_domain_event(award.payload).payload
    assert isinstance(announced, CollaborationAwardAnnouncedPayload)
    assert announced.cycle_id == cycle_id and announced.winner_department_id == "ops"
    assert announced.fund_cents is None and announced.reason.startswith("highest award score")

    bonuses = (await client.get(f"/v1/cycles/{cycle_id}/bonuses", headers=person(settings, "alice"))).json()
    assert [(b["employee_id"], b["currency"]) for b in bonuses] == [("alice", "EUR")]
    team = (await client.get(f"/v1/cycles/{cycle_id}/bonuses", headers=person(settings, "s-head", "manager"))).json()
    assert sum(b["amount_cents"] for b in team) == 10_000


async def test_concurrent_retries_with_one_key_allocate_and_publish_once(settings: Settings, postgres_url: str) -> None:
    """Retries racing the first request (PostgreSQL: the unique key makes the loser wait, then fail)
    are answered as retries: one allocation, one publication, no error."""
    async with api_client(create_app, settings, postgres_url) as client:
        client.app.state.clock = lambda: NOW  # type: ignore[attr-defined]
        cycle_id = await setup_cycle(client, settings)
        await client.put(
            f"/v1/cycles/{cycle_id}/pools/sales", json={"amount_cents": 10_000, "currency": "EUR"}, headers=hr(settings)
        )
        for path, key in (("pools/sales/allocations", "alloc"), ("publish", "publish")):
            headers = {**hr(settings), "Idempotency-Key": f"{key}-{cycle_id}"}
            answers = await asyncio.gather(
                *(client.post(f"/v1/cycles/{cycle_id}/{path}", json={}, headers=headers) for _ in range(4))
            )
            assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
            assert [a.json()["replayed"] for a in answers].count(False) == 1
            ids = {a.json().get("id") or a.json()["publication_id"] for a in answers}
            assert len(ids) == 1
        rows = await outbox_rows(client, cycle_id)
        assert sorted(r.event_type for r in rows) == ["CollaborationAwardAnnounced", "ResultsPublished"]
