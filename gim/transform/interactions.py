"""Interaction facts: INTERACTION_FACT, INTERACTION_RESOURCE_FACT, MEDIATION_SEGMENT_FACT and
the user-data extensions, for a chunk of interactions, from their GIDB calls, parties, party
histories, virtual-queue visits, attached data and the agents' after-call work.

An interaction is the set of calls sharing a root interaction record (G_CALL.ROOTIRID): a
customer call with its consultations, an e-mail with its replies; for voice, the calls the
merge put together (jobs.merge), whichever site and IDB recorded them. In the chunk's staged
calls and parties, DATA_SOURCE_KEY is the interaction's data source (where its root is) and
OWN_SOURCE_KEY the source of the row itself, by which it is joined to the other GIDB rows of
its IDB (parties, party history, agent states, virtual queues, user data). Each chunk
recomputes its
interactions whole, so a fact is the same whether its rows arrived at once or piecemeal.
Lookups are joins over the chunk's staged rows and window functions, never a subquery per
row (but for index-served first-row probes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from gim.config import Config
from gim.schema import facts as f
from gim.schema import seed
from gim.schema.icon_codes import CCCause, CCEvent, DnType, PartyRole
from gim.transform.dimensions import (
    CFG_DN,
    CFG_PERSON,
    CFG_SCRIPT,
    FAR,
    placeholder_places,
    placeholder_resources,
)
from gim.transform.sqlkit import (
    STAGED_SPANS,
    assign_keys,
    count,
    drop,
    flush_spans,
    greatest,
    least,
    literal,
    literals,
    new_members,
    replace_facts,
    run,
    stage_spans,
    temp,
)

IRF_SPAN = 1000  # IRF and MSF keys: INTERACTION_ID * IRF_SPAN + ordinal (MSF from 500)
MSF_OFFSET = 500
SUFFIXES = ("_V", "_MM")  # voice and multimedia GIDB copies


def root(suffix: str) -> str:
    """The GIDB_G_CALL column that names a call's interaction..."""
    return "MERGE_ROOTIRID" if suffix == "_V" else "ROOTIRID"


def root_source(suffix: str) -> str:
    """... and the one that names the data source of that name."""
    return "MERGE_SOURCE_KEY" if suffix == "_V" else "DATA_SOURCE_KEY"

# Discard codes in STG_TRANSFORM_DISCARDS (ours). GUID names the root IRID of a discarded
# interaction, the CALLID of a duplicate call row, the PARTYID of an orphan party.
CODE_BAD_TIME, CODE_DUPLICATE, CODE_ORPHAN, CODE_TOO_MANY, CODE_MERGE = 1, 2, 3, 4, 5

# After-call work belongs to an agent's part when the agent enters ACW within this many
# seconds after the part ended (ICON writes the two events from different T-Server
# messages, which may fall in consecutive seconds), and no other part of the same agent
# ended in between.
ACW_TOLERANCE = 2

CONSULT = 4  # G_CALL.CALLTYPE of a consultation call
ACW = 4  # G_AGENT_STATE_HISTORY.STATE of after-call work


@dataclass
class ChunkResult:
    counts: dict[str, int] = field(default_factory=dict)
    discarded: int = 0
    not_ready: int = 0

    def add(self, key: str, n: int) -> None:
        if n:
            self.counts[key] = self.counts.get(key, 0) + n


def transform_interactions(conn: Connection, roots: str, audit: int, config: Config,
                           now: int, wait_timeout: int) -> ChunkResult:
    """Recompute the facts of the interactions in temp table `roots`
    (DATA_SOURCE_KEY, ENTITY_ID = root IRID, SINCE_TS). Interactions not ready yet (an
    agent's after-call work still open) are left out and stay pending; the caller removes
    from pending what this returns as done in `roots`' DONE column.

    Chunks of different interactions may be transformed at the same time, each in its own
    transaction: what they may both write is written under lock_shared."""
    drop(conn, STAGED_SPANS)
    out = _transform(conn, roots, audit, config, now, wait_timeout)
    flush_spans(conn, audit, now)
    return out


def _transform(conn: Connection, roots: str, audit: int, config: Config, now: int,
               wait_timeout: int) -> ChunkResult:
    out = ChunkResult()
    policy = config.get("error-policy", "error-policy-irf-exception")
    calls = _calls(conn, roots)
    _discard_duplicates(conn, audit, now, calls, policy, out)
    parties = _parties(conn, calls)
    _discard_impossible(conn, audit, now, roots, calls, parties, policy, out)
    _merge_policies(conn, audit, now, roots, calls, parties, config, out)
    _end_abandoned_calls(conn, calls, parties, out)
    stops = _stop_queues(conn, calls, parties,
                         config.get("gim-transformation", "stop-ixn-queues"), out)
    irf = _irf_spans(conn, parties)
    if stops:
        # The part that placed the interaction in the stop queue (under way before, ended
        # then) ended it: completed.
        run(conn, f"""UPDATE {irf} SET STOPPED = 1 WHERE EXISTS (SELECT 1 FROM {stops} t
            WHERE t.DATA_SOURCE_KEY = {irf}.DATA_SOURCE_KEY AND t.ROOTIRID = {irf}.ROOTIRID
              AND t.STOP_TS = {irf}.END_TS AND {irf}.START_TS < t.STOP_TS)""")
        drop(conn, stops)
    _short_conferences(conn, irf, parties,
                       config.get("gim-transformation", "introduced-transfer-threshold"))
    _acw(conn, irf)
    _hold_back_open_acw(conn, roots, irf, calls, parties, now, wait_timeout, out)
    if not count(conn, calls):
        drop(conn, calls, parties, irf, *STATE_TEMPS)
        return out
    ixn = _interactions(conn, calls, audit, out)
    _placeholders(conn, calls, parties, audit, out)
    msf = _segments(conn, calls, parties, ixn)
    irf_rows = _irf_rows(conn, irf, parties, ixn)
    _lineage(conn, calls, parties, irf_rows, msf)
    subjects = _subjects(conn, irf_rows, msf, ixn,
                         config.get("gim-etl", "link-msf-userdata-voice"),
                         config.get("gim-etl", "link-msf-userdata-mm"))
    descriptor = _user_data(conn, calls, parties, irf_rows, subjects, audit, out,
                            config.get("gim-etl", "user-event-data-timeout"))
    # Interactions given their INTERACTION_ID now have no facts yet: only the others have
    # facts to replace and intervals covered before to queue.
    ids = f"SELECT INTERACTION_ID FROM {ixn} WHERE FRESH = 0"
    scope = f"INTERACTION_ID IN ({ids})" if run(
        conn, f"SELECT COUNT(*) FROM {ixn} WHERE FRESH = 0").scalar_one() else None
    if scope:
        # The intervals these interactions covered before and cover now both need
        # aggregating.
        stage_spans(conn, interaction_spans(scope))
        # User data first, while the IRFs and MSFs it hangs on are still the old ones: rows
        # of facts that no longer have user data go.
        for table in f.USER_DATA_TABLES:
            for facts, key in (("INTERACTION_RESOURCE_FACT", "INTERACTION_RESOURCE_ID"),
                               ("MEDIATION_SEGMENT_FACT", "MEDIATION_SEGMENT_ID")):
                run(conn, f"""DELETE FROM {table.name} WHERE INTERACTION_RESOURCE_ID IN (
                    SELECT r.{key} FROM {facts} r
                    WHERE r.{scope} AND NOT EXISTS (SELECT 1 FROM {subjects} n
                        WHERE n.INTERACTION_RESOURCE_ID = r.{key}))""")
    for table, rows in descriptor.items():
        out.add(f"{table.name} rows", replace_facts(
            conn, table, rows, scope and f"INTERACTION_RESOURCE_ID IN (SELECT "
                                         f"INTERACTION_RESOURCE_ID FROM {subjects} WHERE "
                                         f"{scope})", audit))
    states = _resource_states(conn, irf_rows)
    for table, rows in ((f.INTERACTION_FACT, ixn), (f.INTERACTION_RESOURCE_FACT, irf_rows),
                        (f.MEDIATION_SEGMENT_FACT, msf), (f.IXN_RESOURCE_STATE_FACT, states)):
        out.add(f"{table.name} rows", replace_facts(conn, table, rows, scope, audit))
    # What they cover now, from the rows just written (rather than read back).
    stage_spans(conn, interaction_spans(None, ixn, irf_rows, msf))
    run(conn, f"UPDATE {roots} SET DONE = 1 WHERE DONE = 0 AND EXISTS (SELECT 1 FROM {ixn} "
              f"i WHERE i.DATA_SOURCE_KEY = {roots}.DATA_SOURCE_KEY AND i.ROOT_IRID = "
              f"{roots}.ENTITY_ID)")
    drop(conn, calls, parties, irf, ixn, msf, irf_rows, states, subjects, *STATE_TEMPS,
         *descriptor.values())
    return out


def interaction_spans(where: str | None, ixn: str = "INTERACTION_FACT",
                      irf: str = "INTERACTION_RESOURCE_FACT",
                      msf: str = "MEDIATION_SEGMENT_FACT") -> str:
    """(TENANT_KEY, FROM_TS, TO_TS) of the interactions whose facts match `where` (a
    condition on INTERACTION_ID; None: all the rows of the tables), from the facts of
    `ixn`, `irf` and `msf` (the fact tables as they stand, or temp tables of the same
    columns): from the start to the latest time a fact names (after-call work included; an
    active fact up to its start)."""
    cond = f"WHERE {where}" if where else ""
    return f"""
        SELECT TENANT_KEY, MIN(T0) AS FROM_TS, MAX(T1) AS TO_TS FROM (
            SELECT INTERACTION_ID, TENANT_KEY, START_TS AS T0,
                   COALESCE(END_TS, START_TS) AS T1 FROM {ixn} {cond}
            UNION ALL
            SELECT INTERACTION_ID, TENANT_KEY, START_TS,
                   COALESCE(END_TS + AFTER_CALL_WORK_DURATION, START_TS)
            FROM {irf} {cond}
            UNION ALL
            SELECT INTERACTION_ID, TENANT_KEY, START_TS, COALESCE(END_TS, START_TS)
            FROM {msf} {cond}) x
        GROUP BY INTERACTION_ID, TENANT_KEY"""


# --------------------------------------------------------------------------------------------
# Calls


def _calls(conn: Connection, roots: str) -> str:
    """The chunk's calls, voice and multimedia, with the GIDB copy they come from (SUFFIX);
    DUP_RANK > 1 marks a second row for the same CALLID (a defect of the IDB)."""
    run(conn, f"CREATE INDEX IF NOT EXISTS {roots}_ix ON {roots} (DATA_SOURCE_KEY, ENTITY_ID)")
    # Voice calls are grouped by their merged root (the calls of every site and the calls
    # merged into others, see jobs.merge); multimedia interactions by their root IR.
    union = " UNION ALL ".join(f"""
        SELECT c.{root_source(s)} AS DATA_SOURCE_KEY, c.DATA_SOURCE_KEY AS OWN_SOURCE_KEY,
               c.ID, c.CALLID, c.IRID, c.{root(s)} AS ROOTIRID,
               c.CALLTYPE, c.MEDIANAME, c.STATE, c.TENANTID, c.ANI, c.DNIS, c.SUBTYPE,
               {'c.MERGECALLID' if s == '_V' else 'CAST(NULL AS VARCHAR(64))'} AS MERGECALLID,
               c.CREATED_TS, c.TERMINATED_TS, c.LASTCHANGE_TS, '{s}' AS SUFFIX,
               {0 if s == '_V' else 1} AS IS_MM,
               {'COALESCE(c.MERGE_STATE, 0)' if s == '_V' else '0'} AS MERGE_STATE
        FROM GIDB_G_CALL{s} c JOIN {roots} r ON r.DATA_SOURCE_KEY = c.{root_source(s)}
             AND r.ENTITY_ID = c.{root(s)}""" for s in SUFFIXES)
    calls = temp(conn, "tx_call", f"""
        SELECT c.*, ROW_NUMBER() OVER (PARTITION BY c.OWN_SOURCE_KEY, c.CALLID
                                       ORDER BY c.ID) AS DUP_RANK,
               CAST(NULL AS INTEGER) AS ARTIFICIAL_END
        FROM ({union}) c""")
    run(conn, f"CREATE INDEX IF NOT EXISTS {calls}_ix ON {calls} (DATA_SOURCE_KEY, CALLID)")
    run(conn, f"CREATE INDEX IF NOT EXISTS {calls}_own ON {calls} (OWN_SOURCE_KEY, CALLID)")
    return calls


def _end_abandoned_calls(conn: Connection, calls: str, parties: str,
                         out: ChunkResult) -> None:
    """A voice call ICON never terminated although every party of it ended ends, for the
    facts, with its last party; its interaction says so in its STATUS."""
    ended = temp(conn, "tx_call_end", f"""
        SELECT c.DATA_SOURCE_KEY, c.CALLID, MAX(p.TERMINATED_TS) AS END_TS
        FROM {calls} c JOIN {parties} p ON p.DATA_SOURCE_KEY = c.DATA_SOURCE_KEY
             AND p.CALLID = c.CALLID
        WHERE c.STATE <> 2 AND c.IS_MM = 0
        GROUP BY c.DATA_SOURCE_KEY, c.CALLID
        HAVING SUM(CASE WHEN p.TERMINATED_TS IS NULL THEN 1 ELSE 0 END) = 0""",
                 analyze=False)
    n = count(conn, ended)
    if n:
        run(conn, f"""UPDATE {calls} SET STATE = 2, TERMINATED_TS = e.END_TS,
            ARTIFICIAL_END = e.END_TS FROM {ended} e
            WHERE e.DATA_SOURCE_KEY = {calls}.DATA_SOURCE_KEY AND e.CALLID = {calls}.CALLID""")
        out.add("calls ended artificially (all parties gone)", n)
    drop(conn, ended)


# --------------------------------------------------------------------------------------------
# Discards


def _stop_queues(conn: Connection, calls: str, parties: str, names: list[str],
                 out: ChunkResult) -> str | None:
    """stop-ixn-queues (multimedia): placing an interaction in one of these interaction
    queues ends it there. What came after (that queue's party and every later party and
    call) is left out, the calls begun before end then; the part that placed it is marked
    by the caller. Returns the temp table of (DATA_SOURCE_KEY, ROOTIRID, STOP_TS, STOP_ID,
    STOP_SOURCE), or None when no interaction of the chunk was stopped."""
    if not names:
        return None
    quoted = literals(names)
    stops = temp(conn, "tx_stop", f"""
        SELECT x.DATA_SOURCE_KEY, x.ROOTIRID, x.CREATED_TS AS STOP_TS, x.ID AS STOP_ID,
               x.OWN_SOURCE_KEY AS STOP_SOURCE FROM (
            SELECT p.DATA_SOURCE_KEY, p.ROOTIRID, p.CREATED_TS, p.ID, p.OWN_SOURCE_KEY,
                   ROW_NUMBER() OVER (PARTITION BY p.DATA_SOURCE_KEY, p.ROOTIRID
                                      ORDER BY p.CREATED_TS, p.ID) AS RN
            FROM {parties} p
            WHERE p.IS_MM = 1 AND p.TYPE = 4 AND p.ENDPOINTID IN (
                SELECT ID FROM GIDB_GC_SCRIPT WHERE NAME IN ({quoted}))) x
        WHERE x.RN = 1""")
    n = count(conn, stops)
    if not n:
        drop(conn, stops)
        return None
    out.add("interactions ended in a stop queue (stop-ixn-queues)", n)
    mine = (f"FROM {stops} t WHERE t.DATA_SOURCE_KEY = {{0}}.DATA_SOURCE_KEY "
            f"AND t.ROOTIRID = {{0}}.ROOTIRID")
    later = ("(t.STOP_TS < {0}.CREATED_TS OR (t.STOP_TS = {0}.CREATED_TS AND "
             "t.STOP_SOURCE = {0}.OWN_SOURCE_KEY AND t.STOP_ID <= {0}.ID))")
    run(conn, f"DELETE FROM {parties} WHERE EXISTS (SELECT 1 {mine.format(parties)} "
              f"AND {later.format(parties)})")
    run(conn, f"DELETE FROM {calls} WHERE EXISTS (SELECT 1 {mine.format(calls)} "
              f"AND t.STOP_TS < {calls}.CREATED_TS)")
    for table in (parties, calls):
        run(conn, f"""UPDATE {table} SET TERMINATED_TS = (SELECT t.STOP_TS
                {mine.format(table)})
            WHERE EXISTS (SELECT 1 {mine.format(table)} AND ({table}.TERMINATED_TS IS NULL
                          OR {table}.TERMINATED_TS > t.STOP_TS))""")
    run(conn, f"UPDATE {calls} SET STATE = 2 WHERE EXISTS (SELECT 1 {mine.format(calls)})")
    return stops


def _discard_duplicates(conn: Connection, audit: int, now: int, calls: str, policy: str,
                        out: ChunkResult) -> None:
    """Second G_CALL rows for the same call are discarded (the first is kept)."""
    n = run(conn, f"SELECT COUNT(*) FROM {calls} WHERE DUP_RANK > 1").scalar_one()
    if not n:
        return
    reason = "second G_CALL row for the same call (kept the first)"
    _apply_policy(policy, f"{n} row(s) of GIDB_G_CALL_V/_MM: {reason}")
    if policy == "log_db_resume":
        run(conn, f"""
            INSERT INTO STG_TRANSFORM_DISCARDS (TABLE_NAME, GUID, CODE, INTERACTION_ID,
                CREATE_AUDIT_KEY, REASON, ETL_TS, ETL_DATE_TIME_KEY)
            SELECT DISTINCT 'GIDB_G_CALL' || SUFFIX, CALLID, {CODE_DUPLICATE}, -2, {audit},
                   '{reason}', {now}, {(now // 900) * 900}
            FROM {calls} WHERE DUP_RANK > 1
            ON CONFLICT (TABLE_NAME, GUID, CODE) DO NOTHING""")
    run(conn, f"DELETE FROM {calls} WHERE DUP_RANK > 1")
    out.discarded += n
    out.add("discarded (second G_CALL row for the same call)", n)


def _discard_impossible(conn: Connection, audit: int, now: int, roots: str, calls: str,
                        parties: str, policy: str, out: ChunkResult) -> None:
    """Interactions with a call or party whose times cannot be (no start, a negative time,
    an end before the start, a terminated call without an end) are discarded whole."""
    bad_time = ("{t}.CREATED_TS IS NULL OR {t}.CREATED_TS < 0 OR {t}.TERMINATED_TS < 0 "
                "OR {t}.TERMINATED_TS < {t}.CREATED_TS")
    bad = temp(conn, "tx_bad", f"""
        SELECT DATA_SOURCE_KEY, ROOTIRID, MIN(SUFFIX) AS SUFFIX FROM (
            SELECT c.DATA_SOURCE_KEY, c.ROOTIRID, c.SUFFIX FROM {calls} c
            WHERE {bad_time.format(t='c')} OR (c.STATE = 2 AND c.TERMINATED_TS IS NULL)
            UNION ALL
            SELECT p.DATA_SOURCE_KEY, p.ROOTIRID, p.SUFFIX FROM {parties} p
            WHERE {bad_time.format(t='p')}) x
        GROUP BY DATA_SOURCE_KEY, ROOTIRID""", analyze=False)
    if count(conn, bad):
        discard_interactions(conn, audit, now, bad, CODE_BAD_TIME,
                             "a call of the interaction has impossible times (no start, "
                             "negative, or ending before it starts)", policy, out)
        _leave_out(conn, bad, roots, calls, parties)
    drop(conn, bad)


def _merge_policies(conn: Connection, audit: int, now: int, roots: str, calls: str,
                    parties: str, config: Config, out: ChunkResult) -> None:
    """Voice interactions merged without some of their calls (jobs.merge's MERGE_STATE):
    a missing IS-Link side or linked call (error-policy-islink-dangling) and a missing
    merge target (error-policy-call-mergecall-missing) are kept as they are (resume: the
    far side counts as an unmonitored site, the reference is ignored) or handled as a bad
    interaction (exception: error-policy-irf-exception decides)."""
    islink = config.get("error-policy", "error-policy-islink-dangling")
    mergecall = config.get("error-policy", "error-policy-call-mergecall-missing")
    bits = (5 if islink == "exception" else 0) | (2 if mergecall == "exception" else 0)
    partial = temp(conn, "tx_partial", f"""
        SELECT DATA_SOURCE_KEY, ROOTIRID, MIN(SUFFIX) AS SUFFIX,
               MAX(CASE WHEN (MERGE_STATE / 1) % 2 = 1 AND {bits & 1} = 1
                          OR (MERGE_STATE / 4) % 2 = 1 AND {bits & 4} = 4
                          OR (MERGE_STATE / 2) % 2 = 1 AND {bits & 2} = 2
                        THEN 1 ELSE 0 END) AS BAD
        FROM {calls} WHERE MERGE_STATE <> 0 GROUP BY DATA_SOURCE_KEY, ROOTIRID""",
                   analyze=False)
    kept = run(conn, f"SELECT COUNT(*) FROM {partial} WHERE BAD = 0").scalar_one()
    out.add("interactions partially merged", kept)
    bad = temp(conn, "tx_partial_bad", f"SELECT DATA_SOURCE_KEY, ROOTIRID, SUFFIX FROM "
                                       f"{partial} WHERE BAD = 1", analyze=False)
    if count(conn, bad):
        discard_interactions(conn, audit, now, bad, CODE_MERGE,
                             "calls of the interaction on another site or a merge target "
                             "never came (error-policy-islink-dangling / "
                             "error-policy-call-mergecall-missing = exception)",
                             config.get("error-policy", "error-policy-irf-exception"), out)
        _leave_out(conn, bad, roots, calls, parties)
    drop(conn, partial, bad)


def _leave_out(conn: Connection, bad: str, roots: str, calls: str, parties: str) -> None:
    """The discarded interactions of `bad` leave the chunk's calls and parties, and are
    done (no longer pending)."""
    for table in (calls, parties):
        run(conn, f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {bad} b WHERE "
                  f"b.DATA_SOURCE_KEY = {table}.DATA_SOURCE_KEY AND b.ROOTIRID = "
                  f"{table}.ROOTIRID)")
    run(conn, f"UPDATE {roots} SET DONE = 1 WHERE EXISTS (SELECT 1 FROM {bad} b WHERE "
              f"b.DATA_SOURCE_KEY = {roots}.DATA_SOURCE_KEY AND b.ROOTIRID = "
              f"{roots}.ENTITY_ID)")


def discard_interactions(conn: Connection, audit: int, now: int, bad: str, code: int,
                         reason: str, policy: str, out: ChunkResult) -> None:
    """Discard the interactions of temp table `bad` (DATA_SOURCE_KEY, ROOTIRID, SUFFIX):
    a discard row each (log_db_resume), and whatever was written for them before goes,
    its intervals queued for aggregation."""
    n = count(conn, bad)
    _apply_policy(policy, f"{n} interaction(s): {reason}")
    old = temp(conn, "tx_bad_ids", f"""
        SELECT i.INTERACTION_ID, b.DATA_SOURCE_KEY, b.ROOTIRID FROM INTERACTION_FACT i
        JOIN {bad} b ON b.ROOTIRID = i.MEDIA_SERVER_ROOT_IXN_GUID
             AND b.DATA_SOURCE_KEY = i.DATA_SOURCE_KEY""", analyze=False)
    if policy == "log_db_resume":
        run(conn, f"""
            INSERT INTO STG_TRANSFORM_DISCARDS (TABLE_NAME, GUID, CODE, INTERACTION_ID,
                CREATE_AUDIT_KEY, REASON, ETL_TS, ETL_DATE_TIME_KEY)
            SELECT 'GIDB_G_CALL' || b.SUFFIX, b.ROOTIRID, {code},
                   COALESCE(MAX(o.INTERACTION_ID), -2), {audit}, '{reason}', {now},
                   {(now // 900) * 900}
            FROM {bad} b LEFT JOIN {old} o ON o.DATA_SOURCE_KEY = b.DATA_SOURCE_KEY
                 AND o.ROOTIRID = b.ROOTIRID
            GROUP BY b.SUFFIX, b.ROOTIRID
            ON CONFLICT (TABLE_NAME, GUID, CODE) DO NOTHING""")
    if count(conn, old):
        ids = f"SELECT INTERACTION_ID FROM {old}"
        stage_spans(conn, interaction_spans(f"INTERACTION_ID IN ({ids})"))
        irfs = (f"SELECT r.INTERACTION_RESOURCE_ID FROM INTERACTION_RESOURCE_FACT r "
                f"WHERE r.INTERACTION_ID IN ({ids})")
        for table in f.USER_DATA_TABLES:
            run(conn, f"DELETE FROM {table.name} WHERE INTERACTION_RESOURCE_ID IN ({irfs})")
        for table in (f.IXN_RESOURCE_STATE_FACT, f.INTERACTION_RESOURCE_FACT,
                      f.MEDIATION_SEGMENT_FACT, f.INTERACTION_FACT):
            run(conn, f"DELETE FROM {table.name} WHERE INTERACTION_ID IN ({ids})")
    drop(conn, old)
    out.discarded += n
    out.add("discarded interactions", n)


def _apply_policy(policy: str, what: str) -> None:
    if policy == "exception":
        from gim.errors import JobFailed

        raise JobFailed(f"{what} (error-policy-irf-exception = exception)")


# --------------------------------------------------------------------------------------------
# Parties and their time per state


# The columns of a staged party (see _parties).
_PARTY_COLUMNS = ("DATA_SOURCE_KEY", "OWN_SOURCE_KEY", "ID", "PARTYID", "PARTYGUID", "TYPE",
                  "PROLE", "CALLID", "ENDPOINTID", "ENDPOINTTYPE", "ENDPOINTDN", "AGENTID",
                  "PLACEID", "CCEVENT", "CCEVENTCAUSE", "CREATED_TS", "TERMINATED_TS",
                  "ROOTIRID", "CALLTYPE", "IS_MM", "TENANTID", "MEDIANAME", "SUFFIX",
                  "CONSULT_END")


def _parties(conn: Connection, calls: str) -> str:
    """Each party of the chunk's calls with its seconds alerting, connected, held, queued,
    from its state history (the last state of a party still there runs to no end).

    A party is counted over a window of its life: the whole of it, but for an agent on a
    call that another site's consultation reached (see _remote_consultations), whose
    party is two: the consultation until that consultation call ended, the call after."""
    remote = _remote_consultations(conn, calls)

    def base(join: str) -> str:
        return " UNION ALL ".join(f"""
            SELECT c.DATA_SOURCE_KEY, p.DATA_SOURCE_KEY AS OWN_SOURCE_KEY, p.ID, p.PARTYID,
                   p.PARTYGUID, p.TYPE, p.PROLE, p.CALLID,
                   p.ENDPOINTID, p.ENDPOINTTYPE, p.ENDPOINTDN, p.AGENTID, p.PLACEID,
                   p.CCEVENT, p.CCEVENTCAUSE, p.CREATED_TS, p.TERMINATED_TS, c.ROOTIRID,
                   COALESCE(c.CALLTYPE, 0) AS CALLTYPE, c.IS_MM, c.TENANTID, c.MEDIANAME,
                   c.SUFFIX, x.CONSULT_END
            FROM GIDB_G_PARTY{s} p JOIN {calls} c ON c.OWN_SOURCE_KEY = p.DATA_SOURCE_KEY
                 AND c.CALLID = p.CALLID AND c.SUFFIX = '{s}' AND c.DUP_RANK = 1
            {join} {remote} x ON x.OWN_SOURCE_KEY = c.OWN_SOURCE_KEY
                 AND x.CALLID = c.CALLID AND p.AGENTID IS NOT NULL""" for s in SUFFIXES)

    # The windows: (W0, W1), W1 NULL for no end; the consultation part has CALLTYPE
    # consultation and ends where the consultation call did. Only the few parties another
    # site's consultation reached (an inner join of the small table of those) are split.
    split = f"({base('JOIN')})"
    consult_end = least("b.CONSULT_END", "COALESCE(b.TERMINATED_TS, b.CONSULT_END)")

    def window(**given: str) -> str:
        return ", ".join(f"{given.get(c, 'b.' + c)} AS {c}" for c in (*_PARTY_COLUMNS,
                                                                     "W0", "W1", "SPLIT"))

    windows = temp(conn, "tx_party_w", f"""
        SELECT {window(W0='b.CREATED_TS', W1='b.TERMINATED_TS', SPLIT='0')}
        FROM ({base('LEFT JOIN')}) b
        WHERE b.CONSULT_END IS NULL OR b.CONSULT_END <= b.CREATED_TS
        UNION ALL
        SELECT {window(TERMINATED_TS=consult_end, CALLTYPE=str(CONSULT), W0='b.CREATED_TS',
                       W1=consult_end, SPLIT='1')}
        FROM {split} b WHERE b.CONSULT_END > b.CREATED_TS
        UNION ALL
        SELECT {window(CREATED_TS='b.CONSULT_END', W0='b.CONSULT_END', W1='b.TERMINATED_TS',
                       SPLIT='1')}
        FROM {split} b WHERE b.CONSULT_END > b.CREATED_TS
             AND (b.TERMINATED_TS IS NULL OR b.TERMINATED_TS > b.CONSULT_END)""",
                   analyze=False)
    # The state history of the same parties. Each state runs from its ADDED_TS to the next
    # one's.
    spans = temp(conn, "tx_pspan", " UNION ALL ".join(f"""
        SELECT h.DATA_SOURCE_KEY, h.PARTYID, h.STATE, h.ADDED_TS AS T0,
               LEAD(h.ADDED_TS) OVER (PARTITION BY h.DATA_SOURCE_KEY, h.PARTYID
                                      ORDER BY h.PSEQ, h.PHID) AS T1
        FROM GIDB_G_PARTY_HISTORY{s} h
        JOIN (SELECT DISTINCT OWN_SOURCE_KEY, PARTYID FROM {windows}
              WHERE SUFFIX = '{s}') p
             ON p.OWN_SOURCE_KEY = h.DATA_SOURCE_KEY AND p.PARTYID = h.PARTYID"""
                                                       for s in SUFFIXES),
                 analyze=("DATA_SOURCE_KEY", "PARTYID", "STATE"))
    # Seconds of a state within the window (a state with no end counts nothing); a whole
    # party's states all count.
    clipped = greatest("0", f"{least('x.T1', 'COALESCE(w.W1, x.T1)')} - "
                            f"{greatest('x.T0', 'w.W0')}")
    inside = (f"CASE WHEN x.T1 IS NULL THEN 0 WHEN w.SPLIT = 0 THEN x.T1 - x.T0 "
              f"ELSE {clipped} END")
    overlaps = ("(w.SPLIT = 0 OR ((w.W1 IS NULL OR x.T0 < w.W1) "
                "AND (x.T1 IS NULL OR x.T1 > w.W0)))")
    begins = "(w.SPLIT = 0 OR (x.T0 >= w.W0 AND x.T0 < COALESCE(w.W1, x.T0 + 1)))"
    parties = temp(conn, "tx_party", f"""
        SELECT w.*, COALESCE(s.ALERT_S, 0) AS ALERT_S, COALESCE(s.CONNECT_S, 0) AS CONNECT_S,
               COALESCE(s.HOLD_S, 0) AS HOLD_S, COALESCE(s.QUEUE_S, 0) AS QUEUE_S,
               COALESCE(s.EVER_CONNECTED, 0) AS EVER_CONNECTED,
               COALESCE(s.HOLD_N, 0) AS HOLD_N
        FROM {windows} w LEFT JOIN (
            SELECT w.OWN_SOURCE_KEY, w.PARTYID, w.W0,
                   SUM(CASE WHEN x.STATE = 2 THEN {inside} ELSE 0 END) AS ALERT_S,
                   SUM(CASE WHEN x.STATE = 3 THEN {inside} ELSE 0 END) AS CONNECT_S,
                   SUM(CASE WHEN x.STATE = 4 THEN {inside} ELSE 0 END) AS HOLD_S,
                   SUM(CASE WHEN x.STATE = 5 THEN {inside} ELSE 0 END) AS QUEUE_S,
                   MAX(CASE WHEN x.STATE = 3 AND {overlaps} THEN 1 ELSE 0 END)
                       AS EVER_CONNECTED,
                   SUM(CASE WHEN x.STATE = 4 AND {begins} THEN 1 ELSE 0 END) AS HOLD_N
            FROM {windows} w JOIN {spans} x ON x.DATA_SOURCE_KEY = w.OWN_SOURCE_KEY
                 AND x.PARTYID = w.PARTYID
            GROUP BY w.OWN_SOURCE_KEY, w.PARTYID, w.W0
        ) s ON s.OWN_SOURCE_KEY = w.OWN_SOURCE_KEY AND s.PARTYID = w.PARTYID
             AND s.W0 = w.W0""",
                   analyze=("DATA_SOURCE_KEY", "ROOTIRID", "AGENTID", "CALLID", "SUFFIX",
                            "TYPE"))
    run(conn, f"CREATE INDEX IF NOT EXISTS {parties}_ix ON {parties} "
              f"(DATA_SOURCE_KEY, CALLID)")
    # The agents' alerting, connected and held spans within each window, for
    # IXN_RESOURCE_STATE_FACT (a state still on ends with the window, if it has ended).
    temp(conn, "tx_pstate", f"""
        SELECT w.OWN_SOURCE_KEY, w.PARTYID, w.W0, x.STATE,
               CASE WHEN w.SPLIT = 0 THEN x.T0 ELSE {greatest('x.T0', 'w.W0')} END AS S0,
               CASE WHEN x.T1 IS NULL THEN w.W1 WHEN w.SPLIT = 0 THEN x.T1
                    ELSE {least('x.T1', 'COALESCE(w.W1, x.T1)')} END AS S1
        FROM {windows} w JOIN {spans} x ON x.DATA_SOURCE_KEY = w.OWN_SOURCE_KEY
             AND x.PARTYID = w.PARTYID
        WHERE w.AGENTID IS NOT NULL AND x.STATE IN (2, 3, 4) AND {overlaps}""",
         analyze=False)
    drop(conn, windows, spans)
    return parties


# Temporary tables kept until the end of the chunk: the resource states are made from the
# first two, lineage reads the consultations received from another site.
STATE_TEMPS = ("tx_pstate", "tx_agent_party", "tx_remote_cons")
IRS_ROLE_CUSTOMER, IRS_ROLE_CONSULT = 10, 20  # INTERACTION_RESOURCE_STATE role blocks
IRS_ALERT, IRS_CONNECT, IRS_HOLD, IRS_WRAP = 2, 3, 4, 5


def _resource_states(conn: Connection, irf_rows: str) -> str:
    """IXN_RESOURCE_STATE_FACT: each agent part's alerting, connected and held spans (from
    its parties' state history, each party window as its IRF counts it) and its after-call
    work, in the role of the call they were on: consultation (the consultation call, and
    the initiator's own party on it) or customer. Summed by kind, they are the IRF's ring,
    talk, consultation, hold and after-call-work durations. (The state key blocks are
    seed.interaction_resource_state_rows'; INITIATE, the connected time before anyone else
    joined a call an agent made, is not told apart from CONNECT.) States of routing points
    and queues are not written, as the product does not."""
    from gim.schema.seed import interaction_resource_state_key as irs
    from gim.transform.agents import _clip

    assert irs("Alert") == IRS_ROLE_CUSTOMER + IRS_ALERT
    assert irs("Wrap", "Consult") == IRS_ROLE_CONSULT + IRS_WRAP
    role = (f"CASE WHEN g.FOLDED = 1 OR g.CALLTYPE = {CONSULT} THEN {IRS_ROLE_CONSULT} "
            f"ELSE {IRS_ROLE_CUSTOMER} END")
    spans = f"""
        SELECT r.INTERACTION_RESOURCE_ID, s.S0, s.S1, {role} + s.STATE AS STATE_KEY
        FROM tx_pstate s
        JOIN tx_agent_party g ON g.OWN_SOURCE_KEY = s.OWN_SOURCE_KEY
             AND g.PARTYID = s.PARTYID AND g.CREATED_TS = s.W0
        JOIN {irf_rows} r ON r.DATA_SOURCE_KEY = g.DATA_SOURCE_KEY
             AND r.ROOTIRID = g.ROOTIRID AND r.PARTYGUID = g.GROUP_GUID
             AND r.X_AGENTID = g.AGENTID
        WHERE (s.S1 IS NULL OR s.S1 > s.S0)
          AND (s.STATE <> {IRS_ALERT} OR g.FOLDED = 0)
        UNION ALL
        SELECT r.INTERACTION_RESOURCE_ID, r.X_ACW_TS,
               CASE WHEN r.X_ACW_OPEN = 1 THEN NULL
                    ELSE r.X_ACW_TS + r.AFTER_CALL_WORK_DURATION END,
               {IRS_ROLE_CUSTOMER + IRS_WRAP}
        FROM {irf_rows} r WHERE r.X_ACW_TS IS NOT NULL
          AND (r.X_ACW_OPEN = 1 OR r.AFTER_CALL_WORK_DURATION > 0)"""
    total, lead, trail = _clip("s.S0", "s.S1")
    rows = temp(conn, "tx_irs", f"""
        SELECT r.INTERACTION_RESOURCE_ID * {IRF_SPAN} + ROW_NUMBER() OVER (
                   PARTITION BY r.INTERACTION_RESOURCE_ID ORDER BY s.S0, s.STATE_KEY,
                   COALESCE(s.S1, s.S0)) AS IXN_RESOURCE_STATE_FACT_KEY,
               (s.S0 / 900) * 900 AS START_DATE_TIME_KEY, r.TENANT_KEY, r.MEDIA_TYPE_KEY,
               r.RESOURCE_KEY, COALESCE(r.MEDIA_RESOURCE_KEY, -1) AS MEDIA_RESOURCE_KEY,
               COALESCE(r.PLACE_KEY, -1) AS PLACE_KEY,
               s.STATE_KEY AS INTERACTION_RESOURCE_STATE_KEY, r.INTERACTION_TYPE_KEY,
               r.START_DATE_TIME_KEY AS INTERACTION_RESOURCE_SDT_KEY,
               r.INTERACTION_RESOURCE_ID, r.INTERACTION_ID, s.S0 AS START_TS, s.S1 AS END_TS,
               COALESCE((s.S1 / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               {total} AS TOTAL_DURATION, {lead} AS LEAD_CLIP_DURATION,
               {trail} AS TRAIL_CLIP_DURATION, r.TARGET_ADDRESS,
               CASE WHEN s.S1 IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG, 0 AS PURGE_FLAG,
               CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY
        FROM ({spans}) s
        JOIN {irf_rows} r ON r.INTERACTION_RESOURCE_ID = s.INTERACTION_RESOURCE_ID""",
                analyze=False)
    if run(conn, f"SELECT COUNT(*) FROM {rows} WHERE IXN_RESOURCE_STATE_FACT_KEY % "
                 f"{IRF_SPAN} = 0").scalar_one():
        raise ValueError("an agent's part with more than 999 interaction states")
    return rows


def _remote_consultations(conn: Connection, calls: str) -> str:
    """Voice calls that another site's consultation reached: the call an agent took at
    this site is linked (an IS-Link, its two sides) to a call of the other site that a
    consultation call began with the link and merged into on completing the transfer or
    conference (or is that consultation, if it never completed). This site's call is an
    inbound call of its own; its agent's part is a consultation received until that
    consultation call ended (CONSULT_END), then the call's. The consultation call is
    K_SOURCE/K_CALLID, begun at K_CREATED. Kept until the end of the chunk."""
    return temp(conn, "tx_remote_cons", f"""
        SELECT c.OWN_SOURCE_KEY, c.CALLID, MIN(k.TERMINATED_TS) AS CONSULT_END,
               MIN(k.OWN_SOURCE_KEY) AS K_SOURCE, MIN(k.CALLID) AS K_CALLID,
               MIN(k.CREATED_TS) AS K_CREATED
        FROM {calls} c
        JOIN GIDB_G_IS_LINK_V l ON l.DATA_SOURCE_KEY = c.OWN_SOURCE_KEY
             AND l.CALLID = c.CALLID
        JOIN GIDB_G_IS_LINK_V o ON o.LINKID = l.LINKID
             AND NOT (o.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY AND o.CALLID = l.CALLID)
        JOIN {calls} k ON k.OWN_SOURCE_KEY = o.DATA_SOURCE_KEY AND k.CALLTYPE = {CONSULT}
             AND (k.CALLID = o.CALLID OR k.MERGECALLID = o.CALLID)
             AND k.CREATED_TS = o.INITIATED_TS AND k.TERMINATED_TS IS NOT NULL
        WHERE c.SUFFIX = '_V' AND COALESCE(c.CALLTYPE, 0) <> {CONSULT}
        GROUP BY c.OWN_SOURCE_KEY, c.CALLID""", analyze=False)


# --------------------------------------------------------------------------------------------
# IRF: one per agent party instance (PARTYGUID), a consultation's initiating party folded
# into the IRF of the same agent on the customer's call.


def _irf_spans(conn: Connection, parties: str) -> str:
    # A consultation's initiating party folds into the latest party the same agent had on
    # a call of the interaction that is no consultation, begun no later: numbering those
    # candidates in time order (GRP) makes that party the first of the folded party's
    # group, so a window finds it.
    grouped = temp(conn, "tx_agent_party", f"""
        SELECT x.*, CASE WHEN x.FOLDED = 1 AND x.GRP > 0 THEN FIRST_VALUE(x.PARTYGUID) OVER (
                        PARTITION BY x.DATA_SOURCE_KEY, x.ROOTIRID, x.AGENTID, x.GRP
                        ORDER BY x.CREATED_TS, x.CAND DESC, x.ID)
                    ELSE x.PARTYGUID END AS GROUP_GUID
        FROM (
            SELECT p.*, CASE WHEN p.CALLTYPE = {CONSULT} AND p.PROLE = 1 THEN 1 ELSE 0 END
                       AS FOLDED,
                   CASE WHEN p.CALLTYPE <> {CONSULT} THEN 1 ELSE 0 END AS CAND,
                   SUM(CASE WHEN p.CALLTYPE <> {CONSULT} THEN 1 ELSE 0 END) OVER (
                       PARTITION BY p.DATA_SOURCE_KEY, p.ROOTIRID, p.AGENTID
                       ORDER BY p.CREATED_TS,
                                CASE WHEN p.CALLTYPE <> {CONSULT} THEN 0 ELSE 1 END, p.ID
                       ROWS UNBOUNDED PRECEDING) AS GRP
            FROM {parties} p WHERE p.AGENTID IS NOT NULL
        ) x""", analyze=False)
    # How the part began is its first party's (a consultation's receiver who then joins
    # the customer's call received a consultation); how it ended, its last party's.
    return temp(conn, "tx_irf_span", f"""
        SELECT g.DATA_SOURCE_KEY, g.ROOTIRID, g.GROUP_GUID, g.AGENTID,
               MIN(g.OWN_SOURCE_KEY) AS OWN_SOURCE_KEY,
               MIN(g.TENANTID) AS TENANTID, MIN(g.IS_MM) AS IS_MM,
               MIN(g.SUFFIX) AS SUFFIX, MIN(g.MEDIANAME) AS MEDIANAME,
               MIN(g.CREATED_TS) AS START_TS,
               CASE WHEN SUM(CASE WHEN g.TERMINATED_TS IS NULL THEN 1 ELSE 0 END) > 0
                    THEN NULL ELSE MAX(g.TERMINATED_TS) END AS END_TS,
               SUM(CASE WHEN g.FOLDED = 0 THEN g.ALERT_S ELSE 0 END) AS RING_S,
               SUM(CASE WHEN g.FOLDED = 0 AND g.CALLTYPE <> {CONSULT} THEN g.CONNECT_S
                        ELSE 0 END) AS TALK_S,
               SUM(CASE WHEN g.CALLTYPE <> {CONSULT} THEN g.HOLD_S ELSE 0 END) AS HOLD_S,
               SUM(CASE WHEN g.CALLTYPE <> {CONSULT} THEN g.HOLD_N ELSE 0 END) AS HOLD_N,
               SUM(CASE WHEN g.FOLDED = 1 THEN g.CONNECT_S ELSE 0 END) AS CONS_INIT_S,
               SUM(CASE WHEN g.FOLDED = 0 AND g.CALLTYPE = {CONSULT} THEN g.CONNECT_S
                        ELSE 0 END) AS CONS_RCV_S,
               MAX(g.EVER_CONNECTED) AS ACCEPTED,
               MAX(CASE WHEN g.FIRST_RN = 1 THEN g.CALLTYPE END) AS FIRST_CALLTYPE,
               MAX(CASE WHEN g.FIRST_RN = 1 AND g.PROLE = 1 AND g.CALLTYPE <> {CONSULT}
                        THEN 1 ELSE 0 END) AS INITIATED,
               MAX(CASE WHEN g.FIRST_RN = 1 THEN g.ENDPOINTID END) AS ENDPOINTID,
               MAX(CASE WHEN g.FIRST_RN = 1 THEN g.PLACEID END) AS PLACEID,
               MAX(CASE WHEN g.FIRST_RN = 1 THEN g.ENDPOINTDN END) AS TARGET_ADDRESS,
               MAX(CASE WHEN g.FIRST_RN = 1 THEN g.CALLID END) AS FIRST_CALLID,
               MAX(CASE WHEN g.LAST_RN = 1 THEN g.CCEVENT END) AS LAST_EVENT,
               MAX(CASE WHEN g.LAST_RN = 1 THEN g.CCEVENTCAUSE END) AS LAST_CAUSE,
               MAX(CASE WHEN g.TERMINATED_TS = g.LAST_END THEN g.ID END) AS LAST_PARTY_ID,
               CAST(0 AS INTEGER) AS ACW_S, CAST(0 AS INTEGER) AS ACW_OPEN,
               CAST(NULL AS INTEGER) AS ACW_TS, CAST(0 AS INTEGER) AS SHORT_CONFERENCE,
               CAST(0 AS INTEGER) AS STOPPED
        FROM (
            SELECT a.*,
                   ROW_NUMBER() OVER (PARTITION BY a.DATA_SOURCE_KEY, a.ROOTIRID,
                                      a.GROUP_GUID, a.AGENTID
                                      ORDER BY a.FOLDED, a.CREATED_TS, a.ID) AS FIRST_RN,
                   ROW_NUMBER() OVER (PARTITION BY a.DATA_SOURCE_KEY, a.ROOTIRID,
                                      a.GROUP_GUID, a.AGENTID
                                      ORDER BY a.FOLDED,
                                               CASE WHEN a.TERMINATED_TS IS NULL THEN 0
                                                    ELSE 1 END,
                                               a.TERMINATED_TS DESC, a.ID DESC) AS LAST_RN,
                   MAX(a.TERMINATED_TS) OVER (PARTITION BY a.DATA_SOURCE_KEY, a.ROOTIRID,
                                              a.GROUP_GUID, a.AGENTID) AS LAST_END
            FROM {grouped} a
        ) g
        GROUP BY g.DATA_SOURCE_KEY, g.ROOTIRID, g.GROUP_GUID, g.AGENTID""",
                analyze=("DATA_SOURCE_KEY", "AGENTID", "END_TS", "SUFFIX"))


def _short_conferences(conn: Connection, irf: str, parties: str, threshold: int) -> None:
    """introduced-transfer-threshold (voice): the part of an agent who began a conference
    and left it less than `threshold` seconds after the other agent joined, that agent
    staying on, ends as a transfer (the product's "introduced transfer"; ours: the plain
    Transferred descriptor, the product's exact role and reason not being documented).
    The conference began when the joining agent's conference-member party was added to
    the call the initiator's last party was on."""
    if threshold <= 0:
        return
    run(conn, f"""UPDATE {irf} SET SHORT_CONFERENCE = 1
        WHERE {irf}.IS_MM = 0 AND {irf}.LAST_CAUSE = {int(CCCause.CONFERENCE)}
          AND {irf}.FIRST_CALLTYPE <> {CONSULT} AND {irf}.END_TS IS NOT NULL
          AND EXISTS (
            SELECT 1 FROM {parties} l JOIN {parties} m
                 ON m.OWN_SOURCE_KEY = l.OWN_SOURCE_KEY AND m.CALLID = l.CALLID
            WHERE l.DATA_SOURCE_KEY = {irf}.DATA_SOURCE_KEY AND l.ROOTIRID = {irf}.ROOTIRID
              AND l.ID = {irf}.LAST_PARTY_ID AND l.AGENTID = {irf}.AGENTID
              AND m.PROLE = {int(PartyRole.CONFERENCE_MEMBER)} AND m.AGENTID IS NOT NULL
              AND m.AGENTID <> {irf}.AGENTID AND m.CREATED_TS <= {irf}.END_TS
              AND {irf}.END_TS - m.CREATED_TS < {int(threshold)}
              AND (m.TERMINATED_TS IS NULL OR m.TERMINATED_TS > {irf}.END_TS))""")


def _acw(conn: Connection, irf: str) -> None:
    """After-call work: the ACW state the agent enters when the part ends (within
    ACW_TOLERANCE, no other part of the agent ending in between), until the agent's next
    state of that session and media."""
    # ACW records that began within the tolerance after a part's end.
    cand = temp(conn, "tx_acw_cand", " UNION ALL ".join(f"""
        SELECT i.DATA_SOURCE_KEY, i.OWN_SOURCE_KEY, i.ROOTIRID, i.GROUP_GUID, i.AGENTID,
               i.END_TS, i.LAST_PARTY_ID, a.ID AS ACW_ID, a.ADDED_TS AS ACW_TS, a.SEQ AS ACW_SEQ,
               a.LOGINSESSIONID, a.MEDIANAME, '{s}' AS SUFFIX
        FROM {irf} i JOIN GIDB_G_AGENT_STATE_HISTORY{s} a
             ON a.DATA_SOURCE_KEY = i.OWN_SOURCE_KEY AND a.AGENTID = i.AGENTID
            AND a.ADDED_TS >= i.END_TS AND a.ADDED_TS <= i.END_TS + {ACW_TOLERANCE}
        WHERE i.SUFFIX = '{s}' AND i.END_TS IS NOT NULL AND a.STATE = {ACW}
          {'' if s == '_V' else 'AND a.MEDIANAME = i.MEDIANAME'}""" for s in SUFFIXES),
                analyze=("OWN_SOURCE_KEY", "AGENTID", "ACW_TS", "SUFFIX"))
    if not count(conn, cand):
        drop(conn, cand)
        return
    # Each ACW record belongs to the agent's party that ended last before it (of the same
    # media), whatever chunk that party's interaction is transformed in; the ACW lasts
    # until the agent's next state of that session and media. Both are first-row probes
    # of an index (agent, time), whose cost does not grow with the chunk or the table.
    # (The session is compared as an expression: offered the session index as well, the
    # planner ANDs both bitmaps and reads the agent's every later state, not the first.
    # Only the next state's time is wanted: ordering by time alone, the index's order,
    # stops at the first row rather than sorting every later one.)
    probes = " UNION ALL ".join(f"""
        SELECT c.OWN_SOURCE_KEY, c.ACW_ID,
               (SELECT q.ID FROM GIDB_G_PARTY{s} q
                {f"JOIN GIDB_G_CALL{s} k ON k.DATA_SOURCE_KEY = q.DATA_SOURCE_KEY AND k.CALLID = q.CALLID AND k.MEDIANAME = c.MEDIANAME" if s == '_MM' else ''}
                WHERE q.DATA_SOURCE_KEY = c.OWN_SOURCE_KEY AND q.AGENTID = c.AGENTID
                AND q.TERMINATED_TS >= c.ACW_TS - {ACW_TOLERANCE}
                AND q.TERMINATED_TS <= c.ACW_TS
                ORDER BY q.TERMINATED_TS DESC, q.ID DESC LIMIT 1) AS OWNER_ID,
               (SELECT n.ADDED_TS FROM GIDB_G_AGENT_STATE_HISTORY{s} n
                WHERE n.DATA_SOURCE_KEY = c.OWN_SOURCE_KEY AND n.AGENTID = c.AGENTID
                AND n.ADDED_TS >= c.ACW_TS AND n.LOGINSESSIONID || '' = c.LOGINSESSIONID
                AND COALESCE(n.MEDIANAME, 'voice') = COALESCE(c.MEDIANAME, 'voice')
                AND (n.ADDED_TS > c.ACW_TS OR n.SEQ > c.ACW_SEQ
                     OR (n.SEQ = c.ACW_SEQ AND n.ID > c.ACW_ID))
                ORDER BY n.ADDED_TS LIMIT 1) AS NEXT_TS
        FROM (SELECT DISTINCT OWN_SOURCE_KEY, ACW_ID, AGENTID, ACW_TS, ACW_SEQ,
                     LOGINSESSIONID, MEDIANAME FROM {cand} WHERE SUFFIX = '{s}') c"""
                              for s in SUFFIXES)
    owner = temp(conn, "tx_acw_owner", probes, analyze=("OWN_SOURCE_KEY", "ACW_ID"))
    acw = temp(conn, "tx_acw", f"""
        SELECT x.* FROM (
            SELECT c.DATA_SOURCE_KEY, c.ROOTIRID, c.GROUP_GUID, c.AGENTID, c.ACW_TS,
                   n.NEXT_TS, ROW_NUMBER() OVER (PARTITION BY c.DATA_SOURCE_KEY, c.ROOTIRID,
                                                 c.GROUP_GUID, c.AGENTID
                                                 ORDER BY c.ACW_TS, c.ACW_ID) AS RN
            FROM {cand} c
            JOIN {owner} n ON n.OWN_SOURCE_KEY = c.OWN_SOURCE_KEY AND n.ACW_ID = c.ACW_ID
                 AND n.OWNER_ID = c.LAST_PARTY_ID
        ) x WHERE x.RN = 1""", analyze=False)
    run(conn, f"""UPDATE {irf} SET
        ACW_S = CASE WHEN a.NEXT_TS IS NULL THEN 0 ELSE a.NEXT_TS - a.ACW_TS END,
        ACW_OPEN = CASE WHEN a.NEXT_TS IS NULL THEN 1 ELSE 0 END, ACW_TS = a.ACW_TS
        FROM {acw} a WHERE a.DATA_SOURCE_KEY = {irf}.DATA_SOURCE_KEY
        AND a.ROOTIRID = {irf}.ROOTIRID AND a.GROUP_GUID = {irf}.GROUP_GUID
        AND a.AGENTID = {irf}.AGENTID""")
    drop(conn, cand, owner, acw)


def _hold_back_open_acw(conn: Connection, roots: str, irf: str, calls: str, parties: str,
                        now: int, wait_timeout: int, out: ChunkResult) -> None:
    """Interactions with an agent still in after-call work wait (their IRF would change)
    unless they have waited longer than the dependency time-out."""
    waiting = temp(conn, "tx_wait", f"""
        SELECT DISTINCT i.DATA_SOURCE_KEY, i.ROOTIRID FROM {irf} i JOIN {roots} r
             ON r.DATA_SOURCE_KEY = i.DATA_SOURCE_KEY AND r.ENTITY_ID = i.ROOTIRID
        WHERE i.ACW_OPEN = 1 AND r.SINCE_TS > {now - wait_timeout}""", analyze=False)
    n = count(conn, waiting)
    if n:
        out.not_ready += n
        for table in (calls, parties, irf):
            run(conn, f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {waiting} w WHERE "
                      f"w.DATA_SOURCE_KEY = {table}.DATA_SOURCE_KEY AND w.ROOTIRID = "
                      f"{table}.ROOTIRID)")
    drop(conn, waiting)


# --------------------------------------------------------------------------------------------
# INTERACTION_FACT


def _interactions(conn: Connection, calls: str, audit: int, out: ChunkResult) -> str:
    """One row per interaction: its root call (the call whose IRID is the root, else the
    first call), times, type and media; new media and subtypes join their dimensions."""
    # The root call by a window over the interaction's calls: a join back to an aggregate
    # on a computed key is what planners misjudge worst.
    ixn = temp(conn, "tx_ixn", f"""
        SELECT CAST(NULL AS BIGINT) AS INTERACTION_ID, c.DATA_SOURCE_KEY,
               c.ROOTIRID AS ROOT_IRID, c.ROOTIRID AS MEDIA_SERVER_ROOT_IXN_GUID,
               COALESCE(c.TENANTID, 0) AS TENANT_KEY, c.CALLID AS MEDIA_SERVER_IXN_GUID,
               c.ANI AS SOURCE_ADDRESS, c.DNIS AS TARGET_ADDRESS, c.MEDIANAME, c.CALLTYPE,
               COALESCE(c.SUBTYPE, CASE c.CALLTYPE WHEN 2 THEN 'Inbound'
                        WHEN 3 THEN 'Outbound' WHEN 1 THEN 'Internal' ELSE 'Unknown' END)
                   AS SUBTYPE,
               c.IS_MM,
               CASE WHEN c.ARTIFICIAL > 0 THEN {f.STATUS_ENDED_WITH_PARTIES}
                    WHEN c.IRID = c.ROOTIRID THEN {f.STATUS_OK} ELSE {f.STATUS_PARTIAL} END
                   AS STATUS,
               c.START_TS, c.END_TS,
               (c.START_TS / 900) * 900 AS START_DATE_TIME_KEY,
               COALESCE((c.END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               CASE WHEN c.END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG,
               0 AS PURGE_FLAG, CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY,
               CAST(0 AS INTEGER) AS MEDIA_TYPE_KEY,
               CAST(0 AS INTEGER) AS INTERACTION_TYPE_KEY,
               CAST(NULL AS VARCHAR(1024)) AS SUBJECT, 0 AS FRESH
        FROM (
            SELECT c.*,
                   MIN(c.CREATED_TS) OVER w AS START_TS,
                   CASE WHEN SUM(CASE WHEN c.STATE = 2 THEN 0 ELSE 1 END) OVER w > 0 THEN NULL
                        ELSE MAX(c.TERMINATED_TS) OVER w END AS END_TS,
                   COUNT(c.ARTIFICIAL_END) OVER w AS ARTIFICIAL,
                   ROW_NUMBER() OVER (PARTITION BY c.DATA_SOURCE_KEY, c.ROOTIRID
                                      ORDER BY CASE WHEN c.IRID = c.ROOTIRID THEN 0 ELSE 1 END,
                                               c.ID) AS RN
            FROM {calls} c
            WINDOW w AS (PARTITION BY c.DATA_SOURCE_KEY, c.ROOTIRID)
        ) c WHERE c.RN = 1""", analyze=False)
    run(conn, f"CREATE INDEX IF NOT EXISTS {ixn}_ix ON {ixn} (DATA_SOURCE_KEY, ROOT_IRID)")
    run(conn, f"""UPDATE {ixn} SET SUBJECT = s.SUBJECT FROM (
        SELECT c.DATA_SOURCE_KEY, u.CALLID, MAX(u.G_SUBJECT) AS SUBJECT
        FROM GIDB_GM_F_USERDATA u JOIN {calls} c ON c.OWN_SOURCE_KEY = u.DATA_SOURCE_KEY
             AND c.CALLID = u.CALLID
        GROUP BY c.DATA_SOURCE_KEY, u.CALLID) s
        WHERE s.DATA_SOURCE_KEY = {ixn}.DATA_SOURCE_KEY
        AND s.CALLID = {ixn}.MEDIA_SERVER_IXN_GUID""")
    _dimension_members(conn, ixn, audit, out)
    run(conn, f"""UPDATE {ixn} SET MEDIA_TYPE_KEY = m.MEDIA_TYPE_KEY FROM MEDIA_TYPE m
        WHERE m.MEDIA_NAME_CODE = UPPER({ixn}.MEDIANAME)""")
    run(conn, f"""UPDATE {ixn} SET INTERACTION_TYPE_KEY = t.INTERACTION_TYPE_KEY
        FROM INTERACTION_TYPE t WHERE t.INTERACTION_TYPE_CODE = {_type_code(ixn)}
        AND t.INTERACTION_SUBTYPE_CODE = UPPER({ixn}.SUBTYPE)""")
    assign_keys(conn, ixn, "INTERACTION_ID", f.INTERACTION_FACT.name, "INTERACTION_ID",
                ["DATA_SOURCE_KEY", "MEDIA_SERVER_ROOT_IXN_GUID"], "INTERACTION_ID",
                fresh="FRESH")
    return ixn


def _type_code(ixn: str) -> str:
    return (f"CASE {ixn}.CALLTYPE WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'INBOUND' WHEN 3 THEN "
            f"'OUTBOUND' WHEN 4 THEN 'INTERNAL' ELSE 'UNKNOWN' END")


def _dimension_members(conn: Connection, ixn: str, audit: int, out: ChunkResult) -> int:
    """Media and interaction subtypes met for the first time join their dimensions (media
    gim does not know are offline). Returns how many media were new."""
    new_media, media = new_members(conn, "tx_new_media", f"""
        SELECT DISTINCT UPPER(i.MEDIANAME) AS CODE, i.MEDIANAME AS NAME FROM {ixn} i
        WHERE NOT EXISTS (SELECT 1 FROM MEDIA_TYPE m WHERE m.MEDIA_NAME_CODE =
                          UPPER(i.MEDIANAME))""", analyze=False)
    if media:
        run(conn, f"""INSERT INTO MEDIA_TYPE (MEDIA_TYPE_KEY, MEDIA_NAME, MEDIA_NAME_CODE,
            IS_ONLINE, CREATE_AUDIT_KEY, UPDATE_AUDIT_KEY)
            SELECT (SELECT MAX(MEDIA_TYPE_KEY) FROM MEDIA_TYPE) + ROW_NUMBER() OVER
                   (ORDER BY CODE), NAME, CODE, 0, {audit}, {audit} FROM {new_media}""")
    drop(conn, new_media)
    new_types, types = new_members(conn, "tx_new_types", f"""
        SELECT DISTINCT {_type_code('i')} AS TYPE_CODE, i.SUBTYPE FROM {ixn} i
        WHERE NOT EXISTS (SELECT 1 FROM INTERACTION_TYPE t WHERE t.INTERACTION_TYPE_CODE =
                          {_type_code('i')} AND t.INTERACTION_SUBTYPE_CODE =
                          UPPER(i.SUBTYPE))""", analyze=False)
    if types:
        run(conn, f"""INSERT INTO INTERACTION_TYPE (INTERACTION_TYPE_KEY, INTERACTION_TYPE,
            INTERACTION_TYPE_CODE, INTERACTION_SUBTYPE, INTERACTION_SUBTYPE_CODE, IGNORE,
            CREATE_AUDIT_KEY, UPDATE_AUDIT_KEY)
            SELECT (SELECT MAX(INTERACTION_TYPE_KEY) FROM INTERACTION_TYPE) + ROW_NUMBER()
                   OVER (ORDER BY TYPE_CODE, SUBTYPE),
                   SUBSTR(TYPE_CODE, 1, 1) || LOWER(SUBSTR(TYPE_CODE, 2)), TYPE_CODE,
                   SUBTYPE, UPPER(SUBTYPE), 0, {audit}, {audit} FROM {new_types}""")
    drop(conn, new_types)
    out.add("new dimension members", media + types)
    return media


def _placeholders(conn: Connection, calls: str, parties: str, audit: int,
                  out: ChunkResult) -> None:
    """Resources and places the chunk names that configuration never described."""
    refs = temp(conn, "tx_refs", f"""
        SELECT DISTINCT COALESCE(TENANTID, 0) AS TENANT_KEY, {CFG_PERSON} AS
               RESOURCE_CFG_TYPE_ID, AGENTID AS RESOURCE_CFG_DBID FROM {parties}
        WHERE AGENTID IS NOT NULL
        UNION SELECT DISTINCT COALESCE(TENANTID, 0), {CFG_DN}, ENDPOINTID FROM {parties}
        WHERE IS_MM = 0 AND ENDPOINTID IS NOT NULL
        UNION SELECT DISTINCT COALESCE(TENANTID, 0), {CFG_SCRIPT}, ENDPOINTID FROM {parties}
        WHERE TYPE = 4 AND ENDPOINTID IS NOT NULL
        UNION SELECT DISTINCT COALESCE(v.TENANTID, 0), {CFG_DN}, v.ENDPOINTID
        FROM GIDB_G_VIRTUAL_QUEUE_V v JOIN {calls} c ON c.OWN_SOURCE_KEY =
             v.DATA_SOURCE_KEY AND c.CALLID = v.CALLID WHERE v.ENDPOINTID IS NOT NULL""",
                analyze=False)
    out.add("placeholder resources", placeholder_resources(conn, refs, audit))
    places = temp(conn, "tx_place_refs", f"""
        SELECT DISTINCT COALESCE(TENANTID, 0) AS TENANT_KEY, PLACEID AS PLACE_CFG_DBID
        FROM {parties} WHERE PLACEID IS NOT NULL""", analyze=False)
    out.add("placeholder places", placeholder_places(conn, places, audit))
    drop(conn, refs, places)


def _resource_join(alias: str, kind: str, tenant: str, dbid: str) -> str:
    """A LEFT JOIN of RESOURCE_ as `alias` on its configuration identity (unique)."""
    return (f"LEFT JOIN RESOURCE_ {alias} ON {alias}.TENANT_KEY = {tenant} AND "
            f"{alias}.RESOURCE_CFG_TYPE_ID = {kind} AND {alias}.RESOURCE_CFG_DBID = {dbid}")


# --------------------------------------------------------------------------------------------
# MSF: time in ACD queues, virtual queues and interaction queues


def _segments(conn: Connection, calls: str, parties: str, ixn: str) -> str:
    raw = temp(conn, "tx_seg_raw", f"""
        SELECT c.DATA_SOURCE_KEY, c.ROOTIRID, v.CALLID, {CFG_DN} AS KIND, v.ENDPOINTID,
               v.ADDED_TS AS START_TS, v.REMOVED_TS AS END_TS, v.REMOVED_TS - v.ADDED_TS
                   AS DURATION,
               CASE v.RESULT WHEN 1 THEN 40 WHEN 2 THEN 42 WHEN 3 THEN 43 ELSE 0 END AS TD,
               v.ID AS ORDER_ID, 1 AS IS_VQ
        FROM GIDB_G_VIRTUAL_QUEUE_V v JOIN {calls} c ON c.OWN_SOURCE_KEY =
             v.DATA_SOURCE_KEY AND c.CALLID = v.CALLID AND c.SUFFIX = '_V'
        UNION ALL
        SELECT p.DATA_SOURCE_KEY, p.ROOTIRID, p.CALLID,
               CASE WHEN p.TYPE = 4 THEN {CFG_SCRIPT} ELSE {CFG_DN} END, p.ENDPOINTID,
               p.CREATED_TS, p.TERMINATED_TS, p.QUEUE_S,
               CASE WHEN p.CCEVENT = 7 THEN 42 WHEN p.CCEVENT = 9 THEN 40
                    WHEN p.TERMINATED_TS IS NULL THEN 0 ELSE 48 END, p.ID, 0
        FROM {parties} p WHERE p.TYPE = 4 OR (p.TYPE = 1 AND p.ENDPOINTTYPE = 3)""",
               analyze=False)
    rows = temp(conn, "tx_msf", f"""
        SELECT i.INTERACTION_ID * {IRF_SPAN} + {MSF_OFFSET} + ROW_NUMBER() OVER (
                   PARTITION BY i.INTERACTION_ID ORDER BY s.START_TS, s.ORDER_ID)
                   AS MEDIATION_SEGMENT_ID,
               (s.START_TS / 900) * 900 AS START_DATE_TIME_KEY, i.INTERACTION_ID,
               i.TENANT_KEY, i.MEDIA_TYPE_KEY, i.INTERACTION_TYPE_KEY,
               s.TD AS TECHNICAL_DESCRIPTOR_KEY, COALESCE(q.RESOURCE_KEY, -1) AS RESOURCE_KEY,
               -1 AS RESOURCE_GROUP_COMBINATION_KEY,
               CAST(NULL AS BIGINT) AS TARGET_IXN_RESOURCE_ID,
               CAST(NULL AS INTEGER) AS TARGET_IXN_RESOURCE_SDT_KEY,
               s.CALLID AS MEDIA_SERVER_IXN_GUID, s.START_TS, s.END_TS,
               COALESCE((s.END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               COALESCE(s.DURATION, 0) AS MEDIATION_DURATION,
               CASE WHEN s.END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG,
               0 AS PURGE_FLAG, CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY, s.IS_VQ
        FROM {raw} s JOIN {ixn} i ON i.DATA_SOURCE_KEY = s.DATA_SOURCE_KEY
             AND i.ROOT_IRID = s.ROOTIRID
        {_resource_join('q', 's.KIND', 'i.TENANT_KEY', 's.ENDPOINTID')}""", analyze=False)
    drop(conn, raw)
    return rows


# --------------------------------------------------------------------------------------------
# IRF rows


def _descriptor_case() -> str:
    """The technical descriptor of an IRF from how its part began and ended (codes of
    gim.schema.seed)."""
    k = seed.technical_descriptor_key
    consult = f"x.FIRST_CALLTYPE = {CONSULT}"
    return f"""CASE
        WHEN x.END_TS IS NULL THEN {k('Received', 'Unspecified', 'None', 'Unspecified')}
        WHEN x.STOPPED = 1 THEN {k('Received', 'Unspecified', 'Completed', 'Unspecified')}
        WHEN x.INITIATED = 1 AND x.RING_S = 0
             THEN {k('Initiated', 'Unspecified', 'Completed', 'Unspecified')}
        WHEN x.ACCEPTED = 0 AND x.LAST_CAUSE = 4 AND {consult}
             THEN {k('ReceivedConsult', 'Unspecified', 'Redirected', 'RoutedOnNoAnswer')}
        WHEN x.ACCEPTED = 0 AND x.LAST_CAUSE = 4
             THEN {k('Received', 'Unspecified', 'Redirected', 'RoutedOnNoAnswer')}
        WHEN x.ACCEPTED = 0 AND x.LAST_EVENT = 7 AND {consult}
             THEN {k('ReceivedConsult', 'Unspecified', 'Abandoned', 'AbandonedWhileRinging')}
        WHEN x.ACCEPTED = 0 AND x.LAST_EVENT = 7
             THEN {k('Received', 'Unspecified', 'Abandoned', 'AbandonedWhileRinging')}
        WHEN x.ACCEPTED = 0 THEN {k('Received', 'Unspecified', 'Incomplete', 'Unspecified')}
        WHEN x.LAST_CAUSE = 1 AND {consult}
             THEN {k('ReceivedConsult', 'Unspecified', 'Transferred', 'Unspecified')}
        WHEN x.LAST_CAUSE = 1 THEN {k('Received', 'Unspecified', 'Transferred', 'Unspecified')}
        WHEN x.SHORT_CONFERENCE = 1
             THEN {k('Received', 'Unspecified', 'Transferred', 'Unspecified')}
        WHEN x.LAST_CAUSE = 2 AND {consult}
             THEN {k('ReceivedConsult', 'ConferenceJoined', 'Conferenced', 'Unspecified')}
        WHEN x.LAST_CAUSE = 2
             THEN {k('Received', 'ConferenceInitiator', 'Conferenced', 'Unspecified')}
        WHEN {consult} THEN {k('ReceivedConsult', 'Unspecified', 'Completed', 'Unspecified')}
        ELSE {k('Received', 'Unspecified', 'Completed', 'AnsweredByAgent')} END"""


# The columns of an agent's part (_irf_spans) an IRF row is made from, in this order.
_IRF_PART_COLUMNS = ("DATA_SOURCE_KEY", "ROOTIRID", "GROUP_GUID", "AGENTID", "IS_MM",
                     "START_TS", "END_TS", "RING_S", "TALK_S", "HOLD_S", "HOLD_N",
                     "CONS_INIT_S", "CONS_RCV_S", "ACW_S", "ACW_OPEN", "ACW_TS", "ENDPOINTID",
                     "PLACEID", "TARGET_ADDRESS", "FIRST_CALLID")


def _irf_rows(conn: Connection, irf: str, parties: str, ixn: str) -> str:
    too_many = run(conn, f"SELECT COUNT(*) FROM (SELECT DATA_SOURCE_KEY, ROOTIRID FROM {irf} "
                         f"GROUP BY DATA_SOURCE_KEY, ROOTIRID HAVING COUNT(*) >= "
                         f"{MSF_OFFSET - 1}) x").scalar_one()
    if too_many:
        raise ValueError("an interaction with more than 498 resource attempts")
    k = seed.technical_descriptor_key
    mediation = ("(m.TYPE = 4 OR (m.TYPE = 1 AND m.ENDPOINTTYPE IN "
                 f"({int(DnType.ACD_QUEUE)}, {int(DnType.ROUTING_POINT)})))")
    agent_cols = ", ".join(f"s.{c}" for c in _IRF_PART_COLUMNS)
    # The parts: each agent's (see _irf_spans), and the mediation resource an interaction
    # ended in (a routing point, ACD queue or interaction queue it was abandoned or routed
    # away from: the product writes an IRF for such a resource too). That is the party of
    # a mediation DN that came last, ended, with no agent's part begun after it began nor
    # still going when it ended (a consultation to a queue the agent then cancelled is no
    # end). It begins after every agent's part, so it takes the last ordinal. (Ours: the
    # role RoutedTo and the results Routed / Abandoned.)
    parts = f"""
        SELECT {agent_cols}, {_descriptor_case().replace('x.', 's.')} AS TD,
               {CFG_PERSON} AS RES_KIND, s.AGENTID AS RES_DBID, 0 AS MED_S
        FROM {irf} s
        UNION ALL
        SELECT p.DATA_SOURCE_KEY, p.ROOTIRID, p.PARTYGUID, CAST(NULL AS INTEGER), p.IS_MM,
               p.CREATED_TS, p.TERMINATED_TS, 0, 0, 0, 0, 0, 0, 0, 0, CAST(NULL AS INTEGER),
               p.ENDPOINTID, p.PLACEID, p.ENDPOINTDN, p.CALLID,
               CASE WHEN p.CCEVENT = {int(CCEvent.ABANDONED)}
                    THEN {k('RoutedTo', 'Unspecified', 'Abandoned', 'AbandonedWhileQueued')}
                    ELSE {k('RoutedTo', 'Unspecified', 'Routed', 'Unspecified')} END,
               CASE WHEN p.TYPE = 4 THEN {CFG_SCRIPT} ELSE {CFG_DN} END, p.ENDPOINTID,
               p.TERMINATED_TS - p.CREATED_TS
        FROM (SELECT m.*, ROW_NUMBER() OVER (PARTITION BY m.DATA_SOURCE_KEY, m.ROOTIRID
                                             ORDER BY m.CREATED_TS DESC, m.ID DESC) AS RN
              FROM {parties} m WHERE m.AGENTID IS NULL AND {mediation}) p
        LEFT JOIN (SELECT DATA_SOURCE_KEY, ROOTIRID, MAX(CREATED_TS) AS LAST_START,
                          MAX(COALESCE(TERMINATED_TS, {FAR})) AS LAST_END
                   FROM {parties} WHERE AGENTID IS NOT NULL
                   GROUP BY DATA_SOURCE_KEY, ROOTIRID) a
             ON a.DATA_SOURCE_KEY = p.DATA_SOURCE_KEY AND a.ROOTIRID = p.ROOTIRID
        WHERE p.RN = 1 AND p.TERMINATED_TS IS NOT NULL
          AND (a.LAST_START IS NULL OR a.LAST_START < p.CREATED_TS)
          AND (a.LAST_END IS NULL OR a.LAST_END <= p.TERMINATED_TS)"""
    rows = temp(conn, "tx_irf", f"""
        SELECT i.INTERACTION_ID * {IRF_SPAN} + x.ORDINAL AS INTERACTION_RESOURCE_ID,
               (x.START_TS / 900) * 900 AS START_DATE_TIME_KEY, i.INTERACTION_ID,
               i.START_DATE_TIME_KEY AS INTERACTION_SDT_KEY, i.TENANT_KEY, i.MEDIA_TYPE_KEY,
               i.INTERACTION_TYPE_KEY, x.TD AS TECHNICAL_DESCRIPTOR_KEY,
               COALESCE(ra.RESOURCE_KEY, -1) AS RESOURCE_KEY,
               CASE WHEN x.IS_MM = 0 THEN rd.RESOURCE_KEY END AS MEDIA_RESOURCE_KEY,
               pl.PLACE_KEY,
               -1 AS RESOURCE_GROUP_COMBINATION_KEY, -2 AS INTERACTION_DESCRIPTOR_KEY,
               x.ORDINAL AS INTERACTION_RESOURCE_ORDINAL,
               CAST(NULL AS BIGINT) AS RECEIVED_FROM_IXN_RESOURCE_ID,
               CAST(NULL AS BIGINT) AS MEDIATION_SEGMENT_ID,
               CAST(NULL AS INTEGER) AS LAST_VQUEUE_RESOURCE_KEY,
               CAST(NULL AS INTEGER) AS LAST_QUEUE_RESOURCE_KEY,
               x.GROUP_GUID AS PARTYGUID, x.START_TS, x.END_TS,
               COALESCE((x.END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               CASE WHEN x.RING_S > 0 THEN 1 ELSE 0 END AS RING_COUNT,
               x.RING_S AS RING_DURATION,
               CASE WHEN x.TALK_S > 0 THEN 1 ELSE 0 END AS TALK_COUNT,
               x.TALK_S AS TALK_DURATION, x.HOLD_N AS HOLD_COUNT, x.HOLD_S AS HOLD_DURATION,
               CASE WHEN x.ACW_S > 0 THEN 1 ELSE 0 END AS AFTER_CALL_WORK_COUNT,
               x.ACW_S AS AFTER_CALL_WORK_DURATION,
               CASE WHEN x.CONS_INIT_S > 0 THEN 1 ELSE 0 END AS CONS_INIT_TALK_COUNT,
               x.CONS_INIT_S AS CONS_INIT_TALK_DURATION,
               CASE WHEN x.CONS_RCV_S > 0 THEN 1 ELSE 0 END AS CONS_RCV_TALK_COUNT,
               x.CONS_RCV_S AS CONS_RCV_TALK_DURATION, x.MED_S AS MEDIATION_DURATION,
               CASE WHEN x.ORDINAL = x.LAST_ORDINAL THEN 1 ELSE 0 END
                   AS LAST_INTERACTION_RESOURCE,
               x.TARGET_ADDRESS,
               CASE WHEN x.END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG, 0 AS PURGE_FLAG,
               CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY, x.ROOTIRID, x.DATA_SOURCE_KEY,
               x.FIRST_CALLID, x.AGENTID AS X_AGENTID, x.ACW_TS AS X_ACW_TS,
               x.ACW_OPEN AS X_ACW_OPEN
        FROM (SELECT s.*,
                     ROW_NUMBER() OVER (PARTITION BY s.DATA_SOURCE_KEY, s.ROOTIRID
                                        ORDER BY s.START_TS, s.GROUP_GUID) AS ORDINAL,
                     COUNT(*) OVER (PARTITION BY s.DATA_SOURCE_KEY, s.ROOTIRID)
                         AS LAST_ORDINAL
              FROM ({parts}) s) x
        JOIN {ixn} i ON i.DATA_SOURCE_KEY = x.DATA_SOURCE_KEY AND i.ROOT_IRID = x.ROOTIRID
        {_resource_join('ra', 'x.RES_KIND', 'i.TENANT_KEY', 'x.RES_DBID')}
        {_resource_join('rd', CFG_DN, 'i.TENANT_KEY', 'x.ENDPOINTID')}
        LEFT JOIN PLACE pl ON pl.TENANT_KEY = i.TENANT_KEY AND pl.PLACE_CFG_DBID = x.PLACEID""",
                analyze=False)
    run(conn, f"CREATE INDEX IF NOT EXISTS {rows}_ix ON {rows} (DATA_SOURCE_KEY, ROOTIRID)")
    return rows



def _lineage(conn: Connection, calls: str, parties: str, irf_rows: str, msf: str) -> None:
    """Who delivered each agent's part: the stay in a queue or virtual queue that
    distributed the interaction to it (MSF.TARGET_IXN_RESOURCE_ID, and the IRF's
    MEDIATION_SEGMENT_ID, LAST_QUEUE / LAST_VQUEUE_RESOURCE_KEY, MEDIATION_DURATION), and
    for a consultation received, the part of the agent who initiated it
    (RECEIVED_FROM_IXN_RESOURCE_ID).

    A stay distributed the interaction to the agent whose part begins on the stay's call
    when the stay ends (within ACW_TOLERANCE seconds: ICON writes the two from different
    events), the earliest such part. (Ours: the product does not document how it pairs
    them.) A virtual queue and an ACD queue may both deliver one part; the part's segment
    is then the ACD queue's, and its mediation time the longer stay."""
    targets = temp(conn, "tx_msf_target", f"""
        SELECT x.* FROM (
            SELECT m.MEDIATION_SEGMENT_ID, m.IS_VQ, m.RESOURCE_KEY, m.MEDIATION_DURATION,
                   r.INTERACTION_RESOURCE_ID, r.START_DATE_TIME_KEY AS IRF_SDT_KEY,
                   ROW_NUMBER() OVER (PARTITION BY m.MEDIATION_SEGMENT_ID
                                      ORDER BY r.START_TS, r.INTERACTION_RESOURCE_ID) AS RN
            FROM {msf} m JOIN {irf_rows} r ON r.INTERACTION_ID = m.INTERACTION_ID
                 AND r.FIRST_CALLID = m.MEDIA_SERVER_IXN_GUID
                 AND r.START_TS >= m.END_TS AND r.START_TS <= m.END_TS + {ACW_TOLERANCE}
                 AND r.X_AGENTID IS NOT NULL
            WHERE m.TECHNICAL_DESCRIPTOR_KEY IN (40, 48)) x
        WHERE x.RN = 1""", analyze=False)
    run(conn, f"""UPDATE {msf} SET TARGET_IXN_RESOURCE_ID = t.INTERACTION_RESOURCE_ID,
        TARGET_IXN_RESOURCE_SDT_KEY = t.IRF_SDT_KEY FROM {targets} t
        WHERE t.MEDIATION_SEGMENT_ID = {msf}.MEDIATION_SEGMENT_ID""")
    run(conn, f"""UPDATE {irf_rows} SET MEDIATION_SEGMENT_ID = d.SEGMENT,
        LAST_QUEUE_RESOURCE_KEY = d.QUEUE_KEY, LAST_VQUEUE_RESOURCE_KEY = d.VQUEUE_KEY,
        MEDIATION_DURATION = d.DURATION FROM (
            SELECT INTERACTION_RESOURCE_ID,
                   COALESCE(MAX(CASE WHEN IS_VQ = 0 THEN MEDIATION_SEGMENT_ID END),
                            MAX(MEDIATION_SEGMENT_ID)) AS SEGMENT,
                   MAX(CASE WHEN IS_VQ = 0 THEN RESOURCE_KEY END) AS QUEUE_KEY,
                   MAX(CASE WHEN IS_VQ = 1 THEN RESOURCE_KEY END) AS VQUEUE_KEY,
                   MAX(MEDIATION_DURATION) AS DURATION
            FROM {targets} GROUP BY INTERACTION_RESOURCE_ID) d
        WHERE d.INTERACTION_RESOURCE_ID = {irf_rows}.INTERACTION_RESOURCE_ID""")
    # A consultation's receiver: the part began on a consultation call; the initiator is
    # that call's initiating agent, in the part of theirs under way when it began.
    run(conn, f"""UPDATE {irf_rows} SET RECEIVED_FROM_IXN_RESOURCE_ID = d.FROM_ID FROM (
        SELECT r.INTERACTION_RESOURCE_ID, MAX(a.INTERACTION_RESOURCE_ID) AS FROM_ID
        FROM {irf_rows} r
        JOIN {calls} k ON k.DATA_SOURCE_KEY = r.DATA_SOURCE_KEY AND k.CALLID = r.FIRST_CALLID
             AND k.CALLTYPE = {CONSULT}
        JOIN {parties} p ON p.DATA_SOURCE_KEY = k.DATA_SOURCE_KEY AND p.CALLID = k.CALLID
             AND p.PROLE = 1 AND p.AGENTID IS NOT NULL AND p.AGENTID <> r.X_AGENTID
        JOIN {irf_rows} a ON a.INTERACTION_ID = r.INTERACTION_ID AND a.X_AGENTID = p.AGENTID
             AND a.START_TS <= k.CREATED_TS
             AND (a.END_TS IS NULL OR a.END_TS >= k.CREATED_TS)
        GROUP BY r.INTERACTION_RESOURCE_ID) d
        WHERE d.INTERACTION_RESOURCE_ID = {irf_rows}.INTERACTION_RESOURCE_ID""")
    # A consultation received from another site: the part began on this site's call that
    # the other site's consultation call reached (see _remote_consultations); the initiator
    # is that consultation call's initiating agent, in the part under way when it began.
    run(conn, f"""UPDATE {irf_rows} SET RECEIVED_FROM_IXN_RESOURCE_ID = d.FROM_ID FROM (
        SELECT r.INTERACTION_RESOURCE_ID, MAX(a.INTERACTION_RESOURCE_ID) AS FROM_ID
        FROM {irf_rows} r
        JOIN {calls} c ON c.DATA_SOURCE_KEY = r.DATA_SOURCE_KEY AND c.CALLID = r.FIRST_CALLID
        JOIN tx_remote_cons x ON x.OWN_SOURCE_KEY = c.OWN_SOURCE_KEY AND x.CALLID = c.CALLID
             AND r.START_TS < x.CONSULT_END
        JOIN {parties} p ON p.OWN_SOURCE_KEY = x.K_SOURCE AND p.CALLID = x.K_CALLID
             AND p.PROLE = 1 AND p.AGENTID IS NOT NULL
        JOIN {irf_rows} a ON a.INTERACTION_ID = r.INTERACTION_ID AND a.X_AGENTID = p.AGENTID
             AND a.START_TS <= x.K_CREATED
             AND (a.END_TS IS NULL OR a.END_TS >= x.K_CREATED)
        WHERE r.X_AGENTID IS NOT NULL AND r.RECEIVED_FROM_IXN_RESOURCE_ID IS NULL
        GROUP BY r.INTERACTION_RESOURCE_ID) d
        WHERE d.INTERACTION_RESOURCE_ID = {irf_rows}.INTERACTION_RESOURCE_ID""")
    # Any other agent's part came from the part that last transferred the interaction
    # before it began (a single-step transfer, straight or through a queue; a consultation
    # completed as a transfer has named its receiver above), if one did. (Ours: the product
    # does not document the pairing; a part that only rang in between transferred nothing.)
    k = seed.technical_descriptor_key
    transferred = ", ".join(str(k(role, "Unspecified", "Transferred", "Unspecified"))
                            for role in ("Received", "ReceivedConsult"))
    run(conn, f"""UPDATE {irf_rows} SET RECEIVED_FROM_IXN_RESOURCE_ID = d.FROM_ID FROM (
        SELECT x.INTERACTION_RESOURCE_ID, x.FROM_ID FROM (
            SELECT r.INTERACTION_RESOURCE_ID, a.INTERACTION_RESOURCE_ID AS FROM_ID,
                   ROW_NUMBER() OVER (PARTITION BY r.INTERACTION_RESOURCE_ID
                                      ORDER BY a.END_TS DESC, a.INTERACTION_RESOURCE_ID DESC)
                       AS RN
            FROM {irf_rows} r JOIN {irf_rows} a ON a.DATA_SOURCE_KEY = r.DATA_SOURCE_KEY
                 AND a.ROOTIRID = r.ROOTIRID AND a.X_AGENTID IS NOT NULL
                 AND a.TECHNICAL_DESCRIPTOR_KEY IN ({transferred}) AND a.END_TS <= r.START_TS
                 AND a.INTERACTION_RESOURCE_ID <> r.INTERACTION_RESOURCE_ID
            WHERE r.X_AGENTID IS NOT NULL AND r.RECEIVED_FROM_IXN_RESOURCE_ID IS NULL) x
        WHERE x.RN = 1) d
        WHERE d.INTERACTION_RESOURCE_ID = {irf_rows}.INTERACTION_RESOURCE_ID""")
    drop(conn, targets)


# --------------------------------------------------------------------------------------------
# User data: each mapped attached-data key's value for each resource fact, chosen by the
# propagation rule of its CTL_UD_TO_UDE_MAPPING row.


DESCRIPTOR_COLUMNS = ("CUSTOMER_SEGMENT", "SERVICE_TYPE", "SERVICE_SUBTYPE", "BUSINESS_RESULT")

# The propagation rules, and the changes of a key on the interaction's calls each one picks
# for a resource fact r (u: the change; deleting a key is a change to no value):
#   CALL              the latest change made by anyone until the interaction left the
#                     resource (r's end; an active fact: until now);
#   PARTY             the latest change made by the fact's own party (its PARTYID, or the
#                     fact's agent for a change that names no party but the agent, such as
#                     data an agent's desktop sends with a UserEvent), whenever it came:
#                     the only rule that keeps what an agent records after the call;
#   IRF               the latest change made during the fact (from r's start to its end);
#   IRF_FIRST_UPDATE  the first change made during the fact, the window reaching back over
#                     the facts just before it that ended Redirected (ringing that was not
#                     answered and went on to this resource);
#   IRF_INITIAL       (ours: the product's meaning is not documented) the value in effect
#                     when the fact began: the latest change up to r's start.
# The product also knows IRF_ROUTE, whose meaning is not documented either: a mapping row
# with it (or any other rule) stops the transformation before it writes anything.
PROPAGATION_RULES = ("CALL", "PARTY", "IRF", "IRF_FIRST_UPDATE", "IRF_INITIAL")
USER_DATA_TABLES = {t.name: t for t in (f.IRF_USER_DATA_GEN_1, f.IRF_USER_DATA_CUST_1)}
_UDE_OWN_COLUMNS = ("INTERACTION_RESOURCE_ID", "START_DATE_TIME_KEY", "TENANT_KEY",
                    "CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY")


@dataclass(frozen=True)
class Mapping:
    key: str
    table: str
    column: str
    rule: str
    default: str | None


def user_data_mapping(conn: Connection) -> list[Mapping]:
    """The active rows of CTL_UD_TO_UDE_MAPPING, checked: a row naming a table, column or
    propagation rule gim does not know raises ConfigError naming the row."""
    from gim.errors import ConfigError

    out: list[Mapping] = []
    taken: dict[tuple[str, str], int] = {}
    for row_id, key, table, column, rule, default in run(conn, """
            SELECT ID, UD_KEY_NAME, UDE_TABLE_NAME, UDE_COLUMN_NAME, PROPAGATION_RULE,
                   DEFAULT_VALUE FROM CTL_UD_TO_UDE_MAPPING WHERE ACTIVE_FLAG = 1
            ORDER BY ID"""):
        where = f"CTL_UD_TO_UDE_MAPPING row ID {row_id} (key {key!r})"
        table, column = (table or "").strip().upper(), (column or "").strip().upper()
        rule = (rule or "").strip().upper()
        if rule not in PROPAGATION_RULES:
            raise ConfigError(f"{where}: propagation rule {rule!r} is not supported (one of "
                              f"{', '.join(PROPAGATION_RULES)})")
        if table == "INTERACTION_DESCRIPTOR":
            known: tuple[str, ...] = DESCRIPTOR_COLUMNS
        elif table in USER_DATA_TABLES:
            known = tuple(c.name for c in USER_DATA_TABLES[table].columns
                          if c.name not in _UDE_OWN_COLUMNS)
        else:
            raise ConfigError(f"{where}: unknown table {table!r} (one of "
                              f"INTERACTION_DESCRIPTOR, {', '.join(USER_DATA_TABLES)})")
        if column not in known:
            raise ConfigError(f"{where}: {table} has no column {column!r} for user data")
        if (table, column) in taken:
            raise ConfigError(f"{where}: {table}.{column} is already mapped by row ID "
                              f"{taken[table, column]}")
        taken[table, column] = row_id
        out.append(Mapping(key, table, column, rule, default))
    return out


def _subjects(conn: Connection, irf_rows: str, msf: str, ixn: str, voice: bool,
              multimedia: bool) -> str:
    """The facts user data is kept for: every IRF, and the MSFs of the media
    link-msf-userdata-voice / -mm name (their rows in the extension tables go by
    MEDIATION_SEGMENT_ID, which no IRF shares). An MSF stands for the party of the IRF it
    distributed the interaction to (the product's PARTY rule for MSFs)."""
    media = [m for m, on in (("0", voice), ("1", multimedia)) if on]
    segments = f"""
        UNION ALL
        SELECT m.MEDIATION_SEGMENT_ID, m.START_DATE_TIME_KEY, m.TENANT_KEY, i.DATA_SOURCE_KEY,
               i.ROOT_IRID, m.START_TS, m.END_TS, t.X_AGENTID, t.PARTYGUID,
               m.INTERACTION_ID, CAST(NULL AS INTEGER), m.TECHNICAL_DESCRIPTOR_KEY,
               m.TARGET_IXN_RESOURCE_ID, 1
        FROM {msf} m JOIN {ixn} i ON i.INTERACTION_ID = m.INTERACTION_ID
        LEFT JOIN {irf_rows} t ON t.INTERACTION_RESOURCE_ID = m.TARGET_IXN_RESOURCE_ID
        WHERE i.IS_MM IN ({', '.join(media)})""" if media else ""
    return temp(conn, "tx_ud_subject", f"""
        SELECT r.INTERACTION_RESOURCE_ID, r.START_DATE_TIME_KEY, r.TENANT_KEY,
               r.DATA_SOURCE_KEY, r.ROOTIRID, r.START_TS, r.END_TS, r.X_AGENTID,
               r.PARTYGUID, r.INTERACTION_ID, r.INTERACTION_RESOURCE_ORDINAL AS ORDINAL,
               r.TECHNICAL_DESCRIPTOR_KEY, CAST(NULL AS BIGINT) AS TARGET_ID, 0 AS IS_MSF
        FROM {irf_rows} r{segments}""")


def _irf_parties(conn: Connection, parties: str, subjects: str) -> str:
    """(INTERACTION_RESOURCE_ID, OWN_SOURCE_KEY, PARTYID): the parties each resource fact
    was made of (an agent's, grouped as in _irf_spans; a mediation resource's, its one); an
    MSF's, those of the IRF it distributed to."""
    own = temp(conn, "tx_irf_party", f"""
        SELECT r.INTERACTION_RESOURCE_ID, g.OWN_SOURCE_KEY, g.PARTYID
        FROM {subjects} r JOIN tx_agent_party g ON g.DATA_SOURCE_KEY = r.DATA_SOURCE_KEY
             AND g.ROOTIRID = r.ROOTIRID AND g.GROUP_GUID = r.PARTYGUID
             AND g.AGENTID = r.X_AGENTID
        WHERE r.IS_MSF = 0
        UNION ALL
        SELECT r.INTERACTION_RESOURCE_ID, p.OWN_SOURCE_KEY, p.PARTYID
        FROM {subjects} r JOIN {parties} p ON p.DATA_SOURCE_KEY = r.DATA_SOURCE_KEY
             AND p.ROOTIRID = r.ROOTIRID AND p.PARTYGUID = r.PARTYGUID
        WHERE r.X_AGENTID IS NULL AND r.IS_MSF = 0""")
    run(conn, f"""INSERT INTO {own} (INTERACTION_RESOURCE_ID, OWN_SOURCE_KEY, PARTYID)
        SELECT s.INTERACTION_RESOURCE_ID, q.OWN_SOURCE_KEY, q.PARTYID
        FROM {subjects} s JOIN {own} q ON q.INTERACTION_RESOURCE_ID = s.TARGET_ID
        WHERE s.IS_MSF = 1""")
    return own


def _first_update_windows(conn: Connection, irf_rows: str) -> str:
    """(INTERACTION_RESOURCE_ID, FROM_TS): where IRF_FIRST_UPDATE's window begins, the
    start of the earliest of the facts ended Redirected that lead, one after the other, to
    this one (or its own start)."""
    return temp(conn, "tx_ud_window", f"""
        SELECT INTERACTION_RESOURCE_ID, START_TS AS FROM_TS FROM {irf_rows} WHERE IS_MSF = 1
        UNION ALL
        SELECT y.INTERACTION_RESOURCE_ID, MIN(y.START_TS) OVER (
                   PARTITION BY y.INTERACTION_ID, y.CHAIN) AS FROM_TS
        FROM (SELECT x.*, SUM(x.NEW_CHAIN) OVER (
                         PARTITION BY x.INTERACTION_ID ORDER BY x.ORDINAL
                         ROWS UNBOUNDED PRECEDING) AS CHAIN
              FROM (SELECT r.INTERACTION_ID, r.INTERACTION_RESOURCE_ID, r.ORDINAL, r.START_TS,
                           CASE WHEN LAG(CASE WHEN t.TECHNICAL_RESULT = 'Redirected' THEN 1
                                              ELSE 0 END) OVER (
                                         PARTITION BY r.INTERACTION_ID ORDER BY r.ORDINAL) = 1
                                THEN 0 ELSE 1 END AS NEW_CHAIN
                    FROM {irf_rows} r LEFT JOIN TECHNICAL_DESCRIPTOR t
                         ON t.TECHNICAL_DESCRIPTOR_KEY = r.TECHNICAL_DESCRIPTOR_KEY
                    WHERE r.IS_MSF = 0) x) y""")


def _rule_values(conn: Connection, rule: str, keys: list[str], irf_rows: str,
                 changes: str) -> str:
    """SELECT of (INTERACTION_RESOURCE_ID, KEYNAME, VALUE): the change `rule` picks for each
    resource fact and key."""
    quoted = literals(keys)
    until_end = "(r.END_TS IS NULL OR u.ADDED_TS <= r.END_TS)"
    same_ixn = ("u.DATA_SOURCE_KEY = r.DATA_SOURCE_KEY AND u.ROOTIRID = r.ROOTIRID AND "
                f"u.KEYNAME IN ({quoted})")
    order = "ASC" if rule == "IRF_FIRST_UPDATE" else "DESC"
    if rule == "PARTY":
        # By one of the fact's parties; a change naming no party but the fact's agent,
        # made after the fact began, is the agent's too.
        source = f"""
            SELECT r.INTERACTION_RESOURCE_ID, u.KEYNAME, u.VALUE, u.ADDED_TS, u.ID
            FROM {irf_rows} r JOIN tx_irf_party q
                 ON q.INTERACTION_RESOURCE_ID = r.INTERACTION_RESOURCE_ID
            JOIN {changes} u ON {same_ixn} AND u.OWN_SOURCE_KEY = q.OWN_SOURCE_KEY
                 AND u.PARTYID = q.PARTYID
            UNION ALL
            SELECT r.INTERACTION_RESOURCE_ID, u.KEYNAME, u.VALUE, u.ADDED_TS, u.ID
            FROM {irf_rows} r JOIN {changes} u ON {same_ixn} AND u.PARTYID IS NULL
                 AND u.AGENTID = r.X_AGENTID AND u.ADDED_TS >= r.START_TS"""
    else:
        window = {"CALL": until_end,
                  "IRF": f"u.ADDED_TS >= r.START_TS AND {until_end}",
                  "IRF_FIRST_UPDATE": f"u.ADDED_TS >= w.FROM_TS AND {until_end}",
                  "IRF_INITIAL": "u.ADDED_TS <= r.START_TS"}[rule]
        windows = ("JOIN tx_ud_window w ON w.INTERACTION_RESOURCE_ID = "
                   "r.INTERACTION_RESOURCE_ID" if rule == "IRF_FIRST_UPDATE" else "")
        source = f"""
            SELECT r.INTERACTION_RESOURCE_ID, u.KEYNAME, u.VALUE, u.ADDED_TS, u.ID
            FROM {irf_rows} r {windows} JOIN {changes} u ON {same_ixn} AND {window}"""
    return f"""
        SELECT x.INTERACTION_RESOURCE_ID, x.KEYNAME, x.VALUE, '{rule}' AS RULE FROM (
            SELECT s.*, ROW_NUMBER() OVER (
                       PARTITION BY s.INTERACTION_RESOURCE_ID, s.KEYNAME
                       ORDER BY s.ADDED_TS {order}, s.ID {order}) AS RN
            FROM ({source}) s) x
        WHERE x.RN = 1"""


def _user_data(conn: Connection, calls: str, parties: str, irf_rows: str, subjects: str,
               audit: int, out: ChunkResult, event_timeout: int) -> dict:
    """The interaction's user data into the extension tables and the interaction
    descriptor, by the mapping's propagation rules. Key-value pairs an agent sent (ICON
    records the agent: UserEvent data from the desktop) count only until
    `user-event-data-timeout` seconds after the call they are attached to ended; later
    ones are ignored (and counted). `subjects`: the facts to keep user data for
    (_subjects)."""
    from gim.db import ops_for

    mapping = user_data_mapping(conn)
    too_late = (f"u.AGENTID IS NOT NULL AND c.TERMINATED_TS IS NOT NULL "
                f"AND u.ADDED_TS > c.TERMINATED_TS + {int(event_timeout)}")
    ignored = run(conn, f"""SELECT COUNT(*) FROM (
        SELECT CALLID, DATA_SOURCE_KEY, AGENTID, ADDED_TS FROM GIDB_G_USERDATA_HISTORY_V
        UNION ALL SELECT CALLID, DATA_SOURCE_KEY, AGENTID, ADDED_TS
        FROM GIDB_G_USERDATA_HISTORY_MM) u
        JOIN {calls} c ON c.OWN_SOURCE_KEY = u.DATA_SOURCE_KEY AND c.CALLID = u.CALLID
        WHERE {too_late}""").scalar_one()
    out.add("user data ignored (sent by an agent after user-event-data-timeout)", ignored)
    keys = sorted({m.key for m in mapping})
    quoted = literals(keys)
    latest = temp(conn, "tx_ud", f"""
        SELECT c.DATA_SOURCE_KEY, c.ROOTIRID, u.DATA_SOURCE_KEY AS OWN_SOURCE_KEY, u.PARTYID,
               u.AGENTID, u.KEYNAME, u.VALUE, u.ADDED_TS, u.ID
        FROM (SELECT DATA_SOURCE_KEY, CALLID, PARTYID, KEYNAME, VALUE, ADDED_TS, ID, AGENTID
              FROM GIDB_G_USERDATA_HISTORY_V UNION ALL
              SELECT DATA_SOURCE_KEY, CALLID, PARTYID, KEYNAME, VALUE, ADDED_TS, ID, AGENTID
              FROM GIDB_G_USERDATA_HISTORY_MM) u
        JOIN {calls} c ON c.OWN_SOURCE_KEY = u.DATA_SOURCE_KEY AND c.CALLID = u.CALLID
        WHERE u.KEYNAME IN ({quoted}) AND NOT ({too_late})""")
    # Garbage (control characters) is no value: the default takes its place.
    bad = ops_for(conn).has_control_chars("VALUE")
    garbage = run(conn, f"SELECT COUNT(*) FROM {latest} WHERE {bad}").scalar_one()
    if garbage:
        out.add("user data values replaced (control characters)", garbage)
        run(conn, f"UPDATE {latest} SET VALUE = NULL WHERE {bad}")
    # One row per resource fact, one column per mapped key and rule: joined, not looked up
    # per row.
    pairs = sorted({(m.key, m.rule) for m in mapping})
    alias = {pair: f"K{i}" for i, pair in enumerate(pairs)}
    by_table: dict[str, list[tuple[str, str, str | None]]] = {}
    for m in mapping:
        by_table.setdefault(m.table, []).append((alias[m.key, m.rule], m.column, m.default))
    rules = sorted({m.rule for m in mapping})
    if "PARTY" in rules:
        _irf_parties(conn, parties, subjects)
    if "IRF_FIRST_UPDATE" in rules:
        _first_update_windows(conn, subjects)
    picked = " UNION ALL ".join(
        _rule_values(conn, rule, sorted({m.key for m in mapping if m.rule == rule}),
                     subjects, latest) for rule in rules)
    pivot_cols = "".join(
        f", MAX(CASE WHEN KEYNAME = {literal(key)} AND RULE = '{rule}' THEN VALUE END) "
        f"AS {alias[key, rule]}" for key, rule in pairs)
    pivot = temp(conn, "tx_ud_pivot", f"""
        SELECT INTERACTION_RESOURCE_ID{pivot_cols} FROM ({picked}) v
        GROUP BY INTERACTION_RESOURCE_ID""" if picked else
                 f"SELECT INTERACTION_RESOURCE_ID FROM {subjects} WHERE 1 = 0")
    run(conn, f"CREATE INDEX IF NOT EXISTS {pivot}_ix ON {pivot} (INTERACTION_RESOURCE_ID)")
    joined = (f"{subjects} r LEFT JOIN {pivot} u "
              f"ON u.INTERACTION_RESOURCE_ID = r.INTERACTION_RESOURCE_ID")

    def value(column: str, default: str | None, width: int) -> str:
        return f"SUBSTR(COALESCE(u.{column}, {literal(default)}), 1, {width})"

    result = {}
    descriptor = {c: "DEFAULT_" + c for c in DESCRIPTOR_COLUMNS}
    desc_map = {col: (key, default or descriptor[col])
                for key, col, default in by_table.get("INTERACTION_DESCRIPTOR", [])}
    select = ", ".join(f"{value(*desc_map[c], 170) if c in desc_map else repr(descriptor[c])}"
                       f" AS {c}" for c in DESCRIPTOR_COLUMNS)
    desc = temp(conn, "tx_desc", f"""
        SELECT r.INTERACTION_RESOURCE_ID, r.START_DATE_TIME_KEY, r.TENANT_KEY,
               CAST(NULL AS INTEGER) AS INTERACTION_DESCRIPTOR_KEY, {select}
        FROM {joined}""")
    run(conn, f"UPDATE {desc} SET " + ", ".join(
        f"{c} = COALESCE({c}, 'DEFAULT_{c}')" for c in DESCRIPTOR_COLUMNS))
    distinct = temp(conn, "tx_desc_d", f"""
        SELECT DISTINCT CAST(NULL AS INTEGER) AS INTERACTION_DESCRIPTOR_KEY, TENANT_KEY,
               {', '.join(DESCRIPTOR_COLUMNS)} FROM {desc}""")
    natural = ["TENANT_KEY", *DESCRIPTOR_COLUMNS]
    new = assign_keys(conn, distinct, "INTERACTION_DESCRIPTOR_KEY",
                      f.INTERACTION_DESCRIPTOR.name, "INTERACTION_DESCRIPTOR_KEY", natural,
                      "INTERACTION_DESCRIPTOR_KEY", shared=True)
    if new:
        run(conn, f"""INSERT INTO INTERACTION_DESCRIPTOR (INTERACTION_DESCRIPTOR_KEY,
            TENANT_KEY, {', '.join(DESCRIPTOR_COLUMNS)}, PURGE_FLAG, CREATE_AUDIT_KEY,
            UPDATE_AUDIT_KEY) SELECT d.INTERACTION_DESCRIPTOR_KEY, d.TENANT_KEY,
            {', '.join('d.' + c for c in DESCRIPTOR_COLUMNS)}, 0, {audit}, {audit}
            FROM {distinct} d WHERE NOT EXISTS (SELECT 1 FROM INTERACTION_DESCRIPTOR x
            WHERE x.INTERACTION_DESCRIPTOR_KEY = d.INTERACTION_DESCRIPTOR_KEY)""")
    out.add("INTERACTION_DESCRIPTOR rows", new)
    run(conn, f"CREATE INDEX IF NOT EXISTS {distinct}_ix ON {distinct} "
              f"({', '.join(natural)})")
    match = " AND ".join(f"d.{c} = {desc}.{c}" for c in natural)
    run(conn, f"UPDATE {desc} SET INTERACTION_DESCRIPTOR_KEY = d.INTERACTION_DESCRIPTOR_KEY "
              f"FROM {distinct} d WHERE {match}")
    run(conn, f"CREATE INDEX IF NOT EXISTS {desc}_ix ON {desc} (INTERACTION_RESOURCE_ID)")
    run(conn, f"UPDATE {irf_rows} SET INTERACTION_DESCRIPTOR_KEY = "
              f"d.INTERACTION_DESCRIPTOR_KEY FROM {desc} d WHERE d.INTERACTION_RESOURCE_ID = "
              f"{irf_rows}.INTERACTION_RESOURCE_ID")
    result[f.IRF_USER_DATA_KEYS] = temp(conn, "tx_ude_keys", f"""
        SELECT INTERACTION_RESOURCE_ID, START_DATE_TIME_KEY, TENANT_KEY,
               INTERACTION_DESCRIPTOR_KEY, CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY
        FROM {desc}""")
    drop(conn, distinct, desc)
    for table in (f.IRF_USER_DATA_GEN_1, f.IRF_USER_DATA_CUST_1):
        columns = {c.name: c for c in table.columns}
        mapped = [(k, c, d) for k, c, d in by_table.get(table.name, []) if c in columns]
        if not mapped:
            continue
        cols = ", ".join(f"{value(k, d, getattr(columns[c].type, 'length', 255) or 255)} "
                         f"AS {c}" for k, c, d in mapped)
        numeric = {c for _, c, _ in mapped if columns[c].type.python_type is int}
        if numeric:  # REVENUE, SATISFACTION: numbers, or nothing
            cols = ", ".join(
                (f"CASE WHEN {value(k, d, 18)} GLOB '[0-9]*' THEN CAST({value(k, d, 18)} AS "
                 f"INTEGER) END AS {c}" if conn.dialect.name == "sqlite" else
                 f"CASE WHEN {value(k, d, 18)} ~ '^[0-9]+$' THEN CAST({value(k, d, 18)} AS "
                 f"INTEGER) END AS {c}") if c in numeric else
                f"{value(k, d, 255)} AS {c}" for k, c, d in mapped)
        unmapped = ", ".join(
            f"CAST(NULL AS {'INTEGER' if columns[c].type.python_type is int else 'VARCHAR(1024)'})"
            f" AS {c}" for c in columns
            if c not in {m[1] for m in mapped} and c not in (
                "INTERACTION_RESOURCE_ID", "START_DATE_TIME_KEY", "TENANT_KEY",
                "CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY"))
        result[table] = temp(conn, f"tx_{table.name.lower()}", f"""
            SELECT r.INTERACTION_RESOURCE_ID, r.START_DATE_TIME_KEY, r.TENANT_KEY, {cols},
                   {unmapped + ', ' if unmapped else ''}CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY
            FROM {joined}""")
    drop(conn, latest, pivot, "tx_irf_party", "tx_ud_window")
    return result
