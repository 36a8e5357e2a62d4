"""Job_ExtractICON: copy new and changed IDB rows into the Info Mart's GIDB tables.

For each logical source (a DAP, or the DAPs of one HA set) and each IDB table of the role,
rows are read window by window from the committed high-water mark to the newest source time
minus a safety lag. Each window is one Info Mart transaction: its rows, its CTL_AUDIT_LOG and
CTL_EXTRACT_HISTORY rows and the advanced mark commit together, so a job killed anywhere
resumes at the last committed window, and a window read twice replaces rather than
duplicates (rows are identified by DAP and IDB row ID).

A window that holds no rows still advances the mark, but writes no CTL_AUDIT_LOG or
CTL_EXTRACT_HISTORY row (there is nothing for the transformation to read): its mark keeps
the AUDIT_KEY of the last window that loaded rows (0 when none has yet).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import functools
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gim import __version__, parallel
from gim.config import ROLES, Config, Dap
from gim.db import describe_db_error, make_engine, ops_for, write_tx
from gim.db.engine import DB_ERRORS, check_connection, is_integrity_error
from gim.errors import ConfigError, DatabaseUnavailable, JobFailed
from gim.hwm import (
    Window,
    assign_parts,
    merge_through,
    plan_windows,
    reliable,
    source_limit,
)
from gim.jobs import gidb_indexes, merge
from gim.runner import JobContext
from gim.schema.control import (
    CTL_DAP,
    CTL_DS,
    CTL_EXTRACT_HISTORY,
    CTL_EXTRACT_HWM,
    CTL_INFOMART_SETTINGS,
)
from gim.schema.gidb import COPIES, MERGE_COLUMNS, Copy, copies_for
from gim.schema.icon_codes import DsType, IrState
from gim.schema.idb import extraction_indexes, idb_metadata

# Which data-source type writes a role's rows (G_DSS_*.DS_TYPE).
ROLE_DS_TYPE = {"ICON_CFG": DsType.CONFIG_SERVER, "ICON_CORE": DsType.T_SERVER,
                "ICON_MM": DsType.INTERACTION_SERVER, "ICON_OCS": DsType.OCS}
DATA_SOURCE_TYPE = {r: int(t) for r, t in ROLE_DS_TYPE.items()}


class IdbFailed(JobFailed):
    """An IDB that was reached failed while being read; the message names its DAP."""


@dataclass
class Idb:
    """One reachable DAP during a run."""

    dap: Dap
    engine: Engine
    clock: int = 0  # the IDB's current time
    now: int = 0  # newest source time (capped by the clock)
    tables: set[str] = field(default_factory=set)
    dap_key: int = 0
    domains: dict[str, tuple[int, ...] | None] = field(default_factory=dict)  # role -> filter
    sessions: dict[tuple[str, str], list[tuple[int, int]] | None] = field(
        default_factory=dict)
    sizes: dict[str, float] = field(default_factory=dict)  # table -> planner's row estimate

    @property
    def name(self) -> str:
        return self.dap.name


@dataclass
class Source:
    """A logical source: one DAP, or the redundant DAPs of an HA set."""

    name: str
    key: int  # DATA_SOURCE_KEY
    daps: list[Dap]  # as configured
    idbs: list[Idb]  # those reachable in this run
    floor: int = 0  # where the role's extraction begins (see _floor)

    @property
    def ha(self) -> bool:
        # Decided by the configuration, not by what answered: with a partner down, the IDB
        # left must still be checked for gaps, or its gaps would be taken as quiet times.
        return len(self.daps) > 1

    @property
    def complete(self) -> bool:
        return len(self.idbs) == len(self.daps)


@contextlib.contextmanager
def reading(idb: Idb, what: str) -> Iterator[None]:
    """Turn any database error raised while reading the IDB into one line naming the DAP
    (the raw COPY of psycopg raises its own errors, not SQLAlchemy's)."""
    try:
        yield
    except DB_ERRORS as exc:
        raise IdbFailed(f"DAP {idb.name}: {what} failed: {describe_db_error(exc)}") from exc


class _Opened:
    """The IDBs of one run, each connected and surveyed once whatever the number of roles."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.idbs: dict[str, Idb | str] = {}  # DAP name -> Idb, or why it is unreachable

    def get(self, dap: Dap) -> Idb | str:
        if dap.name not in self.idbs:
            self.idbs[dap.name] = self._open(dap)
        return self.idbs[dap.name]

    def _open(self, dap: Dap) -> Idb | str:
        engine = make_engine(dap.url, label=f"DAP {dap.name}")
        try:
            check_connection(engine)
            with engine.connect() as conn:
                clock = ops_for(conn).clock(conn)
                tables = ops_for(conn).table_names(conn)
        except (DatabaseUnavailable, *DB_ERRORS) as exc:
            engine.dispose()
            return (exc.message if isinstance(exc, DatabaseUnavailable)
                    else f"DAP {dap.name}: {describe_db_error(exc)}")
        idb = Idb(dap=dap, engine=engine, clock=clock, tables=tables)
        ensure_indexes(self.ctx, idb)
        idb.now = min(idb.clock, _newest(idb))
        idb.sizes = _sizes(idb)
        return idb

    def close(self) -> None:
        for idb in self.idbs.values():
            if isinstance(idb, Idb):
                idb.engine.dispose()


def run(ctx: JobContext, role: str, dap: str | None = None) -> str:
    roles = list(ROLES) if role.upper() == "ALL" else [role.upper()]
    for r in roles:
        if r not in ROLES:
            raise ConfigError(f"--role {role}: unknown role (choose among "
                              f"{', '.join(ROLES)} or all)")
    done = []
    opened = _Opened(ctx)
    statistics = _Statistics(ctx)
    merging: concurrent.futures.Future | None = None
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gim-merge")

    def merged(future: concurrent.futures.Future) -> None:
        count = future.result()
        statistics.loaded(merge.CALLS)
        if count:
            done.append(f"{count:,} voice calls merged")

    # Indexes a killed first load left unmade (see gidb_indexes).
    gidb_indexes.ensure_job(ctx, gidb_indexes.gidb_tables(roles))
    try:
        for r in roles:
            groups = _sources(ctx.config, r, dap)
            if not groups and role.upper() != "ALL":
                where = f" named '{dap}'" if dap else ""
                raise ConfigError(f"{ctx.config.describe_source()}: no [[dap]]{where} has "
                                  f"role {r}")
            for i, (name, daps) in enumerate(groups.items()):
                source = _open(ctx, opened, name, daps, r)
                early = None
                if r == "ICON_CORE" and i == len(groups) - 1 and workers(ctx, 2) > 1:
                    # The merge pass runs once every voice source of the run has its calls
                    # and links extracted (calls of one interaction may come from several
                    # IDBs): on PostgreSQL, while the last source's other tables, and the
                    # roles after it, are extracted (it reads and writes only the voice
                    # calls and links).
                    def start_merge() -> None:
                        nonlocal merging
                        merging = pool.submit(merge.merge, ctx)

                    early = (merge.INPUTS, start_merge)
                rows = extract_source(ctx, source, r, statistics, early)
                done.append(f"{name}/{r}: {rows:,} rows")
            if r == "ICON_CORE" and groups:
                if merging is None:
                    merging = pool.submit(merge.merge, ctx)
                if workers(ctx, 2) == 1:
                    merged(merging)
                    merging = None
        if merging is not None:
            merged(merging)
    finally:
        pool.shutdown(wait=True)  # a merge pass under way ends (commits or rolls back)
        statistics.finish()
        opened.close()
    return "; ".join(done) if done else "no DAP to extract from"


class _Statistics:
    """PostgreSQL: a table that just received many rows gets fresh statistics at once; the
    transformation's joins are planned badly on a freshly loaded table until autovacuum
    gets to it. Each such table is analyzed as soon as its extraction is done, by a thread
    and connection of its own, while the next tables are extracted."""

    THRESHOLD = 1_000

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.enabled = ctx.engine.dialect.name == "postgresql"
        self.queued: set[str] = set()
        self.analyzed = 0
        self.failures: list[str] = []
        self.pending: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None

    def loaded(self, table: sa.Table) -> None:
        if not self.enabled or table.name in self.queued or \
                self.ctx.counts.get(f"{table.name} rows", 0) < self.THRESHOLD:
            return
        self.queued.add(table.name)
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="gim-analyze", daemon=True)
            self.thread.start()
        self.pending.put(table)

    def _work(self) -> None:
        while (table := self.pending.get()) is not None:
            try:
                with self.ctx.engine.connect() as conn:
                    # A coarse sample (6,000 rows a table rather than 30,000) costs a third:
                    # the transformation joins GIDB tables on keys and reads them by audit
                    # key, which coarse statistics plan as well; autovacuum refines them as
                    # the tables grow.
                    ops_for(conn).analyze(conn, [table], sample=20)
                    conn.commit()
                self.analyzed += 1
            except DB_ERRORS as exc:
                self.failures.append(f"{table.name}: {describe_db_error(exc)}")

    def finish(self) -> None:
        if self.thread is not None:
            self.pending.put(None)
            self.thread.join()
            self.thread = None
        if self.analyzed:
            self.ctx.count("tables analyzed", self.analyzed)
        for text in self.failures:
            self.ctx.note(f"could not refresh the statistics of {text}")
        self.failures = []


def _sources(config: Config, role: str, dap: str | None) -> dict[str, list[Dap]]:
    if dap is not None:
        config.dap(dap)  # unknown name: a clear error
    out: dict[str, list[Dap]] = {}
    for d in config.daps_with_role(role):
        if dap is None or d.name == dap or (d.ha_set and d.ha_set == config.dap(dap).ha_set):
            out.setdefault(d.ha_set or d.name, []).append(d)
    return out


# --------------------------------------------------------------------------------------------
# Opening a source


def _open(ctx: JobContext, opened: _Opened, name: str, daps: list[Dap], role: str) -> Source:
    idbs, failures = [], []
    for d in daps:
        got = opened.get(d)
        if isinstance(got, Idb):
            idbs.append(got)
        else:
            failures.append(got)
    if not idbs:
        raise DatabaseUnavailable("; ".join(failures))
    for text in failures:
        ctx.note(f"{text}; extracting {name} ({role}) from its HA partner")
    key = _data_source_key(ctx, name, daps)
    for i in idbs:
        if not i.dap_key:
            i.dap_key = _dap_key(ctx, i.dap, key)
        i.domains[role] = _domains(i, role)
    return Source(name=name, key=key, daps=daps, idbs=idbs, floor=_floor(ctx, role))


def _data_source_key(ctx: JobContext, name: str, daps: list[Dap]) -> int:
    """The source's DATA_SOURCE_KEY (allocated on its first extraction)."""
    now = int(time.time())
    values = {"HA_SET": daps[0].ha_set, "DAP_NAMES": ",".join(d.name for d in daps)[:1024],
              "ROLES": ",".join(daps[0].roles), "TENANT": daps[0].tenant, "UPDATED_TS": now}
    with write_tx(ctx.engine) as conn:
        key = conn.execute(sa.select(CTL_DS.c.DATA_SOURCE_KEY).where(
            CTL_DS.c.SOURCE_NAME == name)).scalar()
        if key is not None:
            conn.execute(sa.update(CTL_DS).where(CTL_DS.c.DATA_SOURCE_KEY == key)
                         .values(**values))
            return key
        key = _next_key(conn, CTL_DS.c.DATA_SOURCE_KEY)
        conn.execute(CTL_DS.insert().values(DATA_SOURCE_KEY=key, SOURCE_NAME=name,
                                            CREATED_TS=now, **values))
        return key


def _next_key(conn: Connection, column: sa.Column) -> int:
    """The next key of a small control table, taken inside the caller's transaction: a
    job killed before it commits leaves the numbering as it was (a PostgreSQL sequence
    would have moved on, and a rerun would number the source differently from a run that
    was never killed). On PostgreSQL the table is locked against a concurrent first
    extraction by another role until the caller commits."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {column.table.name} IN SHARE ROW EXCLUSIVE MODE")
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0) + 1))
               .scalar_one())


def _dap_key(ctx: JobContext, dap: Dap, source_key: int) -> int:
    now = int(time.time())
    with write_tx(ctx.engine) as conn:
        key = conn.execute(sa.select(CTL_DAP.c.DAP_KEY).where(
            CTL_DAP.c.DAP_NAME == dap.name)).scalar()
        if key is not None:
            conn.execute(sa.update(CTL_DAP).where(CTL_DAP.c.DAP_KEY == key)
                         .values(DATA_SOURCE_KEY=source_key, UPDATED_TS=now))
            return key
        key = _next_key(conn, CTL_DAP.c.DAP_KEY)
        conn.execute(CTL_DAP.insert().values(DAP_KEY=key, DAP_NAME=dap.name,
                                             DATA_SOURCE_KEY=source_key, CREATED_TS=now,
                                             UPDATED_TS=now))
        return key


def ensure_indexes(ctx: JobContext, idb: Idb) -> int:
    """Create the indexes extraction needs that the IDB lacks; a read-only DAP is told."""
    created = 0
    try:
        with idb.engine.connect() as conn:
            ops = ops_for(conn)
            tables = idb.tables or ops.table_names(conn)
            wanted = [i for i in extraction_indexes() if i.table in tables]
            have = ops.index_names(conn) if wanted else set()
            for index in wanted:
                if index.name not in have:
                    conn.exec_driver_sql(index.ddl())
                    created += 1
            conn.commit()
    except DB_ERRORS as exc:
        ctx.note(f"DAP {idb.name}: could not create extraction indexes "
                 f"({describe_db_error(exc)}); extraction will be slower")
        return 0
    if created:
        ctx.count("IDB indexes created", created)
    return created


def _sizes(idb: Idb) -> dict[str, float]:
    """PostgreSQL's estimate of each IDB table's rows (from its statistics; nothing where
    it has none), by which parallel workers take the largest tables first."""
    if idb.engine.dialect.name != "postgresql":
        return {}
    with reading(idb, "reading the table statistics"), idb.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT relname, reltuples FROM pg_class WHERE relkind IN ('r', 'p') AND "
            "relnamespace = to_regnamespace(current_schema())").all()
    return {name.upper(): float(n) for name, n in rows if n and n > 0}


def _newest(idb: Idb) -> int:
    """Where the source has got to: the newest time any extracted table of the IDB holds
    (all roles count, so that a table changing rarely, such as configuration, does not
    wait for its own next change to pass the safety lag), or the last event ICON's
    data-source sessions say it stored, if later (an idle contact center still moves on)."""
    parts = []
    for table in {c.source for c in COPIES if c.time_column}:
        if table.name in idb.tables:
            parts.append(sa.select(sa.func.max(table.c[table.info["time_column"]])))
    for table in idb_metadata.sorted_tables:
        if table.info["kind"] == "dss" and table.name in idb.tables:
            parts += [sa.select(sa.func.max(table.c[column]))
                      for column in ("LEVENT_ITS", "DSCONN_ETS", "ICON_ETS")]
    if not parts:
        return 0
    with reading(idb, "finding its newest time"), idb.engine.connect() as conn:
        # One round trip: each part is a max() over an index.
        values = conn.execute(sa.union_all(*parts)).scalars().all()
    return max((v for v in values if v is not None), default=0)


def _dss_rows(idb: Idb, provider: sa.Table) -> list[Any] | None:
    if provider.name not in idb.tables:
        return None
    with reading(idb, f"reading {provider.name}"), idb.engine.connect() as conn:
        return conn.execute(sa.select(provider)).all()


def _domains(idb: Idb, role: str) -> tuple[int, ...] | None:
    """The GSYS_DOMAIN values of the role's rows, when the IDB says (its G_DSS tables); None
    means every row is the role's."""
    other = {"ICON_CORE": "ICON_MM", "ICON_MM": "ICON_CORE"}.get(role)
    wanted = int(ROLE_DS_TYPE[role])
    ids: set[int] = set()
    any_rows = False
    for provider in {c.provider for c in copies_for(role)}:
        for row in _dss_rows(idb, provider) or ():
            any_rows = True
            if row.DS_TYPE == wanted:
                ids.add(row.DSS_ID)
    if not any_rows:
        if other and other in idb.dap.roles:
            raise ConfigError(f"DAP {idb.name} has roles {role} and {other}, but its IDB "
                              "has no G_DSS_* rows to tell voice from multimedia apart "
                              "(ICON's use-dss-monitor); give each its own DAP")
        return None
    return tuple(sorted(ids))


def _sessions(idb: Idb, role: str, provider: sa.Table) -> list[tuple[int, int]] | None:
    """The intervals during which the IDB recorded the provider's data without a gap, from
    its data-source sessions (first stored event to disconnection or ICON stop; a session
    still open runs to the end of time, and the IDB's own limit cuts it). None when the IDB
    keeps no session information."""
    key = (role, provider.name)
    if key not in idb.sessions:
        rows = _dss_rows(idb, provider)
        if not rows:
            idb.sessions[key] = None
        else:
            wanted = int(ROLE_DS_TYPE[role])
            spans = []
            for r in rows:
                if r.DS_TYPE != wanted:
                    continue
                begin = r.FEVENT_ITS or r.DSCONN_STS or 0
                ends = [t for t in (r.DSCONN_ETS, r.ICON_ETS) if t is not None]
                end = min(ends) if ends else 2**62
                if end > begin:
                    spans.append((begin, end))
            idb.sessions[key] = spans
    return idb.sessions[key]


# --------------------------------------------------------------------------------------------
# Extracting a source


# Workers extracting the tables of one source at the same time, at most.
def workers(ctx: JobContext, tables: int) -> int:
    """How many tables are extracted at once: each commits its own windows, so tables are
    independent."""
    return parallel.workers(ctx, "gim-etl", "extract-data-thread-pool-size", tables)


def extract_source(ctx: JobContext, source: Source, role: str,
                   statistics: _Statistics | None = None,
                   early: tuple[tuple[str, ...], Any] | None = None) -> int:
    """The role's tables of one source. `early`: (GIDB table names, a callable) to call once
    those tables are extracted, which are then extracted first."""
    copies = [c for c in copies_for(role)]
    total = 0
    first, when_first = (set(early[0]), early[1]) if early else (set(), None)
    with ctx.progress.task(f"extracting {source.name} ({role})", total=len(copies)) as advance:
        def done(copy: Copy, rows: int) -> None:
            nonlocal total
            total += rows
            if statistics is not None:
                statistics.loaded(copy.target)
            advance(1)
            if copy.target.name in first:
                first.discard(copy.target.name)
                if not first and when_first is not None:
                    when_first()

        count = workers(ctx, len(copies))
        if count == 1:
            for copy in copies:
                done(copy, extract_table(ctx, source, copy))
        else:
            # The largest tables first, so that the last to finish are short ones (after
            # those wanted early).
            copies.sort(key=lambda c: (c.target.name not in first,
                                       -max((i.sizes.get(c.source.name, 0.0)
                                             for i in source.idbs), default=0.0)))
            _extract_in_parallel(ctx, source, copies, count, done)
    return total


def _extract_in_parallel(ctx: JobContext, source: Source, copies: list[Copy], count: int,
                         done: Any) -> None:
    """The tables by `count` workers; on a failure or an interruption, the others stop at
    the end of the window they are loading."""
    stop = threading.Event()
    parallel.side_by_side(
        count, ((copy, functools.partial(extract_table, ctx, source, copy, stop))
                for copy in copies), done, stop, "gim-extract")


def _mark(ctx: JobContext, source: Source, copy: Copy) -> tuple[int | None, str | None]:
    """The table's committed mark and the DAP its last window came from."""
    with ctx.engine.connect() as conn:
        row = conn.execute(sa.select(CTL_EXTRACT_HWM.c.MARK_TS, CTL_EXTRACT_HWM.c.DAP_NAME)
                           .where(CTL_EXTRACT_HWM.c.SOURCE_NAME == source.name,
                                  CTL_EXTRACT_HWM.c.TABLE_NAME == copy.target.name)).first()
    return (row[0], row[1]) if row else (None, None)


def _floor(ctx: JobContext, role: str) -> int:
    """Configuration history is taken whole; other data from the ETL start date on."""
    if role == "ICON_CFG":
        return 0
    with ctx.engine.connect() as conn:
        start = conn.execute(sa.select(CTL_INFOMART_SETTINGS.c.SETTING_VALUE).where(
            CTL_INFOMART_SETTINGS.c.SETTING_NAME == "etl-start-date")).scalar()
    day = dt.date.fromisoformat(start) if start else dt.datetime.now(dt.UTC).date()
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


@dataclass
class _Table:
    """What the windows of one table in one run share."""

    copy: Copy
    stuck: int
    # Set when the job stops: the table's next window is not begun.
    stop: threading.Event | None = None
    # Rows may go straight into the GIDB table (no staging): set while none of the DAP's
    # rows can be there already, i.e. on a first load, until a conflict says otherwise.
    direct: dict[str, bool] = field(default_factory=dict)


def extract_table(ctx: JobContext, source: Source, copy: Copy,
                  stop: threading.Event | None = None) -> int:
    idbs = [i for i in source.idbs if copy.source.name in i.tables]
    if not idbs:
        return 0
    if copy.time_column is None:
        return _copy_whole(ctx, source, copy, idbs)
    cfg = ctx.config
    lag = cfg.get("gim-etl", "extract-data-safety-lag")
    chunk = cfg.get("gim-etl", "extract-data-chunk-size")
    stuck = cfg.get("gim-etl", "extract-data-stuck-threshold")
    mark, last_dap = _mark(ctx, source, copy)
    # The IDB the previous window came from first (no flapping), then the others.
    idbs.sort(key=lambda i: i.name != last_dap)
    limits = [_limit(i, copy, lag, stuck) for i in idbs]
    windows = plan_windows(mark, source.floor, max(limits), chunk,
                           whole=copy.role == "ICON_CFG")
    if not windows:
        return 0
    if source.ha:
        sessions = [_sessions(i, copy.role, copy.provider) for i in idbs]
        starts = [a for spans in sessions if spans for a, _ in spans]
        first = min(starts) if starts else None
        covers = [reliable(spans, lim, first)
                  for spans, lim in zip(sessions, limits, strict=True)]
    else:
        covers = [reliable(None, limits[0])]
    state = _Table(copy=copy, stuck=stuck, stop=stop)
    # A big first load builds its secondary indexes last (see gidb_indexes); a small one
    # keeps them (dropping and building them costs more than it saves).
    least = cfg.get("gim-etl", "extract-first-load-index-rows")
    estimate = max((i.sizes[copy.source.name] for i in idbs
                    if copy.source.name in i.sizes), default=None)
    deferred = gidb_indexes.defer_for_first_load(ctx, copy, source.ha) \
        if least == 0 or (estimate is not None and estimate >= least) else []
    rows = _load_windows(ctx, source, copy, idbs, windows, limits, covers, state)
    if not (stop is not None and stop.is_set()):  # else the next job makes them
        gidb_indexes.rebuild(ctx, deferred)
    return rows


# Seeking the next row pays only over a long stretch of windows: each seek may have to scan
# far for a role whose rows are rare in a shared table, while a few empty windows cost a
# few small transactions.
SEEK_WINDOWS = 8


def _load_windows(ctx: JobContext, source: Source, copy: Copy, idbs: list[Idb],
                  windows: list[Window], limits: list[int], covers: list[list[tuple[int, int]]],
                  state: _Table) -> int:
    rows, current, k = 0, 0, 0
    while k < len(windows):
        if state.stop is not None and state.stop.is_set():
            return rows
        # Empty windows merge into the next one that holds rows (found by one index seek
        # per IDB), so that a long quiet stretch costs one transaction, not one per chunk.
        j = len(windows) - 1
        if j - k >= SEEK_WINDOWS:
            span = (windows[k].start, windows[-1].end)
            found = [t for i in idbs
                     if (t := _next_row(i, copy, *span, state.stuck)) is not None]
            j = merge_through(windows, k, min(found) if found else None)
        window = Window(windows[k].start, windows[j].end)
        k = j + 1
        for part, index in assign_parts(window, covers, current):
            if index is None:
                index = _take_what_there_is(source, idbs, limits, part, current,
                                            state.stuck)
            if index is None:
                ctx.note(_waiting(source, copy, part, idbs))
                return rows
            current = index
            rows += load_window(ctx, source, copy, idbs[index], part, state)
    return rows


def _limit(idb: Idb, copy: Copy, lag: int, stuck: int) -> int:
    oldest = (_oldest_active(idb, copy, idb.now - stuck) if copy.completed_only else None)
    return source_limit(idb.now, lag, oldest, stuck)


def _take_what_there_is(source: Source, idbs: list[Idb], limits: list[int], part: Window,
                        current: int, stuck: int) -> int | None:
    """A part no IDB of the set holds yet is waited for, unless it is older than the stuck
    threshold: then the data is not coming, and the IDB used last gives what it has. Not
    while a DAP of the set is unreachable, though: the data may be in its IDB, and taking
    the gap from the other IDB would lose it for good. (An operator who knows the missing
    IDB is gone for good removes its DAP from the configuration.)"""
    idb = idbs[current]
    if source.complete and part.end <= min(limits[current], idb.now - stuck):
        return current
    return None


def _waiting(source: Source, copy: Copy, part: Window, idbs: list[Idb]) -> str:
    down = [d.name for d in source.daps if d.name not in {i.name for i in idbs}]
    why = f" (DAP {', '.join(down)} unreachable)" if down else ""
    return (f"{source.name}: no IDB holds {copy.source.name} data for "
            f"{_iso(part.start)}..{_iso(part.end)} yet{why}; waiting")


def _next_row(idb: Idb, copy: Copy, start: int, end: int, stuck: int) -> int | None:
    """The time of the IDB's first row of the table in [start, end) (an index seek)."""
    column = copy.source.c[copy.time_column]
    query = (sa.select(column)
             .where(*_conditions(idb, copy, Window(start, end), idb.now - stuck))
             .order_by(column).limit(1))
    with reading(idb, f"reading {copy.source.name}"), idb.engine.connect() as conn:
        return conn.execute(query).scalar()


def _oldest_active(idb: Idb, copy: Copy, stuck_before: int) -> int | None:
    """The last change of the oldest voice call still active and not yet stuck."""
    c = copy.source.c
    query = sa.select(sa.func.min(c.LASTCHANGE_TS)).where(
        c.STATE != int(IrState.TERMINATED), c.CREATED_TS >= stuck_before,
        *_role_conditions(idb, copy))
    with reading(idb, f"reading {copy.source.name}"), idb.engine.connect() as conn:
        return conn.execute(query).scalar()


def _role_conditions(idb: Idb, copy: Copy) -> list[Any]:
    domains = idb.domains.get(copy.role)
    if domains is not None and "GSYS_DOMAIN" in copy.source.c:
        return [copy.source.c.GSYS_DOMAIN.in_(domains)]
    return []


def _conditions(idb: Idb, copy: Copy, window: Window | None, stuck_before: int) -> list[Any]:
    """What selects a window's rows of a table for the role."""
    src = copy.source.c
    out = _role_conditions(idb, copy)
    if window is not None:
        column = src[copy.time_column]
        out += [column >= window.start, column < window.end]
    if copy.completed_only:
        # Voice calls come once terminated, or once stuck (active too long to wait for).
        out.append(sa.or_(src.STATE == int(IrState.TERMINATED), src.CREATED_TS < stuck_before))
    return out


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------------------------
# Loading one window


def _source_query(source: Source, idb: Idb, copy: Copy, window: Window | None, audit: int,
                  stuck_before: int) -> sa.Select:
    src = copy.source.c
    start = src[copy.start_column] if copy.start_column else None
    start_key = ((start // 900) * 900) if start is not None else sa.null()
    # In the order of _staged_columns: START_DATE_TIME_KEY first, so that the rows' range
    # of it is read off the stream (see Staged) instead of queried afterwards.
    query = sa.select(sa.cast(start_key, sa.Integer).label("START_DATE_TIME_KEY"),
                      sa.literal(source.key, sa.Integer).label("DATA_SOURCE_KEY"),
                      sa.literal(idb.dap_key, sa.Integer).label("DAP_KEY"),
                      *(src[c] for c in copy.columns),
                      sa.literal(audit, sa.BigInteger).label("CREATE_AUDIT_KEY"),
                      sa.literal(audit, sa.BigInteger).label("UPDATE_AUDIT_KEY"),
                      *(sa.cast(sa.null(), copy.target.c[c].type).label(c)
                        for c in MERGE_COLUMNS if c in copy.target.c))
    return query.where(*_conditions(idb, copy, window, stuck_before))


def _staged_columns(target: sa.Table) -> list[str]:
    return ["START_DATE_TIME_KEY"] + [c.name for c in target.columns
                                      if c.name != "START_DATE_TIME_KEY"]


def load_window(ctx: JobContext, source: Source, copy: Copy, idb: Idb, window: Window,
                state: _Table) -> int:
    """One Info Mart transaction: the window's rows, its audit and history rows, the mark."""
    started = time.time()
    target = copy.loads_into
    batch = ctx.config.get("gim-etl", "extract-data-batch-rows")
    with write_tx(ctx.engine) as conn:
        ops = ops_for(conn)
        audit = ops.allocate_keys(conn, "AUDIT_KEY")
        query = _source_query(source, idb, copy, window, audit, idb.now - state.stuck)
        loaded = None
        if _direct(conn, copy, idb, state):
            loaded = _load_direct(conn, source, copy, idb, query, audit, batch)
            if loaded is None:
                state.direct[idb.name] = False
        if loaded is None:
            loaded = _load_replacing(conn, source, copy, idb, query, batch)
        count, lo, hi = loaded
        if count:
            ctx.new_audit_key(conn, key=audit, min_key=lo or 0, max_key=hi or 0,
                              row_count=count, max_chunk_ts=window.end - 1,
                              data_source_key=source.key, dap_name=idb.name,
                              table_name=target.name)
            _history(conn, ctx, source, copy, idb, window, count, audit, started)
        _advance(conn, ctx, source, copy, idb, window, count, audit)
    if count:
        ctx.count(f"{target.name} rows", count)
    return count


def _direct(conn: Connection, copy: Copy, idb: Idb, state: _Table) -> bool:
    """Insert-only IDB tables: windows never overlap and a window commits whole, so a
    window's rows cannot be in the GIDB table yet. Tables ICON updates in place: the same
    holds while the GIDB table has no row of the DAP yet (a first load)."""
    if copy.source.info["kind"] == "history":
        return state.direct.get(idb.name, True)
    if idb.name not in state.direct:
        target = copy.loads_into
        state.direct[idb.name] = conn.execute(
            sa.select(sa.literal(1)).where(target.c.DAP_KEY == idb.dap_key).limit(1)
            .select_from(target)).first() is None
    return state.direct[idb.name]


def _load_direct(conn: Connection, source: Source, copy: Copy, idb: Idb, query: sa.Select,
                 audit: int, batch: int) -> tuple[int, int | None, int | None] | None:
    """The window's rows straight into the GIDB table. If one is there after all (a mark
    reset by hand, a row ICON changed between two windows of one run), this returns None
    with nothing written and the caller takes the replacing path."""
    target = copy.loads_into
    savepoint = conn.begin_nested()
    try:
        staged = stage(conn, idb, copy, query, target.name, batch)
        savepoint.commit()
    except DB_ERRORS as exc:
        savepoint.rollback()
        if is_integrity_error(exc):
            return None
        raise
    if staged.count and source.ha and copy.natural_key:
        _drop_partner_versions(conn, source, copy, idb, f"{target.name} n",
                               f"n.UPDATE_AUDIT_KEY = {int(audit)} AND n.DAP_KEY = "
                               f"{int(idb.dap_key)}")
    return staged.count, staged.lo, staged.hi


def _load_replacing(conn: Connection, source: Source, copy: Copy, idb: Idb, query: sa.Select,
                    batch: int) -> tuple[int, int | None, int | None]:
    """Staged rows into the GIDB table: insert, or replace the version loaded before
    (keeping its CREATE_AUDIT_KEY)."""
    ops = ops_for(conn)
    target = copy.loads_into
    temp = ops.temp_copy(conn, target)
    staged = stage(conn, idb, copy, query, temp, batch)
    if not staged.count:
        return 0, None, None
    key = [c.name for c in target.primary_key.columns]
    columns = [c.name for c in target.columns]
    ops.upsert_from(conn, target, temp, columns, key,
                    update=[c for c in columns if c not in key and c != "CREATE_AUDIT_KEY"])
    if source.ha and copy.natural_key:
        _drop_partner_versions(conn, source, copy, idb, f"{temp} n", "1 = 1")
    return staged.count, staged.lo, staged.hi


def _drop_partner_versions(conn: Connection, source: Source, copy: Copy, idb: Idb,
                           new_rows: str, which: str) -> None:
    """In an HA set, a row ICON updates in place replaces the version of the same row (by
    natural key) loaded earlier from the partner IDB: the two ICONs number rows apart, so
    the row identity alone would keep both. Driven from the new rows, through the natural
    key's index, so that its cost follows the window and not the table."""
    target = copy.loads_into.name
    key = [c.name for c in copy.loads_into.primary_key.columns]
    match = " AND ".join(f"t.{k} = n.{k}" for k in copy.natural_key)
    conn.exec_driver_sql(
        f"DELETE FROM {target} WHERE ({', '.join(key)}) IN (SELECT "
        f"{', '.join('t.' + k for k in key)} FROM {new_rows} JOIN {target} t ON "
        f"t.DATA_SOURCE_KEY = {int(source.key)} AND {match} AND t.DAP_KEY <> "
        f"{int(idb.dap_key)} WHERE {which})")


@dataclass
class Staged:
    """What a stream moved: its row count and the range of its rows' START_DATE_TIME_KEY."""

    count: int = 0
    lo: int | None = None
    hi: int | None = None

    def add(self, count: int, keys: set) -> None:
        self.count += count
        keys.discard(None)
        if keys:
            lo, hi = min(keys), max(keys)
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)


def stage(conn: Connection, idb: Idb, copy: Copy, query: sa.Select, into: str,
          batch_rows: int) -> Staged:
    """Stream the query's rows from the IDB into the table `into` (shaped like the copy's
    target). PostgreSQL to PostgreSQL is a COPY TO piped into a COPY FROM; other pairs move
    bounded batches of rows. Errors of the IDB name its DAP; those of the Info Mart are left as
    they are."""
    ops = ops_for(conn)
    columns = _staged_columns(copy.loads_into)
    what = f"reading {copy.source.name}"
    staged = Staged()
    if conn.dialect.name == "postgresql" and idb.engine.dialect.name == "postgresql":
        sql = str(query.compile(dialect=idb.engine.dialect,
                                compile_kwargs={"literal_binds": True}))
        raw_dst = conn.connection.driver_connection
        with raw_dst.cursor() as in_cur, \
                in_cur.copy(f"COPY {ops.fold(into)} ({', '.join(columns)}) "
                            "FROM STDIN") as in_copy:
            with contextlib.closing(_copy_out(idb, sql, what)) as blocks:
                for rows, data, keys in blocks:
                    in_copy.write(data)
                    staged.add(rows, {None if k == b"\\N" else int(k) for k in keys})
        return staged
    table = _named(copy.target, into)
    for batch in _read_batches(idb, query, batch_rows, what):
        ops.bulk_insert(conn, table, batch, columns)
        staged.add(len(batch), {r[0] for r in batch})
    return staged


def _copy_out(idb: Idb, sql: str, what: str) -> Iterator[tuple[int, bytes, set[bytes]]]:
    """COPY (sql) TO STDOUT on the IDB, in blocks of rows (COPY TO hands over one row at a
    time; writing them on in blocks saves most of the per-call cost), each with the set of
    its first column's values as text."""
    closing = False
    try:
        with idb.engine.connect() as src:
            raw_src = src.connection.driver_connection
            with raw_src.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT") as out:
                block: list[bytes] = []
                for data in out:
                    block.append(data)
                    if len(block) >= 1024:
                        try:
                            data = b"".join(block)
                            yield len(block), data, _first_fields(data)
                        except GeneratorExit:
                            closing = True
                            raise
                        block = []
                if block:
                    try:
                        data = b"".join(block)
                        yield len(block), data, _first_fields(data)
                    except GeneratorExit:
                        closing = True
                        raise
    except DB_ERRORS as exc:
        if closing:  # the Info Mart side failed and stopped reading: its error is the one
            return
        raise IdbFailed(f"DAP {idb.name}: {what} failed: {describe_db_error(exc)}") from exc


# The first field of each row but the first of a block of COPY text (tabs and newlines in
# values are escaped); a pattern that begins with a plain character is searched for fast.
_NEXT_FIRST_FIELD = re.compile(rb"\n([^\t\n]*)\t")


def _first_fields(data: bytes) -> set[bytes]:
    fields = set(_NEXT_FIRST_FIELD.findall(data))
    fields.add(data[:data.find(b"\t")])
    return fields


def _read_batches(idb: Idb, query: sa.Select, batch_rows: int,
                  what: str) -> Iterator[list[tuple]]:
    closing = False
    try:
        with idb.engine.connect() as src:
            result = src.execution_options(stream_results=True,
                                           yield_per=batch_rows).execute(query)
            for batch in result.partitions(batch_rows):
                try:
                    yield [tuple(r) for r in batch]
                except GeneratorExit:
                    closing = True
                    raise
    except DB_ERRORS as exc:
        if closing:
            return
        raise IdbFailed(f"DAP {idb.name}: {what} failed: {describe_db_error(exc)}") from exc


@functools.lru_cache(maxsize=256)
def _named(target: sa.Table, name: str) -> sa.Table:
    """A Table object with target's columns under another name (for loaders)."""
    md = sa.MetaData()
    return sa.Table(name, md, *(sa.Column(c.name, c.type, quote=False)
                                for c in target.columns), quote=False)


def _history(conn: Connection, ctx: JobContext, source: Source, copy: Copy, idb: Idb,
             window: Window, count: int, audit: int, started: float) -> None:
    now = time.time()
    conn.execute(CTL_EXTRACT_HISTORY.insert().values(
        TABLE_NAME=copy.source.name, DATA_SOURCE_KEY=source.key,
        DATA_SOURCE_TYPE=DATA_SOURCE_TYPE[copy.role], ROW_COUNT=count,
        MAX_TIME=_utc(window.end - 1), MAX_TS=window.end - 1, ICON_DBID=0, DSS_ID=None,
        PROVIDERTAG=None, EXTRACT_START_TIME=_utc(started), EXTRACT_END_TIME=_utc(now),
        JOB_ID=ctx.job_id, JOB_NAME="Job_ExtractICON", JOB_VERSION=__version__,
        DAP_NAME=idb.name, CREATE_AUDIT_KEY=audit, CREATED_TS=int(now)))


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


def _advance(conn: Connection, ctx: JobContext, source: Source, copy: Copy, idb: Idb,
             window: Window, count: int, audit: int) -> None:
    hwm = CTL_EXTRACT_HWM
    stmt = ops_for(conn).insert(hwm).values(
        SOURCE_NAME=source.name, TABLE_NAME=copy.target.name, MARK_TS=window.end,
        DAP_NAME=idb.name, ROW_COUNT=count, JOB_ID=ctx.job_id,
        AUDIT_KEY=audit if count else 0, UPDATED_TS=int(time.time()))
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[hwm.c.SOURCE_NAME, hwm.c.TABLE_NAME],
        set_={"MARK_TS": stmt.excluded.MARK_TS, "DAP_NAME": stmt.excluded.DAP_NAME,
              "ROW_COUNT": hwm.c.ROW_COUNT + stmt.excluded.ROW_COUNT,
              "JOB_ID": stmt.excluded.JOB_ID,
              "AUDIT_KEY": sa.case((stmt.excluded.ROW_COUNT > 0, stmt.excluded.AUDIT_KEY),
                                   else_=hwm.c.AUDIT_KEY),
              "UPDATED_TS": stmt.excluded.UPDATED_TS}))


def _copy_whole(ctx: JobContext, source: Source, copy: Copy, idbs: list[Idb]) -> int:
    """Tables without a time column (dictionaries): read whole every run, and the GIDB
    table made to match: rows that changed or went are replaced or removed, others are
    left alone (so that a run with nothing new changes nothing). In an HA set rows are
    matched on the IDB's key whichever IDB they came from, since dictionaries are the
    same in both."""
    idb = idbs[0]
    target = copy.target
    key = [c.name for c in copy.source.primary_key.columns]
    others = [c for c in copy.columns if c not in key]
    with write_tx(ctx.engine) as conn:
        ops = ops_for(conn)
        audit = ops.allocate_keys(conn, "AUDIT_KEY")
        temp = ops.temp_copy(conn, target)
        stage(conn, idb, copy, _source_query(source, idb, copy, None, audit, 0), temp,
              ctx.config.get("gim-etl", "extract-data-batch-rows"))
        same_key = " AND ".join(f"s.{k} = {target.name}.{k}" for k in key)
        same_row = " AND ".join([same_key] + [ops.null_safe_equal(f"s.{c}",
                                                                  f"{target.name}.{c}")
                                              for c in others])
        gone = conn.exec_driver_sql(
            f"DELETE FROM {target.name} WHERE DATA_SOURCE_KEY = {int(source.key)} AND NOT "
            f"EXISTS (SELECT 1 FROM {temp} s WHERE {same_row})").rowcount
        columns = ", ".join(c.name for c in target.columns)
        new = conn.exec_driver_sql(
            f"INSERT INTO {target.name} ({columns}) SELECT {columns} FROM {temp} s WHERE "
            f"NOT EXISTS (SELECT 1 FROM {target.name} WHERE DATA_SOURCE_KEY = "
            f"{int(source.key)} AND {same_key})").rowcount
        conn.exec_driver_sql(f"DELETE FROM {temp}")
        if new or gone:
            ctx.new_audit_key(conn, key=audit, row_count=new, data_source_key=source.key,
                              dap_name=idb.name, table_name=target.name)
    if new:
        ctx.count(f"{target.name} rows", new)
    if gone:
        ctx.count(f"{target.name} rows removed", gone)
    return new
