"""The configurable rules of result application, stored per cycle (``PUT /v1/cycles/{id}/policy``).

They are a contract (``contracts.results``): cycle templates carry the same ``ResultsPolicy``.
"""

from __future__ import annotations

from contracts.results import (
    AwardRule,
    BonusCaps,
    Curve,
    DevelopmentRule,
    LinearCurve,
    PromotionRule,
    Publication,
    RatingMultiplierCurve,
    ResultsPolicy,
)

__all__ = [
    "AwardRule",
    "BonusCaps",
    "Curve",
    "DevelopmentRule",
    "LinearCurve",
    "PromotionRule",
    "Publication",
    "RatingMultiplierCurve",
    "ResultsPolicy",
]
