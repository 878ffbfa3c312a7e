"""Goal-setting service layer: keyword-only functions over a session, with the domain rules.

Scoping convention (see docs/services/goals.md):

* company and department KPIs are visible to every participant of the cycle (they are the
  context individual goals align to); individual goals follow ``OrgView`` scoping;
* an object the caller cannot see is reported as **404** (its existence is not revealed);
* an object the caller can see but may not change (or transition) is **403**;
* a rule about state (frozen cycle, wrong status, children still aligned) is **409**;
* bad input (values, alignment, weights that do not sum to 100) is **422** naming the field.

Every function here commits its own unit of work. The modules follow the stages of goal setting:
``scope`` (who sees what), ``cycle`` (settings and freeze), ``objectives``, ``validation`` and
``goals`` (KPIs and goals), ``weights``, ``approval``, ``bulk``, ``tree`` (progress) and ``exports``;
``records`` holds what their writes share.
"""

from __future__ import annotations

from services.goals.service.approval import transition_goal
from services.goals.service.bulk import bulk_assign
from services.goals.service.cycle import freeze_cycle, get_settings, put_settings
from services.goals.service.exports import approval_queue, goal_export, kpi_catalog, pending_report
from services.goals.service.goals import create_goal, delete_goal, get_goal, list_goals, update_goal
from services.goals.service.objectives import (
    create_objective,
    delete_objective,
    get_objective,
    list_objectives,
    update_objective,
)
from services.goals.service.records import SERVICE
from services.goals.service.scope import Scope, load_scope
from services.goals.service.tree import goal_tree, scorecard, store_progress
from services.goals.service.weights import weight_report

__all__ = [
    "SERVICE",
    "Scope",
    "approval_queue",
    "bulk_assign",
    "create_goal",
    "create_objective",
    "delete_goal",
    "delete_objective",
    "freeze_cycle",
    "get_goal",
    "get_objective",
    "get_settings",
    "goal_export",
    "goal_tree",
    "scorecard",
    "kpi_catalog",
    "list_goals",
    "list_objectives",
    "load_scope",
    "pending_report",
    "put_settings",
    "store_progress",
    "transition_goal",
    "update_goal",
    "update_objective",
    "weight_report",
]
