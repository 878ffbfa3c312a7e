"""Parsing and validating an org directory file (CSV pair or JSON), with no database.

An org file is the *whole* directory, as exported from the HR system:

* ``departments.csv``: ``department_id, name, parent_id, head_employee_id, data_steward_id``
  (``data_steward_id``, the employee who answers for the department's data, is optional: without it
  the department head is reminded about stale data)
* ``employees.csv``: ``employee_id, name, email, department_id, manager_id, job_title, grade, salary_band``
  (``email`` and ``salary_band`` columns are optional)
* or one JSON document ``{"departments": [{...}], "employees": [{...}]}`` with the same field names.

Every problem is collected (never just the first) as an :class:`ImportIssue` naming the
file, the row and the column. CSV rows are numbered as a spreadsheet shows them (the
header is row 1, the first record row 2); JSON rows are 1-based positions in the array.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DEPARTMENT_COLUMNS",
    "EMPLOYEE_COLUMNS",
    "DepartmentRow",
    "EmployeeRow",
    "ImportIssue",
    "OrgFile",
    "OrgImportRejected",
    "parse_csv",
    "parse_json",
    "read_org",
    "validate_org",
]

DEPARTMENT_COLUMNS = ("department_id", "name", "parent_id", "head_employee_id", "data_steward_id")
EMPLOYEE_COLUMNS = (
    "employee_id",
    "name",
    "email",
    "department_id",
    "manager_id",
    "job_title",
    "grade",
    "salary_band",
)
_OPTIONAL_COLUMNS = {"parent_id", "email", "salary_band", "data_steward_id"}
_REQUIRED_VALUES = {
    "departments": {"department_id", "name", "head_employee_id"},
    "employees": {"employee_id", "name", "department_id", "job_title", "grade"},
}
_ID_COLUMNS = {"department_id", "parent_id", "head_employee_id", "data_steward_id", "employee_id", "manager_id"}
_MAX_LENGTH = {"name": 200, "job_title": 200, "grade": 32, "salary_band": 32, "email": 254}
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DEPARTMENT_PEOPLE = {"head_employee_id": "department head", "data_steward_id": "data steward"}
"""The department columns that name an employee, and what the employee is to the department."""
_MISSING_VALUE_MESSAGES = {
    "head_employee_id": "missing department head: every department needs a head_employee_id",
}


@dataclass(frozen=True)
class ImportIssue:
    """One problem in an org file, where a person can find and fix it."""

    file: str
    row: int | None
    column: str | None
    message: str
    value: str | None = None

    def describe(self) -> str:
        where = self.file + (f" row {self.row}" if self.row is not None else "")
        where += f", column {self.column}" if self.column else ""
        return f"{where}: {self.message}"


class OrgImportRejected(Exception):
    """The file has problems; nothing was imported."""

    def __init__(self, issues: list[ImportIssue]) -> None:
        super().__init__(f"org import rejected with {len(issues)} problem(s); nothing was imported")
        self.issues = issues


@dataclass(frozen=True)
class DepartmentRow:
    row: int
    department_id: str
    name: str
    parent_id: str | None
    head_employee_id: str
    data_steward_id: str | None = None

    def record(self) -> dict[str, str | None]:
        data = asdict(self)
        del data["row"]
        if data["data_steward_id"] is None:
            # Absent, as before the column existed: a file without stewards keeps its content hash.
            del data["data_steward_id"]
        return data


@dataclass(frozen=True)
class EmployeeRow:
    row: int
    employee_id: str
    name: str
    email: str | None
    department_id: str
    manager_id: str | None
    job_title: str
    grade: str
    salary_band: str | None

    def record(self) -> dict[str, str | None]:
        data = asdict(self)
        del data["row"]
        return data


@dataclass
class OrgFile:
    """A parsed org file: rows that passed the per-field checks, and where they came from."""

    source: str
    departments_file: str
    employees_file: str
    departments: list[DepartmentRow] = field(default_factory=list)
    employees: list[EmployeeRow] = field(default_factory=list)
    readable: bool = True
    """False when a file could not be read as a whole (encoding, header): cross-row rules are skipped."""

    def content_hash(self) -> str:
        """SHA-256 of the normalized content: the same org as CSV or JSON, in any row order, hashes alike."""
        canonical = {
            "departments": sorted((d.record() for d in self.departments), key=lambda r: str(r["department_id"])),
            "employees": sorted((e.record() for e in self.employees), key=lambda r: str(r["employee_id"])),
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


RawRow = tuple[int, dict[str, str | None]]


# -- reading ---------------------------------------------------------------------------------------
def _decode(data: bytes, file_name: str, issues: list[ImportIssue]) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.append(
            ImportIssue(file_name, None, None, f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV")
        )
        return None


def _read_csv(data: bytes, file_name: str, known: tuple[str, ...], issues: list[ImportIssue]) -> list[RawRow] | None:
    """The rows of one CSV file; ``None`` if the file as a whole is unusable (reported in ``issues``)."""
    text = _decode(data, file_name, issues)
    if text is None:
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        issues.append(ImportIssue(file_name, None, None, "the file is empty; expected a header row"))
        return None
    except csv.Error as exc:
        issues.append(ImportIssue(file_name, 1, None, f"malformed CSV: {exc}"))
        return None
    columns = [c.strip().lower() for c in header]
    header_ok = _check_header(columns, file_name, known, issues)
    rows: list[RawRow] = []
    row_number = 1
    try:
        for values in reader:
            row_number += 1
            if not any(v.strip() for v in values):
                continue  # blank line
            if not header_ok:
                continue  # the header problems are reported; per-row noise would hide them
            if len(values) > len(columns):
                issues.append(
                    ImportIssue(
                        file_name,
                        row_number,
                        None,
                        f"the row has {len(values)} values but the header has {len(columns)} columns",
                    )
                )
                continue
            padded = values + [""] * (len(columns) - len(values))
            rows.append((row_number, {c: _clean(v) for c, v in zip(columns, padded, strict=True)}))
    except csv.Error as exc:
        issues.append(ImportIssue(file_name, row_number, None, f"malformed CSV: {exc}"))
        return None
    return rows if header_ok else None


def _check_header(columns: list[str], file_name: str, known: tuple[str, ...], issues: list[ImportIssue]) -> bool:
    ok = True
    for column in columns:
        if column not in known:
            issues.append(
                ImportIssue(file_name, 1, column or "(empty)", f"unknown column; expected columns: {', '.join(known)}")
            )
            ok = False
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    for column in repeated:
        issues.append(ImportIssue(file_name, 1, column, "the column appears more than once"))
        ok = False
    for column in known:
        if column not in columns and column not in _OPTIONAL_COLUMNS:
            issues.append(ImportIssue(file_name, 1, column, "required column is missing from the header"))
            ok = False
    return ok


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _json_rows(items: Any, section: str, known: tuple[str, ...], issues: list[ImportIssue]) -> list[RawRow] | None:
    if items is None:
        return None  # reported as a missing key
    if not isinstance(items, list):
        issues.append(ImportIssue(section, None, None, f"'{section}' must be a list of objects"))
        return None
    rows: list[RawRow] = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            issues.append(ImportIssue(section, index, None, "each entry must be an object"))
            continue
        record: dict[str, str | None] = {}
        for key, value in item.items():
            if key not in known:
                issues.append(
                    ImportIssue(section, index, str(key), f"unknown field; expected fields: {', '.join(known)}")
                )
            elif value is None or isinstance(value, str):
                record[key] = _clean(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                record[key] = str(value)
            else:
                issues.append(
                    ImportIssue(section, index, key, f"must be a string, got {type(value).__name__}", str(value))
                )
        rows.append((index, record))
    return rows


# -- per-field checks ------------------------------------------------------------------------------
def _field_issues(file_name: str, section: str, row: int, record: Mapping[str, str | None]) -> list[ImportIssue]:
    issues: list[ImportIssue] = []
    for column in _REQUIRED_VALUES[section]:
        if not record.get(column):
            message = _MISSING_VALUE_MESSAGES.get(column, "a value is required")
            issues.append(ImportIssue(file_name, row, column, message))
    for column, value in record.items():
        if value is None:
            continue
        if column in _ID_COLUMNS and not _ID_PATTERN.match(value):
            issues.append(
                ImportIssue(
                    file_name,
                    row,
                    column,
                    "an id is 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit",
                    value,
                )
            )
        limit = _MAX_LENGTH.get(column)
        if limit is not None and len(value) > limit:
            issues.append(ImportIssue(file_name, row, column, f"at most {limit} characters, got {len(value)}", value))
        if column == "email" and not _EMAIL_PATTERN.match(value):
            issues.append(ImportIssue(file_name, row, column, "not an email address", value))
    return issues


def _build(
    org: OrgFile, departments: Iterable[RawRow], employees: Iterable[RawRow], issues: list[ImportIssue]
) -> OrgFile:
    """Rows with field problems are kept (a missing value as ``""``) so the cross-row rules still see
    their ids and references; the problems themselves already reject the import."""
    for row, record in departments:
        issues.extend(_field_issues(org.departments_file, "departments", row, record))
        if record.get("department_id"):
            org.departments.append(
                DepartmentRow(
                    row=row,
                    department_id=str(record["department_id"]),
                    name=record.get("name") or "",
                    parent_id=record.get("parent_id"),
                    head_employee_id=record.get("head_employee_id") or "",
                    data_steward_id=record.get("data_steward_id"),
                )
            )
    for row, record in employees:
        issues.extend(_field_issues(org.employees_file, "employees", row, record))
        if record.get("employee_id"):
            org.employees.append(
                EmployeeRow(
                    row=row,
                    employee_id=str(record["employee_id"]),
                    name=record.get("name") or "",
                    email=record.get("email"),
                    department_id=record.get("department_id") or "",
                    manager_id=record.get("manager_id"),
                    job_title=record.get("job_title") or "",
                    grade=record.get("grade") or "",
                    salary_band=record.get("salary_band"),
                )
            )
    return org


def parse_csv(
    *,
    departments: bytes,
    employees: bytes,
    departments_file: str = "departments.csv",
    employees_file: str = "employees.csv",
) -> tuple[OrgFile, list[ImportIssue]]:
    """Parse the CSV pair; per-field problems are returned, cross-row rules are :func:`validate_org`'s."""
    issues: list[ImportIssue] = []
    dept_rows = _read_csv(departments, departments_file, DEPARTMENT_COLUMNS, issues)
    emp_rows = _read_csv(employees, employees_file, EMPLOYEE_COLUMNS, issues)
    org = OrgFile(source="csv", departments_file=departments_file, employees_file=employees_file)
    org.readable = dept_rows is not None and emp_rows is not None
    return _build(org, dept_rows or [], emp_rows or [], issues), issues


def parse_json(data: bytes) -> tuple[OrgFile, list[ImportIssue]]:
    """Parse ``{"departments": [...], "employees": [...]}``."""
    issues: list[ImportIssue] = []
    org = OrgFile(source="json", departments_file="departments", employees_file="employees")
    org.readable = False  # until the document's shape is known to be right
    text = _decode(data, "org.json", issues)
    if text is None:
        return org, issues
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        issues.append(ImportIssue("org.json", exc.lineno, None, f"not valid JSON: {exc.msg} (line {exc.lineno})"))
        return org, issues
    if not isinstance(document, dict):
        expected = 'expected an object {"departments": [...], "employees": [...]}'
        issues.append(ImportIssue("org.json", None, None, expected))
        return org, issues
    for key in document:
        if key not in ("departments", "employees"):
            message = "unknown key; expected 'departments' and 'employees'"
            issues.append(ImportIssue("org.json", None, str(key), message))
    for key in ("departments", "employees"):
        if key not in document:
            issues.append(ImportIssue("org.json", None, key, f"the '{key}' list is missing"))
    dept_rows = _json_rows(document.get("departments"), "departments", DEPARTMENT_COLUMNS, issues)
    emp_rows = _json_rows(document.get("employees"), "employees", EMPLOYEE_COLUMNS, issues)
    org.readable = dept_rows is not None and emp_rows is not None
    return _build(org, dept_rows or [], emp_rows or [], issues), issues


# -- cross-row rules -------------------------------------------------------------------------------
def _find_cycles(parent_of: Mapping[str, str | None]) -> list[list[str]]:
    """Every cycle in a parent map, each listed once, as the path that closes it."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []
    for start in parent_of:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parent_of and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = parent_of[node]
        if node is not None and state.get(node) == 1:
            cycles.append(path[path.index(node) :])
        for visited in path:
            state[visited] = 2
    return cycles


def _report_cycles(
    cycles: list[list[str]],
    rows: Mapping[str, int],
    file_name: str,
    column: str,
    what: str,
    issues: list[ImportIssue],
) -> None:
    for members in cycles:
        first = min(members, key=lambda m: rows[m])
        # Start the chain at the row that is reported so it reads naturally.
        rotated = members[members.index(first) :] + members[: members.index(first)]
        chain = " -> ".join([*rotated, rotated[0]])
        issues.append(ImportIssue(file_name, rows[first], column, f"{what} forms a cycle: {chain}", first))


def _duplicates(
    rows: Iterable[tuple[int, str]],
    file_name: str,
    column: str,
    issues: list[ImportIssue],
    normalize: Callable[[str], str] = str,
) -> dict[str, int]:
    first_row: dict[str, int] = {}
    for row, value in rows:
        key = normalize(value)
        if key in first_row:
            issues.append(
                ImportIssue(file_name, row, column, f"duplicate {column} (first used on row {first_row[key]})", value)
            )
        else:
            first_row[key] = row
    return first_row


def validate_org(org: OrgFile) -> list[ImportIssue]:
    """The cross-row rules: unique ids, known references (parents, heads, data stewards, managers),
    a department head each, no cycles."""
    issues: list[ImportIssue] = []
    if not org.readable:
        return issues  # fix the file's shape first; references into an unread file would all look unknown
    dept_file, emp_file = org.departments_file, org.employees_file
    dept_rows = _duplicates(((d.row, d.department_id) for d in org.departments), dept_file, "department_id", issues)
    emp_rows = _duplicates(((e.row, e.employee_id) for e in org.employees), emp_file, "employee_id", issues)
    _duplicates(((e.row, e.email) for e in org.employees if e.email), emp_file, "email", issues, str.lower)

    if not org.departments:
        issues.append(ImportIssue(dept_file, None, None, "no departments: the file must list the whole directory"))
    if not org.employees:
        issues.append(ImportIssue(emp_file, None, None, "no employees: the file must list the whole directory"))

    known_depts, known_emps = set(dept_rows), set(emp_rows)
    for d in org.departments:
        if d.parent_id is not None and d.parent_id not in known_depts:
            issues.append(
                ImportIssue(dept_file, d.row, "parent_id", f"unknown parent department '{d.parent_id}'", d.parent_id)
            )
        for column, role in _DEPARTMENT_PEOPLE.items():
            person = getattr(d, column)
            if person and person not in known_emps:
                message = f"unknown {role} '{person}': no employee with this id in {emp_file}"
                issues.append(ImportIssue(dept_file, d.row, column, message, person))
    for e in org.employees:
        if e.department_id and e.department_id not in known_depts:
            issues.append(
                ImportIssue(
                    emp_file,
                    e.row,
                    "department_id",
                    f"unknown department '{e.department_id}': not in {dept_file}",
                    e.department_id,
                )
            )
        if e.manager_id is not None and e.manager_id not in known_emps:
            issues.append(
                ImportIssue(
                    emp_file,
                    e.row,
                    "manager_id",
                    f"unknown manager '{e.manager_id}': no employee with this id in {emp_file}",
                    e.manager_id,
                )
            )

    first_dept = {d.department_id: d for d in org.departments if dept_rows.get(d.department_id) == d.row}
    first_emp = {e.employee_id: e for e in org.employees if emp_rows.get(e.employee_id) == e.row}
    dept_parent = {k: (d.parent_id if d.parent_id in first_dept else None) for k, d in first_dept.items()}
    emp_manager = {k: (e.manager_id if e.manager_id in first_emp else None) for k, e in first_emp.items()}
    _report_cycles(_find_cycles(dept_parent), dept_rows, dept_file, "parent_id", "the department tree", issues)
    _report_cycles(_find_cycles(emp_manager), emp_rows, emp_file, "manager_id", "the reporting line", issues)
    return issues


def read_org(
    *,
    json_data: bytes | None = None,
    departments_csv: bytes | None = None,
    employees_csv: bytes | None = None,
) -> OrgFile:
    """Parse and validate; raises :class:`OrgImportRejected` with every problem found."""
    if json_data is not None:
        org, issues = parse_json(json_data)
    elif departments_csv is not None and employees_csv is not None:
        org, issues = parse_csv(departments=departments_csv, employees=employees_csv)
    else:
        raise OrgImportRejected(
            [ImportIssue("request", None, None, "send either one JSON document or both departments and employees CSV")]
        )
    issues.extend(validate_org(org))
    if issues:
        raise OrgImportRejected(sorted(issues, key=_issue_order))
    return org


def _issue_order(issue: ImportIssue) -> tuple[str, int, str]:
    return (issue.file, issue.row if issue.row is not None else 0, issue.column or "")


MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def read_upload(*, content_type: str, body: bytes) -> OrgFile:
    """Parse and validate an uploaded org file.

    * ``application/json``: the JSON document as the body;
    * ``multipart/form-data``: parts ``departments`` and ``employees`` (CSV), or one part holding the JSON
      document (``.json`` file name or ``application/json`` part type).

    Raises :class:`OrgImportRejected` (also for an unusable request) with every problem found.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("application/json", "text/json"):
        return read_org(json_data=body)
    if media_type == "multipart/form-data":
        parts = _multipart_parts(content_type, body)
        if "departments" in parts or "employees" in parts:
            missing = [name for name in ("departments", "employees") if name not in parts]
            if missing:
                raise OrgImportRejected(
                    [
                        ImportIssue("request", None, name, f"the multipart part '{name}' (a CSV file) is missing")
                        for name in missing
                    ]
                )
            return read_org(departments_csv=parts["departments"][1], employees_csv=parts["employees"][1])
        json_parts = [
            data
            for (file_name, data, part_type) in parts.values()
            if part_type == "application/json" or (file_name or "").lower().endswith(".json")
        ]
        if len(parts) == 1 and json_parts:
            return read_org(json_data=json_parts[0])
        raise OrgImportRejected(
            [
                ImportIssue(
                    "request",
                    None,
                    None,
                    "multipart upload needs the parts 'departments' and 'employees' (CSV files), or a single JSON "
                    f"file; got parts {sorted(parts)}",
                )
            ]
        )
    if media_type in ("text/csv", "application/csv"):
        message = (
            "a CSV org import is two files: send them as multipart/form-data parts 'departments' and 'employees' "
            "(curl -F departments=@departments.csv -F employees=@employees.csv), or send JSON"
        )
    else:
        message = (
            f"unsupported content type {media_type or '(none)'!r}: send application/json, or multipart/form-data "
            "with the parts 'departments' and 'employees'"
        )
    raise OrgImportRejected([ImportIssue("request", None, None, message)])


def _multipart_parts(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes, str]]:
    """Part name -> (file name, bytes, part content type), with the standard library's MIME parser."""
    from email.message import Message
    from email.parser import BytesParser
    from email.policy import HTTP

    envelope = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(envelope + body)
    if not message.is_multipart():
        raise OrgImportRejected([ImportIssue("request", None, None, "the multipart body could not be parsed")])
    parts: dict[str, tuple[str | None, bytes, str]] = {}
    payload = message.get_payload()
    for part in payload if isinstance(payload, list) else []:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(data, bytes):
            parts[name] = (part.get_filename(), data, part.get_content_type())
    if not parts:
        raise OrgImportRejected([ImportIssue("request", None, None, "the multipart body has no named parts")])
    return parts
