"""Alembic environment of the coordination database (see shared/migrations.py)."""

from shared.migrations import run_environment

run_environment("coordination")
