"""pool approval: finance signs a department's bonus pool off before it is allocated

* ``results_bonus_pool.approved_by`` / ``approved_at``: who approved the pool's current amount and
  currency, and when (cleared when either changes). The cycle policy's ``pool_approval`` says
  whether allocation waits for it.

Revision ID: b3d5f7a9c1e2
Revises: 9a4f2b6c8d13
Create Date: 2026-12-07 00:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b3d5f7a9c1e2"
down_revision: str | Sequence[str] | None = "9a4f2b6c8d13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("results_bonus_pool") as batch:
        batch.add_column(sa.Column("approved_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("results_bonus_pool") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
