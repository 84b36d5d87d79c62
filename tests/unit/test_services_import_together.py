"""The three services' tables live in one SQLModel metadata when imported together (as in tests): names must differ."""

from __future__ import annotations

import importlib


def test_all_three_services_import_in_one_process() -> None:
    apps = [importlib.import_module(f"services.{name}.app") for name in ("triage", "coordination", "billing_shadow")]
    assert all(callable(app.create_app) for app in apps)
