"""audit hash chain

Revision ID: 4560ac99db3a
Revises: 5b1e9c7a2d40
Create Date: 2026-12-01 00:00:00.000000

Adds ``chain_seq``, ``prev_hash`` and ``row_hash`` to ``goals_audit`` and chains the rows already
there in ``id`` order (services/common/audit.py, ``add_audit_chain``). Run it as the role that owns
the table: it lifts the append-only triggers while it fills the new columns, and puts them back.
"""

from collections.abc import Sequence

from alembic import op

from services.common.audit import add_audit_chain, drop_audit_chain

# revision identifiers, used by Alembic.
revision: str = "4560ac99db3a"
down_revision: str | Sequence[str] | None = "5b1e9c7a2d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_audit_chain(op, "goals_audit")


def downgrade() -> None:
    drop_audit_chain(op, "goals_audit")
