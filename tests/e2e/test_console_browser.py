"""The console in a real browser: Playwright drives Debian's Chromium (``/usr/bin/chromium``) through the
main journeys against real services served by uvicorn on free ports (the console, cycles, goals,
tracking with its Kafka consumer, evaluation, feedback, results; SQLite files, none for the console),
the session's Kafka broker and the Temporal dev server. The console reaches every API over HTTP.

* HR starts a cycle;
* a manager approves a report's goal;
* an employee acknowledges their result;
* an employee appeals their result and HR takes it under review and resolves it;
* ops finds the overdue department (escalated by a real ``ReviewCycleWorkflow``) and the DLQ reason;
* the language switch shows the console in Simplified Chinese, and keeps it.

Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright, expect

from contracts.events import MetricEvent
from devtools.stack.kafka import create_topics
from devtools.stack.process import free_port
from services.common.auth import mint_token
from services.common.kafka import create_producer
from services.common.settings import Settings
from services.console.app import create_app as create_console_app
from services.cycles.app import create_app as create_cycles_app
from services.cycles.service import sample_template
from services.evaluation.app import create_app as create_evaluation_app
from services.feedback.app import create_app as create_feedback_app
from services.goals.app import create_app as create_goals_app
from services.results.app import create_app as create_results_app
from services.tracking.app import create_app as create_tracking_app
from tests.integration.test_cycles_org_import import sample_files
from tests.integration.test_ops_overview import ScriptedDepartments, running_cycle_workflow, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
STAGE_SERVICES = ("goals", "tracking", "evaluation", "feedback", "results")


@dataclass
class ConsoleStack:
    settings: Settings
    console_url: str
    draft_cycle: str
    active_cycle: str
    cycles_api: httpx.AsyncClient
    urls: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, sub=f'seed-{role}', roles=[role], **claims)}"}


@asynccontextmanager
async def served(app: FastAPI, port: int) -> AsyncIterator[None]:
    """Run ``app`` (with its lifespan) under uvicorn on 127.0.0.1:``port`` until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError(f"uvicorn on port {port} stopped during start-up")
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


def ok(response: httpx.Response, *expected: int) -> Any:
    assert response.status_code in (expected or (200,)), f"{response.request.url}: {response.text[:500]}"
    return response.json()


async def seed_goals(goals: httpx.AsyncClient, stack_settings: Settings, cycle_id: str) -> None:
    """An objective, a company KPI, the sales KPI, and submitted goals of two of E0163's reports."""
    hr = {"Authorization": f"Bearer {mint_token(stack_settings, sub='hr-seed', roles=['hr_admin'])}"}
    base = f"/v1/cycles/{cycle_id}"
    ok(
        await goals.put(
            f"{base}/settings",
            json={"period_start": f"{date.today().year}-01-01", "period_end": f"{date.today().year}-12-31"},
            headers=hr,
        )
    )
    ok(
        await goals.post(
            f"{base}/objectives",
            json={"objective_id": "obj-growth", "name": "Grow profitably", "perspective": "financial"},
            headers=hr,
        ),
        201,
    )
    kpi = {
        "unit": "EUR", "direction": "higher_is_better", "aggregation": "sum", "start_value": 0,
        "metric": "sales.revenue", "data_owner_department_id": "sales", "weight": 100,
    }  # fmt: skip
    ok(
        await goals.post(
            f"{base}/goals",
            json={**kpi, "goal_id": "ck-revenue", "level": "company", "objective_id": "obj-growth",
                  "name": "Revenue", "target_value": 48_000_000},
            headers=hr,
        ),
        201,
    )  # fmt: skip
    ok(
        await goals.post(
            f"{base}/goals",
            json={**kpi, "goal_id": "dk-sales-revenue", "level": "department", "parent_id": "ck-revenue",
                  "department_id": "sales", "name": "Sales revenue", "target_value": 30_000_000},
            headers=hr,
        ),
        201,
    )  # fmt: skip
    # separation of duties: who submits a KPI may not approve it, so a second HR admin does
    approver = {"Authorization": f"Bearer {mint_token(stack_settings, sub='hr-approver', roles=['hr_admin'])}"}
    for goal_id in ("ck-revenue", "dk-sales-revenue"):
        ok(await goals.post(f"{base}/goals/{goal_id}/submit", headers=hr))
        ok(await goals.post(f"{base}/goals/{goal_id}/approve", headers=approver))
    for employee_id, name in (("E0164", "Domestic bookings, Helena"), ("E0165", "Key accounts, Olga")):
        ok(
            await goals.post(
                f"{base}/goals",
                json={**kpi, "goal_id": f"g-{employee_id}", "level": "individual", "parent_id": "dk-sales-revenue",
                      "employee_id": employee_id, "name": name, "target_value": 1_200_000},
                headers=hr,
            ),
            201,
        )  # fmt: skip
        employee = {
            "Authorization": "Bearer "
            + mint_token(stack_settings, sub=employee_id, roles=["employee"], employee_id=employee_id)
        }
        ok(await goals.post(f"{base}/goals/g-{employee_id}/submit", headers=employee))


async def seed_tracking(
    tracking: httpx.AsyncClient, settings: Settings, cycle_id: str, *, bootstrap: str, topic: str, idempotence: bool
) -> None:
    """A KPI catalog (one fed KPI, one that goes stale), one good event and one poison message on Kafka."""
    hr = {"Authorization": f"Bearer {mint_token(settings, sub='hr-seed', roles=['hr_admin'])}"}
    today = date.today()
    common = {"unit": "EUR", "aggregation": "sum", "direction": "higher_is_better", "start_value": 0}
    catalog = {
        "cycle_id": cycle_id,
        "period_start": (today - timedelta(days=30)).isoformat(),
        "period_end": (today + timedelta(days=300)).isoformat(),
        "kpis": [
            {**common, "kpi_id": "ck-revenue", "level": "company", "name": "Revenue", "metric": "sales.revenue",
             "target_value": 48_000_000, "owner_department_id": "sales", "update_frequency_hours": 24},
            {**common, "kpi_id": "dk-sales-revenue", "level": "department", "name": "Sales revenue",
             "metric": "sales.revenue", "target_value": 30_000_000, "owner_department_id": "sales",
             "update_frequency_hours": 24, "department_id": "sales"},
            {**common, "kpi_id": "dk-fin-cost", "level": "department", "name": "Operating cost",
             "metric": "finance.cost", "target_value": 1_000_000, "owner_department_id": "finance",
             "update_frequency_hours": 0.0002, "department_id": "finance"},
        ],
    }  # fmt: skip
    ok(await tracking.put(f"/v1/cycles/{cycle_id}/kpis", json=catalog, params={"grace_hours": 0}, headers=hr))
    producer = await create_producer(bootstrap, idempotence=idempotence)
    try:
        for value, days_ago in ((9_000_000, 20), (12_500_000, 10), (16_000_000, 1)):
            event = MetricEvent(
                event_id=uuid.uuid4(), source="crm", department_id="sales", metric="sales.revenue",
                value=value, unit="EUR", occurred_at=datetime.now(UTC) - timedelta(days=days_ago),
            )  # fmt: skip
            await producer.send_and_wait(topic, event.model_dump_json().encode(), key=b"sales:sales.revenue")
        await producer.send_and_wait(topic, b"{this is not json", key=b"finance:finance.cost")
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
async def console_stack(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, kafka_broker: Any, temporal_server: Any
) -> AsyncIterator[ConsoleStack]:
    state = tmp_path_factory.mktemp("console-browser")
    ports = {name: free_port() for name in ("cycles", *STAGE_SERVICES, "console")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    suffix = uuid.uuid4().hex[:8]
    topic, dlq_topic = f"browser.metrics.{suffix}", f"browser.metrics.dlq.{suffix}"
    await create_topics(kafka_broker.bootstrap_servers, [topic, dlq_topic], partitions=1)
    stack_settings = settings.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{state}/{{service}}.db",
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_idempotence": kafka_broker.supports_idempotence,
            "temporal_address": temporal_server.address,
            "temporal_ui_url": "http://127.0.0.1:8233",
            **{f"{name}_url": url for name, url in urls.items()},
        }
    )
    apps: dict[str, FastAPI] = {
        "cycles": create_cycles_app(stack_settings),
        "goals": create_goals_app(stack_settings),
        "tracking": create_tracking_app(
            stack_settings, run_consumer=True, topic=topic, dlq_topic=dlq_topic, group_id=f"browser-{suffix}"
        ),
        "evaluation": create_evaluation_app(stack_settings),
        "feedback": create_feedback_app(stack_settings),
        "results": create_results_app(stack_settings),
        # development sign-in (the personas) is for TANDEM_ENV=dev only
        "console": create_console_app(stack_settings.model_copy(update={"env": "dev"})),
    }
    async with AsyncExitStack() as stack:
        for name, app in apps.items():
            await stack.enter_async_context(served(app, ports[name]))
        clients = {
            name: await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            for name, url in urls.items()
        }
        hr = {"Authorization": f"Bearer {mint_token(stack_settings, sub='hr-seed', roles=['hr_admin'])}"}
        cycles = clients["cycles"]
        ok(await cycles.post("/v1/org/import", files=sample_files(), headers=hr))
        template = ok(
            await cycles.post("/v1/templates", json=sample_template().model_dump(mode="json"), headers=hr), 201
        )
        today = date.today()

        async def draft(name: str, departments: list[str]) -> str:
            body = {
                "name": name,
                "template_id": template["template_id"],
                "period_start": (today - timedelta(days=30)).isoformat(),
                "period_end": (today + timedelta(days=300)).isoformat(),
                "department_ids": departments,
            }
            cycle_id: str = ok(await cycles.post("/v1/cycles", json=body, headers=hr), 201)["cycle_id"]
            return cycle_id

        active = await draft(f"FY{today.year} Sales & Finance", ["sales", "finance"])
        waiting = await draft(f"FY{today.year} Quality", ["quality"])
        started = ok(await cycles.post(f"/v1/cycles/{active}/start", headers=hr))
        assert {d["service"]: d["status"] for d in started["distribution"]} == dict.fromkeys(
            STAGE_SERVICES, "delivered"
        )

        await seed_goals(clients["goals"], stack_settings, active)
        await seed_tracking(
            clients["tracking"],
            stack_settings,
            active,
            bootstrap=kafka_broker.bootstrap_servers,
            topic=topic,
            idempotence=kafka_broker.supports_idempotence,
        )
        feedback = clients["feedback"]
        results = {
            "cycle_id": active,
            "scale_min": 1,
            "scale_max": 5,
            "results": [
                {"employee_id": "E0164", "department_id": "sales-domestic", "manager_id": "E0163",
                 "final_score": 3.9, "rating": "exceeds", "pre_calibration_score": 3.6, "calibrated": True},
                {"employee_id": "E0165", "department_id": "sales-domestic", "manager_id": "E0163",
                 "final_score": 3.1, "rating": "meets"},
            ],
        }  # fmt: skip
        ok(await feedback.put(f"/v1/cycles/{active}/results", json=results, params={"calibration_closed": "true"},
                              headers=hr))  # fmt: skip
        ok(await feedback.post(f"/v1/cycles/{active}/release", headers=hr))
        colleague = {
            "Authorization": "Bearer "
            + mint_token(stack_settings, sub="E0165", roles=["employee"], employee_id="E0165")
        }
        ok(
            await feedback.post(
                f"/v1/cycles/{active}/feedback",
                json={"recipient_id": "E0164", "kind": "kudos", "message": "Thanks for covering the Hamburg fair!"},
                headers=colleague,
            ),
            201,
        )

        async def dead_lettered() -> bool:
            ingestion = ok(await clients["tracking"].get("/v1/ops/ingestion", headers=hr))
            return bool(ingestion["dead_letters"] >= 1 and ingestion["events_stored"] >= 3)

        await wait_for(dead_lettered, timeout=45)
        yield ConsoleStack(
            settings=stack_settings,
            console_url=urls["console"],
            draft_cycle=waiting,
            active_cycle=active,
            cycles_api=cycles,
            urls=urls,
        )


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


SOMEONE = {
    "Manager E0163": {"sub": "E0163", "role": "manager", "employee_id": "E0163", "department_id": "sales-domestic"},
    "Employee E0164": {"sub": "E0164", "role": "employee", "employee_id": "E0164", "department_id": "sales-domestic"},
}
"""People signed in with the sign-in page's free form (the one-click personas are HR, ops and, per
department, its head, a manager and an employee chosen by the console)."""


@asynccontextmanager
async def signed_in_page(browser: Browser, stack: ConsoleStack, persona: str, start: str) -> AsyncIterator[Page]:
    """A fresh browser context signed in through development sign-in (a persona button or the free form),
    then at ``start``."""
    context = await browser.new_context(
        base_url=stack.console_url, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    page = await context.new_page()
    try:
        await page.goto(start)
        await expect(page).to_have_url(f"{stack.console_url}/console/sign-in?next={start.replace('/', '%2F')}")
        if persona in SOMEONE:
            await page.get_by_text("Someone else").click()
            form = page.get_by_test_id("dev-sign-in")
            for name, value in SOMEONE[persona].items():
                field = form.locator(f"[name={name}]")
                await (field.select_option(value) if name == "role" else field.fill(value))
            await form.get_by_role("button", name="Sign in").click()
        else:
            await page.get_by_role("button", name=persona).click()
        await page.wait_for_url(f"{stack.console_url}{start}")
        yield page
    finally:
        await context.close()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_hr_starts_a_cycle(browser: Browser, console_stack: ConsoleStack) -> None:
    async with signed_in_page(browser, console_stack, "HR admin", "/console/cycles") as page:
        await expect(page.get_by_role("heading", name="Review cycles")).to_be_visible()
        row = page.locator("tr", has_text=console_stack.draft_cycle)
        await expect(row.locator(".pill")).to_have_text("draft")
        await shot(page, "01-hr-dashboard-before-start")
        await page.get_by_test_id(f"start-{console_stack.draft_cycle}").get_by_role("button").click()
        await expect(page.get_by_role("status")).to_contain_text("snapshot delivered everywhere")
        await expect(row.locator(".pill").first).to_have_text("active")
        await shot(page, "02-hr-dashboard-after-start")

        await page.get_by_role("link", name=f"FY{date.today().year} Quality").click()
        await expect(page.get_by_role("heading", name="Snapshot distribution")).to_be_visible()
        await expect(page.locator("text=32").first).to_be_visible()  # the quality department's people
    cycle = ok(
        await console_stack.cycles_api.get(
            f"/v1/cycles/{console_stack.draft_cycle}", headers=console_stack.headers("hr_admin")
        )
    )
    assert cycle["status"] == "active" and cycle["participants"] == 32


async def test_manager_approves_a_reports_goal(browser: Browser, console_stack: ConsoleStack) -> None:
    cycle = console_stack.active_cycle
    approvals = f"/console/cycles/{cycle}/approvals"
    async with signed_in_page(browser, console_stack, "Manager E0163", approvals) as page:
        await expect(page.get_by_text("Domestic bookings, Helena")).to_be_visible()
        await expect(page.get_by_text("Key accounts, Olga")).to_be_visible()
        await shot(page, "03-manager-approvals")
        await page.get_by_test_id("approve-g-E0164").click()
        await expect(page.get_by_role("status")).to_contain_text("Approved goal 'Domestic bookings, Helena'")
        waiting = page.locator("section.card").first
        await expect(waiting.get_by_text("Domestic bookings, Helena")).to_have_count(0)
        await expect(waiting.get_by_text("Key accounts, Olga")).to_be_visible()
        await shot(page, "04-manager-approved")

        await page.get_by_role("link", name="Goal tree").click()
        await expect(page.get_by_role("heading", name="Grow profitably")).to_be_visible()
        await shot(page, "05-goal-tree")
        await page.get_by_role("link", name="KPI progress").click()
        await expect(page.locator("svg[aria-label='KPI attainment']")).to_be_visible()
        await shot(page, "06-kpi-progress")

    goal = ok(
        await httpx.AsyncClient(base_url=console_stack.urls["goals"]).get(
            f"/v1/cycles/{cycle}/goals/g-E0164", headers=console_stack.headers("hr_admin")
        )
    )
    assert goal["status"] == "approved" and goal["status_changed_by"] == "E0163"


async def test_employee_acknowledges_their_result(browser: Browser, console_stack: ConsoleStack) -> None:
    cycle = console_stack.active_cycle
    mine = f"/console/cycles/{cycle}/people/E0164"
    async with signed_in_page(browser, console_stack, "Employee E0164", mine) as page:
        await expect(page.get_by_role("heading", name="Helena Kaya")).to_be_visible()
        await expect(page.get_by_test_id("rating")).to_have_text("exceeds")
        await expect(page.get_by_text("Thanks for covering the Hamburg fair!")).to_be_visible()
        await shot(page, "07-employee-before-acknowledge")
        await page.get_by_test_id("acknowledge").click()
        await expect(page.get_by_role("status")).to_contain_text("Result acknowledged")
        await expect(page.get_by_test_id("acknowledged")).to_be_visible()
        await shot(page, "08-employee-acknowledged")
        # the employee cannot open a colleague's page (the API's scoping shows through)
        await page.goto(f"/console/cycles/{cycle}/people/E0165")
        await expect(page.get_by_role("status")).to_contain_text("403")

    async with httpx.AsyncClient(base_url=console_stack.urls["feedback"]) as feedback:
        result = ok(await feedback.get(f"/v1/cycles/{cycle}/results/E0164", headers=console_stack.headers("hr_admin")))
    assert result["acknowledged_at"] is not None


async def test_hr_resolves_an_appeal(browser: Browser, console_stack: ConsoleStack) -> None:
    cycle = console_stack.active_cycle
    mine = f"/console/cycles/{cycle}/people/E0164"
    async with signed_in_page(browser, console_stack, "Employee E0164", mine) as page:
        form = page.get_by_test_id("appeal")
        await form.locator("textarea[name=reason]").fill("Two Hamburg deals were booked to Q3 by mistake.")
        await form.get_by_role("button", name="Submit appeal").click()
        await expect(page.get_by_role("status")).to_contain_text("Appeal submitted to HR.")

    async with signed_in_page(browser, console_stack, "HR admin", f"/console/cycles/{cycle}") as page:
        await page.get_by_test_id("appeals-link").click()
        await expect(page.get_by_role("heading", name="Appeals", exact=True)).to_be_visible()
        card = page.locator("section.card", has_text="Two Hamburg deals")
        await expect(card.locator("h2 .pill")).to_have_text("submitted")
        await card.get_by_role("button", name="Take under review").click()
        await expect(page.get_by_role("status")).to_contain_text("is under review")
        await expect(card.locator("h2 .pill")).to_have_text("under_review")
        await card.locator("select[name=outcome]").select_option("upheld")
        await card.locator("textarea[name=note]").fill("Both deals were invoiced in Q3; the result stands.")
        await shot(page, "10-hr-appeal-under-review")
        await card.get_by_role("button", name="Resolve").click()
        await expect(page.get_by_role("status").first).to_contain_text("of E0164 resolved: upheld")
        resolved = page.locator("section.card", has_text="Resolved")
        await expect(resolved.locator("tbody > tr").first).to_contain_text("the result stands")
        await shot(page, "11-hr-appeal-resolved")

    async with httpx.AsyncClient(base_url=console_stack.urls["feedback"]) as feedback:
        appeals = ok(await feedback.get(f"/v1/cycles/{cycle}/appeals", headers=console_stack.headers("hr_admin")))
    assert [(a["employee_id"], a["status"], a["resolved_by"]) for a in appeals] == [("E0164", "upheld", "hr-admin")]


async def test_ops_finds_the_overdue_department(
    browser: Browser, console_stack: ConsoleStack, temporal_client: Any
) -> None:
    cycle = console_stack.active_cycle
    cycles = console_stack.cycles_api
    activities = ScriptedDepartments(cycles, console_stack.settings, {"sales": (6, 6), "finance": (5, 1)})
    async with running_cycle_workflow(
        temporal_client, activities, cycle_id=cycle, departments=["sales", "finance"], deadline_in=2
    ):

        async def escalated() -> bool:
            counts = ok(
                await cycles.get(
                    "/v1/notifications/counts", params={"cycle_id": cycle}, headers=console_stack.headers("ops")
                )
            )
            return bool(counts.get("escalation_head", 0) >= 1)

        await wait_for(escalated, timeout=30)
        async with signed_in_page(browser, console_stack, "Ops on call", "/console/ops") as page:
            card = page.get_by_test_id(f"cycle-{cycle}")
            overdue = card.get_by_test_id("overdue")
            await expect(overdue.locator("tr", has_text="finance")).to_contain_text("escalation_head")
            await expect(overdue.locator("tr", has_text="finance")).to_contain_text("missed the deadline")
            await expect(card.locator("tr", has_text="finance").first).to_contain_text("1 / 5")
            await expect(card.get_by_text("deadline passed")).to_be_visible()
            await expect(card.get_by_text("Operating cost")).to_be_visible()  # stale KPI of finance
            ingestion = page.get_by_test_id("ingestion")
            await expect(ingestion.locator("table").first).to_contain_text("message is not valid JSON")
            link = await card.get_by_test_id("temporal-link").get_attribute("href")
            assert link == f"http://127.0.0.1:8233/namespaces/default/workflows?query=CycleId%3D%22{cycle}%22"
            await expect(page.get_by_test_id("health-temporal")).to_contain_text("ok")
            await expect(page.get_by_test_id("health-database")).to_contain_text("ok")
            await shot(page, "09-ops-overdue-department")


async def test_the_language_switch_shows_simplified_chinese_and_keeps_it(
    browser: Browser, console_stack: ConsoleStack
) -> None:
    cycle = console_stack.active_cycle
    async with signed_in_page(browser, console_stack, "HR admin", "/console/cycles") as page:
        await page.get_by_role("link", name="简体中文").click()
        await expect(page.get_by_role("heading", name="考核周期", exact=True)).to_be_visible()
        await expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        await page.goto(f"/console/cycles/{cycle}/progress")  # the cookie keeps the choice
        await expect(page.get_by_role("heading", name="KPI进度")).to_be_visible()
        await expect(page.locator("svg[aria-label='KPI达成率']")).to_be_visible()
        await expect(page.get_by_role("link", name="目标树")).to_be_visible()
        await shot(page, "12-kpi-progress-zh-hans")
        await page.get_by_role("link", name="English").click()
        await expect(page.get_by_role("heading", name="KPI progress")).to_be_visible()
