"""Console pages over HTTP with real services in-process (cycles, evaluation, results, feedback): the
calibration chart with before/after, the collaboration heatmap, the ops page (the cycles service's
ops overview), and the appeal form, all fetched with the signed-in user's token so the services'
own roles and scoping apply."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from services.common.settings import Settings
from services.evaluation.app import create_app as create_evaluation_app
from services.feedback.app import create_app as create_feedback_app
from services.results.app import create_app as create_results_app
from tests.integration import test_evaluation_api as evaluation_fixtures
from tests.integration import test_results_api as results_fixtures
from tests.integration.test_console_access import console_world, signed_in
from tests.support import auth


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


async def test_calibration_collaboration_ops_and_appeal_pages(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    def local(service: str) -> Settings:
        return settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/{service}.db"})

    async with AsyncExitStack() as stack:
        evaluation = await stack.enter_async_context(running(create_evaluation_app(local("evaluation"))))
        results = await stack.enter_async_context(running(create_results_app(local("results"))))
        feedback = await stack.enter_async_context(running(create_feedback_app(local("feedback"))))
        mounts = {
            "http://evaluation.test": httpx.ASGITransport(app=evaluation),
            "http://results.test": httpx.ASGITransport(app=results),
            "http://feedback.test": httpx.ASGITransport(app=feedback),
        }
        urls = {"evaluation_url": "http://evaluation.test", "results_url": "http://results.test",
                "feedback_url": "http://feedback.test"}  # fmt: skip
        world = await stack.enter_async_context(console_world(settings, database_url, mounts=mounts, **urls))
        client = world.client

        # evaluation: scores computed, one person calibrated up a band
        async with httpx.AsyncClient(transport=mounts["http://evaluation.test"], base_url="http://e") as api:
            await evaluation_fixtures.setup_cycle(api, settings)
            await evaluation_fixtures.collect_reviews(api, settings, peers=3)
            hr = evaluation_fixtures.hr(settings)
            base = f"/v1/cycles/{evaluation_fixtures.CYCLE}"
            assert (await api.post(f"{base}/scores/compute", headers=hr)).status_code == 200
            before = (await api.get(f"{base}/results/e-r", headers=hr)).json()["computed_rating"]
            adjusted = await api.post(
                f"{base}/calibration/adjustments",
                json={"employee_id": "e-r", "new_rating": "outstanding", "reason": "led the key account"},
                headers=hr,
            )
            assert adjusted.status_code == 201, adjusted.text
            ratings = [r["rating"] for r in (await api.get(f"{base}/results", headers=hr)).json()]
        assert before != "outstanding"

        signed_in(client, settings, "hr_admin")
        page = await client.get(f"/console/cycles/{evaluation_fixtures.CYCLE}/calibration")
        assert page.status_code == 200, page.text
        html = page.text
        assert "Rating distribution before and after calibration" in html
        assert "before calibration" in html and "after calibration" in html
        assert "led the key account" in html and "hr-hana" in html
        # the "after" bar of 'outstanding' counts the calibrated person; the "before" bar does not
        after_outstanding = ratings.count("outstanding")
        assert f"<title>outstanding after calibration: {after_outstanding}</title>" in html
        assert f"<title>outstanding before calibration: {after_outstanding - 1}</title>" in html

        # a department head sees only their department (the API scopes; the console shows it)
        signed_in(client, settings, "dept_head", employee_id="e-oh", department_id="ops")
        head_page = (await client.get(f"/console/cycles/{evaluation_fixtures.CYCLE}/calibration")).text
        assert "led the key account" not in head_page
        # a manager may not open calibration at all
        signed_in(client, settings, "manager", employee_id="e-m")
        assert (await client.get(f"/console/cycles/{evaluation_fixtures.CYCLE}/calibration")).status_code == 403

        # results: the collaboration heatmap for ops
        async with httpx.AsyncClient(transport=mounts["http://results.test"], base_url="http://r") as api:
            results_cycle = await results_fixtures.setup_cycle(api, settings)
        signed_in(client, settings, "ops")
        heat = await client.get(f"/console/cycles/{results_cycle}/collaboration")
        assert heat.status_code == 200, heat.text
        assert '<table class="heat">' in heat.text and "Strongest pairs" in heat.text
        cells = re.findall(r'<td style="background:hsl\((\d+),', heat.text)
        assert cells and len(set(cells)) > 1, "the heatmap colours cells by their score"
        # an employee is refused by the console before the API is asked
        signed_in(client, settings, "employee", employee_id="e-r")
        assert (await client.get(f"/console/cycles/{results_cycle}/collaboration")).status_code == 403

        # feedback: a released result, appealed through the console form
        async with httpx.AsyncClient(transport=mounts["http://feedback.test"], base_url="http://f") as api:
            hr = auth(settings, "hr_admin")
            cycle = evaluation_fixtures.CYCLE
            snapshot = evaluation_fixtures.snapshot()
            assert (await api.put(f"/v1/cycles/{cycle}/participants", json=snapshot, headers=hr)).status_code == 200
            final = {
                "cycle_id": cycle, "scale_min": 1, "scale_max": 5,
                "results": [{"employee_id": "e-r", "department_id": "sales", "manager_id": "e-m",
                             "final_score": 4.75, "rating": "outstanding", "calibrated": True}],
            }  # fmt: skip
            pushed = await api.put(
                f"/v1/cycles/{cycle}/results", json=final, params={"calibration_closed": "true"}, headers=hr
            )
            assert pushed.status_code == 200, pushed.text
            assert (await api.post(f"/v1/cycles/{cycle}/release", headers=hr)).status_code == 200

            csrf = signed_in(client, settings, "employee", employee_id="e-p1")
            others = await client.post(
                f"/console/cycles/{cycle}/people/e-r/appeal", data={"csrf": csrf, "reason": "not mine to appeal"}
            )
            assert "only the employee may appeal" in parse_qs(urlsplit(others.headers["location"]).query)["error"][0]

            csrf = signed_in(client, settings, "employee", employee_id="e-r")
            short = await client.post(f"/console/cycles/{cycle}/people/e-r/appeal", data={"csrf": csrf, "reason": "no"})
            assert "reason" in parse_qs(urlsplit(short.headers["location"]).query)["error"][0]
            appealed = await client.post(
                f"/console/cycles/{cycle}/people/e-r/appeal",
                data={"csrf": csrf, "reason": "The Hamburg deals were booked to Q3 by mistake."},
            )
            assert parse_qs(urlsplit(appealed.headers["location"]).query)["msg"] == ["Appeal submitted to HR."]
            listed = (await api.get(f"/v1/cycles/{cycle}/appeals", headers=hr)).json()
            assert [(a["employee_id"], a["status"]) for a in listed] == [("e-r", "submitted")]

        # the ops page renders the cycles service's overview (everything else is down here, and says so)
        signed_in(client, settings, "ops")
        ops = await client.get("/console/ops")
        assert ops.status_code == 200
        assert "Ingestion figures unavailable" in ops.text and 'data-testid="health-temporal"' in ops.text
        assert 'data-testid="health-database"' in ops.text  # the cycles service's database, not the console's
