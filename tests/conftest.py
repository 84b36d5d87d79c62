"""Real services for the tests, chosen in order: an address from the environment, a container when a
Docker engine answers, else a local service (Tansu started here; PostgreSQL at the local address if it answers,
else an embedded one from the pinned wheel: tests/postgres.py). Nothing is skipped: a run in which anything was
skipped fails (tests/no_skips.py), and so does a parametrised test with no parameters (pyproject.toml)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from infra.broker import EmbeddedBroker
from infra.stack import Stack
from tests.no_skips import NoSkips
from tests.postgres import URL_VARIABLE, PostgresChoice, chosen_postgres, free_port

ROOT = Path(__file__).resolve().parent.parent
# The published Nictiz examples the tests read (source and licence: its README.md).
NL_CORE = ROOT / "tests" / "data" / "nl-core"
POSTGRES_CHOICE = pytest.StashKey[PostgresChoice]()
# pytest's own fixture for running pytest inside a test (tests/unit/test_no_skips.py).
pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("regiozorg-no-skips"):
        config.pluginmanager.register(NoSkips(), "regiozorg-no-skips")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if POSTGRES_CHOICE in config.stash:
        terminalreporter.write_line(f"PostgreSQL for this run: {config.stash[POSTGRES_CHOICE].describe()}")


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REGIOZORG_TEST_KAFKA_BOOTSTRAP"):
        yield os.environ["REGIOZORG_TEST_KAFKA_BOOTSTRAP"]
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    broker = EmbeddedBroker(free_port(), tmp_path_factory.mktemp("broker") / "broker.log")
    broker.start()
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """A PostgreSQL server URL (postgresql://…/postgres) on which test databases are created; which server
    (tests/postgres.py) is named in the run's summary."""
    use_container = not os.environ.get(URL_VARIABLE) and _docker_answers()  # no 2 s ping when a URL is given
    with chosen_postgres(os.environ, use_container=use_container) as choice:
        pytestconfig.stash[POSTGRES_CHOICE] = choice
        yield choice.url


async def _create_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(server, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(server, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class PostgresDatabases:
    """Creates fresh databases on the test server for this session and drops them at the end."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.created: list[str] = []

    def new(self, label: str) -> str:
        name = f"rz_{label}_{uuid.uuid4().hex[:8]}"
        try:
            asyncio.run(_create_database(self.server, name))
        except (OSError, asyncpg.PostgresError) as exc:
            raise RuntimeError(f"PostgreSQL at {self.server} is needed by the tests and did not answer: {exc}") from exc
        self.created.append(name)
        return self.server.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_drop_database(self.server, name))


@pytest.fixture(scope="session")
def postgres(postgres_server: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_server)
    yield databases
    databases.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same behaviour on both backends."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    databases: PostgresDatabases = request.getfixturevalue("postgres")
    return databases.new("bus")


def started_stack(tmp_path_factory: pytest.TempPathFactory, name: str, *, env: dict[str, str] | None = None,
                  database_urls: dict[str, str] | None = None) -> Iterator[Stack]:
    """The real processes (broker and three services on free ports), as `make run` starts them; stopped after."""
    stack = Stack(data_dir=tmp_path_factory.mktemp(f"stack-{name}"),
                  ports={"triage": free_port(), "coordination": free_port(), "billing_shadow": free_port()},
                  broker_port=free_port(), env=env or {}, database_urls=database_urls or {})
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
