"""Calibration: the distribution and deviation reports, adjustments with an audit trail (calibration
until close, appeals after it), closing calibration, and the final results handed on."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.domain_events import CalibrationAdjustedPayload, CalibrationClosedPayload
from contracts.evaluation import CalibrationAdjustment, CycleResults, EmployeeResult, EvaluationConfig, Relation
from services.common.auth import Principal
from services.common.errors import DomainError
from services.evaluation.models import EvaluationAdjustment, EvaluationCycleState, EvaluationResult
from services.evaluation.schemas import CalibrationClosed, DeviationReport
from services.evaluation.scoring import DistributionReport, deviation_report, distribution_report
from services.evaluation.service.records import (
    acting_sub,
    as_utc,
    cycle_state,
    emit_event,
    ensure_open,
    load_config,
    now,
    org_for,
    read_model,
    require_participant,
    result_rows,
    review_score,
    submitted_reviews,
)

__all__ = [
    "adjust_rating",
    "appeal_adjustment",
    "close_calibration",
    "deviation",
    "distribution",
    "final_results",
    "list_adjustments",
]


# -- reports ----------------------------------------------------------------------------------
async def distribution(
    *, session: AsyncSession, cycle_id: str, principal: Principal, department_id: str | None = None
) -> DistributionReport:
    """The rating distribution of the caller's scope (one department and its sub-departments when
    ``department_id`` is given) against the guideline; a group below ``min_group_size`` is not held
    to its limits."""
    config = await load_config(session, cycle_id)
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    departments = org.department_tree(department_id) if department_id else None
    if department_id and department_id not in org.departments:
        raise DomainError(f"department {department_id!r} is not in cycle {cycle_id!r}", status_code=404)
    ratings = [
        r.rating
        for r in await result_rows(session, cycle_id)
        if r.rating is not None
        and (visible is None or r.employee_id in visible)
        and (departments is None or r.department_id in departments)
    ]
    return distribution_report(ratings, scale=config.rating_scale, guideline=config.calibration)


async def deviation(*, session: AsyncSession, cycle_id: str, principal: Principal) -> DeviationReport:
    """Department means of computed scores, and each manager's mean manager-review score,
    against the company mean, in company standard deviations (see ``deviation_report``)."""
    config = await load_config(session, cycle_id)
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    results = [r for r in await result_rows(session, cycle_id) if r.computed_score is not None]
    company = [r.computed_score for r in results if r.computed_score is not None]
    by_department: dict[str, list[float]] = defaultdict(list)
    for r in results:
        if r.computed_score is not None:
            by_department[r.department_id].append(r.computed_score)
    manager_reviews = [
        (row.rater_id, score)
        for row in await submitted_reviews(session, cycle_id)
        if row.relation == Relation.MANAGER.value
        and (score := review_score(json.loads(row.ratings or "{}"), config)) is not None
    ]
    by_manager: dict[str, list[float]] = defaultdict(list)
    for manager_id, score in manager_reviews:
        by_manager[manager_id].append(score)
    threshold = config.deviation_z_threshold
    departments = deviation_report(by_department, company=company, z_threshold=threshold)
    managers = deviation_report(by_manager, company=[s for _, s in manager_reviews], z_threshold=threshold)
    if visible is not None:  # a department head sees the groups inside their scope
        scoped_departments = {org.participants[e].department_id for e in visible if e in org.participants}
        departments = [d for d in departments if d.group_id in scoped_departments]
        managers = [m for m in managers if m.group_id in visible]
    return DeviationReport(
        cycle_id=cycle_id,
        company_mean=round(statistics.fmean(company), 4) if company else None,
        company_stdev=round(statistics.pstdev(company), 4) if len(company) > 1 else None,
        z_threshold=threshold,
        method=(
            "z = (group mean - company mean) / population standard deviation of the company's scores; "
            f"lenient when z >= {threshold:g}, strict when z <= -{threshold:g}. Departments use computed "
            "final scores; managers use the scores they gave in manager reviews against all manager reviews."
        ),
        by_department=departments,
        by_manager=managers,
    )


# -- adjustments ------------------------------------------------------------------------------
def _target(
    config: EvaluationConfig, *, current: float | None, new_score: float | None, new_rating: str | None
) -> tuple[float, str]:
    """The score and rating an adjustment sets: ``new_rating`` alone keeps a current score already in
    that band and otherwise moves to the band's midpoint."""
    scale = config.rating_scale
    labels = {b.label: b for b in scale.bands}
    if new_rating is not None and new_rating not in labels:
        raise DomainError(f"new_rating {new_rating!r} is not a band; bands are {sorted(labels)}", field="new_rating")
    if new_score is not None:
        if not scale.min <= new_score <= scale.max:
            raise DomainError(
                f"new_score must be on the rating scale {scale.min:g}..{scale.max:g}, got {new_score:g}",
                field="new_score",
            )
        score = round(new_score, 4)
        rating = scale.band_for(score)
        if new_rating is not None and new_rating != rating:
            raise DomainError(f"new_score {score:g} falls in band {rating!r}, not {new_rating!r}", field="new_rating")
        return score, rating
    if new_rating is None:
        raise DomainError("give new_score or new_rating", field="new_score")
    band = labels[new_rating]
    if current is not None and scale.band_for(current) == new_rating:
        return current, new_rating
    return round((band.min_score + band.max_score) / 2, 4), new_rating


def _adjustment_read(row: EvaluationAdjustment) -> CalibrationAdjustment:
    return read_model(CalibrationAdjustment, row, created_at=as_utc(row.created_at))


class _Change(NamedTuple):
    new_score: float | None
    new_rating: str | None
    reason: str


async def _apply(
    session: AsyncSession, cycle_id: str, employee_id: str, change: _Change, *, actor: str, appeal_id: str | None
) -> CalibrationAdjustment:
    """Record the adjustment (an appeal's when ``appeal_id`` is given), move the result's final score
    and rating, emit the event and commit."""
    config = await load_config(session, cycle_id)
    row = await session.get(EvaluationResult, (cycle_id, employee_id))
    if row is None:
        raise DomainError(
            f"{employee_id!r} has no computed score; POST /v1/cycles/{cycle_id}/scores/compute first",
            status_code=409,
            field="employee_id",
        )
    score, rating = _target(config, current=row.final_score, new_score=change.new_score, new_rating=change.new_rating)
    adjustment = EvaluationAdjustment(
        cycle_id=cycle_id,
        employee_id=employee_id,
        kind="calibration" if appeal_id is None else "appeal",
        before_score=row.final_score,
        before_rating=row.rating,
        after_score=score,
        after_rating=rating,
        reason=change.reason,
        actor=actor,
        appeal_id=appeal_id,
        created_at=now(),
    )
    session.add(adjustment)
    # The final rating itself moves: results, releases and pools all read these columns.
    row.final_score, row.rating, row.calibrated = score, rating, True
    await session.flush()
    payload = CalibrationAdjustedPayload.model_validate(
        {
            "kind": adjustment.kind,
            "before_score": adjustment.before_score,
            "before_rating": adjustment.before_rating,
            "after_score": score,
            "after_rating": rating,
            "appeal_id": appeal_id,
            "actor": actor,
        }
    )
    emit_event(session, type="CalibrationAdjusted", cycle_id=cycle_id, subject_id=employee_id, payload=payload)
    record = _adjustment_read(adjustment)
    await session.commit()
    return record


async def adjust_rating(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    employee_id: str,
    new_score: float | None,
    new_rating: str | None,
    reason: str,
) -> CalibrationAdjustment:
    org = await org_for(session, cycle_id)
    require_participant(org, employee_id, "employee_id")
    if principal.acting_employee_id == employee_id:
        raise DomainError("you cannot calibrate your own rating", status_code=403, field="employee_id")
    if not org.can_see(principal, employee_id):
        raise DomainError(f"{employee_id!r} is outside your department", status_code=403, field="employee_id")
    if new_score is None and new_rating is None:
        raise DomainError("give new_score or new_rating", field="new_score")
    await ensure_open(session, cycle_id, "calibration adjustment (use the appeal path)")
    change = _Change(new_score, new_rating, reason)
    return await _apply(session, cycle_id, employee_id, change, actor=acting_sub(principal), appeal_id=None)


async def appeal_adjustment(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    employee_id: str,
    appeal_id: str,
    new_score: float | None,
    new_rating: str | None,
    reason: str,
) -> tuple[CalibrationAdjustment, bool]:
    """Apply an appeal resolved as 'adjusted' (after close); returns (record, created).

    The person it acts for (the HR person resolving the appeal, carried by the feedback service's
    token as the ``act`` claim) may not be the employee appealing: checked first, so a replay
    cannot return an adjustment of one's own rating either."""
    if principal.acting_employee_id == employee_id:
        raise DomainError(
            f"you cannot resolve an appeal about your own rating ({employee_id!r} is the person this call acts "
            "for); another HR person must resolve it",
            status_code=403,
            field="employee_id",
        )
    previous = await session.scalar(
        select(EvaluationAdjustment).where(
            EvaluationAdjustment.cycle_id == cycle_id, EvaluationAdjustment.appeal_id == appeal_id
        )
    )
    if previous is not None:
        if previous.employee_id != employee_id:
            raise DomainError(
                f"appeal {appeal_id!r} was already applied to another employee", status_code=409, field="appeal_id"
            )
        return _adjustment_read(previous), False
    state = await cycle_state(session, cycle_id)
    if state.calibration_closed_at is None:
        raise DomainError(
            "calibration is still open; appeals apply after it closes (use calibration adjustments meanwhile)",
            status_code=409,
        )
    org = await org_for(session, cycle_id)
    require_participant(org, employee_id, "employee_id")
    change = _Change(new_score, new_rating, reason)
    applied = await _apply(session, cycle_id, employee_id, change, actor=acting_sub(principal), appeal_id=appeal_id)
    return applied, True


async def list_adjustments(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    employee_id: str | None,
    limit: int,
    offset: int,
) -> list[CalibrationAdjustment]:
    """The audit trail in the caller's scope, without the caller's own entries (their rating reaches
    them through feedback once released)."""
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    query = select(EvaluationAdjustment).where(EvaluationAdjustment.cycle_id == cycle_id)
    if visible is not None:
        query = query.where(EvaluationAdjustment.employee_id.in_(visible))
    if principal.acting_employee_id:
        query = query.where(EvaluationAdjustment.employee_id != principal.acting_employee_id)
    if employee_id:
        query = query.where(EvaluationAdjustment.employee_id == employee_id)
    rows = await session.scalars(query.order_by(EvaluationAdjustment.adjustment_id).limit(limit).offset(offset))
    return [_adjustment_read(r) for r in rows]


# -- close and hand on ------------------------------------------------------------------------
async def close_calibration(*, session: AsyncSession, cycle_id: str, principal: Principal) -> CalibrationClosed:
    state = await ensure_open(session, cycle_id, "closing it again")
    results = await result_rows(session, cycle_id)
    if not results:
        raise DomainError(
            f"no scores yet; POST /v1/cycles/{cycle_id}/scores/compute before closing calibration", status_code=409
        )
    unscored = [r.employee_id for r in results if r.final_score is None or r.rating is None]
    if unscored:
        raise DomainError(
            f"{len(unscored)} employee(s) have no score (e.g. {unscored[:5]}); give them one with a calibration "
            "adjustment before closing",
            status_code=409,
        )
    closed_at = now()
    state.calibration_closed_at, state.closed_by = closed_at, principal.sub
    counts: dict[str, int] = defaultdict(int)
    for r in results:
        counts[r.rating or ""] += 1
    payload = CalibrationClosedPayload(
        employees=len(results), ratings=dict(sorted(counts.items())), closed_by=principal.sub
    )
    emit_event(session, type="CalibrationClosed", cycle_id=cycle_id, subject_id=cycle_id, payload=payload)
    await session.commit()
    return CalibrationClosed(cycle_id=cycle_id, calibration_closed_at=closed_at.isoformat(), closed_by=principal.sub)


async def final_results(*, session: AsyncSession, cycle_id: str, principal: Principal | None = None) -> CycleResults:
    """Every final result, for the workflow's handoffs; a person reading it (HR, ops) gets everyone's
    but their own, which reaches them through feedback once released. ``principal`` None: an
    in-process caller (the CLI, benchmarks) reads all."""
    state = await session.get(EvaluationCycleState, cycle_id)
    if state is None or state.calibration_closed_at is None:
        raise DomainError(
            f"final results of cycle {cycle_id!r} exist only after calibration is closed", status_code=409
        )
    config = await load_config(session, cycle_id)
    return CycleResults(
        cycle_id=cycle_id,
        scale_min=config.rating_scale.min,
        scale_max=config.rating_scale.max,
        bands=config.rating_scale.bands,
        results=[
            EmployeeResult(
                employee_id=r.employee_id,
                department_id=r.department_id,
                manager_id=r.manager_id,
                final_score=r.final_score or 0.0,
                rating=r.rating or "",
                pre_calibration_score=r.computed_score,
                calibrated=r.calibrated,
            )
            for r in await result_rows(session, cycle_id)
            if principal is None or r.employee_id != principal.acting_employee_id
        ],
    )
