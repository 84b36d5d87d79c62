"""Treatment grants: the versions of coordination's Tasks the front door heard of (`task_ownership`), the grants
made of them (`treatment_grant`) and what came in with each referral (`referral_entry`), so that the owner of a
Task reads that request's data (SPEC §10, treatment relationship).

Referrals stored before this revision are linked to what came in with them: the front door stored a referral's
new resources in one go, with the same patient, submitter and `last_updated` as its ServiceRequest (a resource
an earlier referral had stored already, such as a known Patient, stays linked to that one only). Grants are not
back-filled here: triage's new consumer reads `task-changed` from the start of what the topic holds. A Task that
last changed before the topic's retention gets its grant at its next change, or at once when coordination's
outbox is replayed (`python -m infra.ops outbox replay --service coordination --topic
regiozorg.coordination.task-changed.v1 --since … --until …`, docs/operations.md).

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
    op.create_table("referral_entry",
                    sa.Column("service_request_id", sa.String(length=64), nullable=False),
                    sa.Column("resource_type", sa.String(length=64), nullable=False),
                    sa.Column("resource_id", sa.String(length=64), nullable=False),
                    sa.PrimaryKeyConstraint("service_request_id", "resource_type", "resource_id"))
    op.create_table("task_ownership",
                    sa.Column("task_id", sa.String(length=64), nullable=False),
                    sa.Column("version", sa.Integer(), nullable=False),
                    sa.Column("acute_request_id", sa.String(length=64), nullable=False),
                    sa.Column("owner", sa.String(length=120), nullable=False),
                    sa.Column("status", sa.String(length=32), nullable=False),
                    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint("task_id", "version"))
    op.create_table("treatment_grant",
                    sa.Column("pk", sa.Integer(), nullable=False),
                    sa.Column("task_id", sa.String(length=64), nullable=False),
                    sa.Column("org", sa.String(length=120), nullable=False),
                    sa.Column("acute_request_id", sa.String(length=64), nullable=False),
                    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint("pk"))
    with op.batch_alter_table("treatment_grant", schema=None) as batch_op:
        batch_op.create_index("ix_treatment_grant_org_request", ["org", "acute_request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_treatment_grant_task_id"), ["task_id"], unique=False)
    op.execute(sa.text(
        "INSERT INTO referral_entry (service_request_id, resource_type, resource_id) "
        "SELECT DISTINCT sr.id, r.resource_type, r.id FROM fhir_resource sr JOIN fhir_resource r "
        "ON r.patient_id = sr.patient_id AND r.owner_org = sr.owner_org AND r.last_updated = sr.last_updated "
        "WHERE sr.resource_type = 'ServiceRequest' AND r.resource_type <> 'ServiceRequest'"))


def downgrade() -> None:
    with op.batch_alter_table("treatment_grant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_treatment_grant_task_id"))
        batch_op.drop_index("ix_treatment_grant_org_request")
    op.drop_table("treatment_grant")
    op.drop_table("task_ownership")
    op.drop_table("referral_entry")
