"""``tandem org|template|cycle`` commands: talk to the running cycles service as a dev hr_admin.

The service URL is ``TANDEM_CYCLES_URL`` (default http://127.0.0.1:8000); the token is minted
with the local dev secret, so these are development tools (``TANDEM_ENV`` defaults to dev).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

__all__ = ["SAMPLE_ORG_DIR", "register"]

SAMPLE_ORG_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org"
"""The Northwind Manufacturing sample (``tandem org import --sample``)."""

console = Console()
err_console = Console(stderr=True)


class CyclesApi:
    """A small synchronous client of the cycles service with user-facing error handling."""

    def __init__(self) -> None:
        os.environ.setdefault("TANDEM_ENV", "dev")
        from services.common.auth import mint_token
        from services.common.settings import Settings

        try:
            settings = Settings()
        except ValueError as exc:
            err_console.print(f"[bold red]invalid settings:[/] {exc}")
            raise typer.Exit(2) from exc
        self.base_url = settings.cycles_url.rstrip("/")
        token = mint_token(settings, sub="cli:hr_admin", roles=["hr_admin"])
        self.client = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120.0)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            err_console.print(
                f"[bold red]cannot reach the cycles service at {self.base_url}[/] ({type(exc).__name__}). "
                "Is the stack running? Start it with `tandem up`, or point TANDEM_CYCLES_URL at it."
            )
            raise typer.Exit(1) from exc
        if response.status_code >= 400:
            _print_error(response)
            raise typer.Exit(1)
        return response.json()


def _print_error(response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        err_console.print(f"[bold red]HTTP {response.status_code}[/]: {response.text[:2000]}")
        return
    detail = body.get("detail") if isinstance(body, dict) else body
    err_console.print(f"[bold red]HTTP {response.status_code}[/]: {detail}")
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return
    if "row" in errors[0]:
        table = Table(title=f"{len(errors)} problem(s); nothing was imported")
        for column in ("file", "row", "column", "value", "message"):
            table.add_column(column)
        columns = ("file", "row", "column", "value", "message")
        for e in errors:
            table.add_row(*("" if e.get(k) is None else str(e.get(k)) for k in columns))
        err_console.print(table)
    else:
        for e in errors:
            err_console.print(f"  - {e.get('field') or 'body'}: {e.get('message')}")


@contextmanager
def _busy(message: str) -> Iterator[None]:
    with console.status(message):
        yield


def _org_upload(path: Path | None, sample: bool) -> tuple[dict[str, Any], str]:
    """Request kwargs for the org file(s) at ``path`` (a .json file, or a folder with the two CSVs)."""
    if sample:
        if path is not None:
            raise typer.BadParameter("give either a path or --sample, not both")
        path = SAMPLE_ORG_DIR
        if not path.is_dir():
            raise typer.BadParameter(f"the sample org is not installed at {path} (it ships in the source tree)")
    if path is None:
        raise typer.BadParameter("give the org file (org.json, or a folder with departments.csv and employees.csv)")
    if path.is_dir():
        departments, employees = path / "departments.csv", path / "employees.csv"
        missing = [str(p) for p in (departments, employees) if not p.is_file()]
        if missing:
            raise typer.BadParameter(f"{path} has no {', '.join(missing)}")
        files = {
            "departments": (departments.name, departments.read_bytes(), "text/csv"),
            "employees": (employees.name, employees.read_bytes(), "text/csv"),
        }
        return {"files": files}, f"{departments} + {employees}"
    if not path.is_file():
        raise typer.BadParameter(f"{path} does not exist")
    if path.suffix.lower() == ".csv":
        raise typer.BadParameter("a CSV import is two files: pass the folder holding departments.csv and employees.csv")
    return {"content": path.read_bytes(), "headers": {"Content-Type": "application/json"}}, str(path)


def _counts_table(report: dict[str, Any]) -> Table:
    table = Table(title="org import" + (" (dry run: nothing changed)" if report["dry_run"] else ""))
    table.add_column("")
    for column in ("created", "updated", "unchanged", "deactivated"):
        table.add_column(column, justify="right")
    for kind in ("departments", "employees"):
        counts = report[kind]
        table.add_row(kind, *(str(counts[c]) for c in ("created", "updated", "unchanged", "deactivated")))
    return table


def _cycles_table(cycles: list[dict[str, Any]]) -> Table:
    table = Table(title="cycles")
    for column in ("id", "name", "status", "period", "departments", "participants", "distribution"):
        table.add_column(column, no_wrap=column in ("id", "status"))
    for c in cycles:
        delivered = sum(1 for d in c["distribution"] if d["status"] == "delivered")
        table.add_row(
            c["cycle_id"],
            c["name"],
            c["status"],
            f"{c['period_start']} .. {c['period_end']}",
            ", ".join(c["department_ids"]),
            "" if c["participants"] is None else str(c["participants"]),
            f"{delivered}/{len(c['distribution'])} delivered" if c["distribution"] else "",
        )
    return table


def _print_distribution(rows: list[dict[str, Any]]) -> None:
    for d in rows:
        if d["status"] == "delivered":
            console.print(f"  [green]delivered[/] to {d['service']}")
        else:
            console.print(f"  [yellow]pending[/]   {d['service']}: {d['last_error']}")
    if any(d["status"] != "delivered" for d in rows):
        console.print("retry with `tandem cycle distribute <id>` once those services are up")


def register(app: typer.Typer) -> None:
    org = typer.Typer(help="The org directory (cycles service).", no_args_is_help=True)
    template = typer.Typer(help="Cycle templates (cycles service).", no_args_is_help=True)
    cycle = typer.Typer(help="Review cycles (cycles service).", no_args_is_help=True)
    app.add_typer(org, name="org")
    app.add_typer(template, name="template")
    app.add_typer(cycle, name="cycle")

    @org.command("import")
    def org_import(
        path: Annotated[
            Path | None, typer.Argument(help="org.json, or a folder with departments.csv and employees.csv.")
        ] = None,
        sample: Annotated[bool, typer.Option("--sample", help="Import the Northwind Manufacturing sample.")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and count; change nothing.")] = False,
    ) -> None:
        """Import the whole org directory (all or nothing; the same file twice is a no-op)."""
        request, what = _org_upload(path, sample)
        api = CyclesApi()
        with _busy(f"importing {what}..."):
            report = api.call("POST", "/v1/org/import", params={"dry_run": dry_run}, **request)
        console.print(_counts_table(report))
        if not report["changed"]:
            console.print("nothing changed: the directory already matches this file")

    @template.command("sample")
    def template_sample() -> None:
        """Print a complete sample template as JSON (edit it, then `tandem template create`)."""
        from services.cycles.service import sample_template

        typer.echo(sample_template().model_dump_json(indent=2))

    @template.command("create")
    def template_create(
        file: Annotated[Path, typer.Argument(help="Template JSON (see `tandem template sample`).")],
    ) -> None:
        """Create a cycle template from a JSON file."""
        try:
            spec = json.loads(file.read_text())
        except FileNotFoundError as exc:
            raise typer.BadParameter(f"{file} does not exist") from exc
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"{file} is not valid JSON: {exc}") from exc
        created = CyclesApi().call("POST", "/v1/templates", json=spec)
        console.print(f"created template [bold]{created['template_id']}[/] ({created['name']})")

    @template.command("list")
    def template_list() -> None:
        """List cycle templates."""
        page = CyclesApi().call("GET", "/v1/templates", params={"limit": 500})
        table = Table(title="templates")
        for column in ("id", "name", "version", "stages (days)"):
            table.add_column(column, no_wrap=column == "id")
        for t in page["items"]:
            stages = ", ".join(f"{s['stage']} {s['duration_days']}" for s in t["spec"]["stages"])
            table.add_row(t["template_id"], t["name"], str(t["version"]), stages)
        console.print(table)

    @cycle.command("create")
    def cycle_create(
        name: Annotated[str, typer.Option(help="Cycle name, e.g. 'FY2025 annual review'.")],
        template_ref: Annotated[str, typer.Option("--template", help="Template id or name.")],
        start: Annotated[str, typer.Option(help="Period start, YYYY-MM-DD.")],
        end: Annotated[str, typer.Option(help="Period end, YYYY-MM-DD.")],
        departments: Annotated[str, typer.Option(help="Comma-separated department ids, e.g. sales,finance.")],
    ) -> None:
        """Create a draft cycle."""
        try:
            period = (date.fromisoformat(start), date.fromisoformat(end))
        except ValueError as exc:
            raise typer.BadParameter(f"dates are YYYY-MM-DD: {exc}") from exc
        department_ids = [d.strip() for d in departments.split(",") if d.strip()]
        if not department_ids:
            raise typer.BadParameter("name at least one department", param_hint="--departments")
        api = CyclesApi()
        templates = api.call("GET", "/v1/templates", params={"limit": 500})["items"]
        matches = [t for t in templates if template_ref in (t["template_id"], t["name"])]
        if not matches:
            known = ", ".join(f"{t['template_id']} ({t['name']})" for t in templates) or "none yet"
            raise typer.BadParameter(f"no template {template_ref!r}; templates: {known}", param_hint="--template")
        created = api.call(
            "POST",
            "/v1/cycles",
            json={
                "name": name,
                "template_id": matches[0]["template_id"],
                "period_start": period[0].isoformat(),
                "period_end": period[1].isoformat(),
                "department_ids": department_ids,
            },
        )
        console.print(
            f"created draft cycle [bold]{created['cycle_id']}[/]; start it with "
            f"`tandem cycle start {created['cycle_id']}`"
        )

    @cycle.command("start")
    def cycle_start(cycle_id: Annotated[str, typer.Argument(help="The cycle id.")]) -> None:
        """Start a draft cycle: freeze the org snapshot and send it to the stage services."""
        api = CyclesApi()
        with _busy(f"starting {cycle_id}: freezing the org snapshot and distributing it..."):
            started = api.call("POST", f"/v1/cycles/{cycle_id}/start")
        console.print(f"cycle [bold]{cycle_id}[/] is {started['status']} with {started['participants']} participants")
        _print_distribution(started["distribution"])

    @cycle.command("distribute")
    def cycle_distribute(
        cycle_id: Annotated[str, typer.Argument(help="The cycle id.")],
        everyone: Annotated[bool, typer.Option("--all", help="Send to every service again.")] = False,
    ) -> None:
        """Retry sending the cycle's snapshot to the stage services that have not received it."""
        api = CyclesApi()
        with _busy(f"distributing the snapshot of {cycle_id}..."):
            rows = api.call("POST", f"/v1/cycles/{cycle_id}/distribute", params={"everyone": everyone})
        _print_distribution(rows)

    @cycle.command("list")
    def cycle_list(
        status: Annotated[str | None, typer.Option(help="draft | active | paused | cancelled | closed")] = None,
    ) -> None:
        """List cycles, newest first."""
        params: dict[str, Any] = {"limit": 500}
        if status:
            params["status"] = status
        page = CyclesApi().call("GET", "/v1/cycles", params=params)
        console.print(_cycles_table(page["items"]))
