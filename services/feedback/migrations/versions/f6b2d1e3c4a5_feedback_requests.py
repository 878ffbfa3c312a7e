"""feedback requests: a colleague asked for feedback answers (a feedback note) or declines

The requester chooses whether their managers may read the request and its answer; a note kept from
them says so (``feedback_note.shared_with_manager``, true for every note before).

Revision ID: f6b2d1e3c4a5
Revises: e5a1c0d2b3f4
Create Date: 2026-12-06 21:45:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "f6b2d1e3c4a5"
down_revision: str | Sequence[str] | None = "e5a1c0d2b3f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "feedback_request",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("giver_id", sa.String(length=64), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note_id", sa.Integer(), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("share_with_manager", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["note_id"], ["feedback_note.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_feedback_request_cycle_id"), "feedback_request", ["cycle_id"], unique=False)
    op.create_index(op.f("ix_feedback_request_giver_id"), "feedback_request", ["giver_id"], unique=False)
    op.create_index(op.f("ix_feedback_request_requester_id"), "feedback_request", ["requester_id"], unique=False)
    with op.batch_alter_table("feedback_note") as batch:
        batch.add_column(sa.Column("shared_with_manager", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("feedback_note") as batch:
        batch.drop_column("shared_with_manager")
    op.drop_index(op.f("ix_feedback_request_requester_id"), table_name="feedback_request")
    op.drop_index(op.f("ix_feedback_request_giver_id"), table_name="feedback_request")
    op.drop_index(op.f("ix_feedback_request_cycle_id"), table_name="feedback_request")
    op.drop_table("feedback_request")
