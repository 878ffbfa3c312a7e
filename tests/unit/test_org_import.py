"""Org file parsing and validation (no database): every error kind with its file, row and column."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.cycles.org_import import (
    ImportIssue,
    OrgImportRejected,
    parse_csv,
    parse_json,
    read_org,
    read_upload,
    validate_org,
)

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org"

DEPARTMENTS = """department_id,name,parent_id,head_employee_id
root,Company,,E1
sales,Sales,root,E2
"""
EMPLOYEES = """employee_id,name,email,department_id,manager_id,job_title,grade,salary_band
E1,Ada Boss,ada@example.com,root,,CEO,G15,B6
E2,Bo Seller,bo@example.com,sales,E1,VP Sales,G14,B6
E3,Cy Rep,cy@example.com,sales,E2,Account Manager,G8,B3
"""


def issues_of(departments: str = DEPARTMENTS, employees: str = EMPLOYEES) -> list[ImportIssue]:
    try:
        read_org(departments_csv=departments.encode(), employees_csv=employees.encode())
    except OrgImportRejected as exc:
        return exc.issues
    return []


def where(issues: list[ImportIssue]) -> set[tuple[str, int | None, str | None]]:
    return {(i.file, i.row, i.column) for i in issues}


def test_a_small_valid_org_has_no_issues() -> None:
    org = read_org(departments_csv=DEPARTMENTS.encode(), employees_csv=EMPLOYEES.encode())
    assert [d.department_id for d in org.departments] == ["root", "sales"]
    assert [e.manager_id for e in org.employees] == [None, "E1", "E2"]


@pytest.mark.parametrize(
    ("departments", "employees", "expected", "message"),
    [
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("sales,E2,Account", "sales,E9,Account"),
            ("employees.csv", 4, "manager_id"),
            "unknown manager 'E9'",
            id="unknown-manager",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("bo@example.com,sales,E1", "bo@example.com,sales,E3"),
            ("employees.csv", 3, "manager_id"),
            "reporting line forms a cycle: E2 -> E3 -> E2",
            id="reporting-cycle",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("sales,E2,Account", "sales,E3,Account"),
            ("employees.csv", 4, "manager_id"),
            "reporting line forms a cycle: E3 -> E3",
            id="own-manager",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("E3,Cy", "E2,Cy"),
            ("employees.csv", 4, "employee_id"),
            "duplicate employee_id (first used on row 3)",
            id="duplicate-employee",
        ),
        pytest.param(
            DEPARTMENTS + "sales,Sales again,root,E2\n",
            EMPLOYEES,
            ("departments.csv", 4, "department_id"),
            "duplicate department_id (first used on row 3)",
            id="duplicate-department",
        ),
        pytest.param(
            DEPARTMENTS.replace("sales,Sales,root,E2", "sales,Sales,root,"),
            EMPLOYEES,
            ("departments.csv", 3, "head_employee_id"),
            "missing department head",
            id="missing-head",
        ),
        pytest.param(
            DEPARTMENTS.replace("sales,Sales,root,E2", "sales,Sales,root,E77"),
            EMPLOYEES,
            ("departments.csv", 3, "head_employee_id"),
            "unknown department head 'E77'",
            id="unknown-head",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("cy@example.com,sales", "cy@example.com,marketing"),
            ("employees.csv", 4, "department_id"),
            "unknown department 'marketing'",
            id="unknown-department",
        ),
        pytest.param(
            DEPARTMENTS.replace("sales,Sales,root", "sales,Sales,holding"),
            EMPLOYEES,
            ("departments.csv", 3, "parent_id"),
            "unknown parent department 'holding'",
            id="unknown-parent",
        ),
        pytest.param(
            DEPARTMENTS.replace("root,Company,,E1", "root,Company,sales,E1"),
            EMPLOYEES,
            ("departments.csv", 2, "parent_id"),
            "department tree forms a cycle: root -> sales -> root",
            id="department-cycle",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("cy@example.com", "not-an-email"),
            ("employees.csv", 4, "email"),
            "not an email address",
            id="bad-email",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("cy@example.com", "BO@example.com"),
            ("employees.csv", 4, "email"),
            "duplicate email (first used on row 3)",
            id="duplicate-email",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("Account Manager,G8", "Account Manager,"),
            ("employees.csv", 4, "grade"),
            "a value is required",
            id="missing-grade",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("E3,Cy", "E 3,Cy"),
            ("employees.csv", 4, "employee_id"),
            "an id is 1-64 letters",
            id="bad-id",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES.replace("grade,salary_band", "grade,salary_band,nickname"),
            ("employees.csv", 1, "nickname"),
            "unknown column",
            id="unknown-column",
        ),
        pytest.param(
            "department_id,name,parent_id\nroot,Company,\nsales,Sales,root\n",
            EMPLOYEES,
            ("departments.csv", 1, "head_employee_id"),
            "required column is missing",
            id="missing-column",
        ),
        pytest.param(
            DEPARTMENTS,
            EMPLOYEES + "E4,Di,di@example.com,sales,E2,Rep,G5,B2,extra\n",
            ("employees.csv", 5, None),
            "the row has 9 values but the header has 8 columns",
            id="extra-value",
        ),
    ],
)
def test_each_error_kind_names_file_row_and_column(
    departments: str, employees: str, expected: tuple[str, int, str | None], message: str
) -> None:
    issues = issues_of(departments, employees)
    matching = [i for i in issues if (i.file, i.row, i.column) == expected]
    assert matching, f"expected an issue at {expected}, got {[i.describe() for i in issues]}"
    assert message in matching[0].message
    assert len(issues) == 1, [i.describe() for i in issues]


def test_every_problem_is_reported_at_once_without_follow_on_noise() -> None:
    employees = (
        EMPLOYEES.replace("cy@example.com,sales,E2", "cy@example.com,sales,E404")
        + "E1,Dup,dup@example.com,sales,E1,Rep,G5,\n"
        + "E5,Bad Mail,bad-mail,sales,E2,Rep,G5,\n"
        + "E6,Reports To Bad Mail,e6@example.com,sales,E5,Rep,G5,\n"
    )
    departments = DEPARTMENTS + "ops,Operations,nowhere,\n"
    issues = issues_of(departments, employees)
    assert where(issues) == {
        ("departments.csv", 4, "parent_id"),
        ("departments.csv", 4, "head_employee_id"),
        ("employees.csv", 4, "manager_id"),
        ("employees.csv", 5, "employee_id"),
        ("employees.csv", 6, "email"),
    }  # E6 -> E5 is not reported: E5 exists, only its email is wrong
    assert [i.row for i in issues if i.file == "employees.csv"] == [4, 5, 6]


def test_a_bom_and_crlf_line_endings_are_fine_and_blank_lines_keep_row_numbers() -> None:
    employees = "\ufeff" + EMPLOYEES.replace("\n", "\r\n").replace("E3,Cy", "\r\nE3,Cy")
    issues = issues_of(employees=employees.replace("sales,E2,Account", "sales,E9,Account"))
    assert where(issues) == {("employees.csv", 5, "manager_id")}


def test_a_file_that_is_not_utf8_is_rejected_clearly() -> None:
    _org, issues = parse_csv(departments=DEPARTMENTS.encode(), employees=EMPLOYEES.encode("utf-16"))
    assert any("not UTF-8" in i.message for i in issues)


def test_json_rows_are_positions_in_the_array() -> None:
    document = {
        "departments": [{"department_id": "root", "name": "Company", "head_employee_id": "E1"}],
        "employees": [
            {"employee_id": "E1", "name": "Ada", "department_id": "root", "job_title": "CEO", "grade": "G15"},
            {
                "employee_id": 2,
                "name": "Bo",
                "department_id": "root",
                "manager_id": "E1",
                "job_title": "X",
                "grade": 7.5,
            },
            {
                "employee_id": "E3",
                "name": "Cy",
                "department_id": "root",
                "manager_id": "E9",
                "job_title": "X",
                "grade": "G1",
                "nickname": "c",
            },
        ],
    }
    org, issues = parse_json(json.dumps(document).encode())
    issues += validate_org(org)
    assert where(issues) == {
        ("employees", 2, "grade"),
        ("employees", 3, "nickname"),
        ("employees", 3, "manager_id"),
    }
    assert "must be a string" in next(i.message for i in issues if i.column == "grade")


def test_json_that_is_not_an_org_document_is_rejected() -> None:
    with pytest.raises(OrgImportRejected) as bad_json:
        read_org(json_data=b'{"departments": [')
    assert "not valid JSON" in bad_json.value.issues[0].message
    with pytest.raises(OrgImportRejected) as missing:
        read_org(json_data=b'{"departments": []}')
    assert ("org.json", None, "employees") in where(missing.value.issues)


def test_upload_content_types() -> None:
    with pytest.raises(OrgImportRejected) as plain_csv:
        read_upload(content_type="text/csv", body=EMPLOYEES.encode())
    assert "multipart/form-data parts 'departments' and 'employees'" in plain_csv.value.issues[0].message
    request = httpx.Request("POST", "http://x", files={"employees": ("employees.csv", EMPLOYEES.encode())})
    with pytest.raises(OrgImportRejected) as one_part:
        read_upload(content_type=request.headers["content-type"], body=request.read())
    assert where(one_part.value.issues) == {("request", None, "departments")}
    request = httpx.Request(
        "POST",
        "http://x",
        files={"departments": ("d.csv", DEPARTMENTS.encode()), "employees": ("e.csv", EMPLOYEES.encode())},
    )
    org = read_upload(content_type=request.headers["content-type"], body=request.read())
    assert len(org.employees) == 3


# -- the sample organisation -------------------------------------------------------------------------
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sample_org_generate", SAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_the_sample_org_is_valid_and_the_same_as_csv_and_json() -> None:
    csv_org = read_org(
        departments_csv=(SAMPLE / "departments.csv").read_bytes(),
        employees_csv=(SAMPLE / "employees.csv").read_bytes(),
    )
    json_org = read_org(json_data=(SAMPLE / "org.json").read_bytes())
    assert csv_org.content_hash() == json_org.content_hash()
    assert 280 <= len(csv_org.employees) <= 320
    top_level = {d.department_id for d in csv_org.departments if d.parent_id in (None, "executive")}
    assert top_level == {"executive", "production", "sales", "finance", "hr", "it", "procurement", "quality"}
    roots = [e for e in csv_org.employees if e.manager_id is None]
    assert [(e.employee_id, e.job_title) for e in roots] == [("E0001", "Chief Executive Officer")]
    heads = {e.employee_id: e for e in csv_org.employees}
    for department in csv_org.departments:
        assert heads[department.head_employee_id].department_id == department.department_id


def test_the_committed_sample_is_what_the_seeded_generator_writes(tmp_path: Path) -> None:
    _generator().write(tmp_path)
    for name in ("departments.csv", "employees.csv", "org.json"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), f"{name} is stale: run generate.py"


# -- property: generated trees are valid, and any re-parenting under a descendant is a cycle --------
@st.composite
def reporting_trees(draw: st.DrawFn) -> list[int | None]:
    size = draw(st.integers(min_value=2, max_value=40))
    return [None] + [draw(st.integers(min_value=0, max_value=i - 1)) for i in range(1, size)]


def _employees_csv(managers: list[int | None]) -> str:
    lines = ["employee_id,name,department_id,manager_id,job_title,grade"]
    lines += [f"E{i},Person {i},root,{'' if m is None else f'E{m}'},Staff,G5" for i, m in enumerate(managers)]
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(managers=reporting_trees(), data=st.data())
def test_any_tree_is_valid_and_pointing_a_manager_at_a_descendant_is_one_cycle(
    managers: list[int | None], data: st.DataObject
) -> None:
    departments = "department_id,name,parent_id,head_employee_id\nroot,Company,,E0\n"
    assert issues_of(departments, _employees_csv(managers)) == []
    mover = data.draw(st.integers(min_value=0, max_value=len(managers) - 1))
    descendants = {mover}
    for i, m in enumerate(managers):  # managers come before their reports
        if m in descendants:
            descendants.add(i)
    new_manager = data.draw(st.sampled_from(sorted(descendants)))
    broken = list(managers)
    broken[mover] = new_manager
    issues = issues_of(departments, _employees_csv(broken))
    assert len(issues) == 1 and issues[0].column == "manager_id"
    assert "forms a cycle" in issues[0].message and f"E{mover}" in issues[0].message


def test_the_committed_sample_template_is_the_cli_sample() -> None:
    from contracts.templates import CycleTemplateSpec
    from services.cycles.service import sample_template

    committed = CycleTemplateSpec.model_validate_json((SAMPLE / "template.json").read_text())
    assert committed == sample_template()
    scores = {"kpi": 4, "manager": 4, "peer": 4, "cross_department": 4, "self": 4}
    assert committed.scoring.evaluate(scores) == pytest.approx(4)
    assert committed.scoring.rating_scale.band_for(4.6) == "outstanding"
