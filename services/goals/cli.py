"""``tandem goals ...``: goal-setting helpers against the running goals service (dev hr_admin token)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["register"]

console = Console()
err_console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    goals = typer.Typer(help="Goal setting: strategy, KPIs and individual goals.", no_args_is_help=True)

    @goals.command("load-sample")
    def load_sample_command(
        cycle: Annotated[str, typer.Option("--cycle", help="The cycle to load the strategy into.")],
        file: Annotated[
            Path | None, typer.Option("--file", help="Strategy JSON (default: docs/examples/sample_strategy.json).")
        ] = None,
        org_json: Annotated[
            Path | None,
            typer.Option(
                "--org-json",
                help="Also push this org (departments + employees JSON) as the cycle's snapshot. Only for "
                "trying goals without the cycles service: normally starting the cycle sends the snapshot.",
            ),
        ] = None,
        approve: Annotated[bool, typer.Option(help="Submit and approve company and department KPIs.")] = True,
    ) -> None:
        """Create the sample strategy, company and department KPIs and per-department goals in a cycle."""
        os.environ.setdefault("TANDEM_ENV", "dev")
        from services.common.auth import mint_token
        from services.common.settings import Settings
        from services.goals.sample import (
            DEFAULT_STRATEGY,
            LoadSummary,
            SampleLoadError,
            load_org_snapshot,
            load_sample,
            read_strategy,
        )

        try:
            settings = Settings()
            strategy = read_strategy(file or DEFAULT_STRATEGY)
            org = load_org_snapshot(org_json, cycle) if org_json else None
        except (ValueError, SampleLoadError) as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from exc
        token = mint_token(settings, sub="cli:hr_admin", roles=["hr_admin"])
        # nobody approves what they submitted: a second HR identity approves the KPIs the first submits
        approver = {"Authorization": f"Bearer {mint_token(settings, sub='cli:hr_approver', roles=['hr_admin'])}"}

        async def run() -> LoadSummary:
            async with httpx.AsyncClient(
                base_url=settings.goals_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=120
            ) as client:
                with Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                ) as bar:
                    tasks: dict[str, TaskID] = {}

                    def report(step: str, done: int, total: int) -> None:
                        if step not in tasks:
                            tasks[step] = bar.add_task(step, total=total)
                        bar.update(tasks[step], completed=done)

                    return await load_sample(
                        client,
                        cycle_id=cycle,
                        strategy=strategy,
                        approve=approve,
                        approver=approver,
                        org=org,
                        progress=report,
                    )

        try:
            summary = asyncio.run(run())
        except SampleLoadError as exc:
            err_console.print(f"[bold red]load-sample failed:[/] {exc}")
            raise typer.Exit(1) from exc
        console.print(
            f"cycle [bold]{cycle}[/]: objectives {summary.objectives_created} created / "
            f"{summary.objectives_existing} existing; KPIs {summary.kpis_created} created / "
            f"{summary.kpis_existing} existing, {summary.kpis_approved} approved"
            + (f"; snapshot of {summary.participants_pushed} people pushed" if summary.participants_pushed else "")
        )
        table = Table(title="Individual goals (bulk assignment)")
        for column in ("template", "department / job title", "matched", "created", "skipped"):
            table.add_column(column)
        for row in summary.assignments:
            table.add_row(
                row["template_key"], str(row["target"]), str(row["matched"]), str(row["created"]), str(row["skipped"])
            )
        console.print(table)
        if summary.assignments and all(row["matched"] == 0 for row in summary.assignments):
            console.print("[yellow]no participants matched:[/] has the cycle been started (it sends the org snapshot)?")
        console.print(f"goal tree: {settings.goals_url.rstrip('/')}/v1/cycles/{cycle}/tree")

    app.add_typer(goals, name="goals")
