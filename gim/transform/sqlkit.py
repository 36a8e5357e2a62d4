"""Set-based building blocks of the transformation: temporary tables, surrogate keys for new
dimension members, and replacing the facts of recomputed entities. Everything runs as SQL
inside the caller's transaction; Python never loops over rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gim.db import ops_for, safe_identifier

TEMP_STATISTICS = 20  # statistics target of temporary tables' ANALYZE (300 rows per unit)


def run(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(sa.text(sql), params)


def temp(conn: Connection, name: str, select_sql: str,
         analyze: bool | Sequence[str] = True, **params: Any) -> str:
    """(Re)create temporary table `name` from a SELECT.

    `analyze`: statistics for the planner (True: all columns, a list: those columns only,
    False: none, for tables read once or only scanned)."""
    name = safe_identifier(name)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    run(conn, f"CREATE TEMP TABLE {name} AS {select_sql}", **params)
    if analyze and conn.dialect.name == "postgresql":
        # Temporary tables get no statistics of their own (autovacuum never sees them);
        # without them the planner guesses row counts badly in the joins that follow.
        # Statistics of the join columns alone cost a fraction of those of a wide table.
        columns = "" if analyze is True else \
            " (" + ", ".join(safe_identifier(c) for c in analyze) + ")"
        # A sample of 6 000 rows (rather than 30 000) is enough for the row counts and
        # distinct counts the joins are planned by, and a fraction of the cost on a
        # chunk's larger tables. (Only temporary tables are analyzed in these
        # transactions.)
        conn.exec_driver_sql(f"SET LOCAL default_statistics_target = {TEMP_STATISTICS}")
        conn.exec_driver_sql(f"ANALYZE {name}{columns}")
    return name


def literal(value: str | None) -> str:
    """A text value as an SQL literal (NULL for None)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def literals(values: Sequence[str]) -> str:
    """Text values as the list of an IN (...) (NULL, which matches nothing, when empty)."""
    return ", ".join(literal(v) for v in values) or "NULL"


def drop(conn: Connection, *names: str) -> None:
    for name in names:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {safe_identifier(name)}")


def count(conn: Connection, table: str) -> int:
    return conn.exec_driver_sql(f"SELECT COUNT(*) FROM {safe_identifier(table)}").scalar_one()


def same(a: str, b: str) -> str:
    """NULL-safe equality of two expressions, portable."""
    return f"(({a}) = ({b}) OR (({a}) IS NULL AND ({b}) IS NULL))"


def greatest(a: str, b: str) -> str:
    return f"(CASE WHEN ({a}) >= ({b}) THEN ({a}) ELSE ({b}) END)"


def least(a: str, b: str) -> str:
    return f"(CASE WHEN ({a}) <= ({b}) THEN ({a}) ELSE ({b}) END)"


def lock_shared(conn: Connection) -> None:
    """Transactions that transform different interactions side by side (PostgreSQL) write
    some rows that another may want to write too: new dimension members and the
    aggregation queue. Each takes this lock, held until it commits, before writing such
    rows, and only once it knows it has some to write (looking again after the wait, for
    what the other committed meanwhile); no other lock is ever waited for while holding it,
    so the transactions cannot deadlock."""
    ops_for(conn).transaction_lock(conn, "transform-shared")


def new_members(conn: Connection, name: str, select_sql: str,
                analyze: bool = True) -> tuple[str, int]:
    """Temp table `name` of the rows of a shared table that `select_sql` finds missing
    (new dimension members, placeholders), and how many; when there are some, they are
    looked for again under lock_shared, after what another transaction committed."""
    rows = temp(conn, name, select_sql, analyze=analyze)
    n = count(conn, rows)
    if n:
        lock_shared(conn)
        rows = temp(conn, name, select_sql, analyze=analyze)
        n = count(conn, rows)
    return rows, n


def assign_keys(conn: Connection, rows: str, key: str, target: str, target_key: str,
                natural: Sequence[str], sequence: str, nullable: Sequence[str] = (),
                fresh: str | None = None, shared: bool = False) -> int:
    """Give each row of temp table `rows` the key of the `target` row with the same natural
    columns, or a new key from `sequence`; returns how many keys were new. `fresh`: a column
    of `rows` (0) set to 1 on the rows given a new key (no row of the target, nor any row
    keyed on it, can exist for those).

    `rows` must already have a `key` column (NULL) and the natural columns, under the same
    names as in `target`; the `nullable` ones are compared NULL-safely (which no index
    serves, so only small dimensions have such columns). `shared`: `target` is a dimension
    other transactions may add the same members to (see lock_shared), which the caller
    inserts after this.
    """
    def eq(a: str, b: str, c: str) -> str:
        return same(a, b) if c in nullable else f"{a} = {b}"

    match = " AND ".join(eq(f"t.{c}", f"{rows}.{c}", c) for c in natural)

    def look_up() -> int:
        if nullable:
            run(conn, f"UPDATE {rows} SET {key} = (SELECT t.{target_key} FROM {target} t "
                      f"WHERE {match}) WHERE {key} IS NULL")
        else:  # a join, which the planner can hash, rather than a lookup per row
            run(conn, f"UPDATE {rows} SET {key} = t.{target_key} FROM {target} t "
                      f"WHERE {match} AND {rows}.{key} IS NULL")
        return conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM {rows} WHERE {key} IS NULL").scalar_one()

    new = look_up()
    if new and shared:
        lock_shared(conn)
        new = look_up()
    if new:
        base = ops_for(conn).allocate_keys(conn, sequence, new)
        order = ", ".join(natural)
        numbered = temp(conn, f"{rows}_new",
                        f"SELECT {order}, ROW_NUMBER() OVER (ORDER BY {order}) AS RN "
                        f"FROM {rows} WHERE {key} IS NULL")
        match_n = " AND ".join(eq(f"n.{c}", f"{rows}.{c}", c) for c in natural)
        mark = f", {fresh} = 1" if fresh else ""
        if nullable:
            run(conn, f"UPDATE {rows} SET {key} = {base - 1} + (SELECT n.RN FROM {numbered} n "
                      f"WHERE {match_n}){mark} WHERE {key} IS NULL")
        else:
            run(conn, f"UPDATE {rows} SET {key} = {base - 1} + n.RN{mark} FROM {numbered} n "
                      f"WHERE {match_n} AND {rows}.{key} IS NULL")
        drop(conn, numbered)
    return new


def fit(conn: Connection, target: sa.Table, rows: str) -> int:
    """Cut the text values of temp table `rows` that are longer than the same column of
    `target` allows (PostgreSQL refuses them; an IDB, or a SQLite one above all, may hold
    longer ones, and extraction keeps them whole), so that one long name or address never
    stops the transformation. Returns the rows cut, and logs them as a warning."""
    have = {k.upper() for k in run(conn, f"SELECT * FROM {rows} WHERE 1 = 0").keys()}  # noqa: SIM118
    limits = [(c.name, c.type.length) for c in target.columns
              if c.name in have and isinstance(c.type, sa.String) and c.type.length]
    if not limits:
        return 0
    sets = ", ".join(f"{c} = CASE WHEN LENGTH({c}) > {n} THEN SUBSTR({c}, 1, {n}) ELSE {c} "
                     f"END" for c, n in limits)
    cut = run(conn, f"UPDATE {rows} SET {sets} WHERE " +
              " OR ".join(f"LENGTH({c}) > {n}" for c, n in limits)).rowcount
    if cut:
        logging.getLogger("gim.transform").warning(
            "%d %s rows had values longer than their columns allow (%s); cut to fit", cut,
            target.name, ", ".join(f"{c} {n}" for c, n in limits))
        conn.info[CUT] = conn.info.get(CUT, 0) + cut
    return cut


# The rows cut to fit by the transaction under way (kept with its connection), and the
# job's count of them.
CUT = "gim rows cut"
CUT_COUNT = "rows with a text cut to fit its column"


def take_cut(conn: Connection) -> int:
    """The rows fit() cut on this connection since the last call (reset)."""
    return conn.info.pop(CUT, 0)


def upsert_changed(conn: Connection, target: sa.Table, rows: str, key: Sequence[str],
                   columns: Sequence[str], audit: int) -> int:
    """Insert the rows of temp table `rows` into `target`, or update the target rows whose
    values differ, stamping the audit keys; rows already right are left alone. Returns how
    many rows were inserted or changed."""
    fit(conn, target, rows)
    cols = list(columns)
    insert_cols = cols + ["CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY"]
    diff = " OR ".join(f"NOT {same(f'{target.name}.{c}', f'excluded.{c}')}"
                       for c in cols if c not in key) or "1 = 0"
    before = run(conn, f"SELECT COUNT(*) FROM {rows} r WHERE NOT EXISTS (SELECT 1 FROM "
                       f"{target.name} t WHERE {' AND '.join(f't.{k} = r.{k}' for k in key)}"
                       f") OR EXISTS (SELECT 1 FROM {target.name} t WHERE "
                       f"{' AND '.join(f't.{k} = r.{k}' for k in key)} AND ("
                       + " OR ".join(f"NOT {same(f't.{c}', f'r.{c}')}"
                                     for c in cols if c not in key) + "))").scalar_one() \
        if any(c not in key for c in cols) else 0
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
    run(conn, f"INSERT INTO {target.name} ({', '.join(insert_cols)}) "
              f"SELECT {', '.join(cols)}, {audit}, {audit} FROM {rows} WHERE 1 = 1 "
              f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}, "
              f"UPDATE_AUDIT_KEY = {audit} WHERE {diff}")
    return before


def replace_facts(conn: Connection, target: sa.Table, rows: str, scope: str | None,
                  audit: int) -> int:
    """Replace the facts of the recomputed entities: the target rows matching `scope` (a
    condition on the target's columns, e.g. `INTERACTION_ID IN (SELECT ...)`) become the
    rows of temp table `rows`. A row that existed keeps its CREATE_AUDIT_KEY; every written
    row gets UPDATE_AUDIT_KEY = audit. Returns the number of rows written. `scope` None:
    the entities are new, none of their facts exists; the rows are only inserted."""
    fit(conn, target, rows)
    key = [c.name for c in target.primary_key.columns]
    cols = [c.name for c in target.columns
            if c.name not in ("CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY")]
    if scope is None:
        return run(conn, f"INSERT INTO {target.name} ({', '.join(cols)}, CREATE_AUDIT_KEY, "
                         f"UPDATE_AUDIT_KEY) SELECT {', '.join(cols)}, {audit}, {audit} "
                         f"FROM {rows}").rowcount
    # The creation keys of the rows replaced, kept aside (rather than rewriting the wide
    # staged rows to carry them).
    old = temp(conn, f"{rows}_old", f"SELECT {', '.join(key)}, CREATE_AUDIT_KEY FROM "
                                   f"{target.name} WHERE {scope}", analyze=False)
    run(conn, f"DELETE FROM {target.name} WHERE {scope}")
    match = " AND ".join(f"o.{k} = r.{k}" for k in key)
    n = run(conn, f"INSERT INTO {target.name} ({', '.join(cols)}, CREATE_AUDIT_KEY, "
                  f"UPDATE_AUDIT_KEY) SELECT {', '.join('r.' + c for c in cols)}, "
                  f"COALESCE(o.CREATE_AUDIT_KEY, {audit}), {audit} "
                  f"FROM {rows} r LEFT JOIN {old} o ON {match}").rowcount
    drop(conn, old)
    return n


STAGED_SPANS = "tx_agg_staged"


def stage_spans(conn: Connection, spans_sql: str) -> None:
    """Like queue_spans, but kept in a temporary table of the transaction until
    flush_spans queues them all at once, under lock_shared: so that a transaction holds
    locks on the queue's rows only in the moment before it commits."""
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {STAGED_SPANS} (TENANT_KEY "
                         f"INTEGER, FROM_TS BIGINT, TO_TS BIGINT)")
    run(conn, f"""INSERT INTO {STAGED_SPANS} (TENANT_KEY, FROM_TS, TO_TS)
        SELECT DISTINCT TENANT_KEY, (FROM_TS / 900) * 900, (TO_TS / 900) * 900
        FROM ({spans_sql}) x WHERE x.FROM_TS IS NOT NULL""")


def flush_spans(conn: Connection, audit: int, now: int) -> None:
    """Queue what stage_spans kept (if anything) and forget it."""
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {STAGED_SPANS} (TENANT_KEY "
                         f"INTEGER, FROM_TS BIGINT, TO_TS BIGINT)")
    if conn.exec_driver_sql(f"SELECT COUNT(*) FROM {STAGED_SPANS}").scalar_one():
        lock_shared(conn)
        queue_spans(conn, f"SELECT TENANT_KEY, FROM_TS, TO_TS FROM {STAGED_SPANS}", audit,
                    now)
    drop(conn, STAGED_SPANS)


def queue_spans(conn: Connection, spans_sql: str, audit: int, now: int) -> None:
    """Queue for aggregation, per tenant, every 15-minute interval the spans of `spans_sql`
    (TENANT_KEY, FROM_TS, TO_TS in UTC seconds) overlap; in the caller's transaction."""
    run(conn, f"""
        INSERT INTO CTL_AGG_QUEUE (TENANT_KEY, DATE_TIME_KEY, AUDIT_KEY, QUEUED_TS)
        SELECT DISTINCT s.TENANT_KEY, d.DATE_TIME_KEY, {audit}, {now}
        FROM (SELECT DISTINCT TENANT_KEY, (FROM_TS / 900) * 900 AS FROM_KEY,
                     (TO_TS / 900) * 900 AS TO_KEY
              FROM ({spans_sql}) x WHERE x.FROM_TS IS NOT NULL) s
        JOIN DATE_TIME d ON d.DATE_TIME_KEY >= s.FROM_KEY AND d.DATE_TIME_KEY <= s.TO_KEY
        WHERE 1 = 1
        ON CONFLICT (TENANT_KEY, DATE_TIME_KEY) DO UPDATE SET AUDIT_KEY = excluded.AUDIT_KEY,
            QUEUED_TS = excluded.QUEUED_TS""")
