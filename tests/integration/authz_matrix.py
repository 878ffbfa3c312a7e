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

__all__ = ["MATRIX", "PUBLIC", "ROLES", "SERVICES", "SIGN_IN", "Rule"]

ROLES = ("hr_admin", "dept_head", "manager", "employee", "ops", "department_system")
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

_public = rule(anonymous=PUBLIC)
_NOT_OWN_RESULT = "the persona's own result is not the one in the path: only the employee acknowledges it"
_PLAN_EDITORS = "only HR, the plan's owner (the manager) and the employee's manager edit a plan; not the head"
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
        ("GET", "/v1/me"): rule(*EVERYONE),
        ("POST", "/v1/org/import"): rule(*HR),
        ("GET", "/v1/org/departments"): rule(*READERS),
        ("GET", "/v1/org/departments/{department_id}"): rule(*READERS),
        ("GET", "/v1/org/employees"): rule(*READERS),
        ("GET", "/v1/org/employees/{employee_id}"): rule(*READERS),
        ("POST", "/v1/templates"): rule(*HR),
        ("GET", "/v1/templates"): rule(*READERS),
        ("GET", "/v1/templates/{template_id}"): rule(*READERS),
        ("PUT", "/v1/templates/{template_id}"): rule(*HR),
        ("POST", "/v1/cycles"): rule(*HR),
        ("GET", "/v1/cycles"): rule(*READERS),
        ("GET", "/v1/cycles/{cycle_id}"): rule(*READERS),
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
        ("PUT", "/v1/cycles/{cycle_id}/progress"): rule(*HR),  # issue 14: ops no longer writes actuals
        ("GET", "/v1/cycles/{cycle_id}/kpi-catalog"): rule(*MACHINE),
        ("GET", "/v1/cycles/{cycle_id}/goal-export"): rule(*MACHINE),
        ("GET", "/v1/cycles/{cycle_id}/pending"): rule(*MACHINE),
    },
    "tracking": {
        **_COMMON,
        **_PARTICIPANTS,
        ("PUT", "/v1/cycles/{cycle_id}/kpis"): rule(*HR),
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
        ("GET", "/v1/cycles/{cycle_id}/results/{employee_id}"): rule(*READERS),
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
        ("GET", "/v1/cycles/{cycle_id}/policy"): rule(*READERS),
        ("PUT", "/v1/cycles/{cycle_id}/pools/{department_id}"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/pools"): rule("hr_admin", "dept_head", "ops"),
        ("POST", "/v1/cycles/{cycle_id}/pools/{department_id}/allocations"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/pools/{department_id}/allocation"): rule("hr_admin", "dept_head", "ops"),
        ("GET", "/v1/cycles/{cycle_id}/bonuses"): rule(*READERS),
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
        ("GET", "/v1/cycles/{cycle_id}/collaboration-report"): rule("hr_admin", "dept_head", "manager", "ops"),
        ("GET", "/v1/cycles/{cycle_id}/collaboration-report.csv"): rule("hr_admin", "dept_head", "manager", "ops"),
        ("GET", "/v1/cycles/{cycle_id}/collaboration-report.html"): rule("hr_admin", "dept_head", "manager", "ops"),
        ("POST", "/v1/cycles/{cycle_id}/publish"): rule(*HR),
        ("GET", "/v1/cycles/{cycle_id}/pending"): rule(*MACHINE),
    },
}
