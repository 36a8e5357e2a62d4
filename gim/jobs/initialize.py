"""Job_InitializeGIM: create the Info Mart schema, fill the fixed dimensions and the calendar,
create the first partitions, and record the schema version.

Every step is idempotent and commits on its own, and the version is recorded last: a run
killed anywhere leaves an Info Mart that the next run (of any job) completes.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gim import __version__
from gim.calendar import ACTIVE_END_KEY, INTERVAL, WeekRule, calendar_rows, day_start_key
from gim.config import Config
from gim.db import ops_for, write_tx
from gim.errors import ConfigError
from gim.runner import JobContext
from gim.schema import metadata, partitioned_tables, seed, tables_in
from gim.schema.control import (
    CTL_INFOMART_SETTINGS,
    CTL_SCHEMA_INFO,
    SCHEMA_VERSION,
)
from gim.schema.dims import DATE_TIME, FIXED_DIMENSIONS

CALENDAR_BATCH = 5000

# Settings that shape the calendar; fixed at initialization (the product warns that changing
# them afterwards corrupts the calendar's consistency).
_CALENDAR_SETTINGS = ("date-time-tz", "first-day-of-week", "simple-week-numbering",
                      "minimal-days-in-first-week")


def run(ctx: JobContext) -> str:
    """`gim init`."""
    version = installed_version(ctx.engine)
    initialize(ctx)
    prepare_idbs(ctx)
    if version is None:
        return f"Info Mart initialized at schema version {SCHEMA_VERSION}"
    return f"Info Mart already at schema version {version}; nothing was missing" if not any(
        ctx.counts.values()) else f"Info Mart at schema version {version}; completed what " \
                                  "was missing"


def prepare_idbs(ctx: JobContext) -> None:
    """Create on every configured IDB the indexes extraction needs (an IDB out of reach is
    reported, not fatal: extraction creates them too)."""
    from gim.db import make_engine
    from gim.db.engine import check_connection
    from gim.errors import DatabaseUnavailable
    from gim.jobs.extract import Idb, ensure_indexes

    for dap in ctx.config.daps:
        engine = make_engine(dap.url, label=f"DAP {dap.name}")
        try:
            check_connection(engine)
            ensure_indexes(ctx, Idb(dap=dap, engine=engine))
        except DatabaseUnavailable as exc:
            ctx.note(f"{exc.message}; its indexes will be created by gim extract")
        finally:
            engine.dispose()


def initialize(ctx: JobContext) -> None:
    """Bring the Info Mart to a complete, current schema; write only what is missing."""
    ensure_schema(ctx)
    record_version(ctx.engine, SCHEMA_VERSION, ctx.job_id, "initialized by gim init")


def ensure_schema(ctx: JobContext) -> None:
    """Everything but the version row: tables, settings, partitions, fixed rows, calendar."""
    engine = ctx.engine
    with ctx.progress.task("creating tables"):
        with write_tx(engine) as conn:
            created = _create_missing_tables(conn)
        ctx.count("tables created", created)
    start_day = _settle_settings(ctx)
    ensure_partitions(ctx, start_day)
    write_fixed_dimensions(ctx)
    seed_user_data_mapping(ctx)
    fill_calendar(ctx, start_day, _calendar_end_day(ctx.config))


# --------------------------------------------------------------------------------------------
# Schema state


def installed_version(engine: Engine) -> int | None:
    """The Info Mart's schema version, or None when it was never (completely) initialized."""
    with engine.connect() as conn:
        if not ops_for(conn).table_exists(conn, CTL_SCHEMA_INFO.name):
            return None
        return conn.execute(sa.select(sa.func.max(CTL_SCHEMA_INFO.c.SCHEMA_VERSION))).scalar()


def create_control_tables(engine: Engine) -> None:
    """The control tables alone, so that a job can record its run before it initializes."""
    with write_tx(engine) as conn:
        _create_missing_tables(conn, tables_in("control"))


def _create_missing_tables(conn: Connection, tables: list[sa.Table] | None = None) -> int:
    # Existence is checked by our own (case-folding) lookup: SQLAlchemy's checkfirst looks
    # for the upper-case name, which PostgreSQL stores in lower case.
    ops = ops_for(conn)
    existing = ops.table_names(conn)
    missing = [t for t in (tables or metadata.sorted_tables) if t.name not in existing]
    metadata.create_all(conn, tables=missing, checkfirst=False)
    for table in missing:
        if table.info.get("partition_by"):
            ops.ensure_partitions(conn, table, 0, 0, 1)  # its DEFAULT partition
    return len(missing)


def record_version(engine: Engine, version: int, job_id: str, description: str) -> None:
    with write_tx(engine) as conn:
        exists = conn.execute(sa.select(CTL_SCHEMA_INFO.c.SCHEMA_VERSION).where(
            CTL_SCHEMA_INFO.c.SCHEMA_VERSION == version)).first()
        if not exists:
            conn.execute(CTL_SCHEMA_INFO.insert().values(
                SCHEMA_VERSION=version, GIM_VERSION=__version__, APPLIED_TS=int(time.time()),
                JOB_ID=job_id, DESCRIPTION=description))


# --------------------------------------------------------------------------------------------
# Settings fixed at initialization


def calendar_settings(config: Config) -> dict[str, str]:
    return {name: str(config.get("date-time", name)) for name in _CALENDAR_SETTINGS}


def check_settings(conn: Connection, config: Config) -> dict[str, str]:
    """Refuse a calendar setting that differs from the one the Info Mart was built with."""
    stored = dict(conn.execute(sa.select(CTL_INFOMART_SETTINGS.c.SETTING_NAME,
                                         CTL_INFOMART_SETTINGS.c.SETTING_VALUE)).all())
    for name, value in calendar_settings(config).items():
        if name in stored and stored[name] != value:
            raise ConfigError(
                f"{config.describe_source()}: [date-time] {name}: {value!r} differs from "
                f"{stored[name]!r}, which this Info Mart's calendar was built with; it cannot "
                "change after initialization")
    return stored


def _settle_settings(ctx: JobContext) -> dt.date:
    """Record the calendar settings and the ETL start date on first use; return the start."""
    config = ctx.config
    now = int(time.time())
    with write_tx(ctx.engine) as conn:
        stored = check_settings(conn, config)
        wanted = calendar_settings(config)
        configured = config.get("gim-etl", "etl-start-date")
        if configured:
            start = configured
        elif "etl-start-date" in stored:
            start = stored["etl-start-date"]
        else:
            start = dt.datetime.now(dt.UTC).date().isoformat()
        wanted["etl-start-date"] = start
        for name, value in wanted.items():
            if stored.get(name) == value:
                continue
            row = {"SETTING_NAME": name, "SETTING_VALUE": value, "UPDATED_TS": now}
            ops_for(conn).upsert(conn, CTL_INFOMART_SETTINGS, [row], key=["SETTING_NAME"])
    return dt.date.fromisoformat(start)


# --------------------------------------------------------------------------------------------
# Partitions (PostgreSQL)


def partition_interval(config: Config, table: sa.Table) -> int:
    return config.get("gim-etl", "partitioning-interval-size-gim")


def ensure_partitions(ctx: JobContext, start_day: dt.date, now: float | None = None) -> int:
    """Partitions of every partitioned table from the ETL start to partitioning-ahead-range
    days after now. Returns how many were created (0 on SQLite)."""
    ahead = ctx.config.get("gim-etl", "partitioning-ahead-range")
    now = time.time() if now is None else now
    start = int(dt.datetime.combine(start_day, dt.time(), dt.UTC).timestamp())
    end = int(now) + ahead * 86400
    created = 0
    tables = partitioned_tables()
    with ctx.progress.task("creating partitions", total=len(tables)) as advance:
        for table in tables:
            with write_tx(ctx.engine) as conn:
                ops = ops_for(conn)
                if not ops.is_partitioned(conn, table):
                    advance(1)
                    continue
                names = ops.ensure_partitions(conn, table, start, end,
                                              partition_interval(ctx.config, table))
                created += len(names)
            advance(1)
    ctx.count("partitions created", created)
    return created


# --------------------------------------------------------------------------------------------
# Fixed dimensions


def write_fixed_dimensions(ctx: JobContext) -> int:
    """Insert missing fixed rows and correct changed ones; rows already right are untouched
    (so a second run writes nothing and leaves the audit keys as they were)."""
    wanted = seed.fixed_rows()
    changes: dict[sa.Table, list[dict[str, Any]]] = {}
    with ctx.engine.connect() as conn:
        for table in FIXED_DIMENSIONS:
            key = next(iter(table.primary_key.columns)).name
            rows = wanted[table.name]
            columns = list(rows[0])
            have = {r[0]: tuple(r[1:]) for r in conn.execute(
                sa.select(table.c[key], *(table.c[c] for c in columns))).all()}
            diff = [r for r in rows
                    if have.get(r[key]) != tuple(r[c] for c in columns)]
            if diff:
                changes[table] = diff
    if not changes:
        return 0
    written = 0
    with write_tx(ctx.engine) as conn:
        audit = ctx.new_audit_key(conn, table_name="fixed dimensions",
                                  row_count=sum(len(v) for v in changes.values()))
        ops = ops_for(conn)
        for table, rows in changes.items():
            key = next(iter(table.primary_key.columns)).name
            stamped = [{**r, "CREATE_AUDIT_KEY": audit, "UPDATE_AUDIT_KEY": audit} for r in rows]
            update = [c for c in rows[0] if c != key] + ["UPDATE_AUDIT_KEY"]
            ops.upsert(conn, table, stamped, key=[key], update=update)
            written += len(rows)
    ctx.count("dimension rows", written)
    return written


def seed_user_data_mapping(ctx: JobContext) -> int:
    """The attached-data keys gim maps out of the box, written once: operators change or add
    mappings in CTL_UD_TO_UDE_MAPPING itself, and gim leaves their rows alone."""
    from gim.schema.facts import CTL_UD_TO_UDE_MAPPING

    with write_tx(ctx.engine) as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(CTL_UD_TO_UDE_MAPPING)).scalar():
            return 0
        rows = [{"ID": i, "UD_KEY_NAME": key, "UDE_TABLE_NAME": table, "UDE_COLUMN_NAME": col,
                 "PROPAGATION_RULE": "CALL", "DEFAULT_VALUE": None, "ACTIVE_FLAG": 1,
                 "CONVERT_EXPRESSION": None}
                for i, (key, table, col) in enumerate(seed.USER_DATA_MAPPING, start=1)]
        conn.execute(CTL_UD_TO_UDE_MAPPING.insert(), rows)
    ctx.count("user data mappings", len(rows))
    return len(rows)


# --------------------------------------------------------------------------------------------
# Calendar


def week_rule(config: Config) -> WeekRule:
    return WeekRule(first_day=config.get("date-time", "first-day-of-week"),
                    min_days=config.get("date-time", "minimal-days-in-first-week"),
                    simple=config.get("date-time", "simple-week-numbering"))


def _calendar_end_day(config: Config) -> dt.date:
    # Whole local days, so that runs on the same day agree on the end.
    ahead = config.get("date-time", "date-time-max-days-ahead")
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=ahead + 1)


def fill_calendar(ctx: JobContext, start_day: dt.date, end_day: dt.date) -> int:
    """Write every DATE_TIME row missing between the local midnights of start_day and end_day
    (exclusive), plus the far-future row that active facts end at. Each batch commits on its
    own; a killed run leaves rows the next run does not write again."""
    tz_name = ctx.config.get("date-time", "date-time-tz")
    rule = week_rule(ctx.config)
    start = day_start_key(start_day, tz_name)
    end = day_start_key(end_day, tz_name)
    with ctx.engine.connect() as conn:
        have = {k for (k,) in conn.execute(
            sa.select(DATE_TIME.c.DATE_TIME_KEY).where(
                sa.or_(DATE_TIME.c.DATE_TIME_KEY.between(start, end - 1),
                       DATE_TIME.c.DATE_TIME_KEY == ACTIVE_END_KEY)))}
    missing = [k for k in range(start, end, INTERVAL) if k not in have]
    if ACTIVE_END_KEY not in have:
        missing.append(ACTIVE_END_KEY)
    written = 0
    with ctx.progress.task("filling DATE_TIME", total=len(missing)) as advance:
        for i in range(0, len(missing), CALENDAR_BATCH):
            keys = missing[i:i + CALENDAR_BATCH]
            rows = list(_rows_for(keys, tz_name, rule))
            with write_tx(ctx.engine) as conn:
                audit = ctx.new_audit_key(conn, table_name=DATE_TIME.name, row_count=len(rows),
                                          min_key=keys[0], max_key=keys[-1])
                for row in rows:
                    row["CREATE_AUDIT_KEY"] = row["UPDATE_AUDIT_KEY"] = audit
                columns = list(rows[0])
                ops_for(conn).bulk_insert(conn, DATE_TIME, (tuple(r[c] for c in columns)
                                                            for r in rows), columns)
            written += len(rows)
            advance(len(rows))
    ctx.count("DATE_TIME rows", written)
    return written


def _rows_for(keys: list[int], tz_name: str, rule: WeekRule):  # noqa: ANN202
    """Calendar rows for the given keys, generated run by run of consecutive keys."""
    run_start = prev = keys[0]
    for key in keys[1:] + [None]:
        if key is not None and key == prev + INTERVAL:
            prev = key
            continue
        yield from calendar_rows(run_start, prev + INTERVAL, tz_name, rule)
        if key is not None:
            run_start = prev = key
