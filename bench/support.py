"""What the data benchmarks share: a throwaway PostgreSQL, a synthetic organisation, timing and the report.

Every benchmark here measures our code and, in the same run and on the same data, a raw
baseline (a ``COPY`` of the same rows, a bare Python loop), and prints the ratio of the
medians. The machine these run on is shared, so each figure is the median of ``--rounds``
runs and the report says how busy the machine was (load average before and after).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = [
    "Figure",
    "asyncpg_dsn",
    "bench_arguments",
    "bearer",
    "bench_settings",
    "in_process",
    "Person",
    "Report",
    "SyntheticOrg",
    "console",
    "fresh_database",
    "peak_rss_mb",
    "proc_jiffies",
    "postgres_server",
    "split_employees",
    "synthetic_org",
    "timed",
]

JOB_TITLES = ("Engineer", "Analyst", "Operator", "Sales Representative", "Accountant", "Technician", "Planner")
GRADES = tuple(f"G{n}" for n in range(1, 10))


def console() -> Console:
    out = Console()
    return out if out.is_terminal else Console(width=160)  # piped to a file: keep the tables readable


def proc_jiffies(pid: int | str | None) -> float:
    """CPU time (user + system, in clock ticks) a process has used, from /proc; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return float(fields[11]) + float(fields[12])  # utime + stime (fields 14 and 15 of the whole line)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the organisation ----------------------------------------------------------------------------------------
def split_employees(employees: int, departments: int, rng: random.Random) -> list[int]:
    """Department sizes that vary (x0.6 to x1.4) but add up to ``employees``."""
    weights = [rng.uniform(0.6, 1.4) for _ in range(departments)]
    scale = employees / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    for i in range(employees - sum(sizes)):
        sizes[i % departments] += 1
    while sum(sizes) > employees:  # only when many departments were rounded up to one person
        sizes[sizes.index(max(sizes))] -= 1
    return sizes


@dataclass(frozen=True)
class Person:
    employee_id: str
    name: str
    email: str
    department_id: str
    manager_id: str | None
    job_title: str
    grade: str


@dataclass
class SyntheticOrg:
    """A company of ``len(people)`` people: a root, ten divisions, teams under them; heads report upwards."""

    departments: list[dict[str, str | None]]
    people: list[Person]
    root_id: str
    heads: dict[str, str] = field(default_factory=dict)

    def departments_csv(self) -> bytes:
        lines = ["department_id,name,parent_id,head_employee_id"]
        lines += [
            f"{d['department_id']},{d['name']},{d['parent_id'] or ''},{d['head_employee_id']}" for d in self.departments
        ]
        return ("\n".join(lines) + "\n").encode()

    def employees_csv(self) -> bytes:
        lines = ["employee_id,name,email,department_id,manager_id,job_title,grade,salary_band"]
        lines += [
            f"{p.employee_id},{p.name},{p.email},{p.department_id},{p.manager_id or ''},{p.job_title},{p.grade},"
            for p in self.people
        ]
        return ("\n".join(lines) + "\n").encode()

    def snapshot(self, cycle_id: str) -> Any:
        """The cycle's frozen org snapshot, as the cycles service sends it to every stage service."""
        from contracts.org import DepartmentRef, OrgSnapshot, Participant

        return OrgSnapshot(
            cycle_id=cycle_id,
            departments=[DepartmentRef.model_validate(d) for d in self.departments],
            participants=[
                Participant(
                    employee_id=p.employee_id,
                    name=p.name,
                    email=p.email,
                    department_id=p.department_id,
                    manager_id=p.manager_id,
                    job_title=p.job_title,
                    grade=p.grade,
                )
                for p in self.people
            ],
        )

    def by_department(self) -> dict[str, list[Person]]:
        out: dict[str, list[Person]] = {d["department_id"] or "": [] for d in self.departments}
        for p in self.people:
            out[p.department_id].append(p)
        return out


def synthetic_org(*, employees: int, departments: int, seed: int = 7) -> SyntheticOrg:
    """Deterministic for a seed. Each department's first person is its head (reporting to the parent's head);
    the others are in teams of about eight under a lead who reports to the head."""
    rng = random.Random(seed)
    sizes = split_employees(employees, departments, rng)
    ids = [f"d{i:04d}" for i in range(departments)]
    divisions = ids[1 : min(11, departments)]
    parents: dict[str, str | None] = {ids[0]: None}
    for i, department_id in enumerate(ids[1:], start=1):
        parents[department_id] = ids[0] if department_id in divisions else divisions[i % len(divisions)]
    people: list[Person] = []
    heads: dict[str, str] = {}
    next_id = 0
    for department_id, size in zip(ids, sizes, strict=True):
        members = [f"e{n:06d}" for n in range(next_id, next_id + size)]
        next_id += size
        heads[department_id] = members[0]
    for department_id, size in zip(ids, sizes, strict=True):
        head = heads[department_id]
        start = int(head[1:])
        parent = parents[department_id]
        for offset in range(size):
            employee_id = f"e{start + offset:06d}"
            if offset == 0:
                manager = heads[parent] if parent else None
            elif offset % 8 == 1 or size < 10:
                manager = head
            else:
                manager = f"e{start + 1 + 8 * ((offset - 1) // 8):06d}"
            people.append(
                Person(
                    employee_id=employee_id,
                    name=f"Person {start + offset}",
                    email=f"{employee_id}@example.com",
                    department_id=department_id,
                    manager_id=manager,
                    job_title=rng.choice(JOB_TITLES),
                    grade=rng.choice(GRADES),
                )
            )
    rows: list[dict[str, str | None]] = [
        {"department_id": d, "name": f"Department {d}", "parent_id": parents[d], "head_employee_id": heads[d]}
        for d in ids
    ]
    return SyntheticOrg(departments=rows, people=people, root_id=ids[0], heads=heads)


# -- the command line -----------------------------------------------------------------------------------------
def bench_arguments(
    argv: Any, module: str, doc: str | None, *, departments: bool = True, database: bool = True, rounds: int = 3
) -> argparse.Namespace:
    """The options every data benchmark shares: size, rounds, seed, database, JSON output; checked."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--employees", type=int, default=100_000)
    if departments:
        parser.add_argument("--departments", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--seed", type=int, default=7)
    if database:
        parser.add_argument("--database-url", default=None, help="a PostgreSQL server (default: a throwaway cluster)")
    parser.add_argument("--json", dest="json_path", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.employees < getattr(args, "departments", 1) or getattr(args, "departments", 1) < 1:
        parser.error("--rounds and --departments must be at least 1, --employees at least --departments")
    return args


# -- PostgreSQL ----------------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def postgres_server(url: str | None, out: Console) -> AsyncIterator[str]:
    """A server URL: ``url`` as given, or a throwaway cluster (fsync off, like the test suite) in a temp dir."""
    if url:
        yield url
        return
    from devtools.stack.postgres import PostgresCluster

    with tempfile.TemporaryDirectory(prefix="tandem-bench-pg-") as state:
        os.chmod(state, 0o755)  # the cluster may run as the postgres user
        cluster = PostgresCluster(Path(state) / "pg")
        await cluster.start(progress=lambda message: out.print(f"[dim]{message}[/]"))
        try:
            yield cluster.url()
        finally:
            await cluster.stop()


async def fresh_database(server_url: str) -> str:
    """A new, empty database on the server of ``server_url``; its URL."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database or "postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The same database as a plain ``postgresql://`` DSN for asyncpg."""
    from sqlalchemy.engine import make_url

    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- the services, in process --------------------------------------------------------------------------------
def bench_settings(database_url: str, **overrides: Any) -> Any:
    """Development settings on ``database_url``: no Kafka relay, no workflows, no consumer."""
    from services.common.settings import DEV_JWT_SECRET, Settings

    values: dict[str, Any] = {
        "env": "dev",
        "jwt_secret": DEV_JWT_SECRET,
        "database_url": database_url,
        "outbox_relay": False,
        "cycle_workflows": False,
        "tracking_consumer": False,
        "tracking_staleness_interval": 0,
    }
    return Settings(**(values | overrides))


def bearer(settings: Any, *roles: str, sub: str = "bench", **claims: Any) -> dict[str, str]:
    from services.common.auth import mint_token

    return {"Authorization": f"Bearer {mint_token(settings, sub=sub, roles=list(roles), **claims)}"}


@contextlib.asynccontextmanager
async def in_process(create_app: Callable[[Any], Any], settings: Any) -> AsyncIterator[Any]:
    """The service app with its lifespan (migrations included) behind an in-process httpx client."""
    import httpx

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:
            yield client


# -- timing and the report -----------------------------------------------------------------------------------
async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Wall-clock seconds of one awaited call, with a full collection before it so rounds start alike."""
    gc.collect()
    started = time.perf_counter()
    result = await work()
    return time.perf_counter() - started, result


@dataclass
class Figure:
    """One measured thing, ours next to its baseline, over several rounds."""

    name: str
    ours: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_name: str = ""
    aim_s: float | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.ours)

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        return self.median / base if base else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "median_s": self.median,
            "runs_s": self.ours,
            "baseline": self.baseline_name or None,
            "baseline_median_s": self.baseline_median,
            "baseline_runs_s": self.baseline,
            "ratio_of_medians": self.ratio,
            "aim_s": self.aim_s,
            "aim_met": None if self.aim_s is None else self.median <= self.aim_s,
            "note": self.note,
        }


@dataclass
class Report:
    """The figures of one benchmark run, printed as a table and optionally written as JSON."""

    title: str
    parameters: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    load: list[float] = field(default_factory=lambda: list(os.getloadavg()))

    def figure(self, name: str, *, baseline_name: str = "", aim_s: float | None = None, note: str = "") -> Figure:
        found = Figure(name=name, baseline_name=baseline_name, aim_s=aim_s, note=note)
        self.figures.append(found)
        return found

    def check(self, name: str, ok: bool) -> None:
        self.checks[name] = self.checks.get(name, True) and ok

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def print(self, out: Console) -> None:
        table = Table(title=self.title, caption=self._caption())
        for column in ("what", "ours (median)", "runs", "baseline", "baseline (median)", "ratio", "aim"):
            table.add_column(column, justify="left" if column in ("what", "baseline") else "right")
        for f in self.figures:
            base = f.baseline_median
            aim = (
                ""
                if f.aim_s is None
                else (f"[green]<= {f.aim_s:g}s[/]" if f.median <= f.aim_s else f"[red]> {f.aim_s:g}s[/]")
            )
            table.add_row(
                f.name + (f" [dim]({f.note})[/]" if f.note else ""),
                _seconds(f.median),
                ", ".join(_seconds(v) for v in f.ours),
                f.baseline_name,
                "" if base is None else _seconds(base),
                "" if f.ratio is None else f"{f.ratio:.2f}x",
                aim,
            )
        out.print(table)
        for name, ok in self.checks.items():
            out.print(f"{'[green]ok[/]' if ok else '[red]FAIL[/]'}  {name}")

    def _caption(self) -> str:
        now = os.getloadavg()
        params = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in self.parameters.items())
        return (
            f"{params}; {os.cpu_count()} CPU(s), load average {self.load[0]:.2f} before, {now[0]:.2f} after; "
            f"peak RSS {peak_rss_mb():,.0f} MB; medians of the runs"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "parameters": self.parameters,
            "cpus": os.cpu_count(),
            "load_average": {"before": self.load, "after": list(os.getloadavg())},
            "peak_rss_mb": peak_rss_mb(),
            "figures": [f.as_dict() for f in self.figures],
            "checks": self.checks,
            "all_checks_passed": self.passed,
            **self.extra,
        }

    def write(self, path: Path | None) -> None:
        if path is not None:
            path.write_text(json.dumps(self.as_dict(), indent=2, default=str))

    def finish(self, out: Console, path: Path | None) -> Report:
        """Print the table and the checks, write the JSON when asked; the report itself."""
        self.print(out)
        self.write(path)
        return self


def _seconds(value: float) -> str:
    return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"
