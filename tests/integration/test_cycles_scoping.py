"""The scoping matrix of the cycles service, on SQLite and PostgreSQL: for every role, an allowed and a
forbidden read, and an allowed (hr_admin only) and a forbidden write.

Sample org ids used: E0155 heads ``sales`` (48 people with its sub-departments); E0163 is a regional sales
manager with five reports (E0164-E0168); E0164 is one of them; E0203 is the CFO (finance).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.common.settings import Settings
from services.cycles.app import create_app
from services.cycles.service import STAGE_SERVICES, sample_template
from tests.integration.test_cycles_org_import import import_sample, sample_files
from tests.support import api_client, auth


@dataclass(frozen=True)
class Caller:
    role: str
    employee_id: str | None
    department_id: str | None
    allowed_employee: str | None
    forbidden_employee: str | None
    visible_total: int | None


CALLERS = [
    Caller("hr_admin", None, None, "E0203", None, 305),
    Caller("ops", None, None, "E0164", None, 305),
    Caller("dept_head", "E0155", "sales", "E0190", "E0203", 48),
    Caller("manager", "E0163", "sales-domestic", "E0166", "E0169", 6),
    Caller("employee", "E0164", "sales-domestic", "E0164", "E0163", 1),
    Caller("department_system", None, "sales", None, "E0164", None),
]


@pytest.mark.parametrize("caller", CALLERS, ids=[c.role for c in CALLERS])
async def test_directory_reads_and_writes_per_role(settings: Settings, database_url: str, caller: Caller) -> None:
    headers = auth(
        settings,
        caller.role,
        sub=f"{caller.role}-user",
        employee_id=caller.employee_id,
        department_id=caller.department_id,
    )
    hr = auth(settings, "hr_admin")
    offline = settings.model_copy(update={f"{svc}_url": "http://127.0.0.1:9" for svc in STAGE_SERVICES})
    async with api_client(create_app, offline, database_url) as client:
        await import_sample(client, settings)
        template = await client.post("/v1/templates", json=sample_template().model_dump(mode="json"), headers=hr)
        cycle_body = {
            "name": f"cycle by {caller.role}",
            "template_id": template.json()["template_id"],
            "period_start": "2025-01-01",
            "period_end": "2025-12-31",
            "department_ids": ["sales"],
        }

        # reads
        if caller.allowed_employee is not None:
            allowed = await client.get(f"/v1/org/employees/{caller.allowed_employee}", headers=headers)
            assert allowed.status_code == 200, allowed.text
            assert (allowed.json()["salary_band"] is not None) == (caller.role == "hr_admin")
        if caller.forbidden_employee is not None:
            forbidden = await client.get(f"/v1/org/employees/{caller.forbidden_employee}", headers=headers)
            assert forbidden.status_code == 403, forbidden.text
        listed = await client.get("/v1/org/employees", params={"limit": 500}, headers=headers)
        if caller.visible_total is None:
            assert listed.status_code == 403
            assert (await client.get("/v1/cycles", headers=headers)).status_code == 403
        else:
            assert listed.json()["total"] == caller.visible_total
            assert (await client.get("/v1/org/departments", headers=headers)).json()["total"] == 17
            assert (await client.get("/v1/cycles", headers=headers)).status_code == 200
        snapshot_reader = caller.role in ("hr_admin", "ops")
        draft = await client.post("/v1/cycles", json={**cycle_body, "name": "for the snapshot read"}, headers=hr)
        await client.post(f"/v1/cycles/{draft.json()['cycle_id']}/start", headers=hr)
        snapshot = await client.get(f"/v1/cycles/{draft.json()['cycle_id']}/snapshot", headers=headers)
        assert snapshot.status_code == (200 if snapshot_reader else 403)

        # writes: only hr_admin writes to the directory, templates and cycles
        writes = [
            ("POST", "/v1/org/import", {"files": sample_files(), "params": {"dry_run": True}}),
            ("POST", "/v1/templates", {"json": sample_template().model_dump(mode="json") | {"name": caller.role}}),
            ("POST", "/v1/cycles", {"json": cycle_body}),
        ]
        for method, path, kwargs in writes:
            response = await client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
            if caller.role == "hr_admin":
                assert response.status_code in (200, 201), (path, response.text)
            else:
                assert response.status_code == 403, (caller.role, path, response.text)
                assert "hr_admin" in response.json()["detail"]


async def test_a_manager_lists_only_their_reports_and_themself(settings: Settings, database_url: str) -> None:
    manager = auth(settings, "manager", employee_id="E0163")
    async with api_client(create_app, settings, database_url) as client:
        await import_sample(client, settings)
        listed = (await client.get("/v1/org/employees", headers=manager)).json()
        assert [e["employee_id"] for e in listed["items"]] == ["E0163", "E0164", "E0165", "E0166", "E0167", "E0168"]
        filtered = await client.get("/v1/org/employees", params={"manager_id": "E0162"}, headers=manager)
        assert [e["employee_id"] for e in filtered.json()["items"]] == ["E0163"]
        head = auth(settings, "dept_head", employee_id="E0155")  # no department claim: what they head counts
        page = (await client.get("/v1/org/employees", params={"limit": 10, "offset": 40}, headers=head)).json()
        assert page["total"] == 48 and len(page["items"]) == 8
        assert (await client.get("/v1/org/employees", params={"limit": 501}, headers=head)).status_code == 422
