"""Engines for the Info Mart and the IDBs: PostgreSQL through psycopg 3, SQLite in WAL mode.

Connection failures become one-line errors that name the database (password masked).
"""

from __future__ import annotations

import contextlib
import decimal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from gim.config import mask_url, normalize_credentials
from gim.errors import DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_MS = 60_000
CONNECT_TIMEOUT_S = 10

# Execution option asking for a write transaction (BEGIN IMMEDIATE on SQLite).
WRITE = "gim_write"


def normalize_url(url: str) -> str:
    """postgresql:// and postgres:// select psycopg 3; other URLs are left alone. A password
    holding '@' as it is gets percent-encoded."""
    url = normalize_credentials(url)
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, label: str = "Info Mart", fast_commit: bool = False) -> Engine:
    """An engine for `url`; `label` names the database in error messages.

    fast_commit (PostgreSQL): commits do not wait for the WAL flush. A crash may then lose
    the last transactions, never part of one; since every chunk commits its rows with its
    high-water mark, lost chunks are simply extracted or transformed again.
    """
    url = normalize_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseUnavailable(f"{label}: malformed database URL {mask_url(url)}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, label)
    elif parsed.get_backend_name() == "postgresql":
        # No JIT: gim's statements run once each over partitioned tables, where compiling
        # their expressions for every partition costs seconds and saves milliseconds. Sorts
        # and hashes of a transformation chunk fit in memory rather than spilling to disk.
        options = "-c jit=off -c work_mem=64MB" + \
            (" -c synchronous_commit=off" if fast_commit else "")
        engine = sa.create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S,
                          "application_name": f"gim ({label})"[:63],
                          "options": options},
        )
    else:
        raise DatabaseUnavailable(f"{label}: unsupported database {parsed.get_backend_name()!r} "
                                  f"in {mask_url(url)} (use sqlite or postgresql)")
    engine.info = {"label": label, "url": mask_url(url)}  # type: ignore[attr-defined]
    return engine


def _decimal_for_sqlite(value: decimal.Decimal) -> int | float:
    # numeric(20) values read from PostgreSQL (ConnIDs) are integers; SQLite has no decimal.
    return int(value) if value == value.to_integral_value() else float(value)


sqlite3.register_adapter(decimal.Decimal, _decimal_for_sqlite)


def _sqlite_engine(parsed: sa.engine.URL, label: str) -> Engine:
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(f"{label}: cannot create the folder of {database}: "
                                      f"{exc.strerror}") from None
    engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock at once: two deferred transactions that
        # both upgrade to writing would fail with "database is locked" regardless of the
        # busy timeout.
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def is_postgres(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


def label_of(bind: Engine | Connection) -> str:
    engine = bind if isinstance(bind, Engine) else bind.engine
    info = getattr(engine, "info", None) or {}
    return f"{info.get('label', 'database')} {info.get('url', mask_url(str(engine.url)))}"


def describe_db_error(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sa.exc.DBAPIError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


# What a failing database raises: SQLAlchemy's wrapped errors, and the drivers' own where
# gim talks to a raw driver connection (PostgreSQL COPY, SQLite executemany).
DB_ERRORS = _driver_errors()


def is_integrity_error(exc: BaseException) -> bool:
    """A constraint violation (duplicate key, NOT NULL), from SQLAlchemy or a raw driver."""
    if isinstance(exc, sa.exc.IntegrityError):
        return True
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.IntegrityError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(orig, psycopg.IntegrityError)


def check_connection(engine: Engine) -> None:
    """Connect once, or raise DatabaseUnavailable naming the database."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.DBAPIError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to {label_of(engine)}: {describe_db_error(exc)}") from None


@contextlib.contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed on success, rolled back on any exception."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE: True})
        with conn.begin():
            yield conn


@contextlib.contextmanager
def read_conn(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        yield conn
