"""The evaluation read model: one row per acute request with what the experiment's measures need (channel,
urgency, disposition, times, re-triage, linked contacts), filled by billing's `evaluation` consumer. Existing
databases get it empty; replaying the topics fills it (docs/billing.md, "Evaluating the experiment").

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 06:53:40.860644
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evaluation_request',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('pseudonym', sa.String(length=64), nullable=False),
    sa.Column('uzovi', sa.String(length=4), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('urgency', sa.String(length=4), nullable=True),
    sa.Column('disposition', sa.String(length=32), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_triaged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_triaged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retriaged', sa.Boolean(), nullable=False),
    sa.Column('linked_contacts', sa.Integer(), nullable=False),
    sa.Column('first_contact_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evaluation_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluation_request_pseudonym'), ['pseudonym'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluation_request_received_at'), ['received_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('evaluation_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluation_request_received_at'))
        batch_op.drop_index(batch_op.f('ix_evaluation_request_pseudonym'))

    op.drop_table('evaluation_request')
