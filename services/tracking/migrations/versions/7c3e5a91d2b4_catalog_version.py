"""catalog version: one row bumped by every catalog PUT, checked by ingestion writes

Revision ID: 7c3e5a91d2b4
Revises: a51f00dd05b4
Create Date: 2026-12-02 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7c3e5a91d2b4"
down_revision: str | Sequence[str] | None = "a51f00dd05b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    table = op.create_table(
        "tracking_catalog_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The one row every catalog PUT bumps and every ingestion write locks (FOR SHARE).
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("tracking_catalog_version")
