"""Which failures are the database's (retry, never dead-letter, answer 503) and which are the work's."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shared.db import connection_lost, database_unavailable


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("sqlstate", "unavailable"), [
    ("55000", True),   # database is not currently accepting connections
    ("57P01", True),   # admin shutdown (connection terminated by the operator)
    ("57P03", True),   # cannot connect now (starting up)
    ("08006", True),   # connection failure
    ("53300", True),   # too many connections
    ("40001", True),   # serialisation failure: the same work succeeds when retried
    ("23505", False),  # unique violation: the work itself conflicts
    ("22P02", False),  # invalid text representation: bad data
])
def test_sqlstates(sqlstate: str, unavailable: bool) -> None:
    exc = DBAPIError("SELECT 1", {}, DriverError(sqlstate))
    assert database_unavailable(exc) is unavailable


def test_driver_error_behind_the_adapter_is_found() -> None:
    adapter = Exception("adapted")
    adapter.__cause__ = DriverError("57P01")
    assert database_unavailable(DBAPIError("SELECT 1", {}, adapter))


def test_invalidated_connection_and_plain_errors() -> None:
    assert database_unavailable(DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True))
    assert database_unavailable(OperationalError("SELECT 1", {}, Exception("closed")))
    assert not database_unavailable(IntegrityError("INSERT", {}, DriverError("23505")))
    assert not database_unavailable(KeyError("subject"))


@pytest.mark.parametrize(("orig", "lost"), [
    (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True),
    (asyncpg.InterfaceError("connection is closed"), True),
    (asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"), True),
    (ConnectionResetError(104, "reset by peer"), True),
    (DriverError("57P01"), True),  # admin shutdown: the backend was terminated or the server restarts
    (DriverError("08006"), True),  # connection failure
    (DriverError("53300"), False),  # too many connections: the database refuses, the connection is fine
    (DriverError("40001"), False),  # serialisation failure
    (DriverError("23505"), False),
    (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), False),
])
def test_which_failures_are_a_lost_connection(orig: Exception, lost: bool) -> None:
    assert connection_lost(OperationalError("SELECT 1", {}, orig)) is lost


def test_a_lost_connection_behind_the_adapter_or_invalidated_is_found() -> None:
    adapter = Exception("adapted")
    adapter.__cause__ = asyncpg.ConnectionDoesNotExistError("closed")
    assert connection_lost(DBAPIError("SELECT 1", {}, adapter))
    assert connection_lost(DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True))
    assert not connection_lost(KeyError("subject"))
