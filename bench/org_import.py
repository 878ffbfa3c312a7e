"""Org import benchmark: the whole directory of N employees through the cycles service, on PostgreSQL.

    python -m bench.org_import [--employees 100000] [--departments 1000] [--rounds 3] [--database-url URL]

Per round, on a fresh database each time:

* **ours, HTTP**: ``POST /v1/org/import`` with the two CSV files (multipart) into the real cycles
  app in process (auth, body limit, audit log, metrics middleware): parsing, validation, the
  upsert of every row, one audit row per created row, the outbox event, the commit. Then the
  same file again (a no-op: nothing changed), then a file with 1% of people changed, 0.5% gone
  and 0.5% new.
* **ours, parse + validate only**: ``read_upload`` on the same bytes (no database).
* **baseline**: the same rows parsed with ``csv.reader`` and written with one asyncpg ``COPY``
  per table into the same (empty, migrated) tables: what PostgreSQL and a bare parser need
  for the same data. ``csv.reader`` alone is the baseline of the parse.

Checks: every row is in the table afterwards, the no-op import changed nothing, and the
changed import reports exactly the changed / new / gone counts.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench.support import (
    Report,
    SyntheticOrg,
    asyncpg_dsn,
    bench_arguments,
    console,
    fresh_database,
    postgres_server,
    synthetic_org,
    timed,
)
from services.common.auth import mint_token
from services.common.settings import DEV_JWT_SECRET, Settings
from services.cycles.app import create_app
from services.cycles.org_import import read_upload

__all__ = ["main"]

AIM_S = 10.0
BOUNDARY = "tandem-bench-boundary"


def multipart(org: SyntheticOrg) -> tuple[bytes, str]:
    """The two CSV files as one multipart body, as ``curl -F departments=@... -F employees=@...`` sends them."""
    parts = []
    for name, data in (("departments", org.departments_csv()), ("employees", org.employees_csv())):
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def changed_copy(org: SyntheticOrg) -> tuple[SyntheticOrg, dict[str, int]]:
    """1% of people get a new job title, 0.5% leave (people who manage nobody), 0.5% join the largest department."""
    managers = {p.manager_id for p in org.people} | set(org.heads.values())
    leaf = [i for i, p in enumerate(org.people) if p.employee_id not in managers]
    gone = set(leaf[100::200])
    changed = leaf[50::100]
    people = list(org.people)
    for i in changed:
        people[i] = replace(people[i], job_title=people[i].job_title + " II")
    department = max(org.by_department().items(), key=lambda item: len(item[1]))[0]
    joiners = [
        replace(
            org.people[0],
            employee_id=f"n{n:06d}",
            name=f"New {n}",
            email=f"n{n:06d}@example.com",
            department_id=department,
            manager_id=org.heads[department],
        )
        for n in range(len(gone))
    ]
    kept = [p for i, p in enumerate(people) if i not in gone]
    updated = SyntheticOrg(departments=org.departments, people=kept + joiners, root_id=org.root_id, heads=org.heads)
    return updated, {"updated": len(changed), "created": len(joiners), "deactivated": len(gone)}


async def copy_baseline(database_url: str, org: SyntheticOrg, departments_csv: bytes, employees_csv: bytes) -> int:
    """Parse with csv.reader and COPY both tables: the raw floor for the same rows."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        departments = [
            (r[0], r[1], r[2] or None, r[3], True, now)
            for r in list(csv.reader(io.StringIO(departments_csv.decode())))[1:]
        ]
        employees = [
            (r[0], r[1], r[2] or None, r[3], r[4] or None, r[5], r[6], r[7] or None, True, now)
            for r in list(csv.reader(io.StringIO(employees_csv.decode())))[1:]
        ]
        async with conn.transaction():
            await conn.copy_records_to_table(
                "cycles_department",
                records=departments,
                columns=["id", "name", "parent_id", "head_employee_id", "active", "updated_at"],
            )
            await conn.copy_records_to_table(
                "cycles_employee",
                records=employees,
                columns=[
                    "id", "name", "email", "department_id", "manager_id", "job_title", "grade", "salary_band",
                    "active", "updated_at",
                ],
            )  # fmt: skip
        return len(employees)
    finally:
        await conn.close()


async def count_rows(database_url: str, table: str, where: str = "") -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table} {where}"))
    finally:
        await conn.close()


async def migrate(database_url: str) -> None:
    from services.common.migrations import upgrade

    await upgrade("cycles", database_url)


async def one_round(
    server: str, org: SyntheticOrg, changed: SyntheticOrg, expected: dict[str, int], report: Report
) -> None:
    body, content_type = multipart(org)
    changed_body, _ = multipart(changed)
    settings = Settings(
        env="dev",
        jwt_secret=DEV_JWT_SECRET,
        database_url=await fresh_database(server),
        outbox_relay=False,
        cycle_workflows=False,
        tracking_consumer=False,
    )
    headers = {
        "Authorization": f"Bearer {mint_token(settings, sub='bench-hr', roles=['hr_admin'])}",
        "Content-Type": content_type,
    }
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:

            async def post(data: bytes) -> dict[str, Any]:
                response = await client.post("/v1/org/import", content=data, headers=headers)
                response.raise_for_status()
                result: dict[str, Any] = response.json()
                return result

            seconds, first = await timed(lambda: post(body))
            report.figures[0].ours.append(seconds)
            report.check("first import created every person", first["employees"]["created"] == len(org.people))
            seconds, again = await timed(lambda: post(body))
            report.figures[1].ours.append(seconds)
            report.check("the same file again changed nothing", again["changed"] is False)
            seconds, delta = await timed(lambda: post(changed_body))
            report.figures[2].ours.append(seconds)
            got = {k: delta["employees"][k] for k in expected}
            report.check(f"the changed file reported exactly {expected}", got == expected)
    stored = await count_rows(settings.database_url, "cycles_employee", "WHERE active")
    report.check("every listed person is active in cycles_employee", stored == len(changed.people))
    audit = await count_rows(settings.database_url, "cycles_audit")
    report.extra.setdefault("audit_rows_after_three_imports", []).append(audit)

    seconds, _ = await timed(lambda: asyncio.to_thread(read_upload, content_type=content_type, body=body))
    report.figures[3].ours.append(seconds)
    departments_csv, employees_csv = org.departments_csv(), org.employees_csv()
    seconds, _ = await timed(lambda: asyncio.to_thread(_csv_rows, employees_csv))
    report.figures[3].baseline.append(seconds)

    baseline_url = await fresh_database(server)
    await migrate(baseline_url)
    seconds, copied = await timed(lambda: copy_baseline(baseline_url, org, departments_csv, employees_csv))
    report.figures[0].baseline.append(seconds)
    report.check("the COPY baseline wrote every person", copied == len(org.people))


def _csv_rows(data: bytes) -> int:
    return sum(1 for _ in csv.reader(io.StringIO(data.decode())))


async def run(args: argparse.Namespace) -> Report:
    out = console()
    org = synthetic_org(employees=args.employees, departments=args.departments, seed=args.seed)
    changed, expected = changed_copy(org)
    body, _ = multipart(org)
    report = Report(
        title=f"Org import: {args.employees:,} employees, {args.departments:,} departments (PostgreSQL)",
        parameters={"employees": args.employees, "departments": args.departments, "rounds": args.rounds},
        extra={"body_bytes": len(body)},
    )
    report.figure("HTTP import, every row new", baseline_name="csv.reader + asyncpg COPY of the same rows", aim_s=AIM_S)
    report.figure("HTTP import, same file again (no-op)")
    report.figure(f"HTTP import, {expected['updated']:,} changed, {expected['created']:,} new, "
                  f"{expected['deactivated']:,} gone")  # fmt: skip
    report.figure("parse + validate (read_upload, no database)", baseline_name="csv.reader of employees.csv")
    out.print(f"[bold]{report.title}[/]: body {len(body) / 1e6:.1f} MB, {args.rounds} round(s)")
    async with postgres_server(args.database_url, out) as server:
        for number in range(1, args.rounds + 1):
            await one_round(server, org, changed, expected, report)
            out.print(
                f"round {number}: import {report.figures[0].ours[-1]:.2f}s, COPY {report.figures[0].baseline[-1]:.2f}s"
            )
    return report.finish(out, args.json_path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return bench_arguments(argv, "bench.org_import", __doc__)


def main(argv: Sequence[str] | None = None) -> int:
    return 0 if asyncio.run(run(parse_args(argv))).passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
