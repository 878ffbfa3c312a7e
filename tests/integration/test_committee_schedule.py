"""The committee's meeting cadence as a real Temporal Schedule (dev server): the committee service keeps
the Schedule in line with the stored cadence, and a firing opens a meeting with its generated agenda."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.worker import Worker

from contracts.committee import committee_schedule_id, meeting_workflow_id
from contracts.evaluation import evaluation_config
from services.committee.temporal import CommitteeWorkflows
from services.common.client import ServiceClient, ServiceTokens
from services.common.settings import Settings
from tests.integration.test_committee_api import (
    SERVICES,
    committee_stack,
    create_committee,
    hr,
    ok,
    seed_organisation,
)
from workflows.committee import CommitteeActivities, CommitteeMeetingWorkflow
from workflows.handoffs import HandoffActivities


async def test_the_cadence_is_a_schedule_that_opens_meetings(
    temporal_server: Any, settings: Settings, tmp_path: Path
) -> None:
    queue = f"committee-{uuid.uuid4()}"
    workflows = CommitteeWorkflows(address=temporal_server.address, task_queue=queue)
    client = await workflows.client()
    committee_id = f"perf-{uuid.uuid4().hex[:6]}"
    async with committee_stack(
        settings, tmp_path, f"sqlite+aiosqlite:///{tmp_path}/committee.db", workflows=workflows
    ) as stack:
        await seed_organisation(stack)
        first = datetime.now(UTC) + timedelta(days=1)
        cadence = {"first_meeting_at": first.isoformat(), "every_days": 30}
        created = await create_committee(stack, committee_id=committee_id, cadence=cadence)
        assert created["schedule_state"] == "active"

        handle = client.get_schedule_handle(committee_schedule_id(committee_id))
        described = await handle.describe()
        (interval,) = described.schedule.spec.intervals
        assert interval.every == timedelta(days=30)
        assert (first - datetime(1970, 1, 1, tzinfo=UTC) - interval.offset) % interval.every < timedelta(seconds=1)
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "CommitteeMeetingWorkflow" and action.id == meeting_workflow_id(committee_id)
        next_run = described.info.next_action_times[0]
        assert abs(next_run - first) < timedelta(seconds=1)

        tokens = ServiceTokens(stack.settings, sub="system:worker", roles=("hr_admin", "ops"))
        services = ServiceClient(http=stack.http, urls={s: f"http://{s}.test" for s in SERVICES}, tokens=tokens)
        activities = CommitteeActivities(handoffs=HandoffActivities(client=services, scoring_config=evaluation_config))
        h = hr(stack.settings)
        async with (
            Worker(client, task_queue=queue, workflows=[CommitteeMeetingWorkflow], activities=activities.all()),
            stack.client("committee") as committee,
        ):
            await handle.trigger()  # what the cadence does on the day
            meetings: list[dict[str, Any]] = []
            for _ in range(120):
                meetings = ok(await committee.get(f"/v1/committees/{committee_id}/meetings", headers=h))
                if meetings:
                    break
                await asyncio.sleep(0.25)
            (meeting,) = meetings
            assert meeting["cycle_id"] == stack.cycle_id
            assert {"kpi_off_track:sales", "stale_data:finance", "open_appeals"} <= {
                i["item_id"] for i in meeting["agenda"]
            }

            stopped = ok(
                await committee.put(f"/v1/committees/{committee_id}/cadence", json={"cadence": None}, headers=h)
            )
            assert stopped["schedule_state"] == "none" and stopped["cadence"] is None
            with pytest.raises(RPCError):
                await handle.describe()
