"""The committee service against the real services, in process: an organisation seeded through the
cycles, tracking, evaluation and feedback APIs, then a committee whose agenda, decisions, calibration
session and improvement suggestions are asserted item by item against that data, in both languages.

The harness here (``committee_stack``, ``seed_organisation``) is shared by ``test_committee_quarter``.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition
from services.committee.app import create_app as committee_app
from services.committee.models import CommitteeAudit, CommitteeOutbox
from services.committee.temporal import CommitteeWorkflows
from services.common.settings import Settings
from services.cycles.app import create_app as cycles_app
from services.cycles.service import sample_template
from services.evaluation.app import create_app as evaluation_app
from services.feedback.app import create_app as feedback_app
from services.results.app import create_app as results_app
from services.tracking.app import create_app as tracking_app
from services.tracking.ingest import RawMessage, ingest_batch, load_catalog
from services.tracking.models import TrackingKpi
from tests.support import auth

SERVICES = ("cycles", "tracking", "evaluation", "feedback", "results", "committee")


# -- the organisation ------------------------------------------------------------------------------
DEPARTMENTS = [("hr", "HR", "hana"), ("sales", "Sales", "sam"), ("finance", "Finance", "fiona"), ("it", "IT", "ivan")]
PEOPLE = [  # employee, department, manager
    ("hana", "hr", None),
    ("harry", "hr", "hana"),
    ("sam", "sales", None),
    ("alice", "sales", "sam"),
    ("bob", "sales", "sam"),
    ("carol", "sales", "sam"),
    ("fiona", "finance", None),
    ("frank", "finance", "fiona"),
    ("ivan", "it", None),
    ("olga", "it", "ivan"),
]
DEPARTMENT_OF = {e: d for e, d, _ in PEOPLE}
MEMBERS = [  # the committee: one seat per function
    {"employee_id": "hana", "name": "Hana", "department_id": "hr", "function": "hr", "role": "secretary"},
    {"employee_id": "sam", "name": "Sam", "department_id": "sales", "function": "business", "role": "chair"},
    {"employee_id": "fiona", "name": "Fiona", "department_id": "finance", "function": "finance", "role": "member"},
    {"employee_id": "ivan", "name": "Ivan", "department_id": "it", "function": "it", "role": "member"},
]
EVALUATION_CONFIG: dict[str, Any] = {
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
        {"competency_id": "delivery", "name": "Delivery", "scale_min": 1, "scale_max": 5},
    ],
    "weights": {"manager": 100},
    "formula": "w_manager * manager",
    "calibration": {"limits": [{"band": "outstanding", "max_percent": 20}], "min_group_size": 1},
    "deviation_z_threshold": 0.8,
}
MANAGER_REVIEWS = {  # reviewee -> (collab, delivery): sales rates high, IT low
    "alice": (3, 5),
    "bob": (5, 5),
    "carol": (5, 5),
    "olga": (2, 2),
    "frank": (3, 3),
    "harry": (3, 3),
}
COLLABORATION = [  # rater, rated, (responsiveness, data quality, reliability), comment
    ("sales", "it", (2, 3, 4), "Responses are slow and the numbers are often wrong"),
    ("finance", "it", (2, 3, 3), "响应太慢，报表口径不一致"),
    ("it", "sales", (4, 3, 4), "Good partners"),
    ("hr", "finance", (5, 5, 5), "Always on time"),
    ("finance", "hr", (4, 4, 4), None),
]


def hr(settings: Settings) -> dict[str, str]:
    return auth(settings, "hr_admin", "dept_head", sub="hana", employee_id="hana", department_id="hr")


def person(settings: Settings, employee_id: str, *roles: str) -> dict[str, str]:
    return auth(
        settings,
        *(roles or ("employee",)),
        sub=employee_id,
        employee_id=employee_id,
        department_id=DEPARTMENT_OF[employee_id],
    )


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


# -- the stack -------------------------------------------------------------------------------------
class InProcess(httpx.AsyncBaseTransport):
    """Routes each request to the in-process app its host names (``http://<service>.test``)."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps.get(request.url.host.removesuffix(".test"))
        if app is None:
            raise httpx.ConnectError(f"{request.url.host} is not running", request=request)
        return await app.handle_async_request(request)


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient
    apps: dict[str, FastAPI]
    cycle_id: str = ""
    kpi_ids: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.http._transport, base_url=f"http://{service}.test", timeout=60)


@asynccontextmanager
async def committee_stack(
    settings: Settings, tmp_path: Path, committee_db: str, *, workflows: CommitteeWorkflows | None = None
) -> AsyncIterator[Stack]:
    """Every service the committee reads, and the committee, each on its own database, in process."""
    urls = {f"{name}_url": f"http://{name}.test" for name in (*SERVICES, "goals")}
    # Nothing listens on the discard port: the cycles service answers its status route with 503 at once.
    base = settings.model_copy(update=urls | {"temporal_address": "127.0.0.1:9"})
    transport = InProcess()
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, timeout=60))
        factories = {
            "cycles": functools.partial(cycles_app, http_client=http),
            "tracking": functools.partial(tracking_app, run_consumer=False, staleness_interval=0),
            "evaluation": evaluation_app,
            "feedback": feedback_app,
            "results": results_app,
            "committee": functools.partial(committee_app, http_client=http, workflows=workflows),
        }
        apps: dict[str, FastAPI] = {}
        for name, factory in factories.items():
            database = committee_db if name == "committee" else f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
            app = factory(base.model_copy(update={"database_url": database}))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport.apps[name] = httpx.ASGITransport(app=app)
            apps[name] = app
        yield Stack(settings=base, http=http, apps=apps)


# -- seeding through the services' APIs ------------------------------------------------------------
def _kpi(kpi_id: str, metric: str, **fields: Any) -> KpiDefinition:
    values: dict[str, Any] = {
        "kpi_id": kpi_id,
        "level": GoalLevel.DEPARTMENT,
        "name": fields.pop("name", kpi_id),
        "metric": metric,
        "unit": "x",
        "aggregation": Aggregation.SUM,
        "direction": Direction.HIGHER_IS_BETTER,
        "start_value": 0,
        "target_value": 100,
        "owner_department_id": metric.split(".")[0],
        "update_frequency_hours": 24,
        "department_id": metric.split(".")[0],
    }
    return KpiDefinition(**(values | fields))


def _individual(kpi_id: str, employee_id: str, **fields: Any) -> KpiDefinition:
    return _kpi(
        kpi_id,
        "sales.deals",
        level=GoalLevel.INDIVIDUAL,
        employee_id=employee_id,
        department_id=None,
        target_value=50,
        **fields,
    )


def _event(metric: str, value: float, occurred_at: datetime, employee_id: str | None = None) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "source": "test",
        "department_id": metric.split(".")[0],
        "metric": metric,
        "value": value,
        "unit": "x",
        "occurred_at": occurred_at.isoformat(),
        **({"employee_id": employee_id} if employee_id else {}),
    }


async def _seed_cycle(stack: Stack) -> str:
    h = hr(stack.settings)
    async with stack.client("cycles") as cycles:
        org = {
            "departments": [
                {"department_id": d, "name": n, "parent_id": None, "head_employee_id": head}
                for d, n, head in DEPARTMENTS
            ],
            "employees": [
                {
                    "employee_id": e,
                    "name": e.title(),
                    "email": f"{e}@example.test",
                    "department_id": d,
                    "manager_id": m,
                    "job_title": "Head" if m is None else "Specialist",
                    "grade": "G5",
                }
                for e, d, m in PEOPLE
            ],
        }
        ok(
            await cycles.post(
                "/v1/org/import", content=json.dumps(org), headers=h | {"content-type": "application/json"}
            )
        )
        template = ok(
            await cycles.post("/v1/templates", json=sample_template().model_dump(mode="json"), headers=h), 201
        )
        today = datetime.now(UTC).date()
        cycle = ok(
            await cycles.post(
                "/v1/cycles",
                json={
                    "name": "FY committee",
                    "template_id": template["template_id"],
                    "period_start": (today - timedelta(days=30)).isoformat(),
                    "period_end": (today + timedelta(days=330)).isoformat(),
                    "department_ids": [d for d, _, _ in DEPARTMENTS],
                },
                headers=h,
            ),
            201,
        )
        started = ok(await cycles.post(f"/v1/cycles/{cycle['cycle_id']}/start", headers=h))
        delivered = {d["service"] for d in started["distribution"] if d["status"] == "delivered"}
        assert {"tracking", "evaluation", "feedback", "results"} <= delivered, started["distribution"]
        return str(cycle["cycle_id"])


async def _seed_tracking(stack: Stack, cycle_id: str, today: date) -> None:
    """KPIs: sales revenue at 40%, IT uptime at 95%, a finance report never sent (stale for weeks);
    alice's deals at 20% and falling, bob's never reported (stale, no check-in), carol's at 90%."""
    catalog = KpiCatalog(
        cycle_id=cycle_id,
        period_start=today - timedelta(days=30),
        period_end=today + timedelta(days=330),
        kpis=[
            _kpi("sales-revenue", "sales.revenue", name="Revenue"),
            _kpi("it-uptime", "it.uptime", name="Uptime", aggregation=Aggregation.AVG),
            _kpi("finance-report", "finance.report", name="Cost report", aggregation=Aggregation.LAST),
            _individual("deals-alice", "alice", name="Deals (Alice)", update_frequency_hours=1),
            _individual("deals-bob", "bob", name="Deals (Bob)"),
            _individual("deals-carol", "carol", name="Deals (Carol)"),
        ],
    )
    async with stack.client("tracking") as tracking:
        ok(
            await tracking.put(
                f"/v1/cycles/{cycle_id}/kpis", json=catalog.model_dump(mode="json"), headers=hr(stack.settings)
            )
        )
    now = datetime.now(UTC)
    events = [
        _event("sales.revenue", 40, now - timedelta(minutes=5)),
        _event("it.uptime", 95, now - timedelta(minutes=5)),
        # alice: one bucket an hour, falling: 6, 3, 1
        *(_event("sales.deals", v, now - timedelta(hours=h), "alice") for h, v in ((3, 6), (2, 3), (1, 1))),
        _event("sales.deals", 45, now - timedelta(minutes=5), "carol"),
    ]
    engine = stack.apps["tracking"].state.engine
    async with engine.connect() as conn, conn.begin():
        index = await load_catalog(conn)
        messages = [RawMessage("metrics.v1", 0, i, None, json.dumps(e).encode()) for i, e in enumerate(events)]
        await ingest_batch(conn, messages, catalog=index)
    # Three weeks have passed for the KPIs nobody reports on: registered long ago, never fed, never checked in.
    async with engine.begin() as conn:
        await conn.execute(
            update(TrackingKpi)
            .where(TrackingKpi.cycle_id == cycle_id, TrackingKpi.kpi_id.in_(["finance-report", "deals-bob"]))
            .values(registered_at=now - timedelta(days=21))
        )


async def _seed_evaluation(stack: Stack, cycle_id: str) -> None:
    h = hr(stack.settings)
    base = f"/v1/cycles/{cycle_id}"
    async with stack.client("evaluation") as evaluation:
        ok(await evaluation.put(f"{base}/config", json=EVALUATION_CONFIG, headers=h))
        ok(await evaluation.put(f"{base}/goals", json={"cycle_id": cycle_id, "goals": []}, headers=h))
        ok(await evaluation.post(f"{base}/assignments/generate", headers=h))
        for a, b in (("sales", "it"), ("finance", "it"), ("hr", "finance")):
            ok(
                await evaluation.post(f"{base}/collaborations", json={"department_a": a, "department_b": b}, headers=h),
                201,
            )
        for rater, rated, (resp, quality, reliability), comment in COLLABORATION:
            body = {
                "rater_department_id": rater,
                "rated_department_id": rated,
                "responsiveness": resp,
                "data_quality": quality,
                "reliability": reliability,
                "comment": comment,
            }
            ok(await evaluation.put(f"{base}/collaboration-ratings", json=body, headers=h))
        for reviewee, (collab, delivery) in MANAGER_REVIEWS.items():
            manager = next(m for e, _, m in PEOPLE if e == reviewee)
            assert manager is not None
            rows = ok(
                await evaluation.get(
                    f"{base}/assignments",
                    params={"rater_id": manager, "reviewee_id": reviewee, "relation": "manager"},
                    headers=h,
                )
            )
            ok(
                await evaluation.post(
                    f"{base}/assignments/{rows[0]['assignment_id']}/review",
                    json={"ratings": {"collab": collab, "delivery": delivery}},
                    headers=person(stack.settings, manager, "manager"),
                )
            )
        ok(await evaluation.post(f"{base}/scores/compute", headers=h))


async def _seed_feedback(stack: Stack, cycle_id: str) -> None:
    """Olga's result released, and her appeal open with HR."""
    h = hr(stack.settings)
    results = {
        "cycle_id": cycle_id,
        "scale_min": 1,
        "scale_max": 5,
        "results": [
            {"employee_id": "olga", "department_id": "it", "manager_id": "ivan", "final_score": 2, "rating": "below"}
        ],
    }
    async with stack.client("feedback") as feedback:
        ok(await feedback.put(f"/v1/cycles/{cycle_id}/results", json=results, headers=h))
        ok(await feedback.put(f"/v1/cycles/{cycle_id}/config", json={"calibration_closed": True}, headers=h))
        ok(await feedback.post(f"/v1/cycles/{cycle_id}/release", headers=h))
        reason = {"reason": "My delivery rating ignores the migration I led."}
        ok(
            await feedback.post(f"/v1/cycles/{cycle_id}/appeals", json=reason, headers=person(stack.settings, "olga")),
            201,
        )


async def seed_organisation(stack: Stack) -> str:
    """The cycle and its data in every service; returns the cycle id."""
    cycle_id = await _seed_cycle(stack)
    await _seed_tracking(stack, cycle_id, datetime.now(UTC).date())
    await _seed_evaluation(stack, cycle_id)
    await _seed_feedback(stack, cycle_id)
    stack.cycle_id = cycle_id
    return cycle_id


async def create_committee(stack: Stack, **extra: Any) -> dict[str, Any]:
    body = {"committee_id": "perf", "name": "Performance committee", "members": MEMBERS, **extra}
    async with stack.client("committee") as committee:
        return dict(ok(await committee.post("/v1/committees", json=body, headers=hr(stack.settings)), 201))


async def calibrate_in_session(
    stack: Stack, meeting_id: str, decision_id: str, reason: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Open a calibration session for ``decision_id`` and move olga to 3.0 in it: the session, the
    committee's link, and evaluation's audit-trail entry of the adjustment."""
    h = hr(stack.settings)
    async with stack.client("committee") as committee, stack.client("evaluation") as evaluation:
        url = f"/v1/committees/perf/meetings/{meeting_id}/calibration-sessions"
        session = ok(await committee.post(url, json={"decision_id": decision_id}, headers=h), 201)
        body = {"employee_id": "olga", "new_score": 3.0, "reason": reason}
        url = f"/v1/calibration-sessions/{session['session_id']}/adjustments"
        link = ok(await committee.post(url, json=body, headers=h), 201)
        trail = ok(await evaluation.get(f"/v1/cycles/{stack.cycle_id}/calibration/adjustments", headers=h))
    (entry,) = [a for a in trail if a["adjustment_id"] == link["adjustment_id"]]
    return session, link, entry


# -- the tests -------------------------------------------------------------------------------------
async def test_committee_agenda_decisions_and_calibration_from_real_data(
    settings: Settings, tmp_path: Path, database_url: str
) -> None:
    async with committee_stack(settings, tmp_path, database_url) as stack:
        cycle_id = await seed_organisation(stack)
        h = hr(stack.settings)
        async with stack.client("committee") as committee, stack.client("evaluation") as evaluation:
            # -- a committee needs a seat for each function; a cycle that does not exist is named ---------
            refused = await committee.post(
                "/v1/committees", json={"name": "Lopsided", "members": MEMBERS[:2]}, headers=h
            )
            assert refused.status_code == 422 and refused.json()["field"] == "members"
            assert "no seat for ['finance', 'it']" in refused.json()["detail"]
            ghost = await committee.post(
                "/v1/committees", json={"name": "Ghost", "members": MEMBERS, "cycle_id": "no-such-cycle"}, headers=h
            )
            assert ghost.status_code == 422 and ghost.json()["field"] == "cycle_id"
            created = await create_committee(stack)
            assert created["standing"] is True and created["schedule_state"] == "none"
            assert {m["function"] for m in created["members"]} == {"hr", "business", "finance", "it"}
            outsider = auth(stack.settings, "dept_head", sub="x", employee_id="x")
            assert (await committee.get("/v1/committees/perf", headers=outsider)).status_code == 404
            assert (
                await committee.get("/v1/committees/perf", headers=person(stack.settings, "olga"))
            ).status_code == 403

            # -- an agenda for a cycle that does not exist is refused, naming the field -------------------
            missing = await committee.post("/v1/committees/perf/meetings", json={"cycle_id": "nope"}, headers=h)
            assert missing.status_code == 422 and missing.json()["field"] == "cycle_id"

            # -- the meeting's agenda, item by item against the seeded data -----------------------------
            held_at = datetime.now(UTC) + timedelta(days=30)  # HR's appeal deadline has passed by then
            chair = person(stack.settings, "sam", "dept_head", "manager")
            meeting = ok(
                await committee.post(
                    "/v1/committees/perf/meetings",
                    json={"cycle_id": cycle_id, "held_at": held_at.isoformat()},
                    headers=chair | {"Idempotency-Key": "meeting-1"},
                ),
                201,
            )
            again = await committee.post(
                "/v1/committees/perf/meetings",
                json={"cycle_id": cycle_id},
                headers=chair | {"Idempotency-Key": "meeting-1"},
            )
            assert again.status_code == 200 and again.json()["meeting_id"] == meeting["meeting_id"]
            deviation = ok(await evaluation.get(f"/v1/cycles/{cycle_id}/calibration/deviation", headers=h))
            distribution = ok(await evaluation.get(f"/v1/cycles/{cycle_id}/calibration/distribution", headers=h))
            flagged = [
                f"rater_deviation:{kind}:{g['group_id']}"
                for kind, groups in (("department", deviation["by_department"]), ("manager", deviation["by_manager"]))
                for g in groups
                if g["flag"]
            ]
            assert set(flagged) == {
                "rater_deviation:department:sales",
                "rater_deviation:department:it",
                "rater_deviation:manager:sam",
                "rater_deviation:manager:ivan",
            }
            items = {item["item_id"]: item for item in meeting["agenda"]}
            assert list(items) == [
                "kpi_off_track:sales",
                "stale_data:finance",
                "stale_data:sales",
                "weak_collaboration:finance|it",
                "weak_collaboration:it|sales",
                "calibration_distribution",
                *flagged,
                "open_appeals",
                "source_unavailable:cycles.status",
            ]
            assert meeting["sources"]["cycles.status"] != "ok"
            assert {k: v for k, v in meeting["sources"].items() if k != "cycles.status"} == {
                "tracking.progress": "ok",
                "tracking.stale_kpis": "ok",
                "evaluation.collaboration_matrix": "ok",
                "evaluation.distribution": "ok",
                "evaluation.deviation": "ok",
                "feedback.appeals": "ok",
            }
            off_track = items["kpi_off_track:sales"]
            assert off_track["evidence"]["kpis"] == [
                {"kpi_id": "sales-revenue", "name": "Revenue", "attainment_pct": 40.0, "trend": "flat"}
            ]
            assert off_track["title"] == {
                "en": "Sales: 1 KPI(s) below 70% of target",
                "zh_Hans": "Sales：1项KPI(关键绩效指标)低于目标的70%",
            }
            assert off_track["links"] == [
                {"service": "tracking", "path": f"/v1/cycles/{cycle_id}/kpis/sales-revenue/progress"}
            ]
            assert [k["kpi_id"] for k in items["stale_data:finance"]["evidence"]["kpis"]] == ["finance-report"]
            assert [k["kpi_id"] for k in items["stale_data:sales"]["evidence"]["kpis"]] == ["deals-bob"]
            weakest = items["weak_collaboration:finance|it"]["evidence"]
            assert weakest["overall"] == round((2 + 3 + 3) / 3, 4) and weakest["weakest_dimension"] == "responsiveness"
            assert weakest["change"] is None  # the committee's first meeting
            assert items["weak_collaboration:it|sales"]["evidence"]["overall"] == pytest.approx(
                (3 + 11 / 3) / 2, abs=1e-3
            )
            assert items["calibration_distribution"]["evidence"]["violations"] == distribution["violations"]
            assert items["rater_deviation:department:it"]["evidence"]["flag"] == "strict"
            assert items["rater_deviation:department:sales"]["title"]["zh_Hans"].startswith("Sales为宽松评分人")
            assert items["open_appeals"]["evidence"]["open"] == 1 and items["open_appeals"]["evidence"]["overdue"] == 1
            assert items["open_appeals"]["department_ids"] == ["it"]

            # -- decisions: owner and due date are required and checked ---------------------------------
            decisions_url = f"/v1/committees/perf/meetings/{meeting['meeting_id']}/decisions"
            due = (held_at + timedelta(days=14)).isoformat()
            no_owner = await committee.post(decisions_url, json={"title": "Fix the feed", "due_at": due}, headers=h)
            assert no_owner.status_code == 422 and no_owner.json()["errors"][0]["field"] == "owner_id"
            no_due = await committee.post(decisions_url, json={"title": "Fix the feed", "owner_id": "olga"}, headers=h)
            assert no_due.status_code == 422 and no_due.json()["errors"][0]["field"] == "due_at"
            stranger = await committee.post(
                decisions_url, json={"title": "Fix the feed", "owner_id": "zed", "due_at": due}, headers=h
            )
            assert stranger.status_code == 422 and stranger.json()["field"] == "owner_id"
            early = await committee.post(
                decisions_url,
                json={"title": "Fix the feed", "owner_id": "olga", "due_at": datetime.now(UTC).isoformat()},
                headers=h,
            )
            assert early.status_code == 422 and early.json()["field"] == "due_at"
            decision = ok(
                await committee.post(
                    decisions_url,
                    json={
                        "title": "Restore the finance report feed",
                        "owner_id": "olga",
                        "due_at": due,
                        "agenda_item_id": "stale_data:finance",
                    },
                    headers=h,
                ),
                201,
            )
            assert decision["owner_department_id"] == "it" and decision["tracking"] == "untracked"
            mine = ok(await committee.get("/v1/decisions/mine", headers=person(stack.settings, "olga")))
            assert [d["decision_id"] for d in mine] == [decision["decision_id"]]
            assert ok(await committee.get("/v1/decisions/mine", headers=person(stack.settings, "bob"))) == []
            decision_url = f"/v1/decisions/{decision['decision_id']}"
            assert (await committee.get(decision_url, headers=person(stack.settings, "bob"))).status_code == 404
            cancel = await committee.post(
                decision_url + "/status", json={"status": "cancelled"}, headers=person(stack.settings, "olga")
            )
            assert cancel.status_code == 409 and "only the committee" in cancel.json()["detail"]
            progress = ok(
                await committee.post(
                    decision_url + "/status", json={"status": "in_progress"}, headers=person(stack.settings, "olga")
                )
            )
            assert progress["status"] == "in_progress"
            snapshot = ok(await committee.get(decision_url + "/snapshot", headers=h))
            assert snapshot["chair_id"] == "sam" and snapshot["owner_department_id"] == "it"

            # -- calibration as a committee session: its adjustments reference it -----------------------
            session, adjusted, recorded = await calibrate_in_session(
                stack, meeting["meeting_id"], decision["decision_id"], "strict rater, evidence of the migration"
            )
            assert f"calibration session {session['session_id']}" in recorded["reason"]
            assert f"decision {decision['decision_id']}" in recorded["reason"]
            assert recorded["after_score"] == 3.0 and adjusted["before_score"] == recorded["before_score"]
            read = ok(await committee.get(f"/v1/calibration-sessions/{session['session_id']}", headers=h))
            assert [a["adjustment_id"] for a in read["adjustments"]] == [adjusted["adjustment_id"]]
            assert read["adjustments"][0]["decision_id"] == decision["decision_id"]
            # the meeting lists its sessions (with their adjustments), for those who may open one
            listed_url = f"/v1/committees/perf/meetings/{meeting['meeting_id']}/calibration-sessions"
            listed = ok(await committee.get(listed_url, headers=h))
            assert [x["session_id"] for x in listed] == [session["session_id"]] and listed[0] == read
            stranger = await committee.get(listed_url, headers=person(stack.settings, "olga"))
            assert stranger.status_code == 403, stranger.text
            missing = await committee.get("/v1/committees/perf/meetings/m-nope/calibration-sessions", headers=h)
            assert missing.status_code == 404, missing.text

            # -- minutes; every change is in the audit log, and the events in the outbox ----------------
            strangers = await committee.put(
                f"/v1/committees/perf/meetings/{meeting['meeting_id']}/minutes",
                json={"minutes": "Agreed.", "attendees": ["olga"]},
                headers=h,
            )
            assert strangers.status_code == 422 and strangers.json()["field"] == "attendees"
            ok(
                await committee.put(
                    f"/v1/committees/perf/meetings/{meeting['meeting_id']}/minutes",
                    json={"minutes": "Agreed: IT restores the finance feed.", "attendees": ["hana", "sam", "ivan"]},
                    headers=h,
                )
            )
            audit = ok(await committee.get("/v1/audit", params={"entity": "committee_decision"}, headers=h))
            assert {e["action"] for e in audit["items"]} >= {"create", "update"}
        async with stack.apps["committee"].state.sessions() as db:
            events = (await db.scalars(select(CommitteeOutbox.event_type).order_by(CommitteeOutbox.id))).all()
            audited = set((await db.scalars(select(CommitteeAudit.entity))).all())
        assert events == [
            "CommitteeCreated",
            "CommitteeMeetingOpened",
            "CommitteeDecisionRecorded",
            "CommitteeDecisionStatusChanged",
            "CommitteeCalibrationSessionOpened",
            "CommitteeCalibrationAdjustmentLinked",
            "CommitteeMinutesRecorded",
        ]
        assert {"committee_committee", "committee_member", "committee_meeting", "committee_decision"} <= audited


async def test_improvement_suggestions_for_a_person_a_team_and_a_department(
    settings: Settings, tmp_path: Path, database_url: str
) -> None:
    async with committee_stack(settings, tmp_path, database_url) as stack:
        cycle_id = await seed_organisation(stack)
        base = f"/v1/cycles/{cycle_id}/suggestions"
        async with stack.client("committee") as committee:
            # -- alice: her falling deals, her collaboration against her team's ---------------------------
            alice = ok(await committee.get(f"{base}/people/alice", headers=person(stack.settings, "alice")))
            assert [s["suggestion_id"] for s in alice["suggestions"]] == [
                "kpi_gap:deals-alice",
                "competency_gap:collab",
            ]
            gap, competency = alice["suggestions"]
            assert gap["text"] == {
                "en": "Deals (Alice) is at 20% of target and falling: agree a recovery plan with milestones and "
                "review it at every check-in.",
                "zh_Hans": "Deals (Alice)目前为目标的20%，且呈下降趋势："
                "请制定带里程碑的改进计划，并在每次进度更新时回顾。",
            }
            values = gap["citations"][0]["values"]
            assert values["attainment_pct"] == 20.0 and values["trend"] == "worsening" and values["trend_slope"] < 0
            assert gap["citations"][0]["link"] == {
                "service": "tracking",
                "path": f"/v1/cycles/{cycle_id}/kpis/deals-alice/progress",
            }
            assert competency["text"]["en"].startswith("Collaboration: 3.0 against the team's 5.0")
            assert competency["text"]["zh_Hans"].startswith("能力素质“Collaboration”：3.0，团队平均5.0")
            assert competency["citations"][0]["values"]["reference_size"] == 2  # bob and carol

            # -- bob: stale data and no check-in for three weeks -----------------------------------------
            bob = ok(await committee.get(f"{base}/people/bob", headers=person(stack.settings, "sam", "manager")))
            assert [s["suggestion_id"] for s in bob["suggestions"]] == [
                "stale_data:deals-bob",
                "check_in_missed:deals-bob",
            ]
            assert bob["suggestions"][0]["text"]["zh_Hans"].endswith("请联系Sales(数据负责部门)恢复数据。")
            assert bob["suggestions"][1]["text"]["en"].startswith("No check-in on Deals (Bob) since -")
            assert bob["suggestions"][1]["citations"][0]["values"]["overdue"] is True
            # outside scope: a colleague's suggestions do not exist
            assert (
                await committee.get(f"{base}/people/bob", headers=person(stack.settings, "alice"))
            ).status_code == 404

            # -- sam's team: a third of it below the floor, bob's data --------------------------------------
            team = ok(await committee.get(f"{base}/teams/sam", headers=person(stack.settings, "sam", "manager")))
            assert [s["suggestion_id"] for s in team["suggestions"]] == [
                "kpi_gap_team:sam",
                "stale_data:deals-bob",
                "check_in_missed:deals-bob",
            ]
            assert team["suggestions"][0]["text"]["en"].startswith("1 of 3 people in the team have KPIs below 80%")
            assert team["suggestions"][0]["text"]["zh_Hans"].startswith("团队3人中有1人的KPI低于目标的80%")
            stricter = ok(
                await committee.get(
                    f"{base}/teams/sam", params={"team_share": 0.5}, headers=person(stack.settings, "sam", "manager")
                )
            )
            assert "kpi_gap_team:sam" not in [s["suggestion_id"] for s in stricter["suggestions"]]
            bad = await committee.get(f"{base}/teams/sam", params={"team_share": 2}, headers=hr(stack.settings))
            assert bad.status_code == 422 and "team_share" in bad.json()["detail"]

            # -- IT: how the others rate working with it, in English and Chinese, and its strict ratings ---
            it = ok(await committee.get(f"{base}/departments/it", headers=person(stack.settings, "ivan", "dept_head")))
            assert [s["suggestion_id"] for s in it["suggestions"]] == [
                "collaboration_dimension:responsiveness",
                "comment_theme:data_quality",
                "comment_theme:responsiveness",
                "rater_leniency:it",
            ]
            dimension = it["suggestions"][0]
            assert dimension["text"]["en"].startswith("Other departments rate IT's responsiveness 2.0 of 5")
            assert dimension["text"]["zh_Hans"].startswith("其他部门对IT的响应速度部门协作评分为2.0/5")
            assert dimension["citations"][0]["values"]["rater_departments"] == 2
            assert it["themes"] == [
                {
                    "theme": "data_quality",
                    "mentions": 2,
                    "english": 1,
                    "chinese": 1,
                    "keywords": ["wrong", "不一致", "口径"],
                },
                {
                    "theme": "responsiveness",
                    "mentions": 2,
                    "english": 1,
                    "chinese": 1,
                    "keywords": ["respon", "slow", "响应", "太慢"],
                },
            ]
            assert it["suggestions"][3]["text"]["zh_Hans"].startswith("IT为严格评分人")
            # -- finance: the report it owns and never sends -----------------------------------------------
            finance = ok(await committee.get(f"{base}/departments/finance", headers=hr(stack.settings)))
            assert [s["suggestion_id"] for s in finance["suggestions"]] == [
                "stale_data:finance-report",
                "check_in_missed:finance-report",
            ]
            other_head = person(stack.settings, "fiona", "dept_head")
            assert (await committee.get(f"{base}/departments/it", headers=other_head)).status_code == 404
