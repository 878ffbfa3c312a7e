"""The audit log by reader (issue 14): ``GET /v1/audit`` shows HR and ops what their own routes
would show them, and a reviewee never who reviewed them; only the auditor reads raw rows, and
those reads are audited too.

Each test reads the log of a real service seeded through its API, and checks both sides: what
a reader must not see is absent, and the reader who may see it (a positive control) does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from services.common.app import route_roles
from services.common.settings import Settings
from services.evaluation.app import create_app as create_evaluation_app
from tests.integration.test_authz_matrix import APPS, CYCLE, seeded
from tests.integration.test_cycles_org_import import import_sample
from tests.integration.test_evaluation_anonymity import RATERS
from tests.integration.test_evaluation_api import collect_reviews, ok, setup_cycle
from tests.integration.test_ops_overview import offline
from tests.support import api_client, auth

REVIEW_COMMENTS = {"feedback 3", "feedback 4", "feedback 5"}


async def read_log(client: httpx.AsyncClient, headers: dict[str, str], **filters: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params={"limit": 500, **filters}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def about(entry: dict[str, Any], employee_id: str) -> bool:
    """Whether an evaluation_assignment entry is (or may be) about ``employee_id`` as reviewee."""
    values = [v for v in (entry["before"], entry["after"]) if v]
    named = [v["reviewee_id"] for v in values if "reviewee_id" in v]
    return not named or employee_id in named


def mentions(entries: list[dict[str, Any]], *needles: str) -> set[str]:
    text = json.dumps(entries)
    return {n for n in needles if n in text}


async def evaluation_with_reviews(client: httpx.AsyncClient, settings: Settings) -> None:
    await setup_cycle(client, settings)
    await collect_reviews(client, settings)


async def test_a_reviewed_hr_or_ops_person_never_sees_their_raters_or_ratings(
    settings: Settings, database_url: str
) -> None:
    async with api_client(create_evaluation_app, settings, database_url) as client:
        await evaluation_with_reviews(client, settings)
        plain_hr = auth(settings, "hr_admin", sub="hr-hana", employee_id="e-hr")
        everything = await read_log(client, plain_hr, entity="evaluation_assignment")
        mine = [e for e in everything if about(e, "e-r")]
        # positive control: HR's routes show raters, so the log does, and the reviews are there
        assert mentions(mine, *RATERS) == RATERS and mentions(mine, *REVIEW_COMMENTS) == REVIEW_COMMENTS

        for role in ("hr_admin", "ops"):
            reviewee = auth(settings, role, sub="user-e-r", employee_id="e-r")
            entries = await read_log(client, reviewee, entity="evaluation_assignment")
            about_me = [e for e in entries if about(e, "e-r")]
            assert len(about_me) == len(mine), "the rows are there, only redacted"
            assert not mentions(about_me, *RATERS), f"{role} reviewee sees a rater"
            assert not mentions(about_me, *REVIEW_COMMENTS), f"{role} reviewee sees a comment"
            for entry in about_me:
                for part in ("before", "after"):
                    values = entry[part] or {}
                    for hidden in ("rater_id", "ratings", "comment"):
                        assert values.get(hidden) in (None, "[redacted]"), (hidden, entry)
                assert entry["request_id"] in (None, "[redacted]") and entry["row_hash"] is None
            submitted = [e for e in about_me if e["action"] == "update"]
            assert submitted and all(
                {"actor", "after.rater_id", "after.ratings"} <= set(e["redacted"]) for e in submitted
            )
            # filtering by a rater's subject or request id is not an oracle either
            for rater in RATERS:
                found = await read_log(client, reviewee, entity="evaluation_assignment", actor=f"user-{rater}")
                assert not [e for e in found if about(e, "e-r")], f"actor filter confirmed {rater}"
            request_ids = {e["request_id"] for e in mine if e["action"] == "update"}
            for request_id in request_ids:
                assert not await read_log(client, reviewee, request_id=request_id)


async def test_ops_does_not_read_what_its_routes_refuse_it(settings: Settings, tmp_path: Path) -> None:
    ops = auth(settings, "ops", sub="ops-olli")
    hr = auth(settings, "hr_admin", sub="hr-hana", employee_id="e-hr")
    async with seeded("feedback", settings, tmp_path) as world:
        manager = world.headers("manager")
        one_on_one = world.values["one_on_one_id"]
        notes = {"notes": "worried about burnout, keep between us"}
        ok(await world.client.patch(f"/v1/one-on-ones/{one_on_one}", json=notes, headers=manager))
        private = ("burnout", "growth", "Share the forecast", "thanks for the handover")
        assert mentions(await read_log(world.client, hr), *private) == set(private)  # HR reads 1:1s and feedback
        seen_by_ops = await read_log(world.client, ops)
        assert not mentions(seen_by_ops, *private)
        kudos = [e for e in seen_by_ops if e["entity"] == "feedback_note"]
        assert kudos and all(e["actor"] == "[redacted]" and "after.author_id" in e["redacted"] for e in kudos)
        assert not mentions(kudos, "e-f1")

    evaluation_db = f"sqlite+aiosqlite:///{tmp_path}/evaluation-calibration.db"
    async with api_client(create_evaluation_app, settings, evaluation_db) as client:
        await evaluation_with_reviews(client, settings)
        ok(await client.post(f"/v1/cycles/{CYCLE}/scores/compute", headers=hr))
        reason = {"employee_id": "e-r", "new_rating": "outstanding", "reason": "protected the key account"}
        ok(await client.post(f"/v1/cycles/{CYCLE}/calibration/adjustments", json=reason, headers=hr), 201)
        assert mentions(await read_log(client, hr, entity="evaluation_adjustment"), "protected the key account")
        (entry,) = await read_log(client, ops, entity="evaluation_adjustment")
        assert entry["after"]["reason"] == "[redacted]" and "after.reason" in entry["redacted"]
        assert entry["after"]["after_rating"] == "outstanding"  # ops reads results: the rating is not hidden

    async with api_client(APPS["cycles"], offline(settings), f"sqlite+aiosqlite:///{tmp_path}/cycles.db") as client:
        await import_sample(client, settings)
        by_hr = await read_log(client, hr, entity="cycles_employee", entity_id="E0001")
        assert by_hr[0]["after"]["salary_band"] == "B6"
        (by_ops,) = await read_log(client, ops, entity="cycles_employee", entity_id="E0001")
        assert by_ops["after"]["salary_band"] == "[redacted]" and by_ops["after"]["name"] == "Jonas Meyer"


async def test_only_the_auditor_reads_raw_rows_and_its_reads_are_audited(settings: Settings, tmp_path: Path) -> None:
    async with seeded("tracking", settings, tmp_path) as world:
        hr, ops = world.hr(), auth(settings, "ops", sub="ops-olli")
        auditor = auth(settings, "auditor", sub="auditor-ada")
        for reader in (hr, ops):
            (key,) = await read_log(world.client, reader, entity="tracking_api_key")
            assert key["after"]["secret_hash"] == "[redacted]" and key["row_hash"] is None
        (raw,) = await read_log(world.client, auditor, entity="tracking_api_key")
        assert raw["after"]["secret_hash"].startswith("sha256$") and raw["redacted"] == []
        assert len(raw["row_hash"]) == 64 and raw["chain_seq"] >= 1
        reads = await read_log(world.client, hr, action="read")
        assert [(e["actor"], e["actor_roles"], e["row_count"]) for e in reads] == [("auditor-ada", ["auditor"], 1)]
        assert json.loads(reads[0]["criteria"]) == {"entity": "tracking_api_key", "limit": 500, "offset": 0}
        # the auditor reads the log and nothing else
        assert (await world.client.get(f"/v1/cycles/{CYCLE}/progress", headers=auditor)).status_code == 403


def test_the_auditor_role_opens_the_audit_log_only(settings: Settings) -> None:
    for service, factory in APPS.items():
        roles = route_roles(factory(offline(settings)).routes)
        reach = {path for (_method, path), allowed in roles.items() if "auditor" in allowed}
        assert reach <= {"/v1/audit", "/v1/me"}, (service, reach)
        assert roles[("GET", "/v1/audit")] == {"hr_admin", "ops", "auditor"}, service
