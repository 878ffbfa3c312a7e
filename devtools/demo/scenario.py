"""A whole review cycle for the sample manufacturer, driven through the public APIs.

Used by ``tandem demo`` and by the end-to-end tests. Everything a person would do
goes through the services' HTTP APIs with that person's token (employees submit
goals and acknowledge results, managers approve and review, HR calibrates and
allocates); department systems stream metrics to Kafka through the simulator;
the durable workflow moves the stages, reminds and escalates. Stage durations
are compressed (``day_seconds`` per template day).

Two departments misbehave on purpose so the deadline machinery shows:
``laggard_department`` never finishes its goals or reviews (reminders, then
escalations to its head and to HR), and ``silent_department`` sends no metrics
(its KPIs go stale: a reminder, then an escalation).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts.cycle import Stage
from contracts.goals import Aggregation
from contracts.org import OrgSnapshot
from services.common.auth import mint_token
from services.common.settings import Settings

__all__ = ["DEMO_DEPARTMENTS", "Scenario", "ScenarioReport", "demo_template"]

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE_ORG = ROOT / "docs" / "examples" / "sample_org"
SAMPLE_STRATEGY = ROOT / "docs" / "examples" / "sample_strategy.json"

TRACKING_DAYS = 8
"""Template days of the demo's tracking stage."""
DEMO_DEPARTMENTS = ["production", "sales", "finance", "hr", "it", "procurement", "quality"]

Log = Callable[[str], None]


def demo_template(name: str) -> dict[str, Any]:
    """The sample template with stages a few template-days long (compressed further by day_seconds)."""
    import json

    spec: dict[str, Any] = json.loads((SAMPLE_ORG / "template.json").read_text())
    spec["name"] = name
    plan = {
        "goal_setting": (10, 8),
        "tracking": (TRACKING_DAYS, None),
        "evaluation": (10, 8),
        "feedback": (8, 6),
        "result_application": (8, 6),
    }
    spec["stages"] = [
        {"stage": stage, "duration_days": duration, "deadline_days": deadline, "reminder_days_before": None}
        for stage, (duration, deadline) in plan.items()
    ]
    spec["reminder_days_before"] = [4, 1]
    spec["escalate_days_after_deadline"] = 1
    # The two lowest bands of the sample's scale get a development plan (labels are the template's bands).
    spec["results"] = {"development": {"ratings": ["needs improvement", "partially meets"]}}
    return spec


@dataclass
class ScenarioReport:
    cycle_id: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    goals_approved: int = 0
    goals_left_pending: int = 0
    metrics_sent: int = 0
    committee: dict[str, Any] = field(default_factory=dict)
    """The performance committee's meeting: its id, the generated agenda's titles and the decision taken."""
    rollup: list[float] = field(default_factory=list)
    """The strategy roll-up (the goal tree's overall progress) as read during tracking, in order."""
    reviews_submitted: int = 0
    acknowledged: int = 0
    appeals: int = 0
    allocations: dict[str, dict[str, int]] = field(default_factory=dict)
    development_plans: int = 0
    final_status: dict[str, Any] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)


class ScenarioError(RuntimeError):
    pass


class Scenario:
    def __init__(
        self,
        *,
        settings: Settings,
        urls: dict[str, str],
        bootstrap_servers: str,
        kafka_idempotence: bool = True,
        day_seconds: float = 3.0,
        laggard_department: str = "quality",
        silent_department: str = "it",
        metrics_rate: float = 150.0,
        log: Log = lambda _m: None,
        seed: int = 7,
    ) -> None:
        self.settings = settings
        self.urls = {k: v.rstrip("/") for k, v in urls.items()}
        self.bootstrap_servers = bootstrap_servers
        self.kafka_idempotence = kafka_idempotence
        self.day_seconds = day_seconds
        self.laggard = laggard_department
        self.silent = silent_department
        self.metrics_rate = metrics_rate
        self._targets: dict[str, tuple[Aggregation, float, float]] = {}
        """Metric -> (aggregation, start, target) of the cycle's KPIs, for believable simulated data."""
        self.log = log
        self.random = random.Random(seed)
        self.report = ScenarioReport()
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))
        self._tokens: dict[tuple[str, ...], str] = {}
        self.snapshot: OrgSnapshot | None = None
        self._top: dict[str, str] = {}
        self.hooks: dict[Stage, Callable[[], Awaitable[None]]] = {}
        """Extra actions to run when a stage begins (the crash tests kill processes here)."""

    # -- plumbing ---------------------------------------------------------------------------------
    def headers(
        self, sub: str, *roles: str, employee_id: str | None = None, department_id: str | None = None
    ) -> dict[str, str]:
        key = (sub, *roles, employee_id or "", department_id or "")
        if key not in self._tokens:
            self._tokens[key] = mint_token(
                self.settings, sub=sub, roles=list(roles), employee_id=employee_id, department_id=department_id
            )
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    @property
    def hr(self) -> dict[str, str]:
        return self.headers("hr.admin", "hr_admin", "ops")

    def person(self, employee_id: str, *roles: str) -> dict[str, str]:
        return self.headers(employee_id, *(roles or ("employee",)), employee_id=employee_id)

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
        **kwargs: Any,
    ) -> Any:
        response = await self.http.request(method, f"{self.urls[service]}{path}", headers=headers or self.hr, **kwargs)
        if response.status_code not in ok:
            raise ScenarioError(f"{method} {service}{path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    async def status(self) -> dict[str, Any] | None:
        response = await self.http.get(
            f"{self.urls['cycles']}/v1/cycles/{self.report.cycle_id}/status", headers=self.hr
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def wait_for_stage(self, *stages: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = await self.status()
            except httpx.HTTPError:
                status = None  # cycles or Temporal briefly unavailable (restart tests)
            if status is not None and status["stage"] in stages:
                return status
            await asyncio.sleep(0.5)
        raise ScenarioError(f"cycle {self.report.cycle_id} did not reach {stages} within {timeout:.0f}s")

    def top_department(self, department_id: str) -> str:
        return self._top.get(department_id, department_id)

    def in_department(self, employee_id: str, department: str) -> bool:
        assert self.snapshot is not None
        person = next(p for p in self.snapshot.participants if p.employee_id == employee_id)
        return self.top_department(person.department_id) == department

    def manager_of(self, employee_id: str) -> str | None:
        assert self.snapshot is not None
        return next(p.manager_id for p in self.snapshot.participants if p.employee_id == employee_id)

    # -- the story --------------------------------------------------------------------------------
    async def run(self) -> ScenarioReport:
        try:
            await self.set_up()
            started = time.monotonic()
            for stage, act in (
                (Stage.GOAL_SETTING, self.goal_setting),
                (Stage.TRACKING, self.tracking),
                (Stage.EVALUATION, self.evaluation),
                (Stage.FEEDBACK, self.feedback),
                (Stage.RESULT_APPLICATION, self.result_application),
            ):
                await self.wait_for_stage(stage.value)
                began = time.monotonic()
                self.log(f"stage {stage.value} started")
                if stage in self.hooks:
                    await self.hooks[stage]()
                await act()
                following = self._after(stage)
                await self.wait_for_stage(*following)
                self.report.stage_seconds[stage.value] = round(time.monotonic() - began, 1)
            self.report.stage_seconds["total"] = round(time.monotonic() - started, 1)
            self.report.final_status = await self.status() or {}
            self.report.notifications = await self.call(
                "cycles", "GET", "/v1/notifications/counts", params={"cycle_id": self.report.cycle_id}
            )
            return self.report
        finally:
            await self.http.aclose()

    @staticmethod
    def _after(stage: Stage) -> tuple[str, ...]:
        from contracts.cycle import STAGE_ORDER

        index = STAGE_ORDER.index(stage)
        later = [s.value for s in STAGE_ORDER[index + 1 :]] + [Stage.CLOSED.value, "cancelled"]
        return tuple(later)

    async def set_up(self) -> None:
        files = {
            "departments": ("departments.csv", (SAMPLE_ORG / "departments.csv").read_bytes(), "text/csv"),
            "employees": ("employees.csv", (SAMPLE_ORG / "employees.csv").read_bytes(), "text/csv"),
        }
        imported = await self.call("cycles", "POST", "/v1/org/import", files=files)
        people = imported.get("employees", {})
        self.log(
            f"sample org imported: {sum(people.values()) if isinstance(people, dict) else '?'} employees "
            f"({'changed' if imported.get('changed') else 'already up to date'})"
        )
        suffix = uuid.uuid4().hex[:6]
        template = await self.call("cycles", "POST", "/v1/templates", json=demo_template(f"Demo template {suffix}"))
        today = datetime.now(UTC).date()
        cycle = await self.call(
            "cycles",
            "POST",
            "/v1/cycles",
            json={
                "name": f"Demo cycle {today.isoformat()} {suffix}",
                "template_id": template["template_id"],
                "period_start": today.isoformat(),
                "period_end": (today + timedelta(days=364)).isoformat(),
                "department_ids": DEMO_DEPARTMENTS,
            },
        )
        self.report.cycle_id = cycle["cycle_id"]
        self.log(f"cycle {self.report.cycle_id} created; starting it ({self.day_seconds:g} s per template day)")
        await self.call(
            "cycles", "POST", f"/v1/cycles/{self.report.cycle_id}/start", params={"day_seconds": self.day_seconds}
        )
        snapshot = await self.call("cycles", "GET", f"/v1/cycles/{self.report.cycle_id}/snapshot")
        self.snapshot = OrgSnapshot.model_validate(snapshot)
        parents = {d.department_id: d.parent_id for d in self.snapshot.departments}
        for department_id in parents:
            top = department_id
            while parents.get(top) and parents[top] not in (None, "executive"):
                top = parents[top]  # type: ignore[assignment]
            self._top[department_id] = top

    async def goal_setting(self) -> None:
        from services.goals.sample import load_sample, read_strategy

        strategy = read_strategy(SAMPLE_STRATEGY)
        # KPI data is expected every few (compressed) days, so a silent department turns stale in the demo.
        # The executive office is not one of the cycle's departments: leave its own KPIs out.
        strategy.department_kpis = [
            g.model_copy(
                update={
                    "contributing_department_ids": [d for d in g.contributing_department_ids if d in DEMO_DEPARTMENTS]
                }
            )
            for g in strategy.department_kpis
            if g.department_id in DEMO_DEPARTMENTS
        ]
        strategy.individual_templates = [
            t for t in strategy.individual_templates if t.department_id in DEMO_DEPARTMENTS
        ]
        # What the department systems' simulated data aims at: the KPIs' own scale (see believable_means).
        self._targets = {
            g.metric: (g.aggregation, g.start_value, g.target_value)
            for g in [*strategy.company_kpis, *strategy.department_kpis]
            if g.metric
        }
        hours = max(2 * self.day_seconds / 3600, 5 / 3600)
        for goal in [*strategy.company_kpis, *strategy.department_kpis]:
            if getattr(goal, "update_frequency_hours", None) is not None:
                goal.update_frequency_hours = hours
        today = datetime.now(UTC).date()
        strategy.period = strategy.period.model_copy(
            update={"period_start": today, "period_end": today + timedelta(days=364)}
        )
        async with httpx.AsyncClient(base_url=f"{self.urls['goals']}/", headers=self.hr, timeout=60) as goals_client:
            # Nobody approves what they submitted: a second HR person approves the KPIs HR loaded.
            summary = await load_sample(
                goals_client,
                cycle_id=self.report.cycle_id,
                strategy=strategy,
                approve=True,
                approver=self.headers("hr.approver", "hr_admin"),
            )
        self.log(f"strategy loaded: {summary.goals_created} KPIs and goals")
        base = f"/v1/cycles/{self.report.cycle_id}"
        drafts: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.call(
                "goals",
                "GET",
                f"{base}/goals",
                params={"level": "individual", "status": "draft", "limit": 500, "offset": offset},
            )
            drafts += page["items"]
            offset += len(page["items"])
            if offset >= page["total"] or not page["items"]:
                break
        semaphore = asyncio.Semaphore(16)

        async def submit_and_approve(goal: dict[str, Any]) -> None:
            employee = goal["employee_id"]
            async with semaphore:
                await self.call(
                    "goals", "POST", f"{base}/goals/{goal['goal_id']}/submit", headers=self.person(employee)
                )
                manager = self.manager_of(employee)
                approver = self.person(manager, "manager", "employee") if manager else self.hr
                await self.call("goals", "POST", f"{base}/goals/{goal['goal_id']}/approve", headers=approver)
            self.report.goals_approved += 1

        actionable = [g for g in drafts if not self.in_department(g["employee_id"], self.laggard)]
        self.report.goals_left_pending = len(drafts) - len(actionable)
        await asyncio.gather(*(submit_and_approve(g) for g in actionable))
        self.log(
            f"{self.report.goals_approved} individual goals submitted and approved; "
            f"{self.laggard} left {self.report.goals_left_pending} pending (it will be reminded and escalated)"
        )

    async def tracking(self) -> None:
        from devtools.simulator import believable_means, simulate

        departments = [d for d in DEMO_DEPARTMENTS if d != self.silent]
        # The stage streams for about its length: per-event values that add up to the KPIs' targets by its end.
        stage_seconds = TRACKING_DAYS * self.day_seconds
        means = believable_means(
            self._targets,
            departments=departments,
            events=self.metrics_rate * stage_seconds * 0.99,
            seed=self.random.randint(0, 10**6),
        )
        self.log(f"department systems stream metrics ({', '.join(departments)}); {self.silent} stays silent")
        sent = 0
        watcher = asyncio.create_task(self.watch_rollup())
        while True:
            status = await self.status()
            if status is None or status["stage"] != Stage.TRACKING.value:
                break
            stats = await simulate(
                bootstrap_servers=self.bootstrap_servers,
                departments=departments,
                rate=self.metrics_rate,
                duration=2.0,
                malformed=0.01,
                idempotence=self.kafka_idempotence,
                seed=self.random.randint(0, 10**6),
                means=means,
            )
            sent += stats.sent if hasattr(stats, "sent") else sum(stats.by_department.values())
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        self.report.metrics_sent = sent
        self.log(f"{sent} metric events streamed")

    async def watch_rollup(self, every: float = 1.5) -> None:
        """Read the roll-up every ``every`` seconds while metrics stream (cancelled when tracking ends)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.show_rollup()
            except (ScenarioError, httpx.HTTPError) as exc:  # the story goes on; the next read may work
                self.log(f"live roll-up not readable now: {exc}")

    async def show_rollup(self) -> None:
        """The strategy roll-up as HR sees it on the goal tree, moving while metrics arrive (the live roll-up)."""
        tree = await self.call("goals", "GET", f"/v1/cycles/{self.report.cycle_id}/tree")
        if tree.get("progress") is None:
            self.log("live roll-up: no KPI data yet")
            return
        self.report.rollup.append(float(tree["progress"]))
        objectives = ", ".join(
            f"{o['name']} {o['progress']:.0%}" for o in tree["objectives"][:3] if o.get("progress") is not None
        )
        self.log(f"live roll-up: company {tree['progress']:.0%} ({objectives})")

    async def evaluation(self) -> None:
        base = f"/v1/cycles/{self.report.cycle_id}"
        config = await self.call("evaluation", "GET", f"{base}/config")
        competencies = [c["competency_id"] for c in config["competencies"]]
        pending: list[dict[str, Any]] = []
        for _attempt in range(60):
            offset = 0
            pending = []
            while True:
                page = await self.call(
                    "evaluation",
                    "GET",
                    f"{base}/assignments",
                    params={"status": "pending", "limit": 500, "offset": offset},
                )
                pending += page
                offset += len(page)
                if len(page) < 500:
                    break
            if pending:
                break
            await asyncio.sleep(0.5)  # the stage's enter action is still assigning review forms
        semaphore = asyncio.Semaphore(16)

        async def review(assignment: dict[str, Any]) -> None:
            rater = assignment["rater_id"]
            roles = ("manager", "employee") if assignment["relation"] == "manager" else ("employee",)
            ratings = {c: round(self.random.uniform(2.5, 5.0), 1) for c in competencies}
            async with semaphore:
                await self.call(
                    "evaluation",
                    "POST",
                    f"{base}/assignments/{assignment['assignment_id']}/review",
                    headers=self.person(rater, *roles),
                    json={"ratings": ratings, "comment": "Solid year."},
                )
            self.report.reviews_submitted += 1

        actionable = [a for a in pending if not self.in_department(a["reviewee_id"], self.laggard)]
        await asyncio.gather(*(review(a) for a in actionable))
        await self.rate_collaboration(base)
        self.log(
            f"{self.report.reviews_submitted} reviews submitted; {self.laggard} left {len(pending) - len(actionable)}"
        )
        computed = await self.call("evaluation", "POST", f"{base}/scores/compute")
        violations = computed.get("distribution", {}).get("violations", [])
        self.log(
            f"scores computed for {computed.get('scored')} people; {len(computed.get('unscored', []))} without "
            f"reviews; guideline violations: {violations or 'none'}"
        )
        results = await self.call("evaluation", "GET", f"{base}/results", params={"limit": 50})
        items = [r for r in (results["items"] if isinstance(results, dict) else results) if r.get("final_score")]
        adjustments = [
            ("exceeds", "meets", "Calibration panel: cross-department impact not reflected in the KPI score."),
            # Someone always ends low, so result application drafts a development plan for them.
            ("partially meets", "needs improvement", "Calibration panel: missed the quality targets twice."),
        ]
        for target, (rating, otherwise, reason) in zip(items, adjustments, strict=False):
            await self.call(
                "evaluation",
                "POST",
                f"{base}/calibration/adjustments",
                json={
                    "employee_id": target["employee_id"],
                    "new_rating": rating if target.get("rating") != rating else otherwise,
                    "reason": reason,
                },
            )
        for employee_id in computed.get("unscored", []):
            await self.call(
                "evaluation",
                "POST",
                f"{base}/calibration/adjustments",
                json={
                    "employee_id": employee_id,
                    "new_rating": "meets",
                    "reason": "No reviews by the deadline: rated 'meets' under the missing-review rule.",
                },
            )
        await self.call("evaluation", "POST", f"{base}/calibration/close")
        self.log("calibration adjusted (audited) and closed")

    COLLABORATION = (
        # (rater, rated, responsiveness, data quality, reliability, comment)
        ("sales", "production", 4, 4, 3, "Delivery dates slip at quarter end."),
        ("production", "procurement", 3, 2, 2, "Supplier lead times reported late and often revised."),
        ("production", "quality", 5, 5, 4, "Fast root-cause analysis on defects."),
        ("finance", "sales", 3, 2, 3, "Month-end revenue figures arrive late and need corrections."),
        ("sales", "finance", 4, 4, 4, "Clear budget guidance."),
        ("quality", "production", 4, 4, 4, "Good shop-floor follow-up."),
        ("hr", "it", 3, 3, 2, "Onboarding accounts often not ready on day one."),
        ("it", "hr", 4, 4, 4, "Predictable requests."),
        ("procurement", "finance", 4, 3, 4, "Invoice approvals could be faster."),
    )

    async def rate_collaboration(self, base: str) -> None:
        """Each department head rates the departments they work with."""
        assert self.snapshot is not None
        heads = {d.department_id: d.head_employee_id for d in self.snapshot.departments}
        for rater, rated, responsiveness, quality, reliability, comment in self.COLLABORATION:
            head = heads.get(rater)
            if head is None:
                continue
            await self.call(
                "evaluation",
                "PUT",
                f"{base}/collaboration-ratings",
                headers=self.headers(head, "dept_head", "manager", "employee", employee_id=head, department_id=rater),
                json={
                    "rater_department_id": rater,
                    "rated_department_id": rated,
                    "responsiveness": responsiveness,
                    "data_quality": quality,
                    "reliability": reliability,
                    "comment": comment,
                },
            )
        self.log(f"{len(self.COLLABORATION)} department-to-department collaboration ratings given")

    async def feedback(self) -> None:
        base = f"/v1/cycles/{self.report.cycle_id}"
        assert self.snapshot is not None
        people = [
            p.employee_id for p in self.snapshot.participants if not self.in_department(p.employee_id, self.laggard)
        ]
        for _attempt in range(60):
            response = await self.http.get(
                f"{self.urls['feedback']}{base}/results/{people[0]}", headers=self.person(people[0])
            )
            if response.status_code == 200:
                break
            await asyncio.sleep(0.5)  # released by the stage's enter action
        semaphore = asyncio.Semaphore(16)

        async def acknowledge(employee_id: str) -> None:
            async with semaphore:
                response = await self.http.post(
                    f"{self.urls['feedback']}{base}/results/{employee_id}/acknowledge",
                    headers=self.person(employee_id),
                )
            if response.status_code == 200:
                self.report.acknowledged += 1

        appellant = people[-1]
        await asyncio.gather(*(acknowledge(e) for e in people[:-1]))
        appeal = await self.call(
            "feedback",
            "POST",
            f"{base}/appeals",
            headers=self.person(appellant),
            json={"reason": "My cross-department project work was not counted in my goals."},
        )
        self.report.appeals += 1
        appeal_id = appeal.get("appeal_id") or appeal.get("id")
        await self.call("feedback", "POST", f"/v1/appeals/{appeal_id}/review")
        await self.call(
            "feedback",
            "POST",
            f"/v1/appeals/{appeal_id}/resolve",
            json={"outcome": "rejected", "note": "The project is counted in the shared quality KPI already."},
        )
        self.log(f"{self.report.acknowledged} results acknowledged; 1 appeal submitted and resolved by HR")
        await self.committee_meeting()

    COMMITTEE: tuple[tuple[str, str, str], ...] = (
        ("hr", "hr", "secretary"),
        ("sales", "business", "chair"),
        ("finance", "finance", "member"),
        ("it", "it", "member"),
    )
    """The performance committee: (department whose head sits, function, role)."""

    async def committee_meeting(self) -> None:
        """The cross-department performance committee meets: its agenda comes from the cycle's data (stale
        data, KPIs off track, weak collaboration pairs, calibration outliers...), and it decides one action
        with an owner and a due date, which a workflow then tracks to done."""
        assert self.snapshot is not None
        heads = {d.department_id: d.head_employee_id for d in self.snapshot.departments}
        names = {p.employee_id: p.name for p in self.snapshot.participants}
        members = [
            {"employee_id": heads[d], "name": names.get(heads[d] or "", ""), "department_id": d}
            | {"function": function, "role": role}
            for d, function, role in self.COMMITTEE
            if heads.get(d)
        ]
        committee_id = f"perf-{self.report.cycle_id}"[:64]
        body = {"committee_id": committee_id, "name": "Performance committee", "cycle_id": self.report.cycle_id}
        await self.call("committee", "POST", "/v1/committees", json={**body, "members": members})
        meeting = await self.call("committee", "POST", f"/v1/committees/{committee_id}/meetings", json={})
        agenda = meeting["agenda"]
        self.report.committee = {
            "committee_id": committee_id,
            "meeting_id": meeting["meeting_id"],
            "agenda": [item["title"]["en"] for item in agenda],
        }
        self.log(f"performance committee meets: {len(agenda)} agenda item(s) generated from the cycle's data")
        for item in agenda[:5]:
            self.log(f"  - {item['title']['en']}")
        if not agenda:
            return
        first = agenda[0]
        department = (first.get("department_ids") or ["sales"])[0]
        owner = heads.get(department) or members[0]["employee_id"]
        decision = {
            "title": f"Act on: {first['title']['en']}"[:300],
            "owner_id": owner,
            "due_at": (datetime.now(UTC) + timedelta(days=14)).isoformat(),
            "agenda_item_id": first["item_id"],
        }
        url = f"/v1/committees/{committee_id}/meetings/{meeting['meeting_id']}/decisions"
        made = await self.call("committee", "POST", url, json=decision)
        self.report.committee["decision"] = {"title": decision["title"], "owner": owner, "id": made["decision_id"]}
        self.log(f"  decision: {decision['title']!r}, owned by {owner}, due in 14 days (tracked by a workflow)")

    async def result_application(self) -> None:
        base = f"/v1/cycles/{self.report.cycle_id}"
        for department in DEMO_DEPARTMENTS:
            budget = 5_000_000 + 137 * len(department)  # cents; deliberately not a round number
            await self.call(
                "results",
                "PUT",
                f"{base}/pools/{department}",
                json={"amount_cents": budget, "currency": "EUR", "source": "finance budget FY"},
            )
            allocation = await self.call(
                "results",
                "POST",
                f"{base}/pools/{department}/allocations",
                json={},
                headers={**self.hr, "Idempotency-Key": f"{self.report.cycle_id}/{department}/allocation"},
                ok=(200, 201, 422),
            )
            if "allocated_cents" in allocation:
                self.report.allocations[department] = {
                    "pool": allocation["pool_cents"],
                    "allocated": allocation["allocated_cents"],
                    "unallocated": allocation["unallocated_cents"],
                }
            else:
                self.log(f"allocation for {department} refused: {allocation.get('detail')}")
        await self.call("results", "POST", f"{base}/promotions/nominate", ok=(200, 201))
        plans = await self.call("results", "POST", f"{base}/development-plans/generate", ok=(200, 201))
        self.report.development_plans = int(plans["created"]) + int(plans["already_had_plan"])
        self.log(
            f"bonus pools allocated for {len(self.report.allocations)} departments; promotions nominated; "
            f"{self.report.development_plans} development plan(s) for the low ratings"
        )
