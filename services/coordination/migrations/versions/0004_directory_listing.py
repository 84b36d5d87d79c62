"""Coordination routes by the directory the front door's admin keeps: each organisation's entry as last received
(directory-changed), replaced only by a higher version. The table starts empty: until an entry arrives, an
organisation keeps the region's defaults, so an existing region routes as before.

A downgrade drops the received entries; coordination then routes by the region's defaults again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_listing",
        sa.Column("org", sa.String(length=120), nullable=False),
        sa.Column("dispositions", sa.Text(), nullable=False),
        sa.Column("hours", sa.String(length=20), nullable=False),
        sa.Column("weekdays_only", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org"),
    )


def downgrade() -> None:
    op.drop_table("directory_listing")
