"""Job_TransformGIM: turn extracted GIDB rows into the dimensional model.

1. Configuration dimensions are brought up to date from the GIDB configuration copies.
2. The extraction chunks (audit keys) not consumed yet are read: the interactions and login
   sessions their rows belong to become pending, and the chunks are recorded consumed
   (CTL_TRANSFORM_HISTORY), in one transaction.
3. Pending login sessions are recomputed, then pending interactions that are ready (their
   secondary data extracted past their end, agents' after-call work over), in chunks: each
   chunk's facts, its aggregation-queue entries and the removal of its pending entries
   commit together. An interaction waiting longer than dependency-wait-timeout goes ahead.
4. Active interactions older than days-to-keep-active-facts are terminated artificially
   (open agent facts reach their limits in step 3: login sessions whose open states passed
   max-state-duration, or which have been open for days-to-keep-active-facts, are made
   pending first).

Every transaction that changes facts queues, in CTL_AGG_QUEUE, every 15-minute interval the
changed interactions or sessions covered before the change and cover after it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gim import parallel
from gim.db import ops_for, write_tx
from gim.jobs import gidb_indexes, merge
from gim.runner import JobContext
from gim.schema import facts as f
from gim.schema.control import CTL_DS, CTL_EXTRACT_HWM, CTL_TRANSFORM_HISTORY
from gim.transform import agents, dimensions, interactions
from gim.transform.sqlkit import CUT_COUNT, count, drop, queue_spans, run, take_cut, temp

# GIDB tables whose rows make an interaction pending: those its facts are computed from
# (the call's statistics, history and routing results are not read: they change no fact),
# and how to reach its root IRID.
_BY_CALL = ("G_PARTY", "G_USERDATA_HISTORY", "G_VIRTUAL_QUEUE")
_BY_PARTY = ("G_PARTY_HISTORY",)
_SESSION_TABLES = (("G_LOGIN_SESSION", "LOGINSESSIONID"),
                   ("G_AGENT_STATE_HISTORY", "LOGINSESSIONID"),
                   ("G_AGENT_STATE_RC", "SESSIONID"), ("G_DND_HISTORY", "LOGINSESSIONID"))
# Every GIDB table the transformation reads (for the benchmark's baseline, a copy of the
# same rows).
GIDB_READ = (*dimensions.CFG_TABLES, *(
    f"GIDB_{t}{s}" for s in ("_V", "_MM")
    for t in ("G_CALL", *_BY_CALL, *_BY_PARTY, *(t for t, _ in _SESSION_TABLES))),
    "GIDB_GM_F_USERDATA")
# Tables whose extraction must have passed an interaction's end before it is transformed.
_DEPENDENCIES = ("G_PARTY", "G_PARTY_HISTORY", "G_USERDATA_HISTORY", "G_AGENT_STATE_HISTORY")


def run_job(ctx: JobContext) -> str:
    started = time.time()
    with ctx.engine.connect() as conn:  # a mapping it cannot apply stops it before it begins
        interactions.user_data_mapping(conn)
    # An extraction killed during a first load may have left GIDB indexes unmade.
    gidb_indexes.ensure_job(ctx, gidb_indexes.gidb_tables())
    with write_tx(ctx.engine) as conn:
        take_cut(conn)
        audit = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
        n = dimensions.refresh(conn, audit)
        cut = take_cut(conn)
        if n:
            ctx.new_audit_key(conn, key=audit, row_count=n, table_name="dimensions")
            ctx.count("dimension rows", n)
    if cut:
        ctx.count(CUT_COUNT, cut)
    consumed = collect(ctx, started)
    with write_tx(ctx.engine) as conn:
        audit = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
        if _orphans(ctx, conn, audit, int(time.time())):
            ctx.new_audit_key(conn, key=audit, table_name=f.STG_TRANSFORM_DISCARDS.name)
    _expire_sessions(ctx)
    sessions, done, waiting = _recompute(ctx)
    closed = terminate_long_active(ctx)
    parts = [f"{consumed} extraction chunks read", f"{sessions} login sessions",
             f"{done} interactions"]
    if waiting:
        parts.append(f"{waiting} interactions waiting for their data")
    if closed:
        parts.append(f"{closed} interactions terminated artificially")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Step 2: what changed


def collect(ctx: JobContext, started: float) -> int:
    """Make pending every interaction and session that unconsumed extraction chunks touched,
    and record those chunks consumed, in one transaction. Returns the chunks read."""
    now = int(time.time())
    with write_tx(ctx.engine) as conn:
        chunks = temp(conn, "tx_chunks", """
            SELECT a.AUDIT_KEY, a.TABLE_NAME, a.ROW_COUNT FROM CTL_AUDIT_LOG a
            WHERE a.JOB_NAME = 'extract' AND a.ROW_COUNT > 0 AND NOT EXISTS (
                SELECT 1 FROM CTL_TRANSFORM_HISTORY h WHERE h.HWM_VALUE = a.AUDIT_KEY)""")
        n = count(conn, chunks)
        if not n:
            drop(conn, chunks)
            return 0
        audit = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
        keys = f"(SELECT AUDIT_KEY FROM {chunks})"
        # Every extraction chunk loads one GIDB table under its own audit key: each table
        # is read for the keys of its own chunks, tables without new chunks not at all.
        loaded = {t for (t,) in run(conn, f"SELECT DISTINCT TABLE_NAME FROM {chunks}")}

        def new_rows(table: str) -> str:
            return (f"UPDATE_AUDIT_KEY IN (SELECT AUDIT_KEY FROM {chunks} "
                    f"WHERE TABLE_NAME = '{table}')")

        for suffix in ("_V", "_MM"):
            call = f"GIDB_G_CALL{suffix}"
            # The calls whose rows changed (deduplicated), then their interactions.
            by_call = [f"SELECT DATA_SOURCE_KEY, CALLID FROM {t} WHERE {new_rows(t)}"
                       for t in (call, *(f"GIDB_{t}{suffix}" for t in _BY_CALL),
                                 *(("GIDB_GM_F_USERDATA",) if suffix == "_MM" else ()))
                       if t in loaded]
            by_party = [f"SELECT DATA_SOURCE_KEY, PARTYID FROM {t} WHERE {new_rows(t)}"
                        for t in (f"GIDB_{t}{suffix}" for t in _BY_PARTY) if t in loaded]
            if by_party:
                by_call.append(f"""
                    SELECT p.DATA_SOURCE_KEY, p.CALLID FROM GIDB_G_PARTY{suffix} p
                    JOIN ({' UNION '.join(by_party)}) x
                         ON x.DATA_SOURCE_KEY = p.DATA_SOURCE_KEY AND x.PARTYID = p.PARTYID""")
            if by_call:
                changed = temp(conn, "tx_changed", " UNION ".join(by_call))
                _pending(conn, "interaction", f"""
                    SELECT c.{interactions.root_source(suffix)} AS DATA_SOURCE_KEY,
                           c.{interactions.root(suffix)} AS ENTITY_ID
                    FROM {changed} x
                    JOIN {call} c ON c.DATA_SOURCE_KEY = x.DATA_SOURCE_KEY
                         AND c.CALLID = x.CALLID""", now)
                drop(conn, changed)
            sessions = [f"SELECT DATA_SOURCE_KEY, {column} AS ENTITY_ID FROM "
                        f"GIDB_{table}{suffix} WHERE {new_rows(f'GIDB_{table}{suffix}')}"
                        for table, column in _SESSION_TABLES
                        if f"GIDB_{table}{suffix}" in loaded]
            if sessions:
                _pending(conn, "session", " UNION ".join(sessions), now)
        _orphan_candidates(conn, keys, now)
        run(conn, f"""INSERT INTO CTL_TRANSFORM_HISTORY (JOB_ID, JOB_VERSION, HWM_NAME,
            HWM_VALUE, HWM_VALUE2, TRANSFORM_START_TIME, TRANSFORM_END_TIME, ROW_COUNT,
            AUDIT_KEY, CREATED_TS)
            SELECT :job, :version, TABLE_NAME, AUDIT_KEY, NULL, :began, :ended, ROW_COUNT,
                   {audit}, {now} FROM {chunks}""",
            job=ctx.job_id, version=__import__("gim").__version__,
            began=_utc(started), ended=_utc(time.time()))
        ctx.new_audit_key(conn, key=audit, row_count=n, table_name=CTL_TRANSFORM_HISTORY.name)
        drop(conn, chunks)
    ctx.count("extraction chunks read", n)
    return n


def _utc(ts: float):  # noqa: ANN202
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


def _pending(conn: Connection, kind: str, select_sql: str, now: int) -> None:
    """`select_sql` yields DATA_SOURCE_KEY and ENTITY_ID columns."""
    run(conn, f"""INSERT INTO CTL_TRANSFORM_PENDING (KIND, DATA_SOURCE_KEY, ENTITY_ID, SINCE_TS)
        SELECT DISTINCT '{kind}', x.DATA_SOURCE_KEY, x.ENTITY_ID, {now} FROM ({select_sql}) x
        WHERE x.ENTITY_ID IS NOT NULL
        ON CONFLICT (KIND, DATA_SOURCE_KEY, ENTITY_ID) DO NOTHING""")


def _orphan_candidates(conn: Connection, keys: str, now: int) -> None:
    """Parties of the new chunks whose call is not (yet) in the Info Mart wait as
    candidate orphans."""
    for suffix in ("_V", "_MM"):
        _pending(conn, f"orphan{suffix}", f"""
            SELECT p.DATA_SOURCE_KEY, p.PARTYID AS ENTITY_ID FROM GIDB_G_PARTY{suffix} p
            WHERE p.UPDATE_AUDIT_KEY IN {keys} AND NOT EXISTS (SELECT 1 FROM
                GIDB_G_CALL{suffix} c WHERE c.DATA_SOURCE_KEY = p.DATA_SOURCE_KEY
                AND c.CALLID = p.CALLID)""", now)


def _orphans(ctx: JobContext, conn: Connection, audit: int, now: int) -> int:
    """Candidate orphans whose call arrived stop waiting; those whose call's extraction has
    passed their end by more than max-call-duration have no call: they are discarded."""
    policy = ctx.config.get("error-policy", "error-policy-irf-exception")
    slack = ctx.config.get("gim-etl", "max-call-duration")
    total = 0
    for suffix in ("_V", "_MM"):
        kind, table = f"orphan{suffix}", f"GIDB_G_PARTY{suffix}"
        # A voice call extracted but waiting to merge is there: its parties wait with it.
        waiting = ("" if suffix != "_V" else f""" AND NOT EXISTS (SELECT 1 FROM
            {merge.WAITING.name} w WHERE w.DATA_SOURCE_KEY = p.DATA_SOURCE_KEY
            AND w.CALLID = p.CALLID)""")
        run(conn, f"""DELETE FROM CTL_TRANSFORM_PENDING WHERE KIND = '{kind}' AND EXISTS (
            SELECT 1 FROM {table} p JOIN GIDB_G_CALL{suffix} c ON c.DATA_SOURCE_KEY =
                 p.DATA_SOURCE_KEY AND c.CALLID = p.CALLID
            WHERE p.DATA_SOURCE_KEY = CTL_TRANSFORM_PENDING.DATA_SOURCE_KEY
            AND p.PARTYID = CTL_TRANSFORM_PENDING.ENTITY_ID)""")
        orphans = temp(conn, "tx_orphans", f"""
            SELECT DISTINCT o.DATA_SOURCE_KEY, o.ENTITY_ID FROM CTL_TRANSFORM_PENDING o
            JOIN {table} p ON p.DATA_SOURCE_KEY = o.DATA_SOURCE_KEY
                 AND p.PARTYID = o.ENTITY_ID
            JOIN CTL_DS d ON d.DATA_SOURCE_KEY = p.DATA_SOURCE_KEY
            JOIN CTL_EXTRACT_HWM m ON m.SOURCE_NAME = d.SOURCE_NAME
                 AND m.TABLE_NAME = 'GIDB_G_CALL{suffix}'
            WHERE o.KIND = '{kind}' AND p.TERMINATED_TS IS NOT NULL
            AND p.TERMINATED_TS + {slack} < m.MARK_TS{waiting}""")
        n = count(conn, orphans)
        if n and policy == "exception":
            from gim.errors import JobFailed

            raise JobFailed(f"{n} party row(s) of {table} name a call that does not exist "
                            "(error-policy-irf-exception = exception)")
        if n and policy == "log_db_resume":
            run(conn, f"""INSERT INTO STG_TRANSFORM_DISCARDS (TABLE_NAME, GUID, CODE,
                INTERACTION_ID, CREATE_AUDIT_KEY, REASON, ETL_TS, ETL_DATE_TIME_KEY)
                SELECT '{table}', ENTITY_ID, {interactions.CODE_ORPHAN}, -2, {audit},
                       'party of a call that does not exist', {now}, {(now // 900) * 900}
                FROM {orphans} WHERE 1 = 1
                ON CONFLICT (TABLE_NAME, GUID, CODE) DO NOTHING""")
        if n:
            ctx.count("discarded (party of a call that does not exist)", n)
            _done(conn, kind, orphans)
            total += n
        drop(conn, orphans)
    return total


# --------------------------------------------------------------------------------------------
# Step 3: recomputing


def _chunks_of(one: Callable[[], Iterator[_Chunk]]) -> list[_Chunk]:
    return list(one())


def _session_range(ctx: JobContext, after: str | None, upto: str | None, size: int,
                   stop: threading.Event) -> Iterator[_Chunk]:
    """The pending login sessions of ids in (after, upto], in transactions of at most
    `size` (more only when an id is pending from several data sources)."""
    last = after
    while not stop.is_set():
        with write_tx(ctx.engine) as conn:
            take_cut(conn)
            chunk = temp(conn, "tx_pending", f"""
                SELECT DATA_SOURCE_KEY, ENTITY_ID, SINCE_TS FROM CTL_TRANSFORM_PENDING
                WHERE {_range_condition("session", last, upto)}
                ORDER BY ENTITY_ID LIMIT {size}""", last=last, upto=upto)
            n = count(conn, chunk)
            if not n:
                drop(conn, chunk)
                return
            last = run(conn, f"SELECT MAX(ENTITY_ID) FROM {chunk}").scalar_one()
            audit = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
            counts = agents.transform_sessions(conn, chunk, audit, _limits(ctx, conn),
                                               int(time.time()))
            counts[CUT_COUNT] = take_cut(conn)
            _done(conn, "session", chunk)
            rows = sum(v for k, v in counts.items() if k.endswith("rows"))
            ctx.new_audit_key(conn, key=audit, row_count=rows, table_name="SM_* facts",
                              **_key_range(conn, SESSION_TABLES, audit))
            drop(conn, chunk)
        yield _Chunk(sessions=n, counts={k: v for k, v in counts.items() if v})


def _range_condition(kind: str, after: str | None, upto: str | None) -> str:
    """Pending entries of `kind` with ids in (:last, :upto] (None: no bound)."""
    return " AND ".join([f"KIND = '{kind}'"]
                        + ([] if after is None else ["ENTITY_ID > :last"])
                        + ([] if upto is None else ["ENTITY_ID <= :upto"]))


# Tables whose extraction must have passed a time before an agent's state then is known.
_SESSION_DEPENDENCIES = ("G_LOGIN_SESSION", "G_AGENT_STATE_HISTORY", "G_AGENT_STATE_RC",
                         "G_DND_HISTORY")


def _session_horizon(conn: Connection) -> str:
    """SQL over b.DATA_SOURCE_KEY and b.IS_MM: the time up to which every table of agent
    activity of that data source and media kind has been extracted."""
    marks = _marks(conn, _SESSION_DEPENDENCIES)
    whens = " ".join(f"WHEN b.DATA_SOURCE_KEY = {k} AND b.IS_MM = "
                     f"{1 if suffix == '_MM' else 0} THEN {m}"
                     for (k, suffix), m in sorted(marks.items()))
    return f"(CASE {whens} ELSE 0 END)" if whens else "0"


def _limits(ctx: JobContext, conn: Connection) -> agents.Limits:
    factor = ctx.config.get("gim-etl", "factor-dnd-into-sm-resource-states")
    priority = [p.upper() for p in
                ctx.config.get("gim-transformation", "sm-resource-state-priority")]
    # DND counts as not ready: it overrides the states NOT_READY outranks, and not ready.
    below = priority[priority.index("NOT_READY"):]
    return agents.Limits(
        max_state=ctx.config.get("gim-transformation", "max-state-duration"),
        max_session=ctx.config.get("gim-etl", "days-to-keep-active-facts") * 86400,
        horizon=_session_horizon(conn),
        dnd_voice=factor == "true", dnd_mm=factor in ("true", "default"),
        dnd_wins=tuple(agents.PRIORITY_KEYS[p] for p in below))


def _expire_sessions(ctx: JobContext) -> None:
    """Sessions with an open state or reason older than max-state-duration, or open for
    longer than days-to-keep-active-facts, by what has been extracted, are recomputed:
    their open facts end at those limits."""
    with write_tx(ctx.engine) as conn:
        limits = _limits(ctx, conn)
        voice = "(SELECT MEDIA_TYPE_KEY FROM MEDIA_TYPE WHERE MEDIA_NAME_CODE = 'VOICE')"
        due = " UNION ".join(f"""
            SELECT b.DATA_SOURCE_KEY, b.LOGIN_SESSION_ID AS ENTITY_ID FROM (
                SELECT s.DATA_SOURCE_KEY, s.LOGIN_SESSION_ID, x.START_TS,
                       CASE WHEN s.MEDIA_TYPE_KEY = {voice} THEN 0 ELSE 1 END AS IS_MM
                FROM {table.name} x JOIN SM_RES_SESSION_FACT s
                     ON s.SM_RES_SESSION_FACT_KEY = x.SM_RES_SESSION_FACT_KEY
                WHERE x.ACTIVE_FLAG = 1) b
            WHERE b.START_TS + {limit} <= {limits.horizon}"""
                             for table, limit in (
                                 (f.SM_RES_SESSION_FACT, limits.max_session),
                                 (f.SM_RES_STATE_FACT, limits.max_state),
                                 (f.SM_RES_STATE_REASON_FACT, limits.max_state)))
        _pending(conn, "session", due, int(time.time()))


def _done(conn: Connection, kind: str, chunk: str, where: str = "") -> None:
    run(conn, f"""DELETE FROM CTL_TRANSFORM_PENDING WHERE KIND = '{kind}' AND EXISTS (
        SELECT 1 FROM {chunk} c WHERE c.DATA_SOURCE_KEY = CTL_TRANSFORM_PENDING.DATA_SOURCE_KEY
        AND c.ENTITY_ID = CTL_TRANSFORM_PENDING.ENTITY_ID {where})""")


INTERACTION_TABLES = (f.INTERACTION_FACT, f.INTERACTION_RESOURCE_FACT,
                      f.MEDIATION_SEGMENT_FACT, f.IXN_RESOURCE_STATE_FACT,
                      *f.USER_DATA_TABLES)
SESSION_TABLES = (f.SM_RES_SESSION_FACT, f.SM_RES_STATE_FACT, f.SM_RES_STATE_REASON_FACT)


def _key_range(conn: Connection, tables: tuple[sa.Table, ...],
               audit: int) -> dict[str, int]:
    """MIN/MAX_START_DATE_TIME_KEY of CTL_AUDIT_LOG: over every row the transaction wrote
    (found by its UPDATE_AUDIT_KEY, which every fact table indexes)."""
    los, his = [], []
    for table in tables:
        lo, hi = conn.execute(sa.select(sa.func.min(table.c.START_DATE_TIME_KEY),
                                        sa.func.max(table.c.START_DATE_TIME_KEY))
                              .where(table.c.UPDATE_AUDIT_KEY == audit)).one()
        if lo is not None:
            los.append(lo)
            his.append(hi)
    return {"min_key": min(los, default=0), "max_key": max(his, default=0)}


def _marks(conn: Connection, tables: tuple[str, ...] = _DEPENDENCIES
           ) -> dict[tuple[int, str], int]:
    """Per (data source key, media suffix): the point up to which every one of `tables`
    (by default those an interaction depends on) has been extracted."""
    rows = conn.execute(sa.select(CTL_DS.c.DATA_SOURCE_KEY, CTL_EXTRACT_HWM.c.TABLE_NAME,
                                  CTL_EXTRACT_HWM.c.MARK_TS)
                        .join(CTL_EXTRACT_HWM,
                              CTL_EXTRACT_HWM.c.SOURCE_NAME == CTL_DS.c.SOURCE_NAME)).all()
    got = {(k, t): m for k, t, m in rows}
    out = {}
    for key in {k for k, _, _ in rows}:
        for suffix in ("_V", "_MM"):
            marks = [got.get((key, f"GIDB_{t}{suffix}")) for t in tables]
            out[(key, suffix)] = min(m for m in marks if m is not None) \
                if any(m is not None for m in marks) else 0
    return out


def _mark_case(marks: dict[tuple[int, str], int], suffix: str) -> str:
    """SQL over v.DATA_SOURCE_KEY: the mark (see _marks) of the data source a call of that
    media suffix comes from (its own, which for a voice call merged across IDBs need not be
    the interaction's)."""
    whens = " ".join(f"WHEN {k} THEN {m}" for (k, s), m in sorted(marks.items())
                     if s == suffix)
    return f"CASE v.DATA_SOURCE_KEY {whens} ELSE 0 END" if whens else "0"


def _drop_hopeless(conn: Connection, cand: str) -> None:
    """Pending interactions that no recomputation will ever take stop waiting (and leave
    `cand`): those terminated artificially, whose later rows are ignored, and those none of
    whose calls is in GIDB any more."""
    hopeless = temp(conn, "tx_hopeless", f"""
        SELECT c.DATA_SOURCE_KEY, c.ENTITY_ID FROM {cand} c
        WHERE EXISTS (SELECT 1 FROM INTERACTION_FACT i
                      WHERE i.MEDIA_SERVER_ROOT_IXN_GUID = c.ENTITY_ID
                      AND i.DATA_SOURCE_KEY = c.DATA_SOURCE_KEY
                      AND i.STATUS = {f.STATUS_ARTIFICIAL_END})
           OR (NOT EXISTS (SELECT 1 FROM GIDB_G_CALL_V v WHERE v.MERGE_SOURCE_KEY =
                           c.DATA_SOURCE_KEY AND v.MERGE_ROOTIRID = c.ENTITY_ID)
               AND NOT EXISTS (SELECT 1 FROM GIDB_G_CALL_MM v WHERE v.DATA_SOURCE_KEY =
                               c.DATA_SOURCE_KEY AND v.ROOTIRID = c.ENTITY_ID))""")
    if count(conn, hopeless):
        _done(conn, "interaction", hopeless)
        run(conn, f"DELETE FROM {cand} WHERE EXISTS (SELECT 1 FROM {hopeless} h WHERE "
                  f"h.DATA_SOURCE_KEY = {cand}.DATA_SOURCE_KEY AND h.ENTITY_ID = "
                  f"{cand}.ENTITY_ID)")
    drop(conn, hopeless)


@dataclass
class _Chunk:
    """What one transaction of sessions or interactions did."""

    sessions: int = 0
    finished: int = 0
    not_ready: int = 0
    late: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _chunk_bounds(ctx: JobContext, kind: str,
                  size: int) -> list[tuple[str | None, str | None]]:
    """The pending entries of `kind` cut, by id, into ranges (after, up to] of about `size`
    each (None: no bound), in order."""
    with ctx.engine.connect() as conn:
        cuts = [v for (v,) in run(conn, f"""
            SELECT ENTITY_ID FROM (
                SELECT ENTITY_ID, ROW_NUMBER() OVER (ORDER BY ENTITY_ID) AS RN
                FROM CTL_TRANSFORM_PENDING WHERE KIND = '{kind}') x
            WHERE x.RN % {int(size)} = 0 ORDER BY ENTITY_ID""")]
    cuts = sorted(set(cuts))
    return list(zip([None, *cuts], [*cuts, None], strict=True))


def _recompute(ctx: JobContext) -> tuple[int, int, int]:
    """Pending login sessions, then interactions, range by range; on PostgreSQL several
    ranges at once, each in transactions of its own (see transform_interactions for what
    they share). On a failure or an interruption, the ranges under way finish the
    transaction they are in (which commits whole or not at all), no other begins, and the
    failure is raised then. Returns the sessions and interactions done, and the
    interactions left waiting."""
    timeout = ctx.config.get("gim-transformation", "dependency-wait-timeout")
    size = ctx.config.get("gim-transformation", "interactions-per-transaction")
    session_size = ctx.config.get("gim-transformation", "sessions-per-transaction")
    stop = threading.Event()
    ranges: list[Callable[[], Iterator[_Chunk]]] = [
        *(functools.partial(_session_range, ctx, after, upto, session_size, stop)
          for after, upto in _chunk_bounds(ctx, "session", session_size)),
        *(functools.partial(_interaction_range, ctx, after, upto, size, timeout, stop)
          for after, upto in _chunk_bounds(ctx, "interaction", size))]
    sessions = done = waiting_total = 0

    def tally(chunk: _Chunk) -> None:
        nonlocal sessions, done, waiting_total
        for key, value in chunk.counts.items():
            ctx.count(key, value)
        if chunk.late:
            ctx.note(f"{chunk.late} interactions went ahead after waiting more than "
                     f"{timeout}s for their data (dependency-wait-timeout)")
        sessions += chunk.sessions
        done += chunk.finished
        waiting_total += chunk.not_ready

    workers = parallel.workers(ctx, "gim-transformation", "transform-thread-pool-size",
                               len(ranges))
    if workers == 1:
        for one in ranges:
            for chunk in one():
                tally(chunk)
    else:
        def tally_all(_: object, chunks: list[_Chunk]) -> None:
            for chunk in chunks:
                tally(chunk)

        parallel.side_by_side(workers, ((one, functools.partial(_chunks_of, one))
                                        for one in ranges), tally_all, stop, "gim-transform")
    with ctx.engine.connect() as conn:
        waiting = conn.execute(sa.text("SELECT COUNT(*) FROM CTL_TRANSFORM_PENDING WHERE "
                                       "KIND = 'interaction'")).scalar_one()
    return sessions, done, waiting


def _interaction_range(ctx: JobContext, after: str | None, upto: str | None, size: int,
                       timeout: int, stop: threading.Event) -> Iterator[_Chunk]:
    """The pending interactions of root IRIDs in (after, upto], in transactions of at most
    `size` (more only when a root IRID is pending from several data sources)."""
    last = after
    while not stop.is_set():
        now = int(time.time())
        with write_tx(ctx.engine) as conn:
            marks = _marks(conn)
            # Ready: every data source holding one of its calls has extracted past its end.
            ready = "COALESCE(x.END_TS, x.LAST_TS) <= x.MARK"
            # The next pending interactions (by id, so that those left waiting are not
            # looked at twice in a run), then those of them that are ready.
            cand = temp(conn, "tx_cand", f"""
                SELECT DATA_SOURCE_KEY, ENTITY_ID, SINCE_TS FROM CTL_TRANSFORM_PENDING
                WHERE {_range_condition("interaction", last, upto)}
                ORDER BY ENTITY_ID LIMIT {size}""", last=last, upto=upto)
            if not count(conn, cand):
                drop(conn, cand)
                return
            last = run(conn, f"SELECT MAX(ENTITY_ID) FROM {cand}").scalar_one()
            run(conn, f"CREATE INDEX IF NOT EXISTS {cand}_ix ON {cand} "
                      f"(DATA_SOURCE_KEY, ENTITY_ID)")
            _drop_hopeless(conn, cand)
            calls = " UNION ALL ".join(f"""
                SELECT v.{interactions.root_source(s)} AS DATA_SOURCE_KEY,
                       v.{interactions.root(s)} AS ROOTIRID, {1 if s == '_MM' else 0} AS IS_MM,
                       CASE WHEN v.STATE <> 2 AND {1 if s == '_MM' else 0} = 0
                            AND NOT EXISTS (SELECT 1 FROM GIDB_G_PARTY{s} p WHERE
                                p.DATA_SOURCE_KEY = v.DATA_SOURCE_KEY AND p.CALLID = v.CALLID
                                AND p.TERMINATED_TS IS NULL) THEN 2 ELSE v.STATE END AS STATE,
                       v.LASTCHANGE_TS, COALESCE(v.TERMINATED_TS, v.LASTCHANGE_TS)
                           AS TERMINATED_TS, {_mark_case(marks, s)} AS MARK
                FROM GIDB_G_CALL{s} v JOIN {cand} q
                     ON q.DATA_SOURCE_KEY = v.{interactions.root_source(s)}
                     AND q.ENTITY_ID = v.{interactions.root(s)}""" for s in ("_V", "_MM"))
            chunk = temp(conn, "tx_roots", f"""
                SELECT p.DATA_SOURCE_KEY, p.ENTITY_ID, p.SINCE_TS, 0 AS DONE
                FROM {cand} p JOIN (
                    SELECT DATA_SOURCE_KEY, ROOTIRID, MAX(IS_MM) AS IS_MM,
                           MAX(LASTCHANGE_TS) AS LAST_TS, MIN(MARK) AS MARK,
                           CASE WHEN SUM(CASE WHEN STATE = 2 THEN 0 ELSE 1 END) > 0
                                THEN NULL ELSE MAX(TERMINATED_TS) END AS END_TS
                    FROM ({calls}) c GROUP BY DATA_SOURCE_KEY, ROOTIRID
                ) x ON x.DATA_SOURCE_KEY = p.DATA_SOURCE_KEY AND x.ROOTIRID = p.ENTITY_ID
                WHERE (x.IS_MM = 1 OR x.END_TS IS NOT NULL OR p.SINCE_TS <= {now - timeout})
                  AND (({ready}) OR p.SINCE_TS <= {now - timeout})""")
            drop(conn, cand)
            if not count(conn, chunk):
                drop(conn, chunk)
                continue
            late = run(conn, f"SELECT COUNT(*) FROM {chunk} WHERE SINCE_TS <= "
                             f"{now - timeout}").scalar_one()
            audit = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
            take_cut(conn)
            result = interactions.transform_interactions(conn, chunk, audit, ctx.config, now,
                                                         timeout)
            result.add(CUT_COUNT, take_cut(conn))
            _done(conn, "interaction", chunk, "AND c.DONE = 1")
            finished = run(conn, f"SELECT COUNT(*) FROM {chunk} WHERE DONE = 1").scalar_one()
            rows = sum(v for k, v in result.counts.items() if k.endswith("rows"))
            ctx.new_audit_key(conn, key=audit, row_count=rows, table_name="interaction facts",
                              **_key_range(conn, INTERACTION_TABLES, audit))
            drop(conn, chunk)
        yield _Chunk(finished=finished, not_ready=result.not_ready, late=late,
                     counts=dict(result.counts))


# --------------------------------------------------------------------------------------------
# Step 4: long-active interactions


def terminate_long_active(ctx: JobContext) -> int:
    """Active interactions older than days-to-keep-active-facts end artificially, so that
    they stop being recomputed (and re-aggregated) for ever: every open fact of one ends at
    its start plus that many days, or at the start of its latest fact if that is later (no
    fact ends before it starts); a stay in a queue ended so lasted until then. Later rows
    of them are ignored (STATUS_ARTIFICIAL_END)."""
    days = ctx.config.get("gim-etl", "days-to-keep-active-facts")
    now = int(time.time())
    with write_tx(ctx.engine) as conn:
        newest = run(conn, "SELECT MAX(START_TS) FROM INTERACTION_FACT").scalar()
        if newest is None:
            return 0
        old = temp(conn, "tx_old", f"""
            SELECT INTERACTION_ID, START_TS + {days * 86400} AS END_TS FROM INTERACTION_FACT
            WHERE ACTIVE_FLAG = 1 AND START_TS < {newest - days * 86400}""")
        n = count(conn, old)
        if n:
            audit = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
            ids = f"SELECT INTERACTION_ID FROM {old}"
            queue_spans(conn, interactions.interaction_spans(f"INTERACTION_ID IN ({ids})"),
                        audit, now)
            # The interaction ends with the latest of its facts.
            run(conn, f"""UPDATE {old} SET END_TS = x.LAST_START FROM (
                SELECT INTERACTION_ID, MAX(START_TS) AS LAST_START FROM (
                    SELECT INTERACTION_ID, START_TS FROM INTERACTION_RESOURCE_FACT
                    WHERE INTERACTION_ID IN ({ids})
                    UNION ALL SELECT INTERACTION_ID, START_TS FROM MEDIATION_SEGMENT_FACT
                    WHERE INTERACTION_ID IN ({ids})) y GROUP BY INTERACTION_ID) x
                WHERE x.INTERACTION_ID = {old}.INTERACTION_ID
                AND x.LAST_START > {old}.END_TS""")
            end = (f"(SELECT o.END_TS FROM {old} o WHERE o.INTERACTION_ID = "
                   f"{{t}}.INTERACTION_ID)")
            for table in (f.INTERACTION_FACT, f.INTERACTION_RESOURCE_FACT,
                          f.MEDIATION_SEGMENT_FACT, f.IXN_RESOURCE_STATE_FACT):
                e = end.format(t=table.name)
                e = f"CASE WHEN {e} > START_TS THEN {e} ELSE START_TS END"
                extra = {f.INTERACTION_FACT: f", STATUS = {f.STATUS_ARTIFICIAL_END}",
                         f.MEDIATION_SEGMENT_FACT: f", MEDIATION_DURATION = ({e}) - START_TS",
                         f.IXN_RESOURCE_STATE_FACT: f", TOTAL_DURATION = ({e}) - START_TS",
                         }.get(table, "")
                run(conn, f"""UPDATE {table.name} SET ACTIVE_FLAG = 0, END_TS = {e},
                    END_DATE_TIME_KEY = (({e}) / 900) * 900, UPDATE_AUDIT_KEY = {audit}{extra}
                    WHERE ACTIVE_FLAG = 1 AND INTERACTION_ID IN ({ids})""")
            queue_spans(conn, interactions.interaction_spans(f"INTERACTION_ID IN ({ids})"),
                        audit, now)
            ctx.new_audit_key(conn, key=audit, row_count=n, table_name="artificial ends",
                              **_key_range(conn, INTERACTION_TABLES, audit))
            ctx.count("interactions terminated artificially", n)
        drop(conn, old)
    return n
