"""Job_ExtractICON: copy new and changed IDB rows into the Info Mart's GIDB tables.

For each logical source (a DAP, or the DAPs of one HA set) and each IDB table of the role,
rows are read window by window from the committed high-water mark to the newest source time
minus a safety lag. Each window is one Info Mart transaction: its rows, its CTL_AUDIT_LOG and
CTL_EXTRACT_HISTORY rows and the advanced mark commit together, so a job killed anywhere
resumes at the last committed window, and a window read twice replaces rather than
duplicates (rows are identified by DAP and IDB row ID).
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gim import __version__
from gim.config import ROLES, Config, Dap
from gim.db import describe_db_error, make_engine, ops_for, write_tx
from gim.db.engine import check_connection
from gim.errors import ConfigError, DatabaseUnavailable
from gim.hwm import Window, coverage_gaps, hold_back_limit, next_windows, safe_limit, split_window
from gim.runner import JobContext
from gim.schema.control import CTL_DS, CTL_EXTRACT_HISTORY, CTL_EXTRACT_HWM, CTL_INFOMART_SETTINGS
from gim.schema.gidb import COPIES, Copy, copies_for
from gim.schema.icon_codes import DsType, IrState
from gim.schema.idb import extraction_indexes, idb_metadata

# Which data-source type writes a role's rows (G_DSS_*.DS_TYPE).
ROLE_DS_TYPE = {"ICON_CFG": DsType.CONFIG_SERVER, "ICON_CORE": DsType.T_SERVER,
                "ICON_MM": DsType.INTERACTION_SERVER, "ICON_OCS": DsType.OCS}
DATA_SOURCE_TYPE = {r: int(t) for r, t in ROLE_DS_TYPE.items()}


@dataclass
class Idb:
    """One reachable DAP during a run."""

    dap: Dap
    engine: Engine
    key: int  # DATA_SOURCE_KEY
    clock: int = 0  # the IDB's current time
    now: int = 0  # newest source time (capped by the clock)
    domains: dict[str, tuple[int, ...] | None] = field(default_factory=dict)  # role -> filter
    coverage: dict[tuple[str, str], list[tuple[int, int]] | None] = field(default_factory=dict)


@dataclass
class Source:
    """A logical source: one DAP, or the redundant DAPs of an HA set."""

    name: str
    idbs: list[Idb]

    @property
    def ha(self) -> bool:
        return len(self.idbs) > 1


def run(ctx: JobContext, role: str, dap: str | None = None) -> str:
    roles = list(ROLES) if role.upper() == "ALL" else [role.upper()]
    for r in roles:
        if r not in ROLES:
            raise ConfigError(f"--role {role}: unknown role (choose among "
                              f"{', '.join(ROLES)} or all)")
    done = []
    for r in roles:
        groups = _sources(ctx.config, r, dap)
        if not groups and role.upper() != "ALL":
            where = f" named '{dap}'" if dap else ""
            raise ConfigError(f"{ctx.config.describe_source()}: no [[dap]]{where} has role {r}")
        for name, daps in groups.items():
            source = _open(ctx, name, daps, r)
            try:
                rows = extract_source(ctx, source, r)
            finally:
                for i in source.idbs:
                    i.engine.dispose()
            done.append(f"{name}/{r}: {rows:,} rows")
    refresh_statistics(ctx)
    return "; ".join(done) if done else "no DAP to extract from"


def refresh_statistics(ctx: JobContext, threshold: int = 1_000) -> None:
    """PostgreSQL: a table that just received many rows gets fresh statistics at once; the
    transformation's joins are planned badly on a freshly loaded table until autovacuum
    gets to it."""
    if ctx.engine.dialect.name != "postgresql":
        return
    loaded = [name.removesuffix(" rows") for name, n in ctx.counts.items()
              if name.startswith("GIDB_") and name.endswith(" rows") and n >= threshold]
    if not loaded:
        return
    from gim.schema import metadata

    with ctx.engine.connect() as conn:
        ops_for(conn).analyze(conn, [metadata.tables[name] for name in loaded])
        conn.commit()
    ctx.count("tables analyzed", len(loaded))


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


def _open(ctx: JobContext, name: str, daps: list[Dap], role: str) -> Source:
    idbs, failures = [], []
    for d in daps:
        engine = make_engine(d.url, label=f"DAP {d.name}")
        try:
            check_connection(engine)
            with engine.connect() as conn:
                clock = ops_for(conn).clock(conn)
        except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
            engine.dispose()
            failures.append(exc.message if isinstance(exc, DatabaseUnavailable)
                            else f"DAP {d.name}: {describe_db_error(exc)}")
            continue
        idbs.append(Idb(dap=d, engine=engine, key=_data_source_key(ctx, d), clock=clock))
    if not idbs:
        raise DatabaseUnavailable("; ".join(failures))
    for text in failures:
        ctx.note(f"{text}; extracting {name} from its HA partner")
    for i in idbs:
        ensure_indexes(ctx, i)
        i.now = min(i.clock, _newest(i))
        i.domains[role] = _domains(i, role)
    return Source(name=name, idbs=idbs)


def _data_source_key(ctx: JobContext, dap: Dap) -> int:
    now = int(time.time())
    with write_tx(ctx.engine) as conn:
        row = conn.execute(sa.select(CTL_DS.c.DATA_SOURCE_KEY).where(
            CTL_DS.c.DAP_NAME == dap.name)).first()
        values = {"HA_SET": dap.ha_set, "SOURCE_NAME": dap.ha_set or dap.name,
                  "ROLES": ",".join(dap.roles), "TENANT": dap.tenant, "UPDATED_TS": now}
        if row is not None:
            conn.execute(sa.update(CTL_DS).where(CTL_DS.c.DAP_NAME == dap.name)
                         .values(**values))
            return row[0]
        key = ops_for(conn).allocate_keys(conn, "DATA_SOURCE_KEY")
        conn.execute(CTL_DS.insert().values(DATA_SOURCE_KEY=key, DAP_NAME=dap.name,
                                            CREATED_TS=now, **values))
        return key


def ensure_indexes(ctx: JobContext, idb: Idb) -> int:
    """Create the indexes extraction needs that the IDB lacks; a read-only DAP is told."""
    created = 0
    try:
        with idb.engine.connect() as conn:
            ops = ops_for(conn)
            existing = ops.table_names(conn)
            have: set[str] = set()
            for index in extraction_indexes():
                if index.table in existing and index.table not in have:
                    have |= {i["name"] for i in sa.inspect(conn).get_indexes(
                        ops.fold(index.table))}
                    have.add(index.table)
            for index in extraction_indexes():
                if index.table in existing and index.name not in have:
                    conn.exec_driver_sql(index.ddl())
                    created += 1
            conn.commit()
    except sa.exc.DBAPIError as exc:
        ctx.note(f"DAP {idb.dap.name}: could not create extraction indexes "
                 f"({describe_db_error(exc)}); extraction will be slower")
        return 0
    if created:
        ctx.count("IDB indexes created", created)
    return created


def _newest(idb: Idb) -> int:
    """Where the source has got to: the newest time any extracted table of the IDB holds
    (all roles count, so that a table changing rarely, such as configuration, does not
    wait for its own next change to pass the safety lag), or the last event ICON's
    data-source sessions say it stored, if later (an idle contact center still moves on)."""
    newest = 0
    with idb.engine.connect() as conn:
        names = ops_for(conn).table_names(conn)
        for table in {c.source for c in COPIES if c.time_column}:
            if table.name in names:
                column = table.c[table.info["time_column"]]
                newest = max(newest, conn.execute(sa.select(sa.func.max(column))).scalar() or 0)
        for table in idb_metadata.sorted_tables:
            if table.info["kind"] == "dss" and table.name in names:
                for column in ("LEVENT_ITS", "DSCONN_ETS", "ICON_ETS"):
                    value = conn.execute(sa.select(sa.func.max(table.c[column]))).scalar()
                    newest = max(newest, value or 0)
    return newest


def _dss_rows(idb: Idb, provider: sa.Table) -> list[Any] | None:
    with idb.engine.connect() as conn:
        if not ops_for(conn).table_exists(conn, provider.name):
            return None
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
            raise ConfigError(f"DAP {idb.dap.name} has roles {role} and {other}, but its IDB "
                              "has no G_DSS_* rows to tell voice from multimedia apart "
                              "(ICON's use-dss-monitor); give each its own DAP")
        return None
    return tuple(sorted(ids))


def _coverage(idb: Idb, role: str, provider: sa.Table) -> list[tuple[int, int]] | None:
    """The intervals during which the IDB recorded the provider's data without a gap, from
    its data-source sessions (first stored event to disconnection or ICON stop, or to now
    for a session still open). None when the IDB keeps no session information."""
    key = (role, provider.name)
    if key not in idb.coverage:
        rows = _dss_rows(idb, provider)
        if not rows:
            idb.coverage[key] = None
        else:
            wanted = int(ROLE_DS_TYPE[role])
            spans = []
            for r in rows:
                if r.DS_TYPE != wanted:
                    continue
                begin = r.FEVENT_ITS or r.DSCONN_STS or 0
                ends = [t for t in (r.DSCONN_ETS, r.ICON_ETS) if t is not None]
                end = min(ends) if ends else idb.clock + 1
                if end > begin:
                    spans.append((begin, end))
            idb.coverage[key] = spans
    return idb.coverage[key]


# --------------------------------------------------------------------------------------------
# Extracting a source


def extract_source(ctx: JobContext, source: Source, role: str) -> int:
    copies = [c for c in copies_for(role)]
    total = 0
    with ctx.progress.task(f"extracting {source.name} ({role})", total=len(copies)) as advance:
        for copy in copies:
            total += extract_table(ctx, source, copy)
            advance(1)
    return total


def _mark(ctx: JobContext, source: Source, copy: Copy) -> int | None:
    with ctx.engine.connect() as conn:
        return conn.execute(sa.select(CTL_EXTRACT_HWM.c.MARK_TS).where(
            CTL_EXTRACT_HWM.c.SOURCE_NAME == source.name,
            CTL_EXTRACT_HWM.c.TABLE_NAME == copy.target.name)).scalar()


def _floor(ctx: JobContext, role: str) -> int:
    """Configuration history is taken whole; other data from the ETL start date on."""
    if role == "ICON_CFG":
        return 0
    with ctx.engine.connect() as conn:
        start = conn.execute(sa.select(CTL_INFOMART_SETTINGS.c.SETTING_VALUE).where(
            CTL_INFOMART_SETTINGS.c.SETTING_NAME == "etl-start-date")).scalar()
    day = dt.date.fromisoformat(start) if start else dt.datetime.now(dt.UTC).date()
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


def extract_table(ctx: JobContext, source: Source, copy: Copy) -> int:
    if not any(_has_table(i, copy.source) for i in source.idbs):
        return 0
    if copy.time_column is None:
        return _copy_whole(ctx, source, copy)
    cfg = ctx.config
    lag = cfg.get("gim-etl", "extract-data-safety-lag")
    chunk = cfg.get("gim-etl", "extract-data-chunk-size")
    stuck = cfg.get("gim-etl", "extract-data-stuck-threshold")
    preferred = _preferred(ctx, source, copy)
    now = preferred.now
    limit = safe_limit(now, lag)
    if copy.completed_only:
        limit = hold_back_limit(limit, _oldest_active(preferred, copy, now - stuck), now,
                                stuck)
    mark = _mark(ctx, source, copy)
    if copy.role == "ICON_CFG":
        # All new and changed configuration in one cycle: one window, one transaction.
        chunk = max(1, limit - (mark if mark is not None else 0))
    windows = next_windows(mark, _floor(ctx, copy.role), limit, chunk)
    if not windows:
        return 0
    busy = _busy_windows(preferred, copy, windows, now - stuck) if not source.ha else None
    rows = 0
    for window in windows:
        if busy is not None and window.start not in busy and window is not windows[-1]:
            continue  # empty: the next loaded window's mark moves past it
        for part, idb in _assign(source, copy, window, stuck, preferred):
            if idb is None:
                ctx.note(f"{source.name}: no IDB holds {copy.source.name} data for "
                         f"{_iso(part.start)}..{_iso(part.end)} yet; waiting")
                return rows
            rows += load_window(ctx, source, copy, idb, part, now - stuck)
            preferred = idb
    return rows


def _busy_windows(idb: Idb, copy: Copy, windows: list[Window], stuck_before: int) -> set[int]:
    """The starts of the windows that hold rows, found with one query, so that a long run
    of empty windows costs no transaction each."""
    first, chunk = windows[0].start, windows[0].end - windows[0].start
    column = copy.source.c[copy.time_column]
    bucket = ((column - first) // chunk).label("BUCKET")
    query = sa.select(bucket).distinct().where(
        *_conditions(idb, copy, Window(first, windows[-1].end), stuck_before))
    with idb.engine.connect() as conn:
        return {first + int(b) * chunk for (b,) in conn.execute(query)}


def _has_table(idb: Idb, table: sa.Table) -> bool:
    with idb.engine.connect() as conn:
        return ops_for(conn).table_exists(conn, table.name)


def _preferred(ctx: JobContext, source: Source, copy: Copy) -> Idb:
    """The IDB the previous window came from (to avoid flapping), else the first."""
    with ctx.engine.connect() as conn:
        last = conn.execute(sa.select(CTL_EXTRACT_HWM.c.DAP_NAME).where(
            CTL_EXTRACT_HWM.c.SOURCE_NAME == source.name,
            CTL_EXTRACT_HWM.c.TABLE_NAME == copy.target.name)).scalar()
    return next((i for i in source.idbs if i.dap.name == last), source.idbs[0])


def _assign(source: Source, copy: Copy, window: Window, stuck: int,
            preferred: Idb) -> list[tuple[Window, Idb | None]]:
    """Which IDB to read each part of a window from: one whose data-source sessions show no
    gap over it, preferring the one used last. A part no IDB covers is None (wait), unless
    it is older than the stuck threshold (then the data is not coming: take what there is)."""
    if not source.ha:
        return [(window, preferred)]
    ordered = [preferred] + [i for i in source.idbs if i is not preferred]
    cover = {i.dap.name: _coverage(i, copy.role, copy.provider) for i in ordered}
    if any(c is None for c in cover.values()):
        return [(window, preferred)]  # an IDB without session information: cannot judge
    cuts: set[int] = set()
    for spans in cover.values():
        for begin, end in spans:
            cuts |= {begin, end}
    out: list[tuple[Window, Idb | None]] = []
    for part in split_window(window, cuts):
        chosen = next((i for i in ordered if not coverage_gaps(part, cover[i.dap.name])), None)
        if chosen is None and part.end <= preferred.now - stuck:
            chosen = preferred
        out.append((part, chosen))
        if chosen is None:
            break
    return out


def _oldest_active(idb: Idb, copy: Copy, stuck_before: int) -> int | None:
    """The last change of the oldest voice call still active and not yet stuck."""
    c = copy.source.c
    query = sa.select(sa.func.min(c.LASTCHANGE_TS)).where(
        c.STATE != int(IrState.TERMINATED), c.CREATED_TS >= stuck_before,
        *_role_conditions(idb, copy))
    with idb.engine.connect() as conn:
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


def _source_query(idb: Idb, copy: Copy, window: Window | None, audit: int,
                  stuck_before: int) -> sa.Select:
    src = copy.source.c
    start = src[copy.start_column] if copy.start_column else None
    start_key = ((start // 900) * 900) if start is not None else sa.null()
    query = sa.select(sa.literal(idb.key, sa.Integer).label("DATA_SOURCE_KEY"),
                      *(src[c] for c in copy.columns),
                      sa.cast(start_key, sa.Integer).label("START_DATE_TIME_KEY"),
                      sa.literal(audit, sa.BigInteger).label("CREATE_AUDIT_KEY"),
                      sa.literal(audit, sa.BigInteger).label("UPDATE_AUDIT_KEY"))
    return query.where(*_conditions(idb, copy, window, stuck_before))


def load_window(ctx: JobContext, source: Source, copy: Copy, idb: Idb, window: Window,
                stuck_before: int) -> int:
    """One Info Mart transaction: the window's rows, its audit and history rows, the mark."""
    started = time.time()
    target = copy.target
    batch = ctx.config.get("gim-etl", "extract-data-batch-rows")
    with write_tx(ctx.engine) as conn:
        ops = ops_for(conn)
        audit = ops.allocate_keys(conn, "AUDIT_KEY")
        query = _source_query(idb, copy, window, audit, stuck_before)
        loaded = _load_history(conn, idb, copy, query, audit, batch)
        if loaded is None:
            if stage(conn, idb, query, ops.temp_copy(conn, target), target, batch):
                loaded = _merge_staged(conn, target, copy, source, idb)
            else:
                loaded = (0, None, None)
        count, lo, hi = loaded
        if count:
            ctx.new_audit_key(conn, key=audit, min_key=lo or 0, max_key=hi or 0,
                              row_count=count, max_chunk_ts=window.end - 1,
                              data_source_key=idb.key, dap_name=idb.dap.name,
                              table_name=target.name)
            _history(conn, ctx, copy, idb, window, count, audit, started)
        _advance(conn, ctx, source, copy, idb, window, count, audit)
    if count:
        ctx.count(f"{target.name} rows", count)
    return count


def _load_history(conn: Connection, idb: Idb, copy: Copy, query: sa.Select, audit: int,
                  batch: int) -> tuple[int, int | None, int | None] | None:
    """Insert-only IDB tables: windows never overlap and a window commits whole, so its rows
    cannot be in the GIDB table yet and go straight in, with no staging and no upsert. If
    they are there after all (a mark reset by hand), this returns None and the caller takes
    the replacing path."""
    if copy.source.info["kind"] != "history":
        return None
    target = copy.target
    savepoint = conn.begin_nested()
    try:
        stage(conn, idb, query, target.name, target, batch)
        savepoint.commit()
    except sa.exc.IntegrityError:
        savepoint.rollback()
        return None
    count, lo, hi = conn.execute(
        sa.select(sa.func.count(), sa.func.min(target.c.START_DATE_TIME_KEY),
                  sa.func.max(target.c.START_DATE_TIME_KEY))
        .where(target.c.UPDATE_AUDIT_KEY == audit)).one()
    return count, lo, hi


def stage(conn: Connection, idb: Idb, query: sa.Select, into: str, target: sa.Table,
          batch_rows: int) -> int:
    """Stream the query's rows from the IDB into the table `into` (shaped like `target`);
    returns the row count. PostgreSQL to PostgreSQL is a COPY TO piped into a COPY FROM;
    other pairs move bounded batches of rows."""
    ops = ops_for(conn)
    columns = [c.name for c in target.columns]
    if conn.dialect.name == "postgresql" and idb.engine.dialect.name == "postgresql":
        sql = str(query.compile(dialect=idb.engine.dialect,
                                compile_kwargs={"literal_binds": True}))
        count = 0
        with idb.engine.connect() as src:
            raw_src = src.connection.driver_connection
            raw_dst = conn.connection.driver_connection
            with raw_src.cursor() as out_cur, raw_dst.cursor() as in_cur, \
                    out_cur.copy(f"COPY ({sql}) TO STDOUT") as out_copy, \
                    in_cur.copy(f"COPY {ops.fold(into)} ({', '.join(columns)}) "
                                "FROM STDIN") as in_copy:
                # COPY TO hands over one row at a time; writing them in blocks saves most of
                # the per-call cost.
                block: list[bytes] = []
                for data in out_copy:
                    block.append(data)
                    if len(block) >= 512:
                        in_copy.write(b"".join(block))
                        count += len(block)
                        block = []
                if block:
                    in_copy.write(b"".join(block))
                    count += len(block)
        return count
    count = 0
    with idb.engine.connect() as src:
        result = src.execution_options(stream_results=True, yield_per=batch_rows).execute(
            query)
        for batch in result.partitions(batch_rows):
            count += ops.bulk_insert(conn, _named(target, into), (tuple(r) for r in batch),
                                     columns)
    return count


@functools.lru_cache(maxsize=256)
def _named(target: sa.Table, name: str) -> sa.Table:
    """A Table object with target's columns under another name (for loaders)."""
    md = sa.MetaData()
    return sa.Table(name, md, *(sa.Column(c.name, c.type, quote=False)
                                for c in target.columns), quote=False)


def _merge_staged(conn: Connection, target: sa.Table, copy: Copy, source: Source,
                  idb: Idb) -> tuple[int, int | None, int | None]:
    """Staged rows into the GIDB table: insert, or replace the version loaded before (keeping
    its CREATE_AUDIT_KEY). In an HA set, a row ICON updates in place replaces the same row
    (by natural key) loaded earlier from the partner IDB."""
    ops = ops_for(conn)
    temp = ops.temp_name(target)
    key = [c.name for c in target.primary_key.columns]
    columns = [c.name for c in target.columns]
    ops.upsert_from(conn, target, temp, columns, key,
                    update=[c for c in columns if c not in key and c != "CREATE_AUDIT_KEY"])
    if source.ha and copy.natural_key:
        partners = {k for k in _other_keys(conn, source) if k != idb.key}
        match = " AND ".join(f"s.{k} = g.{k}" for k in copy.natural_key)
        conn.exec_driver_sql(
            f"DELETE FROM {target.name} WHERE DATA_SOURCE_KEY IN "
            f"({', '.join(str(int(k)) for k in partners)}) AND EXISTS (SELECT 1 FROM "
            f"{temp} s WHERE {match.replace('g.', target.name + '.')})")
    count, lo, hi = conn.exec_driver_sql(
        f"SELECT COUNT(*), MIN(START_DATE_TIME_KEY), MAX(START_DATE_TIME_KEY) "
        f"FROM {temp}").one()
    conn.exec_driver_sql(f"DELETE FROM {temp}")
    return count, lo, hi


def _other_keys(conn: Connection, source: Source) -> list[int]:
    """The keys of every DAP the set has ever had (reachable now or not)."""
    rows = conn.execute(sa.select(CTL_DS.c.DATA_SOURCE_KEY).where(
        CTL_DS.c.SOURCE_NAME == source.name)).scalars().all()
    return list(rows)


def _history(conn: Connection, ctx: JobContext, copy: Copy, idb: Idb, window: Window,
             count: int, audit: int, started: float) -> None:
    now = time.time()
    conn.execute(CTL_EXTRACT_HISTORY.insert().values(
        TABLE_NAME=copy.source.name, DATA_SOURCE_KEY=idb.key,
        DATA_SOURCE_TYPE=DATA_SOURCE_TYPE[copy.role], ROW_COUNT=count,
        MAX_TIME=_utc(window.end - 1), MAX_TS=window.end - 1, ICON_DBID=0, DSS_ID=None,
        PROVIDERTAG=None, EXTRACT_START_TIME=_utc(started), EXTRACT_END_TIME=_utc(now),
        JOB_ID=ctx.job_id, JOB_NAME="Job_ExtractICON", JOB_VERSION=__version__,
        DAP_NAME=idb.dap.name, CREATE_AUDIT_KEY=audit, CREATED_TS=int(now)))


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


def _advance(conn: Connection, ctx: JobContext, source: Source, copy: Copy, idb: Idb,
             window: Window, count: int, audit: int) -> None:
    hwm = CTL_EXTRACT_HWM
    stmt = ops_for(conn).insert(hwm).values(
        SOURCE_NAME=source.name, TABLE_NAME=copy.target.name, MARK_TS=window.end,
        DAP_NAME=idb.dap.name, ROW_COUNT=count, JOB_ID=ctx.job_id,
        AUDIT_KEY=audit if count else 0, UPDATED_TS=int(time.time()))
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[hwm.c.SOURCE_NAME, hwm.c.TABLE_NAME],
        set_={"MARK_TS": stmt.excluded.MARK_TS, "DAP_NAME": stmt.excluded.DAP_NAME,
              "ROW_COUNT": hwm.c.ROW_COUNT + stmt.excluded.ROW_COUNT,
              "JOB_ID": stmt.excluded.JOB_ID,
              "AUDIT_KEY": sa.case((stmt.excluded.ROW_COUNT > 0, stmt.excluded.AUDIT_KEY),
                                   else_=hwm.c.AUDIT_KEY),
              "UPDATED_TS": stmt.excluded.UPDATED_TS}))


def _copy_whole(ctx: JobContext, source: Source, copy: Copy) -> int:
    """Tables without a time column (dictionaries): copied once per source."""
    with ctx.engine.connect() as conn:
        present = conn.execute(sa.select(sa.func.count()).select_from(copy.target)).scalar()
    if present:
        return 0
    idb = source.idbs[0]
    with write_tx(ctx.engine) as conn:
        ops = ops_for(conn)
        audit = ops.allocate_keys(conn, "AUDIT_KEY")
        stage(conn, idb, _source_query(idb, copy, None, audit, 0),
              ops.temp_copy(conn, copy.target), copy.target,
              ctx.config.get("gim-etl", "extract-data-batch-rows"))
        count, _, _ = _merge_staged(conn, copy.target, copy, source, idb)
        ctx.new_audit_key(conn, key=audit, row_count=count, data_source_key=idb.key,
                          dap_name=idb.dap.name, table_name=copy.target.name)
    if count:
        ctx.count(f"{copy.target.name} rows", count)
    return count
