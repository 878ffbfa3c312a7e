"""The sample strategy loads through the API onto the sample org, idempotently."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.goals.app import create_app
from services.goals.sample import DEFAULT_STRATEGY, SampleLoadError, load_org_snapshot, load_sample, read_strategy
from tests.support import api_client, auth

SAMPLE_ORG = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_org" / "org.json"


async def test_sample_strategy_loads_onto_the_sample_org(settings: Settings, database_url: str) -> None:
    cycle_id = f"cy-{uuid.uuid4().hex[:8]}"
    strategy = read_strategy(DEFAULT_STRATEGY)
    org = load_org_snapshot(SAMPLE_ORG, cycle_id)
    steps: list[str] = []
    async with api_client(create_app, settings, database_url) as client:
        client.headers.update(auth(settings, "hr_admin", sub="loader"))
        summary = await load_sample(
            client,
            cycle_id=cycle_id,
            strategy=strategy,
            org=org,
            approver=auth(settings, "hr_admin", sub="approver"),
            progress=lambda s, d, t: steps.append(s),
        )
        assert summary.participants_pushed == len(org.participants) >= 250
        assert summary.objectives_created == 4 and summary.kpis_created == 25 and summary.kpis_approved == 25
        # every participant sits under one of the eight top-level departments, each with a template
        assert summary.goals_created == len(org.participants)
        assert {a["target"] for a in summary.assignments} == {
            "executive",
            "production",
            "sales",
            "finance",
            "hr",
            "it",
            "procurement",
            "quality",
        }
        assert steps[-1] == "individual goal templates"

        weights = (await client.get(f"/v1/cycles/{cycle_id}/weights")).json()
        assert weights["valid"] is True, weights["problems"]
        catalog = (await client.get(f"/v1/cycles/{cycle_id}/kpi-catalog")).json()
        metrics = {k["metric"] for k in catalog["kpis"]}
        assert {
            "sales.revenue",
            "sales.orders",
            "finance.cost",
            "finance.budget_variance",
            "production.output_units",
            "production.defect_rate",
            "production.on_time_delivery",
            "hr.attrition_rate",
            "it.uptime",
            "procurement.supplier_lead_time",
            "quality.first_pass_yield",
        } <= metrics
        owners = {k["metric"]: k["owner_department_id"] for k in catalog["kpis"] if k["level"] != "individual"}
        assert owners["finance.cost"] == "finance" and owners["finance.budget_variance"] == "finance"
        tree = (await client.get(f"/v1/cycles/{cycle_id}/tree")).json()
        assert [o["perspective"] for o in tree["objectives"]] == [
            "financial",
            "customer",
            "internal_process",
            "learning_growth",
        ]

        again = await load_sample(client, cycle_id=cycle_id, strategy=strategy)
        assert again.objectives_existing == 4 and again.kpis_existing == 25 and again.kpis_approved == 0
        assert again.goals_created == 0

        await client.post(f"/v1/cycles/{cycle_id}/freeze")
        with pytest.raises(SampleLoadError, match="frozen"):
            await load_sample(client, cycle_id=cycle_id, strategy=strategy)


async def test_loader_without_a_snapshot_says_to_start_the_cycle(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, settings, database_url) as client:
        client.headers.update(auth(settings, "hr_admin", sub="loader"))
        with pytest.raises(SampleLoadError, match=r"creating company KPI 'ck-revenue' failed \(HTTP 409\): .*starts"):
            await load_sample(client, cycle_id="cy-empty", strategy=read_strategy(DEFAULT_STRATEGY))


def test_bad_strategy_files_are_reported_with_the_field(tmp_path: Path) -> None:
    broken = tmp_path / "s.json"
    broken.write_text('{"period": {"period_start": "2026-01-01", "period_end": "2026-12-31"}, "objectives": [')
    with pytest.raises(SampleLoadError, match="not valid JSON: line 1"):
        read_strategy(broken)
    broken.write_text(
        '{"period": {"period_start": "2026-01-01", "period_end": "2026-12-31"}, '
        '"objectives": [{"objective_id": "o", "name": "x", "perspective": "fun"}], "company_kpis": []}'
    )
    with pytest.raises(SampleLoadError, match=r"objectives\.0\.perspective"):
        read_strategy(broken)
