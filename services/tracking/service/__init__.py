"""Tracking service layer: catalog registration, progress, staleness and who answers for stale data,
check-ins and their reminders, ops figures and the HTTP ingest and department systems' API keys,
one module per section.

Functions are keyword-only and take an ``AsyncSession``; those that change data commit (their
docstrings say so), so routes only call them and shape the answer. Reads never commit.
"""

from __future__ import annotations

from services.tracking.service.api_keys import find_key, issue_key, list_keys, revoke_key, rotate_key
from services.tracking.service.catalog import get_catalog, replace_catalog
from services.tracking.service.check_ins import add_check_in, list_check_ins, overdue_check_ins
from services.tracking.service.data_owners import replace_data_owners
from services.tracking.service.http_ingest import ingest_metrics, validate_ingest
from services.tracking.service.ops import dead_letter_summary, ops_ingestion, unmapped_summary
from services.tracking.service.progress import department_rollup, kpi_progress, list_progress, progress_export
from services.tracking.service.staleness import SERVICE, evaluate_staleness, pending_report, stale_report

__all__ = [
    "SERVICE",
    "add_check_in",
    "dead_letter_summary",
    "department_rollup",
    "evaluate_staleness",
    "find_key",
    "get_catalog",
    "ingest_metrics",
    "issue_key",
    "kpi_progress",
    "list_check_ins",
    "list_keys",
    "list_progress",
    "ops_ingestion",
    "overdue_check_ins",
    "pending_report",
    "progress_export",
    "replace_catalog",
    "replace_data_owners",
    "revoke_key",
    "rotate_key",
    "stale_report",
    "unmapped_summary",
    "validate_ingest",
]
