"""Org import over the API, on SQLite and PostgreSQL: the sample, idempotence, all-or-nothing, error reports.

The helpers here (``sample_files``, ``import_sample``) are shared by the other ``test_cycles_*`` modules.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx

from services.common.settings import Settings
from services.cycles.app import create_app
from tests.support import api_client, auth

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org"


def sample_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    departments = list(csv.DictReader(io.StringIO((SAMPLE / "departments.csv").read_text())))
    employees = list(csv.DictReader(io.StringIO((SAMPLE / "employees.csv").read_text())))
    return departments, employees


def to_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def org_files(departments: list[dict[str, str]], employees: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "departments": ("departments.csv", to_csv(departments), "text/csv"),
        "employees": ("employees.csv", to_csv(employees), "text/csv"),
    }


def sample_files() -> dict[str, Any]:
    return {
        "departments": ("departments.csv", (SAMPLE / "departments.csv").read_bytes(), "text/csv"),
        "employees": ("employees.csv", (SAMPLE / "employees.csv").read_bytes(), "text/csv"),
    }


async def import_sample(client: httpx.AsyncClient, settings: Settings) -> dict[str, Any]:
    response = await client.post("/v1/org/import", files=sample_files(), headers=auth(settings, "hr_admin"))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def test_the_sample_imports_and_a_second_import_is_a_no_op(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin", sub="hr-alice")
    async with api_client(create_app, settings, database_url) as client:
        first = await import_sample(client, settings)
        assert first["changed"] is True
        assert first["departments"] == {"created": 17, "updated": 0, "unchanged": 0, "deactivated": 0}
        assert first["employees"]["created"] == 305

        again = await import_sample(client, settings)
        assert again["changed"] is False
        assert again["employees"] == {"created": 0, "updated": 0, "unchanged": 305, "deactivated": 0}
        assert again["content_hash"] == first["content_hash"]

        as_json = await client.post(
            "/v1/org/import",
            content=(SAMPLE / "org.json").read_bytes(),
            headers={**hr, "Content-Type": "application/json"},
        )
        assert as_json.status_code == 200, as_json.text
        assert as_json.json()["changed"] is False and as_json.json()["content_hash"] == first["content_hash"]

        departments = (await client.get("/v1/org/departments", headers=hr)).json()
        assert departments["total"] == 17
        sales = (await client.get("/v1/org/departments/sales", headers=hr)).json()
        assert sales == {
            "department_id": "sales",
            "name": "Sales & Customer Service",
            "parent_id": "executive",
            "head_employee_id": "E0155",
            "data_steward_id": None,
            "active": True,
        }
        ceo = (await client.get("/v1/org/employees/E0001", headers=hr)).json()
        assert ceo["job_title"] == "Chief Executive Officer" and ceo["manager_id"] is None
        assert ceo["salary_band"] == "B6"


async def test_a_changed_file_creates_updates_and_deactivates(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin")
    departments, employees = sample_rows()
    async with api_client(create_app, settings, database_url) as client:
        await import_sample(client, settings)
        moved = next(e for e in employees if e["employee_id"] == "E0190")
        moved["job_title"] = "Senior Sales Coordinator"
        leaver = "E0191"
        employees = [e for e in employees if e["employee_id"] != leaver]
        employees.append({**moved, "employee_id": "E0900", "email": "new.hire@northwind.example"})

        dry = await client.post(
            "/v1/org/import", params={"dry_run": True}, files=org_files(departments, employees), headers=hr
        )
        assert dry.status_code == 200, dry.text
        assert dry.json()["dry_run"] is True
        assert dry.json()["employees"] == {"created": 1, "updated": 1, "unchanged": 303, "deactivated": 1}
        assert (await client.get("/v1/org/employees/E0900", headers=hr)).status_code == 404

        applied = await client.post("/v1/org/import", files=org_files(departments, employees), headers=hr)
        assert applied.json()["employees"] == dry.json()["employees"]
        assert (await client.get("/v1/org/employees/E0190", headers=hr)).json()["job_title"] == (
            "Senior Sales Coordinator"
        )
        gone = (await client.get(f"/v1/org/employees/{leaver}", headers=hr)).json()
        assert gone["active"] is False
        listed = (await client.get("/v1/org/employees", params={"limit": 500}, headers=hr)).json()
        assert listed["total"] == 305 and leaver not in {e["employee_id"] for e in listed["items"]}

        rehired = await client.post("/v1/org/import", files=sample_files(), headers=hr)
        assert rehired.json()["employees"] == {"created": 0, "updated": 2, "unchanged": 303, "deactivated": 1}


async def test_a_bad_file_is_rejected_whole_with_rows_and_columns(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin")
    departments, employees = sample_rows()
    async with api_client(create_app, settings, database_url) as client:
        await import_sample(client, settings)
        employees[9]["job_title"] = "A valid change that must not be applied"
        employees[20]["manager_id"] = "E9999"  # CSV row 22
        employees[30]["employee_id"] = employees[29]["employee_id"]  # row 32 duplicates row 31
        departments[3]["head_employee_id"] = ""  # row 5
        departments[4]["parent_id"] = "marketing"  # row 6
        response = await client.post("/v1/org/import", files=org_files(departments, employees), headers=hr)
        assert response.status_code == 422
        body = response.json()
        assert "nothing was imported" in body["detail"]
        found = {(e["file"], e["row"], e["column"]): e["message"] for e in body["errors"]}
        assert set(found) == {
            ("departments.csv", 5, "head_employee_id"),
            ("departments.csv", 6, "parent_id"),
            ("employees.csv", 22, "manager_id"),
            ("employees.csv", 32, "employee_id"),
        }
        assert found[("employees.csv", 22, "manager_id")].startswith("unknown manager 'E9999'")
        assert "missing department head" in found[("departments.csv", 5, "head_employee_id")]

        unchanged = (await client.get(f"/v1/org/employees/{employees[9]['employee_id']}", headers=hr)).json()
        assert unchanged["job_title"] != "A valid change that must not be applied"


async def test_unsupported_uploads_explain_what_to_send(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin")
    async with api_client(create_app, settings, database_url) as client:
        response = await client.post(
            "/v1/org/import",
            content=(SAMPLE / "employees.csv").read_bytes(),
            headers={**hr, "Content-Type": "text/csv"},
        )
        assert response.status_code == 422
        assert "multipart/form-data parts 'departments' and 'employees'" in response.json()["errors"][0]["message"]
        empty = await client.post(
            "/v1/org/import",
            content=b'{"departments": [], "employees": []}',
            headers={**hr, "Content-Type": "application/json"},
        )
        assert empty.status_code == 422
        assert {e["file"] for e in empty.json()["errors"]} == {"departments", "employees"}


async def test_a_named_data_steward_per_department_is_optional_and_checked_like_a_manager(
    settings: Settings, database_url: str
) -> None:
    hr = auth(settings, "hr_admin")
    departments, employees = sample_rows()
    async with api_client(create_app, settings, database_url) as client:
        without = await import_sample(client, settings)
        for row in departments:
            row["data_steward_id"] = {"finance": "E0204", "sales-domestic": "E0160"}.get(row["department_id"], "")
        named = await client.post("/v1/org/import", files=org_files(departments, employees), headers=hr)
        assert named.status_code == 200, named.text
        assert named.json()["departments"] == {"created": 0, "updated": 2, "unchanged": 15, "deactivated": 0}
        assert named.json()["content_hash"] != without["content_hash"]
        again = await client.post("/v1/org/import", files=org_files(departments, employees), headers=hr)
        assert again.json()["changed"] is False

        departments[1]["data_steward_id"] = "E9999"  # CSV row 3: nobody
        departments[2]["data_steward_id"] = "not an id"  # row 4
        rejected = await client.post("/v1/org/import", files=org_files(departments, employees), headers=hr)
        assert rejected.status_code == 422
        found = [(e["file"], e["row"], e["column"], e["message"]) for e in rejected.json()["errors"]]
        where = {("departments.csv", 3, "data_steward_id"), ("departments.csv", 4, "data_steward_id")}
        assert {f[:3] for f in found} == where
        assert any(f[1] == 3 and f[3].startswith("unknown data steward 'E9999'") for f in found)
        assert any(f[1] == 4 and "an id is 1-64 letters" in f[3] for f in found)
