"""services.common.redaction: the classification table matches the models, and each rule of the
promise (docs/security.md, "Audit log by reader") on hand-made entries."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from services.common.redaction import CLASSIFIED, REDACTED, SUBJECTS, Reader, redact_entry

SERVICES = ("cycles", "goals", "tracking", "evaluation", "feedback", "results")


def _tables() -> dict[str, set[str]]:
    tables: dict[str, set[str]] = {}
    for service in SERVICES:
        metadata = importlib.import_module(f"services.{service}.models").Base.metadata
        tables |= {name: {c.name for c in table.columns} for name, table in metadata.tables.items()}
    return tables


def test_every_classified_column_exists_in_its_service() -> None:
    tables = _tables()
    for table, columns in CLASSIFIED.items():
        assert table in tables, f"{table} is classified but no service has it"
        assert set(columns) <= tables[table], (table, set(columns) - tables[table])
    for table, subject in SUBJECTS.items():
        assert subject.column in tables[table], (table, subject.column)


def review(*, reviewee: str = "e-r", rater: str = "e-p1", actor: str = "user-e-p1") -> dict[str, Any]:
    return {
        "entity": "evaluation_assignment",
        "actor": actor,
        "actor_roles": ["employee"],
        "request_id": "req-1",
        "criteria": None,
        "before": {"reviewee_id": reviewee, "rater_id": rater, "status": "pending", "ratings": None},
        "after": {"reviewee_id": reviewee, "rater_id": rater, "status": "submitted", "ratings": '{"collab": 2}'},
        "prev_hash": "a" * 64,
        "row_hash": "b" * 64,
    }


HR = Reader(roles=frozenset({"hr_admin"}), employee_id="e-hr", sub="hr-hana")
HR_REVIEWEE = Reader(roles=frozenset({"hr_admin"}), employee_id="e-r", sub="user-e-r")
OPS = Reader(roles=frozenset({"ops"}), sub="ops-olli")
AUDITOR = Reader(roles=frozenset({"auditor"}), sub="ada", raw=True)


def test_the_reader_sees_what_their_routes_show() -> None:
    entry = review()
    assert redact_entry(entry, HR) == []
    assert entry["after"]["rater_id"] == "e-p1" and entry["actor"] == "user-e-p1"
    assert entry["row_hash"] is None, "only the auditor gets the hashes: they would test guesses"


def test_a_reviewee_never_sees_the_rater_the_ratings_or_the_request() -> None:
    entry = review()
    hidden = redact_entry(entry, HR_REVIEWEE)
    assert {"after.rater_id", "before.rater_id", "after.ratings", "actor", "actor_roles", "request_id"} <= set(hidden)
    assert entry["after"]["rater_id"] == REDACTED and entry["actor"] == REDACTED and entry["actor_roles"] == []
    assert entry["after"]["status"] == "submitted", "what is not classified stays"
    own_self_review = review(rater="e-r", actor="user-e-r")
    redact_entry(own_self_review, HR_REVIEWEE)
    assert own_self_review["actor"] == "user-e-r", "your own writes still name you"


def test_a_set_based_statement_that_does_not_name_its_subject_is_treated_as_yours() -> None:
    entry = {"entity": "evaluation_assignment", "actor": "x", "criteria": "reviewee_id = 'e-r'", "after": {}}
    entry["after"] = {"comment": "late again"}
    hidden = redact_entry(entry, HR_REVIEWEE)
    assert entry["criteria"] == REDACTED and entry["after"]["comment"] == REDACTED and "criteria" in hidden
    other = {"entity": "goals_goal", "actor": "x", "criteria": "cycle_id = 'c'", "after": {"status": "approved"}}
    assert redact_entry(other, OPS) == [] and other["criteria"] == "cycle_id = 'c'"


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("feedback_one_on_one", "notes", "between us"),
        ("feedback_note", "message", "thanks"),
        ("evaluation_adjustment", "reason", "key account"),
        ("cycles_employee", "salary_band", "B6"),
        ("tracking_api_key", "secret_hash", "sha256$s$d"),
    ],
)
def test_ops_does_not_see_what_its_routes_refuse_it(table: str, column: str, value: str) -> None:
    entry = {"entity": table, "actor": "someone", "before": None, "after": {column: value, "id": 1}}
    assert f"after.{column}" in redact_entry(entry, OPS)
    assert entry["after"] == {column: REDACTED, "id": 1}
    raw = {"entity": table, "actor": "someone", "before": None, "after": {column: value}, "row_hash": "h"}
    assert redact_entry(raw, AUDITOR) == [] and raw["after"][column] == value and raw["row_hash"] == "h"


def test_hr_sees_no_secret_either() -> None:
    entry = {"entity": "tracking_api_key", "actor": "hr", "after": {"secret_hash": "sha256$s$d"}}
    redact_entry(entry, HR)
    assert entry["after"]["secret_hash"] == REDACTED


def test_a_hidden_author_hides_the_actor_unless_the_reader_wrote_it() -> None:
    note = {"entity": "feedback_note", "actor": "user-e-f1", "request_id": "r", "after": {"author_id": "e-f1"}}
    redact_entry(note, OPS)
    assert (note["actor"], note["request_id"]) == (REDACTED, REDACTED)
    own = {"entity": "feedback_note", "actor": "ops-olli", "after": {"author_id": "e-o"}}
    redact_entry(own, OPS)
    assert own["actor"] == "ops-olli"
