"""The approval chain over the API: allowed transitions, forbidden ones (409) and wrong actors (403/404)."""

from __future__ import annotations

from services.common.settings import Settings
from tests.integration.test_goals_helpers import goal_body, seeded
from tests.support import auth


async def test_individual_goal_round_trip_submit_return_resubmit_approve(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        submitted = await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        assert submitted.json()["status"] == "submitted"
        # submitted goals are locked for editing
        locked = await w.client.patch(f"{w.base}/goals/i_s1", json={"target_value": 120}, headers=w.as_("s1"))
        assert locked.status_code == 409
        assert locked.json()["detail"] == "goal 'i_s1' is submitted; it can be changed only while draft or returned"
        returned = await w.post("/goals/i_s1/return", {"comment": "raise the target"}, w.manager("s_mgr"), expect=200)
        assert returned.json()["status"] == "returned" and returned.json()["status_comment"] == "raise the target"
        edited = await w.client.patch(f"{w.base}/goals/i_s1", json={"target_value": 120}, headers=w.as_("s1"))
        assert edited.status_code == 200 and edited.json()["target_value"] == 120
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        approved = await w.post("/goals/i_s1/approve", None, w.manager("s_mgr"), expect=200)
        assert approved.json()["status"] == "approved" and approved.json()["status_changed_by"] == "s_mgr"


async def test_forbidden_transitions_are_409_with_the_reason(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        mgr = w.manager("s_mgr")
        cases = [
            ("/goals/i_s1/approve", None, mgr, "cannot approve a goal that is draft; only submitted goals can be"),
            (
                "/goals/i_s1/return",
                {"comment": "x"},
                mgr,
                "cannot return a goal that is draft; only submitted goals can be",
            ),
        ]
        for path, body, headers, reason in cases:
            response = await w.post(path, body, headers)
            assert response.status_code == 409, response.text
            assert response.json()["detail"] == f"goal 'i_s1': {reason}"
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        again = await w.post("/goals/i_s1/submit", None, w.as_("s1"))
        assert again.status_code == 409
        assert again.json()["detail"] == (
            "goal 'i_s1': cannot submit a goal that is submitted; only draft or returned goals can be"
        )
        await w.post("/goals/i_s1/approve", None, mgr, expect=200)
        for path, body in (("/goals/i_s1/approve", None), ("/goals/i_s1/return", {"comment": "late"})):
            response = await w.post(path, body, mgr)
            assert response.status_code == 409 and "that is approved" in response.json()["detail"]
        response = await w.post("/goals/i_s1/submit", None, w.as_("s1"))
        assert response.status_code == 409 and "that is approved" in response.json()["detail"]
        # returning needs a comment
        await w.post("/goals/i_s2/submit", None, w.as_("s2"), expect=200)
        no_comment = await w.post("/goals/i_s2/return", {"comment": ""}, mgr)
        assert no_comment.status_code == 422 and "comment" in no_comment.json()["detail"]


async def test_who_may_act_in_the_chain(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        # only the employee submits their goal; the department head sees it but may not submit it
        response = await w.post("/goals/i_s1/submit", None, w.head("s_head"))
        assert response.status_code == 403
        assert response.json()["detail"] == "only employee 's1' (or hr_admin) can submit their goal 'i_s1'"
        # a colleague does not even see it
        assert (await w.post("/goals/i_s1/submit", None, w.as_("s2"))).status_code == 404
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        # the employee cannot approve (role) and the department head is not the direct manager
        assert (await w.post("/goals/i_s1/approve", None, w.as_("s1"))).status_code == 403
        response = await w.post("/goals/i_s1/approve", None, w.head("s_head"))
        assert response.status_code == 403
        assert (
            response.json()["detail"] == "goal 'i_s1' of employee 's1' is approved or returned by their manager 's_mgr'"
        )
        # a manager of another department cannot see it
        assert (await w.post("/goals/i_s1/approve", None, w.head("f_head"))).status_code == 404
        # nobody approves their own goal, even a manager: their own manager does
        await w.create(
            goal_body("individual", 100, goal_id="i_mgr", employee_id="s_mgr", parent_id="d_sales_orders"),
            w.manager("s_mgr"),
        )
        await w.post("/goals/i_mgr/submit", None, w.manager("s_mgr"), expect=200)
        own = await w.post("/goals/i_mgr/approve", None, w.manager("s_mgr"))
        assert own.status_code == 403 and "your own goal" in own.json()["detail"]
        await w.post("/goals/i_mgr/approve", None, w.head("s_head"), expect=200)
        # hr_admin may approve anyone's goal (e.g. the CEO's, who has no manager)
        await w.post("/goals/i_s1/approve", None, w.hr(), expect=200)


async def test_department_kpis_are_approved_by_the_head_above_whoever_submitted(
    settings: Settings, database_url: str
) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        # a plain manager cannot submit department KPIs, nor can another department's head
        assert (await w.post("/goals/d_sales_rev/submit", None, w.manager("s_mgr"))).status_code == 403
        response = await w.post("/goals/d_sales_rev/submit", None, w.head("f_head"))
        assert response.status_code == 403
        assert response.json()["detail"] == "only the head of department 'sales' (or hr_admin) can submit its KPIs"
        await w.post("/goals/d_sales_rev/submit", None, w.head("s_head"), expect=200)
        assert (await w.post("/goals/d_sales_rev/approve", None, w.head("f_head"))).status_code == 403
        # the head submitted it, so the head does not approve it: the head above (the CEO's executive) does
        own = await w.post("/goals/d_sales_rev/approve", None, w.head("s_head"))
        assert own.status_code == 403
        assert own.json()["detail"] == (
            "you submitted department KPI 'd_sales_rev', so you cannot approve it: nobody approves what they "
            "submitted; step 1 of 1 (department_head) is for 'ceo'"
        )
        approved = await w.post("/goals/d_sales_rev/approve", None, w.head("ceo"), expect=200)
        assert approved.json()["status"] == "approved"
        # company KPIs: hr_admin only, and another hr_admin approves
        response = await w.post("/goals/c_rev/submit", None, w.head("s_head"))
        assert response.status_code == 403 and response.json()["detail"] == "only hr_admin can submit company KPIs"
        await w.post("/goals/c_rev/submit", None, w.hr(), expect=200)
        assert (await w.post("/goals/c_rev/approve", None, w.hr())).status_code == 403
        await w.post("/goals/c_rev/approve", None, auth(settings, "hr_admin", sub="hr-2"), expect=200)
