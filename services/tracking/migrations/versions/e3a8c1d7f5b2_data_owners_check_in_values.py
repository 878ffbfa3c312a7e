"""data owners per cycle, and check-in values for key results without a metric

Revision ID: e3a8c1d7f5b2
Revises: 5bacc90f13ad
Create Date: 2026-12-10 00:00:00.000000

``tracking_data_owners`` keeps, per cycle, the ``contracts.org.DataOwnerDirectory`` the cycles
service sends (who answers for each department's data); ``tracking_check_in.value`` is the current
value a check-in gives a KPI without a metric.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e3a8c1d7f5b2"
down_revision: str | Sequence[str] | None = "5bacc90f13ad"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tracking_data_owners",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("directory", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id"),
    )
    op.add_column("tracking_check_in", sa.Column("value", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracking_check_in") as batch:
        batch.drop_column("value")
    op.drop_table("tracking_data_owners")
