"""Structured JSON logs on stderr, one object per line, with the service name and the trace of the work in
hand (so one referral can be followed through every service by its trace id); never patient identifiers."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from shared import tracing


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(), "level": record.levelname,
                 "service": self.service, "logger": record.name, "message": record.getMessage()}
        # A record may bring its own trace (extra={"traceparent": ...}); else the request's or event's.
        context = tracing.parse(getattr(record, "traceparent", None) or tracing.current())
        if context is not None:
            entry["trace_id"], entry["span_id"] = context.trace_id, context.span_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(service: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka narrates every reconnect attempt; our own warnings say what matters.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # Alembic narrates its context at every step; the service logs one line on what the migration did.
    logging.getLogger("alembic").setLevel(logging.WARNING)
