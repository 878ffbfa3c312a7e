"""The stage handoffs of a review cycle: one activity per handoff, one model in and one out.

``ReviewCycleWorkflow`` calls them in this order (``workflows/review_cycle.py`` reads top to bottom):

================================  =======================================================================
handoff (activity)                what moves
================================  =======================================================================
``open_goal_setting``             the cycle's org snapshot to every stage service; the period and the
                                  approval chains to goals; the template's settings to evaluation,
                                  feedback and results (each applied only while HR has not changed it)
``freeze_goals``                  goals frozen; the KPI catalog read from goals
``hand_catalog_to_tracking``      that catalog (and the template's late-data policy) to tracking
``hand_progress_to_evaluation``   tracking's progress to goals; goals and actuals to evaluation; the
                                  template's scoring config to evaluation unless HR changed it
``open_evaluation``               review forms assigned
``close_evaluation``              scores computed and calibration closed (or waited for)
``hand_results_to_feedback``      the calibrated results (and feedback's template settings) to feedback
``hand_results_to_results``       the calibrated results (and the results policy) to the results service
``release_results``               results released to employees
``open_result_application``       the collaboration matrix, shared goals and the final results with
                                  appeal adjustments to results
``publish_results``               results published (``ResultsPublished`` through the outbox); with the
                                  ``wait_for_appeals`` policy, blocked until the appeal window closes and
                                  no appeal is open; later adjustments emit ``ResultsCorrected``
``record_closed``                 the cycles service records the cycle as closed
``withdraw_results``              compensation when a cycle is cancelled
================================  =======================================================================

The models carry what the workflow needs to decide and to show (counts, versions, why a handoff is
blocked), not the data itself: catalogs, progress and results stay service to service, because a
100,000-person result set would not fit in a workflow history (2 MB per payload).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = [
    "HANDOFF_RESULTS",
    "HANDOFF_STAGE",
    "Blocked",
    "CatalogInTracking",
    "CycleClosed",
    "CycleRef",
    "EvaluationInputs",
    "FinalResults",
    "GoalSettingOpened",
    "Handoff",
    "Incident",
    "IncidentResolution",
    "KpiCatalogFrozen",
    "Published",
    "Released",
    "ResultApplicationOpened",
    "ResultsDelivered",
    "ReviewsAssigned",
    "Withdrawn",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CycleRef(_Model):
    """Which cycle a handoff is for, and how it runs."""

    cycle_id: Id
    department_ids: list[Id] = Field(default_factory=list)
    day_seconds: float = Field(default=86_400, gt=0, description="Seconds per template day (compressed cycles).")
    forced: bool = Field(default=False, description="HR forced the stage: its exit preconditions are waived.")


class Blocked(_Model):
    """Why a handoff cannot happen yet, and who can unblock it."""

    reason: str
    service: str
    unblock_by: str = Field(description="The role that can unblock it, e.g. hr_admin.")
    action: str = Field(default="", description="What that person does, e.g. close calibration.")


class Handoff(_Model):
    """What every handoff answers: done, or not ready yet and why."""

    ready: bool = True
    blocked: Blocked | None = None
    detail: str = ""


class GoalSettingOpened(Handoff):
    period_start: str | None = None
    period_end: str | None = None


class KpiCatalogFrozen(Handoff):
    kpis: int = 0
    """KPIs in the frozen catalog (read again from goals by the next handoff)."""


class CatalogInTracking(Handoff):
    kpis: int = 0
    late_data_policy: str = ""
    grace_hours: float = 0.0


class EvaluationInputs(Handoff):
    goals: int = 0
    actuals: int = 0
    config_source: str = Field(default="", description="template: pushed now; hr: HR's edit kept.")


class ReviewsAssigned(Handoff):
    assigned: int = 0


class FinalResults(Handoff):
    results: int = 0


class ResultsDelivered(Handoff):
    service: str = ""
    results: int = 0


class Released(Handoff):
    pass


class ResultApplicationOpened(Handoff):
    collaboration_cells: int = 0
    goals: int = 0


class Published(Handoff):
    pass


class CycleClosed(Handoff):
    pass


class Withdrawn(Handoff):
    pass


class Incident(_Model):
    """A handoff the services refused for good (a 4xx other than 409): the cycle waits for an operator."""

    stage: str
    handoff: str
    error: str
    opened_at: str


class IncidentResolution(_Model):
    """Update: what an operator decided about the open incident."""

    action: str = Field(pattern="^(retry|skip)$", description="retry the handoff, or skip it and go on")
    reason: str = Field(min_length=1, max_length=500)


HANDOFF_RESULTS: dict[str, type[Handoff]] = {
    "open_goal_setting": GoalSettingOpened,
    "freeze_goals": KpiCatalogFrozen,
    "hand_catalog_to_tracking": CatalogInTracking,
    "hand_progress_to_evaluation": EvaluationInputs,
    "open_evaluation": ReviewsAssigned,
    "close_evaluation": FinalResults,
    "hand_results_to_feedback": ResultsDelivered,
    "hand_results_to_results": ResultsDelivered,
    "release_results": Released,
    "open_result_application": ResultApplicationOpened,
    "publish_results": Published,
    "record_closed": CycleClosed,
    "withdraw_results": Withdrawn,
}
"""Every handoff activity and what it answers, in the order a whole cycle calls them."""

HANDOFF_STAGE: dict[str, tuple[str, str]] = {
    "open_goal_setting": ("goal_setting", "enter"),
    "freeze_goals": ("goal_setting", "exit"),
    "hand_catalog_to_tracking": ("goal_setting", "exit"),
    "hand_progress_to_evaluation": ("tracking", "exit"),
    "open_evaluation": ("evaluation", "enter"),
    "close_evaluation": ("evaluation", "exit"),
    "hand_results_to_feedback": ("evaluation", "exit"),
    "hand_results_to_results": ("evaluation", "exit"),
    "release_results": ("feedback", "enter"),
    "open_result_application": ("result_application", "enter"),
    "publish_results": ("result_application", "exit"),
    "record_closed": ("closed", "enter"),
    "withdraw_results": ("any", "compensate"),
}
"""Which stage each handoff opens or closes (tracking opens, and feedback closes, with no handoff)."""
