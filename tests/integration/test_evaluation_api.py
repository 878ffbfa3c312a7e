"""Evaluation API end to end on SQLite and PostgreSQL: inputs, reviews, scoring, calibration,
appeal, final results, what-if and pending. Expected numbers are worked out in comments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from contracts.evaluation import evaluation_config
from contracts.templates import CycleTemplateSpec
from services.common.settings import Settings
from services.evaluation.app import create_app
from services.evaluation.models import Base, EvaluationOutbox
from tests.support import api_client, auth

CYCLE = "c-2026"
SAMPLE_TEMPLATE = (
    Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org" / "template.json"
).read_text()

DEPARTMENTS = [
    {"department_id": "sales", "name": "Sales", "head_employee_id": "e-sh"},
    {"department_id": "ops", "name": "Operations", "head_employee_id": "e-oh"},
    {"department_id": "fin", "name": "Finance", "head_employee_id": "e-fh"},
]
PEOPLE = [
    ("e-sh", "Sales Head", "sales", None),
    ("e-m", "Mia Manager", "sales", "e-sh"),
    ("e-r", "Rita Reviewee", "sales", "e-m"),
    ("e-p1", "Paul Peer", "sales", "e-m"),
    ("e-p2", "Petra Peer", "sales", "e-m"),
    ("e-p3", "Pia Peer", "sales", "e-m"),
    ("e-oh", "Ops Head", "ops", None),
    ("e-x1", "Xavier Crossdept", "ops", "e-oh"),
    ("e-fh", "Fin Head", "fin", None),
    ("e-f1", "Fiona Finance", "fin", "e-fh"),
]
DEPT_OF = {e: d for e, _, d, _ in PEOPLE}

CONFIG: dict[str, Any] = {
    "rating_scale": {
        "min": 1,
        "max": 5,
        "bands": [
            {"label": "below", "min_score": 1, "max_score": 2.5},
            {"label": "meets", "min_score": 2.5, "max_score": 3.5},
            {"label": "exceeds", "min_score": 3.5, "max_score": 4.5},
            {"label": "outstanding", "min_score": 4.5, "max_score": 5},
        ],
    },
    "competencies": [
        {"competency_id": "collab", "name": "Collaboration", "scale_min": 1, "scale_max": 5},
        {"competency_id": "delivery", "name": "Delivery", "scale_min": 0, "scale_max": 10},
    ],
    # 50:30:20:10 as percent (the weights sum to 100); the weighted sum renormalises over present components
    "weights": {"kpi": 5000 / 110, "manager": 3000 / 110, "peer": 2000 / 110, "collaboration": 1000 / 110},
    "formula": "w_kpi * kpi + w_manager * manager + w_peer * peer + w_collaboration * collaboration",
    # min_group_size 1: this small test org is held to the limits (the default, 10, would waive them)
    "calibration": {"limits": [{"band": "outstanding", "max_percent": 20}], "min_group_size": 1},
    "peer_anonymity_threshold": 3,
    "attainment_cap": 1.2,
    "rater_limits": {"peer": {"min": 0, "max": 3}, "cross_department": {"min": 0, "max": 2}},
}

GOALS = {
    "cycle_id": CYCLE,
    "goals": [
        {
            "goal_id": "g-rev",
            "level": "individual",
            "name": "Revenue",
            "employee_id": "e-r",
            "kpi_id": "k-rev",
            "weight": 60,
            "unit": "kEUR",
            "direction": "higher_is_better",
            "start_value": 0,
            "target_value": 100,
        },
        {
            "goal_id": "g-def",
            "level": "individual",
            "name": "Defects",
            "employee_id": "e-r",
            "kpi_id": "k-def",
            "weight": 40,
            "unit": "count",
            "direction": "lower_is_better",
            "start_value": 10,
            "target_value": 5,
        },
        {
            "goal_id": "g-shared",
            "level": "department",
            "name": "On-time delivery",
            "department_id": "sales",
            "weight": 100,
            "unit": "%",
            "direction": "higher_is_better",
            "start_value": 80,
            "target_value": 95,
            "contributing_department_ids": ["sales", "ops"],
        },
    ],
}
ACTUALS = {
    "cycle_id": CYCLE,
    "as_of": "2026-12-01T00:00:00Z",
    "actuals": [
        {"kpi_id": "k-rev", "actual_value": 50, "event_count": 3},
        {"kpi_id": "k-def", "actual_value": 4, "event_count": 2},
    ],
}
# g-rev: 50/100 = 0.5; g-def: (4-10)/(5-10) = 1.2; goal score 0.6*0.5 + 0.4*1.2 = 0.78
# on the 1..5 scale with cap 1.2: 1 + 0.78 * 4 / 1.2 = 3.6


def snapshot() -> dict[str, Any]:
    return {
        "cycle_id": CYCLE,
        "departments": DEPARTMENTS,
        "participants": [
            {
                "employee_id": e,
                "name": n,
                "department_id": d,
                "manager_id": m,
                "job_title": "Staff",
                "grade": "G5",
            }
            for e, n, d, m in PEOPLE
        ],
    }


def hr(settings: Settings) -> dict[str, str]:
    return auth(settings, "hr_admin", sub="hr-hana", employee_id="e-hr")


def person(settings: Settings, employee_id: str, *extra_roles: str) -> dict[str, str]:
    return auth(
        settings,
        "employee",
        *extra_roles,
        sub=f"user-{employee_id}",
        employee_id=employee_id,
        department_id=DEPT_OF[employee_id],
    )


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def setup_cycle(client: httpx.AsyncClient, settings: Settings) -> None:
    """Inputs pushed by the workflow, generated self/manager reviews, and collaboration ratings."""
    h = hr(settings)
    base = f"/v1/cycles/{CYCLE}"
    ok(await client.put(f"{base}/participants", json=snapshot(), headers=h))
    ok(await client.put(f"{base}/config", json=CONFIG, headers=h))
    ok(await client.put(f"{base}/goals", json=GOALS, headers=h))
    ok(await client.put(f"{base}/actuals", json=ACTUALS, headers=h))
    ok(await client.post(f"{base}/assignments/generate", headers=h))
    # finance works with operations (declared); sales and ops share g-shared
    ok(await client.post(f"{base}/collaborations", json={"department_a": "fin", "department_b": "ops"}, headers=h), 201)
    for rater, rated, head, scores in [
        ("ops", "sales", "e-oh", (4, 3, 5)),
        ("sales", "ops", "e-sh", (5, 5, 5)),
        ("ops", "fin", "e-oh", (2, 3, 4)),
        ("fin", "ops", "e-fh", (3, 3, 3)),
    ]:
        body = {
            "rater_department_id": rater,
            "rated_department_id": rated,
            "responsiveness": scores[0],
            "data_quality": scores[1],
            "reliability": scores[2],
            "comment": f"{rater} on {rated}",
        }
        ok(await client.put(f"{base}/collaboration-ratings", json=body, headers=person(settings, head, "dept_head")))


async def assignment_id(
    client: httpx.AsyncClient, settings: Settings, *, rater: str, reviewee: str, relation: str
) -> str:
    rows = ok(
        await client.get(
            f"/v1/cycles/{CYCLE}/assignments",
            params={"rater_id": rater, "reviewee_id": reviewee, "relation": relation},
            headers=hr(settings),
        )
    )
    assert len(rows) == 1, rows
    return str(rows[0]["assignment_id"])


async def submit(
    client: httpx.AsyncClient,
    settings: Settings,
    *,
    rater: str,
    reviewee: str,
    relation: str,
    collab: float,
    delivery: float,
    comment: str | None = None,
) -> None:
    aid = await assignment_id(client, settings, rater=rater, reviewee=reviewee, relation=relation)
    ok(
        await client.post(
            f"/v1/cycles/{CYCLE}/assignments/{aid}/review",
            json={"ratings": {"collab": collab, "delivery": delivery}, "comment": comment},
            headers=person(settings, rater),
        )
    )


async def nominate(
    client: httpx.AsyncClient, headers: dict[str, str], *, reviewee: str, rater: str, relation: str = "peer"
) -> httpx.Response:
    return await client.post(
        f"/v1/cycles/{CYCLE}/assignments",
        json={"reviewee_id": reviewee, "rater_id": rater, "relation": relation},
        headers=headers,
    )


async def collect_reviews(client: httpx.AsyncClient, settings: Settings, *, peers: int = 3) -> None:
    """Manager e-m nominates peers and one cross-department rater for e-r; everyone submits."""
    manager = person(settings, "e-m", "manager")
    for rater in ["e-p1", "e-p2", "e-p3"][:peers]:
        ok(await nominate(client, manager, reviewee="e-r", rater=rater), 201)
    ok(await nominate(client, manager, reviewee="e-r", rater="e-x1", relation="cross_department"), 201)
    # manager review: collab 4 -> 4; delivery 8 on 0..10 -> 1 + 8*0.4 = 4.2; review score 4.1
    await submit(client, settings, rater="e-m", reviewee="e-r", relation="manager", collab=4, delivery=8)
    # peers: (3, 5 -> 3.0) (4, 7.5 -> 4.0) (5, 10 -> 5.0): mean 4.0
    for rater, collab, delivery in [("e-p1", 3, 5), ("e-p2", 4, 7.5), ("e-p3", 5, 10)][:peers]:
        await submit(
            client,
            settings,
            rater=rater,
            reviewee="e-r",
            relation="peer",
            collab=collab,
            delivery=delivery,
            comment=f"feedback {collab}",
        )
    await submit(client, settings, rater="e-x1", reviewee="e-r", relation="cross_department", collab=5, delivery=5)


async def give_everyone_a_self_review(client: httpx.AsyncClient, settings: Settings) -> None:
    for employee_id, *_ in PEOPLE:
        if employee_id != "e-r":
            await submit(
                client, settings, rater=employee_id, reviewee=employee_id, relation="self", collab=3, delivery=5
            )


async def dump_tables(client: httpx.AsyncClient) -> dict[str, list[tuple[Any, ...]]]:
    async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            out[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
        return out


# -- tests ------------------------------------------------------------------------------------
async def test_inputs_are_validated_with_clear_errors(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        base = f"/v1/cycles/{CYCLE}"
        h = hr(settings)
        bad_formula = {**CONFIG, "formula": "kpi.__class__"}
        body = ok(await client.put(f"{base}/config", json=bad_formula, headers=h), 422)
        assert body["errors"][0]["field"] == "formula" and "attribute access" in body["detail"]
        bad_bands = {
            **CONFIG,
            "rating_scale": {"min": 1, "max": 5, "bands": [{"label": "x", "min_score": 1, "max_score": 4}]},
        }
        assert "cover the scale" in ok(await client.put(f"{base}/config", json=bad_bands, headers=h), 422)["detail"]
        ignoring = {**CONFIG, "formula": "w_kpi * kpi + w_manager * manager"}
        body = ok(await client.put(f"{base}/config", json=ignoring, headers=h), 422)
        assert "formula ignores weighted component(s) ['collaboration', 'peer']" in body["detail"]
        wrong_way = json.loads(json.dumps(GOALS))
        wrong_way["goals"][1]["target_value"] = 20  # lower-is-better goal whose target is above its start
        body = ok(await client.put(f"{base}/goals", json=wrong_way, headers=h), 422)
        assert body["field"] == "goals.1.target_value"
        other = {**ACTUALS, "cycle_id": "another"}
        assert ok(await client.put(f"{base}/actuals", json=other, headers=h), 422)["field"] == "cycle_id"
        # roles: an employee cannot push inputs; nothing without a token
        assert (await client.put(f"{base}/config", json=CONFIG, headers=person(settings, "e-r"))).status_code == 403
        assert (await client.get(f"{base}/config")).status_code == 401
        # scoring before the config exists is a clear 409
        ok(await client.put(f"{base}/participants", json=snapshot(), headers=h))
        body = ok(await client.post(f"{base}/scores/compute", headers=h), 409)
        assert "PUT /v1/cycles/c-2026/config first" in body["detail"]


async def test_the_workflow_config_of_the_sample_template_is_accepted(settings: Settings, database_url: str) -> None:
    body = evaluation_config(CycleTemplateSpec.model_validate_json(SAMPLE_TEMPLATE)).model_dump(mode="json")
    async with api_client(create_app, settings, database_url) as client:
        base = f"/v1/cycles/{CYCLE}"
        assert ok(await client.put(f"{base}/config", json=body, headers=hr(settings))) == body
        assert ok(await client.get(f"{base}/config", headers=person(settings, "e-r"))) == body


async def test_goal_scores_and_rater_rules(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        await setup_cycle(client, settings)
        base = f"/v1/cycles/{CYCLE}"
        score = ok(await client.get(f"{base}/goal-scores/e-r", headers=person(settings, "e-r")))
        assert score["score"] == pytest.approx(0.78)
        assert [g["attainment"] for g in score["goals"]] == [pytest.approx(0.5), pytest.approx(1.2)]
        # scoped: a peer cannot read someone else's goal score
        assert (await client.get(f"{base}/goal-scores/e-r", headers=person(settings, "e-p1"))).status_code == 404

        manager = person(settings, "e-m", "manager")
        body = ok(await nominate(client, manager, reviewee="e-r", rater="e-r"), 422)
        assert "nobody rates themselves" in body["detail"]
        body = ok(await nominate(client, manager, reviewee="e-r", rater="e-f1", relation="cross_department"), 422)
        assert "share no goal" in body["detail"]  # sales and fin neither share a goal nor declared one
        body = ok(await nominate(client, manager, reviewee="e-r", rater="e-p1", relation="cross_department"), 422)
        assert "another department" in body["detail"]
        ok(await nominate(client, manager, reviewee="e-r", rater="e-x1", relation="cross_department"), 201)
        # the ops head manages no one in sales; a plain employee cannot nominate at all
        other_manager = person(settings, "e-oh", "manager")
        assert (await nominate(client, other_manager, reviewee="e-r", rater="e-p1")).status_code == 403
        assert (await nominate(client, person(settings, "e-p1"), reviewee="e-r", rater="e-p2")).status_code == 403
        for rater in ["e-p1", "e-p2", "e-p3"]:
            ok(await nominate(client, manager, reviewee="e-r", rater=rater), 201)
        assert (await nominate(client, manager, reviewee="e-r", rater="e-p1")).status_code == 409  # max 3 peers
        hr_headers = hr(settings)
        assert (await nominate(client, hr_headers, reviewee="e-p1", rater="e-p2")).status_code == 201

        # only the rater submits, once, with every competency on its scale
        aid = await assignment_id(client, settings, rater="e-p1", reviewee="e-r", relation="peer")
        url = f"{base}/assignments/{aid}/review"
        good = {"ratings": {"collab": 4, "delivery": 7}}
        assert (await client.post(url, json=good, headers=person(settings, "e-p2"))).status_code == 404
        body = ok(await client.post(url, json={"ratings": {"collab": 4}}, headers=person(settings, "e-p1")), 422)
        assert "missing ['delivery']" in body["detail"]
        body = ok(
            await client.post(url, json={"ratings": {"collab": 4, "delivery": 11}}, headers=person(settings, "e-p1")),
            422,
        )
        assert body["field"] == "ratings.delivery"
        ok(await client.post(url, json=good, headers=person(settings, "e-p1")))
        assert (await client.post(url, json=good, headers=person(settings, "e-p1"))).status_code == 409

        links = ok(await client.get(f"{base}/collaborations", headers=hr_headers))
        assert {(x["department_a"], x["department_b"], x["source"]) for x in links} == {
            ("ops", "sales", "shared_goal"),
            ("fin", "ops", "declared"),
        }
        matrix = ok(await client.get(f"{base}/collaboration-matrix", headers=hr_headers))
        cell = next(
            c for c in matrix["cells"] if (c["rater_department_id"], c["rated_department_id"]) == ("ops", "sales")
        )
        assert (cell["overall"], cell["ratings"], cell["comments"]) == (4.0, 1, ["ops on sales"])
        # a department head rates only for their own department, and only departments it works with
        bad = {
            "rater_department_id": "sales",
            "rated_department_id": "fin",
            "responsiveness": 1,
            "data_quality": 1,
            "reliability": 1,
        }
        assert (
            await client.put(f"{base}/collaboration-ratings", json=bad, headers=person(settings, "e-oh", "dept_head"))
        ).status_code == 403
        assert (
            "works with"
            in ok(
                await client.put(
                    f"{base}/collaboration-ratings", json=bad, headers=person(settings, "e-sh", "dept_head")
                ),
                422,
            )["detail"]
        )


async def test_scoring_calibration_and_appeal(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        await setup_cycle(client, settings)
        await collect_reviews(client, settings, peers=2)
        base = f"/v1/cycles/{CYCLE}"
        h = hr(settings)

        summary = ok(await client.post(f"{base}/scores/compute", headers=h))
        assert summary["scored"] == len(PEOPLE)  # everyone gets at least the collaboration component
        result = ok(await client.get(f"{base}/results/e-r", headers=h))
        # peers: only 2 of 3 submitted -> left out. collaboration of sales: ops rated (4+3+5)/3 = 4.
        # (50*3.6 + 30*4.1 + 10*4) / (50+30+10) = (180 + 123 + 40) / 90 = 3.81111 -> 3.8111, 'exceeds'
        assert result["computed_score"] == pytest.approx(3.8111)
        assert result["rating"] == "exceeds"
        peer = next(c for c in result["components"] if c["name"] == "peer")
        assert peer["status"] == "below_anonymity_threshold" and peer["value"] is None
        assert any("fewer than 3 ratings" in n for n in result["notes"])

        # third peer submits -> peer counts: (3.0 + 4.0 + 5.0) / 3 = 4.0
        manager = person(settings, "e-m", "manager")
        ok(await nominate(client, manager, reviewee="e-r", rater="e-p3"), 201)
        await submit(client, settings, rater="e-p3", reviewee="e-r", relation="peer", collab=5, delivery=10)
        ok(await client.post(f"{base}/scores/compute", headers=h))
        result = ok(await client.get(f"{base}/results/e-r", headers=h))
        # (180 + 123 + 20*4.0 + 40) / 110 = 423 / 110 = 3.845454 -> 3.8455
        assert result["computed_score"] == pytest.approx(3.8455)

        # the employee never reads their own result here (issue 14: feedback releases it); 403, before and after close
        own = ok(await client.get(f"{base}/results/e-r", headers=person(settings, "e-r")), 403)
        assert "feedback service once released" in own["detail"]

        # calibration: HR moves e-r to 'outstanding' (band midpoint 4.75); the final rating itself changes
        adj = ok(
            await client.post(
                f"{base}/calibration/adjustments",
                json={"employee_id": "e-r", "new_rating": "outstanding", "reason": "led the key account"},
                headers=h,
            ),
            201,
        )
        assert (adj["before_score"], adj["before_rating"]) == (pytest.approx(3.8455), "exceeds")
        assert (adj["after_score"], adj["after_rating"], adj["actor"]) == (4.75, "outstanding", "hr-hana")
        result = ok(await client.get(f"{base}/results/e-r", headers=h))
        assert (result["final_score"], result["rating"], result["calibrated"]) == (4.75, "outstanding", True)
        assert result["computed_score"] == pytest.approx(3.8455)  # before value kept
        # recomputing keeps the calibrated value
        assert ok(await client.post(f"{base}/scores/compute", headers=h))["kept_calibrated"] == 1
        assert ok(await client.get(f"{base}/results/e-r", headers=h))["rating"] == "outstanding"

        # a department head calibrates only inside their department, and never themselves
        ops_head = person(settings, "e-oh", "dept_head")
        body = {"employee_id": "e-r", "new_score": 3.0, "reason": "x"}
        assert (await client.post(f"{base}/calibration/adjustments", json=body, headers=ops_head)).status_code == 403
        sales_head = person(settings, "e-sh", "dept_head")
        body = {"employee_id": "e-sh", "new_score": 5.0, "reason": "me"}
        assert (await client.post(f"{base}/calibration/adjustments", json=body, headers=sales_head)).status_code == 403
        body = {"employee_id": "e-m", "new_score": 2.0, "new_rating": "meets", "reason": "x"}
        assert (
            "falls in band 'below'"
            in ok(await client.post(f"{base}/calibration/adjustments", json=body, headers=sales_head), 422)["detail"]
        )
        body = {"employee_id": "e-m", "new_score": 3.2, "reason": "strict manager review corrected"}
        ok(await client.post(f"{base}/calibration/adjustments", json=body, headers=sales_head), 201)

        distribution = ok(await client.get(f"{base}/calibration/distribution", headers=h))
        top = distribution["bands"][0]
        assert top["label"] == "outstanding" and top["max_share"] == 0.2
        deviation = ok(await client.get(f"{base}/calibration/deviation", headers=h))
        assert {d["group_id"] for d in deviation["by_department"]} == {"sales", "ops", "fin"}
        assert "z = " in deviation["method"]

        # final results exist only after close; close blocks adjustments, except the appeal path
        assert (await client.get(f"{base}/final-results", headers=h)).status_code == 409
        appeal = {"employee_id": "e-r", "appeal_id": "ap-1", "new_score": 4.2, "reason": "appeal upheld in part"}
        assert (await client.post(f"{base}/appeal-adjustments", json=appeal, headers=h)).status_code == 409
        assert (
            await client.post(f"{base}/calibration/close", headers=person(settings, "e-sh", "dept_head"))
        ).status_code == 403
        ok(await client.post(f"{base}/calibration/close", headers=h))
        assert (await client.post(f"{base}/calibration/close", headers=h)).status_code == 409
        body = {"employee_id": "e-r", "new_score": 1.0, "reason": "too late"}
        assert (await client.post(f"{base}/calibration/adjustments", json=body, headers=h)).status_code == 409
        assert (await client.post(f"{base}/scores/compute", headers=h)).status_code == 409

        final = ok(await client.get(f"{base}/final-results", headers=h))
        by_id = {r["employee_id"]: r for r in final["results"]}
        assert (by_id["e-r"]["final_score"], by_id["e-r"]["rating"]) == (4.75, "outstanding")
        assert by_id["e-r"]["pre_calibration_score"] == pytest.approx(3.8455)
        assert (final["scale_min"], final["scale_max"]) == (1, 5)

        first = ok(await client.post(f"{base}/appeal-adjustments", json=appeal, headers=h), 201)
        again = ok(await client.post(f"{base}/appeal-adjustments", json=appeal, headers=h), 200)
        assert first == again and (first["kind"], first["appeal_id"]) == ("appeal", "ap-1")
        assert (first["before_score"], first["after_score"], first["after_rating"]) == (4.75, 4.2, "exceeds")
        final = ok(await client.get(f"{base}/final-results", headers=h))
        assert next(r for r in final["results"] if r["employee_id"] == "e-r")["rating"] == "exceeds"

        trail = ok(await client.get(f"{base}/calibration/adjustments", params={"employee_id": "e-r"}, headers=h))
        assert [(t["kind"], t["before_rating"], t["after_rating"]) for t in trail] == [
            ("calibration", "exceeds", "outstanding"),
            ("appeal", "outstanding", "exceeds"),
        ]
        # still not after close: calibration closing is not the release (issue 14, finding 5)
        assert (await client.get(f"{base}/results/e-r", headers=person(settings, "e-r"))).status_code == 403
        assert ok(await client.get(f"{base}/results", headers=person(settings, "e-r"))) == []

        async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
            events = (await session.scalars(select(EvaluationOutbox))).all()
        types = [e.event_type for e in events]
        assert types.count("ReviewSubmitted") == 5 and types.count("CalibrationAdjusted") == 3
        assert types.count("CalibrationClosed") == 1
        assert all("e-p" not in e.payload for e in events if e.event_type == "ReviewSubmitted")


async def test_close_requires_every_participant_scored(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        base = f"/v1/cycles/{CYCLE}"
        h = hr(settings)
        ok(await client.put(f"{base}/participants", json=snapshot(), headers=h))
        ok(await client.put(f"{base}/config", json=CONFIG, headers=h))
        ok(await client.put(f"{base}/goals", json=GOALS, headers=h))
        ok(await client.put(f"{base}/actuals", json=ACTUALS, headers=h))
        summary = ok(await client.post(f"{base}/scores/compute", headers=h))
        assert summary["scored"] == 1 and "e-m" in summary["unscored"]  # only e-r has goals
        body = ok(await client.post(f"{base}/calibration/close", headers=h), 409)
        assert "have no score" in body["detail"]


async def test_what_if_changes_nothing(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        await setup_cycle(client, settings)
        await collect_reviews(client, settings)
        base = f"/v1/cycles/{CYCLE}"
        h = hr(settings)
        ok(await client.post(f"{base}/scores/compute", headers=h))
        before = await dump_tables(client)
        answer = ok(
            await client.post(
                f"{base}/what-if",
                json={
                    "weights": {"kpi": 100},
                    "calibration": {"limits": [{"band": "exceeds", "max_percent": 10}], "min_group_size": 1},
                },
                headers=h,
            )
        )
        change = next(c for c in answer["changes"] if c["employee_id"] == "e-r")
        # goals only: 3.6 -> 'exceeds'; everyone else has no goals -> no score
        assert (change["what_if_score"], change["what_if_rating"]) == (3.6, "exceeds")
        assert change["current_score"] == pytest.approx(3.8455)
        assert answer["total"] == len(PEOPLE) and answer["changed"] == len(PEOPLE)
        exceeds = next(b for b in answer["distribution"]["bands"] if b["label"] == "exceeds")
        assert exceeds["count"] == 1 and exceeds["violation"] is not None  # 1 of 1 > 10%
        alternative = {"formula": "0.5*kpi + 0.5*peer", "weights": {"kpi": 50, "peer": 50}}
        formula = ok(await client.post(f"{base}/what-if", json=alternative, headers=h))
        # (0.5*3.6 + 0.5*4.0) = 3.8 for e-r
        assert next(c for c in formula["changes"] if c["employee_id"] == "e-r")["what_if_score"] == 3.8
        bad = ok(await client.post(f"{base}/what-if", json={"formula": "open('x')"}, headers=h), 422)
        assert bad["field"] == "formula"
        ignoring = ok(await client.post(f"{base}/what-if", json={"formula": "kpi"}, headers=h), 422)
        assert "formula ignores weighted component(s)" in ignoring["detail"]
        assert (
            await client.post(f"{base}/what-if", json={}, headers=person(settings, "e-m", "manager"))
        ).status_code == 403
        assert await dump_tables(client) == before


async def test_pending_report(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        await setup_cycle(client, settings)
        await collect_reviews(client, settings)
        base = f"/v1/cycles/{CYCLE}"
        report = ok(await client.get(f"{base}/pending", params={"department_id": "sales"}, headers=hr(settings)))
        # sales raters: 6 self + 5 manager reviews (e-m x4 for reports + e-sh for e-m), + 3 peers = 14; 4 done
        assert (report["stage"], report["total"], report["done"]) == ("evaluation", 14, 4)
        assert {i["owner_id"] for i in report["pending"]} == {"e-sh", "e-m", "e-r", "e-p1", "e-p2", "e-p3"}
        assert {i["kind"] for i in report["pending"]} == {"self_review", "manager_review"}
        # a minimum of one peer: managers owe nominations for the 4 people with a manager but no peer
        with_minimum = {**CONFIG, "rater_limits": {"peer": {"min": 1, "max": 3}}}
        ok(await client.put(f"{base}/config", json=with_minimum, headers=hr(settings)))
        report = ok(await client.get(f"{base}/pending", params={"department_id": "sales"}, headers=hr(settings)))
        assert (report["total"], report["done"]) == (14 + 5, 4 + 1)  # e-r already has 3 peers
        owed = {(i["item_id"], i["owner_id"]) for i in report["pending"] if i["kind"] == "peer_nomination"}
        assert owed == {("e-m:peer", "e-sh"), ("e-p1:peer", "e-m"), ("e-p2:peer", "e-m"), ("e-p3:peer", "e-m")}
        bad = await client.get(
            f"{base}/pending", params={"department_id": "sales", "stage": "feedback"}, headers=hr(settings)
        )
        assert bad.status_code == 422 and bad.json()["field"] == "stage"
        forbidden = await client.get(
            f"{base}/pending", params={"department_id": "sales"}, headers=person(settings, "e-oh", "dept_head")
        )
        assert forbidden.status_code == 403


async def test_upward_review_is_anonymous_at_the_threshold_and_never_scored(
    settings: Settings, database_url: str
) -> None:
    """With ``upward_review`` each report reviews their manager: e-m's four reports, e-m of e-sh. The
    manager sees the aggregate only once 3 (the threshold) are in, never who wrote what; no score moves."""
    async with api_client(create_app, settings, database_url) as client:
        h = hr(settings)
        base = f"/v1/cycles/{CYCLE}"
        ok(await client.put(f"{base}/participants", json=snapshot(), headers=h))
        ok(await client.put(f"{base}/config", json={**CONFIG, "upward_review": True}, headers=h))
        ok(await client.put(f"{base}/goals", json=GOALS, headers=h))
        ok(await client.post(f"{base}/assignments/generate", headers=h))
        upward = ok(await client.get(f"{base}/assignments", params={"relation": "upward", "limit": 500}, headers=h))
        assert sorted((a["reviewee_id"], a["rater_id"]) for a in upward) == [
            ("e-fh", "e-f1"), ("e-m", "e-p1"), ("e-m", "e-p2"), ("e-m", "e-p3"), ("e-m", "e-r"), ("e-oh", "e-x1"),
            ("e-sh", "e-m"),
        ]  # fmt: skip
        # HR may add one by hand only for a report of the reviewee
        wrong = ok(await nominate(client, h, reviewee="e-m", rater="e-x1", relation="upward"), 422)
        assert wrong["field"] == "rater_id" and "only reports review upward" in wrong["detail"]

        manager = person(settings, "e-m", "manager")
        for rater, collab in (("e-r", 2), ("e-p1", 3)):
            await submit(client, settings, rater=rater, reviewee="e-m", relation="upward", collab=collab, delivery=6)
        summary = ok(await client.get(f"{base}/reviews/e-m/summary", headers=manager))
        (seen,) = [r for r in summary["relations"] if r["relation"] == "upward"]
        assert (seen["visible"], seen["submitted"]) == (False, 2) and "at least 3" in seen["hidden_reason"]
        await submit(client, settings, rater="e-p2", reviewee="e-m", relation="upward", collab=4, delivery=6,
                     comment="More 1:1 time, please")  # fmt: skip
        summary = ok(await client.get(f"{base}/reviews/e-m/summary", headers=manager))
        (seen,) = [r for r in summary["relations"] if r["relation"] == "upward"]
        assert (seen["visible"], seen["counted"], seen["competencies"]["collab"]) == (True, 3, 3.0)
        assert seen["comments"] == ["More 1:1 time, please"]
        mine = ok(await client.get(f"{base}/assignments", params={"reviewee_id": "e-m"}, headers=manager))
        assert sorted(a["relation"] for a in mine) == ["manager", "self"]  # never who reviewed them upward

        # scoring leaves the upward reviews out: e-m's components are the configured ones only
        await give_everyone_a_self_review(client, settings)
        await submit(client, settings, rater="e-sh", reviewee="e-m", relation="manager", collab=4, delivery=8)
        ok(await client.post(f"{base}/scores/compute", headers=h))
        result = ok(await client.get(f"{base}/results/e-m", headers=h))
        assert "upward" not in {c["name"] for c in result["components"]}
        relations = ok(await client.get(f"{base}/reviews/e-m/summary", headers=h))["relations"]
        (by_manager,) = [r for r in relations if r["relation"] == "manager"]
        assert result["computed_score"] == pytest.approx(by_manager["score"])  # e-m has no goals: the manager review
