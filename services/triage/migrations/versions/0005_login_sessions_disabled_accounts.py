"""Login sessions for single logout (`login_session`, and the `sid` an authorization code passes to its id_token),
and console accounts an admin can disable (`console_account.disabled`, false for every existing account).

A downgrade drops them: logins made before it can no longer be ended by a logout elsewhere, and disabled accounts
can log in again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 07:13:49.526228
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("login_session",
                    sa.Column("sid", sa.String(length=64), nullable=False),
                    sa.Column("username", sa.String(length=60), nullable=False),
                    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint("sid"))
    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_session_username"), ["username"], unique=False)
    with op.batch_alter_table("authorization_code", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sid", sa.String(length=64), nullable=True))
    with op.batch_alter_table("console_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("console_account", schema=None) as batch_op:
        batch_op.drop_column("disabled")
    with op.batch_alter_table("authorization_code", schema=None) as batch_op:
        batch_op.drop_column("sid")
    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_session_username"))
    op.drop_table("login_session")
