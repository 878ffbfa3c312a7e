"""``tandem evaluation ...``: score, inspect and close calibration of a cycle on a running stack."""

from __future__ import annotations

import os
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

console = Console()
evaluation = typer.Typer(help="Evaluation stage: scoring and calibration of a cycle.", no_args_is_help=True)

Cycle = Annotated[str, typer.Argument(help="The cycle id.")]


def _call(method: str, path: str, json: Any = None) -> Any:
    os.environ.setdefault("TANDEM_ENV", "dev")
    from services.common.auth import mint_token
    from services.common.settings import Settings

    settings = Settings()
    token = mint_token(settings, sub="tandem-cli", roles=["hr_admin"])
    try:
        response = httpx.request(
            method,
            f"{settings.evaluation_url}{path}",
            json=json,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.TransportError as exc:
        console.print(
            f"[red]cannot reach the evaluation service at {settings.evaluation_url}[/] ({exc}); "
            "start the stack with `tandem up` or set TANDEM_EVALUATION_URL"
        )
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        detail = response.json().get("detail", response.text) if response.content else response.reason_phrase
        raise typer.BadParameter(f"{method} {path}: {response.status_code} {detail}")
    return response.json()


def _print_distribution(report: dict[str, Any]) -> None:
    table = Table(title=f"Rating distribution ({report['total']} people)")
    for column in ("band", "count", "share", "guideline max", "violation"):
        table.add_column(column)
    for band in report["bands"]:
        limit = band.get("max_share")
        table.add_row(
            band["label"],
            str(band["count"]),
            f"{band['share']:.0%}",
            "" if limit is None else f"{limit:.0%}",
            band.get("violation") or "",
        )
    console.print(table)


@evaluation.command()
def score(cycle_id: Cycle) -> None:
    """Compute every participant's score and show the distribution."""
    summary = _call("POST", f"/v1/cycles/{cycle_id}/scores/compute")
    console.print(f"scored {summary['scored']}, kept {summary['kept_calibrated']} calibrated")
    if summary["unscored"]:
        console.print(f"[yellow]no score yet:[/] {', '.join(summary['unscored'])}")
    _print_distribution(summary["distribution"])


@evaluation.command()
def calibration(cycle_id: Cycle) -> None:
    """Show the distribution against the guideline and the lenient/strict deviation report."""
    _print_distribution(_call("GET", f"/v1/cycles/{cycle_id}/calibration/distribution"))
    report = _call("GET", f"/v1/cycles/{cycle_id}/calibration/deviation")
    table = Table(title=f"Deviation (company mean {report['company_mean']}, z threshold {report['z_threshold']})")
    for column in ("group", "kind", "n", "mean", "z", "flag"):
        table.add_column(column)
    for kind in ("by_department", "by_manager"):
        for row in report[kind]:
            table.add_row(
                row["group_id"], kind[3:], str(row["count"]), str(row["mean"]), str(row["z_score"]), row["flag"] or ""
            )
    console.print(table)


@evaluation.command()
def close(cycle_id: Cycle) -> None:
    """Close calibration (results become final; later changes only through appeals)."""
    answer = _call("POST", f"/v1/cycles/{cycle_id}/calibration/close")
    console.print(f"calibration closed at {answer['calibration_closed_at']}")


def register(app: typer.Typer) -> None:
    app.add_typer(evaluation, name="evaluation")
