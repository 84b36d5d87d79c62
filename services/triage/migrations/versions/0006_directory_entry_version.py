"""Directory entries carry a version that grows with every change the admin makes: directory-changed publishes it
so coordination keeps the newest entry of each organisation whatever order the events arrive in. Existing entries
start at version 1; coordination keeps the region's defaults for an organisation until it hears of a change, and
the front door publishes the entries an admin changed before once when it starts
(configuration.announce_earlier_changes).

A version is the change's time in microseconds (at least one more than the entry's version before), so after a
downgrade dropped the column and an upgrade brought it back at 1, the admin's next change is still newer than
anything coordination received. Coordination keeps what it received either way.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directory_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.BigInteger(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("directory_entry", schema=None) as batch_op:
        batch_op.drop_column("version")
