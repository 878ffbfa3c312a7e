"""config versions: every configuration of a cycle, from the template or from HR

The workflow pushes the template's configuration only while HR has not changed it, so each change
is now kept with its source (``template`` or ``hr``), who made it and when. Existing
configurations become version 1: sent by the worker's service token (``system:...``) they came
from the template, otherwise from HR.

Revision ID: b7e2c4d19a30
Revises: 30176ec0b64c
Create Date: 2026-12-10 00:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7e2c4d19a30"
down_revision: str | Sequence[str] | None = "30176ec0b64c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "evaluation_config_version",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", "version"),
    )
    op.execute(
        "INSERT INTO evaluation_config_version (cycle_id, version, source, payload, changed_by, changed_at) "
        "SELECT cycle_id, 1, CASE WHEN received_by LIKE 'system:%' THEN 'template' ELSE 'hr' END, payload, "
        "received_by, received_at FROM evaluation_input WHERE kind = 'config'"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("evaluation_config_version")
