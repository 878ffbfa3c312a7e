"""one scoring contract: stored configurations in the EvaluationConfig shape

Each cycle's configuration is stored as JSON (``evaluation_input``, kind ``config``). The
evaluation service now reads it as ``contracts.evaluation.EvaluationConfig``, whose scoring part
is the template's ``ScoringConfig``. This rewrites configurations stored in the earlier shape so
that they score as before:

* ``component_weights`` -> ``weights``: the goal component ``goals`` is ``kpi``; weights of
  components the formula never reads are dropped (they only labelled the breakdown), and the
  rest are scaled to sum to 100 (``weighted()`` divided by their sum anyway);
* ``formula``: ``weighted()`` becomes the weighted sum ``w_kpi * kpi + ...`` of the weighted
  components (the same value, missing components renormalised alike); ``goals`` is renamed
  ``kpi`` elsewhere. A formula using what the grammar no longer has (``weighted(...)`` with
  arguments, ``round``, ``abs``, ``**``) is kept as it was: loading it answers 409 asking for
  the configuration to be sent again;
* rating bands ``{label, min, max}`` -> ``{label, min_score, max_score}``, lowest first;
* ``calibration_guideline`` shares -> ``calibration.limits`` in percent.

The module carries its own copy of both shapes on purpose: a migration must keep working after
the contracts move on.

Revision ID: 30176ec0b64c
Revises: 0557ad7ab53a
Create Date: 2026-12-01 00:00:00.000000

"""

import ast
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "30176ec0b64c"
down_revision: str | Sequence[str] | None = "0557ad7ab53a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMPONENTS = ("kpi", "self", "manager", "peer", "cross_department", "collaboration")
_OLD_DEFAULT_WEIGHTS = {"goals": 50.0, "manager": 30.0, "peer": 10.0, "cross_department": 10.0}
_INPUTS = sa.table("evaluation_input", sa.column("cycle_id"), sa.column("kind"), sa.column("payload"))


def _rewrite(formula: str, names: dict[str, Any]) -> str:
    """``formula`` with each name in ``names`` replaced by the new name (str) or constant (float)."""

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.expr:
            new = names.get(node.id)
            if isinstance(new, str):
                return ast.copy_location(ast.Name(id=new, ctx=ast.Load()), node)
            if isinstance(new, float):
                return ast.copy_location(ast.Constant(value=new), node)
            return node

    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError:
        return formula
    return ast.unparse(Rename().visit(tree))


def _read_names(formula: str) -> set[str]:
    try:
        return {n.id for n in ast.walk(ast.parse(formula.strip(), mode="eval")) if isinstance(n, ast.Name)}
    except SyntaxError:
        return set()


def _upgraded(old: dict[str, Any]) -> dict[str, Any]:
    new = {k: v for k, v in old.items() if k not in {"component_weights", "calibration_guideline"}}
    weights = {
        ("kpi" if k == "goals" else k): float(w)
        for k, w in (old.get("component_weights") or _OLD_DEFAULT_WEIGHTS).items()
    }
    formula = str(old.get("formula", "weighted()"))
    if formula.replace(" ", "") == "weighted()":
        formula = " + ".join(f"w_{c} * {c}" for c in _COMPONENTS if weights.get(c, 0) > 0)
    else:
        formula = _rewrite(formula, {"goals": "kpi"})
    used = _read_names(formula)
    weights = {c: w for c, w in weights.items() if c in used and w > 0}
    total = sum(weights.values())
    new["weights"] = {c: w * 100 / total for c, w in weights.items()} if total else weights
    new["formula"] = formula
    scale = old.get("rating_scale", {})
    bands = sorted(scale.get("bands", []), key=lambda b: b.get("min", 0))
    new["rating_scale"] = {
        **scale,
        "bands": [{"label": b["label"], "min_score": b["min"], "max_score": b["max"]} for b in bands],
    }
    limits = []
    for guideline in old.get("calibration_guideline") or []:
        max_share, min_share = guideline.get("max_share", 1.0), guideline.get("min_share", 0.0)
        limits.append(
            {
                "band": guideline["label"],
                "max_percent": round(max_share * 100, 9),
                "min_percent": round(min_share * 100, 9) if min_share > 0 else None,
            }
        )
    new["calibration"] = {"limits": limits}
    return new


def _downgraded(new: dict[str, Any]) -> dict[str, Any]:
    old = {k: v for k, v in new.items() if k not in {"weights", "calibration"}}
    weights = {str(c): float(w) for c, w in new.get("weights", {}).items()}
    constants: dict[str, Any] = {f"w_{c}": weights.get(c, 0.0) / 100 for c in _COMPONENTS}
    old["formula"] = _rewrite(str(new.get("formula", "")), {**constants, "kpi": "goals"})
    old["component_weights"] = {("goals" if c == "kpi" else c): w for c, w in weights.items()}
    scale = new.get("rating_scale", {})
    old["rating_scale"] = {
        **scale,
        "bands": [{"label": b["label"], "min": b["min_score"], "max": b["max_score"]} for b in scale.get("bands", [])],
    }
    old["calibration_guideline"] = [
        {
            "label": limit["band"],
            "max_share": (limit["max_percent"] if limit.get("max_percent") is not None else 100) / 100,
            "min_share": (limit.get("min_percent") or 0) / 100,
        }
        for limit in (new.get("calibration") or {}).get("limits", [])
    ]
    return old


def _convert(marker: str, convert: Any) -> None:
    """Rewrite every stored configuration that has ``marker`` (a field only the shape to convert has)."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(_INPUTS.c.cycle_id, _INPUTS.c.payload).where(_INPUTS.c.kind == "config")).all()
    for cycle_id, payload in rows:
        config = json.loads(payload)
        if marker in config:
            bind.execute(
                _INPUTS.update()
                .where(_INPUTS.c.cycle_id == cycle_id, _INPUTS.c.kind == "config")
                .values(payload=json.dumps(convert(config)))
            )


def upgrade() -> None:
    """Stored configurations to the EvaluationConfig shape."""
    _convert("component_weights", _upgraded)


def downgrade() -> None:
    """Stored configurations back to the earlier shape (weights variables become their numbers)."""
    _convert("weights", _downgraded)
