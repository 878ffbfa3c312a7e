"""appeals and policy source: adjusted appeals applied to pay, the policy's version and source

* ``results_appeal_adjustment``: each appeal HR resolved as adjusted, applied once (before
  publication it changes the result, the department's allocation, nominations and plans; after
  it, a ``ResultsCorrected`` correction is published too);
* ``results_cycle``: the rating scale's band labels (rules are checked against them), the policy's
  version, source (template or HR) and last change, and when promotions and plans were last run.

Revision ID: 9a4f2b6c8d13
Revises: dec00a88f0d3
Create Date: 2026-12-10 00:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "9a4f2b6c8d13"
down_revision: str | Sequence[str] | None = "dec00a88f0d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CYCLE_COLUMNS = (
    "plans_generated_at",
    "promotions_nominated_at",
    "policy_changed_at",
    "policy_changed_by",
    "policy_source",
    "policy_version",
    "rating_labels",
)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "results_appeal_adjustment",
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("appeal_id", sa.String(length=64), nullable=False),
        sa.Column("employee_id", sa.String(length=64), nullable=False),
        sa.Column("before_score", sa.Float(), nullable=True),
        sa.Column("before_rating", sa.String(length=32), nullable=True),
        sa.Column("after_score", sa.Float(), nullable=False),
        sa.Column("after_rating", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reallocated", sa.JSON(), nullable=False),
        sa.Column("correction_id", sa.String(length=64), nullable=True),
        sa.Column("correction_sequence", sa.Integer(), nullable=True),
        sa.Column("event_ids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", "appeal_id"),
    )
    op.create_index(
        op.f("ix_results_appeal_adjustment_employee_id"), "results_appeal_adjustment", ["employee_id"], unique=False
    )
    with op.batch_alter_table("results_cycle") as batch:
        batch.add_column(sa.Column("rating_labels", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("policy_version", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("policy_source", sa.String(length=16), server_default="template", nullable=False))
        batch.add_column(sa.Column("policy_changed_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("policy_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("promotions_nominated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("plans_generated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("results_cycle") as batch:
        for column in _CYCLE_COLUMNS:
            batch.drop_column(column)
    op.drop_index(op.f("ix_results_appeal_adjustment_employee_id"), table_name="results_appeal_adjustment")
    op.drop_table("results_appeal_adjustment")
