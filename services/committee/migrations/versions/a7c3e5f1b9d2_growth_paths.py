"""growth paths: career frameworks per job family, and potential ratings for the 9-box

Revision ID: a7c3e5f1b9d2
Revises: 6f3a1c9e2b70
Create Date: 2026-12-07 00:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a7c3e5f1b9d2"
down_revision: str | Sequence[str] | None = "6f3a1c9e2b70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "committee_career_framework",
        sa.Column("job_family", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("job_titles", sa.JSON(), nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_family"),
    )
    op.create_table(
        "committee_potential",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("employee_id", sa.String(length=64), nullable=False),
        sa.Column("rated", sa.String(length=8), nullable=True),
        sa.Column("rated_by", sa.String(length=200), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("calibrated", sa.String(length=8), nullable=True),
        sa.Column("calibrated_by", sa.String(length=200), nullable=True),
        sa.Column("calibrated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("calibration_reason", sa.Text(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("cycle_id", "employee_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("committee_potential")
    op.drop_table("committee_career_framework")
