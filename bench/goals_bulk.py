"""Bulk assignment benchmark: one goal to all N people of a cycle through the goals service, on PostgreSQL.

    python -m bench.goals_bulk [--employees 100000] [--departments 1000] [--rounds 3] [--database-url URL]

Per round, on a fresh database, through the real goals app in process (auth, audit log, metrics):

1. **snapshot**: ``PUT /v1/cycles/{id}/participants`` with the cycle's frozen org of N people (what
   the cycles service sends every stage service when a cycle starts); baseline: an asyncpg ``COPY``
   of the same rows into the same tables.
2. a strategy: one objective, one company KPI, one KPI of the root department;
3. **bulk assignment**: ``POST /goals/bulk-assign`` of one goal template to the root department
   with its whole tree (everyone), aligned to the root KPI; baseline: an asyncpg ``COPY`` of the
   very rows it wrote (read back from the table) into an empty, migrated ``goals_goal``;
4. **again**: the same call, which must skip everyone (idempotent on ``template_key``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg

from bench.support import (
    Report,
    SyntheticOrg,
    asyncpg_dsn,
    bearer,
    bench_arguments,
    bench_settings,
    console,
    fresh_database,
    in_process,
    postgres_server,
    synthetic_org,
    timed,
)
from services.goals.app import create_app

__all__ = ["ROOT_KPI", "install_strategy", "main"]

ROOT_KPI = "d-root-output"
TEMPLATE_KEY = "bench-everyone"


def kpi(level: str, goal_id: str, **fields: Any) -> dict[str, Any]:
    """A valid KPI body (higher is better, 0 -> 100) with overrides."""
    return {
        "goal_id": goal_id,
        "level": level,
        "name": f"{level} KPI {goal_id}",
        "kind": "kpi",
        "unit": "units",
        "direction": "higher_is_better",
        "aggregation": "sum",
        "start_value": 0,
        "target_value": 100,
        "metric": "production.output_units",
        "update_frequency_hours": 24,
        "weight": 100,
    } | fields


async def install_strategy(client: Any, headers: dict[str, str], cycle_id: str, org: SyntheticOrg) -> None:
    """An objective, a company KPI and the root department's KPI: what every individual goal aligns to."""
    base = f"/v1/cycles/{cycle_id}"
    objective = {"objective_id": "grow", "name": "Grow output", "perspective": "financial"}
    bodies = [
        ("/objectives", objective),
        ("/goals", kpi("company", "c-output", objective_id="grow", data_owner_department_id=org.root_id)),
        (
            "/goals",
            kpi(
                "department",
                ROOT_KPI,
                parent_id="c-output",
                department_id=org.root_id,
                data_owner_department_id=org.root_id,
            ),
        ),
    ]
    for path, body in bodies:
        response = await client.post(base + path, json=body, headers=headers)
        response.raise_for_status()


def bulk_request(org: SyntheticOrg) -> dict[str, Any]:
    template = kpi("individual", "unused", parent_id=ROOT_KPI, data_owner_department_id=org.root_id, name="Output")
    for key in ("goal_id", "level"):
        template.pop(key)
    return {
        "template_key": TEMPLATE_KEY,
        "template": template,
        "department_id": org.root_id,
        "include_subdepartments": True,
    }


async def timed_copy(source_url: str, target_url: str, table: str, where: str) -> tuple[float, int]:
    """Read the rows first (not timed), then time only the COPY into the target."""
    source = await asyncpg.connect(asyncpg_dsn(source_url))
    try:
        records = await source.fetch(f"SELECT * FROM {table} WHERE {where}")
    finally:
        await source.close()
    columns = list(records[0].keys()) if records else []
    rows = [tuple(r) for r in records]

    async def write() -> None:
        target = await asyncpg.connect(asyncpg_dsn(target_url))
        try:
            await target.copy_records_to_table(table, records=rows, columns=columns)
        finally:
            await target.close()

    seconds, _ = await timed(write)
    return seconds, len(rows)


async def one_round(server: str, org: SyntheticOrg, report: Report) -> None:
    cycle_id = "bench-cycle"
    settings = bench_settings(await fresh_database(server))
    hr = bearer(settings, "hr_admin", sub="bench-hr")
    snapshot = org.snapshot(cycle_id).model_dump_json().encode()
    request = bulk_request(org)
    async with in_process(create_app, settings) as client:

        async def put_snapshot() -> dict[str, Any]:
            response = await client.put(
                f"/v1/cycles/{cycle_id}/participants",
                content=snapshot,
                headers=hr | {"Content-Type": "application/json"},
            )
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

        async def assign() -> dict[str, Any]:
            response = await client.post(f"/v1/cycles/{cycle_id}/goals/bulk-assign", json=request, headers=hr)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

        seconds, accepted = await timed(put_snapshot)
        report.figures[0].ours.append(seconds)
        report.check("the snapshot holds every person", accepted["participants"] == len(org.people))
        await install_strategy(client, hr, cycle_id, org)
        seconds, first = await timed(assign)
        report.figures[1].ours.append(seconds)
        report.check("bulk assignment created one goal per person", first["created"] == len(org.people))
        seconds, again = await timed(assign)
        report.figures[2].ours.append(seconds)
        report.check(
            "the same assignment again skipped everyone", again["created"] == 0 and again["skipped"] == len(org.people)
        )

    baseline_url = await fresh_database(server)
    from services.common.migrations import upgrade

    await upgrade("goals", baseline_url)
    total = 0.0
    for table in ("goals_department", "goals_participant"):
        seconds, _ = await timed_copy(settings.database_url, baseline_url, table, f"cycle_id = '{cycle_id}'")
        total += seconds
    report.figures[0].baseline.append(total)
    seconds, copied = await timed_copy(
        settings.database_url,
        baseline_url,
        "goals_goal",
        f"cycle_id = '{cycle_id}' AND template_key = '{TEMPLATE_KEY}'",
    )
    report.figures[1].baseline.append(seconds)
    report.check("the COPY baseline wrote the same goals", copied == len(org.people))


async def run(args: argparse.Namespace) -> Report:
    out = console()
    org = synthetic_org(employees=args.employees, departments=args.departments, seed=args.seed)
    report = Report(
        title=f"Goals: snapshot and bulk assignment to {args.employees:,} people in {args.departments:,} departments",
        parameters={"employees": args.employees, "departments": args.departments, "rounds": args.rounds},
    )
    report.figure("PUT participants (the cycle's org snapshot)", baseline_name="asyncpg COPY of the same rows")
    report.figure("bulk-assign one goal to everyone", baseline_name="asyncpg COPY of the same goal rows")
    report.figure("the same bulk-assign again (all skipped)")
    async with postgres_server(args.database_url, out) as server:
        for number in range(1, args.rounds + 1):
            await one_round(server, org, report)
            out.print(
                f"round {number}: snapshot {report.figures[0].ours[-1]:.2f}s, bulk {report.figures[1].ours[-1]:.2f}s "
                f"(COPY {report.figures[1].baseline[-1]:.2f}s)"
            )
    return report.finish(out, args.json_path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return bench_arguments(argv, "bench.goals_bulk", __doc__)


def main(argv: Sequence[str] | None = None) -> int:
    return 0 if asyncio.run(run(parse_args(argv))).passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
