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


# version -> the step that turns schema (version - 1) into `version`, run in one transaction
# and written to be repeatable. Versions without an entry only add objects (tables, fixed
# rows, partitions), which ensure_schema creates.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _v2_history_start_ms,
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
