"""collaboration award: the fund finance sets for it, and the award as announced at publication

Revision ID: c5e7a9b1d3f4
Revises: b3d5f7a9c1e2
Create Date: 2026-12-07 00:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c5e7a9b1d3f4"
down_revision: str | Sequence[str] | None = "b3d5f7a9c1e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "results_award_fund",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id"),
    )
    op.create_table(
        "results_award",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("award", sa.String(length=100), nullable=False),
        sa.Column("winner_department_id", sa.String(length=64), nullable=True),
        sa.Column("winner_name", sa.String(length=200), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("ranking", sa.JSON(), nullable=False),
        sa.Column("fund_cents", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("announced_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("results_award")
    op.drop_table("results_award_fund")
