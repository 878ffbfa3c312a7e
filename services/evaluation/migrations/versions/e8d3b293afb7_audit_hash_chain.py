"""audit hash chain

Revision ID: e8d3b293afb7
Revises: b7e2c4d19a30
Create Date: 2026-12-01 00:00:00.000000

Adds ``chain_seq``, ``prev_hash`` and ``row_hash`` to ``evaluation_audit`` and chains the rows already
there in ``id`` order (services/common/audit.py, ``add_audit_chain``). Run it as the role that owns
the table: it lifts the append-only triggers while it fills the new columns, and puts them back.
"""

from collections.abc import Sequence

from alembic import op

from services.common.audit import add_audit_chain, drop_audit_chain

# revision identifiers, used by Alembic.
revision: str = "e8d3b293afb7"
down_revision: str | Sequence[str] | None = "b7e2c4d19a30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_audit_chain(op, "evaluation_audit")


def downgrade() -> None:
    drop_audit_chain(op, "evaluation_audit")
