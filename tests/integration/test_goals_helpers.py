"""Shared helpers for the goals API tests (no tests here): a small org and a strategy tree.

The org (cycle-local, pushed through ``PUT /v1/cycles/{id}/participants``)::

    executive (head ceo)
    ├── sales   (head s_head)  s_head -> s_mgr -> s1, s2   (s1, s2: "Sales Representative")
    └── finance (head f_head)  f_head -> f1                (f1: "Accountant")
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from contracts.org import DepartmentRef, OrgSnapshot, Participant
from services.common.settings import Settings
from services.goals.app import create_app
from tests.support import api_client, auth

__all__ = ["GoalsWorld", "goal_body", "make_snapshot", "seeded"]

# employee_id -> (department, manager, job title)
PEOPLE: dict[str, tuple[str, str | None, str]] = {
    "ceo": ("executive", None, "Chief Executive Officer"),
    "s_head": ("sales", "ceo", "Head of Sales"),
    "s_mgr": ("sales", "s_head", "Sales Manager"),
    "s1": ("sales", "s_mgr", "Sales Representative"),
    "s2": ("sales", "s_mgr", "Sales Representative"),
    "f_head": ("finance", "ceo", "Head of Finance"),
    "f1": ("finance", "f_head", "Accountant"),
}


def make_snapshot(cycle_id: str, extra: list[Participant] | None = None) -> OrgSnapshot:
    return OrgSnapshot(
        cycle_id=cycle_id,
        departments=[
            DepartmentRef(department_id="executive", name="Executive", head_employee_id="ceo"),
            DepartmentRef(department_id="sales", name="Sales", parent_id="executive", head_employee_id="s_head"),
            DepartmentRef(department_id="finance", name="Finance", parent_id="executive", head_employee_id="f_head"),
        ],
        participants=[
            Participant(
                employee_id=emp, name=emp.upper(), department_id=dep, manager_id=mgr, job_title=title, grade="G5"
            )
            for emp, (dep, mgr, title) in PEOPLE.items()
        ]
        + (extra or []),
    )


def goal_body(level: str, weight: float, **fields: Any) -> dict[str, Any]:
    """A valid KPI body (higher is better, 0 -> 100) with overrides."""
    body: dict[str, Any] = {
        "level": level,
        "name": f"{level} goal",
        "kind": "kpi",
        "unit": "count",
        "direction": "higher_is_better",
        "aggregation": "sum",
        "start_value": 0,
        "target_value": 100,
        "metric": "sales.orders",
        "data_owner_department_id": "sales",
        "update_frequency_hours": 24,
        "weight": weight,
    }
    body.update(fields)
    return body


class GoalsWorld:
    """A client on a fresh database with the org seeded, plus token helpers."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings, cycle_id: str) -> None:
        self.client = client
        self.settings = settings
        self.cycle_id = cycle_id
        self.base = f"/v1/cycles/{cycle_id}"

    def hr(self) -> dict[str, str]:
        return auth(self.settings, "hr_admin", sub="hr")

    def as_(self, employee_id: str, *roles: str) -> dict[str, str]:
        department = PEOPLE[employee_id][0] if employee_id in PEOPLE else None
        return auth(
            self.settings, *(roles or ("employee",)), sub=employee_id, employee_id=employee_id, department_id=department
        )

    def head(self, employee_id: str) -> dict[str, str]:
        return self.as_(employee_id, "dept_head", "manager", "employee")

    def manager(self, employee_id: str) -> dict[str, str]:
        return self.as_(employee_id, "manager", "employee")

    async def post(self, path: str, body: Any, headers: dict[str, str], expect: int | None = None) -> Any:
        response = await self.client.post(self.base + path, json=body, headers=headers)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    async def create(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.post("/goals", body, headers or self.hr(), expect=201)
        result: dict[str, Any] = response.json()
        return result

    async def build_tree(self) -> dict[str, str]:
        """Objective -> company KPIs (60/40) -> sales + finance KPIs -> one goal each for s1, s2, f1."""
        hr = self.hr()
        await self.post(
            "/objectives", {"objective_id": "grow", "name": "Grow revenue", "perspective": "financial"}, hr, expect=201
        )
        await self.create(
            goal_body("company", 60, goal_id="c_rev", objective_id="grow", metric="sales.revenue", unit="EUR")
        )
        await self.create(
            goal_body(
                "company",
                40,
                goal_id="c_cost",
                objective_id="grow",
                metric="finance.cost",
                data_owner_department_id="finance",
                direction="lower_is_better",
                start_value=100,
                target_value=80,
                unit="EUR",
            )
        )
        await self.create(
            goal_body(
                "department",
                70,
                goal_id="d_sales_rev",
                parent_id="c_rev",
                department_id="sales",
                metric="sales.revenue",
                unit="EUR",
            )
        )
        await self.create(
            goal_body("department", 30, goal_id="d_sales_orders", parent_id="c_rev", department_id="sales")
        )
        await self.create(
            goal_body(
                "department",
                100,
                goal_id="d_fin_cost",
                parent_id="c_cost",
                department_id="finance",
                metric="finance.cost",
                data_owner_department_id="finance",
                direction="lower_is_better",
                start_value=100,
                target_value=80,
                unit="EUR",
                contributing_department_ids=["sales"],
            )
        )
        for emp in ("s1", "s2"):
            await self.create(
                goal_body("individual", 100, goal_id=f"i_{emp}", employee_id=emp, parent_id="d_sales_orders")
            )
        await self.create(
            goal_body(
                "individual",
                100,
                goal_id="i_f1",
                employee_id="f1",
                parent_id="d_fin_cost",
                metric="finance.cost",
                data_owner_department_id="finance",
                direction="lower_is_better",
                start_value=100,
                target_value=80,
            )
        )
        return {"objective": "grow"}


@asynccontextmanager
async def seeded(settings: Settings, database_url: str) -> AsyncIterator[GoalsWorld]:
    cycle_id = f"cy-{uuid.uuid4().hex[:8]}"
    async with api_client(create_app, settings, database_url) as client:
        world = GoalsWorld(client, settings, cycle_id)
        response = await client.put(
            f"{world.base}/participants",
            content=make_snapshot(cycle_id).model_dump_json(),
            headers={**world.hr(), "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        yield world
