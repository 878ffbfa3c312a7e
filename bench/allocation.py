"""Bonus-pool allocation benchmark: one pool over N people, exact to the cent (``services/results/allocation.py``).

    python -m bench.allocation [--employees 100000] [--rounds 5]

Two pools, each allocated ``--rounds`` times:

* **linear**: weight = final score - scale minimum, no cap;
* **rating curve + cap**: five ratings with multipliers and a per-person cap low enough that
  about a tenth of the people hit it, so water-filling takes several passes.

Ours is ``allocate_pool`` (exact fractions, caps by water-filling, largest remainder to the cent,
one ``AllocatedLine`` per person). The baseline, in the same run on the same candidates, is a bare
Python loop doing the same exact largest-remainder split with integers (no fractions, caps or
models): the floor of what an exact allocation costs in Python. Checks: ``sum(amounts) +
unallocated == pool`` exactly, nobody above the cap or below zero, and (linear pool) every
amount equal to the baseline's.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Sequence

from bench.support import Report, bench_arguments, console
from services.results.allocation import AllocationOutcome, Candidate, allocate_pool
from services.results.policy import BonusCaps, LinearCurve, RatingMultiplierCurve

__all__ = ["bare_largest_remainder", "main"]

RATINGS = {"needs_improvement": 0.0, "partially_meets": 0.5, "meets": 1.0, "exceeds": 1.5, "outstanding": 2.0}
SCALE_MIN = 1.0


def candidates(employees: int, seed: int) -> list[Candidate]:
    rng = random.Random(seed)
    names = list(RATINGS)
    out = []
    for n in range(employees):
        score = round(min(5.0, max(1.0, rng.gauss(3.2, 0.7))), 2)
        rating = names[min(4, max(0, int(score) - 1))]
        out.append(Candidate(employee_id=f"e{n:06d}", final_score=score, rating=rating))
    return out


def bare_largest_remainder(pool_cents: int, weights: dict[str, float]) -> dict[str, int]:
    """The same exact split in a bare loop, with integers instead of fractions, and no caps or models.

    A float is a dyadic rational (n / 2**k), so every weight scales exactly to an integer over one
    common power of two; then each share's floor and remainder are one ``divmod``, and the remainders
    order the leftover cents exactly as ``allocate_pool`` orders its fractional parts.
    """
    ratios = {e: w.as_integer_ratio() for e, w in weights.items() if w > 0}
    shift = max((d.bit_length() - 1 for _, d in ratios.values()), default=0)
    scaled = {e: n << (shift - (d.bit_length() - 1)) for e, (n, d) in ratios.items()}
    total = sum(scaled.values())
    amounts: dict[str, int] = {}
    remainders: dict[str, int] = {}
    for e, w in scaled.items():
        amounts[e], remainders[e] = divmod(pool_cents * w, total)
    left = pool_cents - sum(amounts.values())
    for e in sorted(remainders, key=lambda e: (-remainders[e], e))[:left]:
        amounts[e] += 1
    return amounts


def check(report: Report, label: str, outcome: AllocationOutcome, pool: int, cap: int | None) -> None:
    amounts = [line.amount_cents for line in outcome.lines]
    report.check(
        f"{label}: sum(amounts) + unallocated == pool, to the cent", sum(amounts) + outcome.unallocated_cents == pool
    )
    report.check(
        f"{label}: nobody below zero or above the cap", min(amounts) >= 0 and (cap is None or max(amounts) <= cap)
    )


def run(args: argparse.Namespace) -> Report:
    out = console()
    people = candidates(args.employees, args.seed)
    pool = args.employees * 150_000  # about 1,500.00 per person
    report = Report(
        title=f"Bonus-pool allocation over {args.employees:,} people, exact to the cent",
        parameters={"employees": args.employees, "pool_cents": pool, "rounds": args.rounds},
    )
    linear = report.figure("linear curve, no cap", baseline_name="bare loop, exact integers, no caps")
    rated = report.figure("rating curve + per-person cap", baseline_name="bare loop, exact integers, no caps")
    cap_pct = 100 * 1.6 / args.employees  # 1.6x the average share: about the top tenth hits it
    caps = BonusCaps(max_pct_of_pool=round(cap_pct, 6))
    curve = RatingMultiplierCurve(multipliers=RATINGS)
    linear_weights = {c.employee_id: max(0.0, c.final_score - SCALE_MIN) for c in people}
    rated_weights = {c.employee_id: RATINGS[c.rating] for c in people}
    outcome_linear = outcome_rated = None
    for _ in range(args.rounds):
        started = time.perf_counter()
        outcome_linear = allocate_pool(
            pool_cents=pool, candidates=people, curve=LinearCurve(), caps=BonusCaps(), scale_min=SCALE_MIN
        )
        linear.ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare = bare_largest_remainder(pool, linear_weights)
        linear.baseline.append(time.perf_counter() - started)
        started = time.perf_counter()
        outcome_rated = allocate_pool(pool_cents=pool, candidates=people, curve=curve, caps=caps, scale_min=SCALE_MIN)
        rated.ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare_largest_remainder(pool, rated_weights)
        rated.baseline.append(time.perf_counter() - started)
    assert outcome_linear is not None and outcome_rated is not None
    check(report, "linear", outcome_linear, pool, None)
    check(
        report,
        "rating + cap",
        outcome_rated,
        pool,
        None if caps.max_pct_of_pool is None else math.floor(pool * cap_pct / 100),
    )
    same = all(line.amount_cents == bare.get(line.employee_id, 0) for line in outcome_linear.lines)
    report.check("linear: every amount equal to the bare exact loop's", same)
    capped = sum(1 for line in outcome_rated.lines if line.capped)
    rated.note = f"{capped:,} capped"
    report.extra["capped"] = capped
    return report.finish(out, args.json_path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return bench_arguments(argv, "bench.allocation", __doc__, departments=False, database=False, rounds=5)


def main(argv: Sequence[str] | None = None) -> int:
    return 0 if run(parse_args(argv)).passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
