"""Fixtures: throw-away SQLite and PostgreSQL databases, configurations and a CLI runner.

Every database behaviour is tested on both. PostgreSQL is reached at $GIM_TEST_PG_URL
(default postgresql://postgres@127.0.0.1:5432/postgres); each test gets its own database,
dropped afterwards. Without a server the PostgreSQL cases are skipped, except under CI=true
where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
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


@contextlib.contextmanager
def pg_database(prefix: str = "gim_test") -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped on exit."""
    require_pg()
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
