"""The W3C trace context of the work in hand (an HTTP request, a consumed event), so logs and events carry it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

_TRACEPARENT: ContextVar[str | None] = ContextVar("traceparent", default=None)
_FORMAT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


class TraceContext(NamedTuple):
    trace_id: str
    span_id: str
    flags: str


def parse(traceparent: str | None) -> TraceContext | None:
    """The parts of a valid traceparent header; None for anything a W3C tracer would also refuse."""
    match = _FORMAT.match((traceparent or "").strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    return TraceContext(trace_id, span_id, flags)


def new_traceparent() -> str:
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def child_traceparent(parent: str | None) -> str:
    """Continue the parent's trace with a new span id, so one referral can be followed across services;
    a new trace when the parent is missing or unreadable."""
    context = parse(parent)
    if context is None:
        return new_traceparent()
    return f"00-{context.trace_id}-{os.urandom(8).hex()}-{context.flags}"


def current() -> str | None:
    """The traceparent of the request or event being handled, if any."""
    return _TRACEPARENT.get()


@contextmanager
def continued(parent: str | None) -> Iterator[str]:
    """Run the block as a new span of the parent's trace (a new trace without a readable parent).

    A block that already runs in the parent's trace keeps its span, so nesting (a consumer's
    record loop around its handler) does not split one piece of work into two spans.
    """
    active = _TRACEPARENT.get()
    here, wanted = parse(active), parse(parent)
    if active is not None and here is not None and wanted is not None and here.trace_id == wanted.trace_id:
        yield active
        return
    span = child_traceparent(parent)
    token = _TRACEPARENT.set(span)
    try:
        yield span
    finally:
        _TRACEPARENT.reset(token)
