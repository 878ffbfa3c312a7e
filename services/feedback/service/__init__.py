"""Domain rules of the feedback service: release, acknowledgement, appeals, 1:1s, feedback and kudos.

Functions are keyword-only, take the session and the caller's ``now`` (a clock the app injects,
so deadline tests never sleep) and commit their own unit of work, so each change and its outbox
event land in one transaction. The modules follow the sections of the stage: ``release`` (cycle
state and results), ``appeals``, ``one_on_ones``, ``notes`` (continuous feedback and kudos),
``requests`` (feedback asked of a colleague) and
``pending`` (the workflow's view), ``settings`` (appeal window and HR deadline, template or HR);
``scope`` and ``records`` hold what they share.
"""

from __future__ import annotations

from services.feedback.service.appeals import (
    appeal_state,
    get_appeal,
    list_appeals,
    overdue_appeals,
    resolve_appeal,
    start_review,
    submit_appeal,
)
from services.feedback.service.notes import give_feedback, list_feedback
from services.feedback.service.one_on_ones import (
    add_action_item,
    create_one_on_one,
    get_one_on_one,
    list_one_on_ones,
    update_action_item,
    update_one_on_one,
)
from services.feedback.service.pending import pending_report
from services.feedback.service.records import OPEN_APPEAL_STATUSES
from services.feedback.service.release import (
    acknowledge_result,
    appeal_deadline,
    get_cycle,
    get_result,
    list_results,
    push_results,
    release_results,
    withdraw_results,
)
from services.feedback.service.requests import answer_request, decline_request, list_requests, request_feedback
from services.feedback.service.scope import org_view
from services.feedback.service.settings import configure_cycle, push_template_settings, settings_version

__all__ = [
    "OPEN_APPEAL_STATUSES",
    "acknowledge_result",
    "add_action_item",
    "answer_request",
    "appeal_deadline",
    "appeal_state",
    "configure_cycle",
    "create_one_on_one",
    "decline_request",
    "get_appeal",
    "get_cycle",
    "get_one_on_one",
    "get_result",
    "give_feedback",
    "list_appeals",
    "list_feedback",
    "list_one_on_ones",
    "list_requests",
    "list_results",
    "org_view",
    "overdue_appeals",
    "pending_report",
    "push_results",
    "push_template_settings",
    "release_results",
    "request_feedback",
    "resolve_appeal",
    "settings_version",
    "start_review",
    "submit_appeal",
    "update_action_item",
    "update_one_on_one",
    "withdraw_results",
]
