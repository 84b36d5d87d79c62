"""Trace context: log lines carry the trace of the request or event in hand, HTTP echoes it, events continue it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from shared import tracing
from shared.bus.envelope import Event
from shared.bus.topics import TASK_CHANGED
from shared.logs import JsonFormatter
from shared.web import install
from tests.json_logs import json_lines

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def log_lines() -> Iterator[list[dict]]:
    with json_lines("regiozorg.test") as lines:
        yield lines


def _event(traceparent: str | None = None) -> Event:
    return Event.of(topic=TASK_CHANGED, key="p-1", source="/s", subject="Task/1", payload={}, traceparent=traceparent)


@pytest.mark.parametrize("header", [
    None, "", "garbage", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
])
def test_unreadable_traceparents_are_refused_like_a_w3c_tracer_would(header: str | None) -> None:
    assert tracing.parse(header) is None
    assert tracing.parse(tracing.child_traceparent(header)) is not None


def test_a_later_version_may_carry_more_fields() -> None:
    assert tracing.parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more") is not None


def test_log_lines_carry_the_trace_of_the_work_in_hand_and_none_outside_it(log_lines: list[dict]) -> None:
    log = logging.getLogger("regiozorg.test")
    with tracing.continued(PARENT) as span:
        log.info("inside")
    log.info("outside")
    inside, outside = log_lines
    assert inside["trace_id"] == PARENT_TRACE
    assert inside["span_id"] == tracing.parse(span).span_id != "b7ad6b7169203331"  # type: ignore[union-attr]
    assert "trace_id" not in outside and "span_id" not in outside


def test_a_record_may_bring_its_own_trace(log_lines: list[dict]) -> None:
    logging.getLogger("regiozorg.test").info("late", extra={"traceparent": PARENT})
    assert log_lines[0]["trace_id"] == PARENT_TRACE


def test_nested_work_in_the_same_trace_keeps_its_span() -> None:
    with tracing.continued(PARENT) as outer, tracing.continued(PARENT) as inner:
        assert inner == outer == tracing.current()
    assert tracing.current() is None


def test_events_made_during_work_continue_its_trace_unless_given_one() -> None:
    other = tracing.new_traceparent()
    with tracing.continued(PARENT):
        assert tracing.parse(_event().traceparent).trace_id == PARENT_TRACE  # type: ignore[union-attr]
        assert tracing.parse(_event("not a traceparent").traceparent).trace_id == PARENT_TRACE  # type: ignore[union-attr]
        assert _event(other).traceparent.split("-")[1] == other.split("-")[1]
    assert tracing.parse(_event().traceparent).trace_id != PARENT_TRACE  # type: ignore[union-attr]


def _app() -> FastAPI:
    app = FastAPI()
    install(app, service="test", max_body_bytes=100)

    @app.post("/work")
    async def work() -> dict[str, str]:
        logging.getLogger("regiozorg.test").info("handling the request")
        return {"event_traceparent": _event().traceparent}

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("boom")

    return app


async def _request(method: str, path: str, headers: dict[str, str] | None = None,
                   content: bytes = b"") -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, headers=headers, content=content)


async def test_request_with_a_traceparent_is_handled_logged_and_answered_in_that_trace(log_lines: list[dict]) -> None:
    response = await _request("POST", "/work", {"traceparent": PARENT})
    echoed = tracing.parse(response.headers["traceparent"])
    assert echoed is not None and echoed.trace_id == PARENT_TRACE
    assert echoed.span_id != "b7ad6b7169203331"  # the server's own span
    assert log_lines[-1]["trace_id"] == PARENT_TRACE and log_lines[-1]["span_id"] == echoed.span_id
    assert response.json()["event_traceparent"].split("-")[1] == PARENT_TRACE


@pytest.mark.parametrize("headers", [{}, {"traceparent": "not-a-trace"}])
async def test_request_without_a_valid_traceparent_starts_a_trace_and_echoes_it(
        headers: dict[str, str], log_lines: list[dict]) -> None:
    response = await _request("POST", "/work", headers)
    echoed = tracing.parse(response.headers["traceparent"])
    assert echoed is not None
    assert log_lines[-1]["trace_id"] == echoed.trace_id
    assert response.json()["event_traceparent"].split("-")[1] == echoed.trace_id


async def test_refused_and_failed_requests_echo_their_trace_too(caplog: pytest.LogCaptureFixture) -> None:
    too_large = await _request("POST", "/work", {"traceparent": PARENT}, content=b"x" * 101)
    assert too_large.status_code == 413
    assert too_large.headers["traceparent"].split("-")[1] == PARENT_TRACE
    with caplog.at_level(logging.ERROR, logger="shared.web"):
        failed = await _request("GET", "/fail", {"traceparent": PARENT})
    assert failed.status_code == 500
    assert failed.headers["traceparent"].split("-")[1] == PARENT_TRACE
    [record] = [r for r in caplog.records if r.getMessage().startswith("unexpected error")]
    assert json.loads(JsonFormatter("test").format(record))["trace_id"] == PARENT_TRACE
