"""The outbox wakes its relay on commit: on PostgreSQL a statement trigger NOTIFYs the channel the relay LISTENs
on (shared.bus.outbox.OUTBOX_CHANNEL) in every transaction that inserts outbox rows. Nothing on SQLite, where
the relay is woken in-process. No data changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from shared.migrations import create_outbox_notify, drop_outbox_notify

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
# What tests/migrations checks of a step down: only PostgreSQL's schema changes.
changes_dialects = ("postgresql",)


def upgrade() -> None:
    # The channel's name is written out: a revision must emit the same SQL whatever the code says later.
    create_outbox_notify("regiozorg_outbox")


def downgrade() -> None:
    # Relays fall back to their timer; nothing is lost.
    drop_outbox_notify()
