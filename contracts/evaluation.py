"""What the evaluation service exports: calibrated results and the collaboration matrix."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SCHEMA_EXPORTS", "CollaborationCell", "CollaborationMatrix", "CycleResults", "EmployeeResult"]

Id = Annotated[str, Field(min_length=1, max_length=64)]


class EmployeeResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: Id
    department_id: Id
    manager_id: Id | None = None
    final_score: float = Field(description="Final score on the template's rating scale, after calibration.")
    rating: str = Field(max_length=32, description="The rating band label after calibration, e.g. 'exceeds'.")
    pre_calibration_score: float | None = None
    calibrated: bool = False


class CycleResults(BaseModel):
    """``GET /v1/cycles/{id}/final-results`` on evaluation (only once calibration is closed)."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    scale_min: float
    scale_max: float
    results: list[EmployeeResult]


class CollaborationCell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rater_department_id: Id
    rated_department_id: Id
    responsiveness: float
    data_quality: float
    reliability: float
    overall: float
    ratings: int = Field(ge=0)
    comments: list[str] = Field(default_factory=list)


class CollaborationMatrix(BaseModel):
    """``GET /v1/cycles/{id}/collaboration-matrix`` on evaluation."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    cells: list[CollaborationCell]


SCHEMA_EXPORTS = {"cycle_results.v1": CycleResults, "collaboration_matrix.v1": CollaborationMatrix}
