"""Settings of the coordination service."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class CoordinationSettings(ServiceSettings):
    service_name: str = "coordination"
    database_url: str | None = Field(None, validation_alias="COORDINATION_DATABASE_URL")
