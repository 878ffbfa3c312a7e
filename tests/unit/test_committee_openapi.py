"""Every committee endpoint has a summary and declares its roles (``x-roles``), as the issue sets them:
the committee (hr_admin, member department heads) manages; everyone reads the decisions assigned to
them and the suggestions in their scope; the worker reads a decision's snapshot."""

from __future__ import annotations

from services.committee.app import create_app
from services.common.settings import DEV_JWT_SECRET, Settings

MANAGERS = ["dept_head", "hr_admin"]
EVERYONE = ["dept_head", "employee", "hr_admin", "manager", "ops"]
STAFF = ["dept_head", "employee", "hr_admin", "manager"]
MACHINE = ["hr_admin", "ops"]
RATERS = ["dept_head", "hr_admin", "manager"]

EXPECTED = {
    ("POST", "/v1/committees"): MANAGERS,
    ("GET", "/v1/committees"): MANAGERS,
    ("GET", "/v1/committees/{committee_id}"): MANAGERS,
    ("PATCH", "/v1/committees/{committee_id}"): MANAGERS,
    ("PUT", "/v1/committees/{committee_id}/cadence"): MANAGERS,
    ("POST", "/v1/committees/{committee_id}/meetings"): MANAGERS,
    ("GET", "/v1/committees/{committee_id}/meetings"): MANAGERS,
    ("GET", "/v1/committees/{committee_id}/meetings/{meeting_id}"): MANAGERS,
    ("PUT", "/v1/committees/{committee_id}/meetings/{meeting_id}/minutes"): MANAGERS,
    ("POST", "/v1/committees/{committee_id}/meetings/{meeting_id}/decisions"): MANAGERS,
    ("GET", "/v1/committees/{committee_id}/decisions"): MANAGERS,
    ("POST", "/v1/committees/{committee_id}/meetings/{meeting_id}/calibration-sessions"): MANAGERS,
    ("GET", "/v1/committees/{committee_id}/meetings/{meeting_id}/calibration-sessions"): MANAGERS,
    ("GET", "/v1/decisions/mine"): EVERYONE,
    ("GET", "/v1/decisions/{decision_id}"): EVERYONE,
    ("POST", "/v1/decisions/{decision_id}/status"): STAFF,
    ("PATCH", "/v1/decisions/{decision_id}"): MANAGERS,
    ("POST", "/v1/decisions/{decision_id}/track"): MACHINE,
    ("GET", "/v1/decisions/{decision_id}/snapshot"): MACHINE,
    ("GET", "/v1/calibration-sessions/{session_id}"): MANAGERS,
    ("POST", "/v1/calibration-sessions/{session_id}/adjustments"): MANAGERS,
    ("GET", "/v1/cycles/{cycle_id}/suggestions/people/{employee_id}"): EVERYONE,
    ("GET", "/v1/cycles/{cycle_id}/suggestions/teams/{manager_id}"): EVERYONE,
    ("GET", "/v1/cycles/{cycle_id}/suggestions/departments/{department_id}"): EVERYONE,
    ("PUT", "/v1/cycles/{cycle_id}/participants"): ["hr_admin"],
    ("PUT", "/v1/career-frameworks/{job_family}"): ["hr_admin"],
    ("GET", "/v1/career-frameworks"): EVERYONE,
    ("PUT", "/v1/cycles/{cycle_id}/potential/{employee_id}"): RATERS,
    ("POST", "/v1/cycles/{cycle_id}/potential/{employee_id}/calibration"): ["hr_admin"],
    ("GET", "/v1/cycles/{cycle_id}/nine-box"): RATERS,
    ("GET", "/v1/people/{employee_id}/growth"): EVERYONE,
    ("GET", "/v1/teams/{manager_id}/growth"): RATERS,
    ("GET", "/v1/departments/{department_id}/history"): ["dept_head", "hr_admin", "ops"],
}


def test_every_operation_has_a_summary_and_the_roles_the_issue_sets() -> None:
    spec = create_app(Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-unit", cycle_workflows=False)).openapi()
    found = {
        (method.upper(), path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/v1/") and path != "/v1/audit"
    }
    assert {key: sorted(op["x-roles"]) for key, op in found.items()} == EXPECTED
    assert all(op.get("summary") for op in found.values())


def test_suggestion_thresholds_are_documented_query_parameters() -> None:
    spec = create_app(Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-unit", cycle_workflows=False)).openapi()
    operation = spec["paths"]["/v1/cycles/{cycle_id}/suggestions/people/{employee_id}"]["get"]
    query = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert query == {"kpi_floor_pct", "team_share", "competency_gap", "collaboration_floor", "theme_mentions"}
