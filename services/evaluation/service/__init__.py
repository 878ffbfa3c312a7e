"""Evaluation service layer: keyword-only functions over a session, with the rules on who may do what.

Every function commits its own unit of work (with its outbox events); routes call one of them and
commit nothing. Scoring maths lives in ``services.evaluation.scoring`` (pure) over the scoring
contract (``contracts.scoring``). The modules follow the stage: ``inputs`` (goals, actuals, the
configuration), ``collaboration`` (department links, ratings, the matrix), ``reviews``
(assignments, submissions, summaries), ``scores`` (computing and reading results),
``calibration`` (reports, adjustments, close, final results), ``what_if`` and ``pending``;
``records`` holds what they share.
"""

from __future__ import annotations

from services.evaluation.service.calibration import (
    adjust_rating,
    appeal_adjustment,
    close_calibration,
    deviation,
    distribution,
    final_results,
    list_adjustments,
)
from services.evaluation.service.collaboration import (
    collaboration_links,
    collaboration_matrix,
    declare_collaboration,
    rate_collaboration,
)
from services.evaluation.service.inputs import (
    config_versions,
    get_config,
    push_template_config,
    put_actuals,
    put_config,
    put_goal_keys,
    put_goals,
)
from services.evaluation.service.pending import pending_report
from services.evaluation.service.records import ANONYMOUS_RELATIONS, SERVICE
from services.evaluation.service.reviews import (
    generate_assignments,
    get_assignment,
    list_assignments,
    nominate_rater,
    review_summary,
    submit_review,
)
from services.evaluation.service.scores import (
    CycleInputs,
    EmployeeScore,
    compute_scores,
    goal_breakdown,
    list_results,
    read_result,
    score_cycle,
)
from services.evaluation.service.what_if import what_if

__all__ = [
    "ANONYMOUS_RELATIONS",
    "SERVICE",
    "CycleInputs",
    "EmployeeScore",
    "adjust_rating",
    "appeal_adjustment",
    "close_calibration",
    "collaboration_links",
    "collaboration_matrix",
    "compute_scores",
    "config_versions",
    "declare_collaboration",
    "deviation",
    "distribution",
    "final_results",
    "generate_assignments",
    "get_assignment",
    "get_config",
    "goal_breakdown",
    "list_adjustments",
    "list_assignments",
    "list_results",
    "nominate_rater",
    "pending_report",
    "push_template_config",
    "put_actuals",
    "put_config",
    "put_goal_keys",
    "put_goals",
    "rate_collaboration",
    "read_result",
    "review_summary",
    "score_cycle",
    "submit_review",
    "what_if",
]
