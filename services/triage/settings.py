"""Settings of the triage service (front door and authorization server)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class TriageSettings(ServiceSettings):
    service_name: str = "triage"
    database_url: str | None = Field(None, validation_alias="TRIAGE_DATABASE_URL")
    public_url: str = Field("http://127.0.0.1:8001", validation_alias="TRIAGE_PUBLIC_URL")
