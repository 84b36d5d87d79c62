"""Console accounts bound to an organisation: a partner-console user works the Tasks of one care provider of the
region, kept as `console_account.org` ("system|value"); the other roles act for the front door and leave it empty.

A downgrade drops the column: partner accounts stay, but the release before this one knows no partner role and
refuses their login.

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
    with op.batch_alter_table("console_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_account", schema=None) as batch_op:
        batch_op.drop_column("org")
