"""The workflow input a cycle starts with: deadlines from the template's stage plan."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from contracts.cycle import STAGE_ORDER, Stage
from contracts.templates import CycleTemplateSpec
from contracts.timing import build_cycle_input
from services.cycles.control import cycle_starts_at

SPEC = CycleTemplateSpec.model_validate(
    json.loads((Path(__file__).resolve().parents[2] / "docs/examples/sample_org/template.json").read_text())
)
START = datetime(2027, 1, 1, tzinfo=UTC)


def test_deadlines_follow_the_stage_plan_in_real_time() -> None:
    inp = build_cycle_input(cycle_id="c1", timing=SPEC.timing, department_ids=["sales"], starts_at=START)
    # goal setting: deadline 21 days after opening; tracking opens on day 31 and lasts 334 days.
    assert inp.deadline_of(Stage.GOAL_SETTING) == START + timedelta(days=21)
    assert inp.deadline_of(Stage.TRACKING) == START + timedelta(days=31 + 334)
    assert inp.deadline_of(Stage.EVALUATION) == START + timedelta(days=31 + 334 + 14)
    tracking = next(s for s in inp.schedule if s.stage == Stage.TRACKING)
    assert tracking.reminder_days_before == [14, 7, 1]
    assert inp.reminder_days_before == [7, 1] and inp.day_seconds == 86_400


def test_compressed_time_scales_every_duration_together() -> None:
    inp = build_cycle_input(cycle_id="c1", timing=SPEC.timing, department_ids=["sales"], starts_at=START, day_seconds=2)
    assert inp.deadline_of(Stage.GOAL_SETTING) == START + timedelta(seconds=42)
    assert inp.reminder_days_before == [7 * 2 / 86_400, 1 * 2 / 86_400]
    assert inp.escalate_to_hr_after_days == SPEC.escalate_days_after_deadline * 2 / 86_400
    deadlines = [inp.deadline_of(s) for s in STAGE_ORDER]
    assert deadlines == sorted(deadlines)


def test_a_cycle_started_after_its_period_began_keeps_its_stage_lengths() -> None:
    now = datetime(2027, 2, 10, 9, 30, tzinfo=UTC)
    assert cycle_starts_at(date(2027, 1, 1), now=now, day_seconds=86_400) == now
    assert cycle_starts_at(date(2027, 3, 1), now=now, day_seconds=86_400) == datetime(2027, 3, 1, tzinfo=UTC)
    assert cycle_starts_at(date(2027, 3, 1), now=now, day_seconds=2) == now
