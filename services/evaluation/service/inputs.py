"""The inputs the workflow pushes (goals, their keys, KPI actuals, the configuration), each an
idempotent replace refused once calibration is closed.

The configuration is versioned: HR's changes (``PUT /config``) and the template's pushes (``PUT
/config/template``) each make a new version with their source; a template push never replaces a
configuration HR has changed.

Once the cycle's review assignments exist, raters have been told how their reviews will be shown:
a change of the anonymity threshold, or of a visibility setting towards showing more, is refused
(``anonymity.locked_change``): HR's with a 409 naming the field, the template's push by leaving
the stored configuration as it is."""

from __future__ import annotations

import json

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import EvaluationConfig, GoalKeys
from contracts.goals import Direction, ExportedGoal, GoalExport
from contracts.templates import SettingsPushed, SettingsSource, SettingsVersion
from contracts.tracking import ProgressExport
from services.common.errors import DomainError
from services.evaluation.anonymity import locked_change
from services.evaluation.models import EvaluationAssignment, EvaluationConfigVersion
from services.evaluation.schemas import ConfigVersionRead, InputAccepted
from services.evaluation.service.records import (
    as_utc,
    ensure_open,
    latest_config_version,
    load_config,
    load_input,
    parse_config,
    store_config,
    store_input,
)

__all__ = [
    "config_versions",
    "get_config",
    "push_template_config",
    "put_actuals",
    "put_config",
    "put_goal_keys",
    "put_goals",
]


def _check_cycle(url_cycle_id: str, body_cycle_id: str) -> None:
    if url_cycle_id != body_cycle_id:
        raise DomainError(
            f"the body is for cycle {body_cycle_id!r} but the URL names {url_cycle_id!r}", field="cycle_id"
        )


def _validate_goal(goal: ExportedGoal, index: int) -> None:
    sign = 1.0 if goal.direction == Direction.HIGHER_IS_BETTER else -1.0
    where = f"goals[{index}] ({goal.goal_id})"
    better = "above" if sign > 0 else "below"
    if sign * (goal.target_value - goal.start_value) < 0:
        raise DomainError(
            f"{where}: target_value must not be {'below' if sign > 0 else 'above'} start_value "
            f"for a {goal.direction.value} goal",
            field=f"goals.{index}.target_value",
        )
    if goal.threshold_value is not None and sign * goal.threshold_value >= sign * goal.target_value:
        raise DomainError(
            f"{where}: threshold_value must be worse than target_value (for {goal.direction.value}, "
            f"the target must be {better} the threshold)",
            field=f"goals.{index}.threshold_value",
        )
    if goal.stretch_value is not None and sign * goal.stretch_value <= sign * goal.target_value:
        raise DomainError(
            f"{where}: stretch_value must be {better} target_value for a {goal.direction.value} goal",
            field=f"goals.{index}.stretch_value",
        )


async def put_goals(*, session: AsyncSession, cycle_id: str, export: GoalExport, actor: str) -> InputAccepted:
    _check_cycle(cycle_id, export.cycle_id)
    await ensure_open(session, cycle_id, "replacing goals")
    seen: set[str] = set()
    for index, goal in enumerate(export.goals):
        if goal.goal_id in seen:
            raise DomainError(f"goal id {goal.goal_id!r} appears twice", field=f"goals.{index}.goal_id")
        seen.add(goal.goal_id)
        _validate_goal(goal, index)
    await store_input(session, cycle_id=cycle_id, kind="goals", payload=export.model_dump_json(), actor=actor)
    await session.commit()
    return InputAccepted(cycle_id=cycle_id, kind="goals", items=len(export.goals))


async def put_actuals(*, session: AsyncSession, cycle_id: str, export: ProgressExport, actor: str) -> InputAccepted:
    _check_cycle(cycle_id, export.cycle_id)
    await ensure_open(session, cycle_id, "replacing actuals")
    await store_input(session, cycle_id=cycle_id, kind="actuals", payload=export.model_dump_json(), actor=actor)
    await session.commit()
    return InputAccepted(cycle_id=cycle_id, kind="actuals", items=len(export.actuals))


async def put_goal_keys(*, session: AsyncSession, cycle_id: str, keys: GoalKeys, actor: str) -> InputAccepted:
    """Which KPI template and metric each goal comes from (lookup tables name goals by them)."""
    _check_cycle(cycle_id, keys.cycle_id)
    await ensure_open(session, cycle_id, "replacing goal keys")
    await store_input(session, cycle_id=cycle_id, kind="goal_keys", payload=keys.model_dump_json(), actor=actor)
    await session.commit()
    return InputAccepted(cycle_id=cycle_id, kind="goal_keys", items=len(keys.goals))


async def _locked(session: AsyncSession, cycle_id: str, config: EvaluationConfig) -> tuple[str, str] | None:
    """What ``config`` would change that raters were promised, once review assignments exist."""
    payload = await load_input(session, cycle_id, "config")
    if payload is None:
        return None
    assigned = await session.scalar(select(exists().where(EvaluationAssignment.cycle_id == cycle_id)))
    return locked_change(parse_config(payload, cycle_id), config) if assigned else None


async def put_config(*, session: AsyncSession, cycle_id: str, config: EvaluationConfig, actor: str) -> EvaluationConfig:
    """HR's configuration, a new version with source 'hr' (the contract has checked the formula and
    every setting against the rating scale); template pushes no longer replace it."""
    await ensure_open(session, cycle_id, "changing the scoring configuration")
    locked = await _locked(session, cycle_id, config)
    if locked is not None:
        raise DomainError(locked[1], status_code=409, field=locked[0])
    await store_config(session, cycle_id=cycle_id, config=config, source=SettingsSource.HR.value, actor=actor)
    await session.commit()
    return config


def _version(row: EvaluationConfigVersion) -> SettingsVersion:
    return SettingsVersion.of(row.version, row.source, row.changed_by, as_utc(row.changed_at))


async def push_template_config(
    *, session: AsyncSession, cycle_id: str, config: EvaluationConfig, actor: str
) -> SettingsPushed:
    """The workflow's push of the template's configuration: applied unless HR has changed the
    configuration of this cycle (then HR's version stays and the answer says so)."""
    await ensure_open(session, cycle_id, "changing the scoring configuration")
    latest = await latest_config_version(session, cycle_id)
    hr_changed = await session.scalar(
        select(EvaluationConfigVersion.version)
        .where(EvaluationConfigVersion.cycle_id == cycle_id, EvaluationConfigVersion.source == SettingsSource.HR.value)
        .limit(1)
    )
    if latest is not None and (hr_changed is not None or await _locked(session, cycle_id, config) is not None):
        return _version(latest).pushed(applied=False)
    stored = await store_config(
        session, cycle_id=cycle_id, config=config, source=SettingsSource.TEMPLATE.value, actor=actor
    )
    pushed = _version(stored).pushed(applied=True)
    await session.commit()
    return pushed


async def config_versions(*, session: AsyncSession, cycle_id: str, limit: int, offset: int) -> list[ConfigVersionRead]:
    """The cycle's configurations, newest first, with who set them (template or HR) and when."""
    rows = await session.scalars(
        select(EvaluationConfigVersion)
        .where(EvaluationConfigVersion.cycle_id == cycle_id)
        .order_by(EvaluationConfigVersion.version.desc())
        .limit(limit)
        .offset(offset)
    )
    return [ConfigVersionRead(**_version(r).model_dump(), config=json.loads(r.payload)) for r in rows]


async def get_config(*, session: AsyncSession, cycle_id: str) -> EvaluationConfig:
    return await load_config(session, cycle_id)
