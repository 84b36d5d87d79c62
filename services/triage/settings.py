"""Settings of the triage service (front door and authorization server)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class TriageSettings(ServiceSettings):
    service_name: str = "triage"
    database_url: str | None = Field(None, validation_alias="TRIAGE_DATABASE_URL")
