"""``tandem results ...``: read the collaboration report and awards from a running results service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

console = Console()
results_app = typer.Typer(help="Result application: collaboration report, awards.", no_args_is_help=True)


def _client() -> httpx.Client:
    from services.common.auth import mint_token
    from services.common.settings import Settings

    os.environ.setdefault("TANDEM_ENV", "dev")
    settings = Settings()
    token = mint_token(settings, sub="cli:results", roles=["hr_admin"])
    return httpx.Client(
        base_url=settings.results_url, headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(30.0)
    )


@results_app.command("report")
def report(
    cycle_id: Annotated[str, typer.Argument(help="The cycle whose collaboration report to fetch.")],
    fmt: Annotated[str, typer.Option("--format", help="html | csv | json")] = "html",
    out: Annotated[
        Path | None, typer.Option(help="Write to this file (default: collaboration-<cycle>.<format>).")
    ] = None,
    previous_cycle_id: Annotated[str | None, typer.Option(help="Compare with this cycle.")] = None,
) -> None:
    """Save the cross-department collaboration report (open the HTML file in a browser)."""
    if fmt not in {"html", "csv", "json"}:
        raise typer.BadParameter("--format must be html, csv or json")
    suffix = "" if fmt == "json" else f".{fmt}"
    params = {"previous_cycle_id": previous_cycle_id} if previous_cycle_id else {}
    with _client() as client:
        response = client.get(f"/v1/cycles/{cycle_id}/collaboration-report{suffix}", params=params)
    if response.status_code != 200:
        console.print(f"[red]{response.status_code}[/red] {response.text}")
        raise typer.Exit(1)
    target = out or Path(f"collaboration-{cycle_id}.{fmt}")
    target.write_text(response.text)
    console.print(f"wrote [bold]{target}[/bold]")


@results_app.command("awards")
def awards(cycle_id: Annotated[str, typer.Argument(help="The cycle.")]) -> None:
    """Show the 'best collaboration team' ranking with its evidence."""
    with _client() as client:
        response = client.get(f"/v1/cycles/{cycle_id}/collaboration-awards")
    if response.status_code != 200:
        console.print(f"[red]{response.status_code}[/red] {response.text}")
        raise typer.Exit(1)
    table = Table("department", "eligible", "score", "received mean", "shared goals", "evidence")
    for row in response.json()["ranking"]:
        table.add_row(
            row["department_name"],
            "yes" if row["eligible"] else "no",
            f"{row['score']:.3f}",
            "" if row["received_mean_overall"] is None else f"{row['received_mean_overall']:.2f}",
            str(row["shared_goals"]),
            "\n".join(row["evidence"]),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(results_app, name="results")
