"""Growth paths: the rules, as pure functions over plain values (unit-tested without any service).

* **Career framework** (per job family): levels in order, each a grade with the competencies it
  expects and the score expected on each (the review scale). A level keeps every competency of the
  level below it, at the same or a higher expectation: a level that skips one is refused, naming
  the field (``levels[2].competencies``).
* **Performance** of a cycle: where the final score sits on the cycle's rating scale, in thirds:
  ``low`` (below 1/3 of the range), ``medium``, ``high`` (from 2/3).
* **Potential**: ``low`` / ``medium`` / ``high``, rated by a manager and calibrated by the committee
  (the calibrated value wins).
* **9-box**: performance (columns) x potential (rows), boxes numbered 1 (low, low) to 9 (high, high).
* **Promotion readiness** for the next level, from the competency profile (the latest manager
  ratings) and the results:

  ========== ===================================================================================
  ready      every competency of the next level met, and the latest performance ``high`` with no
             ``low`` in the last two cycles
  developing at least half of the next level's competencies met, or the latest performance ``high``
  not_yet    otherwise
  top_level  the person is at the framework's highest level
  ========== ===================================================================================

* **Next steps**: one development goal per competency of the next level not yet met, with the gap,
  in English and Chinese: a development plan for everyone, not only for low ratings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.common.errors import DomainError

__all__ = [
    "Level",
    "NextStep",
    "Potential",
    "Readiness",
    "ReadinessStatus",
    "Tier",
    "check_levels",
    "nine_box",
    "performance_tier",
    "readiness",
]


class Tier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


Potential = Tier
"""A potential rating uses the same three steps as the performance axis."""

_ORDER = {Tier.LOW: 0, Tier.MEDIUM: 1, Tier.HIGH: 2}

BOX_LABELS: dict[int, tuple[str, str]] = {
    1: ("Talent risk", "待改进"),
    2: ("Inconsistent player", "表现不稳定"),
    3: ("Rough diamond", "潜力待发掘"),
    4: ("Effective", "稳定贡献者"),
    5: ("Core player", "核心骨干"),
    6: ("Growth employee", "成长型人才"),
    7: ("Trusted professional", "资深专家"),
    8: ("High performer", "高绩效者"),
    9: ("Star", "明星人才"),
}
"""Box number -> (English, Chinese) label; 1-3 low performance, 7-9 high (potential low to high)."""


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grade: str = Field(min_length=1, max_length=32, description="The org directory's grade of this level.")
    title: str = Field(min_length=1, max_length=200)
    competencies: dict[str, float] = Field(
        min_length=1, description="Competency id -> the score expected at this level (the review scale)."
    )


def check_levels(levels: Sequence[Level]) -> None:
    """Refuse a ladder whose level drops a competency of the level below or expects less of it."""
    grades: set[str] = set()
    for index, level in enumerate(levels):
        if level.grade in grades:
            raise DomainError(f"grade {level.grade!r} appears twice", field=f"levels[{index}].grade")
        grades.add(level.grade)
        if index == 0:
            continue
        below = levels[index - 1]
        skipped = sorted(set(below.competencies) - set(level.competencies))
        if skipped:
            raise DomainError(
                f"level {level.grade!r} skips {', '.join(skipped)}, which level {below.grade!r} below it expects; "
                "a level keeps every competency of the level below",
                field=f"levels[{index}].competencies",
            )
        lower = sorted(c for c, score in below.competencies.items() if level.competencies[c] < score)
        if lower:
            raise DomainError(
                f"level {level.grade!r} expects less of {', '.join(lower)} than level {below.grade!r} below it",
                field=f"levels[{index}].competencies",
            )


def performance_tier(score: float, scale_min: float, scale_max: float) -> Tier:
    """Where ``score`` sits on the scale, in thirds."""
    share = (score - scale_min) / (scale_max - scale_min) if scale_max > scale_min else 0.0
    if share < 1 / 3:
        return Tier.LOW
    return Tier.MEDIUM if share < 2 / 3 else Tier.HIGH


def nine_box(performance: Tier, potential: Tier) -> int:
    """Box 1 (low performance, low potential) to 9 (high, high): three per performance column."""
    return _ORDER[performance] * 3 + _ORDER[potential] + 1


class ReadinessStatus(StrEnum):
    READY = "ready"
    DEVELOPING = "developing"
    NOT_YET = "not_yet"
    TOP_LEVEL = "top_level"


class NextStep(BaseModel):
    competency_id: str
    name: str
    expected: float
    actual: float | None = Field(description="The latest manager rating; None when never rated.")
    gap: float
    text_en: str
    text_zh: str


class Readiness(BaseModel):
    status: ReadinessStatus
    next_grade: str | None
    met: int = Field(description="Competencies of the next level met.")
    total: int
    latest_performance: Tier | None
    reasons: list[str] = Field(description="Which rule decided, in words.")
    next_steps: list[NextStep]


def readiness(
    *,
    next_level: Level | None,
    profile: Mapping[str, float],
    performances: Sequence[Tier],
    names: Mapping[str, str],
) -> Readiness:
    """Readiness for ``next_level`` (None: the top) from the ``profile`` (competency -> latest rating)
    and the ``performances`` of the person's cycles, oldest first."""
    latest = performances[-1] if performances else None
    if next_level is None:
        return Readiness(
            status=ReadinessStatus.TOP_LEVEL,
            next_grade=None,
            met=0,
            total=0,
            latest_performance=latest,
            reasons=["at the framework's highest level"],
            next_steps=[],
        )
    steps: list[NextStep] = []
    met = 0
    for competency, expected in sorted(next_level.competencies.items()):
        actual = profile.get(competency)
        if actual is not None and actual >= expected:
            met += 1
            continue
        name = names.get(competency, competency)
        now = "not rated yet" if actual is None else f"{actual:g}"
        now_zh = "尚无评分" if actual is None else f"{actual:g}"
        steps.append(
            NextStep(
                competency_id=competency,
                name=name,
                expected=expected,
                actual=actual,
                gap=round(expected - (actual or 0.0), 2),
                text_en=f"Raise {name} from {now} to {expected:g}, as {next_level.title} expects",
                text_zh=f"将{name}从{now_zh}提升到{expected:g}（{next_level.title}的要求）",
            )
        )
    total = len(next_level.competencies)
    recent_low = Tier.LOW in performances[-2:]
    reasons = [f"{met} of {total} competencies of {next_level.title} met"]
    if latest is not None:
        reasons.append(
            f"latest performance {latest.value}" + (", a low one in the last two cycles" if recent_low else "")
        )
    if met == total and latest == Tier.HIGH and not recent_low:
        status = ReadinessStatus.READY
    elif met * 2 >= total or latest == Tier.HIGH:
        status = ReadinessStatus.DEVELOPING
    else:
        status = ReadinessStatus.NOT_YET
    return Readiness(
        status=status,
        next_grade=next_level.grade,
        met=met,
        total=total,
        latest_performance=latest,
        reasons=reasons,
        next_steps=steps,
    )
