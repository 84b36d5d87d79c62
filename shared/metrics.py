"""Prometheus metrics of every service (served at /metrics); labels never carry patient data."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("regiozorg_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_SECONDS = Histogram("regiozorg_http_request_seconds", "HTTP request latency", ["service", "method", "route"])
OUTBOX_PUBLISHED = Counter("regiozorg_outbox_published_total", "Outbox events published", ["service", "topic"])
OUTBOX_PARKED = Counter("regiozorg_outbox_parked_total", "Outbox events the broker refused for good", ["service"])
OUTBOX_BATCH_SECONDS = Histogram("regiozorg_outbox_batch_seconds", "Time to publish one outbox batch", ["service"])
OUTBOX_PENDING = Gauge("regiozorg_outbox_pending", "Outbox events not yet published", ["service"])
OUTBOX_OLDEST_SECONDS = Gauge("regiozorg_outbox_oldest_pending_seconds", "Age of the oldest unpublished event",
                              ["service"])
CONSUMED = Counter("regiozorg_events_consumed_total", "Events whose effect was committed", ["consumer", "topic"])
DUPLICATES = Counter("regiozorg_events_duplicate_total", "Redelivered events skipped", ["consumer", "topic"])
CONSUMER_LAG = Gauge("regiozorg_consumer_lag", "Records on the broker not yet consumed, per consumer group and topic",
                     ["consumer", "topic"])
DEAD_LETTERS = Counter("regiozorg_dead_letters_total", "Events sent to a .dlq topic", ["consumer", "topic"])
HANDLER_RETRIES = Counter("regiozorg_handler_retries_total", "Handler attempts that failed and were retried",
                          ["consumer"])
INCLUSION_RATE = Gauge("regiozorg_inclusion_rate", "Eligible closed requests with a prestation", ["uzovi", "period"])
BROKER_RESETS = Counter("regiozorg_broker_resets_total", "Broker epochs seen after the first", ["service"])
