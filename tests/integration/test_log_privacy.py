"""A database error that quotes patient data (a second patient with the same BSN, say) reaches neither the logs nor a
dead letter with that data: the engine hides statement parameters, the log formatter hides DETAIL values."""

from __future__ import annotations

import json
import logging
import sys
import traceback

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from shared.db import make_engine
from shared.logs import JsonFormatter, configure_logging, redact

pytestmark = pytest.mark.integration

BSN, NAME, BIRTH_DATE = "999990068", "Grietje Hoekstra", "1939-05-14"


async def test_a_duplicate_patient_error_leaves_no_patient_data_in_the_log_line(database_url: str) -> None:
    engine = make_engine(database_url)
    patients = Table("patient_probe", MetaData(), Column("pk", Integer, primary_key=True),
                     Column("bsn", String(9), unique=True), Column("name", String(80)),
                     Column("birth_date", String(10)))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(patients.metadata.create_all)
        row = {"bsn": BSN, "name": NAME, "birth_date": BIRTH_DATE}
        async with engine.begin() as conn:
            await conn.execute(insert(patients).values(pk=1, **row))
        with pytest.raises(IntegrityError) as caught:
            async with engine.begin() as conn:
                await conn.execute(insert(patients).values(pk=2, **row))
        # The raw text does carry the data on PostgreSQL (its DETAIL line), which is why both guards exist.
        try:
            raise caught.value
        except IntegrityError:
            record = logging.LogRecord("triage", logging.ERROR, __file__, 1, "unexpected error", None, sys.exc_info())
        line = JsonFormatter("triage").format(record)
        entry = json.loads(line)
        assert "IntegrityError" in entry["exception"]
        for value in (BSN, NAME, BIRTH_DATE):
            assert value not in line
        # What a dead letter's dlq_error header would carry (shared/bus/consumer.py).
        header = redact("".join(traceback.format_exception_only(type(caught.value), caught.value)))
        assert "IntegrityError" in header
        for value in (BSN, NAME, BIRTH_DATE):
            assert value not in header
    finally:
        await engine.dispose()


def test_an_error_the_service_answered_is_logged_once_not_again_by_uvicorn() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("triage")
        uvicorn_error = logging.getLogger("uvicorn.error")
        again = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application\n",
                                  None, None)
        started = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Application startup complete.",
                                    None, None)
        assert not uvicorn_error.filter(again)
        assert uvicorn_error.filter(started)
    finally:
        root.handlers[:], root.level = handlers, level
