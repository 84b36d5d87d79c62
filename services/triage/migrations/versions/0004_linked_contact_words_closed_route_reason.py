"""A linked contact keeps its words (complaint, caller, callback number) and a triage routed to an organisation
closed at the due time keeps its reason (`triage_decision.closed_reason`).

Rows linked before this revision have an empty complaint and no caller: their words were never stored. A downgrade
drops the columns and with them what later contacts said.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 06:52:52.115571
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("linked_contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("complaint", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("caller", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("callback_phone", sa.String(length=32), nullable=True))

    with op.batch_alter_table("triage_decision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("triage_decision", schema=None) as batch_op:
        batch_op.drop_column("closed_reason")

    with op.batch_alter_table("linked_contact", schema=None) as batch_op:
        batch_op.drop_column("callback_phone")
        batch_op.drop_column("caller")
        batch_op.drop_column("complaint")
