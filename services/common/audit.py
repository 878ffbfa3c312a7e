"""The append-only audit log: who changed which row, when, before and after, under which request.

Each service declares its own table and passes it to ``create_service_app``::

    class GoalsAudit(AuditMixin, Base):
        __tablename__ = "goals_audit"

    create_service_app(service="goals", ..., audit_model=GoalsAudit)

What is captured, from the session events of the service's session factory:

* every ORM insert, update and delete (``after_flush``): one row per changed row, with the
  primary key as text, the column values before and after and the names of the changed
  columns. Before-values come from SQLAlchemy's attribute history, so nothing is re-read;
* every set-based ``session.execute(insert|update|delete(Model)...)`` (``do_orm_execute``):
  one row per parameter set for inserts and by-primary-key updates, otherwise one row per
  statement with its WHERE clause (``criteria``), its SET values (``after``) and the number of
  rows it touched (``row_count``; statements that touched no row are not recorded);
* not captured: the audit table itself, the outbox (a copy of the change, not a change) and the
  tables named in the model's ``__audit_exclude__`` (tracking's raw ingestion tables).

Who and which request come from a context variable: ``AuditMiddleware`` opens one per HTTP
request (request id from ``X-Request-ID`` or a new uuid, echoed in the response), and
``TokenVerifier.verify`` binds the verified principal into it. Writes outside a request (the
outbox relay, background loops) are recorded as ``system``.

Append-only: the ORM refuses to flush a changed or deleted audit row, or to run an UPDATE or
DELETE statement on the table (``AuditLogIsAppendOnly``), and the database refuses it too: each
service's migration calls ``create_audit_triggers(op, "<svc>_audit")`` (a PL/pgSQL trigger on
PostgreSQL, ``RAISE(ABORT)`` triggers on SQLite).

Tamper-evident: the rows of a service form a hash chain. Each row carries ``chain_seq`` (1, 2,
3, ... in the order written), the ``row_hash`` of the row before it (``prev_hash``) and its own
``row_hash``: SHA-256 over its content and ``prev_hash`` (:func:`entry_hash`). Changing,
deleting or inserting a row in the middle breaks a link that :func:`verify_chain` (``tandem
audit verify``) reports. On PostgreSQL the writers of one service take a transaction-level
advisory lock before their first audited write, so two transactions never chain onto the same
row; on SQLite the database's single writer does the same.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Index, Integer, String, Text, event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Mapper, ORMExecuteState, Session, UOWTransaction, declared_attr, mapped_column
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.sql import operators
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList, ClauseElement
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.audit_chain import (
    GENESIS_HASH,
    HASHED_COLUMNS,
    ChainReport,
    app_role_grants,
    append_entries,
    entry_hash,
    lock_chain,
    verify_chain,
)
from services.common.db import UtcDateTime
from services.common.outbox import OutboxMixin

__all__ = [
    "ANONYMOUS_ACTOR",
    "GENESIS_HASH",
    "REQUEST_ID_HEADER",
    "SYSTEM_ACTOR",
    "AuditContext",
    "AuditLogIsAppendOnly",
    "AuditMiddleware",
    "AuditMixin",
    "ChainReport",
    "add_audit_chain",
    "app_role_grants",
    "append_entries",
    "audit_context",
    "bind_principal",
    "create_audit_triggers",
    "current_audit_context",
    "drop_audit_chain",
    "drop_audit_triggers",
    "entry_hash",
    "install_audit",
    "record_read",
    "verify_chain",
]

SYSTEM_ACTOR = "system"
"""The actor of writes made outside any HTTP request (outbox relay, background loops)."""
ANONYMOUS_ACTOR = "anonymous"
"""The actor of writes made in a request that carried no verified token."""
REQUEST_ID_HEADER = "X-Request-ID"
MAX_PAGE = 500

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_ENTITY_ID_MAX = 512


class AuditLogIsAppendOnly(RuntimeError):
    """An attempt to update or delete an audit row."""


# -- who and which request -------------------------------------------------------------------------
@dataclass
class AuditContext:
    """The request being served. Mutable on purpose: the principal is bound into the object the
    middleware created, so it is seen whichever copy of the context the binding ran in."""

    request_id: str | None
    actor: str = ANONYMOUS_ACTOR
    roles: tuple[str, ...] = ()


_SYSTEM = AuditContext(request_id=None, actor=SYSTEM_ACTOR)
_current: ContextVar[AuditContext | None] = ContextVar("tandem_audit_context", default=None)


def current_audit_context() -> AuditContext:
    """The request's context, or the ``system`` one outside requests."""
    return _current.get() or _SYSTEM


def bind_principal(*, actor: str, roles: Iterable[str]) -> None:
    """Record the verified caller as the actor of the current request (no-op outside requests)."""
    context = _current.get()
    if context is not None:
        context.actor = actor
        context.roles = tuple(sorted(roles))


@contextmanager
def audit_context(*, actor: str, roles: Sequence[str] = (), request_id: str | None = None) -> Iterator[AuditContext]:
    """Attribute the writes inside the block to ``actor`` (CLI commands, scripts, tests)."""
    context = AuditContext(request_id=request_id, actor=actor, roles=tuple(sorted(roles)))
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


class AuditMiddleware:
    """Opens the audit context of each HTTP request and echoes its request id (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = _current.set(AuditContext(request_id=request_id))
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            _current.reset(token)


def _request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a new uuid."""
    wanted = REQUEST_ID_HEADER.lower().encode()
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            text = str(value.decode("latin-1")).strip()
            if _VALID_REQUEST_ID.match(text):
                return text
            break
    return str(uuid.uuid4())


# -- the table -------------------------------------------------------------------------------------
class AuditMixin:
    """Columns of a service's audit table. ``before``/``after``/``changed`` hold JSON text."""

    __audit_exclude__: ClassVar[frozenset[str]] = frozenset()
    """Tables of the service that are not audited (besides the audit table and the outbox)."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(256), index=True)
    actor_roles: Mapped[str] = mapped_column(String(512))
    """Space-separated roles of the actor's token."""
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    service: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(8))
    """``create``, ``update`` or ``delete``."""
    entity: Mapped[str] = mapped_column(String(128))
    """The table name."""
    entity_id: Mapped[str] = mapped_column(String(_ENTITY_ID_MAX))
    """The primary key as text (composite keys joined with ``/``); ``*`` for a set-based statement
    that did not pin one row."""
    row_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Rows touched: 1 for row-level changes, the statement's count for set-based ones."""
    criteria: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The WHERE clause of a set-based statement, with its values."""
    before: Mapped[str | None] = mapped_column(Text, nullable=True)
    after: Mapped[str | None] = mapped_column(Text, nullable=True)
    changed: Mapped[str | None] = mapped_column(Text, nullable=True)
    chain_seq: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), nullable=True)
    """Position in the service's hash chain (1, 2, ...); null only for a row written past the application."""
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """``row_hash`` of the row at ``chain_seq - 1`` (:data:`GENESIS_HASH` for the first)."""
    row_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """SHA-256 of this row's content and ``prev_hash`` (:func:`entry_hash`)."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        table = str(vars(cls)["__tablename__"])
        return (
            Index(f"ix_{table}_entity", "entity", "entity_id"),
            Index(f"ux_{table}_chain_seq", "chain_seq", unique=True),
        )


# -- capture ---------------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)  # SQL expressions assigned to attributes, and anything else: their text


def _json(value: Any) -> str:
    return json.dumps(value, default=_encode, sort_keys=True, separators=(",", ":"))


def _value_of(element: Any) -> Any:
    if isinstance(element, BindParameter):
        return element.effective_value
    if isinstance(element, ClauseElement):
        return str(element)
    return element


class _Recorder:
    """The session hooks of one service."""

    def __init__(self, model: type[AuditMixin], *, service: str) -> None:
        self.model = model
        self.service = service
        self.table: Any = model.__table__  # type: ignore[attr-defined]
        registry: Any = model.registry  # type: ignore[attr-defined]
        # The audit table, the outbox and the model's exclusions are not audited.
        self.excluded = frozenset(model.__audit_exclude__) | {
            m.local_table.name for m in registry.mappers if issubclass(m.class_, AuditMixin | OutboxMixin)
        }

    def _tracked(self, mapper: Mapper[Any]) -> bool:
        return _table_name(mapper) not in self.excluded

    def _stamp(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _stamp(rows, service=self.service)

    def before_flush(self, session: Session, _flush_context: UOWTransaction, _instances: object) -> None:
        audited = False
        for obj in (*session.dirty, *session.deleted):
            if isinstance(obj, AuditMixin) and (obj in session.deleted or session.is_modified(obj)):
                raise AuditLogIsAppendOnly(
                    f"the audit log is append-only: {type(obj).__name__} row {obj.id} cannot be changed or deleted"
                )
        for obj in (*session.new, *session.dirty, *session.deleted):
            audited = audited or self._tracked(inspect(obj).mapper)
        if audited:
            # Before the flush writes (and row-locks) anything: every writer of this service takes
            # the chain lock first, so writers wait for each other instead of deadlocking.
            lock_chain(session.connection(), self.table)

    def after_flush(self, session: Session, _flush_context: UOWTransaction) -> None:
        # Still the pre-flush view here: new/dirty/deleted and the attribute history are intact,
        # and generated primary keys are already assigned.
        rows: list[dict[str, Any]] = []
        for obj in session.new:
            state: InstanceState[Any] = inspect(obj)
            if self._tracked(state.mapper):
                shape = _shape(state.mapper)
                _, after, _ = _row_values(state, shape)
                rows.append(_entry("create", state, shape, after=after))
        for obj in session.dirty:
            state = inspect(obj)
            if self._tracked(state.mapper):
                shape = _shape(state.mapper)
                before, after, changed = _row_values(state, shape)
                if changed:
                    rows.append(_entry("update", state, shape, before=before, after=after, changed=changed))
        for obj in session.deleted:
            state = inspect(obj)
            if self._tracked(state.mapper):
                shape = _shape(state.mapper)
                before, _, _ = _row_values(state, shape)
                rows.append(_entry("delete", state, shape, before=before))
        if rows:
            append_entries(session.connection(), self.table, self._stamp(rows))

    def on_execute(self, execute_state: ORMExecuteState) -> Any:
        if not (execute_state.is_insert or execute_state.is_update or execute_state.is_delete):
            return None
        statement = execute_state.statement
        if not isinstance(statement, UpdateBase):
            return None
        table: Any = statement.table
        if table.name == self.table.name and not execute_state.is_insert:
            raise AuditLogIsAppendOnly(f"the audit log is append-only: {table.name} rows cannot be changed or deleted")
        mapper = execute_state.bind_mapper
        if mapper is None or not self._tracked(mapper):
            return None
        lock_chain(execute_state.session.connection(), self.table)
        result = execute_state.invoke_statement()
        rows = _statement_entries(execute_state, mapper, result)
        if rows:
            append_entries(execute_state.session.connection(), self.table, self._stamp(rows))
        return result


def _table_name(mapper: Mapper[Any]) -> str:
    table: Any = mapper.local_table
    return str(table.name)


@dataclass(frozen=True)
class _Shape:
    """What the capture needs to know about a mapped class, computed once per mapper."""

    table: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]


_shapes: dict[Mapper[Any], _Shape] = {}


def _shape(mapper: Mapper[Any]) -> _Shape:
    shape = _shapes.get(mapper)
    if shape is None:
        shape = _shapes[mapper] = _Shape(
            table=_table_name(mapper),
            columns=tuple(prop.key for prop in mapper.column_attrs),
            primary_key=tuple(mapper.get_property_by_column(column).key for column in mapper.primary_key),
        )
    return shape


def _row_values(state: InstanceState[Any], shape: _Shape) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(before, after, changed columns) of a row from what the session holds, without loading anything.

    ``committed_state`` keeps the original value of each attribute changed since the row was
    loaded (what attribute history reads); read directly, it costs a dict lookup per column.
    """
    loaded, original = state.dict, state.committed_state
    after = {key: loaded[key] for key in shape.columns if key in loaded}
    before = dict(after)
    changed: list[str] = []
    for key in shape.columns:
        if key not in original:
            continue
        value = original[key]
        if value is NO_VALUE:  # changed without the old value ever being loaded
            before.pop(key, None)
        else:
            before[key] = value
        if key not in before or key not in after or before[key] != after[key]:
            changed.append(key)
    return before, after, changed


def _entry(
    action: str,
    state: InstanceState[Any],
    shape: _Shape,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    changed: list[str] | None = None,
) -> dict[str, Any]:
    values = after if after is not None else before or {}
    return {
        "action": action,
        "entity": shape.table,
        "entity_id": _entity_id(values.get(k) for k in shape.primary_key),
        "row_count": 1,
        "criteria": None,
        "before": _json(before) if before is not None else None,
        "after": _json(after) if after is not None else None,
        "changed": _json(changed) if changed is not None else None,
    }


def _entity_id(values: Any) -> str:
    parts = list(values)
    if not parts or any(p is None for p in parts):
        return "*"
    return "/".join(p if isinstance(p, str) else str(_encode(p)) for p in parts)[:_ENTITY_ID_MAX]


def _statement_entries(execute_state: ORMExecuteState, mapper: Mapper[Any], result: Any) -> list[dict[str, Any]]:
    """Audit rows of a set-based statement; see the module docstring."""
    statement: Any = execute_state.statement
    shape = _shape(mapper)
    table_name, pk_keys = shape.table, shape.primary_key
    action = "create" if execute_state.is_insert else "update" if execute_state.is_update else "delete"
    parameters = execute_state.parameters
    if isinstance(parameters, list) and parameters:
        # Bulk insert, or bulk update by primary key: one audit row per parameter set.
        return [
            {
                "action": action,
                "entity": table_name,
                "entity_id": _entity_id(params.get(k) for k in pk_keys),
                "row_count": 1,
                "criteria": None,
                "before": None,
                "after": _json(dict(params)),
                "changed": _json(sorted(k for k in params if action == "create" or k not in pk_keys)),
            }
            for params in parameters
        ]
    values = {getattr(k, "key", str(k)): _value_of(v) for k, v in (getattr(statement, "_values", None) or {}).items()}
    if isinstance(parameters, dict):
        values.update(parameters)
    if action == "create":
        return [
            {
                "action": action,
                "entity": table_name,
                "entity_id": _entity_id(values.get(k) for k in pk_keys),
                "row_count": 1,
                "criteria": None,
                "before": None,
                "after": _json(values),
                "changed": _json(sorted(values)),
            }
        ]
    row_count = getattr(result, "rowcount", None)
    if row_count == 0:
        return []  # nothing changed
    where = statement.whereclause
    pinned = _pinned_keys(where, {c.name: k for c, k in zip(mapper.primary_key, pk_keys, strict=True)})
    return [
        {
            "action": action,
            "entity": table_name,
            "entity_id": _entity_id(pinned.get(k) for k in pk_keys) if pinned else "*",
            "row_count": row_count if isinstance(row_count, int) and row_count >= 0 else None,
            "criteria": _render(where, execute_state.session) if where is not None else None,
            "before": None,
            "after": _json(values) if action == "update" else None,
            "changed": _json(sorted(values)) if action == "update" else None,
        }
    ]


def _pinned_keys(where: Any, pk_columns: dict[str, str]) -> dict[str, Any]:
    """Primary-key values the WHERE clause fixes with ``=`` (joined by AND)."""
    if where is None:
        return {}
    clauses = where.clauses if isinstance(where, BooleanClauseList) and where.operator is operators.and_ else [where]
    pinned: dict[str, Any] = {}
    for clause in clauses:
        if (
            isinstance(clause, BinaryExpression)
            and clause.operator is operators.eq
            and isinstance(clause.right, BindParameter)
            and getattr(clause.left, "name", None) in pk_columns
        ):
            pinned[pk_columns[clause.left.name]] = clause.right.effective_value
    return pinned


def _render(where: ClauseElement, session: Session) -> str:
    dialect = session.get_bind().dialect
    try:
        return str(where.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except Exception:  # noqa: BLE001 - a value the dialect cannot inline: show it as a parameter
        compiled = where.compile(dialect=dialect)
        return f"{compiled} {_json(compiled.params)}"


def install_audit(sessions: async_sessionmaker[AsyncSession], model: type[AuditMixin], *, service: str) -> None:
    """Record every change made through sessions of ``sessions`` in ``model``'s table.

    The hooks go on a Session subclass private to this factory, so several services in one
    process (tests) each audit only their own sessions.
    """
    recorder = _Recorder(model, service=service)
    session_class = type(f"{model.__name__}Session", (Session,), {})
    event.listen(session_class, "before_flush", recorder.before_flush)
    event.listen(session_class, "after_flush", recorder.after_flush)
    event.listen(session_class, "do_orm_execute", recorder.on_execute)
    sessions.configure(sync_session_class=session_class)


# -- the hash chain (services/common/audit_chain.py) and reads -----------------------------------
def _stamp(rows: list[dict[str, Any]], *, service: str) -> list[dict[str, Any]]:
    context = current_audit_context()
    now = datetime.now(UTC)
    for row in rows:
        row.update(
            occurred_at=now,
            actor=context.actor,
            actor_roles=" ".join(context.roles),
            request_id=context.request_id,
            service=service,
        )
    return rows


async def record_read(
    session: AsyncSession, model: type[AuditMixin], *, service: str, criteria: Mapping[str, Any], row_count: int
) -> None:
    """Record that the current actor read ``row_count`` raw entries with ``criteria`` (and commit)."""
    table: Any = model.__table__  # type: ignore[attr-defined]
    row = {
        "action": "read",
        "entity": table.name,
        "entity_id": "*",
        "row_count": row_count,
        "criteria": _json({k: v for k, v in criteria.items() if v is not None}),
        "before": None,
        "after": None,
        "changed": None,
    }
    await session.run_sync(lambda sync: append_entries(sync.connection(), table, _stamp([row], service=service)))
    await session.commit()


# -- migrations ------------------------------------------------------------------------------------
def create_audit_triggers(op: Any, table_name: str) -> None:
    """Make ``table_name`` append-only in the database (call it from the migration creating the table).

    SQLite batch migrations rebuild a table without its triggers: a later revision that alters
    the audit table in batch mode must call this again.
    """
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION {table_name}_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the audit log % is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """
        )
        # Idempotent: a downgrade re-creates them after a batch step that, on PostgreSQL, kept them.
        op.execute(f"DROP TRIGGER IF EXISTS {table_name}_append_only ON {table_name}")
        op.execute(f"DROP TRIGGER IF EXISTS {table_name}_no_truncate ON {table_name}")
        op.execute(
            f"CREATE TRIGGER {table_name}_append_only BEFORE UPDATE OR DELETE ON {table_name} "
            f"FOR EACH ROW EXECUTE FUNCTION {table_name}_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table_name}_no_truncate BEFORE TRUNCATE ON {table_name} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table_name}_refuse_change()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS {table_name}_no_{verb.lower()} BEFORE {verb} ON {table_name} "
            f"BEGIN SELECT RAISE(ABORT, 'the audit log {table_name} is append-only: {verb} refused'); END"
        )


def drop_audit_triggers(op: Any, table_name: str) -> None:
    """Undo ``create_audit_triggers`` (downgrades)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table_name}_no_truncate ON {table_name}")
        op.execute(f"DROP TRIGGER IF EXISTS {table_name}_append_only ON {table_name}")
        op.execute(f"DROP FUNCTION IF EXISTS {table_name}_refuse_change()")
        return
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {table_name}_no_{verb}")


def add_audit_chain(op: Any, table_name: str) -> None:
    """Add the hash-chain columns to ``table_name`` and chain the rows it already holds, in ``id`` order.

    The existing rows are updated once, so the append-only triggers are lifted for the duration of
    this migration (it runs as the table's owner) and put back at the end.
    """
    import sqlalchemy as sa

    op.add_column(
        table_name, sa.Column("chain_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
    )
    op.add_column(table_name, sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column(table_name, sa.Column("row_hash", sa.String(length=64), nullable=True))
    op.create_index(f"ux_{table_name}_chain_seq", table_name, ["chain_seq"], unique=True)
    table = sa.table(
        table_name,
        sa.column("id", sa.BigInteger()),
        sa.column("occurred_at", UtcDateTime()),
        *(sa.column(name) for name in HASHED_COLUMNS if name != "occurred_at"),
        sa.column("row_hash"),
    )
    connection = op.get_bind()
    rows = [dict(r) for r in connection.execute(select(table).order_by(table.c.id)).mappings()]
    if not rows:
        return
    drop_audit_triggers(op, table_name)
    previous = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        row["chain_seq"], row["prev_hash"] = seq, previous
        row["row_hash"] = previous = entry_hash(row)
    connection.execute(
        table.update().where(table.c.id == sa.bindparam("row_id")),
        [
            {"row_id": r["id"], "chain_seq": r["chain_seq"], "prev_hash": r["prev_hash"], "row_hash": r["row_hash"]}
            for r in rows
        ],
    )
    create_audit_triggers(op, table_name)


def drop_audit_chain(op: Any, table_name: str) -> None:
    """Undo ``add_audit_chain`` (downgrades)."""
    with op.batch_alter_table(table_name) as batch:
        batch.drop_index(f"ux_{table_name}_chain_seq")
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
        batch.drop_column("chain_seq")
    create_audit_triggers(op, table_name)  # a SQLite batch rebuild drops them
