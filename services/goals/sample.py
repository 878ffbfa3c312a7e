"""Load a strategy file (``docs/examples/sample_strategy.json``) into a cycle through the goals API.

It only talks HTTP, so it works against the running stack (``tandem goals load-sample``) and, in tests,
against the app over an ASGI transport. Re-running is safe: existing objectives and KPIs are skipped,
approved KPIs stay approved and bulk assignment skips who already has a template.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.goals import GoalLevel
from contracts.org import DepartmentRef, OrgSnapshot, Participant
from services.common.client import response_detail
from services.goals.schemas import BulkAssignRequest, CycleSettingsUpdate, GoalCreate, ObjectiveCreate

__all__ = [
    "DEFAULT_STRATEGY",
    "LoadSummary",
    "SampleLoadError",
    "StrategyFile",
    "load_org_snapshot",
    "load_sample",
    "read_strategy",
]

DEFAULT_STRATEGY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sample_strategy.json"

Progress = Callable[[str, int, int], None]
"""``(step description, done, total)``."""


class SampleLoadError(RuntimeError):
    """A step failed; the message names the step, the object and the server's reason."""


def _with_level(level: GoalLevel) -> Any:
    def inject(value: Any) -> Any:
        if isinstance(value, list):
            return [{**item, "level": level.value} if isinstance(item, dict) else item for item in value]
        return value

    return inject


class StrategyFile(BaseModel):
    """The strategy file: period, objectives, company KPIs, department KPIs, individual templates."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    period: CycleSettingsUpdate
    objectives: list[ObjectiveCreate] = Field(min_length=1)
    company_kpis: list[GoalCreate] = Field(min_length=1)
    department_kpis: list[GoalCreate] = Field(default_factory=list)
    individual_templates: list[BulkAssignRequest] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _levels(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            data["company_kpis"] = _with_level(GoalLevel.COMPANY)(data.get("company_kpis", []))
            data["department_kpis"] = _with_level(GoalLevel.DEPARTMENT)(data.get("department_kpis", []))
        return data

    @model_validator(mode="after")
    def _ids(self) -> StrategyFile:
        for goal in [*self.company_kpis, *self.department_kpis]:
            if goal.goal_id is None:
                raise ValueError(f"KPI {goal.name!r} needs a goal_id (the loader uses ids to stay idempotent)")
        for objective in self.objectives:
            if objective.objective_id is None:
                raise ValueError(f"objective {objective.name!r} needs an objective_id")
        return self


def read_strategy(path: Path) -> StrategyFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SampleLoadError(f"cannot read strategy file {path}: {exc.strerror}") from exc
    try:
        return StrategyFile.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise SampleLoadError(f"{path} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10])
        raise SampleLoadError(f"{path} does not match the strategy format: {problems}") from exc


def load_org_snapshot(path: Path, cycle_id: str) -> OrgSnapshot:
    """An OrgSnapshot from an org JSON (``{"departments": [...], "employees"|"participants": [...]}``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        people = data.get("participants", data.get("employees", []))
        fields = set(Participant.model_fields)
        return OrgSnapshot(
            cycle_id=cycle_id,
            departments=[DepartmentRef.model_validate(d) for d in data["departments"]],
            participants=[Participant.model_validate({k: v for k, v in p.items() if k in fields}) for p in people],
        )
    except (OSError, ValueError, KeyError) as exc:
        raise SampleLoadError(f"cannot use {path} as an org snapshot: {exc}") from exc


@dataclass
class LoadSummary:
    cycle_id: str
    objectives_created: int = 0
    objectives_existing: int = 0
    kpis_created: int = 0
    kpis_existing: int = 0
    kpis_approved: int = 0
    participants_pushed: int | None = None
    assignments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def goals_created(self) -> int:
        return sum(int(a["created"]) for a in self.assignments)


async def _call(
    client: httpx.AsyncClient,
    what: str,
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    try:
        response = await client.request(method, path, json=body, headers=headers)
    except httpx.TransportError as exc:
        raise SampleLoadError(
            f"{what}: cannot reach the goals service at {client.base_url} ({type(exc).__name__}); "
            "is the stack running (`tandem up`)? Or set TANDEM_GOALS_URL."
        ) from exc
    if response.status_code >= 400:
        raise SampleLoadError(f"{what} failed (HTTP {response.status_code}): {response_detail(response)}")
    return response.json() if response.content else None


async def _existing_goals(client: httpx.AsyncClient, base: str, level: GoalLevel) -> dict[str, str]:
    """goal_id -> status of every goal at ``level``."""
    found: dict[str, str] = {}
    offset = 0
    while True:
        page = await _call(
            client, f"listing {level.value} KPIs", "GET", f"{base}/goals?level={level.value}&limit=500&offset={offset}"
        )
        found.update({g["goal_id"]: g["status"] for g in page["items"]})
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return found


async def _create_missing(
    client: httpx.AsyncClient,
    path: str,
    items: Sequence[tuple[str, str, BaseModel]],
    existing: set[str],
    step: str,
    report: Progress,
) -> list[str]:
    """POST each ``(id, description, body)`` whose id is not in ``existing``; the ids created, in order.

    An id seen once counts as existing afterwards, so a file naming it twice creates it once.
    """
    created: list[str] = []
    for done, (item_id, what, body) in enumerate(items, start=1):
        if item_id not in existing:
            await _call(client, f"creating {what}", "POST", path, body.model_dump(mode="json", exclude_none=True))
            existing.add(item_id)
            created.append(item_id)
        report(step, done, len(items))
    return created


async def load_sample(
    client: httpx.AsyncClient,
    *,
    cycle_id: str,
    strategy: StrategyFile,
    approve: bool = True,
    approver: Mapping[str, str] | None = None,
    org: OrgSnapshot | None = None,
    progress: Progress | None = None,
) -> LoadSummary:
    """Create the whole tree through the API; ``client`` carries an hr_admin token.

    With ``approve``, ``client`` submits the company and department KPIs and ``approver`` (the headers of
    a second hr_admin) approves them: nobody approves what they submitted.
    """
    report = progress or (lambda _step, _done, _total: None)
    base = f"/v1/cycles/{cycle_id}"
    summary = LoadSummary(cycle_id=cycle_id)

    settings = await _call(client, "reading the cycle settings", "GET", f"{base}/settings")
    if settings["frozen"]:
        raise SampleLoadError(f"goal setting of cycle '{cycle_id}' is frozen; load the sample into a new cycle")
    if org is not None:
        accepted = await _call(
            client, "pushing the org snapshot", "PUT", f"{base}/participants", org.model_dump(mode="json")
        )
        summary.participants_pushed = accepted["participants"]
    await _call(client, "setting the cycle period", "PUT", f"{base}/settings", strategy.period.model_dump(mode="json"))

    existing_objectives = {
        o["objective_id"] for o in await _call(client, "listing objectives", "GET", f"{base}/objectives?limit=500")
    }
    # StrategyFile made sure every objective and KPI has an id (the `or ""` is for the type checker)
    objectives = [(o.objective_id or "", f"objective '{o.objective_id}'", o) for o in strategy.objectives]
    created = await _create_missing(client, f"{base}/objectives", objectives, existing_objectives, "objectives", report)
    summary.objectives_created = len(created)
    summary.objectives_existing = len(objectives) - len(created)

    kpis = [*strategy.company_kpis, *strategy.department_kpis]
    statuses = await _existing_goals(client, base, GoalLevel.COMPANY)
    statuses |= await _existing_goals(client, base, GoalLevel.DEPARTMENT)
    goals = [(k.goal_id or "", f"{k.level.value} KPI '{k.goal_id}'", k) for k in kpis]
    step = "company and department KPIs"
    created = await _create_missing(client, f"{base}/goals", goals, set(statuses), step, report)
    statuses |= dict.fromkeys(created, "draft")
    summary.kpis_created = len(created)
    summary.kpis_existing = len(kpis) - len(created)

    if approve:
        for done, kpi in enumerate(kpis, start=1):
            status = statuses[kpi.goal_id or ""]
            if status in ("draft", "returned"):
                await _call(client, f"submitting KPI '{kpi.goal_id}'", "POST", f"{base}/goals/{kpi.goal_id}/submit")
                status = "submitted"
            if status == "submitted":
                if approver is None:
                    raise SampleLoadError(
                        f"approving KPI '{kpi.goal_id}' needs a second hr_admin (approver=...): nobody approves "
                        "what they submitted"
                    )
                await _call(
                    client,
                    f"approving KPI '{kpi.goal_id}'",
                    "POST",
                    f"{base}/goals/{kpi.goal_id}/approve",
                    None,
                    approver,
                )
                summary.kpis_approved += 1
            report("submitting and approving KPIs", done, len(kpis))

    for done, template in enumerate(strategy.individual_templates, start=1):
        target = template.department_id or template.job_title
        result = await _call(
            client,
            f"bulk-assigning template '{template.template_key}' to {target}",
            "POST",
            f"{base}/goals/bulk-assign",
            template.model_dump(mode="json", exclude_none=True),
        )
        summary.assignments.append(
            {
                "template_key": template.template_key,
                "target": target,
                "matched": result["matched"],
                "created": result["created"],
                "skipped": result["skipped"],
            }
        )
        report("individual goal templates", done, len(strategy.individual_templates))
    return summary
