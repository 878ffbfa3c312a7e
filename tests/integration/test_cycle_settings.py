"""The template drives the cycle: every setting a template can hold takes effect in the services, a
template that would make an impossible cycle is refused at creation naming the field, and HR's edits
during a stage survive the workflow's handoffs.

The stage services run in process over their real databases (SQLite per service, or one PostgreSQL
database); the handoffs are the workflow's own activities (``workflows.handoffs``), run one by one in
the order ``ReviewCycleWorkflow`` calls them, with the worker's service token. Tracking is a stand-in
that serves the progress export the test sets (its ingestion is not what these tests are about).
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import ActivityEnvironment

from contracts.evaluation import evaluation_config
from contracts.handoffs import CycleRef, Handoff
from services.common.client import SERVICES, ServiceClient, ServiceTokens
from services.common.settings import Settings
from services.cycles.app import create_app as cycles_app
from services.cycles.service import sample_template
from services.evaluation.app import create_app as evaluation_app
from services.feedback.app import create_app as feedback_app
from services.goals.app import create_app as goals_app
from services.results.app import create_app as results_app
from tests.support import auth
from workflows.handoffs import HandoffActivities

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

DEPARTMENTS = [
    ("exec", "Executive", "", "E1"),
    ("sales", "Sales", "exec", "S0"),
    ("ops", "Operations", "exec", "O0"),
    ("fin", "Finance", "exec", "F0"),
]
PEOPLE = [
    ("E1", "exec", ""),
    ("S0", "sales", "E1"),
    ("S1", "sales", "S0"),
    ("S2", "sales", "S0"),
    ("S3", "sales", "S0"),
    ("S4", "sales", "S0"),
    ("O0", "ops", "E1"),
    ("O1", "ops", "O0"),
    ("O2", "ops", "O0"),
    ("F0", "fin", "E1"),
    ("F1", "fin", "F0"),
]
DEPT_OF = {e: d for e, d, _ in PEOPLE}
MANAGER_OF = {e: m or None for e, _, m in PEOPLE}
HEADS = {d: h for d, _, _, h in DEPARTMENTS}
CYCLE_DEPARTMENTS = ["sales", "ops", "fin"]
BANDS = ["needs improvement", "partially meets", "meets", "exceeds", "outstanding"]


def full_template(name: str, **changes: Any) -> dict[str, Any]:
    """The sample template with every setting a template can hold set to something other than its default."""
    body = sample_template().model_dump(mode="json")
    body.update(
        name=name,
        # cross_department is left out: it weighs 0
        scoring={
            **body["scoring"],
            "weights": {"kpi": 40, "manager": 30, "peer": 10, "self": 10, "collaboration": 10},
            "formula": "w_kpi * kpi + w_manager * manager + w_peer * peer + w_self * self"
            " + w_collaboration * collaboration",
        },
        calibration={"limits": [{"band": "outstanding", "max_percent": 10}], "min_group_size": 6},
        peer_anonymity_threshold=2,
        evaluation={
            "competencies": [
                {"competency_id": "results", "name": "Delivers results", "weight": 75},
                {"competency_id": "teamwork", "name": "Works with others", "weight": 25},
            ],
            "rater_limits": {"peer": {"min": 2, "max": 3}},
            "lookup_tables": [
                {
                    "template_key": "sales-orders",
                    "rows": [
                        {"max_actual": 50, "rating": 1},
                        {"min_actual": 50, "max_actual": 100, "rating": 3},
                        {"min_actual": 100, "rating": 5},
                    ],
                },
                {"metric": "ops.tickets", "rows": [{"max_actual": 10, "rating": 2}, {"min_actual": 10, "rating": 4}]},
            ],
            "attainment_cap": 1.5,
            "deviation_z_threshold": 0.5,
            "peer_visibility": "aggregate",
            "collaboration": {"min_rater_departments": 2},
        },
        feedback={"appeal_window_days": 5, "hr_resolution_days": 3},
        results={
            "curve": {"type": "rating_multiplier", "multipliers": {b: float(i) for i, b in enumerate(BANDS)}},
            "caps": {"max_pct_of_pool": 30},
            "promotion": {"ratings": ["outstanding"]},
            "development": {"ratings": ["needs improvement", "partially meets"], "default_due_days": 30},
            "awards": {"collaboration_weight": 0.5, "shared_goals_weight": 0.5, "min_rater_departments": 1},
            "publication": "wait_for_appeals",
            "pool_approval": "finance",
        },
    )
    body.update(changes)
    return body


def _csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def org_files() -> dict[str, Any]:
    departments = [{"department_id": d, "name": n, "parent_id": p, "head_employee_id": h} for d, n, p, h in DEPARTMENTS]
    employees = [
        {
            "employee_id": e,
            "name": f"Person {e}",
            "email": f"{e.lower()}@example.test",
            "department_id": d,
            "manager_id": m,
            "job_title": "Staff",
            "grade": "G5",
            "salary_band": "B3",
        }
        for e, d, m in PEOPLE
    ]
    return {
        "departments": ("departments.csv", _csv(departments), "text/csv"),
        "employees": ("employees.csv", _csv(employees), "text/csv"),
    }


# -- the stack ------------------------------------------------------------------------------------
class Router(httpx.AsyncBaseTransport):
    """Routes ``http://<service>.test`` to that service's in-process app."""

    def __init__(self, apps: dict[str, FastAPI]) -> None:
        self.apps = apps

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps[request.url.host.removesuffix(".test")]
        return await httpx.ASGITransport(app=app).handle_async_request(request)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def tracking_stand_in(progress: dict[str, dict[str, float]]) -> FastAPI:
    """Tracking's side of the handoffs: it accepts the snapshot and the catalog and serves the progress
    export of ``progress[cycle_id]`` (KPI id -> actual)."""
    app = FastAPI()

    @app.put("/v1/cycles/{cycle_id}/participants")
    async def participants(cycle_id: str) -> dict[str, Any]:
        return {"cycle_id": cycle_id}

    @app.get("/v1/cycles/{cycle_id}/progress-export")
    async def export(cycle_id: str) -> dict[str, Any]:
        actuals = [
            {"kpi_id": k, "actual_value": v, "event_count": 1, "last_event_at": T0.isoformat(), "stale": False}
            for k, v in progress.get(cycle_id, {}).items()
        ]
        return {"cycle_id": cycle_id, "as_of": T0.isoformat(), "actuals": actuals}

    return app


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient
    handoffs: HandoffActivities
    clocks: dict[str, Clock]
    progress: dict[str, dict[str, float]] = field(default_factory=dict)
    env: ActivityEnvironment = field(default_factory=ActivityEnvironment)

    def hr(self, sub: str = "hr-1") -> dict[str, str]:
        return auth(self.settings, "hr_admin", sub=sub)

    def person(self, employee_id: str, *roles: str) -> dict[str, str]:
        roles = roles or ("employee",)
        return auth(
            self.settings,
            *roles,
            sub=f"user-{employee_id}",
            employee_id=employee_id,
            department_id=DEPT_OF[employee_id],
        )

    def head(self, department_id: str) -> dict[str, str]:
        return self.person(HEADS[department_id], "dept_head", "manager", "employee")

    async def call(
        self, service: str, method: str, path: str, *, headers: dict[str, str] | None = None, ok: int = 200, **kw: Any
    ) -> Any:
        response = await self.http.request(method, f"http://{service}.test{path}", headers=headers or self.hr(), **kw)
        assert response.status_code == ok, f"{method} {service}{path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def handoff(self, name: str, cycle_id: str, **ref: Any) -> Any:
        """Run one handoff activity as the workflow does."""
        result: Handoff = await self.env.run(
            getattr(self.handoffs, name), CycleRef(cycle_id=cycle_id, department_ids=CYCLE_DEPARTMENTS, **ref)
        )
        return result


@asynccontextmanager
async def cycle_stack(
    settings: Settings, database_url: str, *, results_settings: Callable[[Settings], Settings] = lambda s: s
) -> AsyncIterator[Stack]:
    """Cycles, goals, evaluation, feedback and results in process (tracking stood in), wired by host."""
    url = database_url.replace("/test.db", "/{service}.db") if database_url.startswith("sqlite") else database_url
    urls = {name: f"http://{name}.test" for name in SERVICES}
    base = settings.model_copy(update={"database_url": url, **{f"{n}_url": u for n, u in urls.items()}})
    progress: dict[str, dict[str, float]] = {}
    apps: dict[str, FastAPI] = {"tracking": tracking_stand_in(progress)}
    http = httpx.AsyncClient(transport=Router(apps), timeout=30)
    apps |= {
        "cycles": cycles_app(base, http_client=http),
        "goals": goals_app(base),
        "evaluation": evaluation_app(base),
        "feedback": feedback_app(base),
        "results": results_app(results_settings(base)),
    }
    clocks = {name: Clock(T0) for name in ("feedback", "results")}
    async with AsyncExitStack() as stack:
        stack.push_async_callback(http.aclose)
        for name, app in apps.items():
            if name != "tracking":
                await stack.enter_async_context(app.router.lifespan_context(app))
        for name, clock in clocks.items():
            apps[name].state.clock = clock
        await apps["feedback"].state.http.aclose()
        apps["feedback"].state.http = http  # adjusted appeals reach evaluation and results in process
        tokens = ServiceTokens(base, sub="system:worker", roles=("hr_admin", "ops"))
        client = ServiceClient(http=http, urls=urls, tokens=tokens)
        handoffs = HandoffActivities(client=client, scoring_config=evaluation_config)
        yield Stack(settings=base, http=http, handoffs=handoffs, clocks=clocks, progress=progress)


# -- what people do ---------------------------------------------------------------------------------
async def new_cycle(stack: Stack, template: dict[str, Any]) -> str:
    """Import the org, create the template and a cycle of it, start it, and open goal setting."""
    await stack.call("cycles", "POST", "/v1/org/import", files=org_files())
    template_id = (await stack.call("cycles", "POST", "/v1/templates", json=template, ok=201))["template_id"]
    body = {
        "name": f"cycle of {template['name']}",
        "template_id": template_id,
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "department_ids": CYCLE_DEPARTMENTS,
    }
    cycle_id: str = (await stack.call("cycles", "POST", "/v1/cycles", json=body, ok=201))["cycle_id"]
    await stack.call("cycles", "POST", f"/v1/cycles/{cycle_id}/start")
    opened = await stack.handoff("open_goal_setting", cycle_id)
    assert "evaluation v1 (template)" in opened.detail, opened.detail
    return cycle_id


async def approve(stack: Stack, cycle_id: str, goal_id: str) -> None:
    """Submit as one HR person and approve every step of the chain as others (nobody approves twice)."""
    base = f"/v1/cycles/{cycle_id}/goals/{goal_id}"
    await stack.call("goals", "POST", f"{base}/submit", headers=stack.hr("hr-submitter"))
    for step in range(1, 6):
        goal = await stack.call("goals", "POST", f"{base}/approve", headers=stack.hr(f"hr-approver-{step}"))
        if goal["status"] == "approved":
            return
    raise AssertionError(f"goal {goal_id} was not approved after 5 steps")


async def set_goals(stack: Stack, cycle_id: str) -> dict[str, str]:
    """A company KPI, a KPI per department and individual goals bulk-assigned from KPI templates;
    every one approved. Returns employee -> their individual goal id."""
    base = f"/v1/cycles/{cycle_id}"
    objective = await stack.call(
        "goals", "POST", f"{base}/objectives", json={"name": "Grow", "perspective": "financial"}, ok=201
    )
    okr = {"kind": "okr_key_result", "unit": "%", "direction": "higher_is_better", "start_value": 0}
    company = {"level": "company", "name": "Company", "objective_id": objective["objective_id"], "weight": 100}
    company_id = (
        await stack.call("goals", "POST", f"{base}/goals", json={**okr, **company, "target_value": 100}, ok=201)
    )["goal_id"]
    await approve(stack, cycle_id, company_id)
    goals: dict[str, str] = {}
    for department, key, metric, target in [
        ("sales", "sales-orders", "sales.orders", 100),
        ("ops", "ops-tickets", "ops.tickets", 20),
        ("fin", "fin-savings", "fin.savings", 100),
    ]:
        kpi = {"level": "department", "name": f"{department} KPI", "department_id": department, "parent_id": company_id}
        kpi_id = (
            await stack.call(
                "goals", "POST", f"{base}/goals", json={**okr, **kpi, "weight": 100, "target_value": 100}, ok=201
            )
        )["goal_id"]
        await approve(stack, cycle_id, kpi_id)
        template = {
            "name": f"My {metric}",
            "kind": "kpi",
            "unit": "count",
            "direction": "higher_is_better",
            "aggregation": "sum",
            "start_value": 0,
            "target_value": target,
            "metric": metric,
            "data_owner_department_id": department,
            "weight": 100,
            "parent_id": kpi_id,
        }
        assigned = await stack.call(
            "goals",
            "POST",
            f"{base}/goals/bulk-assign",
            json={"template_key": key, "template": template, "department_id": department},
        )
        for goal_id in assigned["created_goal_ids"]:
            await approve(stack, cycle_id, goal_id)
    page = await stack.call("goals", "GET", f"{base}/goals", params={"level": "individual", "limit": 100})
    goals = {g["employee_id"]: g["goal_id"] for g in page["items"]}
    assert all(g["status"] == "approved" for g in page["items"])
    return goals


async def assignment(stack: Stack, cycle_id: str, *, rater: str, reviewee: str, relation: str) -> str:
    rows = await stack.call(
        "evaluation",
        "GET",
        f"/v1/cycles/{cycle_id}/assignments",
        params={"rater_id": rater, "reviewee_id": reviewee, "relation": relation},
    )
    assert len(rows) == 1, rows
    return str(rows[0]["assignment_id"])


async def review(
    stack: Stack,
    cycle_id: str,
    *,
    rater: str,
    reviewee: str,
    relation: str,
    results: float,
    teamwork: float,
    comment: str = "",
) -> None:
    assignment_id = await assignment(stack, cycle_id, rater=rater, reviewee=reviewee, relation=relation)
    body = {"ratings": {"results": results, "teamwork": teamwork}, "comment": comment or None}
    roles = ("manager", "employee") if relation == "manager" else ("employee",)
    await stack.call(
        "evaluation",
        "POST",
        f"/v1/cycles/{cycle_id}/assignments/{assignment_id}/review",
        json=body,
        headers=stack.person(rater, *roles),
    )


async def everyone_reviewed(stack: Stack, cycle_id: str, scores: dict[str, tuple[float, float]]) -> None:
    """Self and manager reviews for every participant (``scores``: employee -> (results, teamwork))."""
    for employee, (results, teamwork) in scores.items():
        await review(
            stack, cycle_id, rater=employee, reviewee=employee, relation="self", results=results, teamwork=teamwork
        )
        manager = MANAGER_OF[employee]
        if manager and DEPT_OF.get(manager) in CYCLE_DEPARTMENTS:
            await review(
                stack,
                cycle_id,
                rater=manager,
                reviewee=employee,
                relation="manager",
                results=results,
                teamwork=teamwork,
            )


def component(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in result["components"] if c["name"] == name)


# -- refused at creation ----------------------------------------------------------------------------
BAD_TEMPLATES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "development labels not in the scale",
        lambda t: t["results"]["development"].update(ratings=["below"]),
        "results.development.ratings: ['below'] are not rating bands",
    ),
    (
        "promotion labels not in the scale",
        lambda t: t["results"]["promotion"].update(ratings=["superstar"]),
        "results.promotion.ratings: ['superstar'] are not rating bands",
    ),
    (
        "a rating curve without a band",
        lambda t: t["results"]["curve"]["multipliers"].pop("meets"),
        "results.curve.multipliers: no multiplier for band(s) ['meets']",
    ),
    (
        "weights not summing to 100",
        lambda t: t["scoring"]["weights"].update(kpi=50),
        "scoring.weights must sum to 100, got 110",
    ),
    (
        "competency weights not summing to 100",
        lambda t: t["evaluation"]["competencies"][0].update(weight=70),
        "evaluation.competencies: weights must sum to 100, got 95",
    ),
    (
        "a lookup table with a gap",
        lambda t: t["evaluation"]["lookup_tables"][0]["rows"][1].update(min_actual=60),
        "lookup table for template_key 'sales-orders': gap between 50 and 60",
    ),
    (
        "a lookup table with an overlap",
        lambda t: t["evaluation"]["lookup_tables"][0]["rows"][1].update(min_actual=40),
        "lookup table for template_key 'sales-orders': rows overlap between 40 and 50",
    ),
    (
        "a lookup table not covering high actuals",
        lambda t: t["evaluation"]["lookup_tables"][1]["rows"][1].update(max_actual=30),
        "the highest row must be open above",
    ),
    (
        "a lookup rating off the scale",
        lambda t: t["evaluation"]["lookup_tables"][1]["rows"][1].update(rating=7),
        "evaluation.lookup_tables[1] (metric 'ops.tickets'): rating(s) [7.0] outside the rating scale 1..5",
    ),
    (
        "a peer maximum below the anonymity threshold",
        lambda t: t["evaluation"]["rater_limits"]["peer"].update(min=0, max=1),
        "evaluation.rater_limits.peer.max (1) is below peer_anonymity_threshold (2)",
    ),
    (
        "limits on generated reviews",
        lambda t: t["evaluation"]["rater_limits"].update(manager={"min": 1, "max": 2}),
        "evaluation.rater_limits.manager: manager reviews are generated, one each",
    ),
    (
        "award weights not summing to 1",
        lambda t: t["results"]["awards"].update(collaboration_weight=0.9),
        "awards.collaboration_weight (0.9) and shared_goals_weight (0.5) must sum to 1",
    ),
    (
        "an appeal window of 0 days",
        lambda t: t["feedback"].update(appeal_window_days=0),
        "feedback.appeal_window_days",
    ),
    (
        "a calibration limit for an unknown band",
        lambda t: t["calibration"]["limits"].append({"band": "heroic", "max_percent": 5}),
        "calibration.limits name unknown band(s) ['heroic']",
    ),
]


@pytest.mark.parametrize("case", BAD_TEMPLATES, ids=[c[0] for c in BAD_TEMPLATES])
async def test_an_impossible_template_is_refused_at_creation_naming_the_field(
    settings: Settings, database_url: str, case: tuple[str, Callable[[dict[str, Any]], None], str]
) -> None:
    _, spoil, message = case
    template = full_template("spoilt")
    spoil(template)
    async with cycle_stack(settings, database_url) as stack:
        response = await stack.http.post("http://cycles.test/v1/templates", json=template, headers=stack.hr())
    assert response.status_code == 422, response.text
    assert message in response.text, response.json()["detail"]


async def test_a_template_leaving_out_components_is_accepted_and_they_weigh_nothing(
    settings: Settings, database_url: str
) -> None:
    template = full_template("three components")
    template["scoring"] = {**template["scoring"], "weights": {"kpi": 50, "manager": 30, "self": 20}}
    template["scoring"].pop("formula")
    async with cycle_stack(settings, database_url) as stack:
        created = await stack.call("cycles", "POST", "/v1/templates", json=template, ok=201)
    assert created["spec"]["scoring"]["weights"] == {"kpi": 50.0, "manager": 30.0, "self": 20.0}


# -- every setting takes effect ---------------------------------------------------------------------
async def test_every_template_setting_takes_effect_in_the_services(settings: Settings, database_url: str) -> None:
    async with cycle_stack(settings, database_url) as stack:
        cycle_id = await new_cycle(stack, full_template("every setting"))
        base = f"/v1/cycles/{cycle_id}"

        # What the cycle opened with, from the template: evaluation, feedback and results settings.
        config = await stack.call("evaluation", "GET", f"{base}/config")
        assert [(c["competency_id"], c["weight"]) for c in config["competencies"]] == [
            ("results", 75),
            ("teamwork", 25),
        ]
        assert config["weights"] == {"kpi": 40, "manager": 30, "peer": 10, "self": 10, "collaboration": 10}
        assert (config["attainment_cap"], config["deviation_z_threshold"]) == (1.5, 0.5)
        assert config["peer_anonymity_threshold"] == 2 and config["peer_visibility"] == "aggregate"
        assert config["calibration"]["min_group_size"] == 6
        assert config["rater_limits"]["peer"] == {"min": 2, "max": 3}
        assert [t.get("template_key") or t.get("metric") for t in config["lookup_tables"]] == [
            "sales-orders",
            "ops.tickets",
        ]
        versions = await stack.call("evaluation", "GET", f"{base}/config/versions")
        assert [(v["version"], v["source"], v["changed_by"]) for v in versions] == [(1, "template", "system:worker")]
        feedback = await stack.call("feedback", "GET", f"{base}/config")
        assert (feedback["appeal_window_days"], feedback["hr_resolution_days"]) == (5, 3)
        assert (feedback["settings_version"], feedback["settings_source"]) == (1, "template")
        policy = await stack.call("results", "GET", f"{base}/policy")
        assert policy["promotion"]["ratings"] == ["outstanding"]
        assert policy["development"]["ratings"] == ["needs improvement", "partially meets"]
        assert policy["awards"]["collaboration_weight"] == 0.5 and policy["publication"] == "wait_for_appeals"
        assert (await stack.call("results", "GET", f"{base}/policy/version"))["source"] == "template"

        # Goal setting: individual goals bulk-assigned from KPI templates (random goal ids).
        goals = await set_goals(stack, cycle_id)
        await stack.handoff("freeze_goals", cycle_id)
        stack.progress[cycle_id] = {
            goals["S1"]: 120,  # sales-orders table: >= 100 -> 5
            goals["S2"]: 70,  # 50..100 -> 3
            goals["S3"]: 20,  # < 50 -> 1
            goals["S4"]: 20,
            goals["O1"]: 12,  # ops.tickets (by metric): >= 10 -> 4
            goals["F1"]: 300,  # no table: linear 300% of target, capped at 150%
        }
        inputs = await stack.handoff("hand_progress_to_evaluation", cycle_id)
        assert inputs.config_source == "template" and inputs.goals > 0

        # Lookup tables by KPI template key and by metric; the attainment cap.
        s1 = await stack.call("evaluation", "GET", f"{base}/goal-scores/S1")
        assert (s1["goals"][0]["method"], s1["goals"][0]["attainment"]) == ("lookup", 1.5)  # rating 5 -> the cap
        s2 = await stack.call("evaluation", "GET", f"{base}/goal-scores/S2")
        assert s2["goals"][0]["note"] == "lookup table: actual 70 -> rating 3"
        o1 = await stack.call("evaluation", "GET", f"{base}/goal-scores/O1")
        assert o1["goals"][0]["note"] == "lookup table: actual 12 -> rating 4"
        f1 = await stack.call("evaluation", "GET", f"{base}/goal-scores/F1")
        assert (f1["goals"][0]["method"], f1["goals"][0]["attainment"]) == ("linear", 1.5)

        # Evaluation: rater limits (min owed as nominations, max refused), anonymity threshold, peer visibility.
        await stack.handoff("open_evaluation", cycle_id)
        for peer in ["S2", "S3", "S4"]:
            await stack.call(
                "evaluation", "POST", f"{base}/assignments", json={"reviewee_id": "S1", "rater_id": peer}, ok=201
            )
        fourth = await stack.http.post(
            f"http://evaluation.test{base}/assignments",
            json={"reviewee_id": "S1", "rater_id": "S0"},
            headers=stack.hr(),
        )
        assert fourth.status_code == 409 and "the maximum is 3" in fourth.json()["detail"]
        pending = await stack.call("evaluation", "GET", f"{base}/pending", params={"department_id": "sales"})
        owed = sorted(i["item_id"] for i in pending["pending"] if i["kind"] == "peer_nomination")
        assert owed == ["S0:peer", "S2:peer", "S3:peer", "S4:peer"]  # fewer than the 2 peers the template asks for
        await review(
            stack, cycle_id, rater="S2", reviewee="S1", relation="peer", results=4, teamwork=4, comment="solid"
        )
        hidden = await stack.call("evaluation", "GET", f"{base}/reviews/S1/summary", headers=stack.person("S1"))
        peer = next(r for r in hidden["relations"] if r["relation"] == "peer")
        assert (peer["visible"], peer["score"]) == (False, None)  # 1 of the threshold's 2
        await review(
            stack, cycle_id, rater="S3", reviewee="S1", relation="peer", results=5, teamwork=5, comment="great"
        )
        own = await stack.call("evaluation", "GET", f"{base}/reviews/S1/summary", headers=stack.person("S1"))
        peer = next(r for r in own["relations"] if r["relation"] == "peer")
        assert (peer["visible"], peer["score"], peer["comments"]) == (True, 4.5, [])  # 'aggregate': no comments
        managers = await stack.call("evaluation", "GET", f"{base}/reviews/S1/summary", headers=stack.head("sales"))
        assert next(r for r in managers["relations"] if r["relation"] == "peer")["comments"] == ["great", "solid"]

        # Competency weights: results 5, teamwork 1 -> (75*5 + 25*1) / 100 = 4.0 (equal shares would give 3.0).
        scores = {e: (3.0, 3.0) for e, d, _ in PEOPLE if d in CYCLE_DEPARTMENTS}
        scores["S1"] = (5.0, 1.0)
        await everyone_reviewed(stack, cycle_id, scores)

        # The collaboration component counts once two departments rated a department.
        for a, b in [("sales", "ops"), ("sales", "fin"), ("ops", "fin")]:
            await stack.call(
                "evaluation", "POST", f"{base}/collaborations", json={"department_a": a, "department_b": b}, ok=201
            )
        for rater, rated in [("ops", "sales"), ("fin", "sales"), ("sales", "ops")]:
            rating = {"responsiveness": 5, "data_quality": 5, "reliability": 5}
            body = {"rater_department_id": rater, "rated_department_id": rated, **rating}
            await stack.call("evaluation", "PUT", f"{base}/collaboration-ratings", json=body, headers=stack.head(rater))
        await stack.call("evaluation", "POST", f"{base}/scores/compute")
        s1 = await stack.call("evaluation", "GET", f"{base}/results/S1")
        assert component(s1, "self")["value"] == 4.0
        assert component(s1, "kpi")["value"] == 5.0 and component(s1, "peer")["value"] == 4.5
        assert (component(s1, "collaboration")["status"], component(s1, "collaboration")["value"]) == ("present", 5.0)
        assert component(s1, "cross_department")["configured_weight"] == 0  # left out of the template
        o1 = await stack.call("evaluation", "GET", f"{base}/results/O1")
        assert component(o1, "collaboration")["status"] == "below_min_rater_departments"
        assert any("fewer than 2" in n for n in o1["notes"])
        deviation = await stack.call("evaluation", "GET", f"{base}/calibration/deviation")
        assert deviation["z_threshold"] == 0.5

        # Calibration: the guideline holds the company (10 people >= 6), not a 2-person department.
        for employee, rating in [("S1", "outstanding"), ("F1", "outstanding"), ("S4", "partially meets")]:
            body = {"employee_id": employee, "new_rating": rating, "reason": "calibration panel"}
            await stack.call("evaluation", "POST", f"{base}/calibration/adjustments", json=body, ok=201)
        company = await stack.call("evaluation", "GET", f"{base}/calibration/distribution")
        assert company["limits_applied"] and company["violations"] == [
            "outstanding: 20% of 10 exceeds the guideline maximum 10%"
        ]
        fin = await stack.call("evaluation", "GET", f"{base}/calibration/distribution", params={"department_id": "fin"})
        assert (fin["limits_applied"], fin["violations"]) == (False, [])
        assert "smaller than the guideline's min_group_size 6" in fin["notes"][0]
        await stack.call("evaluation", "POST", f"{base}/calibration/close")
        for name in ("close_evaluation", "hand_results_to_feedback", "hand_results_to_results", "release_results"):
            assert (await stack.handoff(name, cycle_id)).ready, name
        # Evaluation over: the cross-department report went to each department head, unasked.
        notices = await stack.call("cycles", "GET", "/v1/notifications", params={"cycle_id": cycle_id})
        reports = [n for n in notices if n["kind"] == "collaboration_report"]
        assert sorted((n["department_id"], n["recipients"][0]["id"]) for n in reports) == sorted(
            (d, HEADS[d]) for d in CYCLE_DEPARTMENTS
        )
        assert all(f"/cycles/{cycle_id}/collaboration" in n["message"] for n in reports)

        # Feedback: the template's appeal window (5 days) and HR resolution time (3 days).
        stack.clocks["feedback"].now = T0 + timedelta(days=2)
        appeal = await stack.call(
            "feedback",
            "POST",
            f"{base}/appeals",
            json={"reason": "My orders were undercounted."},
            headers=stack.person("S2"),
            ok=201,
        )
        assert appeal["hr_due_at"].startswith((T0 + timedelta(days=5)).isoformat()[:19])
        stack.clocks["feedback"].now = T0 + timedelta(days=5, seconds=1)
        late = await stack.http.post(
            f"http://feedback.test{base}/appeals",
            json={"reason": "Too late to appeal now."},
            headers=stack.person("S3"),
        )
        assert late.status_code == 409 and "5 days after the result was released" in late.json()["detail"]
        await stack.call(
            "feedback", "POST", f"/v1/appeals/{appeal['id']}/resolve", json={"outcome": "rejected", "note": "counted"}
        )

        # Result application: promotion and development rules by the template's labels, the curve and caps.
        await stack.handoff("open_result_application", cycle_id)
        nominated = await stack.call("results", "POST", f"{base}/promotions/nominate")
        assert sorted(n["employee_id"] for n in nominated) == ["F1", "S1"]
        plans = await stack.call("results", "POST", f"{base}/development-plans/generate")
        assert plans["created"] == 2
        listed = await stack.call("results", "GET", f"{base}/development-plans")
        # S3 scored (1*0.4 + 3*0.3 + 3*0.1 + 5*0.1) / 0.9 = 2.33; S4 was calibrated down
        assert sorted((p["employee_id"], p["rating"]) for p in listed) == [
            ("S3", "partially meets"),
            ("S4", "partially meets"),
        ]
        s4_plan = next(p for p in listed if p["employee_id"] == "S4")
        item = await stack.call(
            "results",
            "POST",
            f"/v1/development-plans/{s4_plan['id']}/items",
            json={"description": "Pair with S1", "owner_id": "S4"},
            ok=201,
        )
        assert item["due_date"] == (T0 + timedelta(days=30)).date().isoformat()
        # HR sets the pool; the template's 'pool_approval': 'finance' holds allocation until finance signs it off
        finance = auth(stack.settings, "finance", sub="fin-fay")
        pool = f"{base}/pools/sales"
        await stack.call("results", "PUT", pool, json={"amount_cents": 90_000, "currency": "EUR"})
        refused = await stack.call("results", "POST", f"{pool}/allocations", json={}, ok=409)
        assert refused["field"] == "pool_approval" and "finance" in refused["detail"]
        assert (await stack.call("results", "POST", f"{pool}/approval", headers=finance))["approved_by"] == "fin-fay"
        pending = await stack.call("results", "GET", f"{base}/pending", params={"department_id": "sales"})
        assert [i["kind"] for i in pending["pending"] if i["kind"].startswith("bonus")] == ["bonus_allocation"]
        # a changed amount needs a new approval; setting the same amount again keeps it
        changed = await stack.call(
            "results", "PUT", pool, json={"amount_cents": 100_000, "currency": "EUR"}, headers=finance
        )
        assert changed["approved_at"] is None
        pending = await stack.call("results", "GET", f"{base}/pending", params={"department_id": "sales"})
        assert "bonus_pool_approval" in [i["kind"] for i in pending["pending"]]
        await stack.call("results", "POST", f"{pool}/approval", headers=finance)
        again = await stack.call("results", "PUT", pool, json={"amount_cents": 100_000, "currency": "EUR"})
        assert again["approved_by"] == "fin-fay"
        allocation = await stack.call("results", "POST", f"{base}/pools/sales/allocations", json={}, ok=201)
        amounts = {line["employee_id"]: line["amount_cents"] for line in allocation["lines"]}
        assert allocation["curve"]["type"] == "rating_multiplier"
        # outstanding weighs 4 of the department's 11 (36%): capped at 30% of the pool
        assert amounts["S1"] == 30_000 and next(x for x in allocation["lines"] if x["employee_id"] == "S1")["capped"]
        # Publication waits for the appeal window by the template's policy ('wait_for_appeals').
        stack.clocks["feedback"].now = T0 + timedelta(days=1)
        blocked = await stack.handoff("publish_results", cycle_id)
        assert not blocked.ready and blocked.blocked.service == "feedback"
        assert "the appeal window is open until 2026-06-06T09:00:00+00:00" in blocked.blocked.reason
        stack.clocks["feedback"].now = T0 + timedelta(days=6)
        assert (await stack.handoff("publish_results", cycle_id)).ready


# -- HR's changes survive the handoffs --------------------------------------------------------------
async def test_hr_changes_during_a_stage_survive_its_end_handoff(settings: Settings, database_url: str) -> None:
    async with cycle_stack(settings, database_url) as stack:
        template = full_template("hr edits")
        cycle_id = await new_cycle(stack, template)
        base = f"/v1/cycles/{cycle_id}"
        await stack.handoff("freeze_goals", cycle_id)

        # During tracking HR changes the evaluation settings: equal competency weights, a wider peer maximum.
        config = await stack.call("evaluation", "GET", f"{base}/config")
        edited = copy.deepcopy(config)
        edited["competencies"][0]["weight"] = edited["competencies"][1]["weight"] = 50
        edited["rater_limits"]["peer"] = {"min": 0, "max": 6}
        edited = await stack.call("evaluation", "PUT", f"{base}/config", json=edited, headers=stack.hr("hr-hana"))
        # ...and the feedback and results settings.
        await stack.call(
            "feedback", "PUT", f"{base}/config", json={"appeal_window_days": 21}, headers=stack.hr("hr-hana")
        )
        policy = await stack.call("results", "GET", f"{base}/policy")
        policy["publication"] = "publish_and_correct"
        await stack.call("results", "PUT", f"{base}/policy", json=policy, headers=stack.hr("hr-hana"))

        # The end of tracking hands the inputs to evaluation and keeps HR's configuration.
        inputs = await stack.handoff("hand_progress_to_evaluation", cycle_id)
        assert inputs.config_source == "hr" and "(HR's, kept)" in inputs.detail
        assert await stack.call("evaluation", "GET", f"{base}/config") == edited
        versions = await stack.call("evaluation", "GET", f"{base}/config/versions")
        assert [(v["version"], v["source"], v["changed_by"]) for v in versions] == [
            (2, "hr", "hr-hana"),
            (1, "template", "system:worker"),
        ]
        assert versions[1]["config"]["competencies"][0]["weight"] == 75  # what the template pushed

        # The evaluation stage scores with HR's settings: results 5, teamwork 1 -> 3.0 with equal weights.
        await stack.handoff("open_evaluation", cycle_id)
        scores = {e: (5.0, 1.0) for e, d, _ in PEOPLE if d in CYCLE_DEPARTMENTS}
        await everyone_reviewed(stack, cycle_id, scores)
        await stack.call("evaluation", "POST", f"{base}/scores/compute")
        assert component(await stack.call("evaluation", "GET", f"{base}/results/S1"), "self")["value"] == 3.0
        await stack.call("evaluation", "POST", f"{base}/calibration/close")

        # Handing the results on pushes the template's feedback and results settings, which HR changed: kept.
        for name in ("close_evaluation", "hand_results_to_feedback", "hand_results_to_results"):
            assert (await stack.handoff(name, cycle_id)).ready, name
        feedback = await stack.call("feedback", "GET", f"{base}/config")
        assert (feedback["appeal_window_days"], feedback["hr_resolution_days"]) == (21, 3)
        assert (feedback["settings_version"], feedback["settings_source"], feedback["settings_changed_by"]) == (
            2,
            "hr",
            "hr-hana",
        )
        assert (await stack.call("results", "GET", f"{base}/policy"))["publication"] == "publish_and_correct"
        version = await stack.call("results", "GET", f"{base}/policy/version")
        assert (version["version"], version["source"], version["changed_by"]) == (2, "hr", "hr-hana")

        # An HR edit must pass the same rules as the template (the bands came with the template's policy).
        bad = copy.deepcopy(policy)
        bad["development"]["ratings"] = ["below"]
        refused = await stack.http.put(f"http://results.test{base}/policy", json=bad, headers=stack.hr())
        assert refused.status_code == 422 and refused.json()["field"] == "development.ratings"
        assert "['below'] are not rating bands" in refused.json()["detail"]
        bad_config = {**edited, "lookup_tables": [{"metric": "x", "rows": [{"max_actual": 1, "rating": 3}]}]}
        refused = await stack.http.put(f"http://evaluation.test{base}/config", json=bad_config, headers=stack.hr())
        assert refused.status_code == 422 and "the highest row must be open above" in refused.json()["detail"]
