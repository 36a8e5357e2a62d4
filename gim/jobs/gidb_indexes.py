"""GIDB indexes put off during a first load, and made again wherever they are missing.

A GIDB table that holds no row at all when its extraction begins (the first load of a new
Info Mart, or of a table a new role brings), and that the IDB's statistics say is big
(`extract-first-load-index-rows`), is loaded without its secondary indexes, which are built
once its windows are all loaded: adding an entry per row to each index while
loading costs about twice what building the index from the loaded rows does. Kept all the
way through are the indexes the load itself reads: the primary key (a window's rows
replace the versions loaded before, and a conflict on it sends a window to the replacing
path) and, for an HA set, the natural key and audit key by which a row replaces its
partner's version.

A job killed between the two leaves the table without those indexes, and the windows
committed meanwhile stay committed; every extraction (for its role's tables) and every
transformation (for the GIDB tables it reads) first makes whatever GIDB index is missing,
so no later job runs without them.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex

from gim.db import ops_for, write_tx
from gim.runner import JobContext
from gim.schema.base import index_applies
from gim.schema.gidb import COPIES, Copy


def gidb_tables(roles: Iterable[str] | None = None) -> list[sa.Table]:
    """The GIDB tables and merge landing tables (of those roles' copies, if named)."""
    wanted = None if roles is None else set(roles)
    return [t for c in COPIES if wanted is None or c.role in wanted
            for t in (c.target, c.landing) if t is not None]


def _indexes(table: sa.Table, dialect: str) -> list[sa.Index]:
    return sorted((i for i in table.indexes if index_applies(i, dialect)),
                  key=lambda i: i.name)


def ensure(conn: Connection, tables: Iterable[sa.Table]) -> int:
    """Create the indexes of `tables` that are missing; returns how many were."""
    ops = ops_for(conn)
    have = {n.lower() for n in ops.index_names(conn)}
    made = 0
    for table in tables:
        for index in _indexes(table, conn.dialect.name):
            if index.name.lower() not in have:
                _build(conn, index)
                made += 1
    return made


def ensure_job(ctx: JobContext, tables: Iterable[sa.Table]) -> None:
    """ensure() in a transaction of its own, counted in the job's report."""
    with write_tx(ctx.engine) as conn:
        made = ensure(conn, tables)
    if made:
        ctx.count("GIDB indexes made again", made)


def _build(conn: Connection, index: sa.Index) -> None:
    if conn.dialect.name == "postgresql":
        # Sorting the entries in memory rather than on disk; for this transaction only.
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '128MB'")
    conn.execute(CreateIndex(index, if_not_exists=True))


def defer_for_first_load(ctx: JobContext, copy: Copy, ha: bool) -> list[sa.Index]:
    """If the table `copy` loads into is empty, drop its secondary indexes (those the load
    does not read) and return them; else nothing is dropped."""
    table = copy.loads_into
    with write_tx(ctx.engine) as conn:
        if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
            return []
        keep = {f"ix_{table.name.lower()}_nat", f"ix_{table.name.lower()}_upd"} if ha else set()
        dropped = [i for i in _indexes(table, conn.dialect.name)
                   if i.name.lower() not in keep]
        for index in dropped:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    return dropped


def rebuild(ctx: JobContext, indexes: list[sa.Index]) -> None:
    """Build the indexes defer_for_first_load dropped, in one transaction."""
    if not indexes:
        return
    with write_tx(ctx.engine) as conn:
        for index in indexes:
            _build(conn, index)
    ctx.count("GIDB tables indexed after their first load", 1)
