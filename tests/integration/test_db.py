"""Schema handling on both backends: tables created at start, columns of a newer version added to old data."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, text

from shared.db import create_schema, make_engine

pytestmark = pytest.mark.integration


async def test_start_adds_new_columns_and_keeps_existing_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        old = Table("evolving", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(20)))
        assert await create_schema(engine, [old]) == []
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO evolving (id, name) VALUES (1, 'before')"))
        new = Table("evolving", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(20)),
                    Column("note", Text, nullable=True),
                    Column("expected", Text, nullable=False, default="[]"),
                    Column("changes", Integer, nullable=False, default=1))
        added = await create_schema(engine, [new])
        assert added == ["evolving.note", "evolving.expected", "evolving.changes"]
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT name, note, expected, changes FROM evolving"))).one()
        assert tuple(row) == ("before", None, "[]", 1)
        assert await create_schema(engine, [new]) == []
    finally:
        await engine.dispose()
