"""The inputs the workflow pushes (goals, KPI actuals, the configuration), each an idempotent replace
refused once calibration is closed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import EvaluationConfig
from contracts.goals import Direction, ExportedGoal, GoalExport
from contracts.tracking import ProgressExport
from services.common.errors import DomainError
from services.evaluation.schemas import InputAccepted
from services.evaluation.service.records import ensure_open, load_config, store_input

__all__ = ["get_config", "put_actuals", "put_config", "put_goals"]


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


async def put_config(*, session: AsyncSession, cycle_id: str, config: EvaluationConfig, actor: str) -> EvaluationConfig:
    """Store the configuration; the contract has already checked the formula against the grammar."""
    await ensure_open(session, cycle_id, "changing the scoring configuration")
    await store_input(session, cycle_id=cycle_id, kind="config", payload=config.model_dump_json(), actor=actor)
    await session.commit()
    return config


async def get_config(*, session: AsyncSession, cycle_id: str) -> EvaluationConfig:
    return await load_config(session, cycle_id)
