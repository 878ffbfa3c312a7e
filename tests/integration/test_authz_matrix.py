"""The authorization matrix of every service, over HTTP on SQLite (see ``authz_matrix.py``).

* Coverage: the OpenAPI operations of the six services and the table are the same set.
* Roles: each operation is called without credentials and as each role (a token with that
  role only, carrying the persona's scoping claims); path parameters are real ids from a
  small cycle seeded through the service's own API. Expected: 401 (or the console's
  redirect to sign-in), 403 for roles not allowed, anything but 401/403 for allowed roles.
* Objects: the main per-person resources are read as their owner (200) and as non-owners:
  a colleague, someone from another department and a manager of another team (403/404).
* Objects, every write: ``OBJECTS`` gives each write operation of every service (and the reads of
  one person's object) either its exact status per role on the persona's own object, a
  same-department colleague's and another department's, or the reason it has no such object; a
  write operation of an OpenAPI document missing from it fails the coverage test, and the grid is
  called against a world with one object of each kind per person.
* Anonymity: every body the reviewee (employee persona) receives from evaluation and
  feedback, with the same query variants as the evaluation leak test, names no rater.
  Feedback is seeded with evaluation's real final results, as the workflow does.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.common.settings import Settings
from services.cycles.app import create_app as cycles_app
from services.cycles.service import sample_template
from services.evaluation.app import create_app as evaluation_app
from services.feedback.app import create_app as feedback_app
from services.goals.app import create_app as goals_app
from services.results.app import create_app as results_app
from services.tracking.app import create_app as tracking_app
from tests.integration.authz_matrix import (
    MATRIX,
    OBJECTS,
    PUBLIC,
    ROLES,
    SERVICES,
    SIGN_IN,
    VARIANTS,
    NoObject,
    Objects,
    Rule,
)
from tests.integration.test_cycles_org_import import import_sample
from tests.integration.test_evaluation_anonymity import GET_QUERIES, RATERS, assert_no_rater
from tests.integration.test_evaluation_api import CYCLE, DEPT_OF, collect_reviews, setup_cycle, snapshot
from tests.integration.test_ops_overview import offline
from tests.support import api_client, auth

AppFactory = Callable[[Settings], FastAPI]
APPS: dict[str, AppFactory] = {
    "cycles": cycles_app,
    "goals": goals_app,
    "tracking": lambda s: tracking_app(s, run_consumer=False, staleness_interval=0),
    "evaluation": evaluation_app,
    "feedback": feedback_app,
    "results": results_app,
}
METHODS = {"get", "post", "put", "patch", "delete"}


@dataclass(frozen=True)
class Persona:
    sub: str
    employee_id: str | None = None
    department_id: str | None = None

    def headers(self, settings: Settings, *roles: str) -> dict[str, str]:
        return auth(settings, *roles, sub=self.sub, employee_id=self.employee_id, department_id=self.department_id)


def stage_person(employee_id: str) -> Persona:
    return Persona(f"user-{employee_id}", employee_id, DEPT_OF[employee_id])


# The stage services share evaluation's test org: e-sh heads sales, e-m manages e-r (the
# reviewee and owner), e-p1..3 are e-r's peers, e-x1 (ops) and e-f1 (finance) are outsiders.
STAGE_PERSONAS: dict[str, Persona] = {
    "hr_admin": Persona("hr-hana", "e-hr"),
    "dept_head": stage_person("e-sh"),
    "manager": stage_person("e-m"),
    "employee": stage_person("e-r"),
    "ops": Persona("ops-olli"),
    "department_system": Persona("crm-sales", None, "sales"),
    "finance": Persona("fin-fay"),  # a finance controller who takes no part in the cycle
}
STAGE_OWNER = stage_person("e-r")
STAGE_NON_OWNERS = [
    ("employee", stage_person("e-p1")),
    ("employee", stage_person("e-f1")),
    ("manager", stage_person("e-fh")),
]

# The cycles service's directory is the sample org (see test_cycles_scoping): E0155 heads sales,
# E0163 manages E0164..E0168, E0203 is the CFO.
CYCLES_PERSONAS: dict[str, Persona] = {
    "hr_admin": Persona("hr-hana"),
    "dept_head": Persona("user-E0155", "E0155", "sales"),
    "manager": Persona("user-E0163", "E0163", "sales-domestic"),
    "employee": Persona("user-E0164", "E0164", "sales-domestic"),
    "ops": Persona("ops-olli"),
    "department_system": Persona("crm-sales", None, "sales"),
    "finance": Persona("fin-fay"),
}
CYCLES_OWNER = Persona("user-E0164", "E0164", "sales-domestic")
CYCLES_NON_OWNERS = [
    ("employee", Persona("user-E0165", "E0165", "sales-domestic")),
    ("employee", Persona("user-E0203", "E0203", "finance")),
    ("manager", Persona("user-E0203", "E0203", "finance")),
]


@dataclass
class World:
    """One service on a fresh SQLite database with a small cycle seeded through its API."""

    service: str
    client: httpx.AsyncClient
    settings: Settings
    values: dict[str, str]
    owned: list[tuple[str, str]] = field(default_factory=list)
    """(method, path template) of per-person resources owned by the owner persona."""

    @property
    def personas(self) -> dict[str, Persona]:
        return CYCLES_PERSONAS if self.service == "cycles" else STAGE_PERSONAS

    def headers(self, role: str) -> dict[str, str]:
        return self.personas[role].headers(self.settings, role)

    def hr(self) -> dict[str, str]:
        return self.headers("hr_admin")

    def url(self, template: str) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            assert name in self.values, f"{self.service}: no seeded value for {{{name}}} in {template}"
            return self.values[name]

        return re.sub(r"\{(\w+)\}", fill, template)


def ok(response: httpx.Response, *expected: int) -> Any:
    assert response.status_code in (expected or (200,)), (response.request.url, response.text[:500])
    return response.json() if response.headers.get("content-type", "").startswith("application/json") else None


# -- seeding --------------------------------------------------------------------------------------
async def evaluation_final(client: httpx.AsyncClient, settings: Settings) -> tuple[Any, Any]:
    """Evaluation seeded like its own tests (reviews with peers), scored and calibrated."""
    await setup_cycle(client, settings)
    await collect_reviews(client, settings)
    hr = STAGE_PERSONAS["hr_admin"].headers(settings, "hr_admin")
    ok(await client.post(f"/v1/cycles/{CYCLE}/scores/compute", headers=hr))
    ok(await client.post(f"/v1/cycles/{CYCLE}/calibration/close", headers=hr))
    results = ok(await client.get(f"/v1/cycles/{CYCLE}/final-results", headers=hr))
    matrix = ok(await client.get(f"/v1/cycles/{CYCLE}/collaboration-matrix", headers=hr))
    return results, matrix


async def seed_cycles(world: World) -> None:
    client, hr = world.client, world.hr()
    await import_sample(client, world.settings)
    template = ok(await client.post("/v1/templates", json=sample_template().model_dump(mode="json"), headers=hr), 201)
    body = {
        "name": "authz matrix",
        "template_id": template["template_id"],
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "department_ids": ["sales"],
    }
    cycle = ok(await client.post("/v1/cycles", json=body, headers=hr), 201)
    world.values |= {
        "cycle_id": cycle["cycle_id"],
        "template_id": str(template["template_id"]),
        "department_id": "sales",
        "employee_id": "E0164",
        "goal_id": "i-e0164",
        # console pages over the feedback service (down here: the pages say so)
        "appeal_id": "1",
        "one_on_one_id": "1",
        "item_id": "1",
    }
    world.owned = [("GET", "/v1/org/employees/{employee_id}")]


def goal(goal_id: str, level: str, weight: float, **fields: Any) -> dict[str, Any]:
    return {
        "goal_id": goal_id,
        "level": level,
        "name": f"{goal_id} goal",
        "kind": "kpi",
        "unit": "count",
        "direction": "higher_is_better",
        "aggregation": "sum",
        "start_value": 0,
        "target_value": 100,
        "metric": "sales.orders",
        "data_owner_department_id": "sales",
        "update_frequency_hours": 24,
        "weight": weight,
        **fields,
    }


async def seed_goals(world: World) -> None:
    client, hr, base = world.client, world.hr(), f"/v1/cycles/{CYCLE}"
    ok(await client.put(f"{base}/participants", json=snapshot(), headers=hr))
    objective = {"objective_id": "grow", "name": "Grow revenue", "perspective": "financial"}
    ok(await client.post(f"{base}/objectives", json=objective, headers=hr), 201)
    ok(await client.post(f"{base}/goals", json=goal("c-orders", "company", 100, objective_id="grow"), headers=hr), 201)
    department = goal("d-orders", "department", 100, parent_id="c-orders", department_id="sales")
    ok(await client.post(f"{base}/goals", json=department, headers=hr), 201)
    for employee_id in ("e-r", "e-p1"):
        individual = goal(f"i-{employee_id}", "individual", 100, parent_id="d-orders", employee_id=employee_id)
        ok(await client.post(f"{base}/goals", json=individual, headers=hr), 201)
    world.values |= {"cycle_id": CYCLE, "objective_id": "grow", "goal_id": "i-e-r"}
    world.owned = [("GET", "/v1/cycles/{cycle_id}/goals/{goal_id}")]


async def seed_tracking(world: World) -> None:
    client, hr, base = world.client, world.hr(), f"/v1/cycles/{CYCLE}"
    ok(await client.put(f"{base}/participants", json=snapshot(), headers=hr))

    def kpi(kpi_id: str, level: str, **fields: Any) -> dict[str, Any]:
        return {
            "kpi_id": kpi_id,
            "level": level,
            "name": kpi_id,
            "metric": "sales.revenue",
            "unit": "kEUR",
            "aggregation": "sum",
            "direction": "higher_is_better",
            "start_value": 0,
            "target_value": 100,
            "owner_department_id": "sales",
            "update_frequency_hours": 24,
            **fields,
        }

    catalog = {
        "cycle_id": CYCLE,
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "kpis": [
            kpi("k-sales", "department", department_id="sales"),
            kpi("k-rev-e-r", "individual", employee_id="e-r"),
            kpi("k-rev-e-p1", "individual", employee_id="e-p1"),
        ],
    }
    ok(await client.put(f"{base}/kpis", json=catalog, headers=hr))
    check_in = {"kpi_id": "k-rev-e-r", "comment": "on track", "confidence": 4}
    ok(await client.post(f"{base}/check-ins", json=check_in, headers=world.headers("employee")), 201)
    key = ok(await client.post("/v1/api-keys", json={"department_id": "sales", "name": "crm"}, headers=hr), 201)
    world.values |= {"cycle_id": CYCLE, "kpi_id": "k-rev-e-r", "key_id": key["key_id"]}
    world.owned = [
        ("GET", "/v1/cycles/{cycle_id}/kpis/{kpi_id}/progress"),
        ("GET", "/v1/cycles/{cycle_id}/kpis/{kpi_id}/check-ins"),
    ]


async def seed_evaluation(world: World) -> None:
    await evaluation_final(world.client, world.settings)
    rows = ok(
        await world.client.get(
            f"/v1/cycles/{CYCLE}/assignments", params={"rater_id": "e-r", "relation": "self"}, headers=world.hr()
        )
    )
    world.values |= {"cycle_id": CYCLE, "employee_id": "e-r", "assignment_id": rows[0]["assignment_id"]}
    # (the owner's own result is not among them: evaluation never shows it to its employee, issue 14)
    world.owned = [
        ("GET", "/v1/cycles/{cycle_id}/goal-scores/{employee_id}"),
        ("GET", "/v1/cycles/{cycle_id}/assignments/{assignment_id}"),
        ("GET", "/v1/cycles/{cycle_id}/reviews/{employee_id}/summary"),
    ]


async def seed_feedback(world: World, results: Any) -> None:
    client, hr, base = world.client, world.hr(), f"/v1/cycles/{CYCLE}"
    ok(await client.put(f"{base}/participants", json=snapshot(), headers=hr))
    ok(await client.put(f"{base}/results", json=results, headers=hr))
    ok(await client.post(f"{base}/release", headers=hr))
    employee, manager = world.headers("employee"), world.headers("manager")
    appeal = ok(await client.post(f"{base}/appeals", json={"reason": "my peers were not asked"}, headers=employee), 201)
    meeting = {"employee_id": "e-r", "scheduled_for": "2026-06-03T10:00:00Z", "agenda": ["growth"]}
    one_on_one = ok(await client.post(f"{base}/one-on-ones", json=meeting, headers=manager), 201)
    item = {"description": "Share the forecast", "owner_id": "e-r", "due_date": "2026-06-10"}
    action = ok(await client.post(f"/v1/one-on-ones/{one_on_one['id']}/action-items", json=item, headers=manager), 201)
    kudos = {"recipient_id": "e-r", "kind": "kudos", "message": "thanks for the handover"}
    ok(
        await client.post(
            f"{base}/feedback", json=kudos, headers=stage_person("e-f1").headers(world.settings, "employee")
        ),
        201,
    )
    asked = {"giver_id": "e-r", "question": "how did my hand-over go?"}
    request = ok(
        await client.post(
            f"{base}/feedback-requests", json=asked, headers=stage_person("e-fh").headers(world.settings, "employee")
        ),
        201,
    )
    world.values |= {
        "cycle_id": CYCLE,
        "employee_id": "e-r",
        "request_id": str(request["id"]),
        "appeal_id": str(appeal["id"]),
        "one_on_one_id": str(one_on_one["id"]),
        "item_id": str(action["id"]),
    }
    world.owned = [
        ("GET", "/v1/cycles/{cycle_id}/results/{employee_id}"),
        ("GET", "/v1/appeals/{appeal_id}"),
        ("GET", "/v1/one-on-ones/{one_on_one_id}"),
    ]


async def seed_results(world: World, results: Any, matrix: Any) -> None:
    client, hr, base = world.client, world.hr(), f"/v1/cycles/{CYCLE}"
    ok(await client.put(f"{base}/participants", json=snapshot(), headers=hr))
    ok(await client.put(f"{base}/results", json=results, headers=hr))
    ok(await client.put(f"{base}/collaboration", json=matrix, headers=hr))
    policy = {"development": {"ratings": [], "below_score": 5.0}}  # everyone gets a development plan
    ok(await client.put(f"{base}/policy", json=policy, headers=hr))
    ok(await client.put(f"{base}/pools/sales", json={"amount_cents": 1_000_000, "currency": "EUR"}, headers=hr))
    ok(await client.post(f"{base}/development-plans/generate", headers=hr))
    plans = ok(await client.get(f"{base}/development-plans", params={"employee_id": "e-r"}, headers=hr))
    plan = next(p for p in plans if p["employee_id"] == "e-r")
    item = {"description": "Pair on two deals", "owner_id": "e-r"}
    created = ok(
        await client.post(f"/v1/development-plans/{plan['id']}/items", json=item, headers=world.headers("manager")), 201
    )
    world.values |= {
        "cycle_id": CYCLE,
        "department_id": "sales",
        "plan_id": str(plan["id"]),
        "item_id": str(created["id"]),
    }
    world.owned = [("GET", "/v1/development-plans/{plan_id}")]


@asynccontextmanager
async def seeded(
    service: str, settings: Settings, tmp_path: Path, url: str | None = None, *, objects: bool = False
) -> AsyncIterator[World]:
    """``service`` on a SQLite database in ``tmp_path`` (or at ``url``), seeded through its API; with
    ``objects``, also one object of each kind per person the object-level matrix aims at."""
    test_settings = offline(settings)
    async with AsyncExitStack() as stack:
        upstream: tuple[Any, Any] | None = None
        if service in ("feedback", "results"):
            upstream_url = f"sqlite+aiosqlite:///{tmp_path}/{service}-evaluation-upstream.db"
            async with api_client(evaluation_app, test_settings, upstream_url) as evaluation:
                upstream = await evaluation_final(evaluation, test_settings)
        url = url or f"sqlite+aiosqlite:///{tmp_path}/{service}.db"
        client = await stack.enter_async_context(api_client(APPS[service], test_settings, url))
        world = World(service, client, test_settings, {})
        if service == "cycles":
            await seed_cycles(world)
        elif service == "goals":
            await seed_goals(world)
        elif service == "tracking":
            await seed_tracking(world)
        elif service == "evaluation" and objects:
            await seed_open_evaluation(world)
        elif service == "evaluation":
            await seed_evaluation(world)
        elif service == "feedback":
            assert upstream is not None
            await seed_feedback(world, upstream[0])
        else:
            assert upstream is not None
            await seed_results(world, *upstream)
        if objects and service in OBJECT_SEEDS:
            await OBJECT_SEEDS[service](world)
        yield world


async def seed_into(service: str, settings: Settings, database_url: str) -> dict[str, str]:
    """Seed ``service``'s small cycle into ``database_url`` (a SQLite file); return the path values."""
    workdir = Path(database_url.split(":///", 1)[1]).parent
    async with seeded(service, settings, workdir, database_url) as world:
        return dict(world.values)


# -- the checks -----------------------------------------------------------------------------------
def operations(app: FastAPI) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def request_kwargs(op: dict[str, Any]) -> dict[str, Any]:
    """An empty body of the declared kind: allowed roles may get a 422, which is fine here."""
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return {"json": {}}
    if "multipart/form-data" in content:
        return {"files": {"unused": ("empty.txt", b"", "text/plain")}}
    return {}


def check_status(rule: Rule, role: str | None, status: int) -> str | None:
    """Why ``status`` is wrong for ``role`` (None: right). ``role`` None is the anonymous caller."""
    if status >= 500 and not (rule.neighbour and status in (502, 503) and role in rule.allowed):
        return "server error"
    if rule.anonymous == PUBLIC:
        return None if status < 400 else "a public endpoint refused the caller"
    if role is None:
        return None if status == rule.anonymous else f"expected {rule.anonymous} without credentials"
    if role not in rule.allowed:
        return None if status == 403 else "expected 403 for a role that is not allowed"
    if role in rule.scoped:
        return None if status in (403, 404) else f"expected 403/404 ({rule.scoped[role]})"
    return None if status not in (401, 403) else "an allowed role was refused"


@dataclass
class Report:
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    reviewee_bodies: list[tuple[str, str]] = field(default_factory=list)


async def run_matrix(world: World, report: Report) -> None:
    table = MATRIX[world.service]
    spec = operations(world.client.app)  # type: ignore[attr-defined]
    # mutations by allowed roles come last, so refused calls all see the same seeded state
    for (method, template), rule in sorted(table.items(), key=lambda item: item[0][0] != "GET"):
        op = spec[(method, template)]
        url = world.url(template)
        kwargs = {"json": rule.body} if rule.body is not None else request_kwargs(op)
        callers: list[str | None] = [None, *[r for r in ROLES if r not in rule.allowed]]
        callers += [r for r in ROLES if r in rule.allowed]
        for role in callers:
            headers = {} if role is None else world.headers(role)
            variants: list[dict[str, str]] = [{}]
            if role == "employee" and method == "GET" and world.service in ("evaluation", "feedback"):
                variants = GET_QUERIES
            for params in variants:
                response = await world.client.request(
                    method, url, headers=headers, params=params, follow_redirects=False, **kwargs
                )
                report.calls += 1
                problem = check_status(rule, role, response.status_code)
                if problem:
                    report.failures.append(
                        f"{world.service} {method} {template} as {role or 'anonymous'}: {response.status_code} "
                        f"({problem}) {response.text[:200]}"
                    )
                if role is None and rule.anonymous == SIGN_IN and response.status_code == SIGN_IN:
                    location = response.headers["location"]
                    if not location.startswith("/console/sign-in"):
                        report.failures.append(f"{method} {template}: anonymous redirect to {location}")
                if role == "employee" and world.service in ("evaluation", "feedback"):
                    report.reviewee_bodies.append((f"{method} {url} {params} -> {response.status_code}", response.text))


async def check_owned(world: World) -> list[str]:
    """Owner reads their resource (200); colleagues, outsiders and other managers get 403/404."""
    owner = STAGE_OWNER if world.service != "cycles" else CYCLES_OWNER
    non_owners = STAGE_NON_OWNERS if world.service != "cycles" else CYCLES_NON_OWNERS
    failures: list[str] = []
    assert world.owned, f"{world.service} lists no per-person resource"
    for method, template in world.owned:
        url = world.url(template)
        response = await world.client.request(method, url, headers=owner.headers(world.settings, "employee"))
        if response.status_code != 200:
            failures.append(f"owner {owner.employee_id} {method} {url}: {response.status_code} {response.text[:200]}")
        for role, persona in non_owners:
            response = await world.client.request(method, url, headers=persona.headers(world.settings, role))
            if response.status_code not in (403, 404):
                failures.append(
                    f"non-owner {persona.employee_id} ({role}) {method} {url}: {response.status_code} "
                    f"{response.text[:200]}"
                )
    return failures


# -- tests ----------------------------------------------------------------------------------------
def test_the_matrix_lists_every_operation_of_every_service(settings: Settings) -> None:
    for service in SERVICES:
        app = APPS[service](offline(settings))
        declared = set(operations(app))
        listed = set(MATRIX[service])
        assert declared - listed == set(), f"{service}: endpoints without an authz entry: {sorted(declared - listed)}"
        assert listed - declared == set(), f"{service}: authz entries without an endpoint: {sorted(listed - declared)}"
        for key, rule in MATRIX[service].items():
            if rule.anonymous != PUBLIC:
                assert rule.allowed, f"{service} {key}: a non-public endpoint must admit some role"
            assert set(rule.scoped) <= rule.allowed, f"{service} {key}: scoped roles must be allowed roles"
    machine_reach = {
        (service, *key)
        for service in SERVICES
        for key, rule in MATRIX[service].items()
        if "department_system" in rule.allowed
    }
    assert machine_reach == {("cycles", "GET", "/v1/me"), ("tracking", "POST", "/v1/ingest/metrics")}, (
        "a department system may only ingest metrics and read who it is"
    )


@pytest.mark.parametrize("service", SERVICES)
async def test_every_endpoint_as_every_role(service: str, settings: Settings, tmp_path: Path) -> None:
    async with seeded(service, settings, tmp_path) as world:
        failures = await check_owned(world)
        report = Report()
        await run_matrix(world, report)
        failures += report.failures
        assert not failures, f"{len(failures)} authorization failures:\n" + "\n".join(failures)
        expected_calls = len(MATRIX[service]) * (len(ROLES) + 1)
        assert report.calls >= expected_calls
        if service == "evaluation":  # positive control: the raters are in the data HR can read
            listed = await world.client.get(
                f"/v1/cycles/{CYCLE}/assignments", params={"limit": 500}, headers=world.hr()
            )
            assert {row["rater_id"] for row in listed.json()} >= RATERS
        if service in ("evaluation", "feedback"):
            assert_no_rater(report.reviewee_bodies)
            reached = [call for call, _ in report.reviewee_bodies if call.endswith("-> 200")]
            assert len(reached) >= 10, f"the reviewee reached too little of {service}: {reached}"


async def test_feedback_shows_the_reviewee_no_rater_after_a_real_evaluation(settings: Settings, tmp_path: Path) -> None:
    """Positive control for the sweep: the raters are in evaluation's data, never in what e-r can read."""
    async with seeded("feedback", settings, tmp_path) as world:
        mine = ok(await world.client.get(f"/v1/cycles/{CYCLE}/results/e-r", headers=world.headers("employee")))
        assert mine["employee_id"] == "e-r" and mine["status"] == "released"
        feedback = ok(await world.client.get(f"/v1/cycles/{CYCLE}/feedback", headers=world.headers("employee")))
        assert [f["author_id"] for f in feedback] == ["e-f1"]  # kudos are signed on purpose; e-f1 rated nobody
        assert "e-f1" not in RATERS


# -- object level: every write, and the reads of one person's object ------------------------------
OBJECT_PERSONAS: dict[str, Persona] = {
    "hr_admin": Persona("hr-fiona", "e-f1", "fin"),  # an HR person who also takes part (in finance)
    "dept_head": stage_person("e-sh"),
    "manager": stage_person("e-m"),
    "employee": stage_person("e-r"),
    "ops": Persona("ops-olli", None, "ops"),
    "department_system": Persona("crm-sales", None, "sales"),
    "finance": Persona("fin-fay", None, "fin"),
}
OBJECT_TARGETS: dict[str, tuple[str | None, str, str]] = {
    "hr_admin": ("e-f1", "e-fh", "e-r"),
    "dept_head": ("e-sh", "e-r", "e-f1"),
    "manager": ("e-m", "e-r", "e-f1"),  # e-r reports to e-m
    "employee": ("e-r", "e-p1", "e-f1"),
    "ops": (None, "e-x1", "e-f1"),  # the operator takes no part: nothing of their own
    "department_system": (None, "e-p1", "e-f1"),
    "finance": (None, "e-p1", "e-f1"),
}
"""Per role: whose object each variant of ``VARIANTS`` aims at."""
TARGETED = sorted({t for targets in OBJECT_TARGETS.values() for t in targets if t})
MANAGER_OF = {"e-f1": "e-fh", "e-r": "e-m", "e-p1": "e-m", "e-m": "e-sh", "e-x1": "e-oh"}
PARTNER = {"sales": "ops", "ops": "fin", "fin": "ops"}
"""A department each department works with (sales-ops share a goal, HR declared fin-ops)."""

Call = tuple[dict[str, str], Any]
"""Path values (beyond the world's) and a JSON body (None: no body)."""
Builder = Callable[[World, str, str], Call]
"""(world, target employee id, a tag unique to the call) -> the call."""


def _path(**names: str) -> Builder:
    """Path parameters from the world's per-person values, e.g. ``goal_id="goal"`` -> ``values["goal:e-r"]``."""
    return lambda world, target, _tag: ({p: world.values[f"{key}:{target}"] for p, key in names.items()}, None)


def _employee(world: World, target: str, _tag: str) -> Call:
    return {"employee_id": target}, None


def _with(body: Callable[[str, str], Any], **names: str) -> Builder:
    paths = _path(**names)
    return lambda world, target, tag: (paths(world, target, tag)[0], body(target, tag))


def _new_goal(target: str, tag: str) -> Any:
    return goal(f"n-{tag}", "individual", 10, parent_id=PARENT_GOAL[DEPT_OF[target]], employee_id=target)


PARENT_GOAL = {"sales": "d-orders", "fin": "d-fin", "ops": "d-ops"}
"""Each department's KPI, which individual goals align to."""


def _bulk(target: str, tag: str) -> Any:
    template = {k: v for k, v in goal("x", "individual", 10).items() if k not in ("goal_id", "level")}
    template["parent_id"] = PARENT_GOAL[DEPT_OF[target]]
    return {"template_key": f"t-{tag}", "template": template, "department_id": DEPT_OF[target]}


def _event(target: str, _tag: str) -> Any:
    department = DEPT_OF[target]
    return {
        "events": [
            {
                "event_id": f"{uuid.uuid4()}",
                "source": "crm",
                "department_id": department,
                "metric": f"{department}.revenue",
                "value": 1,
                "unit": "x",
                "occurred_at": datetime.now(UTC).isoformat(),
            }
        ]
    }


BUILDERS: dict[str, dict[tuple[str, str], Builder]] = {
    "goals": {
        ("GET", "/v1/cycles/{cycle_id}/goals/{goal_id}"): _path(goal_id="goal"),
        ("POST", "/v1/cycles/{cycle_id}/goals"): _with(_new_goal),
        ("POST", "/v1/cycles/{cycle_id}/goals/bulk-assign"): _with(_bulk),
        ("PATCH", "/v1/cycles/{cycle_id}/goals/{goal_id}"): _with(
            lambda t, tag: {"name": f"renamed {tag}"}, goal_id="goal"
        ),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/submit"): _with(lambda t, tag: {}, goal_id="goal"),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/approve"): _with(lambda t, tag: {}, goal_id="goal"),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/return"): _with(
            lambda t, tag: {"comment": "rework"}, goal_id="goal"
        ),
        ("DELETE", "/v1/cycles/{cycle_id}/goals/{goal_id}"): _path(goal_id="goal"),
    },
    "tracking": {
        ("POST", "/v1/ingest/metrics"): _with(_event),
        ("POST", "/v1/cycles/{cycle_id}/check-ins"): _with(
            lambda t, tag: {"kpi_id": f"k-rev-{t}", "comment": f"check-in {tag}", "confidence": 3}
        ),
        ("GET", "/v1/cycles/{cycle_id}/kpis/{kpi_id}/check-ins"): lambda w, t, tag: ({"kpi_id": f"k-rev-{t}"}, None),
    },
    "evaluation": {
        ("POST", "/v1/cycles/{cycle_id}/collaborations"): _with(
            lambda t, tag: {"department_a": DEPT_OF[t], "department_b": PARTNER[DEPT_OF[t]]}
        ),
        ("PUT", "/v1/cycles/{cycle_id}/collaboration-ratings"): _with(
            lambda t, tag: {
                "rater_department_id": DEPT_OF[t],
                "rated_department_id": PARTNER[DEPT_OF[t]],
                "responsiveness": 3,
                "data_quality": 3,
                "reliability": 3,
            }
        ),
        ("POST", "/v1/cycles/{cycle_id}/assignments"): _with(
            lambda t, tag: {"reviewee_id": t, "rater_id": "e-x1", "relation": "peer"}
        ),
        ("POST", "/v1/cycles/{cycle_id}/assignments/{assignment_id}/review"): _with(
            lambda t, tag: {"ratings": {"collab": 3, "delivery": 5}}, assignment_id="self"
        ),
        ("POST", "/v1/cycles/{cycle_id}/calibration/adjustments"): _with(
            lambda t, tag: {"employee_id": t, "new_score": 3.0, "reason": f"calibrated {tag}"}
        ),
        ("POST", "/v1/cycles/{cycle_id}/appeal-adjustments"): _with(
            lambda t, tag: {"employee_id": t, "appeal_id": f"ap-{tag}", "new_score": 3.0, "reason": "appeal"}
        ),
        ("GET", "/v1/cycles/{cycle_id}/results/{employee_id}"): _employee,
        ("GET", "/v1/cycles/{cycle_id}/reviews/{employee_id}/summary"): _employee,
        ("GET", "/v1/cycles/{cycle_id}/assignments/{assignment_id}"): _path(assignment_id="self"),
        ("GET", "/v1/cycles/{cycle_id}/goal-scores/{employee_id}"): _employee,
    },
    "feedback": {
        ("POST", "/v1/cycles/{cycle_id}/results/{employee_id}/acknowledge"): _employee,
        ("POST", "/v1/cycles/{cycle_id}/appeals"): _with(lambda t, tag: {"reason": f"please look again ({tag})"}),
        ("POST", "/v1/appeals/{appeal_id}/review"): _path(appeal_id="appeal"),
        ("POST", "/v1/appeals/{appeal_id}/resolve"): _with(
            lambda t, tag: {"outcome": "rejected", "note": "checked"}, appeal_id="appeal"
        ),
        ("POST", "/v1/cycles/{cycle_id}/one-on-ones"): _with(
            lambda t, tag: {"employee_id": t, "scheduled_for": "2026-07-01T10:00:00Z", "agenda": [tag]}
        ),
        ("PATCH", "/v1/one-on-ones/{one_on_one_id}"): _with(
            lambda t, tag: {"notes": f"notes {tag}"}, one_on_one_id="one_on_one"
        ),
        ("POST", "/v1/one-on-ones/{one_on_one_id}/action-items"): _with(
            lambda t, tag: {"description": f"follow up {tag}", "owner_id": t, "due_date": "2026-07-10"},
            one_on_one_id="one_on_one",
        ),
        ("PATCH", "/v1/one-on-ones/{one_on_one_id}/action-items/{item_id}"): _with(
            lambda t, tag: {"done": True}, one_on_one_id="one_on_one", item_id="action"
        ),
        ("POST", "/v1/cycles/{cycle_id}/feedback"): _with(
            lambda t, tag: {"recipient_id": t, "kind": "kudos", "message": f"thanks ({tag})"}
        ),
        ("POST", "/v1/cycles/{cycle_id}/feedback-requests"): _with(
            lambda t, tag: {"giver_id": t, "question": f"feedback please ({tag})"}
        ),
        ("POST", "/v1/feedback-requests/{request_id}/answer"): _with(
            lambda t, tag: {"message": f"answer ({tag})"}, request_id="request"
        ),
        ("POST", "/v1/feedback-requests/{request_id}/decline"): _with(
            lambda t, tag: {"reason": f"no ({tag})"}, request_id="declinable"
        ),
        ("GET", "/v1/cycles/{cycle_id}/results/{employee_id}"): _employee,
        ("GET", "/v1/appeals/{appeal_id}"): _path(appeal_id="appeal"),
    },
    "results": {
        ("POST", "/v1/cycles/{cycle_id}/appeal-adjustments"): _with(
            lambda t, tag: {
                "employee_id": t,
                "appeal_id": f"ap-{tag}",
                "new_score": 3.0,
                "new_rating": "meets",
                "reason": "appeal",
            }
        ),
        ("POST", "/v1/cycles/{cycle_id}/development-plans"): _with(lambda t, tag: {"employee_id": t}),
        ("PATCH", "/v1/development-plans/{plan_id}"): _with(lambda t, tag: {"summary": f"focus {tag}"}, plan_id="plan"),
        ("POST", "/v1/development-plans/{plan_id}/items"): _with(
            lambda t, tag: {"description": f"learn {tag}", "owner_id": t}, plan_id="plan"
        ),
        ("PATCH", "/v1/development-plans/{plan_id}/items/{item_id}"): _with(
            lambda t, tag: {"done": True}, plan_id="plan", item_id="plan_item"
        ),
        ("GET", "/v1/development-plans/{plan_id}"): _path(plan_id="plan"),
    },
}
"""How to aim each object-level operation at one person's object."""


async def seed_open_evaluation(world: World) -> None:
    """Evaluation mid-stage: reviews in, scores computed, calibration open; the HR persona takes part."""
    client, settings = world.client, world.settings
    await setup_cycle(client, settings)
    await collect_reviews(client, settings)
    org = snapshot()
    ok(await client.put(f"/v1/cycles/{CYCLE}/participants", json=org, headers=world.hr()))
    ok(await client.post(f"/v1/cycles/{CYCLE}/scores/compute", headers=world.hr()))
    world.values |= {"cycle_id": CYCLE}
    for target in TARGETED:
        rows = ok(
            await client.get(
                f"/v1/cycles/{CYCLE}/assignments", params={"rater_id": target, "relation": "self"}, headers=world.hr()
            )
        )
        world.values[f"self:{target}"] = rows[0]["assignment_id"]


async def _goal_objects(world: World) -> None:
    client, hr, base = world.client, world.hr(), f"/v1/cycles/{CYCLE}"
    for department, goal_id in (("fin", "d-fin"), ("ops", "d-ops")):
        body = goal(goal_id, "department", 100, parent_id="c-orders", department_id=department)
        ok(await client.post(f"{base}/goals", json=body, headers=hr), 201)
    for target in TARGETED:
        goal_id = f"i-{target}"
        if target not in ("e-r", "e-p1"):
            body = goal(goal_id, "individual", 100, parent_id=PARENT_GOAL[DEPT_OF[target]], employee_id=target)
            ok(await client.post(f"{base}/goals", json=body, headers=hr), 201)
        world.values[f"goal:{target}"] = goal_id


async def _kpi_objects(world: World) -> None:
    client, hr, base = world.client, world.hr(), f"/v1/cycles/{CYCLE}"
    catalog = ok(await client.get(f"{base}/progress", headers=hr))  # the seeded catalog, extended per person
    assert catalog is not None
    kpis = [
        {
            "kpi_id": f"k-rev-{t}",
            "level": "individual",
            "name": f"revenue {t}",
            "metric": f"{DEPT_OF[t]}.revenue",
            "unit": "kEUR",
            "aggregation": "sum",
            "direction": "higher_is_better",
            "start_value": 0,
            "target_value": 100,
            "owner_department_id": DEPT_OF[t],
            "update_frequency_hours": 24,
            "employee_id": t,
        }
        for t in TARGETED
    ]
    body = {"cycle_id": CYCLE, "period_start": "2026-01-01", "period_end": "2026-12-31", "kpis": kpis}
    ok(await client.put(f"{base}/kpis", json=body, headers=hr))


async def _feedback_objects(world: World) -> None:
    client, base = world.client, f"/v1/cycles/{CYCLE}"
    world.values["appeal:e-r"] = world.values["appeal_id"]
    for target in TARGETED:
        if target != "e-r":
            body = {"reason": f"{target} asks for a second look"}
            appeal = ok(
                await client.post(
                    f"{base}/appeals", json=body, headers=stage_person(target).headers(world.settings, "employee")
                ),
                201,
            )
            world.values[f"appeal:{target}"] = str(appeal["id"])
    meetings: dict[tuple[str, str], tuple[str, str]] = {}
    for target in TARGETED:
        manager, report = (MANAGER_OF[target], target) if target in MANAGER_OF else (target, _report_of(target))
        if (manager, report) not in meetings:
            headers = stage_person(manager).headers(world.settings, "manager")
            meeting = {"employee_id": report, "scheduled_for": "2026-06-03T10:00:00Z", "agenda": ["growth"]}
            made = ok(await client.post(f"{base}/one-on-ones", json=meeting, headers=headers), 201)
            item = {"description": "Share the forecast", "owner_id": report, "due_date": "2026-06-10"}
            action = ok(
                await client.post(f"/v1/one-on-ones/{made['id']}/action-items", json=item, headers=headers), 201
            )
            meetings[(manager, report)] = (str(made["id"]), str(action["id"]))
        world.values[f"one_on_one:{target}"], world.values[f"action:{target}"] = meetings[(manager, report)]
    # Two requests asked of each target (one to answer, one to decline), by people of other departments.
    for target in TARGETED:
        # Askers are none of the role personas (so each persona's own calls meet no earlier request of theirs).
        askers = [p for p in ("e-x1", "e-oh", "e-fh") if p != target]
        for key, asker in zip(("request", "declinable"), askers[:2], strict=True):
            body = {"giver_id": target, "question": f"{key} for {target}"}
            headers = stage_person(asker).headers(world.settings, "employee")
            made = ok(await client.post(f"{base}/feedback-requests", json=body, headers=headers), 201)
            world.values[f"{key}:{target}"] = str(made["id"])


def _report_of(manager: str) -> str:
    return next(e for e, m in MANAGER_OF.items() if m == manager)


async def _plan_objects(world: World) -> None:
    client, hr, base = world.client, world.hr(), f"/v1/cycles/{CYCLE}"
    plans = ok(await client.get(f"{base}/development-plans", params={"limit": 500}, headers=hr))
    by_employee = {p["employee_id"]: p for p in plans}
    for target in TARGETED:
        plan = by_employee[target]
        item = {"description": "Pair on two deals", "owner_id": target}
        created = ok(await client.post(f"/v1/development-plans/{plan['id']}/items", json=item, headers=hr), 201)
        world.values[f"plan:{target}"], world.values[f"plan_item:{target}"] = str(plan["id"]), str(created["id"])


OBJECT_SEEDS: dict[str, Callable[[World], Any]] = {
    "goals": _goal_objects,
    "tracking": _kpi_objects,
    "feedback": _feedback_objects,
    "results": _plan_objects,
}


def write_operations(app: FastAPI) -> set[tuple[str, str]]:
    return {key for key in operations(app) if key[0] != "GET"}


def test_every_write_operation_has_an_object_level_row(settings: Settings) -> None:
    """Generated from the OpenAPI documents: a new write route cannot escape the object-level matrix."""
    for service in SERVICES:
        app = APPS[service](offline(settings))
        declared = operations(app)
        missing = sorted(write_operations(app) - set(OBJECTS[service]))
        assert not missing, f"{service}: write operations without an object-level row in OBJECTS: {missing}"
        assert set(OBJECTS[service]) <= set(declared), f"{service}: OBJECTS rows for gone operations"
        for key, rule in OBJECTS[service].items():
            if isinstance(rule, NoObject):
                assert key[0] != "GET", f"{service} {key}: a read needs no row unless it reads one person's object"
                continue
            allowed = MATRIX[service][key].allowed
            assert set(rule.grid) <= allowed, f"{service} {key}: grid rows for roles the role gate refuses"
            assert key in BUILDERS.get(service, {}), f"{service} {key}: no way to aim it at one person's object"


async def run_objects(world: World) -> list[str]:
    """Every object-level row of the service, as each role on each variant; the exact status. A row
    that fails prints the grid observed (``TANDEM_PRINT_OBJECT_GRIDS=1`` prints every row's), to copy
    into ``OBJECTS`` once each cell is judged right."""
    failures: list[str] = []
    for key, rule in OBJECTS[world.service].items():
        if not isinstance(rule, Objects):
            continue
        method, template = key
        observed: dict[str, list[int | None]] = {}
        for role in ROLES:
            gate = tuple(None if target is None else 403 for target in OBJECT_TARGETS[role])
            expected = rule.grid.get(role, gate)
            observed[role] = []
            for variant, target, want in zip(VARIANTS, OBJECT_TARGETS[role], expected, strict=True):
                if target is None or want is None:  # no such object for this persona, or for this operation
                    observed[role].append(None)
                    if target is None and want is not None:
                        failures.append(f"{world.service} {method} {template} {role} {variant}: no such object")
                    continue
                tag = f"{role}-{VARIANTS.index(variant)}-{target}"
                values, body = BUILDERS[world.service][key](world, target, tag)
                url = template.format_map({**world.values, **values})
                kwargs: dict[str, Any] = {} if body is None else {"json": body}
                headers = OBJECT_PERSONAS[role].headers(world.settings, role)
                response = await world.client.request(method, url, headers=headers, **kwargs)
                observed[role].append(response.status_code)
                if response.status_code != want:
                    failures.append(
                        f"{world.service} {method} {template} as {role} on {variant} ({target}): "
                        f"{response.status_code}, expected {want}: {response.text[:160]}"
                    )
        if os.environ.get("TANDEM_PRINT_OBJECT_GRIDS") or any(
            f.startswith(f"{world.service} {method} {template} ") for f in failures
        ):
            grid = ", ".join(f'"{r}": {tuple(v)}' for r, v in observed.items())
            failures.append(f"  observed grid of {method} {template}: {{{grid}}}")
    return failures


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "cycles"])
async def test_every_object_level_row_holds(service: str, settings: Settings, tmp_path: Path) -> None:
    """Each role on their own object, a colleague's and another department's, with the exact status.
    (The cycles service has no write aimed at one person: its rows are all ``NoObject``.)"""
    async with seeded(service, settings, tmp_path, objects=True) as world:
        failures = await run_objects(world)
        assert not failures, f"{len(failures)} object-level failures:\n" + "\n".join(failures)
