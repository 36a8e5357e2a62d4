"""The one seam where PostgreSQL and SQLite differ: bulk loads, upserts, keys, partitions,
statistics and advisory locks. Jobs call `ops_for(conn)` and never test the dialect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gim.errors import ConfigError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def safe_identifier(name: str, what: str = "identifier") -> str:
    """Return `name` if it is a plain SQL identifier; raise ConfigError naming it otherwise.

    Anything that reaches SQL text from configuration (user-data column names, table names)
    goes through here first.
    """
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ConfigError(f"{what} {name!r} is not a valid SQL identifier "
                          "(letters, digits and '_', at most 63 characters)")
    return name


@dataclass(frozen=True)
class Partition:
    name: str
    lower: int | None  # None for the DEFAULT partition
    upper: int | None


def _sqlite_datetime(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


def _convert_row(row: Sequence[Any], converters: list) -> list[Any]:
    out = list(row)
    for i, proc, memo in converters:
        value = out[i]
        if value is None:
            continue
        try:
            out[i] = memo[value]
        except KeyError:
            if len(memo) > 100_000:
                memo.clear()
            out[i] = memo[value] = proc(value)
        except TypeError:  # unhashable
            out[i] = proc(value)
    return out


def batched(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


class Ops:
    """Dialect operations; see SqliteOps and PostgresOps."""

    name = "generic"
    batch_size = 5000

    # -- introspection --------------------------------------------------------------------
    def table_exists(self, conn: Connection, name: str) -> bool:
        return sa.inspect(conn).has_table(self._fold(name))

    def table_names(self, conn: Connection) -> set[str]:
        return {n.upper() for n in sa.inspect(conn).get_table_names()}

    def column_names(self, conn: Connection, table: str) -> set[str]:
        """The (upper-case) columns the table has in the database, which may be fewer than
        its metadata declares while an older Info Mart awaits `gim migrate`."""
        return {c["name"].upper() for c in sa.inspect(conn).get_columns(self._fold(table))}

    def add_column(self, conn: Connection, table: sa.Table, column: sa.Column) -> bool:
        """ALTER TABLE ... ADD COLUMN unless the column is there; True when added."""
        if column.name.upper() in self.column_names(conn, table.name):
            return False
        ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {safe_identifier(table.name)} ADD COLUMN {ddl}")
        return True

    def _fold(self, name: str) -> str:
        return name

    def fold(self, name: str) -> str:
        """The name the database stores an (unquoted) table name under."""
        return self._fold(name)

    def clock(self, conn: Connection) -> int:
        """The database's current time, UTC epoch seconds."""
        raise NotImplementedError

    def index_names(self, conn: Connection) -> set[str]:
        """The names of the indexes of the current schema, with one query."""
        raise NotImplementedError

    def null_safe_equal(self, a: str, b: str) -> str:
        """A condition true when two SQL expressions are equal or both NULL."""
        return f"{a} IS NOT DISTINCT FROM {b}"

    def has_control_chars(self, expr: str) -> str:
        """A condition true when the text `expr` holds a control character."""
        raise NotImplementedError

    @staticmethod
    def temp_name(table: sa.Table) -> str:
        return safe_identifier(f"tmp_{table.name.lower()}"[:63])

    def temp_copy(self, conn: Connection, table: sa.Table) -> str:
        """An empty temporary table shaped like `table`, private to this connection."""
        raise NotImplementedError

    def upsert_from(self, conn: Connection, table: sa.Table, source: str,
                    columns: Sequence[str], key: Sequence[str],
                    update: Sequence[str]) -> None:
        """INSERT INTO table SELECT ... FROM source, replacing rows whose key exists (only
        the `update` columns change)."""
        cols = ", ".join(safe_identifier(c) for c in columns)
        action = (f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)}"
                  if update else "DO NOTHING")
        conn.exec_driver_sql(
            f"INSERT INTO {safe_identifier(table.name)} ({cols}) SELECT {cols} FROM "
            f"{safe_identifier(source)} WHERE 1 = 1 ON CONFLICT "
            f"({', '.join(safe_identifier(k) for k in key)}) {action}")

    # -- writing --------------------------------------------------------------------------
    def bulk_insert(self, conn: Connection, table: sa.Table, rows: Iterable[Sequence[Any]],
                    columns: Sequence[str]) -> int:
        """Insert tuples (in `columns` order); returns the number of rows."""
        stmt = table.insert()
        count = 0
        for batch in batched(rows, self.batch_size):
            conn.execute(stmt, [dict(zip(columns, row, strict=True)) for row in batch])
            count += len(batch)
        return count

    def upsert(self, conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]],
               key: Sequence[str], update: Sequence[str] | None = None) -> None:
        """INSERT ... ON CONFLICT (key) DO UPDATE the `update` columns (all non-key columns
        when None; DO NOTHING when empty)."""
        if not rows:
            return
        stmt = self._insert(table)
        cols = update if update is not None else [c for c in rows[0] if c not in key]
        if cols:
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c[k] for k in key],
                set_={c: getattr(stmt.excluded, c) for c in cols},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[table.c[k] for k in key])
        for batch in batched(rows, self.batch_size):
            conn.execute(stmt, batch)

    def _insert(self, table: sa.Table):  # noqa: ANN202
        raise NotImplementedError

    def insert(self, table: sa.Table):  # noqa: ANN201
        """The dialect's INSERT, which has on_conflict_do_update / _do_nothing."""
        return self._insert(table)

    def bulk_upsert(self, conn: Connection, table: sa.Table, rows: Iterable[Sequence[Any]],
                    columns: Sequence[str], key: Sequence[str]) -> int:
        """Insert tuples, replacing the rows whose `key` already exists; returns the count."""
        raise NotImplementedError

    # -- keys -----------------------------------------------------------------------------
    def allocate_keys(self, conn: Connection, sequence: str, count: int = 1) -> int:
        """Reserve `count` consecutive keys of `sequence`; return the first."""
        raise NotImplementedError

    # -- partitions (PostgreSQL only; SQLite tables are never partitioned) -----------------
    def is_partitioned(self, conn: Connection, table: sa.Table) -> bool:
        return False

    def list_partitions(self, conn: Connection, table: sa.Table) -> list[Partition]:
        return []

    def ensure_partitions(self, conn: Connection, table: sa.Table, start: int, end: int,
                          interval: int) -> list[str]:
        return []

    def drop_partition(self, conn: Connection, table: sa.Table, partition: str) -> None:
        raise NotImplementedError("only PostgreSQL tables are partitioned")

    # -- maintenance ----------------------------------------------------------------------
    def analyze(self, conn: Connection, tables: Iterable[sa.Table],
                sample: int | None = None) -> None:
        """Refresh the planner statistics of `tables`; `sample` (PostgreSQL) lowers the
        statistics target for this once (the sample is 300 rows per unit of target)."""
        raise NotImplementedError

    # -- locks ----------------------------------------------------------------------------
    def try_advisory_lock(self, conn: Connection, name: str) -> bool:
        return True

    def advisory_unlock(self, conn: Connection, name: str) -> None:
        return None

    def transaction_lock(self, conn: Connection, name: str) -> None:
        """Wait for, then hold until the transaction ends, the lock of `name` (writers that
        run side by side serialize there; SQLite has one writer anyway)."""
        return None


class SqliteOps(Ops):
    name = "sqlite"

    def _insert(self, table: sa.Table):  # noqa: ANN202
        return sqlite.insert(table)

    def clock(self, conn: Connection) -> int:
        return int(conn.exec_driver_sql("SELECT CAST(strftime('%s', 'now') AS INTEGER)")
                   .scalar_one())

    def index_names(self, conn: Connection) -> set[str]:
        return set(conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index'").scalars())

    def null_safe_equal(self, a: str, b: str) -> str:
        return f"{a} IS {b}"  # SQLite's IS is null-safe equality (any version)

    def has_control_chars(self, expr: str) -> str:
        chars = " OR ".join(f"INSTR({expr}, CHAR({i})) > 0" for i in range(1, 32)
                            if i not in (9, 10, 13))
        return f"({chars})"

    def temp_copy(self, conn: Connection, table: sa.Table) -> str:
        name = self.temp_name(table)
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS "
                             f"SELECT * FROM {safe_identifier(table.name)} WHERE 0")
        conn.exec_driver_sql(f"DELETE FROM {name}")
        return name

    def bulk_insert(self, conn: Connection, table: sa.Table, rows: Iterable[Sequence[Any]],
                    columns: Sequence[str]) -> int:
        """Batched executemany on the driver cursor (several times faster than building a
        dict per row), with values converted by the columns' own SQLAlchemy types so that
        they read back exactly as rows written through SQLAlchemy do."""
        return self._executemany(conn, table, rows, columns, "")

    def _executemany(self, conn: Connection, table: sa.Table, rows: Iterable[Sequence[Any]],
                     columns: Sequence[str], suffix: str) -> int:
        dialect = conn.dialect
        # Only the columns whose type converts values (dates, decimals) are touched; their
        # conversions are memoized, since the same instants recur across many rows.
        converters = []
        for i, c in enumerate(columns):
            impl = table.c[c].type.dialect_impl(dialect)
            proc = impl.bind_processor(dialect)
            if proc is None:
                continue
            if type(impl) is sqlite.DATETIME and impl._storage_format == \
                    sqlite.DATETIME._storage_format:
                # The same text SQLAlchemy's default storage format produces, in C.
                proc = _sqlite_datetime
            converters.append((i, proc, {}))
        sql = (f"INSERT INTO {safe_identifier(table.name)} "
               f"({', '.join(safe_identifier(c) for c in columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)}){suffix}")
        cursor = conn.connection.driver_connection.cursor()
        count = 0
        try:
            for batch in batched(rows, self.batch_size):
                if converters:
                    batch = [_convert_row(row, converters) for row in batch]
                cursor.executemany(sql, batch)
                count += len(batch)
        finally:
            cursor.close()
        return count

    def bulk_upsert(self, conn: Connection, table: sa.Table, rows: Iterable[Sequence[Any]],
                    columns: Sequence[str], key: Sequence[str]) -> int:
        others = [c for c in columns if c not in key]
        action = (f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in others)}"
                  if others else "DO NOTHING")
        suffix = f" ON CONFLICT ({', '.join(safe_identifier(k) for k in key)}) {action}"
        return self._executemany(conn, table, rows, columns, suffix)

    def allocate_keys(self, conn: Connection, sequence: str, count: int = 1) -> int:
        # SQLite serializes writers, so a counter row updated inside the caller's write
        # transaction hands out blocks no other transaction can also get.
        from gim.schema.control import CTL_KEY_SEQUENCE as seq

        conn.execute(sqlite.insert(seq).values(SEQUENCE_NAME=sequence, LAST_VALUE=0)
                     .on_conflict_do_nothing(index_elements=[seq.c.SEQUENCE_NAME]))
        last = conn.execute(
            sa.update(seq).where(seq.c.SEQUENCE_NAME == sequence)
            .values(LAST_VALUE=seq.c.LAST_VALUE + count)
            .returning(seq.c.LAST_VALUE)).scalar_one()
        return last - count + 1

    def analyze(self, conn: Connection, tables: Iterable[sa.Table],
                sample: int | None = None) -> None:
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {safe_identifier(table.name)}")


class PostgresOps(Ops):
    name = "postgresql"

    def __init__(self) -> None:
        # (database, sequence) pairs known to exist: sequences are never dropped.
        self._sequences: set[tuple[str, str]] = set()

    def _fold(self, name: str) -> str:
        # Tables are created unquoted, so PostgreSQL stores their names in lower case.
        return name.lower()

    def _insert(self, table: sa.Table):  # noqa: ANN202
        return postgresql.insert(table)

    def clock(self, conn: Connection) -> int:
        return int(conn.exec_driver_sql(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT)").scalar_one())

    def index_names(self, conn: Connection) -> set[str]:
        return set(conn.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()").scalars())

    def has_control_chars(self, expr: str) -> str:
        return f"({expr} ~ '[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f]')"

    def temp_copy(self, conn: Connection, table: sa.Table) -> str:
        name = self.temp_name(table)
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {name} "
                             f"(LIKE {self._fold(table.name)} INCLUDING DEFAULTS)")
        conn.exec_driver_sql(f"TRUNCATE {name}")
        return name

    def bulk_insert(self, conn: Connection, table: sa.Table, rows: Iterable[Sequence[Any]],
                    columns: Sequence[str]) -> int:
        """COPY ... FROM STDIN through psycopg 3, in the caller's transaction."""
        cols = ", ".join(safe_identifier(c) for c in columns)
        sql = f"COPY {safe_identifier(table.name)} ({cols}) FROM STDIN"
        count = 0
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def bulk_upsert(self, conn: Connection, table: sa.Table, rows: Iterable[Sequence[Any]],
                    columns: Sequence[str], key: Sequence[str]) -> int:
        """COPY into a temporary table, then one INSERT ... ON CONFLICT DO UPDATE."""
        name = safe_identifier(self._fold(table.name))
        temp = self.temp_name(table)
        cols = ", ".join(safe_identifier(c) for c in columns)
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {temp} "
                             f"(LIKE {name} INCLUDING DEFAULTS)")
        conn.exec_driver_sql(f"TRUNCATE {temp}")
        raw = conn.connection.driver_connection
        count = 0
        with raw.cursor() as cur, cur.copy(f"COPY {temp} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        others = [c for c in columns if c not in key]
        action = (f"DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in others)}"
                  if others else "DO NOTHING")
        conn.exec_driver_sql(
            f"INSERT INTO {name} ({cols}) SELECT {cols} FROM {temp} "
            f"ON CONFLICT ({', '.join(safe_identifier(k) for k in key)}) {action}")
        conn.exec_driver_sql(f"TRUNCATE {temp}")
        return count

    def allocate_keys(self, conn: Connection, sequence: str, count: int = 1) -> int:
        name = self.sequence_name(sequence)
        known = (str(conn.engine.url), name)
        if known not in self._sequences:
            _create_sequence(conn, name)
            self._sequences.add(known)
        if count == 1:
            return conn.exec_driver_sql(f"SELECT nextval('{name}')").scalar_one()
        # A session advisory lock (released at once, since setval does not roll back) makes
        # the block consecutive even with other sessions drawing from the same sequence.
        lock = _lock_id(f"seq:{name}")
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({lock})")
        try:
            last = conn.exec_driver_sql(
                f"SELECT setval('{name}', nextval('{name}') + {int(count) - 1})").scalar_one()
        except BaseException:
            # The transaction is aborted, so the unlock could not run in it, and a session
            # lock outlives a rollback: closing the connection releases it.
            conn.invalidate()
            raise
        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({lock})")
        return last - count + 1

    @staticmethod
    def sequence_name(sequence: str) -> str:
        return safe_identifier(f"gim_seq_{sequence}".lower())

    # -- partitions -----------------------------------------------------------------------
    def is_partitioned(self, conn: Connection, table: sa.Table) -> bool:
        return bool(conn.execute(sa.text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = :t AND c.relnamespace = to_regnamespace(current_schema())"),
            {"t": self._fold(table.name)}).first())

    def list_partitions(self, conn: Connection, table: sa.Table) -> list[Partition]:
        rows = conn.execute(sa.text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :t AND p.relnamespace = to_regnamespace(current_schema()) "
            "ORDER BY c.relname"), {"t": self._fold(table.name)}).all()
        out = []
        for name, bound in rows:
            m = re.search(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)", bound or "")
            out.append(Partition(name, int(m.group(1)), int(m.group(2))) if m
                       else Partition(name, None, None))
        return sorted(out, key=lambda p: (p.lower is None, p.lower or 0))

    def ensure_partitions(self, conn: Connection, table: sa.Table, start: int, end: int,
                          interval: int) -> list[str]:
        """Create the range partitions covering [start, end) on an `interval` grid, and the
        DEFAULT partition that catches rows outside every range. Returns the names created.

        Rows already sitting in the DEFAULT partition for a new range are moved into it, so
        that a late row is never lost and a partition can always be created.
        """
        column = table.info["partition_by"]
        existing = self.list_partitions(conn, table)
        have = {(p.lower, p.upper) for p in existing}
        parent = self._fold(table.name)
        created: list[str] = []
        default = f"{parent}_pdefault"
        if not any(p.lower is None for p in existing):
            conn.exec_driver_sql(f"CREATE TABLE {default} PARTITION OF {parent} DEFAULT")
            created.append(default)
        lo = (start // interval) * interval
        while lo < end:
            hi = lo + interval
            if (lo, hi) not in have and not _overlaps(existing, lo, hi):
                name = partition_name(parent, lo, interval)
                moved = conn.exec_driver_sql(
                    f"SELECT 1 FROM {default} WHERE {column} >= {lo} AND {column} < {hi} "
                    "LIMIT 1").first()
                if moved:
                    conn.exec_driver_sql(
                        f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS "
                        "INCLUDING CONSTRAINTS)")
                    conn.exec_driver_sql(
                        f"INSERT INTO {name} SELECT * FROM {default} "
                        f"WHERE {column} >= {lo} AND {column} < {hi}")
                    conn.exec_driver_sql(
                        f"DELETE FROM {default} WHERE {column} >= {lo} AND {column} < {hi}")
                    conn.exec_driver_sql(
                        f"ALTER TABLE {parent} ATTACH PARTITION {name} "
                        f"FOR VALUES FROM ({lo}) TO ({hi})")
                else:
                    conn.exec_driver_sql(
                        f"CREATE TABLE {name} PARTITION OF {parent} "
                        f"FOR VALUES FROM ({lo}) TO ({hi})")
                created.append(name)
            lo = hi
        return created

    def drop_partition(self, conn: Connection, table: sa.Table, partition: str) -> None:
        names = {p.name for p in self.list_partitions(conn, table)}
        if partition not in names:
            raise ValueError(f"{partition} is not a partition of {table.name}")
        conn.exec_driver_sql(f"DROP TABLE {safe_identifier(partition)}")

    # -- maintenance ----------------------------------------------------------------------
    def analyze(self, conn: Connection, tables: Iterable[sa.Table],
                sample: int | None = None) -> None:
        if sample is not None:
            conn.exec_driver_sql(f"SET LOCAL default_statistics_target = {int(sample)}")
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {safe_identifier(self._fold(table.name))}")

    # -- locks ----------------------------------------------------------------------------
    def try_advisory_lock(self, conn: Connection, name: str) -> bool:
        return bool(conn.exec_driver_sql(
            f"SELECT pg_try_advisory_lock({_lock_id(name)})").scalar_one())

    def advisory_unlock(self, conn: Connection, name: str) -> None:
        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_lock_id(name)})")

    def transaction_lock(self, conn: Connection, name: str) -> None:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_lock_id(f'xact:{name}')})")

    def advisory_lock_held(self, conn: Connection, name: str) -> bool:
        """True when some session holds the advisory lock of `name` on this database
        (advisory locks are per database; pg_locks lists the whole server's)."""
        key = _lock_id(name)
        hi, lo = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
        return bool(conn.execute(sa.text(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"),
            {"hi": hi, "lo": lo}).first())


def _overlaps(existing: list[Partition], lo: int, hi: int) -> bool:
    return any(p.lower is not None and p.lower < hi and lo < p.upper for p in existing)


def partition_name(parent: str, lower: int, interval: int) -> str:
    """<table>_pYYYYMMDD (UTC date of the lower bound), with _HHMM when not on a day."""
    when = dt.datetime.fromtimestamp(lower, dt.UTC)
    suffix = when.strftime("%Y%m%d") if interval % 86400 == 0 else when.strftime("%Y%m%d_%H%M")
    return safe_identifier(f"{parent.lower()}_p{suffix}")


def _lock_id(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    digest = hashlib.blake2b(f"gim:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_SQLITE = SqliteOps()
_POSTGRES = PostgresOps()


def _create_sequence(conn: Connection, name: str) -> None:
    """Create sequence `name` if it is missing, committed at once by a connection of its
    own: made in the caller's transaction, it would not exist for other transactions (of
    the same job, side by side) until that one commits, nor at all after a rollback, while
    this process remembers it as made."""
    with conn.engine.connect() as side:
        side = side.execution_options(isolation_level="AUTOCOMMIT")
        try:
            side.exec_driver_sql(f"CREATE SEQUENCE IF NOT EXISTS {name}")
        except sa.exc.DBAPIError:
            # Two sessions creating it at the same moment: one of them fails (on the
            # catalog's unique index) once the other's is there.
            if side.exec_driver_sql(f"SELECT to_regclass('{name}')").scalar() is None:
                raise


def ops_for(bind: Connection | sa.Engine) -> Ops:
    if bind.dialect.name == "postgresql":
        return _POSTGRES
    if bind.dialect.name == "sqlite":
        return _SQLITE
    raise ValueError(f"unsupported dialect {bind.dialect.name}")

