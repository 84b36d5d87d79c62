"""Alembic environment of the billing_shadow database (see shared/migrations.py)."""

from shared.migrations import run_environment

run_environment("billing_shadow")
