"""Temporal task-queue names."""

from __future__ import annotations

from typing import Final

__all__ = ["REVIEW_CYCLE_TASK_QUEUE"]

REVIEW_CYCLE_TASK_QUEUE: Final = "tandem-review-cycle"
"""Workflows and activities of the review cycle run on this queue."""
