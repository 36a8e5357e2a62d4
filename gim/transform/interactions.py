"""Interaction facts: INTERACTION_FACT, INTERACTION_RESOURCE_FACT, MEDIATION_SEGMENT_FACT and
the user-data extensions, for a chunk of interactions, from their GIDB calls, parties, party
histories, virtual-queue visits, attached data and the agents' after-call work.

An interaction is the set of calls sharing a root interaction record (G_CALL.ROOTIRID): a
customer call with its consultations, an e-mail with its replies. Each chunk recomputes its
interactions whole, so a fact is the same whether its rows arrived at once or piecemeal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from gim.config import Config
from gim.schema import facts as f
from gim.schema import seed
from gim.transform.dimensions import (
    CFG_DN,
    CFG_PERSON,
    CFG_SCRIPT,
    FAR,
    placeholder_places,
    placeholder_resources,
)
from gim.transform.sqlkit import assign_keys, count, drop, replace_facts, run, temp

IRF_SPAN = 1000  # IRF and MSF keys: INTERACTION_ID * IRF_SPAN + ordinal (MSF from 500)
MSF_OFFSET = 500

# Discard codes in STG_TRANSFORM_DISCARDS (ours).
CODE_BAD_TIME, CODE_DUPLICATE, CODE_ORPHAN, CODE_TOO_MANY = 1, 2, 3, 4


@dataclass
class ChunkResult:
    counts: dict[str, int] = field(default_factory=dict)
    discarded: int = 0
    not_ready: int = 0

    def add(self, key: str, n: int) -> None:
        if n:
            self.counts[key] = self.counts.get(key, 0) + n


def _calls(conn: Connection, roots: str) -> str:
    """The chunk's calls, voice and multimedia, one row per CALLID (a second row for the
    same call is a defect of the IDB, discarded)."""
    run(conn, f"CREATE INDEX IF NOT EXISTS {roots}_ix ON {roots} (DATA_SOURCE_KEY, ENTITY_ID)")
    union = " UNION ALL ".join(
        f"SELECT c.* FROM GIDB_G_CALL{s} c JOIN {roots} r ON r.DATA_SOURCE_KEY = "
        f"c.DATA_SOURCE_KEY AND r.ENTITY_ID = c.ROOTIRID" for s in ("_V", "_MM"))
    calls = temp(conn, "tx_call_all", f"""
        SELECT c.*, CASE WHEN c.MEDIANAME = 'voice' THEN 0 ELSE 1 END AS IS_MM,
               ROW_NUMBER() OVER (PARTITION BY c.DATA_SOURCE_KEY, c.CALLID ORDER BY c.ID)
                   AS DUP_RANK
        FROM ({union}) c""")
    return calls


def transform_interactions(conn: Connection, roots: str, audit: int, config: Config,
                           now: int, wait_timeout: int) -> ChunkResult:
    """Recompute the facts of the interactions in temp table `roots`
    (DATA_SOURCE_KEY, ENTITY_ID = root IRID, SINCE_TS). Interactions not ready yet (an
    agent's after-call work still open) are left out and stay pending; the caller removes
    from pending what this returns as done in `roots`' DONE column."""
    out = ChunkResult()
    policy = config.get("error-policy", "error-policy-irf-exception")
    calls_all = _calls(conn, roots)
    _discard_rows(conn, audit, now, calls_all, "DUP_RANK > 1", "GIDB_G_CALL_V",
                  "CALLID", CODE_DUPLICATE, "second G_CALL row for the same call "
                  "(kept the first)", policy, out)
    calls = temp(conn, "tx_call", f"SELECT * FROM {calls_all} WHERE DUP_RANK = 1")
    drop(conn, calls_all)
    _end_abandoned_calls(conn, calls, out)
    bad = temp(conn, "tx_bad", f"""
        SELECT DISTINCT DATA_SOURCE_KEY, ROOTIRID FROM {calls}
        WHERE CREATED_TS IS NULL OR TERMINATED_TS < CREATED_TS""")
    if count(conn, bad):
        _discard_interactions(conn, audit, now, bad, CODE_BAD_TIME,
                              "a call of the interaction has no start, or ends before it "
                              "starts", policy, out)
        run(conn, f"DELETE FROM {calls} WHERE EXISTS (SELECT 1 FROM {bad} b WHERE "
                  f"b.DATA_SOURCE_KEY = {calls}.DATA_SOURCE_KEY AND b.ROOTIRID = "
                  f"{calls}.ROOTIRID)")
        run(conn, f"UPDATE {roots} SET DONE = 1 WHERE EXISTS (SELECT 1 FROM {bad} b WHERE "
                  f"b.DATA_SOURCE_KEY = {roots}.DATA_SOURCE_KEY AND b.ROOTIRID = "
                  f"{roots}.ENTITY_ID)")
    drop(conn, bad)
    parties = _parties(conn, calls)
    irf = _irf_spans(conn, calls, parties)
    _acw(conn, irf)
    _hold_back_open_acw(conn, roots, irf, calls, parties, now, wait_timeout, out)
    if not count(conn, calls):
        drop(conn, calls, parties, irf)
        return out
    ixn = _interactions(conn, calls, audit, out)
    _placeholders(conn, calls, parties, audit, out)
    msf = _segments(conn, calls, parties, ixn)
    irf_rows = _irf_rows(conn, irf, ixn, parties)
    descriptor = _user_data(conn, calls, ixn, irf_rows, audit, out)
    ids = f"INTERACTION_ID IN (SELECT INTERACTION_ID FROM {ixn})"
    out.add("INTERACTION_FACT rows", replace_facts(conn, f.INTERACTION_FACT,
                                                   _project(conn, ixn, f.INTERACTION_FACT),
                                                   ids, audit))
    out.add("INTERACTION_RESOURCE_FACT rows", replace_facts(
        conn, f.INTERACTION_RESOURCE_FACT, _project(conn, irf_rows,
                                                    f.INTERACTION_RESOURCE_FACT), ids, audit))
    out.add("MEDIATION_SEGMENT_FACT rows", replace_facts(
        conn, f.MEDIATION_SEGMENT_FACT, _project(conn, msf, f.MEDIATION_SEGMENT_FACT), ids,
        audit))
    irf_ids = (f"INTERACTION_RESOURCE_ID IN (SELECT INTERACTION_RESOURCE_ID FROM "
               f"{irf_rows})")
    for table, rows in descriptor.items():
        out.add(f"{table.name} rows", replace_facts(conn, table, rows, irf_ids, audit))
    _queue_intervals(conn, ixn, audit)
    run(conn, f"UPDATE {roots} SET DONE = 1 WHERE DONE = 0 AND EXISTS (SELECT 1 FROM {ixn} "
              f"i WHERE i.DATA_SOURCE_KEY = {roots}.DATA_SOURCE_KEY AND i.ROOT_IRID = "
              f"{roots}.ENTITY_ID)")
    drop(conn, calls, parties, irf, ixn, msf, irf_rows, *(t for t in descriptor.values()))
    return out


def _end_abandoned_calls(conn: Connection, calls: str, out: ChunkResult) -> None:
    """A voice call ICON never terminated although every party of it ended ends, for the
    facts, with its last party; its interaction says so in its STATUS."""
    run(conn, f"ALTER TABLE {calls} ADD COLUMN ARTIFICIAL_END INTEGER")
    ended = " UNION ALL ".join(
        f"SELECT DATA_SOURCE_KEY, CALLID, TERMINATED_TS FROM GIDB_G_PARTY{s}"
        for s in ("_V", "_MM"))
    run(conn, f"""UPDATE {calls} SET ARTIFICIAL_END = (
        SELECT MAX(p.TERMINATED_TS) FROM ({ended}) p
        WHERE p.DATA_SOURCE_KEY = {calls}.DATA_SOURCE_KEY AND p.CALLID = {calls}.CALLID)
        WHERE STATE <> 2 AND IS_MM = 0 AND EXISTS (SELECT 1 FROM ({ended}) p
            WHERE p.DATA_SOURCE_KEY = {calls}.DATA_SOURCE_KEY AND p.CALLID = {calls}.CALLID)
        AND NOT EXISTS (SELECT 1 FROM ({ended}) p WHERE p.DATA_SOURCE_KEY =
            {calls}.DATA_SOURCE_KEY AND p.CALLID = {calls}.CALLID
            AND p.TERMINATED_TS IS NULL)""")
    n = run(conn, f"SELECT COUNT(*) FROM {calls} WHERE ARTIFICIAL_END IS NOT NULL") \
        .scalar_one()
    if n:
        run(conn, f"UPDATE {calls} SET STATE = 2, TERMINATED_TS = ARTIFICIAL_END "
                  f"WHERE ARTIFICIAL_END IS NOT NULL")
        out.add("calls ended artificially (all parties gone)", n)


def _project(conn: Connection, rows: str, table) -> str:  # noqa: ANN001
    cols = [c.name for c in table.columns if c.name != "UPDATE_AUDIT_KEY"]
    return temp(conn, f"{rows}_p", f"SELECT {', '.join(cols)} FROM {rows}")


# --------------------------------------------------------------------------------------------
# Discards


def _discard_rows(conn: Connection, audit: int, now: int, rows: str, where: str,
                  table_name: str, guid: str, code: int, reason: str, policy: str,
                  out: ChunkResult) -> None:
    n = run(conn, f"SELECT COUNT(*) FROM {rows} WHERE {where}").scalar_one()
    if not n:
        return
    _apply_policy(policy, f"{n} row(s) of {table_name}: {reason}")
    if policy == "log_db_resume":
        run(conn, f"""
            INSERT INTO STG_TRANSFORM_DISCARDS (TABLE_NAME, GUID, CODE, INTERACTION_ID,
                CREATE_AUDIT_KEY, REASON, ETL_TS, ETL_DATE_TIME_KEY)
            SELECT DISTINCT '{table_name}', {guid}, {code}, -2, {audit}, '{reason}', {now},
                   {(now // 900) * 900}
            FROM {rows} WHERE {where}
            ON CONFLICT (TABLE_NAME, GUID, CODE) DO NOTHING""")
    out.discarded += n
    out.add(f"discarded ({reason.split(' (')[0]})", n)


def _discard_interactions(conn: Connection, audit: int, now: int, bad: str, code: int,
                          reason: str, policy: str, out: ChunkResult) -> None:
    n = count(conn, bad)
    _apply_policy(policy, f"{n} interaction(s): {reason}")
    if policy == "log_db_resume":
        run(conn, f"""
            INSERT INTO STG_TRANSFORM_DISCARDS (TABLE_NAME, GUID, CODE, INTERACTION_ID,
                CREATE_AUDIT_KEY, REASON, ETL_TS, ETL_DATE_TIME_KEY)
            SELECT 'GIDB_G_CALL', b.ROOTIRID, {code},
                   COALESCE((SELECT MAX(i.INTERACTION_ID) FROM INTERACTION_FACT i
                             WHERE i.MEDIA_SERVER_ROOT_IXN_GUID = b.ROOTIRID), -2),
                   {audit}, '{reason}', {now}, {(now // 900) * 900}
            FROM {bad} b WHERE 1 = 1
            ON CONFLICT (TABLE_NAME, GUID, CODE) DO NOTHING""")
    # Whatever was written for it before goes: only the discard row remains.
    for table in (f.INTERACTION_RESOURCE_FACT, f.MEDIATION_SEGMENT_FACT, f.INTERACTION_FACT):
        run(conn, f"DELETE FROM {table.name} WHERE INTERACTION_ID IN (SELECT i.INTERACTION_ID "
                  f"FROM INTERACTION_FACT i JOIN {bad} b ON b.ROOTIRID = "
                  f"i.MEDIA_SERVER_ROOT_IXN_GUID AND b.DATA_SOURCE_KEY = i.DATA_SOURCE_KEY)")
    out.discarded += n
    out.add("discarded interactions", n)


def _apply_policy(policy: str, what: str) -> None:
    if policy == "exception":
        from gim.errors import JobFailed

        raise JobFailed(f"{what} (error-policy-irf-exception = exception)")


# --------------------------------------------------------------------------------------------
# Parties and their time per state


def _parties(conn: Connection, calls: str) -> str:
    """Each party of the chunk's calls with its seconds alerting, connected, held, queued,
    from its state history (the last state of a party still there runs to no end)."""
    run(conn, f"CREATE INDEX IF NOT EXISTS {calls}_ix ON {calls} (DATA_SOURCE_KEY, CALLID)")
    base = temp(conn, "tx_party_base", " UNION ALL ".join(f"""
        SELECT p.DATA_SOURCE_KEY, p.ID, p.PARTYID, p.PARTYGUID, p.TYPE, p.PROLE,
               p.PARENTPARTYID, p.CALLID, p.STATE, p.ENDPOINTID, p.ENDPOINTTYPE,
               p.ENDPOINTDN, p.AGENTID, p.PLACEID, p.CCEVENT, p.CCEVENTCAUSE, p.CREATED_TS,
               p.TERMINATED_TS, c.ROOTIRID, c.CALLTYPE, c.IS_MM, c.TENANTID,
               '{s}' AS SUFFIX
        FROM GIDB_G_PARTY{s} p JOIN {calls} c ON c.DATA_SOURCE_KEY = p.DATA_SOURCE_KEY
             AND c.CALLID = p.CALLID""" for s in ("_V", "_MM")))
    run(conn, f"CREATE INDEX IF NOT EXISTS {base}_ix ON {base} (DATA_SOURCE_KEY, PARTYID)")
    spans = temp(conn, "tx_pspan", " UNION ALL ".join(f"""
        SELECT h.DATA_SOURCE_KEY, h.PARTYID, h.STATE,
               LEAD(h.ADDED_TS) OVER (PARTITION BY h.DATA_SOURCE_KEY, h.PARTYID
                                      ORDER BY h.PSEQ, h.PHID) - h.ADDED_TS AS SECS
        FROM GIDB_G_PARTY_HISTORY{s} h JOIN {base} b ON b.DATA_SOURCE_KEY =
             h.DATA_SOURCE_KEY AND b.PARTYID = h.PARTYID AND b.SUFFIX = '{s}'"""
                                             for s in ("_V", "_MM")))
    per_state = temp(conn, "tx_pstate", f"""
        SELECT DATA_SOURCE_KEY, PARTYID,
               SUM(CASE WHEN STATE = 2 THEN COALESCE(SECS, 0) ELSE 0 END) AS ALERT_S,
               SUM(CASE WHEN STATE = 3 THEN COALESCE(SECS, 0) ELSE 0 END) AS CONNECT_S,
               SUM(CASE WHEN STATE = 4 THEN COALESCE(SECS, 0) ELSE 0 END) AS HOLD_S,
               SUM(CASE WHEN STATE = 5 THEN COALESCE(SECS, 0) ELSE 0 END) AS QUEUE_S,
               MAX(CASE WHEN STATE = 3 THEN 1 ELSE 0 END) AS EVER_CONNECTED,
               SUM(CASE WHEN STATE = 4 THEN 1 ELSE 0 END) AS HOLD_N
        FROM {spans} GROUP BY DATA_SOURCE_KEY, PARTYID""")
    run(conn, f"CREATE INDEX IF NOT EXISTS {per_state}_ix ON {per_state} "
              f"(DATA_SOURCE_KEY, PARTYID)")
    parties = temp(conn, "tx_party", f"""
        SELECT b.*, COALESCE(s.ALERT_S, 0) AS ALERT_S, COALESCE(s.CONNECT_S, 0) AS CONNECT_S,
               COALESCE(s.HOLD_S, 0) AS HOLD_S, COALESCE(s.QUEUE_S, 0) AS QUEUE_S,
               COALESCE(s.EVER_CONNECTED, 0) AS EVER_CONNECTED,
               COALESCE(s.HOLD_N, 0) AS HOLD_N
        FROM {base} b LEFT JOIN {per_state} s ON s.DATA_SOURCE_KEY = b.DATA_SOURCE_KEY
             AND s.PARTYID = b.PARTYID""")
    run(conn, f"CREATE INDEX IF NOT EXISTS {parties}_ix ON {parties} "
              f"(DATA_SOURCE_KEY, ROOTIRID, AGENTID)")
    drop(conn, base, spans, per_state)
    return parties


# --------------------------------------------------------------------------------------------
# IRF: one per agent party instance (PARTYGUID), a consultation's initiating party folded
# into the IRF of the same agent on the customer's call.


def _irf_spans(conn: Connection, calls: str, parties: str) -> str:
    consult = 4  # G_CALL.CALLTYPE of a consultation call
    return temp(conn, "tx_irf_span", f"""
        SELECT g.DATA_SOURCE_KEY, g.ROOTIRID, g.GROUP_GUID, g.AGENTID,
               MIN(g.TENANTID) AS TENANTID, MIN(g.IS_MM) AS IS_MM,
               MIN(g.CREATED_TS) AS START_TS,
               CASE WHEN SUM(CASE WHEN g.TERMINATED_TS IS NULL THEN 1 ELSE 0 END) > 0
                    THEN NULL ELSE MAX(g.TERMINATED_TS) END AS END_TS,
               SUM(CASE WHEN g.FOLDED = 0 THEN g.ALERT_S ELSE 0 END) AS RING_S,
               SUM(CASE WHEN g.FOLDED = 0 AND g.CALLTYPE <> {consult} THEN g.CONNECT_S
                        ELSE 0 END) AS TALK_S,
               SUM(CASE WHEN g.CALLTYPE <> {consult} THEN g.HOLD_S ELSE 0 END) AS HOLD_S,
               SUM(CASE WHEN g.CALLTYPE <> {consult} THEN g.HOLD_N ELSE 0 END) AS HOLD_N,
               SUM(CASE WHEN g.FOLDED = 1 THEN g.CONNECT_S ELSE 0 END) AS CONS_INIT_S,
               SUM(CASE WHEN g.FOLDED = 0 AND g.CALLTYPE = {consult} THEN g.CONNECT_S
                        ELSE 0 END) AS CONS_RCV_S,
               MAX(g.EVER_CONNECTED) AS ACCEPTED,
               MIN(CASE WHEN g.FOLDED = 0 THEN g.CALLTYPE END) AS FIRST_CALLTYPE,
               MAX(g.IS_INITIATOR) AS INITIATED,
               MIN(g.ENDPOINTID) AS ENDPOINTID, MIN(g.PLACEID) AS PLACEID,
               MIN(g.ENDPOINTDN) AS TARGET_ADDRESS,
               CAST(NULL AS INTEGER) AS LAST_EVENT, CAST(NULL AS INTEGER) AS LAST_CAUSE,
               CAST(0 AS INTEGER) AS ACW_S, CAST(0 AS INTEGER) AS ACW_OPEN
        FROM (
            SELECT p.*, CASE WHEN p.CALLTYPE = {consult} AND p.PROLE = 1 THEN 1 ELSE 0 END
                       AS FOLDED,
                   CASE WHEN p.PROLE = 1 AND p.CALLTYPE <> {consult} THEN 1 ELSE 0 END
                       AS IS_INITIATOR,
                   CASE WHEN p.CALLTYPE = {consult} AND p.PROLE = 1 THEN COALESCE((
                       SELECT q.PARTYGUID FROM {parties} q
                       WHERE q.DATA_SOURCE_KEY = p.DATA_SOURCE_KEY AND q.ROOTIRID = p.ROOTIRID
                         AND q.AGENTID = p.AGENTID AND q.CALLTYPE <> {consult}
                         AND q.CREATED_TS <= p.CREATED_TS
                       ORDER BY q.CREATED_TS DESC, q.ID DESC LIMIT 1), p.PARTYGUID)
                        ELSE p.PARTYGUID END AS GROUP_GUID
            FROM {parties} p WHERE p.AGENTID IS NOT NULL
        ) g
        GROUP BY g.DATA_SOURCE_KEY, g.ROOTIRID, g.GROUP_GUID, g.AGENTID""")


def _acw(conn: Connection, irf: str) -> None:
    """After-call work: the ACW state an agent enters when its part ends, until its next
    state; its end and the way the part ended come from the agent states and the last
    party of the part."""
    run(conn, f"""UPDATE {irf} SET
        LAST_EVENT = (SELECT p.CCEVENT FROM tx_party p WHERE p.DATA_SOURCE_KEY =
                          {irf}.DATA_SOURCE_KEY AND p.ROOTIRID = {irf}.ROOTIRID
                          AND p.AGENTID = {irf}.AGENTID AND (p.PARTYGUID = {irf}.GROUP_GUID)
                      ORDER BY p.TERMINATED_TS DESC, p.ID DESC LIMIT 1),
        LAST_CAUSE = (SELECT p.CCEVENTCAUSE FROM tx_party p WHERE p.DATA_SOURCE_KEY =
                          {irf}.DATA_SOURCE_KEY AND p.ROOTIRID = {irf}.ROOTIRID
                          AND p.AGENTID = {irf}.AGENTID AND (p.PARTYGUID = {irf}.GROUP_GUID)
                      ORDER BY p.TERMINATED_TS DESC, p.ID DESC LIMIT 1)""")
    # The ACW record each part's agent started at the part's end, and the record after it.
    run(conn, f"CREATE INDEX IF NOT EXISTS {irf}_ix ON {irf} (DATA_SOURCE_KEY, AGENTID)")
    acw = temp(conn, "tx_acw", f"""
        SELECT a.DATA_SOURCE_KEY, a.AGENTID, a.ADDED_TS,
               (SELECT MIN(n.ADDED_TS) FROM GIDB_G_AGENT_STATE_HISTORY_V n
                WHERE n.DATA_SOURCE_KEY = a.DATA_SOURCE_KEY
                AND n.LOGINSESSIONID = a.LOGINSESSIONID
                AND (n.ADDED_TS > a.ADDED_TS OR (n.ADDED_TS = a.ADDED_TS AND n.SEQ > a.SEQ)))
                   AS NEXT_TS
        FROM GIDB_G_AGENT_STATE_HISTORY_V a JOIN (
            SELECT DISTINCT DATA_SOURCE_KEY, AGENTID, END_TS FROM {irf}
            WHERE IS_MM = 0 AND END_TS IS NOT NULL) i
          ON i.DATA_SOURCE_KEY = a.DATA_SOURCE_KEY AND i.AGENTID = a.AGENTID
         AND i.END_TS = a.ADDED_TS
        WHERE a.STATE = 4""")
    run(conn, f"CREATE INDEX IF NOT EXISTS {acw}_ix ON {acw} (DATA_SOURCE_KEY, AGENTID, ADDED_TS)")
    run(conn, f"""UPDATE {irf} SET ACW_S = a.NEXT_TS - a.ADDED_TS FROM {acw} a
        WHERE a.DATA_SOURCE_KEY = {irf}.DATA_SOURCE_KEY AND a.AGENTID = {irf}.AGENTID
        AND a.ADDED_TS = {irf}.END_TS AND a.NEXT_TS IS NOT NULL AND {irf}.IS_MM = 0""")
    run(conn, f"""UPDATE {irf} SET ACW_OPEN = 1 FROM {acw} a
        WHERE a.DATA_SOURCE_KEY = {irf}.DATA_SOURCE_KEY AND a.AGENTID = {irf}.AGENTID
        AND a.ADDED_TS = {irf}.END_TS AND a.NEXT_TS IS NULL AND {irf}.IS_MM = 0""")
    drop(conn, acw)


def _hold_back_open_acw(conn: Connection, roots: str, irf: str, calls: str, parties: str,
                        now: int, wait_timeout: int, out: ChunkResult) -> None:
    """Interactions with an agent still in after-call work wait (their IRF would change)
    unless they have waited longer than the dependency time-out."""
    waiting = temp(conn, "tx_wait", f"""
        SELECT DISTINCT i.DATA_SOURCE_KEY, i.ROOTIRID FROM {irf} i JOIN {roots} r
             ON r.DATA_SOURCE_KEY = i.DATA_SOURCE_KEY AND r.ENTITY_ID = i.ROOTIRID
        WHERE i.ACW_OPEN = 1 AND r.SINCE_TS > {now - wait_timeout}""")
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
    ixn = temp(conn, "tx_ixn", f"""
        SELECT CAST(NULL AS BIGINT) AS INTERACTION_ID, c.DATA_SOURCE_KEY,
               c.ROOTIRID AS ROOT_IRID, c.ROOTIRID AS MEDIA_SERVER_ROOT_IXN_GUID,
               COALESCE(c.TENANTID, 0) AS TENANT_KEY, c.CALLID AS MEDIA_SERVER_IXN_GUID,
               c.ANI AS SOURCE_ADDRESS, c.DNIS AS TARGET_ADDRESS, c.MEDIANAME, c.CALLTYPE,
               COALESCE(c.SUBTYPE, CASE c.CALLTYPE WHEN 2 THEN 'Inbound'
                        WHEN 3 THEN 'Outbound' WHEN 1 THEN 'Internal' ELSE 'Unknown' END)
                   AS SUBTYPE,
               c.IS_MM,
               CASE WHEN agg.ARTIFICIAL > 0 THEN {f.STATUS_ENDED_WITH_PARTIES}
                    WHEN c.IRID = c.ROOTIRID THEN {f.STATUS_OK} ELSE {f.STATUS_PARTIAL} END
                   AS STATUS,
               agg.START_TS, agg.END_TS,
               (agg.START_TS / 900) * 900 AS START_DATE_TIME_KEY,
               COALESCE((agg.END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               CASE WHEN agg.END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG,
               0 AS PURGE_FLAG, CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY,
               CAST(0 AS INTEGER) AS MEDIA_TYPE_KEY, CAST(0 AS INTEGER) AS INTERACTION_TYPE_KEY,
               (SELECT MAX(u.G_SUBJECT) FROM GIDB_GM_F_USERDATA u WHERE u.DATA_SOURCE_KEY =
                c.DATA_SOURCE_KEY AND u.CALLID = c.CALLID) AS SUBJECT
        FROM {calls} c JOIN (
            SELECT DATA_SOURCE_KEY, ROOTIRID, MIN(CREATED_TS) AS START_TS,
                   CASE WHEN SUM(CASE WHEN STATE = 2 THEN 0 ELSE 1 END) > 0 THEN NULL
                        ELSE MAX(TERMINATED_TS) END AS END_TS,
                   MIN(CASE WHEN IRID = ROOTIRID THEN ID END) AS ROOT_ID, MIN(ID) AS FIRST_ID,
                   COUNT(ARTIFICIAL_END) AS ARTIFICIAL
            FROM {calls} GROUP BY DATA_SOURCE_KEY, ROOTIRID
        ) agg ON agg.DATA_SOURCE_KEY = c.DATA_SOURCE_KEY AND agg.ROOTIRID = c.ROOTIRID
             AND c.ID = COALESCE(agg.ROOT_ID, agg.FIRST_ID)""")
    _dimension_members(conn, ixn, audit, out)
    run(conn, f"""UPDATE {ixn} SET
        MEDIA_TYPE_KEY = (SELECT m.MEDIA_TYPE_KEY FROM MEDIA_TYPE m
                          WHERE m.MEDIA_NAME_CODE = UPPER({ixn}.MEDIANAME)),
        INTERACTION_TYPE_KEY = (SELECT t.INTERACTION_TYPE_KEY FROM INTERACTION_TYPE t
                                WHERE t.INTERACTION_TYPE_CODE = {_type_code(ixn)}
                                AND t.INTERACTION_SUBTYPE_CODE = UPPER({ixn}.SUBTYPE))""")
    assign_keys(conn, ixn, "INTERACTION_ID", f.INTERACTION_FACT.name, "INTERACTION_ID",
                ["DATA_SOURCE_KEY", "MEDIA_SERVER_ROOT_IXN_GUID"], "INTERACTION_ID")
    return ixn


def _type_code(ixn: str) -> str:
    return (f"CASE {ixn}.CALLTYPE WHEN 1 THEN 'INTERNAL' WHEN 2 THEN 'INBOUND' WHEN 3 THEN "
            f"'OUTBOUND' WHEN 4 THEN 'INTERNAL' ELSE 'UNKNOWN' END")


def _dimension_members(conn: Connection, ixn: str, audit: int, out: ChunkResult) -> None:
    """Media and interaction subtypes met for the first time join their dimensions (media
    gim does not know are offline)."""
    before = run(conn, "SELECT COUNT(*) FROM MEDIA_TYPE").scalar_one()
    new_media = temp(conn, "tx_new_media", f"""
        SELECT DISTINCT UPPER(i.MEDIANAME) AS CODE, i.MEDIANAME AS NAME FROM {ixn} i
        WHERE NOT EXISTS (SELECT 1 FROM MEDIA_TYPE m WHERE m.MEDIA_NAME_CODE =
                          UPPER(i.MEDIANAME))""")
    if count(conn, new_media):
        run(conn, f"""INSERT INTO MEDIA_TYPE (MEDIA_TYPE_KEY, MEDIA_NAME, MEDIA_NAME_CODE,
            IS_ONLINE, CREATE_AUDIT_KEY, UPDATE_AUDIT_KEY)
            SELECT (SELECT MAX(MEDIA_TYPE_KEY) FROM MEDIA_TYPE) + ROW_NUMBER() OVER
                   (ORDER BY CODE), NAME, CODE, 0, {audit}, {audit} FROM {new_media}""")
    drop(conn, new_media)
    new_types = temp(conn, "tx_new_types", f"""
        SELECT DISTINCT {_type_code('i')} AS TYPE_CODE, i.SUBTYPE FROM {ixn} i
        WHERE NOT EXISTS (SELECT 1 FROM INTERACTION_TYPE t WHERE t.INTERACTION_TYPE_CODE =
                          {_type_code('i')} AND t.INTERACTION_SUBTYPE_CODE =
                          UPPER(i.SUBTYPE))""")
    if count(conn, new_types):
        run(conn, f"""INSERT INTO INTERACTION_TYPE (INTERACTION_TYPE_KEY, INTERACTION_TYPE,
            INTERACTION_TYPE_CODE, INTERACTION_SUBTYPE, INTERACTION_SUBTYPE_CODE, IGNORE,
            CREATE_AUDIT_KEY, UPDATE_AUDIT_KEY)
            SELECT (SELECT MAX(INTERACTION_TYPE_KEY) FROM INTERACTION_TYPE) + ROW_NUMBER()
                   OVER (ORDER BY TYPE_CODE, SUBTYPE),
                   SUBSTR(TYPE_CODE, 1, 1) || LOWER(SUBSTR(TYPE_CODE, 2)), TYPE_CODE,
                   SUBTYPE, UPPER(SUBTYPE), 0, {audit}, {audit} FROM {new_types}""")
    drop(conn, new_types)
    out.add("new dimension members",
            run(conn, "SELECT COUNT(*) FROM MEDIA_TYPE").scalar_one() - before)


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
        FROM GIDB_G_VIRTUAL_QUEUE_V v JOIN {calls} c ON c.DATA_SOURCE_KEY =
             v.DATA_SOURCE_KEY AND c.CALLID = v.CALLID WHERE v.ENDPOINTID IS NOT NULL""")
    out.add("placeholder resources", placeholder_resources(conn, refs, audit))
    places = temp(conn, "tx_place_refs", f"""
        SELECT DISTINCT COALESCE(TENANTID, 0) AS TENANT_KEY, PLACEID AS PLACE_CFG_DBID
        FROM {parties} WHERE PLACEID IS NOT NULL""")
    out.add("placeholder places", placeholder_places(conn, places, audit))
    drop(conn, refs, places)


def _resource(kind: int, tenant: str, dbid: str) -> str:
    return (f"(SELECT r.RESOURCE_KEY FROM RESOURCE_ r WHERE r.TENANT_KEY = {tenant} AND "
            f"r.RESOURCE_CFG_TYPE_ID = {kind} AND r.RESOURCE_CFG_DBID = {dbid})")


# --------------------------------------------------------------------------------------------
# MSF: time in ACD queues, virtual queues and interaction queues


def _segments(conn: Connection, calls: str, parties: str, ixn: str) -> str:
    raw = temp(conn, "tx_seg_raw", f"""
        SELECT v.DATA_SOURCE_KEY, c.ROOTIRID, v.CALLID, {CFG_DN} AS KIND, v.ENDPOINTID,
               v.ADDED_TS AS START_TS, v.REMOVED_TS AS END_TS, v.REMOVED_TS - v.ADDED_TS
                   AS DURATION,
               CASE v.RESULT WHEN 1 THEN 40 WHEN 2 THEN 42 WHEN 3 THEN 43 ELSE 0 END AS TD,
               v.ID AS ORDER_ID
        FROM GIDB_G_VIRTUAL_QUEUE_V v JOIN {calls} c ON c.DATA_SOURCE_KEY =
             v.DATA_SOURCE_KEY AND c.CALLID = v.CALLID
        UNION ALL
        SELECT p.DATA_SOURCE_KEY, p.ROOTIRID, p.CALLID,
               CASE WHEN p.TYPE = 4 THEN {CFG_SCRIPT} ELSE {CFG_DN} END, p.ENDPOINTID,
               p.CREATED_TS, p.TERMINATED_TS, p.QUEUE_S,
               CASE WHEN p.CCEVENT = 7 THEN 42 WHEN p.CCEVENT = 9 THEN 40
                    WHEN p.TERMINATED_TS IS NULL THEN 0 ELSE 48 END, p.ID
        FROM {parties} p WHERE p.TYPE = 4 OR (p.TYPE = 1 AND p.ENDPOINTTYPE = 3)""")
    rows = temp(conn, "tx_msf", f"""
        SELECT i.INTERACTION_ID * {IRF_SPAN} + {MSF_OFFSET} + ROW_NUMBER() OVER (
                   PARTITION BY i.INTERACTION_ID ORDER BY s.START_TS, s.ORDER_ID)
                   AS MEDIATION_SEGMENT_ID,
               (s.START_TS / 900) * 900 AS START_DATE_TIME_KEY, i.INTERACTION_ID,
               i.TENANT_KEY, i.MEDIA_TYPE_KEY, i.INTERACTION_TYPE_KEY,
               s.TD AS TECHNICAL_DESCRIPTOR_KEY,
               COALESCE({_resource_expr('s.KIND', 'i.TENANT_KEY', 's.ENDPOINTID')}, -1)
                   AS RESOURCE_KEY,
               -1 AS RESOURCE_GROUP_COMBINATION_KEY,
               CAST(NULL AS BIGINT) AS TARGET_IXN_RESOURCE_ID,
               CAST(NULL AS INTEGER) AS TARGET_IXN_RESOURCE_SDT_KEY,
               s.CALLID AS MEDIA_SERVER_IXN_GUID, s.START_TS, s.END_TS,
               COALESCE((s.END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               COALESCE(s.DURATION, 0) AS MEDIATION_DURATION,
               CASE WHEN s.END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG,
               0 AS PURGE_FLAG, CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY
        FROM {raw} s JOIN {ixn} i ON i.DATA_SOURCE_KEY = s.DATA_SOURCE_KEY
             AND i.ROOT_IRID = s.ROOTIRID""")
    drop(conn, raw)
    return rows


def _resource_expr(kind: str, tenant: str, dbid: str) -> str:
    return (f"(SELECT r.RESOURCE_KEY FROM RESOURCE_ r WHERE r.TENANT_KEY = {tenant} AND "
            f"r.RESOURCE_CFG_TYPE_ID = {kind} AND r.RESOURCE_CFG_DBID = {dbid})")


# --------------------------------------------------------------------------------------------
# IRF rows


def _descriptor_case() -> str:
    """The technical descriptor of an IRF from how its part began and ended (codes of
    gim.schema.seed)."""
    k = seed.technical_descriptor_key
    consult = "x.FIRST_CALLTYPE = 4"
    return f"""CASE
        WHEN x.END_TS IS NULL THEN {k('Received', 'Unspecified', 'None', 'Unspecified')}
        WHEN x.INITIATED = 1 AND x.ACCEPTED = 1 AND x.RING_S = 0
             THEN {k('Initiated', 'Unspecified', 'Completed', 'Unspecified')}
        WHEN x.ACCEPTED = 0 AND x.LAST_CAUSE = 4 AND {consult}
             THEN {k('ReceivedConsult', 'Unspecified', 'Redirected', 'RouteOnNoAnswer')}
        WHEN x.ACCEPTED = 0 AND x.LAST_CAUSE = 4
             THEN {k('Received', 'Unspecified', 'Redirected', 'RouteOnNoAnswer')}
        WHEN x.ACCEPTED = 0 AND x.LAST_EVENT = 7 AND {consult}
             THEN {k('ReceivedConsult', 'Unspecified', 'Abandoned', 'AbandonedWhileRinging')}
        WHEN x.ACCEPTED = 0 AND x.LAST_EVENT = 7
             THEN {k('Received', 'Unspecified', 'Abandoned', 'AbandonedWhileRinging')}
        WHEN x.ACCEPTED = 0 THEN {k('Received', 'Unspecified', 'Incomplete', 'Unspecified')}
        WHEN x.LAST_CAUSE = 1 AND {consult}
             THEN {k('ReceivedConsult', 'Unspecified', 'Transferred', 'Unspecified')}
        WHEN x.LAST_CAUSE = 1 THEN {k('Received', 'Unspecified', 'Transferred', 'Unspecified')}
        WHEN x.LAST_CAUSE = 2 AND {consult}
             THEN {k('ReceivedConsult', 'ConferenceJoined', 'Conferenced', 'Unspecified')}
        WHEN x.LAST_CAUSE = 2
             THEN {k('Received', 'ConferenceInitiator', 'Conferenced', 'Unspecified')}
        WHEN {consult} THEN {k('ReceivedConsult', 'Unspecified', 'Completed', 'Unspecified')}
        ELSE {k('Received', 'Unspecified', 'Completed', 'AnsweredByAgent')} END"""


def _irf_rows(conn: Connection, irf: str, ixn: str, parties: str) -> str:
    too_many = run(conn, f"SELECT COUNT(*) FROM (SELECT DATA_SOURCE_KEY, ROOTIRID FROM {irf} "
                         f"GROUP BY DATA_SOURCE_KEY, ROOTIRID HAVING COUNT(*) >= "
                         f"{MSF_OFFSET}) x").scalar_one()
    if too_many:
        raise ValueError("an interaction with more than 499 resource attempts")
    return temp(conn, "tx_irf", f"""
        SELECT i.INTERACTION_ID * {IRF_SPAN} + x.ORDINAL AS INTERACTION_RESOURCE_ID,
               (x.START_TS / 900) * 900 AS START_DATE_TIME_KEY, i.INTERACTION_ID,
               i.START_DATE_TIME_KEY AS INTERACTION_SDT_KEY, i.TENANT_KEY, i.MEDIA_TYPE_KEY,
               i.INTERACTION_TYPE_KEY, x.TD AS TECHNICAL_DESCRIPTOR_KEY,
               COALESCE({_resource(CFG_PERSON, 'i.TENANT_KEY', 'x.AGENTID')}, -1)
                   AS RESOURCE_KEY,
               CASE WHEN x.IS_MM = 0 THEN
                   {_resource(CFG_DN, 'i.TENANT_KEY', 'x.ENDPOINTID')} END
                   AS MEDIA_RESOURCE_KEY,
               (SELECT pl.PLACE_KEY FROM PLACE pl WHERE pl.TENANT_KEY = i.TENANT_KEY
                AND pl.PLACE_CFG_DBID = x.PLACEID) AS PLACE_KEY,
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
               x.CONS_RCV_S AS CONS_RCV_TALK_DURATION, 0 AS MEDIATION_DURATION,
               CASE WHEN x.ORDINAL = x.LAST_ORDINAL THEN 1 ELSE 0 END
                   AS LAST_INTERACTION_RESOURCE,
               x.TARGET_ADDRESS,
               CASE WHEN x.END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG, 0 AS PURGE_FLAG,
               CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY, x.ROOTIRID, x.DATA_SOURCE_KEY
        FROM (SELECT s.*, {_descriptor_case().replace('x.', 's.')} AS TD,
                     ROW_NUMBER() OVER (PARTITION BY s.DATA_SOURCE_KEY, s.ROOTIRID
                                        ORDER BY s.START_TS, s.GROUP_GUID) AS ORDINAL,
                     COUNT(*) OVER (PARTITION BY s.DATA_SOURCE_KEY, s.ROOTIRID)
                         AS LAST_ORDINAL
              FROM {irf} s) x
        JOIN {ixn} i ON i.DATA_SOURCE_KEY = x.DATA_SOURCE_KEY AND i.ROOT_IRID = x.ROOTIRID""")


# --------------------------------------------------------------------------------------------
# User data: the latest value of each attached-data key on the interaction's calls (the
# CALL propagation rule), mapped by CTL_UD_TO_UDE_MAPPING.


DESCRIPTOR_COLUMNS = ("CUSTOMER_SEGMENT", "SERVICE_TYPE", "SERVICE_SUBTYPE", "BUSINESS_RESULT")


def _user_data(conn: Connection, calls: str, ixn: str, irf_rows: str, audit: int,
               out: ChunkResult) -> dict:
    from gim.db import ops_for, safe_identifier

    latest = temp(conn, "tx_ud", f"""
        SELECT x.DATA_SOURCE_KEY, x.ROOTIRID, x.KEYNAME, x.VALUE FROM (
            SELECT u.DATA_SOURCE_KEY, c.ROOTIRID, u.KEYNAME, u.VALUE,
                   ROW_NUMBER() OVER (PARTITION BY u.DATA_SOURCE_KEY, c.ROOTIRID, u.KEYNAME
                                      ORDER BY u.ADDED_TS DESC, u.ID DESC) AS RN
            FROM (SELECT DATA_SOURCE_KEY, CALLID, KEYNAME, VALUE, ADDED_TS, ID
                  FROM GIDB_G_USERDATA_HISTORY_V UNION ALL
                  SELECT DATA_SOURCE_KEY, CALLID, KEYNAME, VALUE, ADDED_TS, ID
                  FROM GIDB_G_USERDATA_HISTORY_MM) u
            JOIN {calls} c ON c.DATA_SOURCE_KEY = u.DATA_SOURCE_KEY AND c.CALLID = u.CALLID
        ) x WHERE x.RN = 1""")
    # Garbage (control characters) is no value: the default takes its place.
    bad = ops_for(conn).has_control_chars("VALUE")
    garbage = run(conn, f"SELECT COUNT(*) FROM {latest} WHERE {bad}").scalar_one()
    if garbage:
        out.add("user data values replaced (control characters)", garbage)
        run(conn, f"UPDATE {latest} SET VALUE = NULL WHERE {bad}")
    mapping = run(conn, "SELECT UD_KEY_NAME, UDE_TABLE_NAME, UDE_COLUMN_NAME, DEFAULT_VALUE "
                        "FROM CTL_UD_TO_UDE_MAPPING WHERE ACTIVE_FLAG = 1 ORDER BY ID").all()
    by_table: dict[str, list[tuple[str, str, str | None]]] = {}
    for key, table_name, column, default in mapping:
        by_table.setdefault(table_name.upper(), []).append(
            (key, safe_identifier(column.upper(), "CTL_UD_TO_UDE_MAPPING column"), default))

    # One row per interaction, one column per mapped key: joined, not looked up per row.
    keys = sorted({key for rows in by_table.values() for key, _, _ in rows})
    alias = {key: f"K{i}" for i, key in enumerate(keys)}
    pivot_cols = "".join(
        f", MAX(CASE WHEN KEYNAME = '{key.replace(chr(39), chr(39) * 2)}' THEN VALUE END) "
        f"AS {alias[key]}" for key in keys)
    pivot = temp(conn, "tx_ud_pivot", f"""
        SELECT DATA_SOURCE_KEY, ROOTIRID{pivot_cols} FROM {latest}
        GROUP BY DATA_SOURCE_KEY, ROOTIRID""")
    run(conn, f"CREATE INDEX IF NOT EXISTS {pivot}_ix ON {pivot} (DATA_SOURCE_KEY, ROOTIRID)")
    joined = (f"{irf_rows} r LEFT JOIN {pivot} u ON u.DATA_SOURCE_KEY = r.DATA_SOURCE_KEY "
              f"AND u.ROOTIRID = r.ROOTIRID")

    def value(key: str, default: str | None, width: int) -> str:
        dflt = "NULL" if default is None else "'" + default.replace("'", "''") + "'"
        return f"SUBSTR(COALESCE(u.{alias[key]}, {dflt}), 1, {width})"

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
                      "INTERACTION_DESCRIPTOR_KEY")
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
    drop(conn, latest, pivot)
    return result


def _queue_intervals(conn: Connection, ixn: str, audit: int) -> None:
    import time

    run(conn, f"""
        INSERT INTO CTL_AGG_QUEUE (TENANT_KEY, DATE_TIME_KEY, AUDIT_KEY, QUEUED_TS)
        SELECT DISTINCT i.TENANT_KEY, d.DATE_TIME_KEY, {audit}, {int(time.time())}
        FROM {ixn} i JOIN DATE_TIME d ON d.DATE_TIME_KEY >= i.START_DATE_TIME_KEY
             AND d.DATE_TIME_KEY <= CASE WHEN i.END_TS IS NULL THEN i.START_DATE_TIME_KEY
                                         ELSE i.END_DATE_TIME_KEY END
        WHERE 1 = 1
        ON CONFLICT (TENANT_KEY, DATE_TIME_KEY) DO UPDATE SET AUDIT_KEY = excluded.AUDIT_KEY,
            QUEUED_TS = excluded.QUEUED_TS""")
