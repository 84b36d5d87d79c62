"""The notification sender wakes on commit: on PostgreSQL a row trigger on `notification` and on `subscription`
NOTIFYs the channel the sender LISTENs on (services.coordination.notifications.NOTIFICATION_CHANNEL) in every
transaction that adds a notification or a subscription. Nothing on SQLite, where the sender is woken in-process.
No data changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from shared.migrations import create_insert_notify, drop_insert_notify

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
# What tests/migrations checks of a step down: only PostgreSQL's schema changes.
changes_dialects = ("postgresql",)
TRIGGERS = {"notification_notify": "notification", "subscription_notify": "subscription"}


def upgrade() -> None:
    # The names are written out: a revision must emit the same SQL whatever the code says later. Per row, so
    # that a Task change on an owner nobody subscribed to (an INSERT … SELECT of no rows) wakes nobody.
    create_insert_notify("notification_notify", "regiozorg_notification", TRIGGERS, each="ROW")


def downgrade() -> None:
    # Senders fall back to their timer; nothing is lost.
    drop_insert_notify("notification_notify", TRIGGERS)
