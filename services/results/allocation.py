"""Bonus-pool allocation: curve weights, per-person caps, largest-remainder rounding to the cent.

Shares are computed with exact fractions. Caps are applied by water-filling (whoever
would exceed their cap gets the cap, the rest is shared again among the others), then
each share is floored to the cent and the remaining cents go to the largest
fractional remainders (ties by employee id). So ``sum(amounts) + unallocated == pool``
exactly, no one exceeds their cap, and nothing is ever allocated beyond the pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from services.common.errors import DomainError
from services.results.policy import BonusCaps, Curve, LinearCurve

__all__ = ["AllocatedLine", "AllocationOutcome", "Candidate", "allocate_pool", "cap_cents", "curve_weight"]


@dataclass(frozen=True)
class Candidate:
    employee_id: str
    final_score: float
    rating: str


class AllocatedLine(BaseModel):
    """One person's share. A pydantic model, not a dataclass, so the API serves it as it is
    (``schemas.AllocationLineRead``) instead of declaring its fields a second time."""

    model_config = ConfigDict(frozen=True)

    employee_id: str
    final_score: float
    rating: str
    weight: float
    amount_cents: int
    capped: bool
    fixed: bool


@dataclass(frozen=True)
class AllocationOutcome:
    pool_cents: int
    lines: list[AllocatedLine]
    allocated_cents: int
    unallocated_cents: int
    notes: list[str] = field(default_factory=list)


def curve_weight(curve: Curve, candidate: Candidate, *, scale_min: float) -> float:
    if isinstance(curve, LinearCurve):
        floor = curve.floor_score if curve.floor_score is not None else scale_min
        return max(0.0, candidate.final_score - floor)
    return curve.multipliers[candidate.rating]


def cap_cents(caps: BonusCaps, pool_cents: int) -> int | None:
    """The per-person cap in whole cents (the lower of the percentage and the absolute cap)."""
    limits = []
    if caps.max_pct_of_pool is not None:
        limits.append(math.floor(Fraction(pool_cents) * Fraction(str(caps.max_pct_of_pool)) / 100))
    if caps.max_cents is not None:
        limits.append(caps.max_cents)
    return min(limits) if limits else None


def allocate_pool(
    *,
    pool_cents: int,
    candidates: list[Candidate],
    curve: Curve,
    caps: BonusCaps,
    scale_min: float,
    fixed_cents: dict[str, int] | None = None,
) -> AllocationOutcome:
    """Split ``pool_cents`` among ``candidates``; raises ``DomainError`` (422) when it cannot fit the pool."""
    if pool_cents < 0:
        raise DomainError(f"the pool must not be negative (got {pool_cents} cents)", field="amount_cents")
    fixed = dict(fixed_cents or {})
    by_id = {c.employee_id: c for c in candidates}
    unknown = sorted(set(fixed) - set(by_id))
    if unknown:
        raise DomainError(f"fixed amounts name employees without a result in this department: {unknown}", field="fixed")
    if not isinstance(curve, LinearCurve):
        missing = sorted({c.rating for c in candidates if c.employee_id not in fixed} - set(curve.multipliers))
        if missing:
            raise DomainError(
                f"the rating curve has no multiplier for rating(s) {missing}; add them to curve.multipliers",
                field="curve.multipliers",
            )
    cap = cap_cents(caps, pool_cents)
    over_cap = sorted(e for e, amount in fixed.items() if cap is not None and amount > cap)
    if over_cap:
        raise DomainError(f"fixed amounts exceed the per-person cap of {cap} cents for {over_cap}", field="fixed")
    fixed_total = sum(fixed.values())
    if fixed_total > pool_cents:
        raise DomainError(
            f"the allocation would exceed the pool: fixed amounts total {fixed_total} cents "
            f"but the pool is {pool_cents} cents (over by {fixed_total - pool_cents})",
            field="fixed",
        )

    weights = {
        c.employee_id: curve_weight(curve, c, scale_min=scale_min) for c in candidates if c.employee_id not in fixed
    }
    active = {e: Fraction(w) for e, w in weights.items() if w > 0}
    shares: dict[str, Fraction] = {e: Fraction(0) for e in weights}
    capped: set[str] = set()
    to_share = Fraction(pool_cents - fixed_total)
    while active:
        total_weight = sum(active.values())
        proposed = {e: to_share * w / total_weight for e, w in active.items()}
        hitting = [e for e, s in proposed.items() if cap is not None and s > cap]
        if not hitting:
            shares.update(proposed)
            to_share = Fraction(0)
            break
        for e in hitting:
            shares[e] = Fraction(cap or 0)
            to_share -= shares[e]
            capped.add(e)
            del active[e]

    notes: list[str] = []
    # Whatever could not be shared (everyone capped, or no positive weight) is an integer by construction.
    unallocated = int(to_share)
    if unallocated:
        notes.append(
            f"{unallocated} cents stay unallocated: every eligible person reached the cap or has a zero weight"
        )
    amounts = {e: math.floor(s) for e, s in shares.items()}
    remainder = pool_cents - fixed_total - unallocated - sum(amounts.values())
    by_remainder = sorted(shares, key=lambda e: (-(shares[e] - amounts[e]), e))
    for e in by_remainder[:remainder]:
        amounts[e] += 1
    amounts.update(fixed)

    lines = [
        AllocatedLine(
            employee_id=c.employee_id,
            final_score=c.final_score,
            rating=c.rating,
            weight=weights.get(c.employee_id, 0.0),
            amount_cents=amounts[c.employee_id],
            capped=c.employee_id in capped,
            fixed=c.employee_id in fixed,
        )
        for c in sorted(candidates, key=lambda c: c.employee_id)
    ]
    allocated = sum(line.amount_cents for line in lines)
    if allocated + unallocated != pool_cents or allocated > pool_cents:  # defence in depth: never pay out more
        raise DomainError(
            f"the allocation would exceed the pool: {allocated} cents allocated for a pool of {pool_cents} cents",
            field="amount_cents",
        )
    return AllocationOutcome(
        pool_cents=pool_cents, lines=lines, allocated_cents=allocated, unallocated_cents=unallocated, notes=notes
    )
