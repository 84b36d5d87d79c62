"""The case manager reads every caller's words: linked calls with complaint, caller and callback number
(linked-contact-recorded), and timeline entries that keep what happened as data (`facts`) so the console can say
it in Dutch or English. Entries from before keep only their Dutch text.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linked_call",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("acute_request_id", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("caller", sa.String(length=16), nullable=True),
        sa.Column("callback_phone", sa.String(length=32), nullable=True),
        sa.Column("complaint", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("linked_call", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_linked_call_acute_request_id"), ["acute_request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_linked_call_pseudonym"), ["pseudonym"], unique=False)
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("facts", sa.Text(), nullable=True))


def downgrade() -> None:
    # The calls' words stay at the front door (GET /api/v1/requests/{id}); the timeline keeps its Dutch text.
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.drop_column("facts")
    with op.batch_alter_table("linked_call", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_linked_call_pseudonym"))
        batch_op.drop_index(batch_op.f("ix_linked_call_acute_request_id"))
    op.drop_table("linked_call")
