"""Which PostgreSQL server the tests run on (tests/postgres.py), the embedded one included: CI has a server at
the local address, so without this test the path a bare machine takes would never run there."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy import text

from shared.db import make_engine
from tests.conftest import PostgresDatabases
from tests.postgres import LOCAL_VARIABLE, URL_VARIABLE, chosen_postgres, free_port, why_unanswered

pytestmark = pytest.mark.integration


async def _use_as_a_service_would(url: str) -> tuple[str, int, int]:
    """Through the services' own engine (shared.db): a table, a row, a query; (user, server port, rows)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE visit (id integer PRIMARY KEY, unit text NOT NULL)"))
            await conn.execute(text("INSERT INTO visit VALUES (1, 'SEH'), (2, 'huisartsenpost')"))
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT current_user, inet_server_port(), count(*) FROM visit"))).one()
        return row[0], row[1], row[2]
    finally:
        await engine.dispose()


async def _data_directory(server: str) -> Path:
    conn = await asyncpg.connect(server, timeout=10)
    try:
        return Path(await conn.fetchval("SHOW data_directory"))
    finally:
        await conn.close()


def test_nothing_answering_at_the_local_address_starts_an_embedded_server_that_works_and_stops() -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    assert why_unanswered(dead) is not None
    with chosen_postgres({LOCAL_VARIABLE: dead}, use_container=False) as choice:
        assert choice.source == "embedded"
        assert "nothing answered at 127.0.0.1" in choice.reason
        address = urlsplit(choice.url)
        # What infra/stack.py hands the services: TCP, user postgres, no password.
        assert (address.scheme, address.hostname, address.username, address.password) == (
            "postgresql", "127.0.0.1", "postgres", None)
        assert address.port != urlsplit(dead).port
        data_directory = asyncio.run(_data_directory(choice.url))
        assert data_directory.is_dir()
        databases = PostgresDatabases(choice.url)
        database = databases.new("embedded")
        try:
            assert asyncio.run(_use_as_a_service_would(database)) == ("postgres", address.port, 2)
        finally:
            databases.drop_all()
    assert why_unanswered(choice.url) is not None
    assert not data_directory.exists()


def test_a_local_server_that_answers_is_used_as_it_is(postgres_server: str) -> None:
    with chosen_postgres({LOCAL_VARIABLE: postgres_server}, use_container=False) as choice:
        assert (choice.source, choice.url) == ("local", postgres_server)


def test_an_address_in_the_environment_comes_before_a_container_and_the_local_server() -> None:
    given = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with chosen_postgres({URL_VARIABLE: given, LOCAL_VARIABLE: "postgresql://postgres@127.0.0.1:1/postgres"},
                         use_container=True) as choice:
        assert (choice.source, choice.url) == ("environment", given)
