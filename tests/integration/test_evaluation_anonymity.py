"""Anonymity: no endpoint returns a peer's (or cross-department rater's) identity to the person reviewed.

The sweep walks every route the app exposes, fills in the path parameters with the
reviewee's cycle, their employee id and every assignment id that exists (peer ones
included), calls it with the reviewee's own token, and asserts that no rater id or
name appears anywhere in any response body, successful or not.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.common.settings import Settings
from services.evaluation.app import create_app
from tests.integration.test_evaluation_api import (
    CYCLE,
    PEOPLE,
    collect_reviews,
    hr,
    ok,
    person,
    setup_cycle,
)
from tests.support import api_client

RATERS = {"e-p1", "e-p2", "e-p3", "e-x1"}
RATER_NAMES = {name for e, name, *_ in PEOPLE if e in RATERS}


GET_QUERIES: list[dict[str, str]] = [
    {},
    {"reviewee_id": "e-r"},
    {"relation": "peer"},
    {"relation": "cross_department"},
    {"rater_id": "e-p1"},
    {"department_id": "sales"},
    {"employee_id": "e-r"},
]


def concrete_paths(template: str, assignment_ids: list[str]) -> list[str]:
    path = template.replace("{cycle_id}", CYCLE).replace("{employee_id}", "e-r")
    paths = [path.replace("{assignment_id}", a) for a in assignment_ids] if "{assignment_id}" in path else [path]
    unknown = [p for p in paths if "{" in p]
    assert not unknown, f"the sweep does not know how to fill {template}"
    return paths


async def sweep(client: httpx.AsyncClient, headers: dict[str, str], assignment_ids: list[str]) -> list[tuple[str, str]]:
    """Call every operation of the OpenAPI document with the reviewee's token; return the bodies."""
    app: Any = client.app  # type: ignore[attr-defined]
    operations = [(path, method.upper()) for path, item in app.openapi()["paths"].items() for method in item]
    assert len(operations) >= 29, "the sweep must see the whole API"
    bodies: list[tuple[str, str]] = []
    for template, method in operations:
        for path in concrete_paths(template, assignment_ids):
            for query in GET_QUERIES if method == "GET" else [{}]:
                kwargs: dict[str, Any] = {"params": query, "headers": headers}
                if method in {"POST", "PUT"}:
                    kwargs["json"] = {}
                response = await client.request(method, path, **kwargs)
                assert response.status_code < 500, (method, path, response.text)
                bodies.append((f"{method} {path} {query} -> {response.status_code}", response.text))
    return bodies


def assert_no_rater(bodies: list[tuple[str, str]]) -> None:
    assert len(bodies) > 100
    for call, body in bodies:
        for rater in RATERS | RATER_NAMES:
            assert rater not in body, f"rater {rater!r} leaked by {call}: {body[:500]}"


async def test_no_endpoint_returns_a_rater_to_the_reviewee(settings: Settings, one_database_url: str) -> None:
    async with api_client(create_app, settings, one_database_url) as client:
        await setup_cycle(client, settings)
        await collect_reviews(client, settings)
        base = f"/v1/cycles/{CYCLE}"
        h = hr(settings)
        rows = ok(await client.get(f"{base}/assignments", params={"limit": 500}, headers=h))
        ids = [r["assignment_id"] for r in rows]
        peer_rows = [r for r in rows if r["reviewee_id"] == "e-r" and r["relation"] in {"peer", "cross_department"}]
        assert {r["rater_id"] for r in peer_rows} == RATERS  # HR sees them: the data is really there

        # positive control: a rater sees their own assignment, and the reviewee sees the aggregate
        own = ok(await client.get(f"{base}/assignments", headers=person(settings, "e-p1")))
        assert any(r["reviewee_id"] == "e-r" and r["relation"] == "peer" for r in own)
        summary = ok(await client.get(f"{base}/reviews/e-r/summary", headers=person(settings, "e-r")))
        peer = next(r for r in summary["relations"] if r["relation"] == "peer")
        assert (peer["visible"], peer["submitted"], peer["score"]) == (True, 3, 4.0)
        assert peer["comments"] == ["feedback 3", "feedback 4", "feedback 5"]  # sorted, unattributed
        cross = next(r for r in summary["relations"] if r["relation"] == "cross_department")
        assert (cross["visible"], cross["score"], cross["comments"]) == (False, None, [])  # 1 < threshold 3

        ok(await client.post(f"{base}/scores/compute", headers=h))
        # the reviewee as a plain employee and with extra roles, before and after results are final
        reviewee_tokens = [person(settings, "e-r"), person(settings, "e-r", "manager")]
        for headers in reviewee_tokens:
            assert_no_rater(await sweep(client, headers, ids))
        ok(await client.post(f"{base}/calibration/close", headers=h))
        for headers in reviewee_tokens:
            bodies = await sweep(client, headers, ids)
            assert_no_rater(bodies)
            answered = {call.split(" {")[0] for call, _ in bodies if call.endswith("200")}
            # the sweep really reached the reviewee's own data, not only 403/404s
            for reached in ["/reviews/e-r/summary", "/goal-scores/e-r", "/assignments", "/config"]:
                assert f"GET /v1/cycles/{CYCLE}{reached}" in answered, reached
            # the reviewee's own result is not evaluation's to show (issue 14: feedback releases it)
            assert f"GET /v1/cycles/{CYCLE}/results/e-r {{}} -> 403" in {call for call, _ in bodies}
        # a reviewee who heads the department legitimately sees colleagues, but never who rated them
        head = person(settings, "e-r", "dept_head")
        listed = ok(await client.get(f"{base}/assignments", params={"limit": 500}, headers=head))
        assert listed and not [
            r for r in listed if r["reviewee_id"] == "e-r" and r["relation"] in {"peer", "cross_department"}
        ]
        pending = ok(await client.get(f"{base}/pending", params={"department_id": "sales"}, headers=head))
        peer_ids = {r["assignment_id"] for r in peer_rows}
        assert not peer_ids & {i["item_id"] for i in pending["pending"]}
        for aid in peer_ids:
            assert (await client.get(f"{base}/assignments/{aid}", headers=head)).status_code == 404
        own_result = await client.get(f"{base}/results/e-r", headers=person(settings, "e-r"))
        assert own_result.status_code == 403  # released by feedback, never read here
