"""settings source: who set a cycle's appeal window and HR deadline (template or HR)

The workflow pushes the template's feedback settings only while HR has not changed them; the
cycle row keeps their version, source and who changed them last. Existing rows read as version 0
from the template (the defaults).

Revision ID: 5c1d8e2f9b47
Revises: 87825cbdf8b4
Create Date: 2026-12-10 00:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5c1d8e2f9b47"
down_revision: str | Sequence[str] | None = "87825cbdf8b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("feedback_cycle") as batch:
        batch.add_column(sa.Column("settings_version", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("settings_source", sa.String(length=16), server_default="template", nullable=False))
        batch.add_column(sa.Column("settings_changed_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("settings_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("feedback_cycle") as batch:
        batch.drop_column("settings_changed_at")
        batch.drop_column("settings_changed_by")
        batch.drop_column("settings_source")
        batch.drop_column("settings_version")
