"""``tandem simulate`` and ``tandem tracking ...`` commands."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

__all__ = ["register"]

console = Console()
tracking_app = typer.Typer(help="Tracking service tools: the standalone consumer and a sample KPI catalog.")


def _dev_default() -> None:
    os.environ.setdefault("TANDEM_ENV", "dev")


def simulate(
    departments: Annotated[
        str, typer.Option(help="Comma-separated departments of the sample org (sales, finance, production, ...).")
    ] = "sales,finance,production",
    rate: Annotated[float, typer.Option(help="Events per second (all departments together).", min=0.1)] = 2000.0,
    duration: Annotated[float, typer.Option(help="Seconds to run.", min=0.1)] = 60.0,
    malformed: Annotated[float, typer.Option(help="Share of malformed events to inject, 0..1.", min=0, max=1)] = 0.0,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap servers (default: TANDEM_KAFKA_BOOTSTRAP_SERVERS).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible stream.")] = None,
) -> None:
    """Stream realistic metrics for the sample organisation's KPIs to metrics.v1."""
    _dev_default()
    from devtools.simulator import SimulationStats
    from devtools.simulator import simulate as run_simulation
    from services.common.settings import Settings

    settings = Settings()
    chosen = [d.strip() for d in departments.split(",") if d.strip()]
    servers = bootstrap or settings.kafka_bootstrap_servers

    def render(stats: SimulationStats) -> Table:
        table = Table(title=f"tandem simulate -> {servers}")
        table.add_column("department")
        table.add_column("events", justify="right")
        for department, count in stats.by_department.items():
            table.add_row(department, f"{count:,}")
        table.add_row("[bold]total sent[/]", f"{stats.sent:,}")
        table.add_row("malformed", f"{stats.malformed:,}")
        table.add_row("acknowledged", f"{stats.acknowledged:,}")
        rate_now = stats.sent / stats.elapsed if stats.elapsed else 0.0
        table.add_row("elapsed / rate", f"{stats.elapsed:5.1f}s / {rate_now:,.0f} ev/s (of {duration:.0f}s)")
        return table

    async def run() -> SimulationStats:
        with Live(render(SimulationStats(by_department={d: 0 for d in chosen})), console=console) as live:
            return await run_simulation(
                bootstrap_servers=servers,
                departments=chosen,
                rate=rate,
                duration=duration,
                malformed=malformed,
                idempotence=settings.kafka_idempotence,
                seed=seed,
                progress=lambda stats: live.update(render(stats)),
            )

    try:
        stats = asyncio.run(run())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - shown to the user
        console.print(f"[bold red]simulate failed:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]done:[/] {stats.sent:,} events ({stats.malformed:,} malformed) in {stats.elapsed:.1f}s, "
        f"{stats.acknowledged:,} valid events acknowledged by Kafka"
    )


@tracking_app.command("consume")
def consume(
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Tracking database URL (default from settings).")] = None,
    group: Annotated[str, typer.Option(help="Consumer group.")] = "tandem-tracking",
    topic: Annotated[str, typer.Option(help="Metrics topic.")] = "metrics.v1",
    dlq_topic: Annotated[str, typer.Option(help="Dead-letter topic.")] = "metrics.dlq.v1",
    migrate: Annotated[bool, typer.Option(help="Run the tracking migrations first.")] = True,
    max_records: Annotated[int, typer.Option(help="Records per getmany batch.", min=1)] = 10_000,
) -> None:
    """Run the tracking consumer as its own process (SIGTERM/Ctrl-C stops it after the batch in flight)."""
    _dev_default()
    from services.common.db import create_engine
    from services.common.kafka import KafkaSecurity
    from services.common.migrations import upgrade
    from services.common.settings import Settings
    from services.tracking.consumer import TrackingConsumer, freeze_startup_heap

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    url = database_url or settings.database_url_for("tracking")
    servers = bootstrap or settings.kafka_bootstrap_servers

    async def run() -> None:
        if migrate:
            await upgrade("tracking", url)
        engine = create_engine(url)
        consumer = TrackingConsumer(
            engine=engine,
            bootstrap_servers=servers,
            group_id=group,
            topic=topic,
            dlq_topic=dlq_topic,
            idempotence=settings.kafka_idempotence,
            max_records=max_records,
            security=KafkaSecurity.from_settings(settings),
            enforce_principal=settings.kafka_enforce_principal,
        )
        # Everything allocated so far lives as long as the process: keep it out of full collections.
        freeze_startup_heap()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, consumer.stop)
        console.print(f"tracking consumer: {servers} topic={topic} group={group} -> {url.split('@')[-1]}")
        try:
            await consumer.run()
        finally:
            await engine.dispose()
        stats = consumer.stats
        console.print(
            f"stopped: {stats.received:,} received, {stats.inserted:,} stored, "
            f"{stats.duplicates:,} duplicates, {stats.redelivered:,} re-read, {stats.dead_lettered:,} dead-lettered"
        )

    asyncio.run(run())


@tracking_app.command("sample-catalog")
def sample_catalog(
    cycle_id: Annotated[str, typer.Option(help="Cycle to register the sample KPIs for.")],
    days: Annotated[int, typer.Option(help="Period length in days, starting today.", min=1)] = 90,
    late_data_policy: Annotated[str, typer.Option(help="accept | reject | next_period")] = "accept",
    grace_hours: Annotated[float, typer.Option(help="Grace after each KPI's update frequency.")] = 1.0,
    frequency_hours: Annotated[
        float | None,
        typer.Option(help="Override every KPI's update frequency (e.g. 0.01 = 36 s, to watch staleness in a demo)."),
    ] = None,
) -> None:
    """PUT the sample organisation's KPI catalog to the running tracking service (demo without goals)."""
    _dev_default()
    import httpx

    from devtools.simulator import sample_catalog as build
    from services.common.auth import mint_token
    from services.common.settings import Settings

    settings = Settings()
    today = datetime.now(UTC).date()
    catalog = build(cycle_id, today, today + timedelta(days=days - 1))
    if frequency_hours is not None:
        if frequency_hours <= 0:
            raise typer.BadParameter("must be positive", param_hint="--frequency-hours")
        for kpi in catalog.kpis:
            kpi.update_frequency_hours = frequency_hours
    token = mint_token(settings, sub="tandem-cli", roles=["hr_admin"])
    response = httpx.put(
        f"{settings.tracking_url}/v1/cycles/{cycle_id}/kpis",
        params={"late_data_policy": late_data_policy, "grace_hours": grace_hours},
        content=catalog.model_dump_json(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    if response.status_code >= 400:
        console.print(f"[red]tracking answered {response.status_code}:[/] {response.text}")
        raise typer.Exit(1)
    console.print_json(response.text)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.add_typer(tracking_app, name="tracking")
