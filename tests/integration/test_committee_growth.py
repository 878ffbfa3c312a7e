"""Growth paths across two cycles, against the real services in process (the committee harness): the
data seeded through the cycles, evaluation and feedback APIs; a career framework, potential ratings
and their calibration through the committee API. A person sees their own history, readiness, next
steps and 9-box position; their manager and HR see the team's; bad input is refused naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.common.settings import Settings
from services.cycles.service import sample_template
from tests.integration.test_committee_api import (
    DEPARTMENTS,
    EVALUATION_CONFIG,
    PEOPLE,
    Stack,
    committee_stack,
    hr,
    ok,
    person,
)

FRAMEWORK = {
    "name": "Sales specialists",
    "job_titles": ["Specialist"],
    "levels": [
        {"grade": "G5", "title": "Specialist", "competencies": {"collab": 3, "delivery": 3}},
        {"grade": "G6", "title": "Senior specialist", "competencies": {"collab": 4, "delivery": 4}},
        {"grade": "G7", "title": "Lead", "competencies": {"collab": 4.5, "delivery": 4.5}},
    ],
}
CYCLES = {  # name, period -> person: (manager's collab, delivery), final score, rating
    ("FY2025", "2025-01-01", "2025-12-31"): {
        "alice": ((3, 4), 3.0, "meets"),
        "bob": ((3, 3), 3.0, "meets"),
        "carol": ((4, 4), 3.2, "meets"),
    },
    ("FY2026", "2026-01-01", "2026-12-31"): {
        "alice": ((4, 5), 4.2, "exceeds"),
        "bob": ((3, 5), 4.0, "exceeds"),
        "carol": ((2, 3), 2.0, "below"),
    },
}


async def seed_cycle(stack: Stack, name: str, start: str, end: str, people: dict[str, Any]) -> str:
    """One cycle: the org (a fresh import each time), evaluation's reviews and feedback's released results."""
    h = hr(stack.settings)
    org = {
        "departments": [
            {"department_id": d, "name": n, "parent_id": None, "head_employee_id": head} for d, n, head in DEPARTMENTS
        ],
        "employees": [
            {"employee_id": e, "name": e.title(), "email": f"{e}@example.test", "department_id": d,
             "manager_id": m, "job_title": "Head" if m is None else "Specialist", "grade": "G5"}
            for e, d, m in PEOPLE
        ],
    }  # fmt: skip
    async with stack.client("cycles") as cycles, stack.client("evaluation") as evaluation:
        json_body = {"content-type": "application/json"}
        ok(await cycles.post("/v1/org/import", content=json.dumps(org), headers=h | json_body))
        template = sample_template().model_dump(mode="json") | {"name": f"Review {name}"}
        created = await cycles.post("/v1/templates", json=template, headers=h)
        body = {"name": name, "template_id": ok(created, 201)["template_id"], "period_start": start,
                "period_end": end, "department_ids": [d for d, _, _ in DEPARTMENTS]}  # fmt: skip
        cycle_id = str(ok(await cycles.post("/v1/cycles", json=body, headers=h), 201)["cycle_id"])
        ok(await cycles.post(f"/v1/cycles/{cycle_id}/start", headers=h))
        base = f"/v1/cycles/{cycle_id}"
        ok(await evaluation.put(f"{base}/config", json=EVALUATION_CONFIG, headers=h))
        ok(await evaluation.put(f"{base}/goals", json={"cycle_id": cycle_id, "goals": []}, headers=h))
        ok(await evaluation.post(f"{base}/assignments/generate", headers=h))
        for reviewee, ((collab, delivery), _, _) in people.items():
            query = {"rater_id": "sam", "reviewee_id": reviewee, "relation": "manager"}
            (row,) = ok(await evaluation.get(f"{base}/assignments", params=query, headers=h))
            review = {"ratings": {"collab": collab, "delivery": delivery}}
            sam = person(stack.settings, "sam", "manager", "dept_head")
            ok(await evaluation.post(f"{base}/assignments/{row['assignment_id']}/review", json=review, headers=sam))
        ok(await evaluation.post(f"{base}/scores/compute", headers=h))
    results = {
        "cycle_id": cycle_id,
        "scale_min": 1,
        "scale_max": 5,
        "results": [
            {"employee_id": e, "department_id": "sales", "manager_id": "sam", "final_score": score, "rating": rating}
            for e, (_, score, rating) in people.items()
        ],
    }
    async with stack.client("feedback") as feedback:
        ok(await feedback.put(f"/v1/cycles/{cycle_id}/results", json=results, headers=h))
        ok(await feedback.put(f"/v1/cycles/{cycle_id}/config", json={"calibration_closed": True}, headers=h))
        ok(await feedback.post(f"/v1/cycles/{cycle_id}/release", headers=h))
    return cycle_id


async def test_a_growth_path_over_two_cycles_with_readiness_and_the_nine_box(
    settings: Settings, tmp_path: Path, one_database_url: str
) -> None:
    async with committee_stack(settings, tmp_path, one_database_url) as stack:
        ids = [await seed_cycle(stack, *cycle, people) for cycle, people in CYCLES.items()]
        first, second = ids
        h = hr(stack.settings)
        sam = person(stack.settings, "sam", "manager", "dept_head")
        alice = person(stack.settings, "alice")
        async with stack.client("committee") as committee:
            # -- bad input, each refused naming the field ------------------------------------------------
            skipping = json.loads(json.dumps(FRAMEWORK))
            skipping["levels"][1]["competencies"] = {"collab": 4}
            refused = await committee.put("/v1/career-frameworks/sales", json=skipping, headers=h)
            assert refused.status_code == 422 and refused.json()["field"] == "levels[1].competencies"
            assert "skips delivery" in refused.json()["detail"]
            lower = json.loads(json.dumps(FRAMEWORK))
            lower["levels"][2]["competencies"]["delivery"] = 3.5
            refused = await committee.put("/v1/career-frameworks/sales", json=lower, headers=h)
            assert refused.status_code == 422 and refused.json()["field"] == "levels[2].competencies"
            out_of_scale = await committee.put(
                f"/v1/cycles/{second}/potential/alice", json={"potential": "very high"}, headers=sam
            )
            assert out_of_scale.status_code == 422 and "potential" in out_of_scale.text
            ok(await committee.put("/v1/career-frameworks/sales", json=FRAMEWORK, headers=h))
            taken = await committee.put("/v1/career-frameworks/other", json=FRAMEWORK, headers=h)
            assert taken.status_code == 409 and taken.json()["field"] == "job_titles"
            # an employee rates nobody's potential; a head rates nobody outside their scope
            assert (await committee.put(f"/v1/cycles/{second}/potential/bob", json={"potential": "high"},
                                        headers=alice)).status_code == 403  # fmt: skip
            outside = await committee.put(f"/v1/cycles/{second}/potential/olga", json={"potential": "low"}, headers=sam)
            assert outside.status_code == 404

            # -- potential: the manager rates, the committee calibrates -----------------------------------
            ok(await committee.put(f"/v1/cycles/{second}/potential/alice", json={"potential": "high"}, headers=sam))
            ok(await committee.put(f"/v1/cycles/{second}/potential/bob", json={"potential": "low"}, headers=sam))
            bad_session = {"potential": "medium", "reason": "Committee review", "session_id": "no-such-session"}
            refused = await committee.post(
                f"/v1/cycles/{second}/potential/bob/calibration", json=bad_session, headers=h
            )
            assert refused.status_code == 422 and refused.json()["field"] == "session_id"
            calibrated = ok(
                await committee.post(
                    f"/v1/cycles/{second}/potential/bob/calibration",
                    json={"potential": "medium", "reason": "Led the CRM migration across three departments"},
                    headers=h,
                )
            )
            assert (calibrated["rated"], calibrated["calibrated"], calibrated["calibrated_by"]) == (
                "low",
                "medium",
                "hana",
            )

            # -- alice sees her own path --------------------------------------------------------------
            mine = ok(await committee.get("/v1/people/alice/growth", headers=alice))
            assert [(r["cycle_id"], r["rating"], r["performance"], r["competencies"]) for r in mine["history"]] == [
                (first, "meets", "medium", {"collab": 3, "delivery": 4}),
                (second, "exceeds", "high", {"collab": 4, "delivery": 5}),
            ]
            assert (mine["job_family"], mine["current_level"]["grade"], mine["next_level"]["grade"]) == (
                "sales", "G5", "G6",
            )  # fmt: skip
            assert mine["profile"] == {"collab": 4, "delivery": 5}
            assert mine["competency_names"] == {"collab": "Collaboration", "delivery": "Delivery"}
            readiness = mine["readiness"]
            assert (readiness["status"], readiness["met"], readiness["total"], readiness["next_steps"]) == (
                "ready", 2, 2, [],
            )  # fmt: skip
            assert mine["nine_box"] == {
                "cycle_id": second, "employee_id": "alice", "name": "Alice", "box": 9, "performance": "high",
                "potential": "high", "label_en": "Star", "label_zh": "明星人才",
            }  # fmt: skip
            assert (await committee.get("/v1/people/bob/growth", headers=alice)).status_code == 404

            # -- bob: one competency short, a next step in both languages ------------------------------
            bob = ok(await committee.get("/v1/people/bob/growth", headers=sam))
            assert (bob["readiness"]["status"], bob["readiness"]["met"]) == ("developing", 1)
            (step,) = bob["readiness"]["next_steps"]
            assert (step["competency_id"], step["actual"], step["expected"], step["gap"]) == ("collab", 3, 4, 1)
            assert step["text_en"] == "Raise Collaboration from 3 to 4, as Senior specialist expects"
            assert step["text_zh"] == "将Collaboration从3提升到4（Senior specialist的要求）"
            assert (bob["nine_box"]["box"], bob["nine_box"]["potential"]) == (8, "medium")  # calibrated wins

            # -- the manager and HR see the team's --------------------------------------------------------
            for headers in (sam, h):
                team = ok(await committee.get("/v1/teams/sam/growth", headers=headers))
                assert [
                    (m["employee_id"], m["readiness"], m["next_grade"], m["nine_box"] and m["nine_box"]["box"])
                    for m in team["members"]
                ] == [  # fmt: skip
                    ("alice", "ready", "G6", 9),
                    ("bob", "developing", "G6", 8),
                    ("carol", "not_yet", "G6", None),  # low in 2026, no potential rated
                ]
            box = ok(await committee.get(f"/v1/cycles/{second}/nine-box", headers=h))
            assert [(p["employee_id"], p["box"], p["label_en"]) for p in box] == [
                ("alice", 9, "Star"),
                ("bob", 8, "High performer"),
            ]
            frameworks = ok(await committee.get("/v1/career-frameworks", headers=alice))
            assert [f["job_family"] for f in frameworks] == ["sales"]

            # -- the department over both cycles (its head and HR; an employee is refused) ------------------
            for headers in (sam, h):
                history = ok(await committee.get("/v1/departments/sales/history", headers=headers))
                assert [
                    (c["cycle_id"], c["people"], c["released"], c["mean_score"], c["ratings"], c["kpi_attainment_pct"])
                    for c in history["cycles"]
                ] == [
                    (first, 4, 3, 3.0667, {"meets": 3}, None),
                    (second, 4, 3, 3.4, {"exceeds": 2, "below": 1}, None),
                ]
            assert (await committee.get("/v1/departments/sales/history", headers=alice)).status_code == 403
            other_head = person(stack.settings, "ivan", "dept_head", "manager")
            assert (await committee.get("/v1/departments/sales/history", headers=other_head)).status_code == 404
