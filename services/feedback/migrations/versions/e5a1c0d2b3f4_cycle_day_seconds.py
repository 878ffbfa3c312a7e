"""cycle day length: a compressed cycle counts its appeal window and HR's resolution time in its own days

The release carries the workflow's ``day_seconds``; existing cycles keep real days (86,400 s).

Revision ID: e5a1c0d2b3f4
Revises: b2c3123cfcf2
Create Date: 2026-12-06 21:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e5a1c0d2b3f4"
down_revision: str | Sequence[str] | None = "b2c3123cfcf2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("feedback_cycle") as batch:
        batch.add_column(sa.Column("day_seconds", sa.Float(), server_default="86400", nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("feedback_cycle") as batch:
        batch.drop_column("day_seconds")
