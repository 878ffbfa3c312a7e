"""Issue 14, finding 4: collaboration integrity.

A department head could declare a collaboration with another department alone and rate it 1/1/1,
lowering the scores of everyone in it. Now a declared link is a proposal until the other side's
head (or HR) declares it too; nothing along a proposal counts (no rating, no cross-department
rater); and the collaboration component never moves a person's score by more than its weight's
share of the rating scale, whatever else that person has (``scoring.bound_component``).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from contracts.scoring import RatingScale
from services.common.settings import Settings
from services.evaluation.app import create_app
from services.evaluation.scoring import ComponentBreakdown, FinalScore, bound_component
from tests.integration.test_evaluation_api import CONFIG, CYCLE, PEOPLE, hr, nominate, ok, person, setup_cycle
from tests.support import api_client

BASE = f"/v1/cycles/{CYCLE}"
FINANCE = [e for e, _, d, _ in PEOPLE if d == "fin"]
BOUND = CONFIG["weights"]["collaboration"] / 100 * (5 - 1)
"""The most the collaboration component may move a score: its weight's share of the 1..5 scale."""


async def scores(client: httpx.AsyncClient, settings: Settings) -> dict[str, dict[str, Any]]:
    ok(await client.post(f"{BASE}/scores/compute", headers=hr(settings)))
    return {r["employee_id"]: r for r in ok(await client.get(f"{BASE}/results", headers=hr(settings)))}


def hostile(rater: str = "sales", rated: str = "fin") -> dict[str, Any]:
    return {
        "rater_department_id": rater,
        "rated_department_id": rated,
        "responsiveness": 1,
        "data_quality": 1,
        "reliability": 1,
        "comment": "useless",
    }


async def test_a_lone_department_cannot_lower_another_departments_scores(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        await setup_cycle(client, settings)  # ops rated finance (2, 3, 4); HR declared fin-ops
        before = await scores(client, settings)
        sales_head = person(settings, "e-sh", "dept_head")

        # the sales head declares a collaboration with finance alone: a proposal, nothing more
        link = ok(
            await client.post(
                f"{BASE}/collaborations", json={"department_a": "sales", "department_b": "fin"}, headers=sales_head
            ),
            201,
        )
        assert (link["status"], link["awaiting"]) == ("proposed", ["fin"])
        refused = ok(await client.put(f"{BASE}/collaboration-ratings", json=hostile(), headers=sales_head), 409)
        assert "not confirmed yet" in refused["detail"] and refused["field"] == "rated_department_id"
        assert "'fin'" in refused["detail"]  # says whose confirmation is missing
        # nor does a proposal let a manager bring in cross-department raters from finance
        body = ok(
            await nominate(
                client, person(settings, "e-m", "manager"), reviewee="e-r", rater="e-f1", relation="cross_department"
            ),
            409,
        )
        assert "awaits confirmation by the head of 'fin'" in body["detail"]
        listed = ok(await client.get(f"{BASE}/collaborations", headers=hr(settings)))
        assert {
            "department_a": "fin",
            "department_b": "sales",
            "source": "declared",
            "status": "proposed",
            "awaiting": ["fin"],
        } in listed
        after = await scores(client, settings)
        assert {e: after[e]["final_score"] for e in FINANCE} == {e: before[e]["final_score"] for e in FINANCE}

        # finance's head confirms: now both sides stand behind it and sales may rate finance
        link = ok(
            await client.post(
                f"{BASE}/collaborations",
                json={"department_a": "fin", "department_b": "sales"},
                headers=person(settings, "e-fh", "dept_head"),
            ),
            201,
        )
        assert (link["status"], link["awaiting"]) == ("confirmed", [])
        ok(await client.put(f"{BASE}/collaboration-ratings", json=hostile(), headers=sales_head))
        matrix = ok(await client.get(f"{BASE}/collaboration-matrix", headers=hr(settings)))
        assert ("sales", "fin") in {(c["rater_department_id"], c["rated_department_id"]) for c in matrix["cells"]}

        # a lone 1/1/1 moves no finance score by more than the collaboration weight's share of the scale
        # (finance people have nothing but the collaboration component: without the bound it decided their
        # whole score, 3.0 -> 2.0)
        after = await scores(client, settings)
        for employee_id in FINANCE:
            moved = before[employee_id]["final_score"] - after[employee_id]["final_score"]
            assert 0 < moved <= BOUND + 1e-4, (employee_id, before[employee_id], after[employee_id])
            assert any("more than its weight allows" in n for n in after[employee_id]["notes"])


async def test_hr_confirms_both_sides_and_the_template_minimum_holds(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        await setup_cycle(client, settings)
        link = ok(
            await client.post(
                f"{BASE}/collaborations", json={"department_a": "sales", "department_b": "fin"}, headers=hr(settings)
            ),
            201,
        )
        assert link["status"] == "confirmed"
        ok(
            await client.put(
                f"{BASE}/collaboration-ratings", json=hostile(), headers=person(settings, "e-sh", "dept_head")
            )
        )
        # the template asks for three rating departments: finance has two (ops, sales), so it does not count
        ok(
            await client.put(
                f"{BASE}/config", json={**CONFIG, "collaboration": {"min_rater_departments": 3}}, headers=hr(settings)
            )
        )
        after = await scores(client, settings)
        for employee_id in FINANCE:
            component = next(c for c in after[employee_id]["components"] if c["name"] == "collaboration")
            assert (component["status"], component["ratings"]) == ("below_min_rater_departments", 2)


def test_the_bound_holds_whatever_else_the_score_has() -> None:
    """``bound_component``: the weight's share of the scale, around the score without the component (or
    the scale's midpoint when nothing else scores the person)."""
    scale = RatingScale.model_validate(CONFIG["rating_scale"])
    components: list[ComponentBreakdown] = []

    def final(score: float | None) -> FinalScore:
        return FinalScore(score=score, rating=None if score is None else scale.band_for(score), components=components)

    weight = CONFIG["weights"]["collaboration"]
    held = bound_component(final(1.0), without=final(4.0), component="collaboration", weight=weight, scale=scale)
    assert held.score == pytest.approx(4.0 - BOUND, abs=1e-4) and "held at" in held.notes[-1]
    alone = bound_component(final(1.0), without=final(None), component="collaboration", weight=weight, scale=scale)
    assert alone.score == pytest.approx(3.0 - BOUND, abs=1e-4)
    within = bound_component(final(3.9), without=final(4.0), component="collaboration", weight=weight, scale=scale)
    assert within == final(3.9)
