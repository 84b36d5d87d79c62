"""Settings of the shadow billing service."""

from __future__ import annotations

import re
from datetime import date

from pydantic import Field

from services.billing_shadow.domain.evaluation import Experiment
from shared.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    service_name: str = "billing_shadow"
    database_url: str | None = Field(None, validation_alias="BILLING_SHADOW_DATABASE_URL")
    feed_debounce_seconds: float = Field(1.0, validation_alias="BILLING_FEED_DEBOUNCE_SECONDS")
    # A line can still change for this long after its request closed; after that only credit + rebill.
    lock_grace_hours: float = Field(72, validation_alias="BILLING_LOCK_GRACE_HOURS")
    inclusion_target: float = Field(0.95, validation_alias="BILLING_INCLUSION_TARGET")
    # The experiment under the innovation rule (docs/configuration.md): start, an extension if decided (at most
    # 5 years in total), the participating insurers and an agreed reference price per request ("9001=9000,...").
    experiment_start: date = Field(date(2026, 1, 1), validation_alias="BILLING_EXPERIMENT_START")
    experiment_end: date | None = Field(None, validation_alias="BILLING_EXPERIMENT_END")
    experiment_insurers: str = Field("9001,9002", validation_alias="BILLING_EXPERIMENT_INSURERS")
    experiment_reference_prices: str = Field("", validation_alias="BILLING_EXPERIMENT_REFERENCE_PRICES")

    def experiment(self) -> Experiment:
        """The experiment's configuration; ValueError on a malformed insurer list or reference price."""
        insurers = tuple(i.strip() for i in self.experiment_insurers.split(",") if i.strip())
        prices: dict[str, int] = {}
        for item in filter(None, (p.strip() for p in self.experiment_reference_prices.split(","))):
            uzovi, _, cents = item.partition("=")
            if not (re.fullmatch(r"\d{4}", uzovi.strip()) and cents.strip().isdigit()):
                raise ValueError(f"BILLING_EXPERIMENT_REFERENCE_PRICES: {item!r} is not UZOVI=cents")
            prices[uzovi.strip()] = int(cents)
        if not all(re.fullmatch(r"\d{4}", i) for i in insurers):
            raise ValueError("BILLING_EXPERIMENT_INSURERS is a comma-separated list of 4-digit UZOVI codes")
        return Experiment(start=self.experiment_start, end=self.experiment_end, insurers=insurers,
                          reference_price_cents=prices)
