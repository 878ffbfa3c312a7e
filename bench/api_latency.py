"""API latency benchmark: p50/p99 of the hot endpoints at a constant request rate, against a bare FastAPI app.

    python -m bench.api_latency [--employees 10000] [--departments 100] [--rate 20] [--seconds 15] [--rounds 3]

The goals, tracking and evaluation services run as ``tandem serve`` processes on a throwaway
PostgreSQL holding a cycle of N people (the org snapshot in every service; one individual goal per
person, bulk-assigned; the KPI catalog in tracking; self and manager review forms in evaluation).
Next to them ``bench.bare_app`` runs with the same uvicorn settings: ``/bare`` (FastAPI alone) and
``/bare-db`` (one primary-key read of a goal: the floor of an endpoint that touches PostgreSQL).

Targets, each called by a different person per request (their own token, so scoping is real):

* ``goal tree``: ``GET /v1/cycles/{c}/tree`` as an employee;
* ``my goals``: ``GET /v1/cycles/{c}/goals?employee_id=<me>`` as that employee (there is no
  "my tasks" endpoint; the console builds it from these lists);
* ``KPI progress``: ``GET /v1/cycles/{c}/kpis/{my goal}/progress`` (tracking) as its owner;
* ``submit review``: ``POST /v1/cycles/{c}/assignments/{id}/review`` (evaluation) by its rater,
  each request a different review form.

The load generator is open loop: request i is scheduled at ``start + i / rate`` whatever happened
to the requests before it, and its latency is measured from that intended time to the response.
A slow response therefore delays nothing and hides nothing (no coordinated omission): time spent
queued in the client, the socket or the server all counts. The report also gives the service time
(from the actual send) and how late the generator itself sent (its own health). Targets run one
after another, each round in the same order, and the medians over rounds are reported with the
CPU milliseconds per request of the serving process (steadier than wall time on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from bench.goals_bulk import ROOT_KPI, bulk_request, install_strategy
from bench.support import (
    SyntheticOrg,
    bearer,
    bench_settings,
    console,
    fresh_database,
    postgres_server,
    proc_jiffies,
    synthetic_org,
)
from devtools.stack.process import ManagedProcess, free_port

__all__ = ["Sample", "main", "open_loop", "percentile"]

CYCLE = "bench-latency"
AIM_RATIO = 2.0
SERVICES = ("goals", "tracking", "evaluation")
Request = tuple[str, str, dict[str, str], Any]
"""method, path, headers, JSON body (or None)."""


# -- the load generator ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    intended: float
    sent: float
    done: float
    status: int

    @property
    def latency(self) -> float:
        return self.done - self.intended

    @property
    def service_time(self) -> float:
        return self.done - self.sent


async def open_loop(
    client: httpx.AsyncClient, make: Callable[[int], Request], *, rate: float, seconds: float
) -> list[Sample]:
    """Send ``rate * seconds`` requests, request i at ``start + i / rate``; never wait for earlier answers."""
    loop = asyncio.get_running_loop()
    count = max(1, int(rate * seconds))
    start = loop.time() + 0.2
    samples: list[Sample | None] = [None] * count

    async def one(i: int) -> None:
        intended = start + i / rate
        await asyncio.sleep(max(0.0, intended - loop.time()))
        method, url, headers, body = make(i)
        sent = loop.time()
        try:
            response = await client.request(method, url, headers=headers, json=body)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        samples[i] = Sample(intended=intended, sent=sent, done=loop.time(), status=status)

    await asyncio.gather(*(one(i) for i in range(count)))
    return [s for s in samples if s is not None]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")


def summary(samples: Sequence[Sample], cpu_seconds: float) -> dict[str, float]:
    ok = [s for s in samples if 200 <= s.status < 300]
    latency = [s.latency * 1000 for s in ok]
    service = [s.service_time * 1000 for s in ok]
    lag = [(s.sent - s.intended) * 1000 for s in samples]
    span = max(s.done for s in samples) - min(s.intended for s in samples)
    return {
        "requests": len(samples),
        "errors": len(samples) - len(ok),
        "achieved_per_s": len(ok) / span if span > 0 else 0.0,
        "p50_ms": percentile(latency, 0.50),
        "p90_ms": percentile(latency, 0.90),
        "p99_ms": percentile(latency, 0.99),
        "max_ms": max(latency, default=float("nan")),
        "service_p99_ms": percentile(service, 0.99),
        "send_lag_p99_ms": percentile(lag, 0.99),
        "cpu_ms_per_request": 1000 * cpu_seconds / len(samples),
    }


# -- the processes ------------------------------------------------------------------------------------------
def _cpu_seconds(pid: int | None) -> float:
    return proc_jiffies(pid) / os.sysconf("SC_CLK_TCK")


@dataclass
class Servers:
    """``tandem serve`` for each service and the bare app, each its own process on a free port."""

    database_url: str
    logs: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    async def start(self) -> None:
        env = {
            "TANDEM_ENV": "dev",
            "TANDEM_DATABASE_URL": self.database_url,
            "TANDEM_OUTBOX_RELAY": "false",
            "TANDEM_CYCLE_WORKFLOWS": "false",
            "TANDEM_TRACKING_CONSUMER": "0",
            "TANDEM_TRACKING_STALENESS_INTERVAL": "0",
        }
        for name in (*SERVICES, "bare"):
            self.ports[name] = free_port()
            port = str(self.ports[name])
            argv = (
                [sys.executable, "-m", "bench.bare_app", "--port", port, "--database-url", self.database_url]
                if name == "bare"
                else [sys.executable, "-m", "services.cli", "serve", name, "--port", port]
            )
            self.processes[name] = ManagedProcess(name, argv, log_path=self.logs / f"{name}.log", env=env)
            self.processes[name].start()
            # One at a time: each service migrates its own tables at start.
            await self.processes[name].wait_ready(_healthy(self.url(name), name), timeout=120)

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()


def _healthy(url: str, name: str) -> Callable[[], Any]:
    async def check() -> bool:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(f"{url}/bare" if name == "bare" else f"{url}/healthz")
            return response.status_code == 200

    return check


# -- the cycle's data -------------------------------------------------------------------------------------
@dataclass
class World:
    org: SyntheticOrg
    settings: Any
    goal_of: dict[str, str]
    """employee -> their individual goal (= their KPI in tracking)."""
    reviews: list[tuple[str, str, str]]
    """(assignment id, rater, relation) of pending review forms."""
    competencies: list[str]
    tokens: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def person(self, employee_id: str, relation: str = "self") -> dict[str, str]:
        key = (employee_id, relation)
        if key not in self.tokens:
            roles = ("manager", "employee") if relation == "manager" else ("employee",)
            department = next(p.department_id for p in self.org.people if p.employee_id == employee_id)
            self.tokens[key] = bearer(
                self.settings, *roles, sub=employee_id, employee_id=employee_id, department_id=department
            )
        return self.tokens[key]


async def seed(servers: Servers, org: SyntheticOrg, settings: Any, out: Any) -> World:
    hr = bearer(settings, "hr_admin", "ops", sub="bench-hr")
    base = f"/v1/cycles/{CYCLE}"
    snapshot = org.snapshot(CYCLE).model_dump_json()
    async with httpx.AsyncClient(timeout=600) as http:

        async def call(service: str, method: str, path: str, **kwargs: Any) -> Any:
            headers = hr | ({"Content-Type": "application/json"} if "content" in kwargs else {})
            response = await http.request(method, servers.url(service) + path, headers=headers, **kwargs)
            if response.status_code >= 300:
                raise RuntimeError(f"{method} {service}{path}: {response.status_code} {response.text[:300]}")
            return response.json() if response.content else None

        for service in SERVICES:
            await call(service, "PUT", f"{base}/participants", content=snapshot)
        out.print(f"org snapshot of {len(org.people):,} people in goals, tracking and evaluation")
        today = time.strftime("%Y-%m-%d")
        year = int(today[:4])
        await call(
            "goals", "PUT", f"{base}/settings", json={"period_start": f"{year}-01-01", "period_end": f"{year}-12-31"}
        )
        client = httpx.AsyncClient(base_url=servers.url("goals"), timeout=600)
        try:
            await install_strategy(client, hr, CYCLE, org)
        finally:
            await client.aclose()
        assigned = await call("goals", "POST", f"{base}/goals/bulk-assign", json=bulk_request(org))
        goals: dict[str, str] = {}
        while len(goals) < assigned["created"]:
            page = await call(
                "goals", "GET", f"{base}/goals", params={"level": "individual", "limit": 500, "offset": len(goals)}
            )
            goals |= {g["employee_id"]: g["goal_id"] for g in page["items"]}
            if not page["items"]:
                break
        catalog = await call("goals", "GET", f"{base}/kpi-catalog")
        await call(
            "tracking", "PUT", f"{base}/kpis", json=catalog, params={"late_data_policy": "accept", "grace_hours": "1"}
        )
        out.print(f"{len(goals):,} individual goals (aligned to {ROOT_KPI}); {len(catalog['kpis']):,} KPIs in tracking")
        await call("evaluation", "PUT", f"{base}/config/template", json=template_config())
        generated = await call("evaluation", "POST", f"{base}/assignments/generate")
        reviews: list[tuple[str, str, str]] = []
        while True:
            page = await call(
                "evaluation",
                "GET",
                f"{base}/assignments",
                params={"status": "pending", "limit": 500, "offset": len(reviews)},
            )
            reviews += [(a["assignment_id"], a["rater_id"], a["relation"]) for a in page]
            if len(page) < 500:
                break
        config = await call("evaluation", "GET", f"{base}/config")
        out.print(f"{generated} review forms; {len(reviews):,} pending")
    random.Random(7).shuffle(reviews)
    competencies = [c["competency_id"] for c in config["competencies"]]
    return World(org=org, settings=settings, goal_of=goals, reviews=reviews, competencies=competencies)


def template_config() -> Any:
    """The sample template's scoring configuration, as the workflow pushes it to evaluation."""
    from contracts.templates import CycleTemplateSpec
    from workflows.activities import evaluation_config

    path = Path(__file__).resolve().parent.parent / "docs" / "examples" / "sample_org" / "template.json"
    return evaluation_config(CycleTemplateSpec.model_validate_json(path.read_text())).model_dump(mode="json")


# -- the targets ----------------------------------------------------------------------------------------------
def targets(servers: Servers, world: World) -> dict[str, tuple[str, Callable[[int], Request]]]:
    """name -> (serving process, request i)."""
    base = f"/v1/cycles/{CYCLE}"
    people = sorted(world.goal_of)
    rng = random.Random(11)
    callers = [rng.choice(people) for _ in range(5000)]
    reviews = iter(world.reviews)
    ratings = dict.fromkeys(world.competencies, 4.0)

    def caller(i: int) -> str:
        return callers[i % len(callers)]

    def review(_i: int) -> Request:
        assignment, rater, relation = next(reviews)
        body = {"ratings": ratings, "comment": "Benchmark review."}
        return (
            "POST",
            f"{servers.url('evaluation')}{base}/assignments/{assignment}/review",
            world.person(rater, relation),
            body,
        )

    return {
        "bare FastAPI": ("bare", lambda i: ("GET", f"{servers.url('bare')}/bare", {}, None)),
        "bare FastAPI + 1 SELECT": (
            "bare",
            lambda i: ("GET", f"{servers.url('bare')}/bare-db/{CYCLE}/{world.goal_of[caller(i)]}", {}, None),
        ),
        "goal tree": ("goals", lambda i: ("GET", f"{servers.url('goals')}{base}/tree", world.person(caller(i)), None)),
        "my goals": (
            "goals",
            lambda i: (
                "GET",
                f"{servers.url('goals')}{base}/goals?employee_id={caller(i)}",
                world.person(caller(i)),
                None,
            ),
        ),
        "KPI progress": (
            "tracking",
            lambda i: (
                "GET",
                f"{servers.url('tracking')}{base}/kpis/{world.goal_of[caller(i)]}/progress",
                world.person(caller(i)),
                None,
            ),
        ),
        "submit review": ("evaluation", review),
    }


# -- the run --------------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> dict[str, Any]:
    out = console()
    org = synthetic_org(employees=args.employees, departments=args.departments, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="tandem-bench-api-") as state:
        async with postgres_server(args.database_url, out) as server:
            database_url = await fresh_database(server)
            settings = bench_settings(database_url)
            servers = Servers(database_url, Path(state) / "logs")
            try:
                await servers.start()
                world = await seed(servers, org, settings, out)
                needed = int(args.rate * args.seconds) * args.rounds
                if len(world.reviews) < needed:
                    raise SystemExit(f"only {len(world.reviews)} review forms for {needed} submissions: lower --rate")
                chosen = targets(servers, world)
                names = [n for n in chosen if args.only is None or n in args.only or n.startswith("bare")]
                results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
                limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
                async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                    for name in names:  # warm-up: a few requests each, not measured
                        await open_loop(client, chosen[name][1], rate=args.rate, seconds=1.0)
                    for number in range(1, args.rounds + 1):
                        for name in names:
                            process, make = chosen[name]
                            pid = servers.processes[process].pid
                            cpu_before = _cpu_seconds(pid)
                            samples = await open_loop(client, make, rate=args.rate, seconds=args.seconds)
                            results[name].append(summary(samples, _cpu_seconds(pid) - cpu_before))
                            row = results[name][-1]
                            out.print(
                                f"round {number} {name:<24} p50 {row['p50_ms']:8.1f} ms  p99 {row['p99_ms']:8.1f} ms  "
                                f"errors {row['errors']}  load {os.getloadavg()[0]:.1f}"
                            )
            finally:
                servers.stop()
    report = _report(args, results)
    _print(out, report)
    if args.json_path:
        args.json_path.write_text(json.dumps(report, indent=2))
    return report


def _report(args: argparse.Namespace, results: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()
    }
    bare = medians["bare FastAPI"]["p99_ms"]
    floor = medians["bare FastAPI + 1 SELECT"]["p99_ms"]
    for row in medians.values():
        row["p99_ratio_to_bare"] = row["p99_ms"] / bare
        row["p99_ratio_to_bare_select"] = row["p99_ms"] / floor
    return {
        "parameters": {
            "employees": args.employees, "departments": args.departments, "rate_per_s": args.rate,
            "seconds": args.seconds, "rounds": args.rounds, "cpus": os.cpu_count(),
        },
        "aim_p99_ratio": AIM_RATIO,
        "medians": medians,
        "rounds": results,
        "load_average_after": list(os.getloadavg()),
    }  # fmt: skip


def _print(out: Any, report: dict[str, Any]) -> None:
    p = report["parameters"]
    table = Table(
        title=f"API latency at {p['rate_per_s']:g} requests/s (open loop, from the intended send time), "
        f"{p['employees']:,} people, PostgreSQL",
        caption=f"medians of {p['rounds']} rounds of {p['seconds']:g} s; {p['cpus']} CPU(s) shared; ratio: p99 over "
        f"the bare app's p99 (aim <= {AIM_RATIO:g}x against bare + 1 SELECT)",
    )
    columns = (
        "endpoint",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "service p99",
        "errors",
        "CPU ms/req",
        "x bare",
        "x bare+SELECT",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for name, row in report["medians"].items():
        ratio = row["p99_ratio_to_bare_select"]
        style = "green" if ratio <= AIM_RATIO else "red"
        table.add_row(
            name,
            f"{row['p50_ms']:.1f}",
            f"{row['p90_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            f"{row['max_ms']:.1f}",
            f"{row['service_p99_ms']:.1f}",
            f"{row['errors']:.0f}",
            f"{row['cpu_ms_per_request']:.1f}",
            f"{row['p99_ratio_to_bare']:.1f}x",
            f"[{style}]{ratio:.1f}x[/]",
        )
    out.print(table)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_latency", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second per target (default 20)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each target's run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help="only these targets (the two bare ones always run)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL server to use (default: a throwaway cluster)"
    )
    parser.add_argument("--json", dest="json_path", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--rate and --seconds must be positive, --rounds at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    report = asyncio.run(run(parse_args(argv)))
    return 0 if all(row["errors"] == 0 for row in report["medians"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
