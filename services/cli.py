"""The ``tandem`` command.

``up``/``down``/``status`` manage the embedded local stack; ``token`` mints dev
tokens; ``serve`` and ``worker`` run one service or the worker (what ``up``
starts, and what production containers run); ``audit verify`` checks each
service's audit-log hash chain. Service-specific commands are registered from
``services/<name>/cli.py`` when that module exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["app", "main"]

app = typer.Typer(help="Tandem: performance review cycles as durable workflows.", no_args_is_help=True)
console = Console()

StateDir = Annotated[Path, typer.Option("--state-dir", envvar="TANDEM_STATE_DIR", help="State directory.")]


def _dev_default() -> None:
    """Local-stack commands are development tools: default TANDEM_ENV to dev for them only."""
    os.environ.setdefault("TANDEM_ENV", "dev")


@app.command()
def up(
    kafka: Annotated[
        str, typer.Option(help="Kafka provider: apache | embedded | external | auto.", envvar="TANDEM_KAFKA")
    ] = "auto",
    kafka_bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Bootstrap servers for --kafka external.", envvar="TANDEM_KAFKA_BOOTSTRAP_SERVERS"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL, or 'postgres' for a local throwaway cluster. Default: SQLite files.",
            envvar="TANDEM_DATABASE_URL",
        ),
    ] = None,
    temporal_address: Annotated[
        str | None,
        typer.Option(help="Use this Temporal instead of starting the dev server.", envvar="TANDEM_TEMPORAL_ADDRESS"),
    ] = None,
    state_dir: StateDir = Path(".tandem"),
) -> None:
    """Start Temporal, Kafka, the database, every service and the worker; Ctrl-C stops all."""
    _dev_default()
    from devtools.stack.local import LocalStack, StackConfig

    if kafka not in {"apache", "embedded", "external", "auto"}:
        raise typer.BadParameter("choose one of apache, embedded, external, auto", param_hint="--kafka")
    stack = LocalStack(
        StackConfig(
            state_dir=state_dir,
            kafka=kafka,
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            database_url=database_url,
            temporal_address=temporal_address,
        )
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with console.status("starting the Tandem stack...") as status:

            def progress(message: str) -> None:
                status.update(message)
                console.log(message)

            await stack.start(progress)
        _print_urls(stack)
        console.print("[bold green]Tandem is up.[/] Press Ctrl-C to stop (or run `tandem down`).")
        await stop.wait()
        console.print("stopping...")
        await stack.stop(console.log)
        console.print("[bold]stopped.[/]")

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - shown to the user, exit non-zero
        console.print(f"[bold red]tandem up failed:[/] {exc}")
        raise typer.Exit(1) from exc


def _print_urls(stack: Any) -> None:
    table = Table(title="Tandem local stack")
    table.add_column("component")
    table.add_column("where")
    table.add_row("Temporal gRPC", stack.temporal_address)
    table.add_row("Temporal Web UI", stack.temporal_ui_url or "-")
    table.add_row(f"Kafka ({stack.kafka.provider})", stack.kafka.bootstrap_servers)
    table.add_row("database", stack.database_display)
    for name in stack.children:
        if name == "worker":
            continue
        port = stack.config.service_ports[name]
        table.add_row(f"{name} API docs", f"http://{stack.config.host}:{port}/docs")
    table.add_row("state", str(stack.state_dir))
    console.print(table)


@app.command()
def down(state_dir: StateDir = Path(".tandem")) -> None:
    """Stop a running `tandem up` (it stops its children)."""
    from devtools.stack.local import read_stack_file

    data = read_stack_file(state_dir)
    if data is None:
        console.print(f"no running stack found in {state_dir}")
        return
    pid = int(data["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        console.print(f"stack process {pid} is gone; cleaning up leftovers")
        _kill_leftovers(data)
        (state_dir / "stack.json").unlink(missing_ok=True)
        return
    with console.status(f"waiting for tandem up (pid {pid}) to stop..."):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.3)
        else:
            console.print("[red]stack did not stop in 60s; killing its processes[/]")
            _kill_leftovers(data)
            os.kill(pid, signal.SIGKILL)
    console.print("[bold]stack stopped.[/]")


def _kill_leftovers(data: dict[str, Any]) -> None:
    pids = [data["temporal"].get("pid"), data["kafka"].get("pid"), data.get("postgres_pid")]
    pids += [svc.get("pid") for svc in data.get("services", {}).values()]
    pids.append(data.get("worker", {}).get("pid"))
    for pid in pids:
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)


@app.command()
def status(state_dir: StateDir = Path(".tandem")) -> None:
    """Health of each component of the running local stack (exit 1 if any is unhealthy)."""
    _dev_default()
    from devtools.stack.health import check_stack
    from devtools.stack.local import read_stack_file

    data = read_stack_file(state_dir)
    if data is None:
        console.print(f"[red]no running stack in {state_dir}[/]; start one with `tandem up`")
        raise typer.Exit(1)
    results = asyncio.run(check_stack(data))
    table = Table(title="Tandem status")
    table.add_column("component")
    table.add_column("healthy")
    table.add_column("detail")
    for name, ok, detail in results:
        table.add_row(name, "[green]yes[/]" if ok else "[red]NO[/]", detail)
    console.print(table)
    if not all(ok for _, ok, _ in results):
        raise typer.Exit(1)


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="Subject (user id).")],
    role: Annotated[list[str], typer.Option(help="Role; repeat for several.")],
    employee_id: Annotated[str | None, typer.Option(help="Employee id claim (for row scoping).")] = None,
    department_id: Annotated[str | None, typer.Option(help="Department id claim.")] = None,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
) -> None:
    """Mint a development token: `tandem token --sub alice --role hr_admin`."""
    _dev_default()
    from services.common.auth import mint_token
    from services.common.settings import Settings

    try:
        minted = mint_token(
            Settings(),
            sub=sub,
            roles=role,
            employee_id=employee_id,
            department_id=department_id,
            ttl_seconds=ttl,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    sys.stdout.write(minted + "\n")


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="cycles | goals | tracking | evaluation | feedback | results")],
    port: Annotated[int, typer.Option()] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
) -> None:
    """Run one service's HTTP API (what a production container runs)."""
    import uvicorn

    from devtools.stack.local import SERVICE_PORTS

    if service not in SERVICE_PORTS:
        raise typer.BadParameter(f"unknown service {service!r}; choose from {sorted(SERVICE_PORTS)}")
    module = importlib.import_module(f"services.{service}.app")
    try:
        application = module.app_from_env()
    except ValueError as exc:  # pydantic's ValidationError: a setting is wrong or missing
        console.print(f"[bold red]{service} refuses to start:[/] {exc}")
        raise typer.Exit(2) from exc
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command()
def worker(
    metrics_port: Annotated[int, typer.Option(help="Port of /healthz and /metrics.")] = 8009,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
) -> None:
    """Run the Temporal worker (workflows and activities)."""
    import logging

    from services.common.settings import Settings
    from workflows.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_worker(Settings(), metrics_port=metrics_port, host=host))


audit_app = typer.Typer(help="The services' append-only audit logs.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _audited_services() -> list[str]:
    """Every service with an Alembic history (each keeps an audit log)."""
    from services.common.migrations import SERVICES_DIR

    return sorted(p.parent.parent.name for p in SERVICES_DIR.glob("*/migrations/env.py"))


@audit_app.command("verify")
def audit_verify(
    services: Annotated[
        list[str] | None, typer.Argument(help="Services to check (default: every service with an audit log).")
    ] = None,
    database_url: Annotated[
        str,
        typer.Option(
            help="SQLAlchemy URL; '{service}' is replaced by each service's name.", envvar="TANDEM_DATABASE_URL"
        ),
    ] = "sqlite+aiosqlite:///.tandem/db/{service}.db",
) -> None:
    """Walk each service's audit-log hash chain; exit 1 at the first broken link, naming it.

    Prints each chain's head (entry number and hash): keep it somewhere outside the database,
    because removing entries from the end of a log leaves a shorter chain that is still valid.
    """
    from rich.markup import escape
    from sqlalchemy.exc import SQLAlchemyError

    from services.common.audit import ChainReport

    known = _audited_services()
    chosen = services or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise typer.BadParameter(f"unknown service(s) {unknown}; choose from {known}")
    broken = False
    for service in chosen:
        url = database_url.replace("{service}", service)
        try:
            report: ChainReport = asyncio.run(_verify_audit_chain(service, url))
        except SQLAlchemyError as exc:
            console.print(
                f"[bold red]{service}: could not read the audit log[/] "
                f"({escape(type(exc).__name__ + ': ' + str(getattr(exc, 'orig', exc)))})"
            )
            broken = True
            continue
        head = f"head #{report.head_seq} {report.head_hash}"
        if report.intact:
            console.print(f"{service}: {report.checked} entries, chain intact; {head}")
        else:
            broken = True
            where = f" (audit row id {report.audit_id})" if report.audit_id is not None else ""
            console.print(
                f"[bold red]{service}: BROKEN[/]{where}: {escape(str(report.problem))}; "
                f"{report.checked} entries verified"
            )
    if broken:
        raise typer.Exit(1)


async def _verify_audit_chain(service: str, url: str) -> Any:
    from services.common.audit import AuditMixin, verify_chain
    from services.common.db import create_engine

    models = importlib.import_module(f"services.{service}.models")
    model: Any = next(m.class_ for m in models.Base.registry.mappers if issubclass(m.class_, AuditMixin))
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: verify_chain(sync, model.__table__))
    finally:
        await engine.dispose()


COMMAND_MODULES = (
    "services.cycles.cli",
    "services.goals.cli",
    "services.tracking.cli",
    "services.evaluation.cli",
    "services.results.cli",
    "devtools.demo.cli",
)
"""The modules that add their commands to ``tandem`` (each has ``register(app)``)."""


def _register_service_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_service_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
