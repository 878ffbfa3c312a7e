"""Recorded histories must replay against the current workflow code.

A change to running workflow logic without ``workflow.patched`` makes these
fail with a non-determinism error. Re-record (only for intentional, patched
changes) with ``TANDEM_RECORD_HISTORIES=1 pytest tests/integration/test_review_cycle_time_skipping.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.review_cycle import ReviewCycleWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))
HISTORY_TEXT = {p.stem: p.read_text() for p in HISTORIES}


def test_histories_are_checked_in() -> None:
    names = {p.stem for p in HISTORIES}
    recorded = {"review_cycle", "department_goal_setting_production", "department_tracking_production"}
    # v1: before the progress-pulled-by-query patch (children signalled the parent); v2: after it.
    assert recorded <= names and {f"v2_{n}" for n in recorded} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays_without_nondeterminism(path: Path) -> None:
    replayer = Replayer(
        workflows=[ReviewCycleWorkflow, DepartmentCycleWorkflow], data_converter=pydantic_data_converter
    )
    history = WorkflowHistory.from_json(path.stem, HISTORY_TEXT[path.stem])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
