"""Goal actuals come only from the workflow's hr_admin service token, and only as finite numbers
(issue 14: ops could write them, NaN included)."""

from __future__ import annotations

import pytest

from services.common.settings import Settings
from tests.integration.test_goals_helpers import seeded
from tests.support import auth


def export(cycle_id: str, value: str) -> str:
    """A progress export as raw JSON text: Python's parser (and FastAPI's) accept NaN and Infinity."""
    return (
        f'{{"cycle_id": "{cycle_id}", "as_of": "2026-06-30T00:00:00Z", "actuals": ['
        f'{{"kpi_id": "i_s1", "actual_value": 40, "event_count": 1}}, '
        f'{{"kpi_id": "i_s2", "actual_value": {value}, "event_count": 1}}]}}'
    )


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_actuals_are_refused_naming_the_field(
    value: str, settings: Settings, database_url: str
) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        headers = {**w.hr(), "Content-Type": "application/json"}
        refused = await w.client.put(f"{w.base}/progress", content=export(w.cycle_id, value), headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "actuals.1.actual_value"
        assert "i_s2" in refused.json()["detail"] and "finite" in refused.json()["detail"]
        tree = (await w.client.get(f"{w.base}/tree", headers=w.hr())).json()
        assert "NaN" not in str(tree) and "i_s1" in str(tree)
        stored = await w.client.put(f"{w.base}/progress", content=export(w.cycle_id, "55.5"), headers=headers)
        assert stored.status_code == 200 and stored.json()["updated"] == 2


async def test_only_the_workflow_token_writes_actuals_ops_reads_exports(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        body = export(w.cycle_id, "12")
        ops = {**auth(settings, "ops", sub="ops-olga"), "Content-Type": "application/json"}
        refused = await w.client.put(f"{w.base}/progress", content=body, headers=ops)
        assert refused.status_code == 403 and "hr_admin" in refused.json()["detail"]
        worker = {**auth(settings, "hr_admin", "ops", sub="system:worker"), "Content-Type": "application/json"}
        accepted = await w.client.put(f"{w.base}/progress", content=body, headers=worker)
        assert accepted.status_code == 200, accepted.text
        assert (await w.client.get(f"{w.base}/goal-export", headers=ops)).status_code == 200
