"""Structured JSON logs on stderr, one object per line, with the service name and the trace of the work in
hand (so one referral can be followed through every service by its trace id); never patient identifiers."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from shared import jsontext, tracing


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
            entry["exception"] = redact(self.formatException(record.exc_info))
        try:
            return jsontext.dumps(entry)
        except TypeError:  # a lone surrogate (bytes decoded with surrogateescape) has no UTF-8: escaped, it logs
            return json.dumps(entry, separators=(",", ":"))


# PostgreSQL's DETAIL line of a constraint error quotes the row's values ("Key (bsn)=(999990068) already
# exists."); statement parameters are hidden by the engine (shared/db.make_engine).
_DETAIL = re.compile(r"DETAIL:[^\n]*")


def redact(text: str) -> str:
    """The text of an exception without the values a database error quotes from the data (DETAIL lines)."""
    return _DETAIL.sub("DETAIL: [values hidden]", text)


def _already_logged(record: logging.LogRecord) -> bool:
    """uvicorn's own line for an error the service's handler already answered and logged (shared/web.py): Starlette
    re-raises it after the handler, so without this filter every such error is in the log twice."""
    return not record.getMessage().startswith("Exception in ASGI application")


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
    # uvicorn logs an unhandled error a second time with its own plain-text handler; through ours it is one JSON
    # line with the exception redacted like every other.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.error").addFilter(_already_logged)
    # Access lines quote query strings, and a search may name a patient (?identifier=…|<BSN>): requests are
    # counted in /metrics and traced by our own lines instead.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
