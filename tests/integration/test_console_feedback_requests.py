"""Feedback on request through the console, over the real cycles and feedback services (in-process, over
HTTP), on SQLite and PostgreSQL: an employee asks her manager (a refusal shown at its field), the
manager finds the request in My tasks with its due date, answers it through the form, and the
requester reads the answer; a colleague in another department declines with a reason. Chinese names
and questions come through intact and escaped, in English and in Simplified Chinese."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.common.settings import Settings
from services.cycles.service import sample_template
from tests.integration.test_console_access import signed_in
from tests.integration.test_console_feedback_pages import console_with_feedback, flash
from tests.support import auth

DEPARTMENTS = "department_id,name,parent_id,head_employee_id\nsales,销售部,,E1\nsupport,客服部,,E2\n"
EMPLOYEES = (
    "employee_id,name,email,department_id,manager_id,job_title,grade,salary_band\n"
    "E1,张伟,zhang.wei@example.cn,sales,,销售经理,G12,B5\n"
    "E2,刘洋,liu.yang@example.cn,support,,客服主管,G12,B5\n"
    "E3,王芳,wang.fang@example.cn,sales,E1,客户经理,G8,B3\n"
)
PEOPLE = [("E1", "张伟", "sales", None), ("E2", "刘洋", "support", None), ("E3", "王芳", "sales", "E1")]


async def start_cycle(cycles: httpx.AsyncClient, settings: Settings) -> str:
    """The small Chinese organisation above, a template and a started cycle over both departments."""
    hr = auth(settings, "hr_admin", sub="hr-admin")
    files = {"departments": ("departments.csv", DEPARTMENTS.encode(), "text/csv"),
             "employees": ("employees.csv", EMPLOYEES.encode(), "text/csv")}  # fmt: skip
    imported = await cycles.post("/v1/org/import", files=files, headers=hr)
    assert imported.status_code == 200, imported.text
    template = await cycles.post("/v1/templates", json=sample_template().model_dump(mode="json"), headers=hr)
    assert template.status_code == 201, template.text
    today = date.today()
    created = await cycles.post(
        "/v1/cycles",
        json={
            "name": f"反馈测试 {uuid.uuid4().hex[:6]}",
            "template_id": template.json()["template_id"],
            "period_start": (today - timedelta(days=10)).isoformat(),
            "period_end": (today + timedelta(days=300)).isoformat(),
            "department_ids": ["sales", "support"],
        },
        headers=hr,
    )
    assert created.status_code == 201, created.text
    cycle_id: str = created.json()["cycle_id"]
    started = await cycles.post(f"/v1/cycles/{cycle_id}/start", headers=hr)
    assert started.status_code == 200, started.text
    return cycle_id


def snapshot(cycle_id: str) -> dict[str, Any]:
    return {
        "cycle_id": cycle_id,
        "departments": [
            {"department_id": "sales", "name": "销售部", "head_employee_id": "E1"},
            {"department_id": "support", "name": "客服部", "head_employee_id": "E2"},
        ],
        "participants": [
            {"employee_id": e, "name": n, "department_id": d, "manager_id": m, "job_title": "Staff", "grade": "G8"}
            for e, n, d, m in PEOPLE
        ],
    }


def section(html: str, test_id: str) -> str:
    return html.split(f'data-testid="{test_id}"', 1)[1].split("</section>", 1)[0]


async def test_request_answer_and_decline_feedback_through_the_console(settings: Settings, database_url: str) -> None:
    async with console_with_feedback(settings, database_url) as c:
        cycle_id = await start_cycle(c.cycles, settings)
        hr = auth(settings, "hr_admin")
        put = await c.feedback.put(f"/v1/cycles/{cycle_id}/participants", json=snapshot(cycle_id), headers=hr)
        assert put.status_code == 200, put.text
        cycle = f"/console/cycles/{cycle_id}"
        requests_page = f"{cycle}/feedback-requests"
        due = (date.today() + timedelta(days=7)).isoformat()
        question = "请评价我第三季度计划的交接 <b>Q3</b>"

        # 王芳 (E3) finds the way from her own page, and the form refuses at the field
        csrf = signed_in(c.client, settings, "employee", employee_id="E3", department_id="sales")
        own = await c.client.get(f"{cycle}/people/E3")
        assert own.status_code == 200, own.text
        assert 'data-testid="request-feedback-link"' in own.text and "<h1>王芳</h1>" in own.text
        form = {"csrf": csrf, "giver_id": "E3", "question": question, "due_date": due}
        myself = await c.client.post(requests_page, data=form)
        assert myself.status_code == 422, myself.text
        assert 'data-testid="error-giver_id"' in myself.text and "cannot ask yourself" in myself.text
        escaped = "请评价我第三季度计划的交接 &lt;b&gt;Q3&lt;/b&gt;"  # kept in the form, escaped
        assert 'aria-invalid="true"' in myself.text and escaped in myself.text
        past = await c.client.post(requests_page, data={**form, "giver_id": "E1", "due_date": "2020-01-01"})
        assert past.status_code == 422 and 'data-testid="error-due_date"' in past.text
        assert "2020-01-01 is in the past" in section(past.text, "request-feedback")
        assert 'data-testid="error-giver_id"' not in past.text

        sent = await c.client.post(requests_page, data={**form, "giver_id": "E1", "back": f"{cycle}/people/E3"})
        assert flash(sent) == ("msg", "Feedback requested from E1.")
        assert urlsplit(sent.headers["location"]).path == f"{cycle}/people/E3"
        twice = await c.client.post(requests_page, data={**form, "giver_id": "E1"})
        assert twice.status_code == 422
        assert 'data-testid="error-giver_id"' in twice.text and "still open" in twice.text
        request_id = (await c.feedback.get(f"/v1/cycles/{cycle_id}/feedback-requests", headers=hr)).json()[0]["id"]
        mine = await c.client.get(requests_page)
        assert mine.status_code == 200 and "waiting for an answer" in section(mine.text, "my-requests")

        # 张伟 (E1, her manager) has it in My tasks, due on the date she gave, linking to the form
        csrf = signed_in(c.client, settings, "manager", employee_id="E1", department_id="sales")
        tasks = await c.client.get("/console/tasks")
        assert tasks.status_code == 200, tasks.text
        task = tasks.text.split('data-testid="task-answer_feedback_request"', 1)[1].split("</li>", 1)[0]
        assert f'href="{requests_page}/{request_id}"' in task
        assert f"Feedback requested by 王芳: {escaped}" in task
        assert f"by {due}" in task
        chinese = await c.client.get("/console/tasks", params={"lang": "zh_Hans"})
        assert f"王芳 请求绩效反馈：{escaped}" in chinese.text
        form_page = await c.client.get(f"{requests_page}/{request_id}", params={"lang": "en"})
        assert form_page.status_code == 200 and 'data-testid="answer-request"' in form_page.text
        assert 'data-testid="decline-request"' in form_page.text
        assert "<h1>Feedback requested by 王芳</h1>" in form_page.text

        empty = await c.client.post(f"{requests_page}/{request_id}/answer", data={"csrf": csrf, "message": " "})
        assert empty.status_code == 422 and 'data-testid="error-message"' in empty.text
        answered = await c.client.post(
            f"{requests_page}/{request_id}/answer", data={"csrf": csrf, "message": "交接很清楚；下次请写明风险。"}
        )
        assert flash(answered) == ("msg", "Your answer was sent to E3.")
        again = await c.client.post(f"{requests_page}/{request_id}/answer", data={"csrf": csrf, "message": "再次"})
        assert again.status_code == 422 and "already answered" in again.text  # at the form: no field to name
        tasks = await c.client.get("/console/tasks")
        assert 'data-testid="task-answer_feedback_request"' not in tasks.text
        report = await c.client.get(f"{cycle}/people/E3")  # a manager may ask a report from her page
        assert "<h3>Ask 王芳 for feedback</h3>" in section(report.text, "request-feedback")

        # 王芳 reads the answer on her requests page (and as feedback from 张伟), then asks 刘洋 in support
        csrf = signed_in(c.client, settings, "employee", employee_id="E3", department_id="sales")
        mine = await c.client.get(requests_page)
        made = section(mine.text, "my-requests")
        assert f'data-testid="answer-{request_id}">交接很清楚；下次请写明风险。<' in made
        assert '<span class="pill answered">answered</span>' in made
        chinese = await c.client.get(requests_page, params={"lang": "zh_Hans"})
        assert '<span class="pill answered">已回复</span>' in section(chinese.text, "my-requests")
        await c.client.get(requests_page, params={"lang": "en"})
        second = await c.client.post(requests_page, data={"csrf": csrf, "giver_id": "E2", "question": "客服交接？"})
        assert flash(second) == ("msg", "Feedback requested from E2.")
        second_id = max(r["id"] for r in (await c.feedback.get(f"/v1/cycles/{cycle_id}/feedback-requests",
                                                                   headers=hr)).json())  # fmt: skip
        not_hers = await c.client.post(f"{requests_page}/{second_id}/decline", data={"csrf": csrf, "reason": "x"})
        assert not_hers.status_code == 422 and "only &#39;E2&#39;, who was asked," in not_hers.text

        csrf = signed_in(c.client, settings, "employee", employee_id="E2", department_id="support")
        asked = await c.client.get(requests_page)
        assert f'data-testid="open-request-{second_id}"' in section(asked.text, "asked-of-me")
        declined = await c.client.post(
            f"{requests_page}/{second_id}/decline", data={"csrf": csrf, "reason": "我没有参与这个项目。"}
        )
        assert flash(declined) == ("msg", "You declined the request of E3.")
        signed_in(c.client, settings, "employee", employee_id="E3", department_id="sales")
        made = section((await c.client.get(requests_page)).text, "my-requests")
        assert "我没有参与这个项目。" in made and '<span class="pill declined">declined</span>' in made
