"""The ``tandem org|template|cycle`` commands against a real cycles server (uvicorn on a free port)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import typer
import uvicorn
from typer.testing import CliRunner, Result

from services.common.settings import Settings
from services.cycles.app import create_app
from services.cycles.cli import register
from services.cycles.service import STAGE_SERVICES

UNREACHABLE = "http://127.0.0.1:9"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def cycles_server(settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    app_settings = settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/cycles.db"}
        | {f"{svc}_url": UNREACHABLE for svc in STAGE_SERVICES}
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(app_settings), host="127.0.0.1", port=port, log_level="warning", ws="none")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the cycles server did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


async def run(*args: str) -> Result:
    """Run a command in a thread: the server it calls runs on this event loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli(), list(args))


async def test_a_new_user_sets_up_a_cycle_from_the_cli(
    cycles_server: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_CYCLES_URL", cycles_server)
    monkeypatch.setenv("TANDEM_JWT_SECRET", settings.jwt_secret)
    monkeypatch.setenv("COLUMNS", "200")

    imported = await run("org", "import", "--sample")
    assert imported.exit_code == 0, imported.output
    assert "305" in imported.output
    again = await run("org", "import", "--sample")
    assert "nothing changed" in again.output

    sample = await run("template", "sample")
    template_file = tmp_path / "template.json"
    template_file.write_text(sample.output)
    bad = json.loads(sample.output)
    bad["scoring"]["weights"]["kpi"] = 10
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(bad))
    rejected = await run("template", "create", str(bad_file))
    assert rejected.exit_code == 1 and "must sum to 100, got 60" in rejected.output
    created = await run("template", "create", str(template_file))
    assert created.exit_code == 0 and "created template" in created.output

    cycle = await run(
        "cycle",
        "create",
        "--name",
        "FY2025",
        "--template",
        "Annual performance review",
        "--start",
        "2025-01-01",
        "--end",
        "2025-12-31",
        "--departments",
        "sales,finance",
    )
    assert cycle.exit_code == 0, cycle.output
    cycle_id = cycle.output.split("created draft cycle ")[1].split(";")[0].strip()
    unknown = await run(
        "cycle",
        "create",
        "--name",
        "x",
        "--template",
        "Annual performance review",
        "--start",
        "2025-01-01",
        "--end",
        "2025-12-31",
        "--departments",
        "marketing",
    )
    assert unknown.exit_code == 1 and "unknown department(s) ['marketing']" in unknown.output

    started = await run("cycle", "start", cycle_id)
    assert started.exit_code == 0, started.output
    assert "active with 68 participants" in started.output and "pending" in started.output
    listed = await run("cycle", "list")
    assert cycle_id in listed.output and "active" in listed.output


async def test_a_clear_error_when_the_stack_is_not_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_CYCLES_URL", UNREACHABLE)
    result = await run("cycle", "list")
    assert result.exit_code == 1
    assert "cannot reach the cycles service at http://127.0.0.1:9" in result.output
    assert "tandem up" in result.output
