"""Settings of the coordination service."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from shared.settings import ServiceSettings


class CoordinationSettings(ServiceSettings):
    service_name: str = "coordination"
    database_url: str | None = Field(None, validation_alias="COORDINATION_DATABASE_URL")
    overdue_check_seconds: float = Field(15, validation_alias="COORDINATION_OVERDUE_CHECK_SECONDS")
    # Notifications: retried with exponential backoff, the subscription turns `error` after give-up.
    notify_base_seconds: float = Field(1.0, validation_alias="COORDINATION_NOTIFY_BASE_SECONDS")
    notify_max_backoff_seconds: float = Field(3600, validation_alias="COORDINATION_NOTIFY_MAX_BACKOFF_SECONDS")
    notify_give_up_seconds: float = Field(24 * 3600, validation_alias="COORDINATION_NOTIFY_GIVE_UP_SECONDS")
    # The sender wakes on the commit that adds a notification and when a retry or heartbeat is due; this timer is
    # only the fallback for a lost wake-up signal.
    notify_fallback_seconds: float = Field(30, gt=0, validation_alias="COORDINATION_NOTIFY_FALLBACK_SECONDS")
    # A partner's clock and ours differ a little: how far a delivered contact may seem to start before the request
    # was received, or to lie in the future, before it is refused as implausible.
    clock_tolerance_seconds: float = Field(120, ge=0, le=3600, validation_alias="COORDINATION_CLOCK_TOLERANCE_SECONDS")

    @property
    def clock_tolerance(self) -> timedelta:
        """COORDINATION_CLOCK_TOLERANCE_SECONDS as the timedelta the executionPeriod rule takes."""
        return timedelta(seconds=self.clock_tolerance_seconds)

    @property
    def front_door_fhir_base(self) -> str:
        """The front door's FHIR base as partners reach it: Task.for and Task.focus are absolute URLs on it."""
        return f"{self.triage_public_url.rstrip('/')}/fhir"
