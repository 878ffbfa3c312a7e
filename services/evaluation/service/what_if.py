"""What-if: re-score the cycle with other weights, formula or calibration guideline, writing nothing."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import EvaluationConfig
from services.common.auth import Principal
from services.common.errors import DomainError
from services.evaluation.schemas import WhatIfChange, WhatIfRequest, WhatIfResult
from services.evaluation.scoring import distribution_report
from services.evaluation.service.records import load_config, result_rows
from services.evaluation.service.scores import load_inputs, score_cycle

__all__ = ["what_if"]


def _alternative(config: EvaluationConfig, request: WhatIfRequest) -> EvaluationConfig:
    """The stored configuration with the request's overrides, validated as a whole (422 naming the field)."""
    try:
        return EvaluationConfig.model_validate({**config.model_dump(), **request.model_dump(exclude_none=True)})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise DomainError(str(first.get("msg", "invalid")), field=field or None) from exc


async def what_if(
    *, session: AsyncSession, cycle_id: str, request: WhatIfRequest, principal: Principal
) -> WhatIfResult:
    """Re-score with alternative weights, formula or guideline; reads only, writes nothing. The
    caller's own change is left out of ``changes`` (their rating reaches them through feedback)."""
    config = await load_config(session, cycle_id)
    alternative = _alternative(config, request)
    scores = score_cycle(await load_inputs(session, cycle_id), alternative)
    stored = {r.employee_id: r for r in await result_rows(session, cycle_id)}
    changes = []
    for employee_id, score in scores.items():
        if employee_id == principal.acting_employee_id:
            continue
        row = stored.get(employee_id)
        current_score, current_rating = (row.final_score, row.rating) if row else (None, None)
        if current_score != score.final.score or current_rating != score.final.rating:
            changes.append(
                WhatIfChange(
                    employee_id=employee_id,
                    current_score=current_score,
                    current_rating=current_rating,
                    what_if_score=score.final.score,
                    what_if_rating=score.final.rating,
                )
            )
    ratings = [s.final.rating for s in scores.values() if s.final.rating is not None]
    current = [r.rating for r in stored.values() if r.rating is not None]
    return WhatIfResult(
        cycle_id=cycle_id,
        total=len(scores),
        changed=len(changes),
        changes=changes,
        distribution=distribution_report(ratings, scale=alternative.rating_scale, guideline=alternative.calibration),
        current_distribution=distribution_report(current, scale=config.rating_scale, guideline=config.calibration),
    )
