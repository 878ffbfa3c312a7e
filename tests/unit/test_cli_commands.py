"""Every documented `tandem` command exists (the README's first command is `tandem demo`)."""

from __future__ import annotations

from typer.testing import CliRunner

from services.cli import app

README_COMMANDS = (
    "up", "down", "status", "token", "serve", "worker", "demo", "simulate", "audit",
    "org", "template", "cycle", "goals", "tracking", "evaluation", "results",
)  # fmt: skip


def test_every_documented_command_is_registered() -> None:
    runner = CliRunner()
    for command in README_COMMANDS:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, f"`tandem {command}` is missing: {result.output[-500:]}"
