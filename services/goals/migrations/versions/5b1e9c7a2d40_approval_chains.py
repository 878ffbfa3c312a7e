"""approval chains: the cycle's chains and each goal's place in its chain

Revision ID: 5b1e9c7a2d40
Revises: ce86df98a444
Create Date: 2026-12-02 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5b1e9c7a2d40"
down_revision: str | Sequence[str] | None = "ce86df98a444"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Both nullable: a cycle without chains uses the defaults (one step, as before), and a goal submitted
    before chains existed is read as waiting at that single step."""
    with op.batch_alter_table("goals_cycle", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approval_chains", sa.JSON(), nullable=True))
    with op.batch_alter_table("goals_goal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approval", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("goals_goal", schema=None) as batch_op:
        batch_op.drop_column("approval")
    with op.batch_alter_table("goals_cycle", schema=None) as batch_op:
        batch_op.drop_column("approval_chains")
