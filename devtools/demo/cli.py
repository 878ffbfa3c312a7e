"""``tandem demo``: the whole product on the embedded stack, in a few minutes.

It starts (or reuses) the local stack, loads the sample manufacturer, runs a
compressed review cycle with people acting through the APIs (one department
misses its deadlines, one stops sending metrics), shows live progress, and
leaves the finished cycle to browse.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

console = Console()


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        kafka: Annotated[
            str, typer.Option(help="Kafka provider for the stack: embedded | apache | auto.")
        ] = "embedded",
        day_seconds: Annotated[float, typer.Option(help="Seconds per template day (compressed time).")] = 3.0,
        keep_running: Annotated[
            bool, typer.Option(help="Keep the stack up afterwards to browse the finished cycle (Ctrl-C stops).")
        ] = True,
        state_dir: Annotated[Path, typer.Option("--state-dir", envvar="TANDEM_STATE_DIR")] = Path(".tandem"),
    ) -> None:
        """Run a whole review cycle for the sample manufacturer on the embedded stack."""
        os.environ.setdefault("TANDEM_ENV", "dev")
        try:
            asyncio.run(_run(kafka=kafka, day_seconds=day_seconds, keep_running=keep_running, state_dir=state_dir))
        except KeyboardInterrupt:
            console.print("stopped.")


async def _run(*, kafka: str, day_seconds: float, keep_running: bool, state_dir: Path) -> None:
    from devtools.demo.scenario import Scenario
    from devtools.stack.local import LocalStack, StackConfig, read_stack_file
    from services.common.settings import Settings

    if read_stack_file(state_dir) is not None:
        raise typer.BadParameter(
            f"a stack is already running from {state_dir} (tandem up); stop it with `tandem down` first"
        )
    stack = LocalStack(StackConfig(state_dir=state_dir, kafka=kafka))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with console.status("starting the embedded stack...") as status:

            def progress(message: str) -> None:
                status.update(message)
                console.log(message)

            await stack.start(progress)
        assert stack.kafka is not None
        settings = Settings()
        urls = {name: stack.url_of(name) for name in stack.config.service_ports}
        scenario = Scenario(
            settings=settings,
            urls=urls,
            bootstrap_servers=stack.kafka.bootstrap_servers,
            kafka_idempotence=stack.kafka.supports_idempotence,
            day_seconds=day_seconds,
            log=lambda message: console.log(f"[bold cyan]demo[/] {message}"),
        )
        run = asyncio.create_task(scenario.run())
        watcher = asyncio.create_task(_watch(scenario))
        done, _ = await asyncio.wait({run, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        watcher.cancel()
        if run not in done:
            run.cancel()
            console.print("demo interrupted.")
            return
        report = run.result()
        _print_report(report, stack, urls)
        if keep_running:
            console.print("[bold green]The stack stays up so you can browse the finished cycle.[/] Ctrl-C stops it.")
            await stop.wait()
    finally:
        await stack.stop(console.log)


async def _watch(scenario: object) -> None:
    """Live progress: the workflow's own status query, every few seconds."""
    from devtools.demo.scenario import Scenario

    assert isinstance(scenario, Scenario)
    last = ""
    while True:
        await asyncio.sleep(3)
        if not scenario.report.cycle_id:
            continue
        try:
            status = await scenario.status()
        except Exception:  # noqa: BLE001 - progress display only
            continue
        if not status:
            continue
        departments = ", ".join(
            f"{d['department_id']} {d['done']}/{d['total']}{' (' + d['outcome'] + ')' if d.get('outcome') else ''}"
            for d in status["departments"]
        )
        line = f"stage [bold]{status['stage']}[/]: {departments}"
        if line != last:
            console.log(line)
            last = line


def _print_report(report: object, stack: object, urls: dict[str, str]) -> None:
    from devtools.demo.scenario import ScenarioReport
    from devtools.stack.local import LocalStack

    assert isinstance(report, ScenarioReport) and isinstance(stack, LocalStack)
    cycle = report.cycle_id
    table = Table(title=f"Cycle {cycle}: finished")
    table.add_column("what")
    table.add_column("result")
    for stage, seconds in report.stage_seconds.items():
        table.add_row(f"time: {stage}", f"{seconds:.1f} s")
    table.add_row("goals approved / left pending", f"{report.goals_approved} / {report.goals_left_pending}")
    table.add_row("metric events streamed", str(report.metrics_sent))
    table.add_row("reviews submitted", str(report.reviews_submitted))
    table.add_row("results acknowledged / appeals", f"{report.acknowledged} / {report.appeals}")
    table.add_row("reminders and escalations", ", ".join(f"{k}: {v}" for k, v in sorted(report.notifications.items())))
    for department, money in sorted(report.allocations.items()):
        table.add_row(
            f"bonus pool {department}",
            f"{money['allocated'] / 100:,.2f} of {money['pool'] / 100:,.2f} EUR allocated",
        )
    if report.committee:
        agenda = report.committee.get("agenda", [])
        decision = report.committee.get("decision")
        table.add_row("committee agenda", "; ".join(agenda[:3]) + (f" (+{len(agenda) - 3})" if len(agenda) > 3 else ""))
        if decision:
            table.add_row("committee decision", f"{decision['title']} (owner {decision['owner']})")
    console.print(table)
    query = f'CycleId="{cycle}"'
    links: list[tuple[str, str]] = [
        ("console", f"{urls['console']}/console"),
        ("ops overview", f"{urls['console']}/console/ops"),
        ("Temporal UI (this cycle)", f"{stack.temporal_ui_url}/namespaces/default/workflows?query={quote(query)}"),
        # The console's page, signed in: the API's HTML report needs a bearer token a browser does not send.
        ("collaboration report", f"{urls['console']}/console/cycles/{cycle}/collaboration"),
    ]
    if report.committee:
        meeting = f"/committees/{report.committee['committee_id']}/meetings/{report.committee['meeting_id']}"
        links.append(("committee meeting (agenda, decisions)", f"{urls['console']}/console{meeting}"))
        links.append(("committee meeting (API, with the dev token below)", f"{urls['committee']}/v1{meeting}"))
    links.append(("talent review (9-box)", f"{urls['console']}/console/cycles/{cycle}/nine-box"))
    links += [(f"API docs ({name})", f"{url}/docs") for name, url in urls.items()]
    # One link per line, never wrapped or cut, so a terminal opens each one whole.
    console.print("[bold]Browse it[/bold]")
    for what, where in links:
        console.print(f"  {what}: {where}", soft_wrap=True, highlight=False, markup=False)
    console.print("  dev token: tandem token --sub hr.admin --role hr_admin --role ops", soft_wrap=True, markup=False)
