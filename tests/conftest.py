"""Fixtures: throw-away SQLite and PostgreSQL databases, configurations and a CLI runner.

Every database behaviour is tested on both. PostgreSQL is reached at $GIM_TEST_PG_URL
(default postgresql://postgres@127.0.0.1:5432/postgres); each test gets its own database,
dropped afterwards. Without a server the PostgreSQL cases are skipped, except under CI=true
where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gim.cli import app

PG_ADMIN_URL = os.environ.get("GIM_TEST_PG_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
_pg_state: dict[str, object] = {}
_drop_failures: list[str] = []


def _pg_available() -> str | None:
    """None when the server answers, else the reason it does not."""
    if "reason" not in _pg_state:
        import psycopg

        try:
            with psycopg.connect(PG_ADMIN_URL, connect_timeout=5, autocommit=True) as conn:
                conn.execute("SELECT 1")
            _pg_state["reason"] = None
        except psycopg.Error as exc:
            _pg_state["reason"] = str(exc).strip().splitlines()[0]
    return _pg_state["reason"]  # type: ignore[return-value]


def require_pg() -> None:
    reason = _pg_available()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI=true and is not reachable: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


def _pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


def _drop_databases(names: queue.Queue) -> None:
    import psycopg

    while (name := names.get()) is not None:
        try:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except psycopg.Error as exc:
            _drop_failures.append(f"{name}: {exc}")


def drop_pg_database(name: str) -> None:
    """Drop a test database, in the background: DROP DATABASE waits for a checkpoint, which
    under the other tests' writes takes seconds that no test needs to wait. The session's
    end waits for the drops."""
    if "dropper" not in _pg_state:
        names: queue.Queue = queue.Queue()
        thread = threading.Thread(target=_drop_databases, args=(names,), daemon=True)
        thread.start()
        _pg_state["dropper"] = (names, thread)
    _pg_state["dropper"][0].put(name)  # type: ignore[index]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if "dropper" in _pg_state:
        names, thread = _pg_state.pop("dropper")  # type: ignore[misc]
        names.put(None)
        thread.join()
    for failure in _drop_failures:
        print(f"\ncould not drop test database {failure}", file=sys.stderr)


@contextlib.contextmanager
def pg_database(prefix: str = "gim_test") -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped after use."""
    require_pg()
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield _pg_url(name)
    finally:
        drop_pg_database(name)


@contextlib.contextmanager
def pg_clone(url: str) -> Iterator[str]:
    """A copy of a PostgreSQL database (CREATE DATABASE ... TEMPLATE); dropped on exit."""
    import psycopg

    source = url.rsplit("/", 1)[1]
    name = f"gim_clone_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {source}")
    try:
        yield _pg_url(name)
    finally:
        drop_pg_database(name)


@contextlib.contextmanager
def new_database(kind: str, directory: Path, name: str = "infomart") -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / (name + '.db')}"
    else:
        with pg_database(f"gim_{name}") as url:
            yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_pg()
    return request.param


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    with new_database(db_kind, tmp_path) as url:
        yield url


def write_config(directory: Path, infomart_url: str, extra: str = "") -> Path:
    """A gim.toml in `directory` pointing at `infomart_url`, locks and log beside it."""
    path = directory / "gim.toml"
    path.write_text(textwrap.dedent(f"""\
        [infomart]
        url = "{infomart_url}"

        [lock]
        dir = "locks"

        [log]
        file = "gim.log"
        """) + textwrap.dedent(extra), encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path, db_url)


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str, env: dict[str, str] | None = None):  # noqa: ANN201
    """Run the CLI in-process; returns the click Result (exit_code, stdout, stderr)."""
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def run_gim(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `gim` in a real process (for signals, locks held by others, exit codes)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "gim.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def spawn_gim(*args: str, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "gim.cli", *args], cwd=cwd, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Watch:
    """A value read again and again over one connection, each read in a transaction of its
    own (so it sees what other processes committed), for loops that wait on a job: a new
    connection per read would cost more than the job's own steps."""

    def __init__(self, url: str, sql: str) -> None:
        self._engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        self._conn = self._engine.connect()
        self._sql = sa.text(sql)

    def __call__(self) -> tuple:
        """The rows, as a tuple of tuples."""
        try:
            return tuple(tuple(r) for r in self._conn.execute(self._sql))
        finally:
            self._conn.rollback()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()
        self._engine.dispose()


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, str(type(v)), v if v is not None else 0) for v in row)


def table_snapshot(url: str, table: str, order_by: str | None = None) -> list[tuple]:
    """All rows of a table (or a parenthesized query with an alias), sorted."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table}").all()]
    finally:
        engine.dispose()
    return sorted(rows, key=_sort_key)


def scalar(url: str, sql: str, **params: object) -> object:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()
