"""A three-step approval chain with a late approver, end to end on the time-skipping server.

The chain comes from the cycle's template (manager -> department head -> HR, each step with its own
deadline); the ``open_goal_setting`` handoff gives it to goals; an employee of Domestic Sales
submits a goal and her manager approves step 1. The head of Domestic Sales then lets step 2 lie:
the real ``DepartmentCycleWorkflow`` (real ``check_pending`` / ``send_notification`` activities,
``contracts.timing.decide_items``) reminds her a day before the step's deadline, escalates to the
next one up her line (the head of Sales) at the deadline, and to HR a day later, each once and by
e-mail. The head of Sales, refused before the deadline, approves once it has passed; HR approves
step 3, and the goal is approved.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from contracts.cycle import DeadlinePolicy, Stage
from contracts.evaluation import evaluation_config
from contracts.goals import ApprovalChain, ApprovalChains, ApprovalRole, ApprovalStep
from contracts.handoffs import CycleRef
from contracts.workflow_io import DepartmentCycleInput
from services.common.settings import Settings
from tests.integration.test_goals_helpers import goal_body
from tests.integration.test_reminders_reach_people import EMAIL, Stack, reminder_stack
from tests.support import auth
from workflows.activities import CycleActivities
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.handoffs import HandoffActivities

CHAIN = ApprovalChains(
    individual=ApprovalChain(
        steps=[
            ApprovalStep(approver=ApprovalRole.MANAGER, deadline_days=2),
            ApprovalStep(
                approver=ApprovalRole.DEPARTMENT_HEAD,
                deadline_days=2,
                reminder_days_before=[1],
                escalate_days_after_deadline=1,
            ),
            ApprovalStep(approver=ApprovalRole.HR, deadline_days=3),
        ]
    )
)
EMPLOYEE, MANAGER, HEAD, HEAD_ABOVE = "E0164", "E0163", "E0162", "E0155"
"""Helena Kaya (Domestic Sales), her manager Pavel Okafor, Carla Hoffmann (head of Domestic Sales) and
Anna Nguyen (head of Sales, above Carla)."""
CARLA = "carla.hoffmann@northwind.example"


def person(stack: Stack, employee_id: str, department_id: str, *roles: str) -> dict[str, str]:
    return auth(stack.settings, *roles, sub=employee_id, employee_id=employee_id, department_id=department_id)


async def test_a_late_step_is_reminded_escalated_up_the_line_then_to_hr_and_the_chain_completes(
    settings: Settings, database_url: str, time_skipping_env: Any
) -> None:
    async with reminder_stack(settings, database_url, goals=True) as stack:
        cycle_id = await stack.start_cycle(["sales"], approval_chains=CHAIN)
        handoffs = HandoffActivities(client=stack.services, scoring_config=evaluation_config)
        await ActivityEnvironment().run(
            handoffs.open_goal_setting, CycleRef(cycle_id=cycle_id, department_ids=["sales"])
        )
        goals = f"/v1/cycles/{cycle_id}"
        # goals keeps the workflow's time (the session's time-skipping server may be days ahead of the wall clock)
        opened = (await time_skipping_env.get_current_time()).astimezone(UTC)
        stack.apps["goals"].state.clock = lambda: opened
        read = await stack.call("GET", "goals", f"{goals}/settings", headers=stack.hr())
        assert ApprovalChains.model_validate(read.json()["approval_chains"]) == CHAIN  # from the template

        for path, body in (
            ("objectives", {"objective_id": "grow", "name": "Grow revenue", "perspective": "financial"}),
            ("goals", goal_body("company", 100, goal_id="orders", objective_id="grow")),
            (
                "goals",
                goal_body("department", 100, goal_id="domestic", parent_id="orders", department_id="sales-domestic"),
            ),
        ):
            made = await stack.call("POST", "goals", f"{goals}/{path}", json=body, headers=stack.hr())
            assert made.status_code == 201, made.text
        helena = person(stack, EMPLOYEE, "sales-domestic", "employee")
        body = goal_body("individual", 100, goal_id="helena-orders", employee_id=EMPLOYEE, parent_id="domestic")
        created = await stack.call("POST", "goals", f"{goals}/goals", json=body, headers=helena)
        assert created.status_code == 201, created.text
        submitted = await stack.call("POST", "goals", f"{goals}/goals/helena-orders/submit", headers=helena)
        assert submitted.status_code == 200, submitted.text
        pavel = person(stack, MANAGER, "sales-domestic", "manager", "employee")
        step1 = await stack.call("POST", "goals", f"{goals}/goals/helena-orders/approve", headers=pavel)
        assert step1.status_code == 200 and step1.json()["approval"]["current_step"] == 2, step1.text
        waiting = step1.json()["approval"]["steps"][1]
        assert (waiting["approver_id"], waiting["escalate_to_id"]) == (HEAD, HEAD_ABOVE)
        deadline = datetime.fromisoformat(waiting["deadline"])

        # the head of Sales may not take the step before its deadline; the refusal says when she may
        anna = person(stack, HEAD_ABOVE, "sales", "dept_head", "manager", "employee")
        early = await stack.call("POST", "goals", f"{goals}/goals/helena-orders/approve", headers=anna)
        assert early.status_code == 403
        assert early.json()["detail"] == (
            f"goal 'helena-orders' waits at step 2 of 3 (department_head): it is approved or returned by "
            f"'{HEAD}' (or, after its deadline {deadline.isoformat()}, by '{HEAD_ABOVE}')"
        )

        # the department's goal-setting part runs to its deadline, a day and a half after the step's
        client = time_skipping_env.client
        queue = f"approvals-{uuid.uuid4().hex[:8]}"
        activities = CycleActivities(handoffs=handoffs)
        start = (await time_skipping_env.get_current_time()).astimezone(UTC)
        async with Worker(client, task_queue=queue, workflows=[DepartmentCycleWorkflow], activities=activities.all()):
            outcome = await client.execute_workflow(
                DepartmentCycleWorkflow.run,
                DepartmentCycleInput(
                    cycle_id=cycle_id,
                    department_id="sales",
                    stage=Stage.GOAL_SETTING,
                    deadline=start + timedelta(days=3, hours=12),
                    reminder_days_before=[],
                    escalate_to_hr_after_days=0,
                    deadline_policy=DeadlinePolicy.CLOSE,
                    extension_days=1,
                    recheck_hours=24,
                    parent_workflow_id="none",
                ),
                id=f"approvals-{cycle_id}",
                task_queue=queue,
            )
        assert outcome.outcome == "closed_at_deadline"  # colleagues still without goals

        recorded = (
            await stack.call("GET", "cycles", "/v1/notifications", params={"cycle_id": cycle_id}, headers=stack.hr())
        ).json()
        steps = sorted((n for n in recorded if n["kind"].startswith("approval_")), key=lambda n: n["created_at"])
        assert [n["kind"] for n in steps] == ["approval_reminder", "approval_escalation", "approval_escalation_hr"]
        to = [{r["id"] for r in n["recipients"]} for n in steps]
        assert to[0] == {HEAD} and to[1] == {HEAD_ABOVE, HEAD}
        assert to[2] == {"hr", HEAD}
        assert all("helena-orders" in n["message"] for n in steps)
        assert f"waiting for {HEAD}" in steps[1]["message"]
        by_kind = {n["kind"]: n for n in recorded}
        assert {"escalation_head", "escalation_hr"} <= set(by_kind)  # the stage's own escalation, as before
        mailed = [m for m in stack.smtp.messages if "approval" in str(m["data"])]
        assert len(mailed) == 3 and all(CARLA in str(m["rcpt"]) for m in mailed)
        assert EMAIL[HEAD_ABOVE] in str(mailed[1]["rcpt"])

        # past the deadline the head of Sales acts for Carla; HR takes the last step; the goal is approved
        now = (await time_skipping_env.get_current_time()).astimezone(UTC)
        assert now > deadline
        stack.apps["goals"].state.clock = lambda: now
        step2 = await stack.call("POST", "goals", f"{goals}/goals/helena-orders/approve", headers=anna)
        assert step2.status_code == 200 and step2.json()["approval"]["current_step"] == 3, step2.text
        assert step2.json()["approval"]["steps"][1]["acted_by"] == HEAD_ABOVE
        hr = auth(stack.settings, "hr_admin", sub="hr-bob")
        step3 = await stack.call("POST", "goals", f"{goals}/goals/helena-orders/approve", headers=hr)
        assert step3.status_code == 200 and step3.json()["status"] == "approved", step3.text
        pending = await stack.call(
            "GET", "goals", f"{goals}/pending", params={"department_id": "sales"}, headers=stack.hr()
        )
        assert "helena-orders" not in {i["item_id"] for i in pending.json()["pending"]}
