"""Activities of the review cycle: every side effect, over HTTP to the stage services.

Each side effect carries an idempotency key built from business identity
(cycle, department, stage, step), so a retried or replayed activity never
doubles a notification, an allocation or a publication. 4xx answers are
classified non-retryable (``BadRequest``) except 409 "not ready yet", which the
workflow handles by waiting; 5xx and connection errors are retried.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.cycle import PendingReport, Stage
from contracts.evaluation import BandGuideline, Competency, RatingBand, RatingScale, ScoringConfig
from contracts.templates import DEFAULT_FORMULA, CycleTemplateSpec, ScoringComponent
from contracts.workflow_io import (
    NotificationRequest,
    NotificationResult,
    PendingQuery,
    PendingSummary,
    StageAction,
    StageActionResult,
)
from services.common.client import NotReady, Refused, ServiceClient, ServiceName, Unavailable
from services.common.telemetry import STAGE_TRANSITIONS, trace_headers

__all__ = ["DEFAULT_COMPETENCIES", "STAGE_OWNER", "CycleActivities", "evaluation_config"]

STAGE_OWNER: dict[Stage, ServiceName] = {
    Stage.GOAL_SETTING: "goals",
    Stage.TRACKING: "tracking",
    Stage.EVALUATION: "evaluation",
    Stage.FEEDBACK: "feedback",
    Stage.RESULT_APPLICATION: "results",
}
"""Which service answers "who is still pending" in each stage."""


TRACKING_GRACE_HOURS = 1.0
"""Grace after a KPI's expected update frequency before it counts as stale."""

DEFAULT_COMPETENCIES = [
    Competency(competency_id="delivery", name="Delivers results"),
    Competency(competency_id="collaboration", name="Collaborates across teams"),
    Competency(competency_id="ownership", name="Takes ownership"),
    Competency(competency_id="growth", name="Learns and develops others"),
]
"""Competencies rated in review forms when the template names none."""

_TEMPLATE_TO_EVALUATION = {ScoringComponent.KPI: "goals"}


def evaluation_config(spec: CycleTemplateSpec) -> ScoringConfig:
    """The evaluation service's scoring config from a cycle template.

    The template speaks of ``kpi`` and ``w_kpi``; evaluation names the goal component
    ``goals`` and renormalises missing components in ``weighted()``, which is exactly
    the template's default weighted sum.
    """
    import re

    names = {c: _TEMPLATE_TO_EVALUATION.get(c, c.value) for c in ScoringComponent}
    weights = {names[c]: w for c, w in spec.scoring.weights.items()}
    if spec.scoring.formula.replace(" ", "") == DEFAULT_FORMULA.replace(" ", ""):
        formula = "weighted()"
    else:
        by_weight = {f"w_{c.value}": f"{w / 100:g}" for c, w in spec.scoring.weights.items()}
        by_name = {c.value: names[c] for c in ScoringComponent}
        formula = re.sub(
            r"\b[a-z_]+\b",
            lambda m: by_weight.get(m.group(0), by_name.get(m.group(0), m.group(0))),
            spec.scoring.formula,
        )
    scale = spec.scoring.rating_scale
    return ScoringConfig(
        rating_scale=RatingScale(
            min=scale.min,
            max=scale.max,
            bands=[RatingBand(label=b.label, min=b.min_score, max=b.max_score) for b in scale.bands],
        ),
        competencies=DEFAULT_COMPETENCIES,
        component_weights=weights,
        formula=formula,
        calibration_guideline=[
            BandGuideline(
                label=limit.band,
                max_share=(limit.max_percent if limit.max_percent is not None else 100) / 100,
                min_share=(limit.min_percent or 0) / 100,
            )
            for limit in spec.calibration.limits
        ],
        peer_anonymity_threshold=spec.peer_anonymity_threshold,
    )


class CycleActivities:
    """Activities bound to one HTTP client and a token provider (built by the worker)."""

    def __init__(self, *, client: ServiceClient) -> None:
        self.client = client

    async def _call(
        self,
        method: str,
        service: ServiceName,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One call through the service client; a refusal is non-retryable, an outage is retried."""
        try:
            return await self.client.call(
                method,
                service,
                path,
                json=json,
                params=params,
                idempotency_key=idempotency_key,
                headers=trace_headers({}),
            )
        except Refused as exc:
            raise ApplicationError(str(exc), type="BadRequest", non_retryable=True) from exc
        except Unavailable as exc:
            raise ApplicationError(str(exc)) from exc  # retryable

    # -- activities -----------------------------------------------------------------------------
    @activity.defn(name="check_pending")
    async def check_pending(self, query: PendingQuery) -> PendingSummary:
        service: ServiceName = STAGE_OWNER[query.stage]
        data = await self._call(
            "GET",
            service,
            f"/v1/cycles/{query.cycle_id}/pending",
            params={"department_id": query.department_id, "stage": query.stage.value},
        )
        report = PendingReport.model_validate(data)
        owners = list(dict.fromkeys(i.owner_id for i in report.pending if i.owner_id))
        return PendingSummary(
            total=report.total,
            done=report.done,
            pending=max(report.total - report.done, len(report.pending)),
            owner_ids=owners[:50],
        )

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        data = await self._call(
            "POST",
            "cycles",
            "/v1/notifications",
            json=request.model_dump(mode="json"),
            idempotency_key=request.idempotency_key,
        )
        return NotificationResult.model_validate(data)

    @activity.defn(name="stage_action")
    async def stage_action(self, action: StageAction) -> StageActionResult:
        handler = getattr(self, f"_{action.action}_{action.stage.value}", None)
        detail = f"nothing to do on {action.action} {action.stage.value}"
        if handler is not None:
            try:
                detail = await handler(action)
            except NotReady as exc:
                return StageActionResult(ready=False, detail=str(exc))
        STAGE_TRANSITIONS.labels(stage=action.stage.value, action=action.action).inc()
        return StageActionResult(detail=detail)

    # -- stage actions (looked up by name: _<action>_<stage>) ------------------------------------
    async def _enter_goal_setting(self, a: StageAction) -> str:
        await self._call("POST", "cycles", f"/v1/cycles/{a.cycle_id}/distribute")
        cycle = await self._call("GET", "cycles", f"/v1/cycles/{a.cycle_id}")
        period = {"period_start": cycle["period_start"], "period_end": cycle["period_end"]}
        await self._call("PUT", "goals", f"/v1/cycles/{a.cycle_id}/settings", json=period)
        return "org snapshot distributed; goal-setting period set"

    async def _exit_goal_setting(self, a: StageAction) -> str:
        await self._call("POST", "goals", f"/v1/cycles/{a.cycle_id}/freeze")
        catalog = await self._call("GET", "goals", f"/v1/cycles/{a.cycle_id}/kpi-catalog")
        cycle = await self._call("GET", "cycles", f"/v1/cycles/{a.cycle_id}")
        spec = CycleTemplateSpec.model_validate(cycle["template"])
        params = {
            "late_data_policy": spec.late_data_policy.value,
            # One hour of grace after each KPI's update frequency, in (possibly compressed) cycle time.
            "grace_hours": f"{TRACKING_GRACE_HOURS * a.day_seconds / 86_400:.6f}",
        }
        await self._call("PUT", "tracking", f"/v1/cycles/{a.cycle_id}/kpis", json=catalog, params=params)
        return f"goals frozen; {len(catalog.get('kpis', []))} KPI(s) handed to tracking"

    _force_exit_goal_setting = _exit_goal_setting

    async def _exit_tracking(self, a: StageAction) -> str:
        progress = await self._call("GET", "tracking", f"/v1/cycles/{a.cycle_id}/progress-export")
        await self._call("PUT", "goals", f"/v1/cycles/{a.cycle_id}/progress", json=progress)
        goals = await self._call("GET", "goals", f"/v1/cycles/{a.cycle_id}/goal-export")
        await self._call("PUT", "evaluation", f"/v1/cycles/{a.cycle_id}/goals", json=goals)
        await self._call("PUT", "evaluation", f"/v1/cycles/{a.cycle_id}/actuals", json=progress)
        cycle = await self._call("GET", "cycles", f"/v1/cycles/{a.cycle_id}")
        config = evaluation_config(CycleTemplateSpec.model_validate(cycle["template"]))
        await self._call("PUT", "evaluation", f"/v1/cycles/{a.cycle_id}/config", json=config.model_dump(mode="json"))
        return f"{len(goals.get('goals', []))} goal(s) and {len(progress.get('actuals', []))} actual(s) to evaluation"

    async def _enter_evaluation(self, a: StageAction) -> str:
        generated = await self._call("POST", "evaluation", f"/v1/cycles/{a.cycle_id}/assignments/generate")
        return f"review forms assigned: {generated}"

    _force_exit_tracking = _exit_tracking

    async def _exit_evaluation(self, a: StageAction) -> str:
        # 409 means calibration already closed: the scores are final.
        with contextlib.suppress(NotReady):
            await self._call("POST", "evaluation", f"/v1/cycles/{a.cycle_id}/scores/compute")
        results = await self._call("GET", "evaluation", f"/v1/cycles/{a.cycle_id}/final-results")
        await self._call(
            "PUT",
            "feedback",
            f"/v1/cycles/{a.cycle_id}/results",
            json=results,
            params={"calibration_closed": "true"},
        )
        await self._call("PUT", "results", f"/v1/cycles/{a.cycle_id}/results", json=results)
        return f"{len(results.get('results', []))} calibrated result(s) handed to feedback and results"

    async def _force_exit_evaluation(self, a: StageAction) -> str:
        await self._call("POST", "evaluation", f"/v1/cycles/{a.cycle_id}/calibration/close")
        return await self._exit_evaluation(a)

    async def _enter_feedback(self, a: StageAction) -> str:
        await self._call(
            "POST", "feedback", f"/v1/cycles/{a.cycle_id}/release", idempotency_key=f"{a.cycle_id}/release"
        )
        return "results released to employees"

    async def _enter_result_application(self, a: StageAction) -> str:
        matrix = await self._call("GET", "evaluation", f"/v1/cycles/{a.cycle_id}/collaboration-matrix")
        await self._call("PUT", "results", f"/v1/cycles/{a.cycle_id}/collaboration", json=matrix)
        goals = await self._call("GET", "goals", f"/v1/cycles/{a.cycle_id}/goal-export")
        await self._call("PUT", "results", f"/v1/cycles/{a.cycle_id}/goals", json=goals)
        return "collaboration matrix and shared goals handed to results"

    async def _exit_result_application(self, a: StageAction) -> str:
        await self._call("POST", "results", f"/v1/cycles/{a.cycle_id}/publish", idempotency_key=f"{a.cycle_id}/publish")
        return "results published"

    _force_exit_result_application = _exit_result_application

    async def _enter_closed(self, a: StageAction) -> str:
        await self._call("POST", "cycles", f"/v1/cycles/{a.cycle_id}/closed")
        return "cycle recorded as closed"

    async def _compensate_goal_setting(self, a: StageAction) -> str:
        return await self._withdraw(a)

    _compensate_tracking = _compensate_goal_setting
    _compensate_evaluation = _compensate_goal_setting
    _compensate_feedback = _compensate_goal_setting
    _compensate_result_application = _compensate_goal_setting

    async def _withdraw(self, a: StageAction) -> str:
        try:
            await self._call("POST", "feedback", f"/v1/cycles/{a.cycle_id}/withdraw")
        except NotReady as exc:
            return f"nothing to withdraw ({exc})"
        return "unreleased results withdrawn"

    def all(self) -> list[Callable[..., Any]]:
        return [self.check_pending, self.send_notification, self.stage_action]

