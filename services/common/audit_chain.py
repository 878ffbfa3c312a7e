"""The hash chain that makes each service's audit log tamper-evident (see ``services.common.audit``).

Every audit row of a service carries its position (``chain_seq``), the hash of the row before it
(``prev_hash``) and its own hash (``row_hash``, :func:`entry_hash`). Rows are appended under a
lock (:func:`append_entries`), and :func:`verify_chain` walks the chain from the first row and
reports the first link that does not hold. ``tandem audit verify`` runs it per service.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

__all__ = [
    "GENESIS_HASH",
    "HASHED_COLUMNS",
    "ChainReport",
    "app_role_grants",
    "append_entries",
    "entry_hash",
    "lock_chain",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of a chain's first row."""
HASHED_COLUMNS = (
    "chain_seq",
    "prev_hash",
    "occurred_at",
    "actor",
    "actor_roles",
    "request_id",
    "service",
    "action",
    "entity",
    "entity_id",
    "row_count",
    "criteria",
    "before",
    "after",
    "changed",
)
"""Every column but the database-assigned ``id`` and ``row_hash`` itself."""


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def entry_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an audit row's content, its position and its predecessor's hash."""
    content = {name: _canonical(row.get(name)) for name in HASHED_COLUMNS}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _lock_key(table: Any) -> int:
    """A stable signed 64-bit advisory-lock key per audit table."""
    return int.from_bytes(hashlib.sha256(f"tandem-audit-chain:{table.name}".encode()).digest()[:8], "big", signed=True)


def lock_chain(connection: Connection, table: Any) -> None:
    """PostgreSQL: hold the chain's advisory lock until the transaction ends (re-entrant)."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_lock_key(table))))


def append_entries(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert stamped audit rows at the end of the table's hash chain."""
    lock_chain(connection, table)
    head = connection.execute(
        select(table.c.chain_seq, table.c.row_hash)
        .where(table.c.chain_seq.is_not(None))
        .order_by(table.c.chain_seq.desc())
        .limit(1)
    ).first()
    seq, previous = (int(head.chain_seq), str(head.row_hash)) if head is not None else (0, GENESIS_HASH)
    for row in rows:
        seq += 1
        row["chain_seq"], row["prev_hash"] = seq, previous
        row["row_hash"] = previous = entry_hash(row)
    connection.execute(insert(table), rows)


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: the rows checked, the head, and the first broken link."""

    table: str
    checked: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None
    """``chain_seq`` of the first row whose link does not hold (None: the chain is intact)."""
    audit_id: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify_chain(connection: Connection, table: Any, *, page: int = 1000) -> ChainReport:
    """Walk ``table``'s chain from the first row and report the first link that does not hold.

    Detects a changed row (its content no longer matches ``row_hash``), a deleted or inserted
    row (a gap or a repeat in ``chain_seq``, or a ``prev_hash`` that is not the hash before it)
    and a row written past the application (no chain fields). Removing rows from the *end*
    leaves a shorter, valid chain: compare ``head_seq``/``head_hash`` with a head recorded
    earlier outside the database.
    """
    unchained = connection.execute(
        select(table.c.id).where(table.c.chain_seq.is_(None)).order_by(table.c.id).limit(1)
    ).scalar()
    expected_seq, previous, checked = 1, GENESIS_HASH, 0

    def report(**broken: Any) -> ChainReport:
        return ChainReport(table=table.name, checked=checked, head_seq=expected_seq - 1, head_hash=previous, **broken)

    while True:
        rows = connection.execute(
            select(table).where(table.c.chain_seq >= expected_seq).order_by(table.c.chain_seq).limit(page)
        ).mappings()
        fetched = 0
        for row in rows:
            fetched += 1
            seq = int(row["chain_seq"])
            if seq != expected_seq:
                return report(
                    broken_at=expected_seq,
                    audit_id=row["id"],
                    problem=f"entry #{expected_seq} is missing (the next one is #{seq}): a row was deleted",
                )
            if row["prev_hash"] != previous:
                return report(
                    broken_at=seq,
                    audit_id=row["id"],
                    problem=f"entry #{seq} does not link to entry #{seq - 1}: a row was replaced or inserted",
                )
            if entry_hash(dict(row)) != row["row_hash"]:
                return report(
                    broken_at=seq, audit_id=row["id"], problem=f"entry #{seq} was changed after it was written"
                )
            previous, expected_seq, checked = str(row["row_hash"]), seq + 1, checked + 1
        if fetched < page:
            break
    if unchained is not None:
        return report(
            broken_at=None,
            audit_id=int(unchained),
            problem=f"audit row id {unchained} is not in the chain: it was written past the application",
        )
    return report()


def app_role_grants(table_name: str, role: str) -> list[str]:
    """What the application's PostgreSQL role may do on an audit table: read and append, nothing else.

    The role that runs the migrations owns the table, its triggers and their function; the
    application's role is not the owner, so it can neither ``ALTER TABLE ... DISABLE TRIGGER`` nor
    drop the trigger, and it has no UPDATE, DELETE or TRUNCATE privilege (docs/audit.md).
    """
    return [
        f"REVOKE ALL ON {table_name} FROM {role}",
        f"GRANT SELECT, INSERT ON {table_name} TO {role}",
        f"GRANT USAGE ON SEQUENCE {table_name}_id_seq TO {role}",
    ]
