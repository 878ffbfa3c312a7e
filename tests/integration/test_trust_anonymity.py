"""Issue 14, finding 5: anonymity inside evaluation, and ratings before their release.

* Successive reads: a peer aggregate holds whole batches of the anonymity threshold, so no two
  reads (of the summary, of a result's breakdown, of the audit log) differ by one rater.
* Nobody who oversees a reviewee (a manager above them, a head of their department) is their
  anonymous rater.
* One peer review is read by its rater and HR only; the reviewee's managers and heads read it
  only when the template attributes peer reviews to them, and then it says so.
* The anonymity threshold is locked once review assignments exist; visibility only tightens.
* Nobody reads their own rating before feedback releases it.
* The sweep: every endpoint of evaluation, feedback and results (the audit logs and the
  collaboration report's JSON, CSV and HTML included), called as a reviewee who is an employee,
  a manager, a department head, an HR person and an operator, before and after calibration
  closes, with valid bodies aimed at their own reviews too: no body, error messages included,
  names one of their raters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from services.common.settings import Settings
from services.evaluation.anonymity import counted
from services.evaluation.app import create_app as evaluation_app
from tests.integration.test_evaluation_api import CONFIG, CYCLE, hr, nominate, ok, person, setup_cycle, submit
from tests.integration.test_trust_appeals import HR_PERSON, Stages, hr_person, org_with_hr, stage_stack
from tests.support import api_client, auth

BASE = f"/v1/cycles/{CYCLE}"
THRESHOLD = 3


# -- the world of the sweep: one reviewee of each kind, each with raters of their own --------------
@dataclass(frozen=True)
class Reviewee:
    kind: str
    employee_id: str
    department_id: str
    manager_id: str | None
    roles: tuple[str, ...]

    @property
    def peers(self) -> list[str]:
        return [f"rt-{self.kind}-{i}" for i in range(1, 5)]

    @property
    def cross(self) -> str:
        return f"rt-{self.kind}-x"

    @property
    def raters(self) -> list[str]:
        return [*self.peers, self.cross]


REVIEWEES = [
    Reviewee("employee", "e-r", "sales", "e-m", ("employee",)),
    Reviewee("manager", "e-m", "sales", "e-sh", ("manager", "employee")),
    Reviewee("head", "e-sh", "sales", None, ("dept_head", "manager", "employee")),
    Reviewee("hr", "e-hr", "people", "e-ph", ("hr_admin", "employee")),
    Reviewee("ops", "e-op", "it", "e-ih", ("ops", "employee")),
]
HEADS = {"sales": "e-sh", "ops": "e-oh", "it": "e-ih", "people": "e-ph"}
PEER_HOMES = {"head": ("it", "e-ih")}
SEES_EVERYONE = {"hr", "ops"}
"""Reviewees whose roles show them every participant as a person: for them the sweep checks that no
record ties one of their raters to them, rather than that the raters' ids appear nowhere."""


def rater_name(employee_id: str) -> str:
    return "Rater " + employee_id.removeprefix("rt-").replace("-", " ").title()


def world_org() -> dict[str, Any]:
    people: list[tuple[str, str, str | None]] = [(h, d, None) for d, h in HEADS.items() if h != "e-sh"]
    people += [(r.employee_id, r.department_id, r.manager_id) for r in REVIEWEES]
    for r in REVIEWEES:
        # Peers sit beside the reviewee (the head's in another department: a head sees everyone in
        # his own, as people); the cross-department rater in operations.
        department, manager = PEER_HOMES.get(r.kind, (r.department_id, r.manager_id))
        people += [(p, department, manager) for p in r.peers]
        people += [(r.cross, "ops", "e-oh")]
    return {
        "cycle_id": CYCLE,
        "departments": [{"department_id": d, "name": d.title(), "head_employee_id": h} for d, h in HEADS.items()],
        "participants": [
            {
                "employee_id": e,
                "name": rater_name(e) if e.startswith("rt-") else f"Person {e}",
                "department_id": d,
                "manager_id": m,
                "job_title": "Staff",
                "grade": "G5",
            }
            for e, d, m in people
        ],
    }


WORLD_CONFIG: dict[str, Any] = {
    **CONFIG,
    "weights": {"manager": 40, "peer": 40, "collaboration": 20},
    "formula": "w_manager * manager + w_peer * peer + w_collaboration * collaboration",
    "calibration": {"limits": [], "min_group_size": 100},
    "peer_anonymity_threshold": THRESHOLD,
    "rater_limits": {"peer": {"min": 0, "max": 4}, "cross_department": {"min": 0, "max": 1}},
}
# distinct ratings per peer, so a change by one rater would show: (collab 1..5, delivery 0..10)
PEER_RATINGS = [(2, 4), (5, 10), (3, 6), (1, 0)]


def admin(settings: Settings) -> dict[str, str]:
    """An HR person who is not taking part (no employee id): sees everything, is nobody's reviewee."""
    return auth(settings, "hr_admin", sub="hr-admin")


def reviewee_headers(settings: Settings, r: Reviewee) -> dict[str, str]:
    return auth(
        settings, *r.roles, sub=f"user-{r.employee_id}", employee_id=r.employee_id, department_id=r.department_id
    )


def rater_headers(settings: Settings, employee_id: str, department_id: str) -> dict[str, str]:
    return auth(settings, "employee", sub=f"user-{employee_id}", employee_id=employee_id, department_id=department_id)


def aggregate(summary: dict[str, Any], relation: str = "peer") -> tuple[int, Any]:
    """(reviews counted, what a reader sees of the relation's content)."""
    rel = next(x for x in summary["relations"] if x["relation"] == relation)
    return rel["counted"], (rel["score"], rel["competencies"], rel["comments"])


def assert_batches_only(reads: list[tuple[int, Any]], what: str) -> None:
    """Successive reads: the content changes only when a whole batch of the threshold joins it."""
    for (count_before, before), (count_after, after) in zip(reads, reads[1:], strict=False):
        if before != after:
            assert count_after - count_before >= THRESHOLD, f"{what}: one rater moved the aggregate {reads}"
        assert count_after % THRESHOLD == 0, f"{what}: {count_after} counted"


async def seed_world(client: httpx.AsyncClient, settings: Settings) -> dict[str, list[tuple[int, Any]]]:
    """The cycle with every reviewee reviewed; returns the successive reads made along the way."""
    h = admin(settings)
    ok(await client.put(f"{BASE}/participants", json=world_org(), headers=h))
    ok(await client.put(f"{BASE}/config", json=WORLD_CONFIG, headers=h))
    ok(await client.put(f"{BASE}/goals", json={"cycle_id": CYCLE, "goals": []}, headers=h))
    for department in ("sales", "it", "people"):
        pair = {"department_a": department, "department_b": "ops"}
        ok(await client.post(f"{BASE}/collaborations", json=pair, headers=h), 201)
        for rater, rated in ((department, "ops"), ("ops", department)):
            body = {
                "rater_department_id": rater,
                "rated_department_id": rated,
                "responsiveness": 4,
                "data_quality": 4,
                "reliability": 4,
                "comment": f"{rater} on {rated}",
            }
            ok(await client.put(f"{BASE}/collaboration-ratings", json=body, headers=h))
    reads: dict[str, list[tuple[int, Any]]] = {}
    for r in REVIEWEES:
        if r.manager_id:
            ok(await nominate(client, h, reviewee=r.employee_id, rater=r.manager_id, relation="manager"), 201)
        for peer in r.peers:
            ok(await nominate(client, h, reviewee=r.employee_id, rater=peer), 201)
        ok(await nominate(client, h, reviewee=r.employee_id, rater=r.cross, relation="cross_department"), 201)
        readers = {"reviewee": reviewee_headers(settings, r), "hr": h}
        if r.manager_id:
            readers["manager"] = person_of(settings, r.manager_id, r.department_id)
        for index, (peer, (collab, delivery)) in enumerate(zip(r.peers, PEER_RATINGS, strict=True)):
            await review(client, settings, peer, r, "peer", collab, delivery, comment=f"peer comment {index}")
            for reader, headers in readers.items():
                summary = ok(await client.get(f"{BASE}/reviews/{r.employee_id}/summary", headers=headers))
                reads.setdefault(f"{r.kind} summary read by {reader}", []).append(aggregate(summary))
            ok(await client.post(f"{BASE}/scores/compute", headers=h))
            result = ok(await client.get(f"{BASE}/results/{r.employee_id}", headers=h))
            peer_component = next(c for c in result["components"] if c["name"] == "peer")
            counted_ = peer_component["ratings"] if peer_component["status"] == "present" else 0
            reads.setdefault(f"{r.kind} result breakdown", []).append((counted_, peer_component["value"]))
        await review(client, settings, r.cross, r, "cross_department", 4, 8, comment="cross-department comment")
        if r.manager_id:
            await review(client, settings, r.manager_id, r, "manager", 4, 8, comment="manager's view")
    ok(await client.post(f"{BASE}/scores/compute", headers=h))
    return reads


def person_of(settings: Settings, employee_id: str, department_id: str) -> dict[str, str]:
    roles = ("dept_head", "manager", "employee") if employee_id in HEADS.values() else ("manager", "employee")
    return auth(settings, *roles, sub=f"user-{employee_id}", employee_id=employee_id, department_id=department_id)


async def review(
    client: httpx.AsyncClient,
    settings: Settings,
    rater: str,
    r: Reviewee,
    relation: str,
    collab: float,
    delivery: float,
    *,
    comment: str,
) -> None:
    rows = ok(
        await client.get(
            f"{BASE}/assignments",
            params={"rater_id": rater, "reviewee_id": r.employee_id, "relation": relation},
            headers=admin(settings),
        )
    )
    department = next(p["department_id"] for p in world_org()["participants"] if p["employee_id"] == rater)
    body = {"ratings": {"collab": collab, "delivery": delivery}, "comment": comment}
    if rater.startswith("rt-"):
        headers = rater_headers(settings, rater, department)
    else:
        headers = person_of(settings, rater, department)
    ok(await client.post(f"{BASE}/assignments/{rows[0]['assignment_id']}/review", json=body, headers=headers))


# -- the sweep ------------------------------------------------------------------------------------
SKIPPED_WRITES = {
    # bodiless writes an HR or ops reviewee may make that would change the world under the sweep; the
    # authorization matrix covers who may call them
    ("POST", "/v1/cycles/{cycle_id}/assignments/generate"),
    ("POST", "/v1/cycles/{cycle_id}/scores/compute"),
    ("POST", "/v1/cycles/{cycle_id}/calibration/close"),
    ("POST", "/v1/cycles/{cycle_id}/release"),
    ("POST", "/v1/cycles/{cycle_id}/withdraw"),
    ("POST", "/v1/appeals/{appeal_id}/review"),
    ("POST", "/v1/cycles/{cycle_id}/promotions/nominate"),
    ("POST", "/v1/cycles/{cycle_id}/development-plans/generate"),
    ("POST", "/v1/cycles/{cycle_id}/pools/{department_id}/allocations"),
    ("POST", "/v1/cycles/{cycle_id}/publish"),
}


def queries(r: Reviewee) -> list[dict[str, Any]]:
    return [
        {},
        {"limit": 500},
        {"reviewee_id": r.employee_id},
        {"employee_id": r.employee_id},
        {"rater_id": r.peers[0]},
        {"relation": "peer"},
        {"relation": "cross_department"},
        {"department_id": r.department_id},
        {"entity": "evaluation_assignment", "limit": 500},
        {"entity": "evaluation_result", "limit": 500},
        {"actor": f"user-{r.peers[0]}"},
    ]


REVIEW_ITEMS = {"peer_review", "cross_department_review"}
"""Pending items whose owner is a rater (other items belong to their owner as a person)."""


def _records(value: Any) -> list[dict[str, Any]]:
    """Every JSON object in ``value`` (nested ones too)."""
    if isinstance(value, dict):
        return [value, *(r for v in value.values() for r in _records(v))]
    if isinstance(value, list):
        return [r for v in value for r in _records(v)]
    return []


def _strings(record: dict[str, Any]) -> list[str]:
    """The record's own strings and those of the objects inside it (not of its lists: a list holds
    other records)."""
    out: list[str] = []
    for value in record.values():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            out += _strings(value)
    return out


@dataclass
class Sweep:
    r: Reviewee
    bodies: list[tuple[str, str]]

    def assert_no_rater(self) -> None:
        assert len(self.bodies) > 50
        raters = self.r.raters
        for call, body in self.bodies:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if parsed is None or self.r.kind not in SEES_EVERYONE:
                for secret in {*raters, *(rater_name(e) for e in raters)}:
                    assert secret not in body, f"{self.r.kind}: rater {secret!r} leaked by {call}: {body[:400]}"
                continue
            for record in _records(parsed):
                strings = _strings(record)
                named = [x for x in raters if any(x in s for s in strings)]
                about_me = any(s == self.r.employee_id or s.endswith(f"/{self.r.employee_id}") for s in strings)
                owner = record.get("owner_id") if record.get("kind") in REVIEW_ITEMS else None
                as_rater = [x for x in raters if x in (record.get("rater_id"), owner)]
                assert not (named and about_me) and not as_rater, (
                    f"{self.r.kind}: {call} ties rater {named or as_rater} to the reviewee: {record}"
                )

    def answered(self, path: str) -> bool:
        return any(call.startswith(f"GET {path} ") and call.endswith("-> 200") for call, _ in self.bodies)


async def sweep(
    client: httpx.AsyncClient, r: Reviewee, headers: dict[str, str], values: dict[str, list[str]]
) -> list[tuple[str, str]]:
    """Every operation of ``client``'s app as ``headers``; GETs with every query, writes with ``{}``."""
    app: Any = client.app  # type: ignore[attr-defined]
    bodies: list[tuple[str, str]] = []
    for template, item in app.openapi()["paths"].items():
        for method in (m.upper() for m in item):
            if method != "GET" and (method, template) in SKIPPED_WRITES:
                continue
            paths = [template]
            for name, options in values.items():
                paths = [p.replace(f"{{{name}}}", v) for p in paths for v in (options if f"{{{name}}}" in p else [""])]
            assert not [p for p in paths if "{" in p], f"the sweep cannot fill {template}"
            for path in paths:
                # one query for a path naming an object (the variants matter for lists)
                variants = queries(r) if method == "GET" and path == template.replace("{cycle_id}", CYCLE) else [{}]
                for query in variants:
                    kwargs: dict[str, Any] = {"params": query, "headers": headers}
                    if method in {"POST", "PUT", "PATCH"}:
                        kwargs["json"] = {}
                    response = await client.request(method, path, **kwargs)
                    assert response.status_code < 500, (method, path, response.text)
                    bodies.append((f"{method} {path} {query} -> {response.status_code}", response.text))
    return bodies


async def own_review_probes(
    client: httpx.AsyncClient, settings: Settings, r: Reviewee, headers: dict[str, str]
) -> list[tuple[str, str]]:
    """Writes with valid bodies aimed at the reviewee's own anonymous reviews: the errors name nobody."""
    rows = ok(
        await client.get(
            f"{BASE}/assignments", params={"reviewee_id": r.employee_id, "limit": 500}, headers=admin(settings)
        )
    )
    bodies = []
    for row in rows:
        if row["relation"] in ("peer", "cross_department"):
            url = f"{BASE}/assignments/{row['assignment_id']}/review"
            response = await client.post(url, json={"ratings": {"collab": 1, "delivery": 1}}, headers=headers)
            assert response.status_code in (403, 404), response.text
            bodies.append((f"POST {url} -> {response.status_code}", response.text))
    for rater, relation in ((r.peers[0], "peer"), (r.cross, "cross_department"), ("e-oh", "peer")):
        response = await nominate(client, headers, reviewee=r.employee_id, rater=rater, relation=relation)
        assert response.status_code == 403, response.text  # own raters: never, whatever the roles
        bodies.append((f"POST {BASE}/assignments (own, {rater}) -> 403", response.text))
    return bodies


async def test_every_kind_of_reviewee_everywhere_sees_no_rater_and_no_single_rater_delta(
    settings: Settings, one_database_url: str
) -> None:
    async with stage_stack(settings, one_database_url) as stages:
        s = stages.settings
        async with stages.client("evaluation") as evaluation:
            evaluation.app = stages.apps["evaluation"]  # type: ignore[attr-defined]
            reads = await seed_world(evaluation, s)
            # successive reads by the reviewee, their manager and HR, and the result's breakdown: batches only
            for what, series in reads.items():
                assert_batches_only(series, what)
                assert series[-1][0] == THRESHOLD, (what, series)  # the fourth review waits for its batch
            ids = [
                a["assignment_id"]
                for a in ok(await evaluation.get(f"{BASE}/assignments", params={"limit": 500}, headers=admin(s)))
            ]
            for phase in ("scored", "closed"):
                if phase == "closed":
                    ok(await evaluation.post(f"{BASE}/calibration/close", headers=admin(s)))
                for r in REVIEWEES:
                    headers = reviewee_headers(s, r)
                    values = {"cycle_id": [CYCLE], "employee_id": [r.employee_id], "assignment_id": ids}
                    found = Sweep(r, await sweep(evaluation, r, headers, values))
                    found.bodies += await own_review_probes(evaluation, s, r, headers)
                    found.assert_no_rater()
                    assert found.answered(f"{BASE}/reviews/{r.employee_id}/summary"), r.kind
            final = ok(await evaluation.get(f"{BASE}/final-results", headers=stages.workflow()))
            matrix = ok(await evaluation.get(f"{BASE}/collaboration-matrix", headers=admin(s)))
            # the audit log never shows HR and ops reviewees their own result (evaluation never does)
            for r in (x for x in REVIEWEES if x.kind in ("hr", "ops")):
                audit = ok(
                    await evaluation.get(
                        "/v1/audit",
                        params={"entity": "evaluation_result", "limit": 500, "entity_id": f"{CYCLE}/{r.employee_id}"},
                        headers=reviewee_headers(s, r),
                    )
                )
                own = [e for e in audit["items"] if e["after"] and "breakdown" in e["after"]]
                assert own, r.kind
                assert all(e["after"]["breakdown"] == "[redacted]" for e in own), r.kind
                assert all(e["after"]["rating"] == "[redacted]" for e in own if "rating" in e["after"]), r.kind
        await feedback_and_results(stages, final, matrix)


async def feedback_and_results(stages: Stages, final: dict[str, Any], matrix: dict[str, Any]) -> None:
    """Results handed on and released; every feedback and results endpoint swept as each reviewee."""
    s, h = stages.settings, stages.workflow()
    org = world_org()
    for service in ("feedback", "results"):
        await stages.call(service, "PUT", f"{BASE}/participants", h, json=org)
        await stages.call(service, "PUT", f"{BASE}/results", h, json=final)
    await stages.call("results", "PUT", f"{BASE}/collaboration", h, json=matrix)
    policy = {"development": {"ratings": [], "below_score": 5.0}}  # everyone gets a development plan
    await stages.call("results", "PUT", f"{BASE}/policy", h, json=policy)
    await stages.call("results", "PUT", f"{BASE}/pools/sales", h, json={"amount_cents": 100_000, "currency": "EUR"})
    await stages.call("results", "POST", f"{BASE}/development-plans/generate", h)
    await stages.call("feedback", "POST", f"{BASE}/release", h)
    appeals: dict[str, str] = {}
    for r in REVIEWEES:
        appeal = await stages.call(
            "feedback",
            "POST",
            f"{BASE}/appeals",
            reviewee_headers(s, r),
            201,
            json={"reason": "my peers did not see my work"},
        )
        appeals[r.kind] = str(appeal["id"])
    for service in ("feedback", "results"):
        async with stages.client(service) as client:
            client.app = stages.apps[service]  # type: ignore[attr-defined]
            for r in REVIEWEES:
                values = {
                    "cycle_id": [CYCLE],
                    "employee_id": [r.employee_id],
                    "appeal_id": [appeals[r.kind]],
                    "department_id": [r.department_id],
                    **{name: ["1"] for name in ("one_on_one_id", "item_id", "plan_id", "request_id")},
                }
                found = Sweep(r, await sweep(client, r, reviewee_headers(s, r), values))
                found.assert_no_rater()
                if service == "results" and ("hr_admin" in r.roles or "ops" in r.roles or "manager" in r.roles):
                    for export in ("collaboration-report", "collaboration-report.csv", "collaboration-report.html"):
                        assert found.answered(f"{BASE}/{export}"), (r.kind, export)
                if "hr_admin" in r.roles or "ops" in r.roles:
                    assert found.answered("/v1/audit"), (service, r.kind)


# -- focused rules --------------------------------------------------------------------------------
async def test_nobody_who_oversees_a_reviewee_is_their_anonymous_rater(settings: Settings, database_url: str) -> None:
    async with api_client(evaluation_app, settings, database_url) as client:
        await setup_cycle(client, settings)
        manager = person(settings, "e-m", "manager")
        body = ok(await nominate(client, manager, reviewee="e-r", rater="e-m"), 422)
        assert body["field"] == "rater_id" and "manages 'e-r'" in body["detail"]
        # HR cannot either: the head of sales, or the manager of e-p1, as an anonymous rater
        body = ok(await nominate(client, hr(settings), reviewee="e-r", rater="e-sh"), 422)
        assert "heads their department" in body["detail"]
        assert (await nominate(client, hr(settings), reviewee="e-p1", rater="e-m")).status_code == 422
        # a colleague is fine, and the manager still writes the manager review
        ok(await nominate(client, manager, reviewee="e-r", rater="e-p1"), 201)


async def test_one_peer_review_is_read_by_its_rater_and_hr_unless_the_template_attributes_it(
    settings: Settings, database_url: str
) -> None:
    async with api_client(evaluation_app, settings, database_url) as client:
        await setup_cycle(client, settings)
        ok(await nominate(client, person(settings, "e-m", "manager"), reviewee="e-r", rater="e-p1"), 201)
        await submit(
            client, settings, rater="e-p1", reviewee="e-r", relation="peer", collab=2, delivery=3, comment="blunt"
        )
        rows = ok(await client.get(f"{BASE}/assignments", params={"relation": "peer"}, headers=hr(settings)))
        url = f"{BASE}/assignments/{rows[0]['assignment_id']}"
        assert ok(await client.get(url, headers=hr(settings)))["comment"] == "blunt"
        mine = ok(await client.get(url, headers=person(settings, "e-p1")))
        assert (mine["comment"], mine["shown_to_managers"]) == ("blunt", "aggregate")
        for headers in (
            person(settings, "e-m", "manager"),
            person(settings, "e-sh", "dept_head", "manager"),
            auth(settings, "ops", sub="ops-olli"),
        ):
            assert (await client.get(url, headers=headers)).status_code == 404
        # the summary still gives them the aggregate once the threshold is reached (here: not yet)
        summary = ok(await client.get(f"{BASE}/reviews/e-r/summary", headers=person(settings, "e-m", "manager")))
        assert aggregate(summary) == (0, (None, {}, []))


async def test_a_template_may_attribute_peer_reviews_to_managers_and_says_so(
    settings: Settings, database_url: str
) -> None:
    async with api_client(evaluation_app, settings, database_url) as client:
        ok(await client.put(f"{BASE}/participants", json=org_with_hr(), headers=hr(settings)))
        ok(
            await client.put(
                f"{BASE}/config", json={**CONFIG, "peer_visibility_for_managers": "attributed"}, headers=hr(settings)
            )
        )
        ok(await nominate(client, person(settings, "e-m", "manager"), reviewee="e-r", rater="e-p1"), 201)
        await submit(
            client, settings, rater="e-p1", reviewee="e-r", relation="peer", collab=2, delivery=3, comment="blunt"
        )
        listed = ok(await client.get(f"{BASE}/assignments", headers=person(settings, "e-p1")))
        assert [a["shown_to_managers"] for a in listed] == ["attributed"]  # the rater was told before writing
        url = f"{BASE}/assignments/{listed[0]['assignment_id']}"
        seen = ok(await client.get(url, headers=person(settings, "e-m", "manager")))
        assert (seen["rater_id"], seen["comment"], seen["shown_to_managers"]) == ("e-p1", "blunt", "attributed")
        assert (await client.get(url, headers=auth(settings, "ops", sub="ops-olli"))).status_code == 404
        assert (await client.get(url, headers=person(settings, "e-r", "manager"))).status_code == 404


async def test_the_anonymity_threshold_locks_once_assignments_exist(settings: Settings, database_url: str) -> None:
    async with api_client(evaluation_app, settings, database_url) as client:
        h = hr(settings)
        ok(await client.put(f"{BASE}/participants", json=org_with_hr(), headers=h))
        ok(await client.put(f"{BASE}/config", json={**CONFIG, "peer_anonymity_threshold": 4}, headers=h))
        ok(await client.put(f"{BASE}/config", json=CONFIG, headers=h))  # free before evaluation starts
        ok(await client.post(f"{BASE}/assignments/generate", headers=h))
        changes: list[tuple[dict[str, Any], str]] = [
            ({"peer_anonymity_threshold": 2}, "peer_anonymity_threshold"),
            ({"peer_anonymity_threshold": 4}, "peer_anonymity_threshold"),
            ({"peer_visibility_for_managers": "attributed"}, "peer_visibility_for_managers"),
        ]
        for change, field in changes:
            body = ok(await client.put(f"{BASE}/config", json={**CONFIG, **change}, headers=h), 409)
            assert body["field"] == field and "review assignments exist" in body["detail"]
        # tightening is fine, loosening back is not
        ok(await client.put(f"{BASE}/config", json={**CONFIG, "peer_visibility": "counts_only"}, headers=h))
        body = ok(await client.put(f"{BASE}/config", json=CONFIG, headers=h), 409)
        assert body["field"] == "peer_visibility"
        # a template push that would lower it is not applied either
        pushed = ok(
            await client.put(f"{BASE}/config/template", json={**CONFIG, "peer_anonymity_threshold": 2}, headers=h)
        )
        assert pushed["applied"] is False
        assert ok(await client.get(f"{BASE}/config", headers=h))["peer_anonymity_threshold"] == 3


def test_batches_are_whole_multiples_of_the_threshold_in_submission_order() -> None:
    from datetime import UTC, datetime, timedelta

    @dataclass
    class Row:
        assignment_id: str
        submitted_at: datetime | None

    start = datetime(2026, 6, 1, tzinfo=UTC)
    rows = [Row(f"a{i}", start + timedelta(minutes=10 - i)) for i in range(7)]  # a6 submitted first
    assert [r.assignment_id for r in counted(rows, 3)] == ["a6", "a5", "a4", "a3", "a2", "a1"]
    assert counted(rows[:2], 3) == []
    assert len(counted(rows[:5], 3)) == 3


async def test_nobody_reads_their_own_rating_before_release(settings: Settings, database_url: str) -> None:
    async with stage_stack(settings, database_url) as stages:
        s = stages.settings
        async with stages.client("evaluation") as evaluation:
            await setup_cycle(evaluation, s)
        await stages.call("evaluation", "PUT", f"{BASE}/participants", stages.workflow(), json=org_with_hr())
        await stages.call("evaluation", "POST", f"{BASE}/scores/compute", stages.workflow())
        adjust = {"employee_id": "e-hr", "new_rating": "exceeds", "reason": "calibration panel"}
        await stages.call("evaluation", "POST", f"{BASE}/calibration/adjustments", stages.workflow(), 201, json=adjust)
        await stages.call("evaluation", "POST", f"{BASE}/calibration/close", stages.workflow())
        me = hr_person(s)  # the HR person, with HR's roles, is also an employee with a result
        employee = person(s, "e-r")
        # evaluation shows nobody their own rating, closed or not: 403 for the one, left out of the lists
        for headers, employee_id in ((employee, "e-r"), (me, "e-hr")):
            body = await stages.call("evaluation", "GET", f"{BASE}/results/{employee_id}", headers, 403)
            assert "feedback service once released" in body["detail"]
        assert await stages.call("evaluation", "GET", f"{BASE}/results", employee) == []
        listed = await stages.call("evaluation", "GET", f"{BASE}/results", me, params={"limit": 500})
        assert "e-hr" not in {r["employee_id"] for r in listed} and listed
        final = await stages.call("evaluation", "GET", f"{BASE}/final-results", me)
        assert "e-hr" not in {r["employee_id"] for r in final["results"]} and final["results"]
        trail = await stages.call("evaluation", "GET", f"{BASE}/calibration/adjustments", me)
        assert trail == []
        # the workflow's token hands everyone's on; feedback holds them unreleased
        final = await stages.call("evaluation", "GET", f"{BASE}/final-results", stages.workflow())
        assert HR_PERSON["employee_id"] in {r["employee_id"] for r in final["results"]}
        await stages.call("feedback", "PUT", f"{BASE}/participants", stages.workflow(), json=org_with_hr())
        await stages.call("feedback", "PUT", f"{BASE}/results", stages.workflow(), json=final)
        await stages.call("feedback", "GET", f"{BASE}/results/e-hr", me, 404)
        listed = await stages.call("feedback", "GET", f"{BASE}/results", me, params={"limit": 500})
        assert "e-hr" not in {r["employee_id"] for r in listed} and listed  # HR sees the others' before release
        await stages.call("feedback", "POST", f"{BASE}/release", stages.workflow())
        mine = await stages.call("feedback", "GET", f"{BASE}/results/e-hr", me)
        assert (mine["status"], mine["rating"]) == ("released", "exceeds")
