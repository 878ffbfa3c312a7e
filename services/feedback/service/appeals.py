"""Appeals: an employee contests a released result within the appeal window; HR reviews and
resolves it within its deadline; an *adjusted* outcome is recorded through evaluation first, then
in results (so pay follows it), then here.

Nobody reviews or resolves their own appeal: an HR person who appealed their own result could
otherwise raise it. The calls to evaluation and results carry the HR person as the service
token's ``act`` claim, and both refuse an adjustment whose acting person is the employee too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.domain_events import AppealResolvedPayload, AppealSubmittedPayload
from contracts.feedback import (
    AppealAdjustment,
    AppealOutcome,
    AppealsState,
    AppealStatus,
    FeedbackEventType,
    OpenAppeal,
)
from services.common.auth import Principal
from services.common.client import Actor, ServiceCallError, ServiceClient, ServiceName
from services.common.errors import DomainError
from services.common.scoping import in_scope, sees_all
from services.feedback.models import Appeal, AppealEvent, ReleasedResult
from services.feedback.schemas import AppealResolve
from services.feedback.service.records import OPEN_APPEAL_STATUSES, count, emit
from services.feedback.service.release import appeal_deadline, get_cycle
from services.feedback.service.scope import my_employee_id, org_view

__all__ = [
    "appeal_state",
    "get_appeal",
    "list_appeals",
    "overdue_appeals",
    "resolve_appeal",
    "start_review",
    "submit_appeal",
]


def _step(appeal: Appeal, *, at: datetime, actor: str, action: str, to_status: str, note: str | None) -> None:
    appeal.events.append(
        AppealEvent(at=at, actor=actor, action=action, from_status=appeal.status, to_status=to_status, note=note)
    )
    appeal.status = to_status


async def submit_appeal(
    *, session: AsyncSession, cycle_id: str, principal: Principal, reason: str, now: datetime
) -> Appeal:
    me = my_employee_id(principal)
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    result = await session.get(ReleasedResult, (cycle_id, me))
    if result is None or result.status != "released":
        raise DomainError(f"you have no released result in cycle {cycle_id!r} to appeal", status_code=404)
    deadline = appeal_deadline(cycle=cycle, result=result)
    assert deadline is not None  # released results always carry released_at
    if now > deadline:
        raise DomainError(
            f"the appeal window closed at {deadline.isoformat()} "
            f"({cycle.appeal_window_days} days after the result was released); appeals are no longer accepted",
            status_code=409,
        )
    open_count = await count(
        session, Appeal, Appeal.cycle_id == cycle_id, Appeal.employee_id == me, Appeal.status.in_(OPEN_APPEAL_STATUSES)
    )
    if open_count:
        raise DomainError("you already have an open appeal for this cycle", status_code=409)
    appeal = Appeal(
        cycle_id=cycle_id,
        employee_id=me,
        department_id=result.department_id,
        reason=reason,
        status=AppealStatus.SUBMITTED.value,
        submitted_at=now,
        hr_due_at=now + cycle.days(cycle.hr_resolution_days),
        previous_score=result.final_score,
        previous_rating=result.rating,
        events=[
            AppealEvent(
                at=now, actor=principal.sub, action="submit", from_status=None, to_status="submitted", note=reason
            )
        ],
    )
    session.add(appeal)
    await session.flush()
    emit(
        session,
        type=FeedbackEventType.APPEAL_SUBMITTED,
        cycle_id=cycle_id,
        subject_id=str(appeal.id),
        payload=AppealSubmittedPayload(
            appeal_id=appeal.id, employee_id=me, department_id=result.department_id, hr_due_at=appeal.hr_due_at
        ),
    )
    await session.commit()
    return appeal


async def get_appeal(*, session: AsyncSession, appeal_id: int, principal: Principal) -> Appeal:
    # One answer for "missing" and "not yours": a 403 would tell that the appeal exists.
    not_found = DomainError(f"no appeal {appeal_id} within your scope", status_code=404)
    appeal = await session.get(Appeal, appeal_id)
    if appeal is None:
        raise not_found
    if not sees_all(principal):
        org = await org_view(session=session, cycle_id=appeal.cycle_id)
        if not org.can_see(principal, appeal.employee_id):
            raise not_found
    return appeal


async def list_appeals(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    status: AppealStatus | None,
    limit: int,
    offset: int,
) -> Sequence[Appeal]:
    query = select(Appeal).where(Appeal.cycle_id == cycle_id)
    if status:
        query = query.where(Appeal.status == status.value)
    org = partial(org_view, session=session, cycle_id=cycle_id)
    query = await in_scope(query, Appeal.employee_id, principal=principal, org=org)
    return (await session.scalars(query.order_by(Appeal.id).limit(limit).offset(offset))).all()


def _not_own(appeal: Appeal, principal: Principal, action: str) -> None:
    if principal.acting_employee_id == appeal.employee_id:
        raise DomainError(
            f"you cannot {action} your own appeal; another HR person must", status_code=403, field="appeal_id"
        )


async def start_review(*, session: AsyncSession, appeal_id: int, principal: Principal, now: datetime) -> Appeal:
    appeal = await get_appeal(session=session, appeal_id=appeal_id, principal=principal)
    _not_own(appeal, principal, "review")
    if appeal.status == AppealStatus.UNDER_REVIEW:
        return appeal
    if appeal.status != AppealStatus.SUBMITTED:
        raise DomainError(f"appeal {appeal_id} is already resolved ({appeal.status})", status_code=409)
    _step(appeal, at=now, actor=principal.sub, action="start_review", to_status="under_review", note=None)
    await session.commit()
    return appeal


async def resolve_appeal(
    *,
    session: AsyncSession,
    appeal_id: int,
    principal: Principal,
    resolution: AppealResolve,
    now: datetime,
    services: ServiceClient,
) -> Appeal:
    """HR closes an appeal; *adjusted* records the new score through evaluation first, then in results,
    then locally."""
    appeal = await get_appeal(session=session, appeal_id=appeal_id, principal=principal)
    _not_own(appeal, principal, "resolve")
    if appeal.status not in OPEN_APPEAL_STATUSES:
        raise DomainError(
            f"appeal {appeal_id} was already resolved ({appeal.status}) at "
            f"{appeal.resolved_at.isoformat() if appeal.resolved_at else '?'}",
            status_code=409,
        )
    result = await session.get(ReleasedResult, (appeal.cycle_id, appeal.employee_id))
    if result is None:
        raise DomainError(f"the appealed result of {appeal.employee_id!r} no longer exists", status_code=409)
    outcome, new_score, new_rating = resolution.outcome, resolution.new_score, resolution.new_rating
    if outcome == AppealOutcome.ADJUSTED:
        if new_score is None or not new_rating:
            raise DomainError("an adjusted appeal needs new_score and new_rating", field="new_score")
        cycle = await get_cycle(session=session, cycle_id=appeal.cycle_id)
        lo, hi = cycle.scale_min, cycle.scale_max
        if lo is not None and hi is not None and not lo <= new_score <= hi:
            raise DomainError(f"new_score {new_score} is outside the cycle's scale [{lo}, {hi}]", field="new_score")
        # Evaluation owns calibration: record there first, so a failure leaves this appeal open for a retry
        # (evaluation may deduplicate on appeal_id).
        adjustment = AppealAdjustment(
            employee_id=appeal.employee_id,
            new_score=new_score,
            new_rating=new_rating,
            reason=resolution.note,
            appeal_id=str(appeal.id),
        )
        # Then results, so bonuses, promotions, plans and what payroll receives follow the adjusted rating
        # (results applies it before publication, or publishes a correction after it).
        targets: tuple[ServiceName, ...] = ("evaluation", "results")
        for service in targets:
            await _record_adjustment(
                services, service, cycle_id=appeal.cycle_id, adjustment=adjustment, principal=principal
            )
        result.final_score = new_score
        result.rating = new_rating
        result.adjusted_by_appeal_id = appeal.id
        appeal.new_score = new_score
        appeal.new_rating = new_rating
    elif new_score is not None or new_rating is not None:
        raise DomainError(
            f"new_score/new_rating are only allowed when the outcome is 'adjusted', not {outcome.value!r}",
            field="outcome",
        )
    if appeal.status == AppealStatus.SUBMITTED:
        _step(appeal, at=now, actor=principal.sub, action="start_review", to_status="under_review", note=None)
    _step(appeal, at=now, actor=principal.sub, action="resolve", to_status=outcome.value, note=resolution.note)
    appeal.resolved_at = now
    appeal.resolved_by = principal.sub
    appeal.resolution_note = resolution.note
    emit(
        session,
        type=FeedbackEventType.APPEAL_RESOLVED,
        cycle_id=appeal.cycle_id,
        subject_id=str(appeal.id),
        payload=AppealResolvedPayload(
            appeal_id=appeal.id,
            employee_id=appeal.employee_id,
            outcome=outcome,
            new_score=appeal.new_score,
            new_rating=appeal.new_rating,
            late=now > appeal.hr_due_at,
        ),
    )
    await session.commit()
    return appeal


async def _record_adjustment(
    services: ServiceClient,
    service: ServiceName,
    *,
    cycle_id: str,
    adjustment: AppealAdjustment,
    principal: Principal,
) -> None:
    """POST the adjustment to ``service`` on behalf of the HR person resolving the appeal; 502 if it fails
    (both services deduplicate on ``appeal_id``, so resolving again retries safely)."""
    try:
        await services.call(
            "POST",
            service,
            f"/v1/cycles/{cycle_id}/appeal-adjustments",
            json=adjustment,
            actor=Actor(sub=principal.sub, employee_id=principal.acting_employee_id),
        )
    except ServiceCallError as exc:
        if exc.status is None:  # no answer at all: the network failure is the cause
            raise DomainError(
                f"could not reach the {service} service to record the adjustment ({type(exc.__cause__).__name__}); "
                "the appeal stays open, retry the resolution",
                status_code=502,
            ) from exc
        if exc.status in (400, 422) and exc.field:  # the resolution's own input was wrong: say which field
            raise DomainError(
                f"the {service} service refused the adjustment: {exc.detail}; the appeal stays open",
                field=exc.field,
            ) from exc
        raise DomainError(
            f"the {service} service refused the adjustment ({exc.status}: {exc.detail}); the appeal stays open",
            status_code=502,
        ) from exc


async def appeal_state(*, session: AsyncSession, cycle_id: str, now: datetime) -> AppealsState:
    """Whether appeals may still change the cycle's results: the window (from the last release) and the
    appeals HR has not resolved. The workflow reads it before publishing under ``wait_for_appeals``."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    released_at = await session.scalar(
        select(func.max(ReleasedResult.released_at)).where(
            ReleasedResult.cycle_id == cycle_id, ReleasedResult.status == "released"
        )
    )
    closes_at = released_at + cycle.days(cycle.appeal_window_days) if released_at else None
    still_open = (Appeal.cycle_id == cycle_id, Appeal.status.in_(OPEN_APPEAL_STATUSES))
    rows = (await session.scalars(select(Appeal).where(*still_open).order_by(Appeal.id).limit(500))).all()
    return AppealsState(
        cycle_id=cycle_id,
        as_of=now,
        released_at=released_at,
        window_closes_at=closes_at,
        window_open=closes_at is not None and now <= closes_at,
        open_appeals=[
            OpenAppeal(
                appeal_id=a.id,
                employee_id=a.employee_id,
                department_id=a.department_id,
                status=AppealStatus(a.status),
                hr_due_at=a.hr_due_at,
            )
            for a in rows
        ],
        open_count=await count(session, Appeal, *still_open),
    )


async def overdue_appeals(
    *, session: AsyncSession, now: datetime, cycle_id: str | None, limit: int, offset: int
) -> Sequence[Appeal]:
    """Open appeals whose HR resolution deadline has passed (for ops)."""
    query = select(Appeal).where(Appeal.status.in_(OPEN_APPEAL_STATUSES), Appeal.hr_due_at < now)
    if cycle_id:
        query = query.where(Appeal.cycle_id == cycle_id)
    return (await session.scalars(query.order_by(Appeal.hr_due_at, Appeal.id).limit(limit).offset(offset))).all()
