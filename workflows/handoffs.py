"""The review cycle's stage handoffs as activities: one per handoff, a ``contracts`` model in and out.

Each moves data service to service through the one :class:`ServiceClient` and answers a
:class:`contracts.handoffs.Handoff` summary; ``contracts/handoffs.py`` lists them in the order the
workflow calls them. A 409 from a service means "not ready yet": the handoff answers
``ready=False`` with who can unblock it, and the workflow waits. Any other 4xx is raised
non-retryable (the workflow opens an incident); 5xx and network errors are retried.
Side effects carry idempotency keys built from business identity, so a retried handoff never
doubles a release or a publication.

The cycle's template drives the services: its settings are pushed to evaluation, feedback and
results when the cycle opens and again at the handoff into each service's stage, through each
service's ``.../template`` endpoint, which applies them only while HR has not changed them there
(HR's version is kept and the answer says so: ``SettingsPushed``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.cycle import Stage
from contracts.evaluation import GoalKey, GoalKeys
from contracts.feedback import AppealsState
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
from contracts.results import Publication, ResultsPolicy, results_policy
from contracts.templates import CycleTemplateSpec, SettingsPushed
from contracts.workflow_io import NotificationRequest
from services.common.client import NotReady, Refused, ServiceClient, ServiceName, Unavailable
from services.common.telemetry import STAGE_TRANSITIONS, trace_headers

__all__ = ["TRACKING_GRACE_HOURS", "HandoffActivities"]

TRACKING_GRACE_HOURS = 1.0
"""Grace after a KPI's expected update frequency before it counts as stale."""
GOALS_PAGE = 500
"""Goals read per call when collecting each goal's template key and metric."""


class HandoffActivities:
    """The handoffs, bound to the service client (built by the worker)."""

    def __init__(
        self,
        *,
        client: ServiceClient,
        scoring_config: Callable[[CycleTemplateSpec], Any],
        console_url: str | None = None,
    ) -> None:
        self.client = client
        self.scoring_config = scoring_config
        self.console_url = console_url.rstrip("/") if console_url else None
        """Where people read the pages the handoffs' notices link to (the console)."""

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

    async def push_settings(self, cycle_id: str, spec: CycleTemplateSpec, service: ServiceName) -> SettingsPushed:
        """The template's settings for ``service``, applied there unless HR has changed them."""
        body: Any
        if service == "evaluation":
            body, path = self.scoring_config(spec), f"/v1/cycles/{cycle_id}/config/template"
        elif service == "feedback":
            body, path = spec.feedback, f"/v1/cycles/{cycle_id}/config/template"
        else:
            body, path = results_policy(spec), f"/v1/cycles/{cycle_id}/policy/template"
        return SettingsPushed.model_validate(await self.call("PUT", service, path, json=body))

    async def goal_keys(self, cycle_id: str) -> GoalKeys:
        """Each approved goal's KPI template key and metric, read from goals page by page."""
        keys: list[GoalKey] = []
        while True:
            params = {"status": "approved", "limit": str(GOALS_PAGE), "offset": str(len(keys))}
            page = await self.call("GET", "goals", f"/v1/cycles/{cycle_id}/goals", params=params)
            keys += [
                GoalKey(goal_id=g["goal_id"], template_key=g.get("template_key"), metric=g.get("metric"))
                for g in page["items"]
            ]
            if not page["items"] or len(keys) >= int(page["total"]):
                return GoalKeys(cycle_id=cycle_id, goals=keys)

    # -- goal setting ---------------------------------------------------------------------------
    @activity.defn(name="open_goal_setting")
    async def open_goal_setting(self, ref: CycleRef) -> GoalSettingOpened:
        await self.call("POST", "cycles", f"/v1/cycles/{ref.cycle_id}/distribute")
        cycle = await self.call("GET", "cycles", f"/v1/cycles/{ref.cycle_id}")
        period = {"period_start": cycle["period_start"], "period_end": cycle["period_end"]}
        spec = CycleTemplateSpec.model_validate(cycle["template"])
        goal_settings: dict[str, Any] = dict(period)
        if spec.approval_chains is not None:
            goal_settings["approval_chains"] = spec.approval_chains.model_dump(mode="json")
        await self.call("PUT", "goals", f"/v1/cycles/{ref.cycle_id}/settings", json=goal_settings)
        services: tuple[ServiceName, ...] = ("evaluation", "feedback", "results")
        settings = ", ".join([await self._push_early(ref.cycle_id, spec, service) for service in services])
        detail = f"org snapshot distributed; template settings: {settings}"
        return _done("goal_setting", "enter", GoalSettingOpened(**period, detail=detail))

    async def _push_early(self, cycle_id: str, spec: CycleTemplateSpec, service: ServiceName) -> str:
        """Settings pushed when the cycle opens, so they show (and HR can change them) from the start. A
        service that is down does not hold goal setting up: the push into its own stage is the one it needs."""
        try:
            pushed = await self.push_settings(cycle_id, spec, service)
        except NotReady as exc:
            return f"{service} not ready ({exc.detail}), pushed again at its stage"
        except ApplicationError as exc:
            if exc.non_retryable:
                raise
            return f"{service} unreachable, pushed again at its stage"
        return f"{service} v{pushed.version} ({pushed.source.value})"

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
        keys = await self.goal_keys(ref.cycle_id)
        await self.call("PUT", "evaluation", f"/v1/cycles/{ref.cycle_id}/goal-keys", json=keys)
        # The template's configuration only while HR has not changed it (then HR's version stays).
        pushed = await self.push_settings(ref.cycle_id, await self.template(ref.cycle_id), "evaluation")
        counts = (len(goals.get("goals", [])), len(progress.get("actuals", [])))
        config = f"config v{pushed.version} from {pushed.source.value}" + ("" if pushed.applied else " (HR's, kept)")
        return _done(
            "tracking",
            "exit",
            EvaluationInputs(
                goals=counts[0],
                actuals=counts[1],
                config_source=pushed.source.value,
                detail=f"{counts[0]} goal(s) and {counts[1]} actual(s) to evaluation; {config}",
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
        await self.push_settings(ref.cycle_id, await self.template(ref.cycle_id), "feedback")
        results = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/final-results")
        await self.call(
            "PUT", "feedback", f"/v1/cycles/{ref.cycle_id}/results", json=results, params={"calibration_closed": "true"}
        )
        count = len(results.get("results", []))
        return ResultsDelivered(service="feedback", results=count, detail=f"{count} result(s) to feedback")

    @activity.defn(name="hand_results_to_results")
    async def hand_results_to_results(self, ref: CycleRef) -> ResultsDelivered:
        await self.push_settings(ref.cycle_id, await self.template(ref.cycle_id), "results")
        results = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/final-results")
        await self.call("PUT", "results", f"/v1/cycles/{ref.cycle_id}/results", json=results)
        sent = await self._send_collaboration_report(ref)
        count = len(results.get("results", []))
        detail = f"{count} to results; collaboration report sent to {sent} department head(s)"
        return _done("evaluation", "exit", ResultsDelivered(service="results", results=count, detail=detail))

    async def _send_collaboration_report(self, ref: CycleRef) -> int:
        """When evaluation ends, the cross-department report goes to every department head, unasked: the
        matrix to results (which writes the report), then one notice per department (idempotent per key)."""
        matrix = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/collaboration-matrix")
        await self.call("PUT", "results", f"/v1/cycles/{ref.cycle_id}/collaboration", json=matrix)
        if not matrix.get("cells"):
            return 0  # nobody rated a collaboration: no report to send
        link = self._collaboration_link(ref)
        message = f"The cross-department collaboration report of this cycle is ready: {link}"
        await self._tell_heads(ref, Stage.EVALUATION, "collaboration_report", message)
        return len(ref.department_ids)

    def _collaboration_link(self, ref: CycleRef) -> str:
        where = f"/cycles/{ref.cycle_id}/collaboration"
        return f"{self.console_url}{where}" if self.console_url else f"the console's {where}"

    async def _tell_heads(self, ref: CycleRef, stage: Stage, kind: str, message: str) -> None:
        """One notice to every department head of the cycle, idempotent per department, stage and kind."""
        for department_id in ref.department_ids:
            notice = NotificationRequest(
                idempotency_key=f"{ref.cycle_id}/{department_id}/{stage.value}/{kind.replace('_', '-')}",
                cycle_id=ref.cycle_id,
                department_id=department_id,
                stage=stage,
                kind=kind,
                recipients=["department_head"],
                message=message,
            )
            await self.call("POST", "cycles", "/v1/notifications", json=notice, idempotency_key=notice.idempotency_key)

    # -- feedback -------------------------------------------------------------------------------
    @activity.defn(name="release_results")
    async def release_results(self, ref: CycleRef) -> Released:
        await self.call(
            "POST",
            "feedback",
            f"/v1/cycles/{ref.cycle_id}/release",
            params={"day_seconds": ref.day_seconds},  # a compressed cycle's appeal window is in its own days
            idempotency_key=f"{ref.cycle_id}/release",
        )
        return _done("feedback", "enter", Released(detail="results released to employees"))

    # -- result application ---------------------------------------------------------------------
    @activity.defn(name="open_result_application")
    async def open_result_application(self, ref: CycleRef) -> ResultApplicationOpened:
        # The final results, with the appeals resolved during feedback: pay, promotions and plans use them.
        results = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/final-results")
        await self.call("PUT", "results", f"/v1/cycles/{ref.cycle_id}/results", json=results)
        matrix = await self.call("GET", "evaluation", f"/v1/cycles/{ref.cycle_id}/collaboration-matrix")
        await self.call("PUT", "results", f"/v1/cycles/{ref.cycle_id}/collaboration", json=matrix)
        goals = await self.call("GET", "goals", f"/v1/cycles/{ref.cycle_id}/goal-export")
        await self.call("PUT", "results", f"/v1/cycles/{ref.cycle_id}/goals", json=goals)
        opened = ResultApplicationOpened(
            collaboration_cells=len(matrix.get("cells", [])),
            goals=len(goals.get("goals", [])),
            detail=f"{len(results.get('results', []))} final result(s) (appeals applied), the collaboration "
            "matrix and shared goals handed to results",
        )
        return _done("result_application", "enter", opened)

    @activity.defn(name="publish_results")
    async def publish_results(self, ref: CycleRef) -> Published:
        policy = ResultsPolicy.model_validate(await self.call("GET", "results", f"/v1/cycles/{ref.cycle_id}/policy"))
        if policy.publication == Publication.WAIT_FOR_APPEALS and not ref.forced:
            state = AppealsState.model_validate(
                await self.call("GET", "feedback", f"/v1/cycles/{ref.cycle_id}/appeal-state")
            )
            blocked = _appeals_block(state)
            if blocked is not None:
                return Published(ready=False, blocked=blocked, detail=blocked.reason)
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
        announced = await self._announce_award(ref)
        return _done("result_application", "exit", Published(detail=f"results published{announced}"))

    async def _announce_award(self, ref: CycleRef) -> str:
        """Publication recorded the collaboration award: tell every department head who won (idempotent
        per key, so a retried handoff sends nothing twice). Returns a note for the handoff's detail."""
        try:
            awards = await self.call("GET", "results", f"/v1/cycles/{ref.cycle_id}/collaboration-awards")
        except (NotReady, Refused):  # no collaboration matrix: nobody rated a collaboration, no award
            return ""
        record = awards.get("announced") or {}
        if not record.get("winner_department_id"):
            return ""
        money = (
            f", with a fund of {record['fund_cents'] / 100:,.2f} {record['currency']}" if record["fund_cents"] else ""
        )
        message = (
            f"Best collaboration team of this cycle: {record['winner_name']} "
            f"(award score {record['score']:.2f}){money}. {self._collaboration_link(ref)}"
        )
        await self._tell_heads(ref, Stage.RESULT_APPLICATION, "collaboration_award", message)
        return f"; collaboration award to {record['winner_department_id']} announced"

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


def _appeals_block(state: AppealsState) -> Blocked | None:
    """Why results wait under ``wait_for_appeals``: appeals HR has not resolved, or a window still open."""
    if state.open_count:
        listed = ", ".join(
            f"#{a.appeal_id} ({a.employee_id}, HR due {a.hr_due_at:%Y-%m-%d})" for a in state.open_appeals[:10]
        )
        more = f" and {state.open_count - 10} more" if state.open_count > 10 else ""
        return Blocked(
            reason=f"{state.open_count} appeal(s) still open: {listed}{more}; the policy waits for appeals",
            service="feedback",
            unblock_by=state.resolved_by,
            action="resolve the open appeals (POST /v1/appeals/{id}/resolve), or force the stage",
        )
    if state.window_open and state.window_closes_at is not None:
        return Blocked(
            reason=f"the appeal window is open until {state.window_closes_at.isoformat()}; the policy waits for it",
            service="feedback",
            unblock_by=state.resolved_by,
            action="wait for the window to close, or force the stage",
        )
    return None


def _done(stage: str, action: str, result: H) -> H:
    """Count a stage transition (the last handoff of a stage's enter or exit) and pass the result on."""
    STAGE_TRANSITIONS.labels(stage=stage, action=action).inc()
    return result
