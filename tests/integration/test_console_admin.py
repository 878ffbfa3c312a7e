"""HR's administration pages and the console's formats, over HTTP against a real cycles service, on SQLite
and PostgreSQL: the org file import (a rejected file lists its rows, a dry run, Chinese names intact),
template editing (a refusal at its field, a new version), the audit log in the user's time zone with
its CSV (UTF-8 with a BOM), "My tasks", the cycle controls' refusal at the form, and numbers, money and
times in the user's locale and zone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from services.common.settings import Settings
from services.console.charts import Bar, bar_chart
from services.console.exports import BOM
from services.console.formats import fmt_dt, fmt_money, fmt_num, fmt_pct, parse_local_input
from services.console.i18n import _timezone, use_locale
from tests.integration.test_console_access import console_world, signed_in
from tests.integration.test_ops_overview import start_sample_cycle

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org"
DEPARTMENTS = "department_id,name,parent_id,head_employee_id\nsales,销售部,,E1\nfinance,财务部,,E2\n"
EMPLOYEES = (
    "employee_id,name,email,department_id,manager_id,job_title,grade,salary_band\n"
    "E1,张伟,zhang.wei@example.cn,sales,,销售总监,G12,B5\n"
    "E2,刘洋,liu.yang@example.cn,finance,,财务总监,G12,B5\n"
)


def flash(response_location: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(response_location).query)
    kind = "msg" if "msg" in query else "error"
    return kind, query[kind][0]


def test_numbers_money_and_times_follow_the_locale_and_the_zone() -> None:
    moment = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    token = _timezone.set("Asia/Shanghai")
    try:
        use_locale("zh_Hans")
        assert fmt_dt(moment) == "2026-06-03 18:00 CST" and fmt_dt("2026-06-03T10:00:00Z") == "2026-06-03 18:00 CST"
        assert fmt_money(8_000_000, "CNY") == "¥80,000.00" and fmt_num(2049.94) == "2,049.9"
        assert parse_local_input("2026-06-03T18:00") == moment  # a form's local time, read back as UTC
        use_locale("en")
        assert fmt_money(8_000_000, "CNY") == "CN¥80,000.00" and fmt_money(123_456, "EUR") == "€1,234.56"
    finally:
        _timezone.reset(token)
        use_locale("en")
    assert fmt_dt(moment) == "2026-06-03 10:00 UTC"  # no preference: UTC, and it says so
    # the KPI chart and its table say the same number; the bar of an outlier stops at the axis' end
    chart = bar_chart([Bar("Revenue", 2049.94), Bar("Cost", 100.0)], title="KPI attainment")
    assert fmt_pct(chart.rows[0].bar.value) == "2,049.9%" and fmt_pct(100.0) == "100%"
    assert chart.rows[0].clipped and not chart.rows[1].clipped and chart.rows[1].width > 150


async def test_org_import_templates_audit_tasks_and_controls(settings: Settings, database_url: str) -> None:
    async with console_world(settings, database_url) as world:
        client = world.client
        csrf = signed_in(client, settings, "hr_admin")

        # a file with a problem: nothing is imported, every problem listed with its row and column
        broken = EMPLOYEES + "E3,王芳,wang.fang@example.cn,nowhere,E1,客户经理,G8,B3\n"
        files = {"departments": ("departments.csv", DEPARTMENTS.encode(), "text/csv"),
                 "employees": ("employees.csv", broken.encode(), "text/csv")}  # fmt: skip
        rejected = await client.post("/console/org/import", data={"csrf": csrf}, files=files)
        assert rejected.status_code == 422 and 'data-testid="import-rejected"' in rejected.text
        assert "employees.csv" in rejected.text and "nowhere" in rejected.text and "department_id" in rejected.text

        files["employees"] = ("employees.csv", EMPLOYEES.encode(), "text/csv")
        dry = await client.post("/console/org/import", data={"csrf": csrf, "dry_run": "1"}, files=files)
        assert dry.status_code == 200 and "The files are valid" in dry.text
        assert "No organisation loaded yet." in dry.text  # a dry run changes nothing
        done = await client.post("/console/org/import", data={"csrf": csrf}, files=files)
        assert done.status_code == 303 and flash(done.headers["location"])[1].startswith("Organisation imported: 2")
        page = await client.get("/console/org")
        assert "销售部" in page.text and "财务部" in page.text
        forged = await client.post("/console/org/import", files=files)  # no CSRF token in the multipart form
        assert forged.status_code == 403

        # templates: a refused value is shown at its field; a saved one is a new version
        spec = json.loads((SAMPLE / "template.json").read_text())
        created = await client.post("/console/templates", data={"csrf": csrf, "document": json.dumps(spec)})
        assert created.status_code == 303
        template_page = created.headers["location"].split("?")[0]
        edit = await client.get(template_page)
        assert edit.status_code == 200 and 'name="stages.0.duration_days"' in edit.text
        document = json.dumps(spec)
        refused = await client.post(
            template_page, data={"csrf": csrf, "document": document, "stages.0.duration_days": "0"}
        )
        assert refused.status_code == 422 and 'data-testid="error-stages.0.duration_days"' in refused.text
        not_json = await client.post(template_page, data={"csrf": csrf, "document": "{not json"})
        assert not_json.status_code == 422 and "not valid JSON" in not_json.text
        saved = await client.post(template_page, data={"csrf": csrf, "document": document,
                                                       "stages.0.duration_days": "40"})  # fmt: skip
        assert saved.status_code == 303 and "version 2" in flash(saved.headers["location"])[1]

        # the audit log: in the user's time zone, and as CSV with a BOM (Excel reads the names right)
        client.cookies.set("tz", "Asia/Shanghai", domain="test.local", path="/")
        audit = await client.get("/console/audit", params={"service": "cycles"})
        assert audit.status_code == 200 and " CST" in audit.text and "hr_admin-user" in audit.text
        exported = await client.get("/console/audit.csv", params={"service": "cycles", "entity": "cycles_employee"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert exported.content.startswith(BOM.encode()) and "张伟" in exported.content.decode("utf-8")
        saved_tz = await client.post("/console/preferences", data={"csrf": csrf, "tz": "Mars/Olympus"})
        assert flash(saved_tz.headers["location"])[0] == "error"

        # my tasks with a running cycle: what cannot be checked (services down) is said, not hidden
        cycle = await start_sample_cycle(world.cycles, settings, departments=["sales"])
        tasks = await client.get("/console/tasks")
        assert tasks.status_code == 200 and "Could not check" in tasks.text

        # the cycle controls: the API's refusal comes back at the form (Temporal is down here)
        forced = await client.post(
            f"/console/cycles/{cycle}/control/force-stage",
            data={"csrf": csrf, "stage": "goal_setting", "reason": "testing"},
        )
        assert forced.status_code == 422 and 'data-testid="force-stage"' in forced.text
        assert 'role="alert"' in forced.text
