"""Scoring and calibration benchmark: N people scored, reported on and calibrated, on PostgreSQL.

    python -m bench.scoring [--employees 100000] [--departments 1000] [--rounds 3] [--database-url URL]

Once, through the evaluation service's public functions inside its app (so the audit log records
what production records): the cycle's org snapshot, the sample template's scoring configuration
(``docs/examples/sample_org/template.json``: KPI, manager, peer, cross-department and self
components), one goal per person with its actual, and the self and manager review forms
(``generate_assignments``). Then every form is marked submitted with ratings by one SQL
``UPDATE`` (N people cannot each submit two forms in a benchmark's set-up time).

Per round (the calibration is reopened and the results deleted by SQL in between):

* **ours**: ``compute_scores`` (load the inputs, score everyone, store N results with their
  breakdown), ``distribution`` (the calibration report), ``close_calibration`` and
  ``final_results`` (what the workflow hands to feedback and results). The aim is 2 s for all four.
* **baseline**, in the same round on the same data: a bare Python loop computing each person's
  weighted score from the same goal attainments and review means, plus an asyncpg ``COPY`` of the
  result rows ours stored into an empty ``evaluation_result`` table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from bench.api_latency import template_config
from bench.goals_bulk import timed_copy
from bench.support import (
    Report,
    SyntheticOrg,
    bench_arguments,
    bench_settings,
    console,
    fresh_database,
    postgres_server,
    synthetic_org,
    timed,
)
from contracts.evaluation import EvaluationConfig
from contracts.goals import Direction, ExportedGoal, GoalExport, GoalLevel
from contracts.scoring import ScoringComponent
from contracts.tracking import KpiActual, ProgressExport
from services.common.auth import Principal
from services.common.participants import replace_snapshot
from services.evaluation import service
from services.evaluation.app import create_app
from services.evaluation.models import EvaluationDepartment, EvaluationParticipant

__all__ = ["main"]

CYCLE = "bench-scoring"
AIM_S = 2.0
HR = Principal(sub="bench-hr", roles=frozenset({"hr_admin"}))


def goals_and_actuals(org: SyntheticOrg) -> tuple[GoalExport, ProgressExport]:
    goals, actuals = [], []
    for n, person in enumerate(org.people):
        goal_id = f"g-{person.employee_id}"
        goals.append(
            ExportedGoal(
                goal_id=goal_id, level=GoalLevel.INDIVIDUAL, name="Output", employee_id=person.employee_id,
                kpi_id=goal_id, weight=100, unit="units", direction=Direction.HIGHER_IS_BETTER, start_value=0,
                target_value=100,
            )
        )  # fmt: skip
        actuals.append(KpiActual(kpi_id=goal_id, actual_value=float(40 + (n * 37) % 80), event_count=3))
    return GoalExport(cycle_id=CYCLE, goals=goals), ProgressExport(
        cycle_id=CYCLE, as_of=datetime.now(UTC), actuals=actuals
    )


async def set_up(sessions: Any, org: SyntheticOrg, config: EvaluationConfig, out: Any) -> None:
    started = time.perf_counter()
    async with sessions() as session:
        await replace_snapshot(session, EvaluationParticipant, EvaluationDepartment, org.snapshot(CYCLE))
        await session.commit()
    goals, actuals = goals_and_actuals(org)
    async with sessions() as session:
        await service.push_template_config(session=session, cycle_id=CYCLE, config=config, actor=HR.sub)
    async with sessions() as session:
        await service.put_goals(session=session, cycle_id=CYCLE, export=goals, actor=HR.sub)
    async with sessions() as session:
        await service.put_actuals(session=session, cycle_id=CYCLE, export=actuals, actor=HR.sub)
    async with sessions() as session:
        generated = await service.generate_assignments(session=session, cycle_id=CYCLE, actor=HR.sub)
    variants = [json.dumps(dict.fromkeys((c.competency_id for c in config.competencies), v)) for v in (3.0, 4.0, 4.5)]
    async with sessions() as session:
        await session.execute(
            text(
                "UPDATE evaluation_assignment SET status = 'submitted', submitted_at = now(), "
                "ratings = (ARRAY[:a, :b, :c])[1 + abs(hashtext(assignment_id)) % 3] WHERE cycle_id = :cycle"
            ),
            {"a": variants[0], "b": variants[1], "c": variants[2], "cycle": CYCLE},
        )
        await session.commit()
    out.print(
        f"set up {len(org.people):,} people, {len(goals.goals):,} goals, {generated.created:,} submitted review "
        f"forms in {time.perf_counter() - started:.0f}s"
    )


async def reopen(sessions: Any) -> None:
    """Between rounds: no results, calibration open again (what a fresh cycle would be)."""
    async with sessions() as session:
        await session.execute(text("DELETE FROM evaluation_result WHERE cycle_id = :c"), {"c": CYCLE})
        await session.execute(
            text(
                "UPDATE evaluation_cycle_state SET calibration_closed_at = NULL, closed_by = NULL, scored_at = NULL "
                "WHERE cycle_id = :c"
            ),
            {"c": CYCLE},
        )
        await session.commit()


def bare_scores(org: SyntheticOrg, config: EvaluationConfig, goals: GoalExport, actuals: ProgressExport) -> int:
    """The same kind of arithmetic in a bare loop: attainment, review means, a weighted mean, a band."""
    scale = config.rating_scale
    actual = {a.kpi_id: a.actual_value for a in actuals.actuals}
    attainment = {
        g.employee_id: min(
            config.attainment_cap,
            ((actual.get(g.kpi_id or "") or 0.0) - g.start_value) / (g.target_value - g.start_value),
        )
        for g in goals.goals
    }
    weights = config.weights
    bands = sorted(scale.bands, key=lambda b: b.min_score)
    rated = 0
    for person in org.people:
        kpi = scale.min + (scale.max - scale.min) * attainment.get(person.employee_id, 0.0) / config.attainment_cap
        parts = {ScoringComponent.KPI: kpi, ScoringComponent.SELF: 4.0}
        if person.manager_id:
            parts[ScoringComponent.MANAGER] = 4.0
        total = sum(weights.get(k, 0.0) for k in parts)
        score = sum(v * weights.get(k, 0.0) for k, v in parts.items()) / total
        rated += any(b.min_score <= score for b in bands)
    return rated


async def one_round(
    sessions: Any, server: str, stored_url: str, org: SyntheticOrg, config: EvaluationConfig, report: Report
) -> None:
    await reopen(sessions)

    async def score_and_calibrate() -> tuple[Any, Any]:
        async with sessions() as session:
            computed = await service.compute_scores(session=session, cycle_id=CYCLE)
        async with sessions() as session:
            await service.distribution(session=session, cycle_id=CYCLE, principal=HR)
        async with sessions() as session:
            await service.close_calibration(session=session, cycle_id=CYCLE, principal=HR)
        async with sessions() as session:
            results = await service.final_results(session=session, cycle_id=CYCLE)
        return computed, results

    started = time.perf_counter()
    seconds, (computed, results) = await timed(score_and_calibrate)
    report.figures[0].ours.append(seconds)
    report.check("everyone scored", computed.scored == len(org.people) and not computed.unscored)
    report.check("final results for everyone after calibration closed", len(results.results) == len(org.people))
    report.extra.setdefault("round_wall_s", []).append(time.perf_counter() - started)

    goals, actuals = goals_and_actuals(org)
    loop_s, rated = await timed(lambda: asyncio.to_thread(bare_scores, org, config, goals, actuals))
    baseline_url = await fresh_database(server)
    from services.common.migrations import upgrade

    await upgrade("evaluation", baseline_url)
    copy_s, copied = await timed_copy(stored_url, baseline_url, "evaluation_result", f"cycle_id = '{CYCLE}'")
    report.figures[0].baseline.append(loop_s + copy_s)
    report.extra.setdefault("baseline_parts_s", []).append({"bare_loop": loop_s, "copy": copy_s})
    report.check("the baseline scored and copied everyone", rated == len(org.people) == copied)


async def run(args: argparse.Namespace) -> Report:
    out = console()
    org = synthetic_org(employees=args.employees, departments=args.departments, seed=args.seed)
    config = EvaluationConfig.model_validate(template_config())
    report = Report(
        title=f"Scoring + calibration of {args.employees:,} people in {args.departments:,} departments (PostgreSQL)",
        parameters={"employees": args.employees, "departments": args.departments, "rounds": args.rounds},
    )
    report.figure(
        "compute_scores + distribution + close_calibration + final_results",
        baseline_name="bare scoring loop + asyncpg COPY of the same results",
        aim_s=AIM_S,
    )
    async with postgres_server(args.database_url, out) as server:
        database_url = await fresh_database(server)
        app = create_app(bench_settings(database_url))
        async with app.router.lifespan_context(app):
            await set_up(app.state.sessions, org, config, out)
            for number in range(1, args.rounds + 1):
                await one_round(app.state.sessions, server, database_url, org, config, report)
                figure = report.figures[0]
                out.print(f"round {number}: {figure.ours[-1]:.2f}s (baseline {figure.baseline[-1]:.2f}s)")
    return report.finish(out, args.json_path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return bench_arguments(argv, "bench.scoring", __doc__)


def main(argv: Sequence[str] | None = None) -> int:
    return 0 if asyncio.run(run(parse_args(argv))).passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
