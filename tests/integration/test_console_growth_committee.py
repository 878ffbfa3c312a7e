"""Growth paths, the 9-box and the committee through the console, over the real services in process
(the committee harness): the manager rates potential (a refusal at its field), HR calibrates it, the
employee reads her growth path in Chinese, the committee opens a meeting, records a decision (a
missing due date refused at the field), and its owner finds it in My tasks and moves it on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from services.common.auth import mint_token
from services.common.settings import Settings
from services.console.app import create_app as create_console_app
from services.console.auth import COOKIE, csrf_token
from services.console.oidc import OidcSettings
from tests.integration.test_committee_api import DEPARTMENT_OF, MEMBERS, Stack, committee_stack, hr, ok
from tests.integration.test_committee_growth import CYCLES, FRAMEWORK, seed_cycle


@asynccontextmanager
async def console_over(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The console, reaching the stack's services (in process) with the signed-in person's token."""
    console = create_console_app(stack.settings, http_client=stack.http, oidc=OidcSettings(issuer=None))
    async with console.router.lifespan_context(console):
        transport = httpx.ASGITransport(app=console)
        async with httpx.AsyncClient(transport=transport, base_url="http://test.local") as client:
            yield client


def as_person(client: httpx.AsyncClient, stack: Stack, employee_id: str, *roles: str) -> str:
    """Sign ``employee_id`` in (the session cookie); returns the CSRF token of the session."""
    token = mint_token(
        stack.settings, sub=employee_id, roles=list(roles or ("employee",)), employee_id=employee_id,
        department_id=DEPARTMENT_OF[employee_id],
    )  # fmt: skip
    client.cookies.set(COOKIE, token, domain="test.local", path="/console")
    return csrf_token(stack.settings, token)


def message(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:500]
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return (query.get("msg") or query.get("error") or [""])[0]


async def test_growth_nine_box_and_committee_through_the_console(
    settings: Settings, tmp_path: Path, one_database_url: str
) -> None:
    async with committee_stack(settings, tmp_path, one_database_url) as stack, console_over(stack) as console:
        first, second = [await seed_cycle(stack, *cycle, people) for cycle, people in CYCLES.items()]
        # -- HR writes the career framework (a level that skips a competency is refused at the field) ------
        csrf = as_person(console, stack, "hana", "hr_admin", "dept_head")
        ladder = "G5 | Specialist | collab=3, delivery=3\nG6 | Senior specialist | collab=4\n"
        form = {"csrf": csrf, "job_family": "sales", "name": FRAMEWORK["name"], "job_titles": "Specialist",
                "levels": ladder}  # fmt: skip
        refused = await console.post("/console/career-frameworks", data=form)
        assert refused.status_code == 422 and "skips delivery" in refused.text.split('data-testid="error-levels"')[1]
        form["levels"] = "\n".join(
            f"{lv['grade']} | {lv['title']} | " + ", ".join(f"{k}={v}" for k, v in lv["competencies"].items())
            for lv in FRAMEWORK["levels"]
        )
        assert message(await console.post("/console/career-frameworks", data=form)) == "Career framework sales saved."
        listed = await console.get("/console/career-frameworks")
        assert "Senior specialist" in listed.text and 'data-testid="framework-sales"' in listed.text

        # -- the manager rates potential on the talent review page ---------------------------------------
        csrf = as_person(console, stack, "sam", "manager", "dept_head", "employee")
        page = await console.get(f"/console/cycles/{second}/nine-box")
        assert page.status_code == 200 and 'data-testid="rate-potential"' in page.text
        refused = await console.post(
            f"/console/cycles/{second}/potential", data={"csrf": csrf, "employee_id": "olga", "potential": "high"}
        )
        assert refused.status_code == 422 and 'data-testid="error-employee_id"' in refused.text  # not his report
        for employee_id, potential in (("alice", "high"), ("bob", "low")):
            sent = await console.post(
                f"/console/cycles/{second}/potential",
                data={"csrf": csrf, "employee_id": employee_id, "potential": potential, "note": ""},
            )
            assert message(sent) == f"Potential of {employee_id} rated."
        team = await console.get(f"/console/cycles/{second}/nine-box")
        readiness = team.text.split('data-testid="team-readiness"', 1)[1].split("</section>", 1)[0]
        assert readiness.count('class="pill ready"') == 1 and readiness.count('class="pill developing"') == 1
        assert "Alice" in team.text.split('data-testid="box-9"', 1)[1].split("</td>", 1)[0]

        # -- HR calibrates for the committee (the reason is required) ----------------------------------
        csrf = as_person(console, stack, "hana", "hr_admin", "dept_head")
        form = {"csrf": csrf, "employee_id": "bob", "potential": "medium", "reason": "", "session_id": ""}
        refused = await console.post(f"/console/cycles/{second}/potential/calibration", data=form)
        assert refused.status_code == 422 and 'data-testid="error-reason"' in refused.text
        form["reason"] = "带领三个部门完成了CRM迁移"
        assert message(await console.post(f"/console/cycles/{second}/potential/calibration", data=form)) == (
            "Potential of bob calibrated."
        )
        grid = (await console.get(f"/console/cycles/{second}/nine-box")).text
        assert "Bob" in grid.split('data-testid="box-8"', 1)[1].split("</td>", 1)[0]

        # -- alice reads her own growth path, in Chinese -------------------------------------------------
        as_person(console, stack, "alice")
        mine = await console.get("/console/growth", follow_redirects=True, params={"lang": "zh_Hans"})
        assert mine.status_code == 200, mine.text[:300]
        assert "明星人才" in mine.text and "Senior specialist" in mine.text
        history = mine.text.split('data-testid="history"', 1)[1].split("</section>", 1)[0]
        assert history.count("<tr>") == 3  # the header and two cycles
        assert (await console.get("/console/people/bob/growth")).text.count('class="notice error"') == 0
        assert "does not exist or is not in your scope" in (await console.get("/console/people/bob/growth")).text

        await console.get("/console/tasks", params={"lang": "en"})  # the language choice is kept: back to English

        # -- the manager puts bob's next step into his development plan (twice: added once) ---------------
        csrf = as_person(console, stack, "sam", "manager", "dept_head", "employee")
        page = await console.get("/console/people/bob/growth")
        assert 'data-testid="plan-next-steps"' in page.text and 'data-testid="suggestions"' in page.text
        planned = await console.post("/console/people/bob/growth/plan", data={"csrf": csrf})
        assert message(planned) == "1 next step(s) added to the development plan."
        assert message(await console.post("/console/people/bob/growth/plan", data={"csrf": csrf})) == (
            "0 next step(s) added to the development plan."
        )
        async with stack.client("results") as results:
            plans = ok(await results.get(f"/v1/cycles/{second}/development-plans", headers=hr(stack.settings)))
        (plan,) = [p for p in plans if p["employee_id"] == "bob"]
        assert [i["description"] for i in plan["items"]] == [
            "Raise Collaboration from 3 to 4, as Senior specialist expects"
        ]

        # -- the committee meets and decides -------------------------------------------------------------
        csrf = as_person(console, stack, "hana", "hr_admin", "dept_head")
        seats = {f"{m['function']}_member": m["employee_id"] for m in MEMBERS}
        roles = {f"{m['function']}_role": m["role"] for m in MEMBERS}
        form = {"csrf": csrf, "name": "绩效委员会", "cycle_id": second, **seats, **roles, "it_member": ""}
        refused = await console.post("/console/committees", data=form)
        form_error = refused.text.split('data-testid="create-committee"')[1].split('data-testid="form-error">')[1]
        assert refused.status_code == 422 and form_error.startswith("committee answered 422: members: no seat for")
        form["it_member"] = "ivan"
        assert message(await console.post("/console/committees", data=form)) == "Committee 绩效委员会 created."
        listed = await console.get("/console/committees")
        (committee_id,) = {part.split('"')[0] for part in listed.text.split('data-testid="open-meeting-')[1:]}
        assert "绩效委员会" in listed.text and "Ivan" in listed.text
        opened = await console.post(f"/console/committees/{committee_id}/meetings", data={"csrf": csrf})
        assert message(opened) == "Meeting opened."
        meeting_url = urlsplit(opened.headers["location"]).path
        meeting = await console.get(meeting_url)
        assert meeting.status_code == 200 and 'data-testid="agenda"' in meeting.text
        decision = {"csrf": csrf, "title": "Coach carol on delivery", "owner_id": "sam", "due_date": "",
                    "agenda_item_id": "", "description": ""}  # fmt: skip
        refused = await console.post(f"{meeting_url}/decisions", data=decision)
        assert refused.status_code == 422 and 'data-testid="error-due_date"' in refused.text
        decision["due_date"] = (date.today() + timedelta(days=14)).isoformat()
        assert message(await console.post(f"{meeting_url}/decisions", data=decision)) == "Decision recorded."
        assert "Coach carol on delivery" in (await console.get(meeting_url)).text

        # -- a calibration session of the committee, for that decision ------------------------------------
        meeting_page = await console.get(meeting_url)
        decision_id = meeting_page.text.split('name="decision_id"', 1)[1].split('<option value="', 2)[2].split('"')[0]
        opened = await console.post(
            f"{meeting_url}/calibration-sessions", data={"csrf": csrf, "decision_id": decision_id, "note": "季度校准"}
        )
        assert message(opened) == "Calibration session opened."
        session_url = urlsplit(opened.headers["location"]).path
        form = {"csrf": csrf, "employee_id": "carol", "new_rating": "meets", "new_score": "", "reason": ""}
        refused = await console.post(f"{session_url}/adjustments", data=form)
        assert refused.status_code == 422 and 'data-testid="error-reason"' in refused.text
        form["reason"] = "交付问题源自跨部门依赖，委员会校准"
        assert (
            message(await console.post(f"{session_url}/adjustments", data=form)) == "Calibrated carol in the session."
        )
        adjustments = (await console.get(session_url)).text.split('data-testid="session-adjustments"')[1]
        assert "Carol" in adjustments and "交付问题源自跨部门依赖" in adjustments and "meets" in adjustments
        # the meeting's page lists the session again, with its adjustment and a link back to it
        listed = (await console.get(meeting_url)).text.split('data-testid="meeting-sessions"')[1].split("</table>")[0]
        assert "季度校准" in listed and session_url in listed and "<td>1</td>" in listed

        # -- its owner finds it in My tasks and moves it on ----------------------------------------------
        csrf = as_person(console, stack, "sam", "manager", "dept_head", "employee")
        tasks = await console.get("/console/tasks")
        assert 'data-testid="task-committee_decision"' in tasks.text and "Coach carol on delivery" in tasks.text
        mine_page = await console.get("/console/decisions")
        decision_id = mine_page.text.split('data-testid="decision-', 1)[1].split('"', 1)[0]
        moved = await console.post(
            f"/console/decisions/{decision_id}/status", data={"csrf": csrf, "status": "done", "note": "辅导完成"}
        )
        assert message(moved) == "Decision Coach carol on delivery updated."
        async with stack.client("committee") as committee:
            stored: Any = ok(await committee.get(f"/v1/decisions/{decision_id}", headers=hr(stack.settings)))
        assert (stored["status"], stored["owner_id"]) == ("done", "sam")
        assert first != second
