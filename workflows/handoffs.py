"""The review cycle's stage handoffs as activities: one per handoff, a ``contracts`` model in and out.

Each moves data service to service through the one :class:`ServiceClient` and answers a
:class:`contracts.handoffs.Handoff` summary; ``contracts/handoffs.py`` lists them in the order the
workflow calls them. A 409 from a service means "not ready yet": the handoff answers
``ready=False`` with who can unblock it, and the workflow waits. Any other 4xx is raised
non-retryable (the workflow opens an incident); 5xx and network errors are retried.
Side effects carry idempotency keys built from business identity, so a retried handoff never
doubles a release or a publication.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.handoffs import (
    Blocked,
    CatalogInTracking,
    CycleClosed,
    CycleRef,
    EvaluationInputs,
    FinalResults,
    GoalSettingOpened,
    Handoff,
    KpiCatalogFrozen,
    Published,
    Released,
    ResultApplicationOpened,
    ResultsDelivered,
    ReviewsAssigned,
    Withdrawn,
)
from contracts.templates import CycleTemplateSpec
from services.common.client import NotReady, Refused, ServiceClient, ServiceName, Unavailable
from services.common.telemetry import STAGE_TRANSITIONS, trace_headers

__all__ = ["TRACKING_GRACE_HOURS", "HandoffActivities"]

TRACKING_GRACE_HOURS = 1.0
"""Grace after a KPI's expected update frequency before it counts as stale."""


class HandoffActivities:
    """The handoffs, bound to the service client (built by the worker)."""

    def __init__(self, *, client: ServiceClient, scoring_config: Callable[[CycleTemplateSpec], Any]) -> None:
        self.client = client
        self.scoring_config = scoring_config

    async def call(self, method: str, service: ServiceName, path: str, **options: Any) -> Any:
        """One call (``options`` as :meth:`ServiceClient.call`); a refusal is non-retryable, an outage
        is retried, 409 (``NotReady``) is left to the handoff."""
        activity.heartbeat(f"{method} {service}{path}")
        try:
            return await self.client.call(method, service, path, headers=trace_headers({}), **options)
        except Refused as exc:
            raise ApplicationError(str(exc), type="BadRequest", non_retryable=True) from exc
        except Unavailable as exc:
            raise ApplicationError(str(exc)) from exc  # retryable

    async def template(self, cycle_id: str) -> CycleTemplateSpec:
        cycle = await self.call("GET", "cycles", f"/v1/cycles/{cycle_id}")
        return CycleTemplateSpec.model_validate(cycle["template"])

    # -- goal setting ---------------------------------------------------------------------------
    @activity.defn(name="open_goal_setting")
    async def open_goal_setting(self, ref: CycleRef) -> GoalSettingOpened:
        await self.call("POST", "cycles", f"/v1/cycles/{ref.cycle_id}/distribute")
        cycle = await self.call("GET", "cycles", f"/v1/cycles/{ref.cycle_id}")
        period = {"period_start": cycle["period_start"], "period_end": cycle["period_end"]}
        await self.call("PUT", "goals", f"/v1/cycles/{ref.cycle_id}/settings", json=period)
        return _done("goal_setting", "enter", GoalSettingOpened(**period, detail="org snapshot distributed"))

    @activity.defn(name="freeze_goals")
    async def freeze_goals(self, ref: CycleRef) -> KpiCatalogFrozen:
        await self.call("POST", "goals", f"/v1/cycles/{ref.cycle_id}/freeze")
        catalog = await self.call("GET", "goals", f"/v1/cycles/{ref.cycle_id}/kpi-catalog")
        kpis = len(catalog.get("kpis", []))
        return KpiCatalogFrozen(kpis=kpis, detail=f"goals frozen; {kpis} KPI(s) in the catalog")

    @activity.defn(name="hand_catalog_to_tracking")
    async def hand_catalog_to_tracking(self, ref: CycleRef) -> CatalogInTracking:
        catalog = await self.call("GET", "goals", f"/v1/cycles/{ref.cycle_id}/kpi-catalog")
        spec = await self.template(ref.cycle_id)
        # One hour of grace after each KPI's update frequency, in (possibly compressed) cycle time.
        grace = TRACKING_GRACE_HOURS * ref.day_seconds / 86_400
        params = {"late_data_policy": spec.late_data_policy.value, "grace_hours": f"{grace:.6f}"}
        await self.call("PUT", "tracking", f"/v1/cycles/{ref.cycle_id}/kpis", json=catalog, params=params)
        kpis = len(catalog.get("kpis", []))
        return _done(
            "goal_setting",
            "exit",
            CatalogInTracking(
                kpis=kpis,
                late_data_policy=spec.late_data_policy.value,
                grace_hours=grace,
                detail=f"{kpis} KPI(s) handed to tracking",
            ),
        )

    # -- tracking -------------------------------------------------------------------------------
    @activity.defn(name="hand_progress_to_evaluation")
    async def hand_progress_to_evaluation(self, ref: CycleRef) -> EvaluationInputs:
        progress = await self.call("GET", "tracking", f"/v1/cycles/{ref.cycle_id}/progress-export")
        await self.call("PUT", "goals", f"/v1/cycles/{ref.cycle_id}/progress", json=progress)
        goals = await self.call("GET", "goals", f"/v1/cycles/{ref.cycle_id}/goal-export")
        await self.call("PUT", "evaluation", f"/v1/cycles/{ref.cycle_id}/goals", json=goals)
        await self.call("PUT", "evaluation", f"/v1/cycles/{ref.cycle_id}/actuals", json=progress)
        config = self.scoring_config(await self.template(ref.cycle_id))
        await self.call("PUT", "evaluation", f"/v1/cycles/{ref.cycle_id}/config", json=config)
        counts = (len(goals.get("goals", [])), len(progress.get("actuals", [])))
        return _done(
            "tracking",
            "exit",
            EvaluationInputs(
                goals=counts[0],
                actuals=counts[1],
                config_source="template",
                detail=f"{counts[0]} goal(s) and {counts[1]} actual(s) to evaluation",
            ),
        )

    # -- evaluation -----------------------------------------------------------------------------
    @activity.defn(name="open_evaluation")
    async def open_evaluation(self, ref: CycleRef) -> ReviewsAssigned:
        generated = await self.call("POST", "evaluation", f"/v1/cycles/{ref.cycle_id}/assignments/generate")
        assigned = int(generated.get("created", 0)) if isinstance(generated, dict) else 0
        return _done("evaluation", "enter", ReviewsAssigned(assigned=assigned, detail=f"review forms: {generated}"))

    @activity.defn(name="close_evaluation")
    async def close_evaluation(self, ref: CycleRef) -> FinalResults:
        if ref.forced:
            # HR forced the stage: close calibration now. 409 means it is already closed (a retry of a
            # forced exit that had half succeeded), which is what we want.
            with contextlib.suppress(NotReady):
                await self.call("POST", "evaluation", f"/v1/cycles/{ref.cycle_id}/calibration/close")
        # 409 means calibration already closed: the scores are final.
        with contextlib.suppress(NotReady):
            await self.call("POST", "evaluation", f"/v1/cycles/{ref.cycle_id}/scores/compute")
        try:
            results = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/final-results")
        except NotReady as exc:
            return FinalResults(
                ready=False,
                blocked=Blocked(
                    reason=exc.detail or str(exc),
                    service="evaluation",
                    unblock_by="hr_admin",
                    action="close calibration (or force the stage)",
                ),
                detail=str(exc),
            )
        count = len(results.get("results", []))
        return FinalResults(results=count, detail=f"{count} calibrated result(s)")

    @activity.defn(name="hand_results_to_feedback")
    async def hand_results_to_feedback(self, ref: CycleRef) -> ResultsDelivered:
        results = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/final-results")
        await self.call(
            "PUT", "feedback", f"/v1/cycles/{ref.cycle_id}/results", json=results, params={"calibration_closed": "true"}
        )
        count = len(results.get("results", []))
        return ResultsDelivered(service="feedback", results=count, detail=f"{count} result(s) to feedback")

    @activity.defn(name="hand_results_to_results")
    async def hand_results_to_results(self, ref: CycleRef) -> ResultsDelivered:
        results = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/final-results")
        await self.call("PUT", "results", f"/v1/cycles/{ref.cycle_id}/results", json=results)
        count = len(results.get("results", []))
        return _done(
            "evaluation", "exit", ResultsDelivered(service="results", results=count, detail=f"{count} to results")
        )

    # -- feedback -------------------------------------------------------------------------------
    @activity.defn(name="release_results")
    async def release_results(self, ref: CycleRef) -> Released:
        await self.call(
            "POST", "feedback", f"/v1/cycles/{ref.cycle_id}/release", idempotency_key=f"{ref.cycle_id}/release"
        )
        return _done("feedback", "enter", Released(detail="results released to employees"))

    # -- result application ---------------------------------------------------------------------
    @activity.defn(name="open_result_application")
    async def open_result_application(self, ref: CycleRef) -> ResultApplicationOpened:
        matrix = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/collaboration-matrix")
        await self.call("PUT", "results", f"/v1/cycles/{ref.cycle_id}/collaboration", json=matrix)
        goals = await self.call("GET", "goals", f"/v1/cycles/{ref.cycle_id}/goal-export")
        await self.call("PUT", "results", f"/v1/cycles/{ref.cycle_id}/goals", json=goals)
        opened = ResultApplicationOpened(
            collaboration_cells=len(matrix.get("cells", [])),
            goals=len(goals.get("goals", [])),
            detail="collaboration matrix and shared goals handed to results",
        )
        return _done("result_application", "enter", opened)

    @activity.defn(name="publish_results")
    async def publish_results(self, ref: CycleRef) -> Published:
        try:
            await self.call(
                "POST", "results", f"/v1/cycles/{ref.cycle_id}/publish", idempotency_key=f"{ref.cycle_id}/publish"
            )
        except NotReady as exc:
            blocked = Blocked(
                reason=exc.detail or str(exc),
                service="results",
                unblock_by="hr_admin",
                action="allocate every bonus pool (or force the stage)",
            )
            return Published(ready=False, blocked=blocked, detail=str(exc))
        return _done("result_application", "exit", Published(detail="results published"))

    @activity.defn(name="record_closed")
    async def record_closed(self, ref: CycleRef) -> CycleClosed:
        await self.call("POST", "cycles", f"/v1/cycles/{ref.cycle_id}/closed")
        return _done("closed", "enter", CycleClosed(detail="cycle recorded as closed"))

    @activity.defn(name="withdraw_results")
    async def withdraw_results(self, ref: CycleRef) -> Withdrawn:
        try:
            await self.call("POST", "feedback", f"/v1/cycles/{ref.cycle_id}/withdraw")
        except NotReady as exc:
            return Withdrawn(detail=f"nothing to withdraw ({exc})")
        return Withdrawn(detail="unreleased results withdrawn")

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.open_goal_setting,
            self.freeze_goals,
            self.hand_catalog_to_tracking,
            self.hand_progress_to_evaluation,
            self.open_evaluation,
            self.close_evaluation,
            self.hand_results_to_feedback,
            self.hand_results_to_results,
            self.release_results,
            self.open_result_application,
            self.publish_results,
            self.record_closed,
            self.withdraw_results,
        ]


H = TypeVar("H", bound=Handoff)


def _done(stage: str, action: str, result: H) -> H:
    """Count a stage transition (the last handoff of a stage's enter or exit) and pass the result on."""
    STAGE_TRANSITIONS.labels(stage=stage, action=action).inc()
    return result
