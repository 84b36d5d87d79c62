"""Production mode refuses what is printed in the README: the demo pseudonym key and demo client secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.triage.settings import TriageSettings


def test_production_refuses_the_demo_pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGIOZORG_ENV", "production")
    monkeypatch.delenv("REGIOZORG_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ValidationError, match="REGIOZORG_PSEUDONYM_KEY"):
        TriageSettings()


@pytest.mark.parametrize("placeholder", ["changethis", "secret", "short-key"])
def test_production_refuses_placeholder_keys(monkeypatch: pytest.MonkeyPatch, placeholder: str) -> None:
    monkeypatch.setenv("REGIOZORG_ENV", "production")
    monkeypatch.setenv("REGIOZORG_PSEUDONYM_KEY", placeholder)
    with pytest.raises(ValidationError, match="REGIOZORG_PSEUDONYM_KEY"):
        TriageSettings()


def test_production_starts_with_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGIOZORG_ENV", "production")
    monkeypatch.setenv("REGIOZORG_PSEUDONYM_KEY", "a-real-secret-from-the-vault")
    settings = TriageSettings()
    assert not settings.demo and settings.pseudonym_key_bytes == b"a-real-secret-from-the-vault"


def test_database_url_per_service_defaults_to_sqlite_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGIOZORG_DATA_DIR", "somewhere")
    monkeypatch.delenv("TRIAGE_DATABASE_URL", raising=False)
    assert TriageSettings().resolved_database_url == "sqlite+aiosqlite:///somewhere/triage.db"
    monkeypatch.setenv("TRIAGE_DATABASE_URL", "postgresql://db/triage")
    assert TriageSettings().resolved_database_url == "postgresql://db/triage"
