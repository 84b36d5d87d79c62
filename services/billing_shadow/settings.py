"""Settings of the shadow billing service."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    service_name: str = "billing_shadow"
    database_url: str | None = Field(None, validation_alias="BILLING_SHADOW_DATABASE_URL")
    feed_debounce_seconds: float = Field(1.0, validation_alias="BILLING_FEED_DEBOUNCE_SECONDS")
    # A line can still change for this long after its request closed; after that only credit + rebill.
    lock_grace_hours: float = Field(72, validation_alias="BILLING_LOCK_GRACE_HOURS")
    inclusion_target: float = Field(0.95, validation_alias="BILLING_INCLUSION_TARGET")
