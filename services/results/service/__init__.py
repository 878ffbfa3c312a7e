"""Domain rules of the results service: pools and allocation, promotions, development plans,
collaboration awards and report, and publishing through the transactional outbox.

Functions are keyword-only and commit their own unit of work, so a change and its outbox event
always land in one transaction; a keyed write that loses a race is answered as a retry
(``records.commit_once``). The modules follow the sections of the stage: ``inputs`` (what the
workflow pushes, and the policy), ``pools``, ``promotions``, ``plans``, ``collaboration``,
``publishing``, ``appeals`` (adjusted appeals reaching pay, corrections after publication) and
``pending`` (the workflow's view); ``scope`` and ``records`` hold what they share.
"""

from __future__ import annotations

from services.results.service.appeals import apply_appeal
from services.results.service.award import announced_award, get_award_fund, set_award_fund
from services.results.service.collaboration import awards, collaboration_report
from services.results.service.inputs import (
    push_template_policy,
    put_collaboration,
    put_goals,
    put_results,
    set_policy,
)
from services.results.service.pending import pending_report
from services.results.service.plans import (
    add_plan_item,
    create_plan,
    generate_plans,
    get_plan,
    list_plans,
    update_plan,
    update_plan_item,
)
from services.results.service.pools import (
    allocate,
    approve_pool,
    current_allocation,
    find_allocation,
    get_allocation,
    list_bonuses,
    list_pools,
    request_fingerprint,
    set_pool,
)
from services.results.service.promotions import list_nominations, nominate_promotions
from services.results.service.publishing import find_publication, publish
from services.results.service.records import get_policy
from services.results.service.records import read_policy_version as policy_version
from services.results.service.scope import org_view

__all__ = [
    "add_plan_item",
    "allocate",
    "apply_appeal",
    "approve_pool",
    "announced_award",
    "awards",
    "get_award_fund",
    "set_award_fund",
    "collaboration_report",
    "create_plan",
    "current_allocation",
    "find_allocation",
    "find_publication",
    "generate_plans",
    "get_allocation",
    "get_plan",
    "get_policy",
    "list_bonuses",
    "list_nominations",
    "list_plans",
    "list_pools",
    "nominate_promotions",
    "org_view",
    "pending_report",
    "policy_version",
    "publish",
    "push_template_policy",
    "put_collaboration",
    "put_goals",
    "put_results",
    "request_fingerprint",
    "set_policy",
    "set_pool",
    "update_plan",
    "update_plan_item",
]
