"""Coordination knows whom it coordinates: the front door's Patients as patient-changed brings them (name, birth
date, BSN, address, phone, GP, insurer), newest version only, searchable by name and birth date or by BSN.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coordinated_patient",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("birth_date", sa.String(length=10), nullable=True),
        sa.Column("bsn", sa.String(length=9), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("coordinated_patient", schema=None) as batch_op:
        batch_op.create_index("ix_coordinated_patient_birth_date", ["birth_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_coordinated_patient_bsn"), ["bsn"], unique=False)
        batch_op.create_index(batch_op.f("ix_coordinated_patient_pseudonym"), ["pseudonym"], unique=False)


def downgrade() -> None:
    # What coordination knew of its patients goes; the front door tells it again at a patient's next contact.
    op.drop_table("coordinated_patient")
