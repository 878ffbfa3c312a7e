"""A quarter of committee meetings on the time-skipping test server, against the real services in process.

The cycle's own workflow runs too (its stage handoffs are test doubles): sales never finishes goal
setting, so the stage is escalated, closed, and its exit blocked, which the cycles service's status
route reports and the agenda shows. Three monthly meetings open with agendas read from the seeded
data; decisions are chased by their workflows (reminders, then the chair, then HR, then weekly)
until their owners mark them done; the third meeting holds a calibration session whose adjustment
references it in evaluation's audit trail.

The time-skipping server implements no Schedules, so the test starts ``CommitteeMeetingWorkflow`` at
the times the committee's Schedule fires (``MeetingCadence.meeting_times``), with the Schedule's own
workflow ids; ``test_committee_schedule`` proves the Schedule on the dev server.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from contracts.committee import CommitteeMeetingInput, MeetingCadence, decision_workflow_id, meeting_workflow_id
from contracts.cycle import STAGE_ORDER, review_cycle_workflow_id
from contracts.evaluation import evaluation_config
from contracts.handoffs import Blocked, CycleRef, Handoff, KpiCatalogFrozen
from contracts.workflow_io import (
    NotificationRequest,
    NotificationResult,
    PendingQuery,
    PendingSummary,
    ReviewCycleInput,
    StageAction,
    StageActionResult,
    StageSchedule,
)
from services.committee.temporal import CommitteeWorkflows
from services.common.client import ServiceClient, ServiceTokens
from services.common.settings import Settings
from tests.integration.test_committee_api import (
    SERVICES,
    calibrate_in_session,
    committee_stack,
    create_committee,
    hr,
    ok,
    person,
    seed_organisation,
)
from tests.support import handoff_fakes
from workflows.activities import CycleActivities
from workflows.committee import CommitteeActivities, CommitteeDecisionWorkflow, CommitteeMeetingWorkflow
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.handoffs import HandoffActivities
from workflows.review_cycle import ReviewCycleWorkflow

DAY = timedelta(days=1)


class TimeSkippingGateway:
    """The cycles service's Temporal door, on the time-skipping server's client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def client(self) -> Any:
        return self._client


class Recorded:
    """Every notification with its workflow time, then sent on to the cycles service for real."""

    def __init__(self, cycle: CycleActivities, start: datetime) -> None:
        self.cycle = cycle
        self.start = start
        self.sent: list[tuple[str, str, float]] = []

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        result = await self.cycle.send_notification(request)
        if result.created:
            day = round((activity.info().scheduled_time - self.start) / DAY, 1)
            self.sent.append((request.idempotency_key, request.kind, day))
        return result

    def of(self, decision_id: str) -> list[tuple[str, float]]:
        prefix = f"committee/{decision_id}/"
        return [(kind, day) for key, kind, day in self.sent if key.startswith(prefix)]


@activity.defn(name="check_pending")
async def check_pending(query: PendingQuery) -> PendingSummary:
    """Goal setting: sales has approved one goal of four and never gets further; the others are done."""
    if query.department_id == "sales":
        return PendingSummary(total=4, done=1, pending=3, owner_ids=["alice", "bob", "carol"])
    return PendingSummary(total=2, done=2, pending=0)


@activity.defn(name="stage_action")
async def stage_action(action: StageAction) -> StageActionResult:
    return StageActionResult()


def blocked_freeze(name: str, _ref: CycleRef) -> Handoff | None:
    if name != "freeze_goals":
        return None
    blocked = Blocked(
        reason="3 goals of sales are still submitted",
        service="goals",
        unblock_by="dept_head",
        action="approve or return them",
    )
    return KpiCatalogFrozen(ready=False, blocked=blocked, detail=blocked.reason)


async def sleep_until(env: Any, moment: datetime) -> None:
    now = (await env.get_current_time()).astimezone(UTC)
    if moment > now:
        await env.sleep(moment - now)


async def test_a_quarter_of_committee_meetings(time_skipping_env: Any, settings: Settings, tmp_path: Path) -> None:
    env = time_skipping_env
    queue = f"committee-{uuid.uuid4()}"
    workflows = CommitteeWorkflows(address="time-skipping", client=env.client, task_queue=queue)
    committee_db = f"sqlite+aiosqlite:///{tmp_path}/committee.db"
    async with committee_stack(settings, tmp_path, committee_db, workflows=workflows) as stack:
        cycle_id = await seed_organisation(stack)
        stack.apps["cycles"].state.temporal = TimeSkippingGateway(env.client)
        start = (await env.get_current_time()).astimezone(UTC)
        tokens = ServiceTokens(stack.settings, sub="system:worker", roles=("hr_admin", "ops"))
        services = ServiceClient(http=stack.http, urls={s: f"http://{s}.test" for s in SERVICES}, tokens=tokens)
        handoffs = HandoffActivities(client=services, scoring_config=evaluation_config)
        notifications = Recorded(CycleActivities(handoffs=handoffs), start)
        policy = {"reminder_days_before": [3, 1], "escalate_to_hr_after_days": 2, "overdue_reminder_days": 7}
        await create_committee(stack, decision_policy=policy)
        async with (
            Worker(
                env.client,
                task_queue=queue,
                workflows=[
                    CommitteeMeetingWorkflow,
                    CommitteeDecisionWorkflow,
                    ReviewCycleWorkflow,
                    DepartmentCycleWorkflow,
                ],
                activities=[
                    *CommitteeActivities(handoffs=handoffs).all(),
                    notifications.send_notification,
                    check_pending,
                    stage_action,
                    *handoff_fakes(lambda _name, _ref: None, blocked_freeze),
                ],
            ),
            stack.client("committee") as committee,
            stack.client("evaluation") as evaluation,
            stack.client("cycles") as cycles,
        ):
            deadlines = dict(zip(STAGE_ORDER, (10, 200, 250, 280, 300), strict=True))
            await env.client.start_workflow(
                ReviewCycleWorkflow.run,
                ReviewCycleInput(
                    cycle_id=cycle_id,
                    department_ids=["hr", "sales", "finance", "it"],
                    schedule=[StageSchedule(stage=s, deadline=start + d * DAY) for s, d in deadlines.items()],
                    reminder_days_before=[7, 1],
                    escalate_to_hr_after_days=1,
                ),
                id=review_cycle_workflow_id(cycle_id),
                task_queue=queue,
            )
            h = hr(stack.settings)
            cadence = MeetingCadence(first_meeting_at=start + DAY, every_days=30)
            times = cadence.meeting_times(start + 90 * DAY)
            assert [round((t - start) / DAY) for t in times] == [1, 31, 61]

            async def meeting_at(at: datetime) -> dict[str, Any]:
                """What the Schedule does at ``at``: start the meeting workflow (its id: the Schedule's)."""
                await sleep_until(env, at)
                prepared = await env.client.execute_workflow(
                    CommitteeMeetingWorkflow.run,
                    CommitteeMeetingInput(committee_id="perf"),
                    id=f"{meeting_workflow_id('perf')}-{at.isoformat()}",
                    task_queue=queue,
                )
                assert prepared.created and prepared.cycle_id == cycle_id
                url = f"/v1/committees/perf/meetings/{prepared.meeting_id}"
                return dict(ok(await committee.get(url, headers=h)))

            # -- meeting 1 (day 1): goal setting in progress, sales lagging --------------------------------
            first = await meeting_at(times[0])
            items = [i["item_id"] for i in first["agenda"]]
            assert first["stage"] == "goal_setting" and first["sources"]["cycles.status"] == "ok"
            assert items[:2] == ["lagging_department:sales", "kpi_off_track:sales"]
            assert {"stale_data:finance", "weak_collaboration:finance|it", "open_appeals"} <= set(items)
            lagging = first["agenda"][0]
            assert lagging["evidence"] == {
                "stage": "goal_setting",
                "done": 1,
                "total": 4,
                "pending": 3,
                "lagging_share": 0.5,
            }
            assert lagging["title"]["zh_Hans"] == "Sales：目标设定阶段已完成1/4"

            async def decide(meeting: dict[str, Any], title: str, owner: str, due_day: int, item: str) -> str:
                body = {
                    "title": title,
                    "owner_id": owner,
                    "due_at": (start + due_day * DAY).isoformat(),
                    "agenda_item_id": item,
                }
                url = f"/v1/committees/perf/meetings/{meeting['meeting_id']}/decisions"
                decision = ok(await committee.post(url, json=body, headers=h), 201)
                assert decision["tracking"] == "workflow", decision["tracking"]
                return str(decision["decision_id"])

            feed = await decide(first, "Restore the finance report feed", "olga", 15, "stale_data:finance")
            sla = await decide(first, "Agree a response-time SLA with sales", "ivan", 20, "weak_collaboration:it|sales")

            # -- day 18: IT agreed the SLA; finance rates IT better since ----------------------------------
            await sleep_until(env, start + 18 * DAY)
            ivan = person(stack.settings, "ivan", "dept_head")
            ok(await committee.post(f"/v1/decisions/{sla}/status", json={"status": "done"}, headers=ivan))
            sla_outcome = await env.client.get_workflow_handle_for(
                CommitteeDecisionWorkflow.run, decision_workflow_id(sla)
            ).result()
            assert (sla_outcome.outcome.value, sla_outcome.reminders, sla_outcome.escalations) == ("done", 1, 0)
            better = {
                "rater_department_id": "finance",
                "rated_department_id": "it",
                "responsiveness": 3,
                "data_quality": 3,
                "reliability": 3,
            }
            ok(await evaluation.put(f"/v1/cycles/{cycle_id}/collaboration-ratings", json=better, headers=h))

            # -- meeting 2 (day 31): goal setting blocked, the feed decision overdue, finance/IT better ----
            second = await meeting_at(times[1])
            agenda = {i["item_id"]: i for i in second["agenda"]}
            blocked = agenda["blocked_stage:goal_setting"]
            assert blocked["evidence"] == {"stage": "goal_setting", "service": "goals", "unblock_by": "dept_head"}
            assert blocked["title"]["en"] == (
                "Stage goal setting cannot end: 3 goals of sales are still submitted "
                "(dept_head can unblock it: approve or return them)"
            )
            assert "lagging_department:sales" not in agenda  # the stage closed for sales at its deadline
            overdue = agenda[f"overdue_decision:{feed}"]
            assert overdue["evidence"]["owner_id"] == "olga"
            assert f"overdue_decision:{sla}" not in agenda
            pair = agenda["weak_collaboration:finance|it"]["evidence"]
            assert pair["previous_overall"] == pytest.approx(8 / 3, abs=1e-3)
            assert pair["overall"] == pytest.approx(3, abs=1e-3) and pair["change"] == pytest.approx(1 / 3, abs=1e-3)
            assert agenda["weak_collaboration:finance|it"]["title"]["en"].endswith("(up 0.33 since the last meeting)")

            # -- day 35: the feed is back ---------------------------------------------------------------------
            await sleep_until(env, start + 35 * DAY)
            olga = person(stack.settings, "olga")
            ok(await committee.post(f"/v1/decisions/{feed}/status", json={"status": "done"}, headers=olga))
            feed_outcome = await env.client.get_workflow_handle_for(
                CommitteeDecisionWorkflow.run, decision_workflow_id(feed)
            ).result()
            assert (feed_outcome.reminders, feed_outcome.escalations) == (5, 2)
            assert notifications.of(feed) == [
                ("decision_reminder", 12.0),
                ("decision_reminder", 14.0),
                ("decision_overdue", 15.0),
                ("decision_escalation_chair", 15.0),
                ("decision_escalation_hr", 17.0),
                ("decision_overdue", 24.0),
                ("decision_overdue", 31.0),
            ]
            assert notifications.of(sla) == [("decision_reminder", 17.0)]
            recorded = ok(
                await cycles.get(
                    "/v1/notifications", params={"cycle_id": cycle_id, "kind": "decision_escalation_chair"}, headers=h
                )
            )
            assert [(n["department_id"], [r["id"] for r in n["recipients"]]) for n in recorded] == [("it", ["sam"])]

            # -- meeting 3 (day 61): a calibration session on IT's strict ratings -------------------------
            third = await meeting_at(times[2])
            assert "rater_deviation:department:it" in {i["item_id"] for i in third["agenda"]}
            calibrate = await decide(third, "Calibrate IT's ratings", "hana", 75, "rater_deviation:department:it")
            session, adjusted, entry = await calibrate_in_session(
                stack, third["meeting_id"], calibrate, "strict rater; migration evidence"
            )
            assert entry["reason"] == (
                f"strict rater; migration evidence [committee perf, calibration session {session['session_id']}, "
                f"decision {calibrate}]"
            )
            assert adjusted["decision_id"] == calibrate
            meetings = ok(await committee.get("/v1/committees/perf/meetings", headers=h))
            assert [m["meeting_id"] for m in meetings] == [
                first["meeting_id"],
                second["meeting_id"],
                third["meeting_id"],
            ]
            # the calibration decision is tracked: nothing due yet at day 61
            progress = await env.client.get_workflow_handle(decision_workflow_id(calibrate)).query(
                CommitteeDecisionWorkflow.progress
            )
            assert progress.status is not None and progress.status.value == "open" and progress.reminders == 0
            # The decision workflow's history replays against the code (determinism).
            history = await env.client.get_workflow_handle(decision_workflow_id(feed)).fetch_history()
            replayer = Replayer(workflows=[CommitteeDecisionWorkflow], data_converter=pydantic_data_converter)
            await replayer.replay_workflow(history)
            for workflow_id in (decision_workflow_id(calibrate), review_cycle_workflow_id(cycle_id)):
                await env.client.get_workflow_handle(workflow_id).terminate("end of the test")
