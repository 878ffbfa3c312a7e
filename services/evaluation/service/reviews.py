"""Review assignments and reviews: generated self and manager reviews, nominated peer and
cross-department raters, submissions, and the per-relation summary a reviewee may read.

A rater's identity is never shown to the person reviewed: peer and cross-department rows about
the caller are not listed and read as 404, and summaries hold aggregates only, shown once at
least ``peer_anonymity_threshold`` were submitted and changing only in whole batches of it
(``services.evaluation.anonymity``); what the reviewee sees of those aggregates follows the
configuration's ``peer_visibility``. One peer review is read only by its rater and HR, and by the
reviewee's managers and heads when the template attributes peer reviews to them
(``peer_visibility_for_managers``). Nobody who oversees the reviewee (a manager above them, a
head of their department) is nominated as their anonymous rater: knowing their own rating, they
would learn the others' from the aggregate they see.
"""

from __future__ import annotations

import json
import statistics
import uuid
from typing import Any

from sqlalchemy import and_, false, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.domain_events import ReviewSubmittedPayload
from contracts.evaluation import EvaluationSettings, ManagerPeerVisibility, PeerVisibility, Relation
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.evaluation.anonymity import counted
from services.evaluation.models import EvaluationAssignment
from services.evaluation.schemas import (
    AssignmentRead,
    AssignmentsGenerated,
    RelationSummary,
    ReviewDetail,
    ReviewSummary,
)
from services.evaluation.service.collaboration import linked, require_confirmed
from services.evaluation.service.records import (
    ANONYMOUS_RELATIONS,
    as_utc,
    as_utc_or_none,
    commit_unique,
    emit_event,
    ensure_open,
    load_config,
    load_input,
    now,
    org_for,
    parse_config,
    read_model,
    require_participant,
    review_score,
)

__all__ = [
    "generate_assignments",
    "get_assignment",
    "list_assignments",
    "nominate_rater",
    "review_summary",
    "submit_review",
]


async def _manager_visibility(session: AsyncSession, cycle_id: str) -> ManagerPeerVisibility:
    """The template's ``peer_visibility_for_managers`` (its default before the configuration arrives)."""
    payload = await load_input(session, cycle_id, "config")
    settings = parse_config(payload, cycle_id) if payload is not None else EvaluationSettings()
    return settings.peer_visibility_for_managers


def _assignment_read(row: EvaluationAssignment, managers: ManagerPeerVisibility) -> AssignmentRead:
    shown = managers if row.relation in ANONYMOUS_RELATIONS else ManagerPeerVisibility.ATTRIBUTED
    return read_model(
        AssignmentRead,
        row,
        created_at=as_utc(row.created_at),
        submitted_at=as_utc_or_none(row.submitted_at),
        shown_to_managers=shown,
    )


def oversees(org: OrgView, overseer_id: str | None, employee_id: str) -> bool:
    """Whether ``overseer_id`` manages ``employee_id`` (directly or not) or heads their department (tree)."""
    if overseer_id is None or employee_id not in org.participants:
        return False
    if employee_id in org.reports_of(overseer_id):
        return True
    headed = {d for department in org.headed_by(overseer_id) for d in org.department_tree(department)}
    return org.participants[employee_id].department_id in headed


def _new_assignment(
    *, cycle_id: str, reviewee_id: str, rater_id: str, relation: str, actor: str
) -> EvaluationAssignment:
    return EvaluationAssignment(
        assignment_id=str(uuid.uuid4()),
        cycle_id=cycle_id,
        reviewee_id=reviewee_id,
        rater_id=rater_id,
        relation=relation,
        status="pending",
        nominated_by=actor,
        created_at=now(),
    )


GENERATED = [Relation.SELF.value, Relation.MANAGER.value, Relation.UPWARD.value]
"""Relations the service creates itself (the others are nominated)."""


async def _upward_review(session: AsyncSession, cycle_id: str) -> bool:
    """Whether the cycle's config asks for upward reviews (False before the config arrives)."""
    try:
        return (await load_config(session, cycle_id)).upward_review
    except DomainError:
        return False


async def generate_assignments(*, session: AsyncSession, cycle_id: str, actor: str) -> AssignmentsGenerated:
    """Create the self review of everyone and the manager review of everyone with a manager; with the
    config's ``upward_review``, also each report's upward review of their manager."""
    await ensure_open(session, cycle_id, "creating assignments")
    org = await org_for(session, cycle_id)
    upward = await _upward_review(session, cycle_id)
    if not org.participants:
        raise DomainError(f"cycle {cycle_id!r} has no participants yet; PUT the org snapshot first", status_code=409)
    existing = {
        (a.reviewee_id, a.rater_id, a.relation)
        for a in await session.scalars(
            select(EvaluationAssignment).where(
                EvaluationAssignment.cycle_id == cycle_id,
                EvaluationAssignment.relation.in_(GENERATED),
            )
        )
    }
    managed = [
        p
        for p in org.participants.values()
        if p.manager_id and p.manager_id in org.participants and p.manager_id != p.employee_id
    ]
    wanted = [(p.employee_id, p.employee_id, Relation.SELF.value) for p in org.participants.values()]
    wanted += [(p.employee_id, p.manager_id, Relation.MANAGER.value) for p in managed if p.manager_id]
    if upward:
        wanted += [(p.manager_id, p.employee_id, Relation.UPWARD.value) for p in managed if p.manager_id]
    created = 0
    for reviewee, rater, relation in wanted:
        if (reviewee, rater, relation) not in existing:
            session.add(
                _new_assignment(cycle_id=cycle_id, reviewee_id=reviewee, rater_id=rater, relation=relation, actor=actor)
            )
            created += 1
    await session.commit()
    return AssignmentsGenerated(cycle_id=cycle_id, created=created, existing=len(wanted) - created)


async def _check_nomination(
    session: AsyncSession,
    *,
    cycle_id: str,
    org: OrgView,
    principal: Principal,
    reviewee_id: str,
    rater_id: str,
    relation: Relation,
) -> None:
    """Who may nominate whom; scope first, so nothing tells a caller about raters of someone they do not manage."""
    require_participant(org, reviewee_id, "reviewee_id")
    me = principal.acting_employee_id
    if me == reviewee_id:
        raise DomainError("you cannot nominate your own raters", status_code=403, field="reviewee_id")
    if not principal.has(Role.HR_ADMIN):
        if relation not in (Relation.PEER, Relation.CROSS_DEPARTMENT):
            raise DomainError(
                "managers nominate peer and cross_department raters; self and manager reviews are generated",
                field="relation",
            )
        if not me or reviewee_id not in org.reports_of(me):
            raise DomainError(
                f"you can nominate raters only for your reports; {reviewee_id!r} is not one",
                status_code=403,
                field="reviewee_id",
            )
    require_participant(org, rater_id, "rater_id")
    if rater_id == reviewee_id and relation != Relation.SELF:
        raise DomainError("nobody rates themselves outside the self review", field="rater_id")
    if relation == Relation.SELF and rater_id != reviewee_id:
        raise DomainError("a self review is written by the reviewee", field="rater_id")
    reviewee, rater = org.participants[reviewee_id], org.participants[rater_id]
    if relation == Relation.MANAGER and reviewee.manager_id != rater_id:
        raise DomainError(f"{rater_id!r} is not the manager of {reviewee_id!r}", field="rater_id")
    if relation == Relation.UPWARD and rater.manager_id != reviewee_id:
        raise DomainError(
            f"{rater_id!r} does not report to {reviewee_id!r}: only reports review upward", field="rater_id"
        )
    if relation == Relation.CROSS_DEPARTMENT:
        if rater.department_id == reviewee.department_id:
            raise DomainError(
                "a cross_department rater must come from another department; use relation 'peer'", field="rater_id"
            )
        link = await linked(session, cycle_id=cycle_id, org=org, a=rater.department_id, b=reviewee.department_id)
        if link is None:
            raise DomainError(
                f"departments {rater.department_id!r} and {reviewee.department_id!r} share no goal and have no "
                "declared collaboration; declare one at POST /v1/cycles/{id}/collaborations first",
                field="rater_id",
            )
        require_confirmed(link, rater.department_id, reviewee.department_id, field="rater_id")


def _check_anonymous_rater(org: OrgView, *, reviewee_id: str, rater_id: str, relation: Relation) -> None:
    """Nobody who oversees the reviewee rates them anonymously: they see the reviewee's aggregates, so
    with their own rating known the aggregate would tell them what the others wrote."""
    if relation.value in ANONYMOUS_RELATIONS and oversees(org, rater_id, reviewee_id):
        raise DomainError(
            f"{rater_id!r} manages {reviewee_id!r} or heads their department, so cannot be their anonymous "
            f"{relation.value} rater (they see the aggregate their own rating is part of); a manager writes the "
            "manager review",
            field="rater_id",
        )


async def nominate_rater(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    reviewee_id: str,
    rater_id: str,
    relation: Relation,
) -> AssignmentRead:
    """A manager nominates a rater for one of their reports (HR for anyone)."""
    org = await org_for(session, cycle_id)
    await _check_nomination(
        session,
        cycle_id=cycle_id,
        org=org,
        principal=principal,
        reviewee_id=reviewee_id,
        rater_id=rater_id,
        relation=relation,
    )
    await ensure_open(session, cycle_id, "nominating raters")
    config = await load_config(session, cycle_id)
    limit = config.rater_limits.get(relation)
    count = await session.scalar(
        select(func.count()).where(
            EvaluationAssignment.cycle_id == cycle_id,
            EvaluationAssignment.reviewee_id == reviewee_id,
            EvaluationAssignment.relation == relation.value,
        )
    )
    if limit is not None and (count or 0) >= limit.max:
        raise DomainError(
            f"{reviewee_id!r} already has {count or 0} {relation.value} rater(s); the maximum is {limit.max}",
            status_code=409,
            field="relation",
        )
    conflict = f"{rater_id!r} is already a {relation.value} rater of {reviewee_id!r}"
    duplicate = await session.scalar(
        select(EvaluationAssignment).where(
            EvaluationAssignment.cycle_id == cycle_id,
            EvaluationAssignment.reviewee_id == reviewee_id,
            EvaluationAssignment.rater_id == rater_id,
            EvaluationAssignment.relation == relation.value,
        )
    )
    if duplicate is not None:
        raise DomainError(conflict, status_code=409)
    _check_anonymous_rater(org, reviewee_id=reviewee_id, rater_id=rater_id, relation=relation)
    assignment = _new_assignment(
        cycle_id=cycle_id, reviewee_id=reviewee_id, rater_id=rater_id, relation=relation.value, actor=principal.sub
    )
    session.add(assignment)
    await commit_unique(session, conflict)
    return _assignment_read(assignment, config.peer_visibility_for_managers)


def _visibility_clause(principal: Principal, visible: set[str] | None) -> Any:
    """Rows the caller may see: their own as rater; rows about people they can see, except
    the peer and cross-department rows about themselves (those would name their raters)."""
    me = principal.acting_employee_id
    about_others: Any = EvaluationAssignment.reviewee_id.in_(visible) if visible is not None else True
    if visible is not None and not visible:
        about_others = false()
    if me:
        hidden = and_(
            EvaluationAssignment.reviewee_id == me, EvaluationAssignment.relation.in_(sorted(ANONYMOUS_RELATIONS))
        )
        return or_(EvaluationAssignment.rater_id == me, and_(about_others, not_(hidden)))
    return about_others


async def list_assignments(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    reviewee_id: str | None,
    rater_id: str | None,
    relation: Relation | None,
    status: str | None,
    limit: int,
    offset: int,
) -> list[AssignmentRead]:
    org = await org_for(session, cycle_id)
    query = select(EvaluationAssignment).where(
        EvaluationAssignment.cycle_id == cycle_id, _visibility_clause(principal, org.visible_employee_ids(principal))
    )
    if reviewee_id:
        query = query.where(EvaluationAssignment.reviewee_id == reviewee_id)
    if rater_id:
        query = query.where(EvaluationAssignment.rater_id == rater_id)
    if relation:
        query = query.where(EvaluationAssignment.relation == relation.value)
    if status:
        query = query.where(EvaluationAssignment.status == status)
    query = query.order_by(EvaluationAssignment.created_at, EvaluationAssignment.assignment_id)
    managers = await _manager_visibility(session, cycle_id)
    return [_assignment_read(r, managers) for r in await session.scalars(query.limit(limit).offset(offset))]


def _may_read(principal: Principal, org: OrgView, row: EvaluationAssignment, managers: ManagerPeerVisibility) -> bool:
    """The rater; for others, one anonymous review is HR's to read, or the reviewee's managers' and
    heads' when the template attributes peer reviews to them; other reviews follow row scoping."""
    me = principal.acting_employee_id
    if me is not None and row.rater_id == me:
        return True
    if me is not None and row.reviewee_id == me:
        return row.relation not in ANONYMOUS_RELATIONS
    if row.relation in ANONYMOUS_RELATIONS and not principal.has(Role.HR_ADMIN):
        attributed = managers == ManagerPeerVisibility.ATTRIBUTED and principal.has(Role.MANAGER, Role.DEPT_HEAD)
        return attributed and oversees(org, me, row.reviewee_id)
    return org.can_see(principal, row.reviewee_id)


async def get_assignment(
    *, session: AsyncSession, cycle_id: str, assignment_id: str, principal: Principal
) -> ReviewDetail:
    row = await session.get(EvaluationAssignment, assignment_id)
    org = await org_for(session, cycle_id)
    managers = await _manager_visibility(session, cycle_id)
    # 404 for rows the caller may not read, so their existence is not revealed either.
    if row is None or row.cycle_id != cycle_id or not _may_read(principal, org, row, managers):
        raise DomainError(f"assignment {assignment_id!r} not found in cycle {cycle_id!r}", status_code=404)
    return ReviewDetail(
        **_assignment_read(row, managers).model_dump(),
        ratings=json.loads(row.ratings) if row.ratings else None,
        comment=row.comment,
    )


async def submit_review(
    *,
    session: AsyncSession,
    cycle_id: str,
    assignment_id: str,
    principal: Principal,
    ratings: dict[str, float],
    comment: str | None,
) -> AssignmentRead:
    row = await session.get(EvaluationAssignment, assignment_id)
    if row is None or row.cycle_id != cycle_id or row.rater_id != principal.acting_employee_id:
        raise DomainError(
            f"assignment {assignment_id!r} not found among your reviews in cycle {cycle_id!r}", status_code=404
        )
    if row.status == "submitted":
        raise DomainError("this review was already submitted", status_code=409)
    await ensure_open(session, cycle_id, "submitting reviews")
    config = await load_config(session, cycle_id)
    competencies = {c.competency_id: c for c in config.competencies}
    unknown = sorted(set(ratings) - set(competencies))
    if unknown:
        raise DomainError(f"unknown competencies {unknown}; the form has {sorted(competencies)}", field="ratings")
    missing = sorted(set(competencies) - set(ratings))
    if missing:
        raise DomainError(f"rate every competency; missing {missing}", field="ratings")
    for key, value in ratings.items():
        c = competencies[key]
        if not c.scale_min <= value <= c.scale_max:
            raise DomainError(
                f"rating of {key!r} must be between {c.scale_min:g} and {c.scale_max:g}, got {value:g}",
                field=f"ratings.{key}",
            )
    row.ratings = json.dumps(ratings, sort_keys=True)
    row.comment = comment
    row.status = "submitted"
    row.submitted_at = now()
    # No rater id in the event: it travels to systems that may show it to the reviewee.
    payload = ReviewSubmittedPayload(relation=row.relation, reviewee_id=row.reviewee_id)
    emit_event(session, type="ReviewSubmitted", cycle_id=cycle_id, subject_id=assignment_id, payload=payload)
    await session.commit()
    return _assignment_read(row, config.peer_visibility_for_managers)


async def review_summary(
    *, session: AsyncSession, cycle_id: str, employee_id: str, principal: Principal
) -> ReviewSummary:
    """Aggregates per relation for one reviewee; anonymous relations only at the threshold, and then
    over whole batches of it (``anonymity.counted``), so successive reads never isolate one rater."""
    org = await org_for(session, cycle_id)
    if employee_id not in org.participants or not org.can_see(principal, employee_id):
        raise DomainError(f"employee {employee_id!r} not found in cycle {cycle_id!r}", status_code=404)
    config = await load_config(session, cycle_id)
    rows = (
        await session.scalars(
            select(EvaluationAssignment).where(
                EvaluationAssignment.cycle_id == cycle_id, EvaluationAssignment.reviewee_id == employee_id
            )
        )
    ).all()
    relations = []
    for relation in Relation:
        of_relation = [r for r in rows if r.relation == relation.value]
        submitted = [r for r in of_relation if r.status == "submitted" and r.ratings]
        anonymous = relation.value in ANONYMOUS_RELATIONS
        threshold = config.peer_anonymity_threshold if anonymous else 1
        batch = counted(submitted, threshold)
        summary = RelationSummary(
            relation=relation, assigned=len(of_relation), submitted=len(submitted), counted=len(batch), visible=False
        )
        if not batch:
            reason = f"shown once at least {threshold} ratings are submitted" if anonymous else "not submitted yet"
            relations.append(summary.model_copy(update={"hidden_reason": reason}))
            continue
        submitted = batch
        visibility = config.peer_visibility if anonymous and principal.acting_employee_id == employee_id else None
        if visibility == PeerVisibility.COUNTS_ONLY:
            reason = "this cycle shows you how many were submitted, not their content"
            relations.append(summary.model_copy(update={"hidden_reason": reason}))
            continue
        parsed = [json.loads(r.ratings or "{}") for r in submitted]
        scores = [s for s in (review_score(p, config) for p in parsed) if s is not None]
        per_competency = {
            c.competency_id: round(statistics.fmean([p[c.competency_id] for p in parsed if c.competency_id in p]), 4)
            for c in config.competencies
            if any(c.competency_id in p for p in parsed)
        }
        comments = sorted(r.comment for r in submitted if r.comment)
        shown = {
            "visible": True,
            "score": round(statistics.fmean(scores), 4) if scores else None,
            "competencies": per_competency,
            "comments": [] if visibility == PeerVisibility.AGGREGATE else comments,
        }
        relations.append(summary.model_copy(update=shown))
    return ReviewSummary(
        cycle_id=cycle_id,
        employee_id=employee_id,
        anonymity_threshold=config.peer_anonymity_threshold,
        peer_visibility=config.peer_visibility,
        peer_visibility_for_managers=config.peer_visibility_for_managers,
        relations=relations,
    )
