"""``tandem goals load-sample`` fails with a clear message when it cannot do its job."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from services.goals.cli import register


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root."""

    register(app)
    return app


def test_unreachable_service_is_reported_with_what_to_do() -> None:
    result = CliRunner().invoke(
        _app(),
        ["goals", "load-sample", "--cycle", "c1"],
        env={"TANDEM_ENV": "dev", "TANDEM_GOALS_URL": "http://127.0.0.1:9"},
    )
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "cannot reach the goals service at http://127.0.0.1:9" in output
    assert "tandem up" in output


def test_bad_strategy_file_is_rejected_before_any_call(tmp_path: Path) -> None:
    strategy = tmp_path / "strategy.json"
    strategy.write_text("{}")
    result = CliRunner().invoke(
        _app(), ["goals", "load-sample", "--cycle", "c1", "--file", str(strategy)], env={"TANDEM_ENV": "dev"}
    )
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "does not match the strategy format" in output and "period: Field required" in output
