"""The benchmarks in a small configuration, so they cannot go stale.

Each runs as its README command does (a subprocess), against this session's servers, and must
pass its own correctness checks. Speeds are printed, never asserted: the full configurations and
their figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


async def _run(*argv: str, timeout: float) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    tail = out.decode(errors="replace")[-4000:]
    print(tail)
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{tail}"


async def test_cycle_benchmark_small_configuration_passes_its_checks(temporal_server: Any, tmp_path: Path) -> None:
    report = tmp_path / "cycle.json"
    await _run(
        "-m", "bench.cycle",
        "--employees", "40", "--departments", "2", "--slow-departments", "1", "--stage-seconds", "2",
        "--address", temporal_server.address, "--json", str(report),
        timeout=300,
    )  # fmt: skip
    result = json.loads(report.read_text())
    assert result["all_checks_passed"] is True, result["rounds"][0]["checks"]
    checks = {c["name"]: c for c in result["rounds"][0]["checks"]}
    assert checks["each stage handoff ran exactly once, then the cycle recorded closed"]["ok"]
    assert result["median_ratio"] > 0
    assert result["median_cycle_total_s"] > 0 and result["median_baseline_total_s"] > 0


async def test_ingest_benchmark_small_configuration_counts_every_event(
    kafka_broker: Any, postgres_url: str, tmp_path: Path
) -> None:
    if kafka_broker.provider != "apache":
        pytest.skip("the ingestion benchmark measures Apache Kafka (idempotent producers)")
    report = tmp_path / "ingest.json"
    await _run(
        "bench/ingest.py",
        "--events", "5000", "--repeat", "1", "--max-records", "500",
        "--bootstrap", kafka_broker.bootstrap_servers, "--database-url", postgres_url, "--json", str(report),
        timeout=300,
    )  # fmt: skip
    result = json.loads(report.read_text())
    assert result["events"] == 5000
    [(label, entry)] = result["end_to_end"].items()
    assert label.startswith("end to end")
    assert entry["ratio_of_medians"] > 0
    assert result["raw_consume"]["events_per_s_median"] > 0


async def test_latency_benchmark_small_configuration_sees_every_event(
    kafka_broker: Any, postgres_url: str, tmp_path: Path
) -> None:
    """The accepted-to-visible benchmark at a small rate: generator, consumer and app in their own processes."""
    if kafka_broker.provider != "apache":
        pytest.skip("the ingestion benchmark measures Apache Kafka (idempotent producers)")
    report = tmp_path / "latency.json"
    await _run(
        "bench/ingest.py",
        "--latency", "500", "--latency-seconds", "2", "--repeat", "1",
        "--bootstrap", kafka_broker.bootstrap_servers, "--database-url", postgres_url, "--json", str(report),
        timeout=300,
    )  # fmt: skip
    result = json.loads(report.read_text())
    for path in ("kafka", "http"):
        (run,) = result["latency"][path]["rounds"]
        assert run["events"] > 0 and run["events_refused"] == 0 and not run["errors"], run
        assert run["rate_achieved"] > 0 and run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], run
