"""audit hash chain

Revision ID: 6f3a1c9e2b70
Revises: dd6e06153639
Create Date: 2026-12-06 18:00:00.000000

Adds ``chain_seq``, ``prev_hash`` and ``row_hash`` to ``committee_audit`` (services/common/audit.py,
``add_audit_chain``), as every service's audit log has them.
"""

from collections.abc import Sequence

from alembic import op

from services.common.audit import add_audit_chain, drop_audit_chain

# revision identifiers, used by Alembic.
revision: str = "6f3a1c9e2b70"
down_revision: str | Sequence[str] | None = "dd6e06153639"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_audit_chain(op, "committee_audit")


def downgrade() -> None:
    drop_audit_chain(op, "committee_audit")
