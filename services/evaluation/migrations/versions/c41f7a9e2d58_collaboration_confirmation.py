"""collaboration confirmation: a declared collaboration counts once both departments confirmed it

A department head could declare a collaboration with another department alone and rate it 1/1/1.
Each side's confirmation is now kept (``confirmed_a_by``, ``confirmed_b_by``: the head of that
department, or HR for both); ratings count only along confirmed links. Links declared before this
revision are kept as proposals: the migration cannot tell whether HR or one head declared them, so
HR (or the other department's head) declares them again to confirm.

Revision ID: c41f7a9e2d58
Revises: e8d3b293afb7
Create Date: 2026-12-20 00:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c41f7a9e2d58"
down_revision: str | Sequence[str] | None = "e8d3b293afb7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("evaluation_collaboration_link") as batch:
        batch.add_column(sa.Column("confirmed_a_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("confirmed_b_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("evaluation_collaboration_link") as batch:
        batch.drop_column("confirmed_b_by")
        batch.drop_column("confirmed_a_by")
