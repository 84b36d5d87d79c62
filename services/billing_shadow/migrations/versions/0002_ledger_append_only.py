"""The prestation and shadow ledgers become append-only in the database too: triggers refuse UPDATE and DELETE
(and TRUNCATE on PostgreSQL). The code only adds lines since the ledger became a ledger (a change is a credit
plus a rebill); from here the database refuses anything else as well.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from shared.migrations import create_append_only, drop_append_only

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LEDGERS = {"prestation_ledger": "the prestation ledger is append-only",
           "shadow_ledger": "the shadow ledger is append-only"}


def upgrade() -> None:
    for table, message in LEDGERS.items():
        create_append_only(table, message)


def downgrade() -> None:
    for table in LEDGERS:
        drop_append_only(table)
