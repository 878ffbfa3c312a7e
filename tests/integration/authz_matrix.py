"""The authorization matrix: for every endpoint of every service, who may call it.

This table is the specification ``test_authz_matrix.py`` checks the running services
against. It is written by hand on purpose: the test reads each service's OpenAPI
document and fails for any operation missing here (or listed here but gone), so a new
endpoint cannot ship without someone deciding who may call it.

Per operation:

* ``allowed``: the roles that get past the role gate. The test calls the operation with
  a token holding only that role (and the persona's scoping claims) and expects anything
  but 401/403 (2xx, 404, 409, 422 are fine: the body may be empty on purpose). Every other
  role must get 403.
* ``anonymous``: what a caller without credentials gets: 401 for the APIs, a 303 to the
  sign-in page for console pages, and 2xx/3xx for the few public endpoints.
* ``neighbour``: the operation calls a neighbour (Temporal) that is down in the test, so an
  allowed role may get its 502/503 "unreachable" answer.
* ``scoped``: roles that pass the role gate but whose persona is refused by an object-level
  rule on the seeded data (expected 403 or 404), each with the reason.
* ``body``: a valid JSON body, where an empty one would stop a scoped role at validation
  (422) before the object-level rule is reached; otherwise the body is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MATRIX",
    "OBJECTS",
    "PUBLIC",
    "ROLES",
    "SERVICES",
    "SIGN_IN",
    "VARIANTS",
    "Grid",
    "NoObject",
    "ObjectRule",
    "Objects",
    "Rule",
]

ROLES = ("hr_admin", "dept_head", "manager", "employee", "ops", "department_system", "finance")
SERVICES = ("cycles", "goals", "tracking", "evaluation", "feedback", "results")

PUBLIC = 0
"""``anonymous`` value of a public endpoint: no credentials needed (any status below 400)."""
SIGN_IN = 303
"""``anonymous`` value of a console page: a redirect to the sign-in page."""


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]
    anonymous: int = 401
    scoped: Mapping[str, str] = field(default_factory=dict)
    neighbour: str | None = None
    body: Any = None


def rule(
    *roles: str,
    anonymous: int = 401,
    scoped: Mapping[str, str] | None = None,
    neighbour: str | None = None,
    body: Any = None,
) -> Rule:
    unknown = set(roles) - set(ROLES)
    assert not unknown, unknown
    return Rule(frozenset(roles), anonymous, dict(scoped or {}), neighbour, body)


HR = ("hr_admin",)
MACHINE = ("hr_admin", "ops")
HR_HEAD = ("hr_admin", "dept_head")
APPROVERS = ("hr_admin", "dept_head", "manager")
PEOPLE = ("hr_admin", "dept_head", "manager", "employee")  # the people who take part
READERS = (*PEOPLE, "ops")
EVERYONE = (*READERS, "department_system")
WITH_FINANCE = (*READERS, "finance")
"""Finance sets and approves the pools and pays everyone: the cycles, the directory, the pools and bonuses."""

_public = rule(anonymous=PUBLIC)
_NOT_OWN_RESULT = "the persona's own result is not the one in the path: only the employee acknowledges it"
_PLAN_EDITORS = "only HR, the plan's owner (the manager) and the employee's manager edit a plan; not the head"
_ASKED_ONLY = "HR reads every feedback request, but only the person asked (e-r) answers or declines it"
_ONE_ON_ONE = "a 1:1 belongs to its manager (e-m) and report (e-r); the department head is neither"

_COMMON: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): _public,
    ("GET", "/metrics"): _public,
    ("GET", "/v1/audit"): rule(*MACHINE),
}
_PARTICIPANTS: dict[tuple[str, str], Rule] = {("PUT", "/v1/cycles/{cycle_id}/participants"): rule(*HR)}


MATRIX: dict[str, dict[tuple[str, str], Rule]] = {
    "cycles": {
        **_COMMON,
        ("GET", "/v1/me"): rule(*EVERYONE, "finance"),
        ("POST", "/v1/org/import"): rule(*HR),
        ("GET", "/v1/org/departments"): rule(*READERS),
        ("GET", "/v1/org/departments/{department_id}"): rule(*READERS),
        ("GET", "/v1/org/employees"): rule(*WITH_FINANCE),
        ("GET", "/v1/org/employees/{employee_id}"): rule(*READERS),
        ("POST", "/v1/templates"): rule(*HR),
        ("GET", "/v1/templates"): rule(*READERS),
        ("GET", "/v1/templates/{template_id}"): rule(*READERS),
        ("PUT", "/v1/templates/{template_id}"): rule(*HR),
        ("POST", "/v1/cycles"): rule(*HR),
        ("GET", "/v1/cycles"): rule(*WITH_FINANCE),
        ("GET", "/v1/cycles/{cycle_id}"): rule(*WITH_FINANCE),
        ("POST", "/v1/cycles/{cycle_id}/start"): rule(*HR),
        ("POST", "/v1/cycles/{cycle_id}/distribute"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/snapshot"): rule(*MACHINE),
        ("GET", "/v1/cycles/{cycle_id}/status"): rule(*MACHINE, neighbour="temporal"),
        ("POST", "/v1/cycles/{cycle_id}/pause"): rule(*HR, neighbour="temporal"),
        ("POST", "/v1/cycles/{cycle_id}/resume"): rule(*HR, neighbour="temporal"),
        ("POST", "/v1/cycles/{cycle_id}/cancel"): rule(*HR, neighbour="temporal"),
        ("POST", "/v1/cycles/{cycle_id}/extend"): rule(*HR, neighbour="temporal"),
        ("POST", "/v1/cycles/{cycle_id}/force-stage"): rule(*HR, neighbour="temporal"),
        ("POST", "/v1/cycles/{cycle_id}/incident"): rule(*MACHINE, neighbour="temporal"),
        ("POST", "/v1/cycles/{cycle_id}/closed"): rule(*HR),
        ("POST", "/v1/notifications"): rule(*HR),
        ("GET", "/v1/notifications"): rule(*MACHINE),
        ("GET", "/v1/notifications/counts"): rule(*MACHINE),
        ("GET", "/v1/ops/overview"): rule(*MACHINE),
    },
    "goals": {
        **_COMMON,
        **_PARTICIPANTS,
        ("GET", "/v1/cycles/{cycle_id}/settings"): rule(*READERS),
        ("PUT", "/v1/cycles/{cycle_id}/settings"): rule(*HR),
        ("POST", "/v1/cycles/{cycle_id}/freeze"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/approvals"): rule(*MACHINE),
        ("GET", "/v1/cycles/{cycle_id}/objectives"): rule(*READERS),
        ("POST", "/v1/cycles/{cycle_id}/objectives"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/objectives/{objective_id}"): rule(*READERS),
        ("PATCH", "/v1/cycles/{cycle_id}/objectives/{objective_id}"): rule(*HR),
        ("DELETE", "/v1/cycles/{cycle_id}/objectives/{objective_id}"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/goals"): rule(*READERS),
        ("POST", "/v1/cycles/{cycle_id}/goals"): rule(*PEOPLE),
        ("POST", "/v1/cycles/{cycle_id}/goals/bulk-assign"): rule(*APPROVERS),
        ("GET", "/v1/cycles/{cycle_id}/goals/{goal_id}"): rule(*READERS),
        ("PATCH", "/v1/cycles/{cycle_id}/goals/{goal_id}"): rule(*PEOPLE),
        ("DELETE", "/v1/cycles/{cycle_id}/goals/{goal_id}"): rule(*PEOPLE),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/submit"): rule(*PEOPLE),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/approve"): rule(*APPROVERS),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/return"): rule(*APPROVERS),
        ("GET", "/v1/cycles/{cycle_id}/weights"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/tree"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/scorecard"): rule(*READERS),
        ("PUT", "/v1/cycles/{cycle_id}/progress"): rule(*HR),  # issue 14: ops no longer writes actuals
        ("GET", "/v1/cycles/{cycle_id}/kpi-catalog"): rule(*MACHINE),
        ("GET", "/v1/cycles/{cycle_id}/goal-export"): rule(*MACHINE),
        ("GET", "/v1/cycles/{cycle_id}/pending"): rule(*MACHINE),
    },
    "tracking": {
        **_COMMON,
        **_PARTICIPANTS,
        ("PUT", "/v1/cycles/{cycle_id}/kpis"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/data-owners"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/progress"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/kpis/{kpi_id}/progress"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/departments/progress"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/progress-export"): rule(*MACHINE),
        ("GET", "/v1/cycles/{cycle_id}/pending"): rule(*MACHINE),
        ("GET", "/v1/cycles/{cycle_id}/stale-kpis"): rule("hr_admin", "dept_head", "ops"),
        ("POST", "/v1/cycles/{cycle_id}/staleness/evaluate"): rule(*MACHINE),
        ("POST", "/v1/cycles/{cycle_id}/check-ins"): rule(*PEOPLE),
        ("GET", "/v1/cycles/{cycle_id}/kpis/{kpi_id}/check-ins"): rule(*READERS),
        ("POST", "/v1/ingest/metrics"): rule("department_system"),
        ("GET", "/v1/ops/ingestion"): rule(*MACHINE),
        ("POST", "/v1/api-keys"): rule(*HR),
        ("GET", "/v1/api-keys"): rule(*HR),
        ("POST", "/v1/api-keys/{key_id}/rotate"): rule(*HR),
        ("POST", "/v1/api-keys/{key_id}/revoke"): rule(*HR),
    },
    "evaluation": {
        **_COMMON,
        **_PARTICIPANTS,
        ("PUT", "/v1/cycles/{cycle_id}/config/template"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/config/versions"): rule(*MACHINE),
        ("PUT", "/v1/cycles/{cycle_id}/goal-keys"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/goals"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/actuals"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/config"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/config"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/goal-scores/{employee_id}"): rule(*READERS),
        ("POST", "/v1/cycles/{cycle_id}/collaborations"): rule(*HR_HEAD),
        ("GET", "/v1/cycles/{cycle_id}/collaborations"): rule("hr_admin", "dept_head", "manager", "ops"),
        ("PUT", "/v1/cycles/{cycle_id}/collaboration-ratings"): rule(*HR_HEAD),
        ("GET", "/v1/cycles/{cycle_id}/collaboration-matrix"): rule("hr_admin", "dept_head", "ops"),
        ("POST", "/v1/cycles/{cycle_id}/assignments/generate"): rule(*HR),
        ("POST", "/v1/cycles/{cycle_id}/assignments"): rule("hr_admin", "manager"),
        ("GET", "/v1/cycles/{cycle_id}/assignments"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/assignments/{assignment_id}"): rule(*READERS),
        ("POST", "/v1/cycles/{cycle_id}/assignments/{assignment_id}/review"): rule(*PEOPLE),
        ("GET", "/v1/cycles/{cycle_id}/reviews/{employee_id}/summary"): rule(*READERS),
        ("POST", "/v1/cycles/{cycle_id}/scores/compute"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/results"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/results/{employee_id}"): rule(
            *READERS, scoped={"employee": "the persona's own result: evaluation never shows it, feedback releases it"}
        ),
        ("GET", "/v1/cycles/{cycle_id}/calibration/distribution"): rule(*HR_HEAD),
        ("GET", "/v1/cycles/{cycle_id}/calibration/deviation"): rule(*HR_HEAD),
        ("POST", "/v1/cycles/{cycle_id}/calibration/adjustments"): rule(*HR_HEAD),
        ("GET", "/v1/cycles/{cycle_id}/calibration/adjustments"): rule(*HR_HEAD),
        ("POST", "/v1/cycles/{cycle_id}/calibration/close"): rule(*HR),
        ("POST", "/v1/cycles/{cycle_id}/appeal-adjustments"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/final-results"): rule(*MACHINE),
        ("POST", "/v1/cycles/{cycle_id}/what-if"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/pending"): rule("hr_admin", "dept_head", "ops"),
    },
    "feedback": {
        **_COMMON,
        **_PARTICIPANTS,
        ("PUT", "/v1/cycles/{cycle_id}/config/template"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/appeal-state"): rule(*MACHINE),
        ("PUT", "/v1/cycles/{cycle_id}/results"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/config"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/config"): rule(*MACHINE),
        ("POST", "/v1/cycles/{cycle_id}/release"): rule(*HR),
        ("POST", "/v1/cycles/{cycle_id}/withdraw"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/results"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}/results/{employee_id}"): rule(*READERS),
        ("POST", "/v1/cycles/{cycle_id}/results/{employee_id}/acknowledge"): rule(
            *READERS, scoped={role: _NOT_OWN_RESULT for role in ("hr_admin", "dept_head", "manager", "ops")}
        ),
        ("POST", "/v1/cycles/{cycle_id}/appeals"): rule(
            *READERS,
            scoped={"ops": "ops has no employee_id, so no result of its own to appeal"},
            body={"reason": "my Q4 deals are missing from the numbers"},
        ),
        ("GET", "/v1/cycles/{cycle_id}/appeals"): rule(*READERS),
        ("GET", "/v1/appeals/overdue"): rule(*MACHINE),
        ("GET", "/v1/appeals/{appeal_id}"): rule(*READERS),
        ("POST", "/v1/appeals/{appeal_id}/review"): rule(*HR),
        ("POST", "/v1/appeals/{appeal_id}/resolve"): rule(*HR),
        ("POST", "/v1/cycles/{cycle_id}/one-on-ones"): rule("dept_head", "manager", "employee"),
        ("GET", "/v1/cycles/{cycle_id}/one-on-ones"): rule(*PEOPLE),
        ("GET", "/v1/one-on-ones/{one_on_one_id}"): rule(*PEOPLE, scoped={"dept_head": _ONE_ON_ONE}),
        ("PATCH", "/v1/one-on-ones/{one_on_one_id}"): rule(
            "dept_head", "manager", "employee", scoped={"dept_head": _ONE_ON_ONE}
        ),
        ("POST", "/v1/one-on-ones/{one_on_one_id}/action-items"): rule(
            "dept_head",
            "manager",
            "employee",
            scoped={"dept_head": _ONE_ON_ONE},
            body={"description": "Share the forecast", "owner_id": "e-r", "due_date": "2026-06-10"},
        ),
        ("PATCH", "/v1/one-on-ones/{one_on_one_id}/action-items/{item_id}"): rule(
            "dept_head", "manager", "employee", scoped={"dept_head": _ONE_ON_ONE}
        ),
        ("POST", "/v1/cycles/{cycle_id}/feedback"): rule(*PEOPLE),
        ("GET", "/v1/cycles/{cycle_id}/feedback"): rule(*PEOPLE),
        ("POST", "/v1/cycles/{cycle_id}/feedback-requests"): rule(
            *PEOPLE, body={"giver_id": "e-fh", "question": "How did my demo go?"}
        ),
        ("GET", "/v1/cycles/{cycle_id}/feedback-requests"): rule(*PEOPLE),
        ("POST", "/v1/feedback-requests/{request_id}/answer"): rule(
            *PEOPLE, scoped={"hr_admin": _ASKED_ONLY}, body={"message": "It went well."}
        ),
        ("POST", "/v1/feedback-requests/{request_id}/decline"): rule(
            *PEOPLE, scoped={"hr_admin": _ASKED_ONLY}, body={"reason": "not my area"}
        ),
        ("GET", "/v1/cycles/{cycle_id}/pending"): rule(*MACHINE),
    },
    "results": {
        **_COMMON,
        **_PARTICIPANTS,
        ("PUT", "/v1/cycles/{cycle_id}/policy/template"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/policy/version"): rule(*READERS),
        ("POST", "/v1/cycles/{cycle_id}/appeal-adjustments"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/results"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/collaboration"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/goals"): rule(*HR),
        ("PUT", "/v1/cycles/{cycle_id}/policy"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/policy"): rule(*WITH_FINANCE),
        ("PUT", "/v1/cycles/{cycle_id}/pools/{department_id}"): rule("hr_admin", "finance"),
        ("POST", "/v1/cycles/{cycle_id}/pools/{department_id}/approval"): rule("finance"),
        ("GET", "/v1/cycles/{cycle_id}/pools"): rule("hr_admin", "dept_head", "ops", "finance"),
        ("POST", "/v1/cycles/{cycle_id}/pools/{department_id}/allocations"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/pools/{department_id}/allocation"): rule(
            "hr_admin", "dept_head", "ops", "finance"
        ),
        ("GET", "/v1/cycles/{cycle_id}/bonuses"): rule(*WITH_FINANCE),
        ("POST", "/v1/cycles/{cycle_id}/promotions/nominate"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/promotions"): rule(*READERS),
        ("POST", "/v1/cycles/{cycle_id}/development-plans/generate"): rule(*HR),
        ("POST", "/v1/cycles/{cycle_id}/development-plans"): rule("hr_admin", "manager"),
        ("GET", "/v1/cycles/{cycle_id}/development-plans"): rule(*READERS),
        ("GET", "/v1/development-plans/{plan_id}"): rule(*READERS),
        ("PATCH", "/v1/development-plans/{plan_id}"): rule(*APPROVERS, scoped={"dept_head": _PLAN_EDITORS}),
        ("POST", "/v1/development-plans/{plan_id}/items"): rule(*APPROVERS),
        ("PATCH", "/v1/development-plans/{plan_id}/items/{item_id}"): rule(
            *READERS,
            scoped={"dept_head": _PLAN_EDITORS, "ops": "ops reads plans but edits nothing"},
            body={"done": True},
        ),
        ("GET", "/v1/cycles/{cycle_id}/collaboration-awards"): rule(*READERS),
        ("PUT", "/v1/cycles/{cycle_id}/award-fund"): rule("hr_admin", "finance"),
        ("GET", "/v1/cycles/{cycle_id}/award-fund"): rule("hr_admin", "dept_head", "ops", "finance"),
        ("GET", "/v1/cycles/{cycle_id}/collaboration-report"): rule("hr_admin", "dept_head", "manager", "ops"),
        ("GET", "/v1/cycles/{cycle_id}/collaboration-report.csv"): rule("hr_admin", "dept_head", "manager", "ops"),
        ("GET", "/v1/cycles/{cycle_id}/collaboration-report.html"): rule("hr_admin", "dept_head", "manager", "ops"),
        ("POST", "/v1/cycles/{cycle_id}/publish"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/pending"): rule(*MACHINE, "finance"),
    },
}


# -- object level -------------------------------------------------------------------------------------
VARIANTS = ("own", "same department", "other department")
"""Whose object a call aims at: the persona's own, a colleague's in the persona's department, or
someone's in another department (``OBJECT_TARGETS`` in the test names them per role)."""

Grid = tuple[int | None, int | None, int | None]
"""The exact status per variant; ``None`` where the persona has no such object (ops has no own)."""


@dataclass(frozen=True)
class NoObject:
    """The operation acts on the cycle, the org or the service as a whole: no person's or department's
    object is involved, so the role gate (``MATRIX``) is the whole rule."""

    why: str


@dataclass(frozen=True)
class Objects:
    """Exact statuses per role and variant; a role not listed is refused by the role gate (403)."""

    grid: Mapping[str, Grid]
    why: str


ObjectRule = NoObject | Objects

_SNAPSHOT = NoObject("the cycle's org snapshot, pushed by the workflow")
_INPUT = NoObject("a whole-cycle input pushed by the workflow")
_SETTINGS = NoObject("the cycle's settings")
_STEP = NoObject("a step of the whole cycle")

_GATE: Grid = (403, 403, 403)

OBJECTS: dict[str, dict[tuple[str, str], ObjectRule]] = {
    "cycles": {
        ("POST", "/v1/org/import"): NoObject("the whole org directory"),
        ("POST", "/v1/templates"): NoObject("a cycle template"),
        ("PUT", "/v1/templates/{template_id}"): NoObject("a cycle template"),
        ("POST", "/v1/cycles"): NoObject("a new cycle"),
        ("POST", "/v1/cycles/{cycle_id}/start"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/distribute"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/pause"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/resume"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/cancel"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/extend"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/force-stage"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/incident"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/closed"): _STEP,
        ("POST", "/v1/notifications"): NoObject("a notification HR sends"),
    },
    "goals": {
        ("PUT", "/v1/cycles/{cycle_id}/participants"): _SNAPSHOT,
        ("PUT", "/v1/cycles/{cycle_id}/settings"): _SETTINGS,
        ("POST", "/v1/cycles/{cycle_id}/freeze"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/objectives"): NoObject("a company objective"),
        ("PATCH", "/v1/cycles/{cycle_id}/objectives/{objective_id}"): NoObject("a company objective"),
        ("DELETE", "/v1/cycles/{cycle_id}/objectives/{objective_id}"): NoObject("a company objective"),
        ("PUT", "/v1/cycles/{cycle_id}/progress"): _INPUT,
        ("GET", "/v1/cycles/{cycle_id}/goals/{goal_id}"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 200, 200),
            },
            "a person's goal: HR and ops all, heads their department, managers their reports, the owner",
        ),
        ("PATCH", "/v1/cycles/{cycle_id}/goals/{goal_id}"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
            },
            "the target's goal while draft: its owner, their manager and head, HR; unseen ones are 404",
        ),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/submit"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 403, 404),
                "manager": (200, 403, 404),
                "employee": (409, 404, 404),
            },
            "the target's goal: its owner or HR submits (e-r's was submitted by HR already); 404 outside one's scope",
        ),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/approve"): Objects(
            {"hr_admin": (403, 403, 403), "dept_head": (403, 403, 404), "manager": (403, 200, 404)},
            "never one's own goal nor one one submitted (HR submitted e-fh's and e-r's); the manager's step",
        ),
        ("POST", "/v1/cycles/{cycle_id}/goals/{goal_id}/return"): Objects(
            {"hr_admin": (403, 403, 409), "dept_head": (403, 409, 404), "manager": (403, 409, 404)},
            "never one's own goal nor one one submitted; e-r's is approved by now (409)",
        ),
        ("DELETE", "/v1/cycles/{cycle_id}/goals/{goal_id}"): Objects(
            {
                "hr_admin": (409, 409, 409),
                "dept_head": (409, 409, 404),
                "manager": (409, 409, 404),
                "employee": (409, 404, 404),
            },
            "the target's goal, submitted or approved by now: the scope check (404) comes before the state (409)",
        ),
        ("POST", "/v1/cycles/{cycle_id}/goals"): Objects(
            {
                "hr_admin": (201, 201, 201),
                "dept_head": (201, 201, 404),
                "manager": (201, 201, 404),
                "employee": (201, 404, 404),
            },
            "a goal for the target: the owner, their manager, the department's head, HR; 404 out of scope",
        ),
        ("POST", "/v1/cycles/{cycle_id}/goals/bulk-assign"): Objects(
            {"hr_admin": (200, 200, 200), "dept_head": (200, 200, 200), "manager": (200, 200, 200)},
            "a template for the target's department: only people in the caller's scope get it (else matched 0)",
        ),
    },
    "tracking": {
        ("PUT", "/v1/cycles/{cycle_id}/participants"): _SNAPSHOT,
        ("PUT", "/v1/cycles/{cycle_id}/kpis"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/data-owners"): _INPUT,
        ("POST", "/v1/cycles/{cycle_id}/staleness/evaluate"): _STEP,
        ("POST", "/v1/api-keys"): NoObject("an API key HR issues to a department system"),
        ("POST", "/v1/api-keys/{key_id}/rotate"): NoObject("an API key HR manages"),
        ("POST", "/v1/api-keys/{key_id}/revoke"): NoObject("an API key HR manages"),
        ("POST", "/v1/ingest/metrics"): Objects(
            {"department_system": (None, 503, 403)},
            "metrics of the target's department: only that department's own system (the broker is down here)",
        ),
        ("POST", "/v1/cycles/{cycle_id}/check-ins"): Objects(
            {
                "hr_admin": (201, 201, 201),
                "dept_head": (201, 201, 403),
                "manager": (201, 201, 403),
                "employee": (201, 403, 403),
            },
            "a check-in on the target's KPI: its owner, their managers and head, HR",
        ),
        ("GET", "/v1/cycles/{cycle_id}/kpis/{kpi_id}/check-ins"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 200, 200),
            },
            "check-ins on the target's KPI",
        ),
    },
    "evaluation": {
        ("PUT", "/v1/cycles/{cycle_id}/participants"): _SNAPSHOT,
        ("PUT", "/v1/cycles/{cycle_id}/config/template"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/goal-keys"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/goals"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/actuals"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/config"): _SETTINGS,
        ("POST", "/v1/cycles/{cycle_id}/assignments/generate"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/scores/compute"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/calibration/close"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/what-if"): NoObject("re-scores the whole cycle, writes nothing"),
        ("POST", "/v1/cycles/{cycle_id}/collaborations"): Objects(
            {"hr_admin": (201, 201, 201), "dept_head": (201, 201, 403)},
            "a collaboration of the target's department: HR, or the head of one of the two departments",
        ),
        ("PUT", "/v1/cycles/{cycle_id}/collaboration-ratings"): Objects(
            {"hr_admin": (200, 200, 200), "dept_head": (200, 200, 403)},
            "the target's department rates a department it works with: its head, or HR",
        ),
        ("POST", "/v1/cycles/{cycle_id}/assignments"): Objects(
            {"hr_admin": (403, 201, 409), "manager": (403, 409, 403)},
            "a rater for the target: never one's own raters; a manager for their reports, HR for anyone (e-r "
            "already has the most peers the template allows)",
        ),
        ("POST", "/v1/cycles/{cycle_id}/assignments/{assignment_id}/review"): Objects(
            {
                "hr_admin": (200, 404, 404),
                "dept_head": (200, 404, 404),
                "manager": (200, 404, 404),
                "employee": (200, 404, 404),
            },
            "the target's own self review: only its rater submits it",
        ),
        ("POST", "/v1/cycles/{cycle_id}/calibration/adjustments"): Objects(
            {"hr_admin": (403, 201, 201), "dept_head": (403, 201, 403)},
            "the target's rating: never one's own; HR anyone, a head their department",
        ),
        ("POST", "/v1/cycles/{cycle_id}/appeal-adjustments"): Objects(
            {"hr_admin": (403, 409, 409)},
            "an adjusted appeal of the target: never about oneself (checked first); 409 while calibration is open",
        ),
        ("GET", "/v1/cycles/{cycle_id}/results/{employee_id}"): Objects(
            {
                "hr_admin": (403, 200, 200),
                "dept_head": (403, 200, 404),
                "manager": (403, 200, 404),
                "employee": (403, 404, 404),
                "ops": (None, 200, 200),
            },
            "the target's score: never one's own (feedback releases it); others' in scope",
        ),
        ("GET", "/v1/cycles/{cycle_id}/reviews/{employee_id}/summary"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 200, 200),
            },
            "the target's review aggregates: their own, and those of people in scope",
        ),
        ("GET", "/v1/cycles/{cycle_id}/assignments/{assignment_id}"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 200, 200),
            },
            "the target's self review: its rater, and those who see the target",
        ),
        ("GET", "/v1/cycles/{cycle_id}/goal-scores/{employee_id}"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 200, 200),
            },
            "the target's live goal attainment",
        ),
    },
    "feedback": {
        ("PUT", "/v1/cycles/{cycle_id}/participants"): _SNAPSHOT,
        ("PUT", "/v1/cycles/{cycle_id}/config/template"): _SETTINGS,
        ("PUT", "/v1/cycles/{cycle_id}/results"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/config"): _SETTINGS,
        ("POST", "/v1/cycles/{cycle_id}/release"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/withdraw"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/results/{employee_id}/acknowledge"): Objects(
            {
                "hr_admin": (200, 403, 403),
                "dept_head": (200, 403, 403),
                "manager": (200, 403, 403),
                "employee": (200, 403, 403),
                "ops": (None, 403, 403),
            },
            "the target's released result: only its employee acknowledges it",
        ),
        ("POST", "/v1/cycles/{cycle_id}/appeals"): Objects(
            {
                "hr_admin": (409, None, None),
                "dept_head": (409, None, None),
                "manager": (409, None, None),
                "employee": (409, None, None),
            },
            "one's own released result only (the body names no one); everyone here already has one open",
        ),
        ("POST", "/v1/appeals/{appeal_id}/review"): Objects(
            {"hr_admin": (403, 200, 200)},
            "the target's appeal: HR, never their own",
        ),
        ("POST", "/v1/appeals/{appeal_id}/resolve"): Objects(
            {"hr_admin": (403, 200, 200)},
            "the target's appeal: HR, never their own",
        ),
        ("POST", "/v1/cycles/{cycle_id}/one-on-ones"): Objects(
            {"dept_head": (422, 403, 403), "manager": (201, 201, 403), "employee": (201, 403, 403)},
            "a 1:1 of the target with their manager: the manager, or the report (the head has no manager)",
        ),
        ("PATCH", "/v1/one-on-ones/{one_on_one_id}"): Objects(
            {"dept_head": (200, 404, 404), "manager": (200, 200, 404), "employee": (200, 404, 404)},
            "the target's 1:1: its manager and its report",
        ),
        ("POST", "/v1/one-on-ones/{one_on_one_id}/action-items"): Objects(
            {"dept_head": (201, 404, 404), "manager": (201, 201, 404), "employee": (201, 404, 404)},
            "the target's 1:1: its manager and its report",
        ),
        ("PATCH", "/v1/one-on-ones/{one_on_one_id}/action-items/{item_id}"): Objects(
            {"dept_head": (200, 404, 404), "manager": (200, 200, 404), "employee": (200, 404, 404)},
            "an action item of the target's 1:1",
        ),
        ("POST", "/v1/cycles/{cycle_id}/feedback"): Objects(
            {
                "hr_admin": (422, 201, 201),
                "dept_head": (422, 201, 201),
                "manager": (422, 201, 201),
                "employee": (422, 201, 201),
            },
            "feedback to the target: anyone, in any department, never to oneself",
        ),
        ("POST", "/v1/cycles/{cycle_id}/feedback-requests"): Objects(
            {
                "hr_admin": (422, 201, 201),
                "dept_head": (422, 201, 201),
                "manager": (422, 201, 201),
                "employee": (422, 201, 201),
            },
            "asking the target for feedback: anyone, in any department, never oneself",
        ),
        ("POST", "/v1/feedback-requests/{request_id}/answer"): Objects(
            {
                "hr_admin": (200, 403, 403),
                "dept_head": (200, 404, 404),
                "manager": (200, 404, 404),
                "employee": (200, 404, 404),
            },
            "a request asked of the target: only the target answers it",
        ),
        ("POST", "/v1/feedback-requests/{request_id}/decline"): Objects(
            {
                "hr_admin": (200, 403, 403),
                "dept_head": (200, 404, 404),
                "manager": (200, 404, 404),
                "employee": (200, 404, 404),
            },
            "a request asked of the target: only the target declines it",
        ),
        ("GET", "/v1/cycles/{cycle_id}/results/{employee_id}"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 200, 200),
            },
            "the target's released result",
        ),
        ("GET", "/v1/appeals/{appeal_id}"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 200, 200),
            },
            "the target's appeal",
        ),
    },
    "results": {
        ("PUT", "/v1/cycles/{cycle_id}/participants"): _SNAPSHOT,
        ("PUT", "/v1/cycles/{cycle_id}/policy/template"): _SETTINGS,
        ("PUT", "/v1/cycles/{cycle_id}/results"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/collaboration"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/goals"): _INPUT,
        ("PUT", "/v1/cycles/{cycle_id}/policy"): _SETTINGS,
        ("PUT", "/v1/cycles/{cycle_id}/pools/{department_id}"): NoObject(
            "a department's bonus pool: finance's budget (HR may set it too)"
        ),
        ("POST", "/v1/cycles/{cycle_id}/pools/{department_id}/approval"): NoObject(
            "finance's sign-off of a department's pool, finance's alone"
        ),
        ("PUT", "/v1/cycles/{cycle_id}/award-fund"): NoObject("the cycle's collaboration award fund (finance, HR)"),
        ("POST", "/v1/cycles/{cycle_id}/pools/{department_id}/allocations"): NoObject(
            "a department's pool allocation, HR's alone"
        ),
        ("POST", "/v1/cycles/{cycle_id}/promotions/nominate"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/development-plans/generate"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/publish"): _STEP,
        ("POST", "/v1/cycles/{cycle_id}/appeal-adjustments"): Objects(
            {"hr_admin": (403, 201, 201)},
            "an adjusted appeal of the target: never about oneself",
        ),
        ("POST", "/v1/cycles/{cycle_id}/development-plans"): Objects(
            {"hr_admin": (409, 409, 409), "manager": (403, 409, 403)},
            "a plan for the target: HR, or their manager (everyone here already has one)",
        ),
        ("PATCH", "/v1/development-plans/{plan_id}"): Objects(
            {"hr_admin": (200, 200, 200), "dept_head": (200, 403, 404), "manager": (403, 200, 404)},
            "the target's plan: HR, its owner (the head owns his own plan: he has no manager), the employee's manager",
        ),
        ("POST", "/v1/development-plans/{plan_id}/items"): Objects(
            {"hr_admin": (201, 201, 201), "dept_head": (201, 403, 404), "manager": (403, 201, 404)},
            "an item on the target's plan: HR, its owner, the employee's manager",
        ),
        ("PATCH", "/v1/development-plans/{plan_id}/items/{item_id}"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 403, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 403, 403),
            },
            "an item on the target's plan: its editors, and its owner (who may mark it done)",
        ),
        ("GET", "/v1/development-plans/{plan_id}"): Objects(
            {
                "hr_admin": (200, 200, 200),
                "dept_head": (200, 200, 404),
                "manager": (200, 200, 404),
                "employee": (200, 404, 404),
                "ops": (None, 200, 200),
            },
            "the target's plan",
        ),
    },
}
"""Per service: every write operation (and the reads of one person's object) with its object-level
rule. ``test_authz_matrix.py`` fails for a write operation of the OpenAPI documents missing here."""
