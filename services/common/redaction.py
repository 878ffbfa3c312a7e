"""What each reader of the audit log may see of it: the same as their own routes would show them.

The audit log copies whole rows, so without this ``GET /v1/audit`` would hand HR and ops what
the APIs hide from them: who rated whom with which ratings and comments (anonymous reviews),
private 1:1 notes and feedback, salary bands, calibration reasons and API-key hashes.

The promise, per entry and reader:

* a classified column (:data:`CLASSIFIED`) is shown only to the roles whose own routes show it
  (``readers``; the route that decides is named in ``shown_by``) and replaced by
  :data:`REDACTED` for everyone else;
* in a row *about the reader* (:data:`SUBJECTS`: the reviewee of a review), the rater's identity
  and their ratings and comments are hidden whatever the reader's roles, as the evaluation
  routes hide them from the person reviewed;
* when a column naming who wrote the row is hidden (``names_writer``), the entry's ``actor``,
  ``actor_roles`` and ``request_id`` are hidden too: they name the same person, and the request
  id would find that person's other entries;
* the WHERE clause of a set-based statement (``criteria``) is free text: it is hidden whenever
  anything of its table is hidden from the reader; so are the chain hashes (a hash of the
  whole row lets a reader test guesses of a hidden value);
* only the ``auditor`` role reads raw entries (:func:`Reader.raw`), and each such read is
  itself written to the audit log.

The table lives here, next to the code that applies it, so one page lists every column the
log treats as sensitive; ``tests/unit/test_audit_redaction.py`` checks that each classified
column exists in its service's model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.common.auth import Principal, Role

__all__ = [
    "CLASSIFIED",
    "REDACTED",
    "SUBJECTS",
    "Classified",
    "FieldClass",
    "Reader",
    "Subject",
    "redact_entry",
]

REDACTED = "[redacted]"
"""What a hidden value reads as."""


class FieldClass(StrEnum):
    ANONYMOUS_IDENTITY = "anonymous_identity"
    """Who wrote an anonymous review (peer, cross-department) or a department's collaboration rating."""
    REVIEW = "review"
    """One rater's individual ratings and comments."""
    PRIVATE_NOTE = "private_note"
    """1:1 notes and action items, feedback between two people, calibration reasons."""
    COMPENSATION = "compensation"
    """Salary bands."""
    SECRET = "secret"
    """Credentials, even hashed (API-key hashes): no route shows them to anyone."""
    OWN_RESULT = "own_result"
    """A person's own score and rating: never shown to them by evaluation (feedback shows it once released)."""


@dataclass(frozen=True)
class Classified:
    kind: FieldClass
    readers: frozenset[str]
    """The roles whose own routes show this column (besides the auditor, who sees everything)."""
    shown_by: str
    """The route (or rule) that decides ``readers``."""
    names_writer: bool = False
    """The column names who wrote the row: hiding it hides the entry's actor too."""


@dataclass(frozen=True)
class Subject:
    """The column naming the person a row is about, and what that person never sees of it."""

    column: str
    hides: frozenset[FieldClass]


def _c(kind: FieldClass, *readers: Role, shown_by: str, names_writer: bool = False) -> Classified:
    return Classified(kind, frozenset(r.value for r in readers), shown_by, names_writer)


_ANON, _REVIEW, _NOTE = FieldClass.ANONYMOUS_IDENTITY, FieldClass.REVIEW, FieldClass.PRIVATE_NOTE
_ASSIGNMENTS = (
    "evaluation GET /v1/cycles/{id}/assignments[/{assignment_id}]: an individual review is shown to its rater and HR"
)
_OWN_RESULT = "evaluation never shows a person their own result; feedback shows it once released"
_ONE_ON_ONES = "feedback GET /v1/one-on-ones/{id}: the manager, the report and HR (read only)"
_FEEDBACK = "feedback GET /v1/cycles/{id}/feedback: people in scope; HR sees all, ops has no access"

CLASSIFIED: Mapping[str, Mapping[str, Classified]] = {
    "evaluation_assignment": {
        "rater_id": _c(_ANON, Role.HR_ADMIN, shown_by=_ASSIGNMENTS, names_writer=True),
        "ratings": _c(_REVIEW, Role.HR_ADMIN, shown_by=_ASSIGNMENTS),
        "comment": _c(_REVIEW, Role.HR_ADMIN, shown_by=_ASSIGNMENTS),
    },
    "evaluation_result": {
        column: _c(FieldClass.OWN_RESULT, Role.HR_ADMIN, Role.OPS, shown_by=_OWN_RESULT)
        for column in ("computed_score", "computed_rating", "final_score", "rating", "breakdown")
    },
    "evaluation_collaboration_rating": {
        "rated_by": _c(
            _ANON, shown_by="no route names who rated: the matrix is per department pair", names_writer=True
        ),
    },
    "evaluation_adjustment": {
        "reason": _c(_NOTE, Role.HR_ADMIN, shown_by="evaluation GET /v1/cycles/{id}/calibration/adjustments"),
    },
    "feedback_one_on_one": {
        "notes": _c(_NOTE, Role.HR_ADMIN, shown_by=_ONE_ON_ONES),
        "agenda": _c(_NOTE, Role.HR_ADMIN, shown_by=_ONE_ON_ONES),
    },
    "feedback_action_item": {
        "description": _c(_NOTE, Role.HR_ADMIN, shown_by=_ONE_ON_ONES),
    },
    "feedback_note": {
        "message": _c(_NOTE, Role.HR_ADMIN, shown_by=_FEEDBACK),
        "author_id": _c(_NOTE, Role.HR_ADMIN, shown_by=_FEEDBACK, names_writer=True),
        "recipient_id": _c(_NOTE, Role.HR_ADMIN, shown_by=_FEEDBACK),
    },
    "cycles_employee": {
        "salary_band": _c(
            FieldClass.COMPENSATION, Role.HR_ADMIN, shown_by="cycles GET /v1/org/employees: hr_admin only"
        ),
    },
    "tracking_api_key": {
        "secret_hash": _c(FieldClass.SECRET, shown_by="tracking GET /v1/api-keys never shows a secret or hash"),
    },
}
"""Table -> column -> who may read it. Columns not listed are shown to every reader of the log."""

SUBJECTS: Mapping[str, Subject] = {
    "evaluation_assignment": Subject("reviewee_id", frozenset({_ANON, _REVIEW})),
    "evaluation_result": Subject("employee_id", frozenset({FieldClass.OWN_RESULT})),
}
"""Table -> the person a row is about; that person never sees the listed classes in it."""

_WHO = ("actor", "actor_roles", "request_id")
_CHAIN = ("prev_hash", "row_hash")


@dataclass(frozen=True)
class Reader:
    """Who reads the audit log: their roles, their person and their subject (from the token)."""

    roles: frozenset[str]
    employee_id: str | None = None
    sub: str | None = None
    raw: bool = field(default=False)
    """The auditor: sees every entry unredacted (and each read is audited)."""

    @classmethod
    def of(cls, principal: Principal) -> Reader:
        return cls(
            roles=frozenset(principal.roles),
            employee_id=principal.employee_id,
            sub=principal.sub,
            raw=principal.has(Role.AUDITOR),
        )


def _about_reader(entry: Mapping[str, Any], subject: Subject, reader: Reader) -> bool:
    """Whether the row may be about the reader: it names them, or it does not say (set-based)."""
    if reader.employee_id is None:
        return False
    values = [v for v in (entry.get("before"), entry.get("after")) if isinstance(v, dict)]
    named = [v[subject.column] for v in values if subject.column in v]
    return not named or reader.employee_id in named


def redact_entry(entry: dict[str, Any], reader: Reader) -> list[str]:
    """Hide in ``entry`` (an audit entry with ``before``/``after`` parsed) what ``reader`` may not
    see; return the names of what was hidden (``after.rater_id``, ``actor``, ...)."""
    if reader.raw:
        return []
    table = str(entry.get("entity", ""))
    columns = CLASSIFIED.get(table, {})
    subject = SUBJECTS.get(table)
    about_reader = subject is not None and _about_reader(entry, subject, reader)
    hidden = {
        name: rule
        for name, rule in columns.items()
        if not (reader.roles & rule.readers) or (about_reader and subject is not None and rule.kind in subject.hides)
    }
    redacted: list[str] = []
    for part in ("before", "after"):
        values = entry.get(part)
        if isinstance(values, dict):
            for name in hidden:
                if name in values:
                    values[name] = REDACTED
                    redacted.append(f"{part}.{name}")
    if hidden and entry.get("criteria") is not None:
        entry["criteria"] = REDACTED
        redacted.append("criteria")
    writer_hidden = any(rule.names_writer for rule in hidden.values())
    if writer_hidden and entry.get("actor") != reader.sub:
        for name in _WHO:
            if entry.get(name) is not None:
                entry[name] = [] if name == "actor_roles" else REDACTED
                redacted.append(name)
    for name in _CHAIN:  # only the auditor verifies the chain: a hash would test guesses
        entry[name] = None
    return redacted
