"""Console pages over the real feedback service (in-process, over HTTP), on SQLite and PostgreSQL:
HR's appeals page (window, HR deadline, overdue, history; review and resolve, adjusted through a real
evaluation service) and the 1:1 records (the manager view and the per-employee page: create, add an
action item, mark it done). Every call goes with the signed-in user's token, so the feedback API's
roles and party rules show through."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from services.common.settings import Settings
from services.evaluation.app import create_app as create_evaluation_app
from services.feedback.app import create_app as create_feedback_app
from tests.integration.test_authz_matrix import evaluation_final
from tests.integration.test_console_access import console_world, signed_in
from tests.integration.test_cycles_org_import import import_sample
from tests.integration.test_evaluation_api import CYCLE, snapshot
from tests.integration.test_ops_overview import offline
from tests.support import api_client, auth


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Console:
    client: httpx.AsyncClient
    cycles: httpx.AsyncClient
    feedback: httpx.AsyncClient
    clock: Clock


def flash(response: httpx.Response) -> tuple[str, str]:
    """(kind, text) of the message a form's redirect carries: ("msg"|"error", text)."""
    assert response.status_code == 303, response.text[:300]
    query = parse_qs(urlsplit(response.headers["location"]).query)
    kind = "msg" if "msg" in query else "error"
    return kind, query[kind][0]


@asynccontextmanager
async def console_with_feedback(
    settings: Settings, database_url: str, *, evaluation: FastAPI | None = None
) -> AsyncIterator[Console]:
    """The console, a real cycles and a real feedback service on ``database_url``; feedback reaches ``evaluation``."""
    clock = Clock(datetime.now(UTC))
    feedback_settings = offline(settings, database_url=database_url, evaluation_url="http://evaluation.test")
    feedback = create_feedback_app(feedback_settings)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(feedback.router.lifespan_context(feedback))
        feedback.state.clock = clock
        if evaluation is not None:  # feedback's outbound calls go to the in-process evaluation service
            await feedback.state.http.aclose()
            feedback.state.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=evaluation))
        transport = httpx.ASGITransport(app=feedback)
        world = await stack.enter_async_context(
            console_world(
                settings, database_url, mounts={"http://feedback.test": transport}, feedback_url="http://feedback.test"
            )
        )
        api = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://f"))
        yield Console(world.client, world.cycles, api, clock)


async def test_hr_reviews_and_resolves_appeals_with_deadlines_and_history(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    evaluation_url = f"sqlite+aiosqlite:///{tmp_path}/evaluation.db"
    async with (
        api_client(create_evaluation_app, offline(settings), evaluation_url) as evaluation,
        console_with_feedback(settings, database_url, evaluation=evaluation.app) as c,  # type: ignore[attr-defined]
    ):
        final, _matrix = await evaluation_final(evaluation, settings)
        hr = auth(settings, "hr_admin", sub="hr-hana")
        base = f"/v1/cycles/{CYCLE}"
        assert (await c.feedback.put(f"{base}/participants", json=snapshot(), headers=hr)).status_code == 200
        pushed = await c.feedback.put(f"{base}/results", json=final, headers=hr)
        assert pushed.status_code == 200, pushed.text
        assert (await c.feedback.post(f"{base}/release", headers=hr)).status_code == 200
        released_at = c.clock.now

        # two employees appeal through the console (their own page's form)
        for employee_id, reason in (("e-r", "My Q4 deals are missing."), ("e-p1", "My peers were never asked.")):
            csrf = signed_in(c.client, settings, "employee", employee_id=employee_id)
            sent = await c.client.post(
                f"/console/cycles/{CYCLE}/people/{employee_id}/appeal", data={"csrf": csrf, "reason": reason}
            )
            assert flash(sent) == ("msg", "Appeal submitted to HR.")
        appeals = {a["employee_id"]: a for a in (await c.feedback.get(f"{base}/appeals", headers=hr)).json()}
        rita, paul = appeals["e-r"]["id"], appeals["e-p1"]["id"]

        # only HR opens the appeals page; the cycle page links to it for HR
        signed_in(c.client, settings, "dept_head", employee_id="e-sh", department_id="sales")
        assert (await c.client.get(f"/console/cycles/{CYCLE}/appeals")).status_code == 403
        csrf = signed_in(c.client, settings, "hr_admin")
        page = await c.client.get(f"/console/cycles/{CYCLE}/appeals")
        assert page.status_code == 200, page.text
        html = page.text
        assert 'data-testid="open-count">2<' in html and 'data-testid="overdue-count">0<' in html
        assert "My Q4 deals are missing." in html and "My peers were never asked." in html
        assert "appeals within 14 days of release; HR resolves within 10 days of submission" in html
        window = (released_at + timedelta(days=14)).strftime("%Y-%m-%d %H:%M")
        assert f"Appeal window ends<div>{window} UTC" in html
        assert f'data-testid="review-{rita}"' in html and f'data-testid="resolve-{paul}"' in html
        assert 'class="card overdue"' not in html
        assert 'href="/console/cycles/c-2026/appeals"' in html  # the sub-navigation, HR only

        # take Rita's appeal under review: the status and the history change
        review = await c.client.post(f"/console/cycles/{CYCLE}/appeals/{rita}/review", data={"csrf": csrf})
        assert flash(review) == ("msg", f"Appeal {rita} of e-r is under review.")
        html = (await c.client.get(f"/console/cycles/{CYCLE}/appeals")).text
        card = html.split(f'data-testid="appeal-{rita}"', 1)[1].split("</section>", 1)[0]
        assert "under_review" in card and "start_review" in card and "History (2 steps)" in card
        assert f'data-testid="review-{rita}"' not in html

        # eleven days later both are past HR's 10-day deadline: highlighted and counted
        c.clock.now += timedelta(days=11)
        html = (await c.client.get(f"/console/cycles/{CYCLE}/appeals")).text
        assert 'data-testid="overdue-count">2<' in html
        assert html.count('class="card overdue"') == 2 and html.count('<span class="pill overdue">overdue</span>') == 2

        # resolving: form mistakes come back as messages and leave the appeal open
        resolve = f"/console/cycles/{CYCLE}/appeals/{paul}/resolve"
        no_score = await c.client.post(resolve, data={"csrf": csrf, "outcome": "adjusted", "note": "re-booked"})
        assert flash(no_score) == ("error", "an adjusted appeal needs a new score as a number (e.g. 3.4), not ''")
        stray = await c.client.post(
            resolve, data={"csrf": csrf, "outcome": "rejected", "note": "no", "new_score": "3", "new_rating": "meets"}
        )
        assert "go only with the outcome 'adjusted'" in flash(stray)[1]
        off_scale = await c.client.post(
            resolve, data={"csrf": csrf, "outcome": "adjusted", "note": "x", "new_score": "9", "new_rating": "meets"}
        )
        kind, text = flash(off_scale)
        assert kind == "error" and "feedback answered 422" in text and "outside the cycle's scale" in text

        # adjusted: recorded through evaluation's calibration, then in feedback
        adjusted = await c.client.post(
            resolve,
            data={
                "csrf": csrf,
                "outcome": "adjusted",
                "note": "Peers re-asked",
                "new_score": "3,2",
                "new_rating": "meets",
            },
        )
        assert flash(adjusted) == ("msg", f"Appeal {paul} of e-p1 resolved: adjusted to 3.2 (meets).")
        trail = (await evaluation.get(f"{base}/calibration/adjustments", headers=hr)).json()
        assert [(a["employee_id"], a["appeal_id"], a["after_rating"]) for a in trail if a.get("appeal_id")] == [
            ("e-p1", str(paul), "meets")
        ]
        assert (await c.feedback.get(f"{base}/results/e-p1", headers=hr)).json()["final_score"] == 3.2

        rejected = await c.client.post(
            f"/console/cycles/{CYCLE}/appeals/{rita}/resolve",
            data={"csrf": csrf, "outcome": "rejected", "note": "The deals closed in January.", "new_score": ""},
        )
        assert flash(rejected) == ("msg", f"Appeal {rita} of e-r resolved: rejected.")
        again = await c.client.post(
            f"/console/cycles/{CYCLE}/appeals/{rita}/resolve", data={"csrf": csrf, "outcome": "upheld", "note": "x"}
        )
        kind, text = flash(again)
        assert kind == "error" and "feedback answered 409" in text and "already resolved" in text

        html = (await c.client.get(f"/console/cycles/{CYCLE}/appeals")).text
        assert 'data-testid="open-count">0<' in html and "No open appeal." in html
        resolved = html.split("<h2>Resolved</h2>", 1)[1]
        assert "→ 3.2 meets" in resolved and "The deals closed in January." in resolved
        assert resolved.count('<span class="pill late">late</span>') == 2  # both resolved after the HR deadline
        assert "History (3 steps)" in resolved  # submit, start_review, resolve


ORG_CYCLE = "cyc-one-on-ones"


def sample_snapshot() -> dict[str, Any]:
    """The part of the sample organisation the 1:1s need: E0155 heads sales, E0163 manages E0164 and E0165."""
    people = [
        ("E0155", "sales", None),
        ("E0163", "sales-domestic", "E0155"),
        ("E0164", "sales-domestic", "E0163"),
        ("E0165", "sales-domestic", "E0163"),
    ]
    return {
        "cycle_id": ORG_CYCLE,
        "departments": [
            {"department_id": "sales", "name": "Sales", "head_employee_id": "E0155"},
            {"department_id": "sales-domestic", "name": "Domestic Sales", "parent_id": "sales"},
        ],
        "participants": [
            {"employee_id": e, "name": e, "department_id": d, "manager_id": m, "job_title": "Staff", "grade": "G5"}
            for e, d, m in people
        ],
    }


async def test_one_on_ones_on_the_manager_view_and_the_employee_page(settings: Settings, database_url: str) -> None:
    async with console_with_feedback(settings, database_url) as c:
        await import_sample(c.cycles, settings)
        hr = auth(settings, "hr_admin")
        put = await c.feedback.put(f"/v1/cycles/{ORG_CYCLE}/participants", json=sample_snapshot(), headers=hr)
        assert put.status_code == 200, put.text
        cycle = f"/console/cycles/{ORG_CYCLE}"
        helena = f"{cycle}/people/E0164"

        # the manager view offers the manager's reports (from the directory)
        csrf = signed_in(c.client, settings, "manager", employee_id="E0163", department_id="sales-domestic")
        view = await c.client.get(f"{cycle}/one-on-ones")
        assert view.status_code == 200, view.text
        assert '<option value="E0164">Helena Kaya (E0164)</option>' in view.text
        assert "No 1:1 recorded in this cycle yet." in view.text

        form = {"csrf": csrf, "scheduled_for": "2026-06-03T10:00", "agenda": "Pipeline review\n\nTraining budget"}
        outsider = await c.client.post(f"{cycle}/one-on-ones", data={**form, "employee_id": "E0155"})
        kind, text = flash(outsider)
        assert kind == "error" and "feedback answered 403" in text and "does not report to you" in text
        bad_date = await c.client.post(f"{cycle}/one-on-ones", data={**form, "scheduled_for": "soon"})
        assert flash(bad_date) == ("error", "'when' must be a date and time, not 'soon'")
        created = await c.client.post(
            f"{cycle}/one-on-ones",
            data={**form, "employee_id": "E0164", "notes": "Good quarter.", "back": helena},
        )
        assert flash(created) == ("msg", "1:1 of E0163 with E0164 recorded for 2026-06-03T10:00 UTC.")
        assert urlsplit(created.headers["location"]).path == helena
        meetings = (await c.feedback.get(f"/v1/cycles/{ORG_CYCLE}/one-on-ones", headers=hr)).json()
        assert [(m["manager_id"], m["employee_id"], m["agenda"]) for m in meetings] == [
            ("E0163", "E0164", ["Pipeline review", "Training budget"])
        ]
        meeting = meetings[0]["id"]
        items = f"{cycle}/one-on-ones/{meeting}/action-items"

        # on Helena's page: the 1:1, and the manager adds action items (the owner is one of the two)
        page = await c.client.get(helena)
        assert page.status_code == 200, page.text
        section = page.text.split('data-testid="one-on-ones"', 1)[1]
        assert (
            "Pipeline review" in section
            and "Good quarter." in section
            and f'data-testid="add-item-{meeting}"' in section
        )
        wrong_owner = await c.client.post(
            items, data={"csrf": csrf, "description": "Ask Olga", "owner_id": "E0165", "due_date": "2026-06-10"}
        )
        assert "owner must be the 1:1's manager" in flash(wrong_owner)[1]
        added = await c.client.post(
            items,
            data={"csrf": csrf, "description": "Share the Q3 forecast", "owner_id": "E0164", "due_date": "2026-06-10",
                  "back": helena},
        )  # fmt: skip
        assert flash(added) == ("msg", "Action item added for E0164, due 2026-06-10.")
        item = (await c.feedback.get(f"/v1/one-on-ones/{meeting}", headers=hr)).json()["action_items"][0]["id"]

        # the done checkbox: checked → done, unchecked (only the hidden 0 is sent) → open again
        done = await c.client.post(
            f"{items}/{item}", content=f"csrf={csrf}&back={helena}&done=0&done=1".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert flash(done) == ("msg", "Action item 'Share the Q3 forecast' is done.")
        page = await c.client.get(helena)
        assert re.search(r'name="done" value="1" checked> done', page.text)

        # Helena sees it on her own page and may reopen it; a colleague may not touch it
        csrf = signed_in(c.client, settings, "employee", employee_id="E0164", department_id="sales-domestic")
        own = await c.client.get(helena)
        assert "Share the Q3 forecast" in own.text and "you with your manager E0163" in own.text
        reopened = await c.client.post(f"{items}/{item}", data={"csrf": csrf, "done": "0", "back": helena})
        assert flash(reopened) == ("msg", "Action item 'Share the Q3 forecast' is open again.")
        assert (await c.feedback.get(f"/v1/one-on-ones/{meeting}", headers=hr)).json()["action_items"][0][
            "done"
        ] is False
        csrf = signed_in(c.client, settings, "employee", employee_id="E0165", department_id="sales-domestic")
        foreign = await c.client.post(f"{items}/{item}", data={"csrf": csrf, "done": "1", "back": "https://evil.test/"})
        kind, text = flash(foreign)
        assert kind == "error" and ("feedback answered 403" in text or "feedback answered 404" in text)
        assert urlsplit(foreign.headers["location"]).path == f"{cycle}/one-on-ones"  # never off this cycle

        # HR reads every 1:1 but gets no forms; ops has no 1:1 section at all
        signed_in(c.client, settings, "hr_admin")
        hr_view = await c.client.get(f"{cycle}/one-on-ones")
        assert "Share the Q3 forecast" in hr_view.text and "E0163 with E0164" in hr_view.text
        assert 'type="checkbox" disabled' in hr_view.text and "add-item-" not in hr_view.text
        assert 'data-testid="new-one-on-one"' not in hr_view.text
        signed_in(c.client, settings, "ops")
        ops_page = await c.client.get(helena)
        assert ops_page.status_code == 200 and 'data-testid="one-on-ones"' not in ops_page.text
        assert (await c.client.get(f"{cycle}/one-on-ones")).status_code == 403
