"""Alembic environment of the triage database (see shared/migrations.py)."""

from shared.migrations import run_environment

run_environment("triage")
