"""A whole review cycle for a small organisation, run through the console only, each person signed in
through Keycloak (OIDC, authorization code with PKCE) in a real browser (Playwright on Debian's Chromium).

The organisation is four people with Chinese names in two departments (销售部, 财务部). HR (陈静, in
English) imports it from CSV, creates a template and the cycle, starts it and sets the strategy; the
head of sales (张伟, in Chinese) writes the department KPI, approves his report's goal, nominates a
peer, writes the manager review and rates the finance department; an employee (李娜, in Chinese)
writes and submits her goal (a mistake first, shown at the field), checks in, writes her self review
and acknowledges her result; HR calibrates with a reason, closes calibration, sets and allocates the
bonus pools and publishes; the head of finance (刘洋) reads his bonus and development plan. HR forces
the stages whose other participants do not act in this story. Every person starts from "My tasks".

The services run under uvicorn on free ports with the session's Temporal dev server (a namespace of
their own) and a real worker; they verify the Keycloak access tokens with RS256 against the realm's
JWKS, and their own service tokens with HS256 (``tests.keycloak.PeopleAndServiceTokens``). Key pages
are screenshotted in English and Chinese (``test-artifacts/screenshots/journey/``) and checked with
axe-core (``tools/axe``): no serious or critical violation. Chinese names must appear intact on every
page a person visits and in the CSV exports (UTF-8 with a BOM).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from google.protobuf.duration_pb2 import Duration
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client

from devtools.stack.keycloak import KeycloakServer, RealmUser
from devtools.stack.process import free_port
from devtools.stack.temporal import SEARCH_ATTRIBUTES
from services.committee.app import create_app as create_committee_app
from services.common.auth import mint_token
from services.common.settings import Settings
from services.console.app import create_app as create_console_app
from services.cycles.app import create_app as create_cycles_app
from services.evaluation.app import create_app as create_evaluation_app
from services.feedback.app import create_app as create_feedback_app
from services.goals.app import create_app as create_goals_app
from services.results.app import create_app as create_results_app
from services.tracking.app import create_app as create_tracking_app
from tests import npm_tools
from tests.e2e.test_console_browser import CHROMIUM, CHROMIUM_ARGS, served
from tests.keycloak import KeycloakRealm, PeopleAndServiceTokens, keycloak_settings, load_realm
from workflows.worker import activities_for, build_worker, connect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots" / "journey"
AXE = npm_tools.TOOLS["axe"]
SAMPLE_TEMPLATE = ROOT / "docs" / "examples" / "sample_org" / "template.json"

DEPARTMENTS_CSV = "department_id,name,parent_id,head_employee_id\nsales,销售部,,E1\nfinance,财务部,,E4\n"
EMPLOYEES_CSV = (
    "employee_id,name,email,department_id,manager_id,job_title,grade,salary_band\n"
    "E1,张伟,zhang.wei@example.cn,sales,,销售总监,G12,B5\n"
    "E2,李娜,li.na@example.cn,sales,E1,客户经理,G8,B3\n"
    "E3,王芳,wang.fang@example.cn,sales,E1,客户经理,G8,B3\n"
    "E4,刘洋,liu.yang@example.cn,finance,,财务总监,G12,B5\n"
)
PEOPLE = {"E1": "张伟", "E2": "李娜", "E3": "王芳", "E4": "刘洋"}
USERS = [
    RealmUser("chenjing", "pw-chenjing", ["hr_admin"], "静", "陈", display_name="陈静"),
    RealmUser("zhangwei", "pw-zhangwei", ["dept_head", "manager", "employee"], "伟", "张", display_name="张伟",
              employee_id="E1", department_id="sales"),
    RealmUser("lina", "pw-lina", ["employee"], "娜", "李", display_name="李娜",
              employee_id="E2", department_id="sales"),
    RealmUser("wangfang", "pw-wangfang", ["employee"], "芳", "王", display_name="王芳",
              employee_id="E3", department_id="sales"),
    RealmUser("liuyang", "pw-liuyang", ["dept_head", "employee"], "洋", "刘", display_name="刘洋", employee_id="E4",
              department_id="finance"),
    RealmUser("zhaomin", "pw-zhaomin", ["finance"], "敏", "赵", display_name="赵敏"),
]  # fmt: skip
PASSWORDS = {u.username: u.password for u in USERS}
STAGE_TIMEOUT = 60.0


# -- the stack ------------------------------------------------------------------------------------
@dataclass
class JourneyStack:
    console_url: str
    urls: dict[str, str]
    settings: Settings
    realm: KeycloakRealm
    files: Path
    cycle_id: str = ""
    visited: list[str] = field(default_factory=list)
    finance: Person | None = None
    """Finance's browser, once finance signed in (it downloads the payroll after publication)."""

    def hr_headers(self) -> dict[str, str]:
        """An HS256 token the services accept (the test observes the workflow with it; it acts through the console)."""
        return {"Authorization": f"Bearer {mint_token(self.settings, sub='journey-observer', roles=['hr_admin'])}"}

    async def status(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(
                f"{self.urls['cycles']}/v1/cycles/{self.cycle_id}/status", headers=self.hr_headers()
            )
        return dict(response.json()) if response.status_code == 200 else {}

    async def wait_for_stage(self, *stages: str, timeout: float = STAGE_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = await self.status()
            if status.get("stage") in stages:
                return status
            await asyncio.sleep(0.3)
        raise AssertionError(f"the cycle did not reach {stages}; last status: {json.dumps(status)[:800]}")


async def fresh_namespace(client: Client) -> str:
    """A Temporal namespace of this module's own, with Tandem's search attributes: the worker of another
    test on the default namespace can never take this cycle's tasks, nor this worker theirs."""
    namespace = f"journey-{uuid.uuid4().hex[:8]}"
    service = client.workflow_service
    await service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86_400))
    )
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={k: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in SEARCH_ATTRIBUTES},
        )
    )
    for _ in range(100):
        try:
            await service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
            return namespace
        except Exception:  # noqa: BLE001 - the namespace registry catches up in a moment
            await asyncio.sleep(0.2)
    raise AssertionError(f"namespace {namespace} did not become available")


def with_verifier(app: FastAPI, people: Settings, services: Settings) -> FastAPI:
    app.state.token_verifier = PeopleAndServiceTokens(people, services)
    return app


@pytest.fixture(scope="module")
async def journey(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, temporal_server: Any,
    temporal_client: Client, keycloak_server: KeycloakServer,
) -> AsyncIterator[JourneyStack]:  # fmt: skip
    state = tmp_path_factory.mktemp("console-journey")
    ports = {name: free_port() for name in ("cycles", "goals", "tracking", "evaluation", "feedback", "results",
                                             "committee", "console")}  # fmt: skip
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    realm = await load_realm(keycloak_server, console_urls=[urls["console"]], users=USERS)
    namespace = await fresh_namespace(temporal_client)
    services = settings.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{state}/{{service}}.db",
            "temporal_address": temporal_server.address,
            "temporal_namespace": namespace,
            "cycle_workflows": True,
            **{f"{name}_url": url for name, url in urls.items()},
        }
    )
    people = keycloak_settings(services, realm)
    apps: dict[str, FastAPI] = {
        "cycles": create_cycles_app(services),
        "goals": create_goals_app(services),
        "tracking": create_tracking_app(services),
        "evaluation": create_evaluation_app(services),
        "feedback": create_feedback_app(services),
        "results": create_results_app(services),
        "committee": create_committee_app(services),
        "console": create_console_app(services, oidc=realm.oidc()),
    }
    files = state / "upload"
    files.mkdir()
    (files / "departments.csv").write_text(DEPARTMENTS_CSV, encoding="utf-8")
    (files / "employees.csv").write_text(EMPLOYEES_CSV, encoding="utf-8")
    template = json.loads(SAMPLE_TEMPLATE.read_text())
    template["name"] = "年度绩效考核 (journey)"
    template["results"] = {**template.get("results", {}), "pool_approval": "finance"}  # finance signs pools off
    (files / "template.json").write_text(json.dumps(template, ensure_ascii=False, indent=2), encoding="utf-8")
    async with AsyncExitStack() as stack:
        for name, app in apps.items():
            await stack.enter_async_context(served(with_verifier(app, people, services), ports[name]))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)))
        worker_client = await connect(temporal_server.address, namespace)
        await stack.enter_async_context(build_worker(worker_client, activities=activities_for(services, http)))
        yield JourneyStack(urls["console"], urls, services, realm, files)


# -- the browser ----------------------------------------------------------------------------------
def ensure_axe() -> Path:
    """axe-core from tools/axe (package-lock.json pins it); installed at session start, never skipped."""
    return npm_tools.ensure("axe")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    ensure_axe()
    # Pages here make several API calls each; on a busy 2-core machine a page can take seconds.
    expect.set_options(timeout=20_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@dataclass
class Person:
    """One person's browser: their own context (cookies), signed in through Keycloak."""

    username: str
    context: BrowserContext
    page: Page
    language: str

    async def open(self, path: str) -> Page:
        await self.page.goto(path)
        return self.page


async def sign_in(browser: Browser, stack: JourneyStack, username: str, *, chinese: bool) -> Person:
    """From "My tasks" to the Keycloak login page and back, as a person would."""
    context = await browser.new_context(
        base_url=stack.console_url,
        viewport={"width": 1280, "height": 900},
        locale="zh-CN" if chinese else "en-US",
        timezone_id="Asia/Shanghai" if chinese else "Europe/Berlin",
    )
    page = await context.new_page()
    await page.goto("/console/tasks")
    await expect(page).to_have_url(f"{stack.console_url}/console/sign-in?next=%2Fconsole%2Ftasks")
    await page.get_by_test_id("oidc-sign-in").click()
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(PASSWORDS[username])
    await page.locator("#kc-login").click()
    await page.wait_for_url(f"{stack.console_url}/console/tasks")
    await expect(page.locator("[data-testid=tasks]")).to_be_visible()
    return Person(username, context, page, "zh_Hans" if chinese else "en")


async def check_page(page: Page, *names: str) -> None:
    """Every visited page: the names shown intact, and no serious or critical accessibility problem."""
    content = await page.content()
    for name in names:
        assert name in content, f"{name} is missing on {page.url}"
    assert "\ufffd" not in content and "å¼ " not in content, f"mojibake on {page.url}"
    await page.add_script_tag(path=str(AXE))
    found = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"
    )
    assert not found, f"accessibility problems on {page.url}: {found}"


async def shots(person: Person, name: str, *, both: bool = True) -> None:
    """The page in both languages (the person's own first), each checked with axe. A page rendered by a
    refused form (``both=False``) is shot as it is: loading its address again would be another page."""
    page = person.page
    other = "en" if person.language == "zh_Hans" else "zh_Hans"
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{person.language}.png"), full_page=True)
    if not both:
        return
    url = page.url.split("#")[0]
    join = "&" if "?" in url else "?"
    await page.goto(f"{url}{join}lang={other}")
    await check_page(page)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{other}.png"), full_page=True)
    await page.goto(f"{url}{join}lang={person.language}")


async def task_link(person: Person, kind: str) -> None:
    """Follow the task of ``kind`` on "My tasks" (the first page after signing in)."""
    await person.open("/console/tasks")
    task = person.page.get_by_test_id(f"task-{kind}").first
    await expect(task).to_be_visible()
    await task.get_by_role("link").click()


async def submit_form(page: Page, test_id: str, button: str | None = None) -> None:
    form = page.get_by_test_id(test_id)
    await (form.get_by_role("button", name=button) if button else form.locator("button[type=submit]")).first.click()


# -- the journey ----------------------------------------------------------------------------------
async def test_a_whole_cycle_through_the_console(browser: Browser, journey: JourneyStack) -> None:
    stack = journey
    hr = await sign_in(browser, stack, "chenjing", chinese=False)
    zhang = await sign_in(browser, stack, "zhangwei", chinese=True)
    lina = await sign_in(browser, stack, "lina", chinese=True)
    await check_page(hr.page)
    await expect(hr.page.get_by_test_id("no-tasks")).to_be_visible()
    await shots(hr, "01-hr-tasks-empty")

    await hr_sets_up_the_cycle(hr, stack)
    await hr_sets_the_strategy(hr, stack)
    await head_writes_the_department_kpi(zhang, hr, stack)
    await employee_writes_her_goal(lina, stack)
    await manager_approves(zhang, stack)

    await force(hr, stack, "goal_setting", "tracking")
    await employee_checks_in(lina, stack)
    await force(hr, stack, "tracking", "evaluation")

    await employee_reviews_herself(lina, stack)
    await manager_reviews_and_nominates(zhang, stack)
    await heads_rate_each_other(browser, zhang, stack)
    await hr_calibrates(hr, stack)
    await force(hr, stack, "evaluation", "feedback")

    await employee_acknowledges(lina, stack)
    await employee_appeals_and_hr_resolves(browser, hr, stack)
    await force(hr, stack, "feedback", "result_application")

    await finance_sets_and_approves_the_pools(browser, stack)
    await hr_allocates_and_publishes(hr, stack)
    await stack.wait_for_stage("closed")
    await after_publication(browser, zhang, lina, stack)
    await finance_exports_payroll(stack)
    await talent_review_and_growth(zhang, lina, stack)
    for person in (hr, zhang, lina):
        await person.context.close()


async def talent_review_and_growth(zhang: Person, lina: Person, stack: JourneyStack) -> None:
    """The manager rates 李娜's potential on the talent review; she reads her growth path and 9-box."""
    page = await zhang.open(f"/console/cycles/{stack.cycle_id}/nine-box")
    form = page.get_by_test_id("rate-potential")
    await form.locator("select[name=employee_id]").select_option("E2")
    await form.locator("select[name=potential]").select_option("high")
    await form.get_by_role("button").click()
    await expect(page.get_by_role("status").first).to_contain_text("E2")
    await expect(page.get_by_test_id("grid")).to_contain_text("李娜")
    await check_page(page, "李娜")
    await shots(zhang, "21-manager-talent-review")
    page = await lina.open("/console/growth")
    await expect(page.get_by_test_id("history")).to_contain_text("exceeds")
    await expect(page.get_by_test_id("nine-box")).not_to_contain_text("—")
    await check_page(page, "李娜")
    await shots(lina, "22-employee-growth")
    page = await zhang.open(f"/console/cycles/{stack.cycle_id}/scorecard")
    await expect(page.get_by_test_id("perspective-financial")).to_contain_text("盈利增长")
    await check_page(page, "盈利增长")
    await shots(zhang, "23-head-scorecard")
    async with httpx.AsyncClient(base_url=stack.urls["committee"], headers=stack.hr_headers()) as committee:
        growth = (await committee.get("/v1/people/E2/growth")).json()
    assert [(r["rating"], r["potential"]) for r in growth["history"]] == [("exceeds", "high")]
    assert growth["nine_box"]["potential"] == "high"


async def finance_exports_payroll(stack: JourneyStack) -> None:
    """Finance downloads every allocated bonus: UTF-8 with a BOM, Chinese names intact, the pools in full."""
    assert stack.finance is not None
    export = await stack.finance.context.request.get(f"/console/cycles/{stack.cycle_id}/payroll.csv")
    assert export.status == 200, await export.text()
    body = await export.body()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert {r["Employee id"]: r["Name"] for r in rows} == PEOPLE
    async with httpx.AsyncClient(base_url=stack.urls["results"], headers=stack.hr_headers()) as results:
        base = f"/v1/cycles/{stack.cycle_id}/pools"
        allocated = [
            (await results.get(f"{base}/{d}/allocation")).json()["allocated_cents"] for d in ("sales", "finance")
        ]
    assert sum(Decimal(r["Amount"]) for r in rows) * 100 == sum(allocated) > 0
    await stack.finance.context.close()


async def hr_sets_up_the_cycle(hr: Person, stack: JourneyStack) -> None:
    page = hr.page
    await page.get_by_role("link", name="Organisation").click()
    await page.locator("#org-departments").set_input_files(str(stack.files / "departments.csv"))
    await page.locator("#org-employees").set_input_files(str(stack.files / "employees.csv"))
    await page.get_by_test_id("org-import").get_by_role("button", name="Import").click()
    await expect(page.get_by_role("status").first).to_contain_text("Organisation imported: 4 people added")
    await check_page(page, "销售部", "财务部")
    await shots(hr, "02-hr-organisation")

    await page.get_by_role("link", name="Templates").click()
    await page.locator("#new-template-document").fill((stack.files / "template.json").read_text(encoding="utf-8"))
    await page.get_by_role("button", name="Create template").click()
    await expect(page.get_by_role("status").first).to_contain_text("version 1")
    await check_page(page, "年度绩效考核")
    await shots(hr, "03-hr-template")

    await page.get_by_role("link", name="Cycles").click()
    form = page.get_by_test_id("create-cycle")
    await form.locator("input[name=name]").fill(f"FY{date.today().year} 考核周期")
    await form.locator("input[name=period_start]").fill((date.today() - timedelta(days=10)).isoformat())
    await form.locator("input[name=department_ids]").fill("sales, finance")
    await form.get_by_role("button", name="Create draft").click()
    await expect(page.get_by_role("status").first).to_contain_text("Created draft cycle")
    row = page.locator("tr", has_text="考核周期")
    stack.cycle_id = (await row.locator(".muted").first.inner_text()).strip()
    await row.get_by_role("button", name="Start cycle").click()
    # (a snapshot a service did not take at once is sent again when goal setting opens)
    await expect(page.get_by_role("status").first).to_contain_text("4 participants")
    await stack.wait_for_stage("goal_setting")
    await check_page(page)


async def hr_sets_the_strategy(hr: Person, stack: JourneyStack) -> None:
    page = await hr.open(f"/console/cycles/{stack.cycle_id}/goals")
    objective = page.get_by_test_id("new-objective")
    await objective.locator("input[name=name]").fill("盈利增长")
    await objective.get_by_role("button", name="Add objective").click()
    await expect(page.get_by_role("status").first).to_contain_text("Objective '盈利增长' added")
    await page.get_by_text("New company KPI for this objective").click()
    kpi = page.get_by_test_id("new-goal")
    await kpi.locator("input[name=name]").fill("公司营收")
    await kpi.locator("input[name=weight]").fill("100")
    await kpi.locator("input[name=unit]").fill("CNY")
    await kpi.locator("input[name=target_value]").fill("1000000")
    await kpi.get_by_role("button", name="Add goal").click()
    await expect(page.get_by_role("status").first).to_contain_text("Created '公司营收'")
    await page.locator("li", has_text="公司营收").get_by_role("button", name="Submit").click()
    await expect(page.get_by_role("status").first).to_contain_text("for approval")
    # Separation of duties: whoever submitted it may not approve it (a second HR admin would).
    await page.get_by_role("link", name="Approvals").click()
    await page.locator("tr", has_text="公司营收").get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status").first).to_contain_text("nobody approves what they submitted")


async def head_writes_the_department_kpi(zhang: Person, hr: Person, stack: JourneyStack) -> None:
    await zhang.open("/console/tasks")
    await check_page(zhang.page, "张伟")
    await shots(zhang, "04-head-tasks")
    await task_link(zhang, "author_kpis")
    page = zhang.page
    await check_page(page)
    form = page.get_by_test_id("new-goal")
    await form.locator("input[name=name]").fill("销售部营收")
    await form.locator("select[name=kind]").select_option("kpi")
    await form.locator("details summary").click()
    await form.locator("input[name=metric]").fill("sales.revenue")
    await form.locator("input[name=data_owner_department_id]").fill("sales")
    await form.locator("select[name=aggregation]").select_option("sum")
    await form.locator("input[name=weight]").fill("100")
    await form.locator("input[name=unit]").fill("CNY")
    await form.locator("input[name=target_value]").fill("600000")
    await form.locator("button[type=submit]").click()
    await expect(page.get_by_role("status").first).to_contain_text("销售部营收")
    await page.locator("tr", has_text="销售部营收").locator("[data-testid^=submit-]").click()
    await expect(page.get_by_role("status").first).to_contain_text("销售部营收")
    await shots(zhang, "04-head-department-kpi")
    # HR approves the department KPI
    page = await hr.open(f"/console/cycles/{stack.cycle_id}/approvals")
    await page.locator("tr", has_text="销售部营收").get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status").first).to_contain_text("Approved goal '销售部营收'")


async def employee_writes_her_goal(lina: Person, stack: JourneyStack) -> None:
    await lina.open("/console/tasks")
    await check_page(lina.page, "李娜")
    await shots(lina, "05-employee-tasks")
    await task_link(lina, "write_goals")
    page = lina.page
    form = page.get_by_test_id("new-goal")
    await form.locator("input[name=name]").fill("华东区新签合同额")
    await form.locator("input[name=unit]").fill("CNY")
    await form.locator("select[name=kind]").select_option("kpi")
    await form.locator("details summary").click()
    await form.locator("input[name=metric]").fill("sales.contracts")
    await form.locator("input[name=data_owner_department_id]").fill("sales")
    await form.locator("input[name=target_value]").fill("一百万")  # not a number: refused at the field
    await form.locator("input[name=weight]").fill("100")
    await expect(form.get_by_test_id("weight-sum")).to_have_text("100")
    await form.locator("button[type=submit]").click()
    error = page.get_by_test_id("error-target_value")
    await expect(error).to_be_visible()
    assert await page.locator("input[name=target_value]").first.get_attribute("aria-invalid") == "true"
    assert await page.locator("input[name=name]").first.input_value() == "华东区新签合同额"  # the values are kept
    await check_page(page, "李娜")
    await shots(lina, "05-employee-goal-error", both=False)
    await page.locator("input[name=target_value]").first.fill("300000")
    await page.get_by_test_id("new-goal").locator("button[type=submit]").click()
    await expect(page.get_by_role("status").first).to_contain_text("华东区新签合同额")
    await page.locator("tr", has_text="华东区新签合同额").locator("[data-testid^=submit-]").click()
    await expect(page.locator("tr", has_text="华东区新签合同额").locator(".pill")).to_have_text("已提交")
    await shots(lina, "06-employee-goal-submitted")


async def manager_approves(zhang: Person, stack: JourneyStack) -> None:
    await task_link(zhang, "approve_goals")
    page = zhang.page
    await expect(page.locator("tr", has_text="华东区新签合同额")).to_be_visible()
    await check_page(page)
    await shots(zhang, "07-manager-approvals")
    await page.locator("tr", has_text="华东区新签合同额").locator("[data-testid^=approve-]").click()
    await expect(page.get_by_role("status").first).to_contain_text("华东区新签合同额")


async def force(hr: Person, stack: JourneyStack, stage: str, then: str) -> None:
    """HR completes a stage whose other participants do not act in this story."""
    await stack.wait_for_stage(stage)
    page = await hr.open(f"/console/cycles/{stack.cycle_id}")
    form = page.get_by_test_id("force-stage")
    await form.locator("select[name=stage]").select_option(stage)
    await form.locator("input[name=reason]").fill("The rest of the organisation is out of this story.")
    await form.get_by_role("button", name="Force stage").click()
    await expect(page.get_by_role("status").first).to_contain_text("Stage completed by HR decision")
    if stage == "goal_setting":
        await check_page(page)
        await shots(hr, "08-hr-cycle-controls")
    await stack.wait_for_stage(then, "closed")


async def employee_checks_in(lina: Person, stack: JourneyStack) -> None:
    page = await lina.open(f"/console/cycles/{stack.cycle_id}/me")
    form = page.get_by_test_id("check-in")
    await form.locator("input[name=comment]").fill("两份合同已进入法务审核。")
    await form.locator("select[name=confidence]").select_option("4")
    await form.locator("button[type=submit]").click()
    await expect(page.get_by_role("status").first).to_have_class("notice ok")
    await expect(page.get_by_text("两份合同已进入法务审核。")).to_be_visible()


async def employee_reviews_herself(lina: Person, stack: JourneyStack) -> None:
    await task_link(lina, "review_self")
    page = lina.page
    form = page.get_by_test_id("review-form")
    radios = form.locator("fieldset.scale")
    await expect(radios.first).to_be_visible()  # count() does not wait for the page
    count = await radios.count()
    assert count >= 2
    for index in range(count - 1):  # one competency left out: refused, said where
        await radios.nth(index).locator("input[value='4']").check()
    await form.get_by_role("button").last.click()
    # the API names the field "ratings": shown there once the service client passes the Problem body on,
    # above the form until then (services/common/client.py keeps only the detail text today)
    await expect(page.locator("[data-testid=error-ratings], [data-testid=form-error]").first).to_contain_text(
        "rate every competency"
    )
    await shots(lina, "09-employee-review-error", both=False)
    form = page.get_by_test_id("review-form")
    await form.locator("fieldset.scale").nth(count - 1).locator("input[value='5']").check()
    await form.locator("textarea[name=comment]").fill("今年完成了华东区的两个重点客户。")
    await form.get_by_role("button").last.click()
    await expect(page.get_by_role("status").first).to_be_visible()
    await check_page(page)


async def manager_reviews_and_nominates(zhang: Person, stack: JourneyStack) -> None:
    await task_link(zhang, "nominate_raters")
    page = zhang.page
    await check_page(page, "李娜", "王芳")
    form = page.get_by_test_id("nominate")
    await form.locator("select[name=reviewee_id]").select_option("E2")
    await form.locator("input[name=rater_id]").fill("E3")
    await form.locator("button[type=submit]").click()
    await expect(page.get_by_role("status").first).to_contain_text("E3")
    await shots(zhang, "10-manager-team")
    csv = await zhang.context.request.get(f"/console/cycles/{stack.cycle_id}/team.csv")
    body = await csv.body()
    assert body.startswith(b"\xef\xbb\xbf") and "李娜".encode() in body and "王芳".encode() in body

    await task_link(zhang, "review_manager")
    page = zhang.page
    form = page.get_by_test_id("review-form")
    scales = form.locator("fieldset.scale")
    await expect(scales.first).to_be_visible()  # count() does not wait for the page
    for index in range(await scales.count()):
        await scales.nth(index).locator("input[value='4']").check()
    await form.locator("textarea[name=comment]").fill("客户关系维护得很好。")
    await form.get_by_role("button").last.click()
    await expect(page.get_by_role("status").first).to_be_visible()


async def declare_and_rate(head: Person, stack: JourneyStack, other: str, comment: str) -> Page:
    page = await head.open(f"/console/cycles/{stack.cycle_id}/department#collaboration")
    declare = page.locator("form", has=page.locator("input[name=department_b]"))
    await declare.locator("input[name=department_b]").fill(other)
    await declare.locator("button[type=submit]").click()
    await expect(page.get_by_role("status").first).to_contain_text(other)
    rate = page.get_by_test_id(f"rate-{other}")
    for name, value in (("responsiveness", "4"), ("data_quality", "3"), ("reliability", "4")):
        await rate.locator(f"select[name={name}]").select_option(value)
    await rate.locator("input[name=comment]").fill(comment)
    await rate.locator("button[type=submit]").click()
    return page


async def heads_rate_each_other(browser: Browser, zhang: Person, stack: JourneyStack) -> None:
    """A collaboration counts once both heads declare it; each then rates the other department."""
    liu = await sign_in(browser, stack, "liuyang", chinese=True)
    page = await declare_and_rate(liu, stack, "sales", "报价流程响应及时。")
    # sales has not declared it yet: the API's reason is shown at the rating form
    await expect(page.get_by_test_id("rate-sales").get_by_test_id("form-error")).to_contain_text("sales")
    page = await declare_and_rate(zhang, stack, "finance", "月末数据有时延迟。")
    await expect(page.get_by_role("status").first).to_contain_text("finance")
    await check_page(page, "张伟")
    await shots(zhang, "11-head-collaboration")
    page = await declare_and_rate(liu, stack, "sales", "报价流程响应及时。")
    await expect(page.get_by_role("status").first).to_contain_text("sales")
    await liu.context.close()


async def hr_calibrates(hr: Person, stack: JourneyStack) -> None:
    page = await hr.open(f"/console/cycles/{stack.cycle_id}/calibration")
    # The page is rendered from several evaluation calls; on a loaded machine one of them may time out
    # and the page shows that problem instead of its forms. HR would reload; so does the test, and
    # says what the page showed if the forms never come.
    for _ in range(4):
        if await page.get_by_test_id("compute").count():
            break
        await page.wait_for_timeout(3000)
        await page.reload()
    assert await page.get_by_test_id("compute").count(), (await page.locator("body").inner_text())[:1500]
    await page.get_by_test_id("compute").click()
    await expect(page.get_by_role("status").first).to_contain_text("Scores computed")
    form = page.get_by_test_id("adjust-E2")
    await form.locator("select[name=new_rating]").select_option("exceeds")
    await form.locator("input[name=reason]").fill("Won the two largest accounts in the east region.")
    await form.locator("button[type=submit]").click()
    await expect(page.get_by_role("status").first).to_contain_text("Calibrated E2")
    # Closing needs a score for everyone: the people without reviews get one, with the reason.
    for employee, rating in (("E1", "meets"), ("E3", "meets"), ("E4", "needs improvement")):
        form = page.get_by_test_id(f"adjust-{employee}")
        await form.locator("select[name=new_rating]").select_option(rating)
        await form.locator("input[name=reason]").fill(
            "No reviews by the deadline: rated under the missing-review rule."
        )
        await form.locator("button[type=submit]").click()
        await expect(page.get_by_role("status").first).to_contain_text(f"Calibrated {employee}")
    check = await hr.open(f"/console/cycles/{stack.cycle_id}/calibration")
    await check_page(check, "李娜", "刘洋")
    await shots(hr, "12-hr-calibration")
    await check.get_by_test_id("close-calibration").click()
    await expect(check.get_by_role("status").first).to_contain_text("Calibration closed")


async def employee_acknowledges(lina: Person, stack: JourneyStack) -> None:
    await task_link(lina, "acknowledge_result")
    page = lina.page
    await expect(page.get_by_test_id("rating")).to_have_text("exceeds")
    await check_page(page, "李娜")
    await shots(lina, "13-employee-result")
    await page.get_by_test_id("acknowledge").click()
    await expect(page.get_by_test_id("acknowledged")).to_be_visible()


async def employee_appeals_and_hr_resolves(browser: Browser, hr: Person, stack: JourneyStack) -> None:
    """王芳 appeals her result in Chinese; HR follows the task, takes it under review and upholds it."""
    wang = await sign_in(browser, stack, "wangfang", chinese=True)
    page = await wang.open(f"/console/cycles/{stack.cycle_id}/me")
    form = page.get_by_test_id("appeal")
    await form.locator("textarea[name=reason]").fill("华东区两笔订单被误记到下一季度。")
    await form.locator("button[type=submit]").click()
    await expect(page.get_by_role("status").first).to_contain_text("申诉")
    await check_page(page, "王芳", "华东区两笔订单被误记到下一季度。")
    await shots(wang, "14-employee-appeal")
    await wang.context.close()

    await task_link(hr, "resolve_appeal")
    page = hr.page
    card = page.locator("section.card", has_text="华东区两笔订单")
    await card.get_by_role("button", name="Take under review").click()
    await expect(page.get_by_role("status").first).to_contain_text("is under review")
    await card.locator("select[name=outcome]").select_option("upheld")
    await card.locator("textarea[name=note]").fill("两笔订单均在下一季度开票，结果维持不变。")
    await card.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_role("status").first).to_contain_text("of E3 resolved: upheld")
    await check_page(page, "王芳")
    await shots(hr, "15-hr-appeal-resolved")
    async with httpx.AsyncClient(base_url=stack.urls["feedback"], headers=stack.hr_headers()) as feedback:
        appeals = (await feedback.get(f"/v1/cycles/{stack.cycle_id}/appeals")).json()
    # the services record the person by the subject the console maps from the Keycloak token (the username)
    assert [(a["employee_id"], a["status"], a["resolved_by"]) for a in appeals] == [("E3", "upheld", "chenjing")]


async def finance_sets_and_approves_the_pools(browser: Browser, stack: JourneyStack) -> None:
    """Finance (赵敏, no part in the cycle otherwise) sets each department's budget and signs it off."""
    zhao = await sign_in(browser, stack, "zhaomin", chinese=False)
    await task_link(zhao, "set_pool")
    page = zhao.page
    for department, amount in (("sales", "80,000.00"), ("finance", "20,000.00")):
        card = page.get_by_test_id(f"pool-{department}")
        await card.locator("input[name=amount]").fill(amount)
        await card.locator("input[name=currency]").fill("CNY")
        await card.get_by_role("button", name="Set pool").click()
        await expect(page.get_by_role("status").first).to_contain_text(f"Pool of {department} set")
        await expect(page.get_by_test_id(f"approval-{department}")).to_contain_text("waiting for finance")
    await task_link(zhao, "approve_pool")
    for department in ("sales", "finance"):
        await page.get_by_test_id(f"approve-{department}").click()
        await expect(page.get_by_role("status").first).to_contain_text(f"Pool of {department} approved")
    fund = page.get_by_test_id("award-fund")
    await fund.locator("input[name=amount]").fill("5,000.00")
    await fund.locator("input[name=currency]").fill("CNY")
    await fund.get_by_role("button", name="Set award fund").click()
    await expect(page.get_by_role("status").first).to_contain_text("Collaboration award fund set")
    await check_page(page)
    await shots(zhao, "16-finance-pools")
    async with httpx.AsyncClient(base_url=stack.urls["results"], headers=stack.hr_headers()) as results:
        pools = (await results.get(f"/v1/cycles/{stack.cycle_id}/pools")).json()
    assert [(p["department_id"], p["amount_cents"], p["approved_by"]) for p in pools] == [
        ("finance", 2_000_000, "zhaomin"),
        ("sales", 8_000_000, "zhaomin"),
    ]
    async with httpx.AsyncClient(base_url=stack.urls["results"], headers=stack.hr_headers()) as results:
        fund = (await results.get(f"/v1/cycles/{stack.cycle_id}/award-fund")).json()
    assert (fund["amount_cents"], fund["currency"], fund["updated_by"]) == (500_000, "CNY", "zhaomin")
    stack.finance = zhao


async def hr_allocates_and_publishes(hr: Person, stack: JourneyStack) -> None:
    await task_link(hr, "allocate_pool")
    page = hr.page
    for department in ("sales", "finance"):
        await page.get_by_test_id(f"allocate-{department}").click()
        await expect(page.get_by_role("status").first).to_contain_text(f"Pool of {department} allocated")
    await check_page(page, "李娜", "刘洋")
    await shots(hr, "17-hr-pools")
    allocation = await hr.context.request.get(f"/console/cycles/{stack.cycle_id}/pools/sales/allocation.csv")
    body = await allocation.body()
    assert body.startswith(b"\xef\xbb\xbf") and "李娜".encode() in body
    # the lowest rating gets a development plan; HR gives it its first action
    await page.get_by_test_id("generate-plans").click()
    await expect(page.get_by_role("status").first).to_contain_text("development plan")
    person = await hr.open(f"/console/cycles/{stack.cycle_id}/people/E4")
    form = person.get_by_test_id("plan-item")
    await form.locator("input[name=description]").fill("与销售部每月对账，按时提交月末数据。")
    await form.locator("button[type=submit]").click()
    await expect(person.get_by_role("status").first).to_contain_text("Action added")
    page = await hr.open(f"/console/cycles/{stack.cycle_id}/pools")
    await page.get_by_test_id("publish").click()
    await expect(page.get_by_role("status").first).to_contain_text("Results published")


async def after_publication(browser: Browser, zhang: Person, lina: Person, stack: JourneyStack) -> None:
    page = await lina.open(f"/console/cycles/{stack.cycle_id}/me")
    await expect(page.get_by_test_id("bonus-amount")).to_contain_text("¥")
    await check_page(page, "李娜")
    await shots(lina, "18-employee-bonus")
    liu = await sign_in(browser, stack, "liuyang", chinese=True)
    page = await liu.open(f"/console/cycles/{stack.cycle_id}/me")
    await expect(page.get_by_test_id("bonus-amount")).to_contain_text("¥")
    await expect(page.get_by_text("与销售部每月对账，按时提交月末数据。")).to_be_visible()
    await check_page(page, "刘洋")
    await shots(liu, "19-head-bonus-and-plan")
    await liu.context.close()
    page = await zhang.open(f"/console/cycles/{stack.cycle_id}/collaboration")
    await check_page(page, "销售部", "财务部")
    csv = await zhang.context.request.get(f"/console/cycles/{stack.cycle_id}/collaboration.csv")
    body = await csv.body()
    assert body.startswith(b"\xef\xbb\xbf") and "销售部".encode() in body and "财务部".encode() in body
    await shots(zhang, "20-head-collaboration-report")
