"""A cycle's appeal window and HR resolution deadline: set by the workflow from the template, or by HR.

HR's change makes a new version with source ``hr``; the workflow's pushes (``push_template_settings``)
apply only while the source is still the template, so an HR edit is never overwritten.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.feedback import FeedbackSettings
from contracts.templates import SettingsPushed, SettingsSource, SettingsVersion
from services.feedback.models import FeedbackCycle
from services.feedback.schemas import CycleConfigUpdate
from services.feedback.service.release import get_cycle

__all__ = ["configure_cycle", "push_template_settings", "settings_version"]

_SETTINGS = tuple(FeedbackSettings.model_fields)


def settings_version(cycle: FeedbackCycle) -> SettingsVersion:
    return SettingsVersion.of(
        cycle.settings_version, cycle.settings_source, cycle.settings_changed_by, cycle.settings_changed_at
    )


def _apply(cycle: FeedbackCycle, values: dict[str, int], *, source: SettingsSource, actor: str, now: datetime) -> None:
    """Set ``values`` as a new version from ``source`` when they change anything."""
    if all(getattr(cycle, name) == value for name, value in values.items()):
        return
    for name, value in values.items():
        setattr(cycle, name, value)
    cycle.settings_version = (cycle.settings_version or 0) + 1
    cycle.settings_source, cycle.settings_changed_by, cycle.settings_changed_at = source.value, actor, now


async def configure_cycle(
    *, session: AsyncSession, cycle_id: str, changes: CycleConfigUpdate, actor: str, now: datetime
) -> FeedbackCycle:
    """HR's change: the appeal window and HR deadline become HR's (a new version); the calibration
    marker is state, not a setting."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    given = changes.model_dump(exclude_none=True)
    if "calibration_closed" in given:
        cycle.calibration_closed = given.pop("calibration_closed")
    _apply(cycle, {k: v for k, v in given.items() if k in _SETTINGS}, source=SettingsSource.HR, actor=actor, now=now)
    await session.commit()
    return cycle


async def push_template_settings(
    *, session: AsyncSession, cycle_id: str, settings: FeedbackSettings, actor: str, now: datetime
) -> SettingsPushed:
    """The workflow's push of the template's settings: applied unless HR has changed them."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    if cycle.settings_source == SettingsSource.HR.value:
        return settings_version(cycle).pushed(applied=False)
    _apply(cycle, settings.model_dump(), source=SettingsSource.TEMPLATE, actor=actor, now=now)
    pushed = settings_version(cycle).pushed(applied=True)
    await session.commit()
    return pushed
