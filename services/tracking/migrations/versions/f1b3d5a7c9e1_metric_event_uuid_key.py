"""metric events keyed by event_id (uuid on PostgreSQL); the status index only for events not applied

The hot table of ingestion loses its surrogate ``id`` (a sequence and a second unique index per
insert), ``event_id`` becomes the primary key as a native ``uuid`` on PostgreSQL (16 bytes, no
collation: it was ``varchar(36)``), and ``(status, metric)`` is indexed only for the events that
are not applied (what the ops page counts), so applied events, nearly all of them, skip that index.
The table is rebuilt (new table, copy, swap), the same way on PostgreSQL and SQLite.

Revision ID: f1b3d5a7c9e1
Revises: e3a8c1d7f5b2
Create Date: 2026-12-07 04:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "f1b3d5a7c9e1"
down_revision: str | Sequence[str] | None = "e3a8c1d7f5b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "source, department_id, metric, employee_id, value, unit, occurred_at, received_at, status, dimensions"
_UNAPPLIED = sa.text("status <> 'applied'")


def _payload_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dimensions", sa.Text(), nullable=True),
    ]


def _swap(new_table: sa.Table, *, key: str, order: str, old_index: str) -> None:
    """Copy every stored event into ``new_table`` (its ``event_id`` through the SQL expression ``key``),
    then drop the old table and its index ``old_index`` and give the new one its name."""
    op.execute(
        f"INSERT INTO {new_table.name} (event_id, {_COLUMNS}) "
        f"SELECT {key}, {_COLUMNS} FROM tracking_metric_event {order}"
    )
    op.drop_index(old_index, table_name="tracking_metric_event")
    op.drop_table("tracking_metric_event")
    op.rename_table(new_table.name, "tracking_metric_event")


def upgrade() -> None:
    """Upgrade schema."""
    postgres = op.get_bind().dialect.name == "postgresql"
    new_table = op.create_table(
        "tracking_metric_event_new",
        sa.Column(
            "event_id",
            sa.String(length=36).with_variant(postgresql.UUID(as_uuid=False), "postgresql"),
            nullable=False,
        ),
        *_payload_columns(),
        sa.PrimaryKeyConstraint("event_id", name="pk_tracking_metric_event"),
    )
    key = "CAST(event_id AS uuid)" if postgres else "event_id"
    _swap(new_table, key=key, order="", old_index="ix_tracking_metric_event_status_metric")
    op.create_index(
        "ix_tracking_metric_event_unapplied",
        "tracking_metric_event",
        ["status", "metric"],
        postgresql_where=_UNAPPLIED,
        sqlite_where=_UNAPPLIED,
    )


def downgrade() -> None:
    """Downgrade schema."""
    postgres = op.get_bind().dialect.name == "postgresql"
    old_table = op.create_table(
        "tracking_metric_event_old",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        *_payload_columns(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    key = "CAST(event_id AS varchar)" if postgres else "event_id"
    _swap(old_table, key=key, order="ORDER BY received_at", old_index="ix_tracking_metric_event_unapplied")
    op.create_index("ix_tracking_metric_event_status_metric", "tracking_metric_event", ["status", "metric"])
