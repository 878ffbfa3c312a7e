"""What the evaluation modules share: the cycle's stored inputs and state, its org snapshot, the
guards every write applies, and the rows several reports read."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import ANONYMOUS, UNSCORED, EvaluationConfig, GoalKey, GoalKeys
from contracts.goals import ExportedGoal, GoalExport
from contracts.tracking import ProgressExport
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.common.participants import OrgView, load_org
from services.evaluation.models import (
    EvaluationAssignment,
    EvaluationCollaborationRating,
    EvaluationConfigVersion,
    EvaluationCycleState,
    EvaluationDepartment,
    EvaluationInput,
    EvaluationOutbox,
    EvaluationParticipant,
    EvaluationResult,
)
from services.evaluation.scoring import scale_value

__all__ = [
    "ANONYMOUS_RELATIONS",
    "SERVICE",
    "acting_sub",
    "as_utc",
    "as_utc_or_none",
    "collaboration_rows",
    "commit_unique",
    "cycle_state",
    "emit_event",
    "ensure_open",
    "heads_department",
    "latest_config_version",
    "load_actuals",
    "load_config",
    "load_goal_keys",
    "load_goals",
    "load_input",
    "now",
    "org_for",
    "parse_config",
    "read_model",
    "require_participant",
    "result_rows",
    "review_score",
    "store_config",
    "store_input",
    "submitted_reviews",
]

Read = TypeVar("Read", bound=BaseModel)

SERVICE = "evaluation"
ANONYMOUS_RELATIONS = frozenset(r.value for r in (*ANONYMOUS, *UNSCORED))
"""Relations whose raters are never named to the reviewee, and count only at the anonymity threshold."""


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def read_model(model: type[Read], row: object, **overrides: Any) -> Read:
    """``model`` from the row's attributes of the same names (read models name their fields after the
    columns), with ``overrides`` for the fields that need converting (timestamps back to UTC)."""
    values = {name: getattr(row, name) for name in model.model_fields if name not in overrides}
    return model.model_validate({**values, **overrides})


def emit_event(session: AsyncSession, *, type: str, cycle_id: str, subject_id: str, payload: BaseModel) -> None:
    """Add a domain event to the outbox in the caller's unit of work (the relay publishes it once committed);
    ``payload`` is the type's model in ``contracts.domain_events``, checked before it is written."""
    event = new_event(service=SERVICE, type=type, cycle_id=cycle_id, subject_id=subject_id, payload=payload)
    add_event(session, EvaluationOutbox, event)


async def commit_unique(session: AsyncSession, conflict: str) -> None:
    """Commit; a unique-constraint race becomes a 409 with ``conflict`` as the message."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise DomainError(conflict, status_code=409) from exc


# -- the cycle --------------------------------------------------------------------------------
async def org_for(session: AsyncSession, cycle_id: str) -> OrgView:
    return await load_org(session, EvaluationParticipant, EvaluationDepartment, cycle_id)


def require_participant(org: OrgView, employee_id: str, field: str) -> None:
    if employee_id not in org.participants:
        raise DomainError(f"{field} {employee_id!r} does not take part in this cycle", status_code=404, field=field)


def acting_sub(principal: Principal) -> str:
    """Who a change is recorded for: the person a service token acts for (``act.sub``), else the caller."""
    act = principal.claims.get("act")
    if isinstance(act, dict) and isinstance(act.get("sub"), str):
        return str(act["sub"])
    return principal.sub


def heads_department(principal: Principal, org: OrgView, department_id: str) -> bool:
    """HR, or a department head whose department (tree) holds ``department_id``."""
    if principal.has(Role.HR_ADMIN):
        return True
    if not principal.has(Role.DEPT_HEAD):
        return False
    me = principal.acting_employee_id
    departments = org.headed_by(me) if me else set()
    if principal.department_id:
        departments |= org.department_tree(principal.department_id)
    return department_id in departments


async def cycle_state(session: AsyncSession, cycle_id: str) -> EvaluationCycleState:
    state = await session.get(EvaluationCycleState, cycle_id)
    if state is None:
        state = EvaluationCycleState(cycle_id=cycle_id)
        session.add(state)
    return state


async def ensure_open(session: AsyncSession, cycle_id: str, what: str) -> EvaluationCycleState:
    """The cycle's state, or 409 once calibration is closed (``what`` says what is refused)."""
    state = await cycle_state(session, cycle_id)
    if state.calibration_closed_at is not None:
        raise DomainError(f"calibration of cycle {cycle_id!r} is closed; {what} is no longer possible", status_code=409)
    return state


# -- stored inputs ----------------------------------------------------------------------------
async def store_input(session: AsyncSession, *, cycle_id: str, kind: str, payload: str, actor: str) -> None:
    row = await session.get(EvaluationInput, (cycle_id, kind))
    if row is None:
        session.add(
            EvaluationInput(cycle_id=cycle_id, kind=kind, payload=payload, received_at=now(), received_by=actor)
        )
    else:
        row.payload, row.received_at, row.received_by = payload, now(), actor


async def load_input(session: AsyncSession, cycle_id: str, kind: str) -> str | None:
    row = await session.get(EvaluationInput, (cycle_id, kind))
    return None if row is None else row.payload


async def latest_config_version(session: AsyncSession, cycle_id: str) -> EvaluationConfigVersion | None:
    query = (
        select(EvaluationConfigVersion)
        .where(EvaluationConfigVersion.cycle_id == cycle_id)
        .order_by(EvaluationConfigVersion.version.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def store_config(
    session: AsyncSession, *, cycle_id: str, config: EvaluationConfig, source: str, actor: str
) -> EvaluationConfigVersion:
    """Make ``config`` the cycle's current configuration, as a new version (the same content as the
    newest version changes nothing and answers that version)."""
    payload = config.model_dump_json()
    latest = await latest_config_version(session, cycle_id)
    if latest is not None and latest.payload == payload:
        return latest
    version = EvaluationConfigVersion(
        cycle_id=cycle_id,
        version=(latest.version if latest else 0) + 1,
        source=source,
        payload=payload,
        changed_by=actor,
        changed_at=now(),
    )
    session.add(version)
    await store_input(session, cycle_id=cycle_id, kind="config", payload=payload, actor=actor)
    return version


async def load_config(session: AsyncSession, cycle_id: str) -> EvaluationConfig:
    payload = await load_input(session, cycle_id, "config")
    if payload is None:
        raise DomainError(
            f"cycle {cycle_id!r} has no scoring configuration yet; PUT /v1/cycles/{cycle_id}/config first",
            status_code=409,
        )
    return parse_config(payload, cycle_id)


def parse_config(payload: str, cycle_id: str) -> EvaluationConfig:
    """The stored configuration; 409 when it no longer passes the contract (one stored before the
    contract changed that a migration could not carry over), so HR sends it again."""
    try:
        return EvaluationConfig.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "config"
        raise DomainError(
            f"the stored scoring configuration of cycle {cycle_id!r} is no longer valid ({where}: {first['msg']}); "
            f"PUT /v1/cycles/{cycle_id}/config again",
            status_code=409,
        ) from exc


async def load_goals(session: AsyncSession, cycle_id: str) -> list[ExportedGoal]:
    payload = await load_input(session, cycle_id, "goals")
    return [] if payload is None else GoalExport.model_validate_json(payload).goals


async def load_goal_keys(session: AsyncSession, cycle_id: str) -> dict[str, GoalKey]:
    payload = await load_input(session, cycle_id, "goal_keys")
    return {} if payload is None else {k.goal_id: k for k in GoalKeys.model_validate_json(payload).goals}


async def load_actuals(session: AsyncSession, cycle_id: str) -> dict[str, float | None]:
    payload = await load_input(session, cycle_id, "actuals")
    if payload is None:
        return {}
    return {a.kpi_id: a.actual_value for a in ProgressExport.model_validate_json(payload).actuals}


# -- rows several reports read ----------------------------------------------------------------
async def submitted_reviews(session: AsyncSession, cycle_id: str) -> list[EvaluationAssignment]:
    query = select(EvaluationAssignment).where(
        EvaluationAssignment.cycle_id == cycle_id, EvaluationAssignment.status == "submitted"
    )
    return list((await session.scalars(query)).all())


def review_score(ratings: Mapping[str, float], config: EvaluationConfig) -> float | None:
    """One review on the rating scale: the mean of its competency ratings, each mapped from its own
    scale, weighted by the competencies' weights when the configuration gives them."""
    scale = config.rating_scale
    rated = [c for c in config.competencies if c.competency_id in ratings]
    if not rated:
        return None
    values = [scale_value(ratings[c.competency_id], c.scale_min, c.scale_max, scale.min, scale.max) for c in rated]
    weights = [c.weight if c.weight is not None else 1.0 for c in rated]
    if sum(weights) <= 0:
        return statistics.fmean(values)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


async def collaboration_rows(session: AsyncSession, cycle_id: str) -> list[EvaluationCollaborationRating]:
    query = select(EvaluationCollaborationRating).where(EvaluationCollaborationRating.cycle_id == cycle_id)
    return list((await session.scalars(query)).all())


async def result_rows(session: AsyncSession, cycle_id: str) -> list[EvaluationResult]:
    query = select(EvaluationResult).where(EvaluationResult.cycle_id == cycle_id).order_by(EvaluationResult.employee_id)
    return list((await session.scalars(query)).all())
