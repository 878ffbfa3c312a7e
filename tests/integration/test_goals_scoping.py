"""The scoping matrix: for every role one allowed and one forbidden read and write.

Convention: an object outside the caller's scope is 404; a visible object the caller may not change,
or an endpoint their role may not call, is 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.settings import Settings
from tests.integration.test_goals_helpers import GoalsWorld, goal_body, seeded
from tests.support import auth


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None
    cycle_id: str | None = None  # another cycle than the world's: cycle isolation

    async def status(self, w: GoalsWorld, headers: dict[str, str]) -> int:
        base = f"/v1/cycles/{self.cycle_id}" if self.cycle_id else w.base
        response = await w.client.request(self.method, base + self.path, json=self.body, headers=headers)
        if self.cycle_id and response.status_code == 404:
            assert "in cycle 'other-cycle'" in response.json()["detail"]
        return response.status_code


def dept_kpi(department: str) -> Call:
    return Call("POST", "/goals", goal_body("department", 5, department_id=department, parent_id="c_rev"))


async def test_scoping_matrix(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        hr_as_f1 = auth(settings, "hr_admin", sub="hr-f1", employee_id="f1", department_id="finance")
        ops = auth(settings, "ops", sub="ops")
        system = auth(settings, "department_system", sub="mes", department_id="sales")
        # (role, headers, allowed read, forbidden read, allowed write, forbidden write) with expected codes
        matrix: list[tuple[str, dict[str, str], Call, Call, int, Call, Call, int]] = [
            (
                "hr_admin",
                w.hr(),
                Call("GET", "/goals/i_f1"),
                Call("GET", "/goals/i_f1", cycle_id="other-cycle"),
                404,
                Call("POST", "/objectives", {"name": "Delight customers", "perspective": "customer"}),
                Call("POST", "/goals", goal_body("individual", 10, employee_id="ghost", parent_id="d_fin_cost")),
                404,
            ),
            (
                "dept_head",
                w.head("s_head"),
                Call("GET", "/goals/i_s1"),
                Call("GET", "/goals/i_f1"),
                404,
                dept_kpi("sales"),
                dept_kpi("finance"),
                403,
            ),
            (
                "manager",
                w.manager("s_mgr"),
                Call("GET", "/goals/i_s2"),
                Call("GET", "/goals/i_f1"),
                404,
                Call("PATCH", "/goals/i_s2", {"description": "agreed in 1:1"}),
                Call("PATCH", "/goals/d_sales_rev", {"description": "not mine"}),
                403,
            ),
            (
                "employee",
                w.as_("s1"),
                Call("GET", "/goals/i_s1"),
                Call("GET", "/goals/i_s2"),
                404,
                Call("PATCH", "/goals/i_s1", {"description": "my plan"}),
                Call("PATCH", "/goals/i_s2", {"description": "meddling"}),
                404,
            ),
        ]
        await w.client.put(
            f"{w.base}/settings", json={"period_start": "2026-01-01", "period_end": "2026-12-31"}, headers=w.hr()
        )
        results = {}
        for role, headers, read_ok, read_no, read_no_code, write_ok, write_no, write_no_code in matrix:
            results[role] = (
                await read_ok.status(w, headers),
                await read_no.status(w, headers),
                await write_ok.status(w, headers),
                await write_no.status(w, headers),
            )
            assert results[role][0] == 200, (role, "allowed read")
            assert results[role][1] == read_no_code, (role, "forbidden read", results[role])
            assert results[role][2] in (200, 201), (role, "allowed write", results[role])
            assert results[role][3] == write_no_code, (role, "forbidden write", results[role])
        # ops reads the exports and writes nothing: since issue 14 not even the actuals, which only
        # the workflow's hr_admin service token pushes
        assert await Call("GET", "/kpi-catalog").status(w, ops) == 200
        assert await Call("GET", "/goals/i_s1", cycle_id="other-cycle").status(w, ops) == 404
        empty = {"cycle_id": w.cycle_id, "as_of": "2026-06-30T00:00:00Z", "actuals": []}
        assert await Call("PUT", "/progress", empty).status(w, ops) == 403
        assert await Call("POST", "/objectives", {"name": "x", "perspective": "customer"}).status(w, ops) == 403
        # hr_admin is also an employee: they cannot approve their own goal
        await w.post("/goals/i_f1/submit", None, hr_as_f1, expect=200)
        own = await w.post("/goals/i_f1/approve", None, hr_as_f1)
        assert own.status_code == 403
        # department systems publish metrics; they have no access to goals at all
        assert await Call("GET", "/tree").status(w, system) == 403
        assert await Call("GET", "/goals/d_sales_rev").status(w, system) == 403
        assert await dept_kpi("sales").status(w, system) == 403
        assert await Call("PUT", "/participants", {}).status(w, system) == 403


async def test_lists_and_reports_are_scoped(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()

        async def individual_ids(headers: dict[str, str]) -> list[str]:
            page = (await w.client.get(f"{w.base}/goals", params={"level": "individual"}, headers=headers)).json()
            return sorted(g["employee_id"] for g in page["items"])

        assert await individual_ids(w.hr()) == ["f1", "s1", "s2"]
        assert await individual_ids(w.head("s_head")) == ["s1", "s2"]
        assert await individual_ids(w.head("f_head")) == ["f1"]
        assert await individual_ids(w.manager("s_mgr")) == ["s1", "s2"]
        assert await individual_ids(w.as_("s2")) == ["s2"]
        # department and company KPIs are context everyone sees
        everyone = (await w.client.get(f"{w.base}/goals", params={"level": "department"}, headers=w.as_("s2"))).json()
        assert everyone["total"] == 3
        weights = (await w.client.get(f"{w.base}/weights", headers=w.as_("s2"))).json()
        assert [s["owner"] for s in weights["sums"] if s["level"] == "individual"] == ["s2"]
        # an employee cannot create a goal for a colleague, nor a company KPI
        other = await w.post(
            "/goals", goal_body("individual", 10, employee_id="s1", parent_id="d_sales_orders"), w.as_("s2")
        )
        assert other.status_code == 404
        company = await w.post("/goals", goal_body("company", 10, objective_id="grow"), w.as_("s2"))
        assert company.status_code == 403 and company.json()["detail"] == "only hr_admin can create company KPIs"
        # machine exports are not for people
        assert (await w.client.get(f"{w.base}/goal-export", headers=w.head("s_head"))).status_code == 403
