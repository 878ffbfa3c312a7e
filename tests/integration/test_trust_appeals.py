"""Issue 14, finding 3: nobody raises their own rating through an appeal.

HR appealed their own released result and resolved the appeal "adjusted": the feedback service
called evaluation with its service token, so evaluation's "not your own rating" check saw no person
and applied it. Now feedback refuses to review or resolve one's own appeal, every service-to-service
call made for someone carries that person as the token's ``act`` claim, and evaluation and results
refuse an adjustment whose acting person is the employee appealing, whoever sends it.

Evaluation, feedback and results run in process on their own databases; feedback reaches the other
two through the same ``ServiceClient`` it uses in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from services.common.auth import mint_token
from services.common.settings import Settings
from services.evaluation.app import create_app as evaluation_app
from services.feedback.app import create_app as feedback_app
from services.results.app import create_app as results_app
from tests.integration.test_evaluation_api import CYCLE, collect_reviews, setup_cycle, snapshot
from tests.integration.test_ops_overview import offline
from tests.support import auth

STAGES = ("evaluation", "feedback", "results")


class Router(httpx.AsyncBaseTransport):
    """Routes ``http://<service>.test`` to that service's in-process app."""

    def __init__(self, apps: dict[str, FastAPI]) -> None:
        self.apps = apps

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps[request.url.host.removesuffix(".test")]
        return await httpx.ASGITransport(app=app).handle_async_request(request)


@dataclass
class Stages:
    settings: Settings
    http: httpx.AsyncClient
    apps: dict[str, FastAPI]

    def client(self, service: str) -> httpx.AsyncClient:
        """A client of one service with relative URLs (for the fixtures of the service's own tests)."""
        transport = httpx.ASGITransport(app=self.apps[service])
        return httpx.AsyncClient(transport=transport, base_url=f"http://{service}.test")

    async def call(
        self, service: str, method: str, path: str, headers: dict[str, str], expect: int = 200, **kw: Any
    ) -> Any:
        response = await self.http.request(method, f"http://{service}.test{path}", headers=headers, **kw)
        assert response.status_code == expect, f"{method} {service}{path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def workflow(self) -> dict[str, str]:
        """The worker's service token: it acts for nobody, so it reads every result."""
        return auth(self.settings, "hr_admin", "ops", sub="system:worker")


@asynccontextmanager
async def stage_stack(settings: Settings, database_url: str) -> AsyncIterator[Stages]:
    """Evaluation, feedback and results in process, wired by host (``http://<service>.test``)."""
    url = database_url.replace("/test.db", "/{service}.db") if database_url.startswith("sqlite") else database_url
    base = offline(settings, database_url=url, **{f"{name}_url": f"http://{name}.test" for name in STAGES})
    apps: dict[str, FastAPI] = {}
    http = httpx.AsyncClient(transport=Router(apps), timeout=30)
    apps |= {"evaluation": evaluation_app(base), "feedback": feedback_app(base), "results": results_app(base)}
    async with AsyncExitStack() as stack:
        stack.push_async_callback(http.aclose)
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        await apps["feedback"].state.http.aclose()
        apps["feedback"].state.http = http  # adjusted appeals reach evaluation and results in process
        yield Stages(settings=base, http=http, apps=apps)


HR_PERSON = {
    "employee_id": "e-hr",
    "name": "Hana HR",
    "department_id": "fin",
    "manager_id": "e-fh",
    "job_title": "HR partner",
    "grade": "G6",
}


def org_with_hr() -> dict[str, Any]:
    """Evaluation's test org with the HR person taking part (in finance), so they have a result."""
    org = snapshot()
    org["participants"].append(HR_PERSON)
    return org


def hr_person(settings: Settings, *, appellant: bool = False) -> dict[str, str]:
    roles = ("employee",) if appellant else ("hr_admin", "employee")
    return auth(settings, *roles, sub="hr-hana", employee_id="e-hr", department_id="fin")


async def released_cycle(stages: Stages) -> dict[str, Any]:
    """Evaluation scored and closed with the HR person in it; results handed to feedback and results;
    released. Returns the final results."""
    s, base = stages.settings, f"/v1/cycles/{CYCLE}"
    async with stages.client("evaluation") as evaluation:
        await setup_cycle(evaluation, s)
        await stages.call("evaluation", "PUT", f"{base}/participants", stages.workflow(), json=org_with_hr())
        await collect_reviews(evaluation, s)
    await stages.call("evaluation", "POST", f"{base}/scores/compute", stages.workflow())
    await stages.call("evaluation", "POST", f"{base}/calibration/close", stages.workflow())
    final = await stages.call("evaluation", "GET", f"{base}/final-results", stages.workflow())
    for service in ("feedback", "results"):
        await stages.call(service, "PUT", f"{base}/participants", stages.workflow(), json=org_with_hr())
        await stages.call(service, "PUT", f"{base}/results", stages.workflow(), json=final)
    await stages.call("feedback", "POST", f"{base}/release", stages.workflow())
    return dict(final)


def rating_of(results: dict[str, Any], employee_id: str) -> tuple[float, str]:
    row = next(r for r in results["results"] if r["employee_id"] == employee_id)
    return row["final_score"], row["rating"]


async def test_hr_cannot_raise_their_own_rating_through_an_appeal(settings: Settings, database_url: str) -> None:
    async with stage_stack(settings, database_url) as stages:
        final = await released_cycle(stages)
        base = f"/v1/cycles/{CYCLE}"
        before = rating_of(final, "e-hr")
        appeal = await stages.call(
            "feedback",
            "POST",
            f"{base}/appeals",
            hr_person(stages.settings, appellant=True),
            201,
            json={"reason": "my partnering work was not counted"},
        )
        raise_it = {"outcome": "adjusted", "note": "re-counted", "new_score": 5.0, "new_rating": "outstanding"}
        me = hr_person(stages.settings)

        # feedback refuses: nobody reviews or resolves their own appeal
        refused = await stages.call("feedback", "POST", f"/v1/appeals/{appeal['id']}/resolve", me, 403, json=raise_it)
        assert "your own appeal" in refused["detail"] and refused["field"] == "appeal_id"
        refused = await stages.call("feedback", "POST", f"/v1/appeals/{appeal['id']}/review", me, 403)
        assert "your own appeal" in refused["detail"]

        # evaluation and results refuse it too, whoever sends it: the person's own token...
        adjustment = {
            "employee_id": "e-hr",
            "appeal_id": str(appeal["id"]),
            "new_score": 5.0,
            "new_rating": "outstanding",
            "reason": "re-counted",
        }
        for service in ("evaluation", "results"):
            body = await stages.call(service, "POST", f"{base}/appeal-adjustments", me, 403, json=adjustment)
            assert "your own" in body["detail"] and body["field"] == "employee_id"
        # ...or a service token acting for them (what feedback sends: the act claim names the person)
        acting = mint_token(
            stages.settings, sub="system:feedback", roles=["hr_admin"], actor={"sub": "hr-hana", "employee_id": "e-hr"}
        )
        for service in ("evaluation", "results"):
            body = await stages.call(
                service,
                "POST",
                f"{base}/appeal-adjustments",
                {"Authorization": f"Bearer {acting}"},
                403,
                json=adjustment,
            )
            assert "another HR person must resolve it" in body["detail"]
        after = await stages.call("evaluation", "GET", f"{base}/final-results", stages.workflow())
        assert rating_of(after, "e-hr") == before
        mine = await stages.call("feedback", "GET", f"{base}/results/e-hr", hr_person(stages.settings, appellant=True))
        assert (mine["final_score"], mine["rating"]) == before
        trail = await stages.call(
            "evaluation", "GET", f"{base}/calibration/adjustments", stages.workflow(), params={"employee_id": "e-hr"}
        )
        assert trail == []

        # another HR person resolves it: evaluation, results and feedback follow, attributed to that person
        colleague = auth(
            stages.settings, "hr_admin", "employee", sub="hr-omar", employee_id="e-f1", department_id="fin"
        )
        resolved = await stages.call(
            "feedback", "POST", f"/v1/appeals/{appeal['id']}/resolve", colleague, json=raise_it
        )
        assert (resolved["status"], resolved["new_rating"]) == ("adjusted", "outstanding")
        after = await stages.call("evaluation", "GET", f"{base}/final-results", stages.workflow())
        assert rating_of(after, "e-hr") == (5.0, "outstanding")
        trail = await stages.call(
            "evaluation", "GET", f"{base}/calibration/adjustments", stages.workflow(), params={"employee_id": "e-hr"}
        )
        assert [(t["kind"], t["actor"]) for t in trail] == [("appeal", "hr-omar")]


async def test_not_your_own_rules_see_the_person_behind_a_service_token(settings: Settings, database_url: str) -> None:
    """Every "not your own" rule reads ``Principal.acting_employee_id``: a service token acting for a
    department head cannot calibrate the head's own rating (the committee calls calibration this way)."""
    async with stage_stack(settings, database_url) as stages:
        base = f"/v1/cycles/{CYCLE}"
        async with stages.client("evaluation") as evaluation:
            await setup_cycle(evaluation, stages.settings)
        await stages.call("evaluation", "POST", f"{base}/scores/compute", stages.workflow())
        for_head = mint_token(
            stages.settings,
            sub="system:committee",
            roles=["hr_admin", "ops"],
            actor={"sub": "user-e-sh", "employee_id": "e-sh"},
        )
        headers = {"Authorization": f"Bearer {for_head}"}
        own = {"employee_id": "e-sh", "new_score": 5.0, "reason": "the committee agreed"}
        body = await stages.call("evaluation", "POST", f"{base}/calibration/adjustments", headers, 403, json=own)
        assert body["detail"] == "you cannot calibrate your own rating"
        # nor read it: the acting person's own result is not evaluation's to show
        await stages.call("evaluation", "GET", f"{base}/results/e-sh", headers, 403)
        other = {"employee_id": "e-m", "new_score": 3.2, "reason": "the committee agreed"}
        made = await stages.call("evaluation", "POST", f"{base}/calibration/adjustments", headers, 201, json=other)
        assert made["actor"] == "user-e-sh"  # the trail names the person, not the service
