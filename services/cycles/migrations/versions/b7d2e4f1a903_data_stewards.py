"""data stewards: a department's named data steward, and the data owners frozen with each cycle

Revision ID: b7d2e4f1a903
Revises: 847cb46c7578
Create Date: 2026-12-10 00:00:00.000000

``cycles_department.data_steward_id`` is the optional ``data_steward_id`` column of the org import;
``cycles_snapshot_data_owner`` freezes, per cycle, every department with its steward and head
(``contracts.org.DataOwnerDirectory``, sent to tracking with the snapshot).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7d2e4f1a903"
down_revision: str | Sequence[str] | None = "847cb46c7578"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cycles_department", sa.Column("data_steward_id", sa.String(length=64), nullable=True))
    op.create_table(
        "cycles_snapshot_data_owner",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("data_steward_id", sa.String(length=64), nullable=True),
        sa.Column("head_employee_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("cycle_id", "department_id"),
    )


def downgrade() -> None:
    op.drop_table("cycles_snapshot_data_owner")
    with op.batch_alter_table("cycles_department") as batch:
        batch.drop_column("data_steward_id")
