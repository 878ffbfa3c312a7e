"""Approval chains through the goals API: a three-step chain end to end, separation of duties with
clear refusals, the waiting step's approver and deadline for the workflow, and every act audited
and published as a typed domain event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from contracts.domain_events import GoalApprovalStepCompleted, GoalApproved, GoalSubmitted, parse_domain_event
from contracts.goals import ApprovalChain, ApprovalChains, ApprovalRole, ApprovalStep
from services.common.settings import Settings
from services.goals.models import GoalsOutbox
from tests.integration.test_goals_helpers import GoalsWorld, goal_body, seeded
from tests.support import auth

THREE_STEPS = ApprovalChains(
    individual=ApprovalChain(
        steps=[
            ApprovalStep(approver=ApprovalRole.MANAGER, deadline_days=3, reminder_days_before=[2, 1]),
            ApprovalStep(approver=ApprovalRole.DEPARTMENT_HEAD, deadline_days=2, escalate_days_after_deadline=2),
            ApprovalStep(approver=ApprovalRole.HR, deadline_days=5),
        ]
    ),
    department=ApprovalChain(
        steps=[ApprovalStep(approver=ApprovalRole.DEPARTMENT_HEAD), ApprovalStep(approver=ApprovalRole.HR)]
    ),
)


async def _with_chains(w: GoalsWorld, chains: ApprovalChains = THREE_STEPS) -> None:
    body = {"period_start": "2026-01-01", "period_end": "2026-12-31", "approval_chains": chains.model_dump(mode="json")}
    response = await w.client.put(f"{w.base}/settings", json=body, headers=w.hr())
    assert response.status_code == 200, response.text
    assert ApprovalChains.model_validate(response.json()["approval_chains"]) == chains


def _approval(response: Any) -> dict[str, Any]:
    approval: dict[str, Any] = response.json()["approval"]
    return approval


async def _queue(w: GoalsWorld, department_id: str = "sales") -> dict[str, dict[str, Any]]:
    response = await w.client.get(f"{w.base}/approvals", params={"department_id": department_id}, headers=w.hr())
    assert response.status_code == 200, response.text
    return {item["goal_id"]: item for item in response.json()["items"]}


async def _pending_owner(w: GoalsWorld, goal_id: str, department_id: str = "sales") -> str | None:
    response = await w.client.get(f"{w.base}/pending", params={"department_id": department_id}, headers=w.hr())
    items = [i for i in response.json()["pending"] if i["item_id"] == goal_id]
    assert len(items) == 1, response.json()
    owner: str | None = items[0]["owner_id"]
    return owner


async def test_three_step_chain_runs_end_to_end_with_one_person_per_step(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        await _with_chains(w)
        submitted = await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        approval = _approval(submitted)
        assert (approval["round"], approval["current_step"], approval["submitted_by"]) == (1, 1, "s1")
        assert [(s["approver_role"], s["approver_id"], s["state"]) for s in approval["steps"]] == [
            ("manager", "s_mgr", "waiting"),
            ("department_head", None, "not_open"),
            ("hr", None, "not_open"),
        ]
        # the workflow's view: the step's approver owns the pending item, with the step's own deadline
        assert await _pending_owner(w, "i_s1") == "s_mgr"
        item = (await _queue(w))["i_s1"]
        opened = datetime.fromisoformat(item["opened_at"])
        assert (item["step"], item["steps"], item["approver_id"], item["escalate_to_id"]) == (1, 3, "s_mgr", "s_head")
        assert datetime.fromisoformat(item["deadline"]) == opened + timedelta(days=3)
        assert [datetime.fromisoformat(r) for r in item["reminders"]] == [
            opened + timedelta(days=1),
            opened + timedelta(days=2),
        ]
        assert datetime.fromisoformat(item["escalate_to_hr_at"]) == opened + timedelta(days=4)

        # nobody approves their own goal, nor a step other than the one waiting for them
        own = await w.post("/goals/i_s1/approve", None, w.as_("s1", "manager", "employee"))
        assert (
            own.status_code == 403
            and own.json()["detail"] == "you cannot approve your own goal 'i_s1'; your manager does"
        )
        early = await w.post("/goals/i_s1/approve", None, w.head("s_head"))
        assert early.status_code == 403
        assert early.json()["detail"] == (
            "goal 'i_s1' waits at step 1 of 3 (manager): it is approved or returned by 's_mgr' (or, after its "
            f"deadline {(opened + timedelta(days=3)).isoformat()}, by 's_head')"
        )

        step1 = await w.post("/goals/i_s1/approve", {"comment": "fine by me"}, w.manager("s_mgr"), expect=200)
        assert step1.json()["status"] == "submitted" and _approval(step1)["current_step"] == 2
        assert await _pending_owner(w, "i_s1") == "s_head"
        again = await w.post("/goals/i_s1/approve", None, w.manager("s_mgr"))
        assert again.status_code == 403
        assert again.json()["detail"] == (
            "you approved step 1 of goal 'i_s1', so you cannot approve step 2 too: each step needs a different "
            "person; step 2 of 3 (department_head) is for 's_head'"
        )

        step2 = await w.post("/goals/i_s1/approve", None, w.head("s_head"), expect=200)
        assert step2.json()["status"] == "submitted" and _approval(step2)["current_step"] == 3
        assert await _pending_owner(w, "i_s1") is None  # HR's step: any hr_admin
        assert (await _queue(w))["i_s1"]["approver_role"] == "hr"

        done = await w.post("/goals/i_s1/approve", None, w.hr(), expect=200)
        approval = _approval(done)
        assert done.json()["status"] == "approved" and approval["current_step"] is None
        assert approval["steps"][0]["comment"] == "fine by me"
        assert [(s["state"], s["acted_by"]) for s in approval["steps"]] == [
            ("approved", "s_mgr"),
            ("approved", "s_head"),
            ("approved", "hr"),
        ]
        assert [(e["action"], e["step"], e["actor"]) for e in approval["history"]] == [
            ("submit", None, "s1"),
            ("approve", 1, "s_mgr"),
            ("approve", 2, "s_head"),
            ("approve", 3, "hr"),
        ]
        assert "i_s1" not in await _queue(w)
        # the console reads the same from the goal
        read = await w.client.get(f"{w.base}/goals/i_s1", headers=w.as_("s1"))
        assert _approval(read)["steps"][1]["acted_by"] == "s_head"

        # every act is a typed domain event in the outbox, and in the audit log
        async with w.client.app.state.sessions() as session:  # type: ignore[attr-defined]
            rows = (await session.scalars(select(GoalsOutbox).order_by(GoalsOutbox.id))).all()
        events = [parse_domain_event(r.payload) for r in rows if r.key == w.cycle_id]
        assert [type(e) for e in events] == [
            GoalSubmitted,
            GoalApprovalStepCompleted,
            GoalApprovalStepCompleted,
            GoalApproved,
        ]
        assert [(e.payload.step, e.payload.next_step, e.payload.next_approver_id) for e in events] == [  # type: ignore[attr-defined]
            (None, 1, "s_mgr"),
            (1, 2, "s_head"),
            (2, 3, None),
            (3, None, None),
        ]
        audit = await w.client.get(
            "/v1/audit",
            params={"entity": "goals_goal", "entity_id": f"{w.cycle_id}/i_s1", "action": "update"},
            headers=w.hr(),
        )
        actors = [e["actor"] for e in reversed(audit.json()["items"])]
        assert actors == ["s1", "s_mgr", "s_head", "hr"]


async def test_a_step_whose_person_is_excluded_goes_up_the_line(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        await _with_chains(w)
        # s_mgr's manager is s_head, who is also the department head: the head step goes up to the CEO
        await w.create(
            goal_body("individual", 100, goal_id="i_mgr", employee_id="s_mgr", parent_id="d_sales_orders"),
            w.manager("s_mgr"),
        )
        await w.post("/goals/i_mgr/submit", None, w.manager("s_mgr"), expect=200)
        await w.post("/goals/i_mgr/approve", None, w.head("s_head"), expect=200)
        item = (await _queue(w))["i_mgr"]
        assert (item["step"], item["approver_role"], item["approver_id"]) == (2, "department_head", "ceo")
        refused = await w.post("/goals/i_mgr/approve", None, w.head("s_head"))
        assert refused.status_code == 403 and "each step needs a different person" in refused.json()["detail"]
        await w.post("/goals/i_mgr/approve", None, w.head("ceo"), expect=200)

        # department KPIs: head -> HR; the head submitted, so the head above approves the first step
        await w.post("/goals/d_sales_rev/submit", None, w.head("s_head"), expect=200)
        assert await _pending_owner(w, "d_sales_rev") == "ceo"
        own = await w.post("/goals/d_sales_rev/approve", None, w.head("s_head"))
        assert own.status_code == 403
        assert own.json()["detail"] == (
            "you submitted department KPI 'd_sales_rev', so you cannot approve it: nobody approves what they "
            "submitted; step 1 of 2 (department_head) is for 'ceo'"
        )
        await w.post("/goals/d_sales_rev/approve", None, w.head("ceo"), expect=200)
        approved = await w.post("/goals/d_sales_rev/approve", None, w.hr(), expect=200)
        assert approved.json()["status"] == "approved"


async def test_hr_cannot_approve_what_it_submitted_and_a_return_restarts_the_chain(
    settings: Settings, database_url: str
) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        await _with_chains(w)
        # an hr_admin who submits on someone's behalf is still the submitter
        await w.post("/goals/i_s2/submit", None, w.hr(), expect=200)
        refused = await w.post("/goals/i_s2/approve", None, w.hr())
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("you submitted goal 'i_s2', so you cannot approve it")
        await w.post("/goals/i_s2/approve", None, w.manager("s_mgr"), expect=200)
        returned = await w.post("/goals/i_s2/return", {"comment": "too low"}, w.head("s_head"), expect=200)
        assert returned.json()["status"] == "returned"
        assert [s["state"] for s in _approval(returned)["steps"]] == ["approved", "returned", "not_open"]
        resubmitted = await w.post("/goals/i_s2/submit", None, w.as_("s2"), expect=200)
        approval = _approval(resubmitted)
        assert (approval["round"], approval["current_step"], approval["steps"][0]["approver_id"]) == (2, 1, "s_mgr")
        # in the new round the manager who approved before may approve again (it is another submission)
        await w.post("/goals/i_s2/approve", None, w.manager("s_mgr"), expect=200)
        # a second hr_admin still approves the hr step of a goal the first one never touched
        await w.post("/goals/i_s2/approve", None, w.head("s_head"), expect=200)
        await w.post("/goals/i_s2/approve", None, auth(settings, "hr_admin", sub="hr-2"), expect=200)


async def test_chains_are_validated_and_default_to_one_step(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        defaults = (await w.client.get(f"{w.base}/settings", headers=w.hr())).json()["approval_chains"]
        assert [s["approver"] for s in defaults["individual"]["steps"]] == ["manager"]
        assert [s["approver"] for s in defaults["department"]["steps"]] == ["department_head"]
        twice = {
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
            "approval_chains": {"individual": {"steps": [{"approver": "manager"}, {"approver": "manager"}]}},
        }
        response = await w.client.put(f"{w.base}/settings", json=twice, headers=w.hr())
        assert response.status_code == 422
        assert "each step needs a different approver" in response.text
        early = {
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
            "approval_chains": {
                "individual": {"steps": [{"approver": "manager", "deadline_days": 2, "reminder_days_before": [3]}]}
            },
        }
        response = await w.client.put(f"{w.base}/settings", json=early, headers=w.hr())
        assert response.status_code == 422 and "before the step opens" in response.text
        # a department's own chain wins for its goals (and its sub-departments')
        await w.build_tree()
        await _with_chains(w, ApprovalChains(departments={"finance": {"individual": {"steps": [{"approver": "hr"}]}}}))
        await w.post("/goals/i_f1/submit", None, w.as_("f1"), expect=200)
        assert (await _queue(w, "finance"))["i_f1"]["approver_role"] == "hr"
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        assert (await _queue(w))["i_s1"]["approver_id"] == "s_mgr"
