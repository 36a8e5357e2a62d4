"""Job_MigrateGIM: bring an Info Mart whose schema is older than the code up to date.

A migration step exists for each version whose change is more than additive; additions
(new tables, new fixed rows, partitions) are made by the same idempotent code that
initializes a new Info Mart. A migration killed midway resumes at the step it was in.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex

from gim import __version__
from gim.db import ops_for, write_tx
from gim.errors import MigrationNeeded
from gim.jobs import initialize
from gim.runner import JobContext
from gim.schema.base import index_applies
from gim.schema.control import CTL_ETL_HISTORY, SCHEMA_VERSION
from gim.schema.dims import ATTEMPT_DISPOSITION


def _v2_history_start_ms(conn: Connection) -> None:
    """CTL_ETL_HISTORY.START_TS_MS, filled from START_TS for the runs recorded before."""
    h = CTL_ETL_HISTORY
    ops_for(conn).add_column(conn, h, h.c.START_TS_MS)
    conn.execute(sa.update(h).where(h.c.START_TS_MS.is_(None))
                 .values(START_TS_MS=sa.cast(h.c.START_TS, sa.BigInteger) * 1000))
    index = next(i for i in h.indexes if i.name == "ix_ctl_etl_history_job_ms")
    conn.execute(CreateIndex(index, if_not_exists=True))
    # Schema 1 gave the by-agent / by-system descriptors to the unknown cause; the rows of
    # the cause that has them are written by ensure_schema with the other fixed rows.
    conn.execute(sa.delete(ATTEMPT_DISPOSITION).where(
        ATTEMPT_DISPOSITION.c.ATTEMPT_DISPOSITION_KEY.in_((256, 512))))


def _v3_gidb_by_dap(conn: Connection) -> None:
    """Schema 3 keys the GIDB staging tables by IDB (DAP_KEY) as well as by source, and
    numbers the data sources differently. Staged rows of schema 2 cannot be told apart by
    IDB after the fact, and the facts made of them carry the old source numbers; rather
    than guess, the migration stops and names the way out (a new Info Mart, extracted
    again from the IDBs). An Info Mart that never staged anything has nothing to carry."""
    inspector = sa.inspect(conn)
    # Names are unquoted: PostgreSQL reports them in lower case.
    tables = {n.upper(): n for n in inspector.get_table_names()}
    if "GIDB_G_CALL_V" not in tables:
        return
    columns = inspector.get_columns(tables["GIDB_G_CALL_V"])
    if "DAP_KEY" in {c["name"].upper() for c in columns}:
        return  # made by this code already
    gidb = [u for u in sorted(tables) if u.startswith("GIDB_")]
    staged = next((u for u in gidb if conn.execute(
        sa.text(f"SELECT 1 FROM {u} LIMIT 1")).first() is not None), None)
    if staged is not None:
        raise MigrationNeeded(
            f"{staged}: staging tables of schema 2 (no DAP_KEY) cannot be migrated to "
            "schema 3; initialize a new Info Mart and extract the IDBs into it again")
    for upper in gidb:  # all empty: ensure_schema makes them anew
        conn.execute(sa.text(f"DROP TABLE {upper}"))


def _v4_voice_merge(conn: Connection) -> None:
    """Schema 4 merges voice calls before they enter GIDB_G_CALL_V: the calls staged
    before were each their own interaction's (their ICON root), as the transformation took
    them; the IS-Link staging is keyed by link side rather than by call."""
    from gim.schema.gidb import COPY_BY_TARGET

    calls = COPY_BY_TARGET["GIDB_G_CALL_V"].target
    links = COPY_BY_TARGET["GIDB_G_IS_LINK_V"].target
    ops = ops_for(conn)
    if not ops.table_exists(conn, calls.name):
        return  # ensure_schema makes the tables as they are now
    for c in ("MERGE_SOURCE_KEY", "MERGE_ROOTIRID", "MERGE_STATE"):
        ops.add_column(conn, calls, calls.c[c])
    conn.execute(sa.update(calls).where(calls.c.MERGE_ROOTIRID.is_(None)).values(
        MERGE_SOURCE_KEY=calls.c.DATA_SOURCE_KEY, MERGE_ROOTIRID=calls.c.ROOTIRID,
        MERGE_STATE=0))
    have = {n.lower() for n in ops.index_names(conn)}
    dialect = conn.dialect.name
    for index in calls.indexes:
        if index.name not in have and index_applies(index, dialect):
            conn.execute(CreateIndex(index, if_not_exists=True))
    natural = f"ix_{links.name.lower()}_nat"
    if ops.table_exists(conn, links.name):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {natural}")
        for index in links.indexes:
            if not index_applies(index, dialect):
                continue
            if index.name == natural or index.name not in have:
                conn.execute(CreateIndex(index, if_not_exists=True))


def _v5_lookup_indexes(conn: Connection) -> None:
    """Schema 5 looks GIDB and merge rows up through hash indexes on PostgreSQL rather
    than B-trees led by the data source (SQLite keeps those): each is made anew under its
    name."""
    from gim.schema.gidb import COPIES

    ops = ops_for(conn)
    for copy in COPIES:
        for table in (copy.target, copy.landing):
            if table is None or not ops.table_exists(conn, table.name):
                continue
            for index in table.indexes:
                if index.info.get("lookup") and index_applies(index, conn.dialect.name):
                    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
                    conn.execute(CreateIndex(index))


# version -> the step that turns schema (version - 1) into `version`, run in one transaction
# and written to be repeatable. Versions without an entry only add objects (tables, fixed
# rows, partitions), which ensure_schema creates.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _v2_history_start_ms,
    3: _v3_gidb_by_dap,
    4: _v4_voice_merge,
    5: _v5_lookup_indexes,
}


def run(ctx: JobContext) -> str:
    before = initialize.installed_version(ctx.engine)
    after = migrate_schema(ctx)
    if before == after:
        return f"schema already at version {after}; nothing to migrate"
    return f"schema migrated from version {before} to {after}"


def migrate_schema(ctx: JobContext) -> int:
    version = initialize.installed_version(ctx.engine)
    if version is None:  # never initialized: initialization is the whole migration
        initialize.initialize(ctx)
        return SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise MigrationNeeded(f"the Info Mart schema is version {version}, newer than this "
                              f"gim ({__version__}, schema {SCHEMA_VERSION}); upgrade gim")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        step = MIGRATIONS.get(target)
        if step is not None:
            with ctx.progress.task(f"migrating to schema version {target}"):
                with write_tx(ctx.engine) as conn:
                    step(conn)
            ctx.count("migration steps")
        if target < SCHEMA_VERSION:
            initialize.record_version(ctx.engine, target, ctx.job_id,
                                      f"migrated from version {version} by gim migrate")
    # The current version is recorded only once the additive part is complete too; a run
    # killed before that repeats the last step, so steps are written to be repeatable.
    initialize.ensure_schema(ctx)
    initialize.record_version(ctx.engine, SCHEMA_VERSION, ctx.job_id,
                              f"migrated from version {version} by gim migrate")
    return SCHEMA_VERSION
