"""Settings of the triage service (front door and authorization server)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from shared.settings import ServiceSettings


class TriageSettings(ServiceSettings):
    service_name: str = "triage"
    database_url: str | None = Field(None, validation_alias="TRIAGE_DATABASE_URL")
    # How long an organisation still reads an acute request's data after its Task ended (SPEC §10); fractions of
    # a day are allowed (0.0001 is about nine seconds).
    treatment_access_days: float = Field(7, ge=0, validation_alias="TRIAGE_TREATMENT_ACCESS_DAYS")

    @property
    def treatment_window(self) -> timedelta:
        return timedelta(days=self.treatment_access_days)
