"""Agent activity facts from login sessions, agent states, reason codes and DND:
SM_RES_SESSION_FACT (one per session and media), SM_RES_STATE_FACT (contiguous time in one
summarized state) and SM_RES_STATE_REASON_FACT (time in a state with a reason code).

A session is recomputed whole whenever any of its rows changed, or when one of its open
facts reaches a time limit; a session still open gives active facts that end at the
far-future key.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from gim.schema import facts as f
from gim.transform.dimensions import CFG_PERSON, FAR, placeholder_resources, reason_keys
from gim.transform.sqlkit import (
    STAGED_SPANS,
    assign_keys,
    count,
    drop,
    flush_spans,
    replace_facts,
    run,
    stage_spans,
    temp,
)

# ICON agent state -> RESOURCE_STATE key (gim.schema.seed): ready 1, not ready 2, busy 3,
# after-call work 4. Logged-in and logged-off mark session edges, not states.
_STATE_KEY = "CASE s.STATE WHEN 3 THEN 1 WHEN 2 THEN 2 WHEN 5 THEN 3 WHEN 4 THEN 4 END"
DND_STATE_KEY = 5  # RESOURCE_STATE 'DoNotDisturb' (type NotReady)
# sm-resource-state-priority names -> RESOURCE_STATE keys of the summarized states.
PRIORITY_KEYS = {"READY": 1, "NOT_READY": 2, "BUSY": 3, "ACW": 4}
STATE_KEY_SPAN = 100_000  # state facts of a session: session key * this + ordinal


@dataclass(frozen=True)
class Limits:
    """How long open agent facts may stay open, and the data they are judged against."""

    max_state: int  # max-state-duration: an agent state ends after this many seconds
    max_session: int  # days-to-keep-active-facts, in seconds: a session ends after it
    horizon: str  # SQL over b.DATA_SOURCE_KEY / b.IS_MM: the time up to which the
    # session tables are extracted (a fact still open then is open for what we know)
    dnd_voice: bool  # factor-dnd-into-sm-resource-states, voice sessions
    dnd_mm: bool  # and multimedia sessions
    dnd_wins: tuple[int, ...]  # RESOURCE_STATE keys that DND overrides (priority)


def _media_key(column: str) -> str:
    """MEDIA_TYPE key of an Interaction Server media name (NULL: voice)."""
    return (f"COALESCE((SELECT m.MEDIA_TYPE_KEY FROM MEDIA_TYPE m WHERE m.MEDIA_NAME_CODE = "
            f"UPPER(COALESCE({column}, 'voice'))), 0)")


def _clip(start: str, end: str) -> tuple[str, str, str]:
    """TOTAL, LEAD_CLIP and TRAIL_CLIP durations of a span (end NULL: still open)."""
    total = f"COALESCE({end} - {start}, 0)"
    first_end = f"(({start} / 900) * 900 + 900)"
    lead = (f"CASE WHEN {end} IS NULL THEN 0 WHEN {end} <= {first_end} "
            f"THEN {end} - {start} ELSE {first_end} - {start} END")
    trail = (f"CASE WHEN {end} IS NULL THEN 0 WHEN ({end} / 900) * 900 <= {start} "
             f"THEN {end} - {start} ELSE {end} - ({end} / 900) * 900 END")
    return total, lead, trail


def _capped(start: str, end: str, limit: int, horizon: str) -> str:
    """The end of a span that may last `limit` seconds at most: a span still open ends at
    the limit once the data has passed it."""
    cap = f"({start} + {limit})"
    return (f"CASE WHEN {end} IS NOT NULL AND {end} <= {cap} THEN {end} "
            f"WHEN {end} IS NOT NULL OR {cap} <= {horizon} THEN {cap} END")


def session_spans(keys: str) -> str:
    """(TENANT_KEY, FROM_TS, TO_TS) of the sessions whose SM_RES_SESSION_FACT_KEY the
    subquery `keys` yields, from their facts as they stand (an open fact up to its start)."""
    where = f"SM_RES_SESSION_FACT_KEY IN ({keys})"
    return f"""
        SELECT TENANT_KEY, MIN(START_TS) AS FROM_TS,
               MAX(COALESCE(END_TS, START_TS)) AS TO_TS FROM (
            SELECT SM_RES_SESSION_FACT_KEY, TENANT_KEY, START_TS, END_TS
            FROM SM_RES_SESSION_FACT WHERE {where}
            UNION ALL SELECT SM_RES_SESSION_FACT_KEY, TENANT_KEY, START_TS, END_TS
            FROM SM_RES_STATE_FACT WHERE {where}
            UNION ALL SELECT SM_RES_SESSION_FACT_KEY, TENANT_KEY, START_TS, END_TS
            FROM SM_RES_STATE_REASON_FACT WHERE {where}) x
        GROUP BY SM_RES_SESSION_FACT_KEY, TENANT_KEY"""


def transform_sessions(conn: Connection, sessions: str, audit: int, limits: Limits,
                       now: int) -> dict[str, int]:
    """Recompute the facts of the login sessions in temp table `sessions`
    (DATA_SOURCE_KEY, ENTITY_ID = LoginSessionID). Other sessions and interactions may be
    recomputed at the same time: what both may write is written under lock_shared."""
    drop(conn, STAGED_SPANS)
    # The session rows, voice and multimedia, one per (session, media).
    base = temp(conn, "tx_sess", f"""
        SELECT x.DATA_SOURCE_KEY, x.LOGINSESSIONID, x.AGENTID, x.TENANTID, x.CREATED_TS,
               x.TERMINATED_TS, x.MEDIA_NAME, x.IS_MM
        FROM (
            SELECT l.DATA_SOURCE_KEY, l.LOGINSESSIONID, l.AGENTID, l.TENANTID, l.CREATED_TS,
                   l.TERMINATED_TS, 'voice' AS MEDIA_NAME, 0 AS IS_MM
            FROM GIDB_G_LOGIN_SESSION_V l JOIN {sessions} p
                 ON p.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY AND p.ENTITY_ID = l.LOGINSESSIONID
            UNION ALL
            SELECT l.DATA_SOURCE_KEY, l.LOGINSESSIONID, l.AGENTID, l.TENANTID,
                   l.CREATED_TS,
                   -- A media leaves the session when it logs off, maybe before the others.
                   COALESCE(MIN(CASE WHEN s.STATE = 0 THEN s.ADDED_TS END), l.TERMINATED_TS),
                   s.MEDIANAME, 1
            FROM GIDB_G_LOGIN_SESSION_MM l JOIN {sessions} p
                 ON p.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY AND p.ENTITY_ID = l.LOGINSESSIONID
            JOIN GIDB_G_AGENT_STATE_HISTORY_MM s ON s.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY
                 AND s.LOGINSESSIONID = l.LOGINSESSIONID AND s.MEDIANAME IS NOT NULL
            GROUP BY l.DATA_SOURCE_KEY, l.LOGINSESSIONID, l.AGENTID, l.TENANTID,
                     l.CREATED_TS, l.TERMINATED_TS, s.MEDIANAME
        ) x WHERE x.CREATED_TS IS NOT NULL""", analyze=False)
    refs = temp(conn, "tx_sess_refs", f"""
        SELECT DISTINCT COALESCE(TENANTID, 0) AS TENANT_KEY, {CFG_PERSON} AS
               RESOURCE_CFG_TYPE_ID, AGENTID AS RESOURCE_CFG_DBID FROM {base}""",
                analyze=False)
    placeholders = placeholder_resources(conn, refs, audit)
    drop(conn, refs)
    # A session open for longer than days-to-keep-active-facts ends then, artificially.
    end = _capped("b.CREATED_TS", "b.TERMINATED_TS", limits.max_session, limits.horizon)
    total, lead, trail = _clip("b.START_TS", "b.END_TS")
    sess = temp(conn, "tx_sm_session", f"""
        SELECT CAST(NULL AS BIGINT) AS SM_RES_SESSION_FACT_KEY,
               (b.START_TS / 900) * 900 AS START_DATE_TIME_KEY, b.TENANT_KEY,
               b.MEDIA_TYPE_KEY, r.RESOURCE_KEY, -1 AS RESOURCE_GROUP_COMBINATION_KEY,
               b.LOGINSESSIONID AS LOGIN_SESSION_ID, b.DATA_SOURCE_KEY, b.START_TS, b.END_TS,
               COALESCE((b.END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               {total} AS TOTAL_DURATION, {lead} AS LEAD_CLIP_DURATION,
               {trail} AS TRAIL_CLIP_DURATION,
               CASE WHEN b.END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG,
               0 AS PURGE_FLAG, CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY,
               b.MEDIA_NAME, b.IS_MM, b.HORIZON_TS
        FROM (SELECT b.*, COALESCE(b.TENANTID, 0) AS TENANT_KEY, b.CREATED_TS AS START_TS,
                     {end} AS END_TS, {limits.horizon} AS HORIZON_TS,
                     {_media_key("NULLIF(b.MEDIA_NAME, 'voice')")} AS MEDIA_TYPE_KEY
              FROM {base} b) b
        JOIN RESOURCE_ r ON r.TENANT_KEY = b.TENANT_KEY
             AND r.RESOURCE_CFG_TYPE_ID = {CFG_PERSON} AND r.RESOURCE_CFG_DBID = b.AGENTID""",
                analyze=False)
    assign_keys(conn, sess, "SM_RES_SESSION_FACT_KEY", f.SM_RES_SESSION_FACT.name,
                "SM_RES_SESSION_FACT_KEY", ["LOGIN_SESSION_ID", "MEDIA_TYPE_KEY"],
                "SM_RES_SESSION_FACT_KEY")
    states = _state_spans(conn, sess, limits)
    reasons = _reason_spans(conn, sess, audit, limits)
    keys = f"SELECT SM_RES_SESSION_FACT_KEY FROM {sess}"
    scope = f"SM_RES_SESSION_FACT_KEY IN ({keys})"
    # The intervals the sessions covered before and cover now both need aggregating; the
    # facts of a session of which a media is gone are replaced too.
    old = (f"SELECT SM_RES_SESSION_FACT_KEY FROM SM_RES_SESSION_FACT WHERE LOGIN_SESSION_ID "
           f"IN (SELECT ENTITY_ID FROM {sessions})")
    stage_spans(conn, session_spans(old))
    for table in (f.SM_RES_STATE_FACT, f.SM_RES_STATE_REASON_FACT):
        run(conn, f"DELETE FROM {table.name} WHERE SM_RES_SESSION_FACT_KEY IN ({old}) AND "
                  f"SM_RES_SESSION_FACT_KEY NOT IN ({keys})")
    out = {
        "SM_RES_SESSION_FACT rows": replace_facts(
            conn, f.SM_RES_SESSION_FACT, _facts_only(conn, sess, f.SM_RES_SESSION_FACT),
            f"LOGIN_SESSION_ID IN (SELECT ENTITY_ID FROM {sessions})", audit),
        "SM_RES_STATE_FACT rows": replace_facts(
            conn, f.SM_RES_STATE_FACT, states, scope, audit),
        "SM_RES_STATE_REASON_FACT rows": replace_facts(
            conn, f.SM_RES_STATE_REASON_FACT, reasons, scope, audit),
        "placeholder resources": placeholders,
    }
    stage_spans(conn, session_spans(keys))
    flush_spans(conn, audit, now)
    drop(conn, base, sess, states, reasons, "tx_sm_session_f")
    return out


def _facts_only(conn: Connection, rows: str, table) -> str:  # noqa: ANN001
    cols = [c.name for c in table.columns if c.name != "UPDATE_AUDIT_KEY"]
    return temp(conn, f"{rows}_f", f"SELECT {', '.join(cols)} FROM {rows}", analyze=False)


def _state_spans(conn: Connection, sess: str, limits: Limits) -> str:
    """One span per agent-state record, to the next record of the same session and media
    (or the session's end, or max-state-duration after its start); records of no
    summarized state and empty spans are dropped. With DND factored in, the time a state
    DND overrides is a DND span of its own."""
    end = _capped("x.START_TS", "x.NEXT_TS", limits.max_state, "x.HORIZON_TS")
    spans = temp(conn, "tx_state_span", f"""
        SELECT y.* FROM (
            SELECT x.SM_RES_SESSION_FACT_KEY, x.TENANT_KEY, x.MEDIA_TYPE_KEY, x.RESOURCE_KEY,
                   x.DATA_SOURCE_KEY, x.LOGIN_SESSION_ID, x.IS_MM,
                   {_STATE_KEY.replace('s.STATE', 'x.STATE')} AS RESOURCE_STATE_KEY, x.SEQ,
                   x.START_TS, CASE WHEN x.SESSION_END IS NOT NULL AND ({end} IS NULL
                                         OR {end} > x.SESSION_END)
                                    THEN x.SESSION_END ELSE {end} END AS END_TS
            FROM (
                SELECT ss.SM_RES_SESSION_FACT_KEY, ss.TENANT_KEY, ss.MEDIA_TYPE_KEY,
                       ss.RESOURCE_KEY, ss.DATA_SOURCE_KEY, ss.LOGIN_SESSION_ID, ss.IS_MM,
                       ss.HORIZON_TS, ss.END_TS AS SESSION_END, s.STATE, s.SEQ,
                       s.ADDED_TS AS START_TS,
                       LEAD(s.ADDED_TS) OVER (PARTITION BY s.DATA_SOURCE_KEY,
                            s.LOGINSESSIONID, s.MEDIANAME ORDER BY s.SEQ, s.ID) AS NEXT_TS
                FROM {sess} ss JOIN (
                    SELECT DATA_SOURCE_KEY, LOGINSESSIONID, MEDIANAME, STATE, SEQ, ID,
                           ADDED_TS FROM GIDB_G_AGENT_STATE_HISTORY_V
                    UNION ALL
                    SELECT DATA_SOURCE_KEY, LOGINSESSIONID, MEDIANAME, STATE, SEQ, ID,
                           ADDED_TS FROM GIDB_G_AGENT_STATE_HISTORY_MM
                ) s ON s.DATA_SOURCE_KEY = ss.DATA_SOURCE_KEY
                    AND s.LOGINSESSIONID = ss.LOGIN_SESSION_ID
                    AND COALESCE(s.MEDIANAME, 'voice') = ss.MEDIA_NAME
            ) x
        ) y WHERE y.RESOURCE_STATE_KEY IS NOT NULL
            AND (y.END_TS IS NULL OR y.END_TS > y.START_TS)""", analyze=False)
    if limits.dnd_voice or limits.dnd_mm:
        _factor_dnd(conn, spans, sess, limits)
    total, lead, trail = _clip("START_TS", "END_TS")
    rows = temp(conn, "tx_sm_state", f"""
        SELECT SM_RES_SESSION_FACT_KEY * {STATE_KEY_SPAN} + ROW_NUMBER() OVER (
                   PARTITION BY SM_RES_SESSION_FACT_KEY ORDER BY START_TS, SEQ)
                   AS SM_RES_STATE_FACT_KEY,
               (START_TS / 900) * 900 AS START_DATE_TIME_KEY, TENANT_KEY, MEDIA_TYPE_KEY,
               RESOURCE_KEY, -1 AS RESOURCE_GROUP_COMBINATION_KEY, RESOURCE_STATE_KEY,
               SM_RES_SESSION_FACT_KEY, START_TS, END_TS,
               COALESCE((END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               {total} AS TOTAL_DURATION, {lead} AS LEAD_CLIP_DURATION,
               {trail} AS TRAIL_CLIP_DURATION,
               CASE WHEN END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG, 0 AS PURGE_FLAG,
               CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY
        FROM {spans}""", analyze=False)
    drop(conn, spans)
    return rows


def _factor_dnd(conn: Connection, spans: str, sess: str, limits: Limits) -> None:
    """DND factored into the summarized states: while DND is on (G_DND_HISTORY, within the
    session's media), the states it overrides (by sm-resource-state-priority: those not
    above NOT_READY) show as the DND state. The spans of the sessions with DND are cut at
    every DND edge and glued back where the shown state does not change."""
    media = " OR ".join(c for c, on in (("ss.IS_MM = 0", limits.dnd_voice),
                                        ("ss.IS_MM = 1", limits.dnd_mm)) if on)
    dnd = temp(conn, "tx_dnd", " UNION ALL ".join(f"""
        SELECT ss.SM_RES_SESSION_FACT_KEY, d.CREATED_TS AS START_TS,
               COALESCE(d.TERMINATED_TS, ss.END_TS, {FAR}) AS END_TS
        FROM {sess} ss JOIN GIDB_G_DND_HISTORY{s} d ON d.DATA_SOURCE_KEY =
             ss.DATA_SOURCE_KEY AND d.LOGINSESSIONID = ss.LOGIN_SESSION_ID
        WHERE ss.IS_MM = {0 if s == '_V' else 1} AND ({media}) AND d.CREATED_TS IS NOT NULL
          AND (d.TERMINATED_TS IS NULL OR d.TERMINATED_TS > d.CREATED_TS)"""
                                                  for s in ("_V", "_MM")), analyze=False)
    if not count(conn, dnd):
        drop(conn, dnd)
        return
    affected = f"SM_RES_SESSION_FACT_KEY IN (SELECT SM_RES_SESSION_FACT_KEY FROM {dnd})"
    wins = ", ".join(str(k) for k in limits.dnd_wins) or "-1"
    # Edges: state starts and ends (an open end counts as FAR), DND on (+1) and off (-1).
    edges = temp(conn, "tx_dnd_edge", f"""
        SELECT SM_RES_SESSION_FACT_KEY, T, SUM(DND) AS DND, SUM(STARTS) AS STARTS,
               SUM(ENDS) AS ENDS, MAX(STATE_KEY) AS STATE_KEY, MAX(SEQ) AS SEQ
        FROM (
            SELECT SM_RES_SESSION_FACT_KEY, START_TS AS T, 0 AS DND, 1 AS STARTS, 0 AS ENDS,
                   RESOURCE_STATE_KEY AS STATE_KEY, SEQ FROM {spans} WHERE {affected}
            UNION ALL
            SELECT SM_RES_SESSION_FACT_KEY, COALESCE(END_TS, {FAR}), 0, 0, 1, NULL, NULL
            FROM {spans} WHERE {affected}
            UNION ALL
            SELECT SM_RES_SESSION_FACT_KEY, START_TS, 1, 0, 0, NULL, NULL FROM {dnd}
            UNION ALL
            SELECT SM_RES_SESSION_FACT_KEY, END_TS, -1, 0, 0, NULL, NULL FROM {dnd}
        ) e GROUP BY SM_RES_SESSION_FACT_KEY, T""", analyze=False)
    # Between consecutive edges: the state in force (the last one started, unless it
    # ended), and whether DND is on; the shown state, glued into runs.
    pieces = temp(conn, "tx_dnd_piece", f"""
        SELECT SM_RES_SESSION_FACT_KEY, MIN(T) AS START_TS, MAX(T_NEXT) AS END_TS,
               SHOWN AS RESOURCE_STATE_KEY, MIN(CUR_SEQ) AS SEQ
        FROM (
            SELECT z.*, ROW_NUMBER() OVER (PARTITION BY SM_RES_SESSION_FACT_KEY, GRP
                                           ORDER BY T)
                        - ROW_NUMBER() OVER (PARTITION BY SM_RES_SESSION_FACT_KEY, GRP, SHOWN
                                             ORDER BY T) AS RUN
            FROM (
                SELECT y.*, CASE WHEN y.ON_DND > 0 AND y.CUR_STATE IN ({wins})
                                 THEN {DND_STATE_KEY} ELSE y.CUR_STATE END AS SHOWN
                FROM (
                    SELECT x.*, FIRST_VALUE(x.STATE_KEY) OVER (
                               PARTITION BY x.SM_RES_SESSION_FACT_KEY, x.GRP ORDER BY x.T)
                               AS CUR_STATE,
                           FIRST_VALUE(x.SEQ) OVER (
                               PARTITION BY x.SM_RES_SESSION_FACT_KEY, x.GRP ORDER BY x.T)
                               AS CUR_SEQ
                    FROM (
                        SELECT e.SM_RES_SESSION_FACT_KEY, e.T, e.STATE_KEY,
                               LEAD(e.T) OVER (PARTITION BY e.SM_RES_SESSION_FACT_KEY
                                               ORDER BY e.T) AS T_NEXT,
                               SUM(e.DND) OVER (PARTITION BY e.SM_RES_SESSION_FACT_KEY
                                                ORDER BY e.T ROWS UNBOUNDED PRECEDING)
                                   AS ON_DND,
                               SUM(e.STARTS - e.ENDS) OVER (
                                   PARTITION BY e.SM_RES_SESSION_FACT_KEY ORDER BY e.T
                                   ROWS UNBOUNDED PRECEDING) AS IN_STATE,
                               SUM(e.STARTS) OVER (PARTITION BY e.SM_RES_SESSION_FACT_KEY
                                                   ORDER BY e.T ROWS UNBOUNDED PRECEDING)
                                   AS GRP,
                               e.SEQ
                        FROM {edges} e
                    ) x
                ) y WHERE y.IN_STATE > 0 AND y.T_NEXT IS NOT NULL
            ) z
        ) w
        GROUP BY SM_RES_SESSION_FACT_KEY, GRP, SHOWN, RUN""", analyze=False)
    run(conn, f"DELETE FROM {spans} WHERE {affected}")
    run(conn, f"""INSERT INTO {spans} (SM_RES_SESSION_FACT_KEY, TENANT_KEY, MEDIA_TYPE_KEY,
        RESOURCE_KEY, DATA_SOURCE_KEY, LOGIN_SESSION_ID, IS_MM, RESOURCE_STATE_KEY, SEQ,
        START_TS, END_TS)
        SELECT p.SM_RES_SESSION_FACT_KEY, ss.TENANT_KEY, ss.MEDIA_TYPE_KEY, ss.RESOURCE_KEY,
               ss.DATA_SOURCE_KEY, ss.LOGIN_SESSION_ID, ss.IS_MM, p.RESOURCE_STATE_KEY,
               p.SEQ, p.START_TS, CASE WHEN p.END_TS >= {FAR} THEN NULL ELSE p.END_TS END
        FROM {pieces} p JOIN {sess} ss ON ss.SM_RES_SESSION_FACT_KEY =
             p.SM_RES_SESSION_FACT_KEY""")
    drop(conn, dnd, edges, pieces)


def _reason_spans(conn: Connection, sess: str, audit: int, limits: Limits) -> str:
    """Not-ready time with a reason code, from the reason-code records: a record still
    open gives an active fact, completed when the record is; like states, a reason ends
    with its session or after max-state-duration."""
    end = _capped("rc.CREATED_TS", "rc.TERMINATED_TS", limits.max_state, "ss.HORIZON_TS")
    raw = temp(conn, "tx_reason_raw", f"""
        SELECT ss.SM_RES_SESSION_FACT_KEY, ss.TENANT_KEY, ss.MEDIA_TYPE_KEY,
               ss.RESOURCE_KEY, rc.AGENTSTATE, rc.ID, rc.CREATED_TS AS START_TS,
               CASE WHEN ss.END_TS IS NOT NULL AND ({end} IS NULL OR {end} > ss.END_TS)
                    THEN ss.END_TS ELSE {end} END AS END_TS,
               CASE WHEN rc.HWFLAG = 1 THEN 'HARDWARE' ELSE 'SOFTWARE' END
                   AS REASON_TYPE_CODE,
               CASE WHEN rc.HWFLAG = 1 THEN rc.VALUE END AS HARDWARE_REASON,
               CASE WHEN rc.HWFLAG = 1 THEN NULL ELSE rc.KEYNAME END AS SOFTWARE_REASON_KEY,
               CASE WHEN rc.HWFLAG = 1 THEN NULL ELSE rc.VALUE END AS SOFTWARE_REASON_VALUE,
               CASE rc.WORKMODE WHEN 1 THEN 'MANUAL_IN' WHEN 2 THEN 'AUTO_IN'
                    WHEN 3 THEN 'AFTER_CALL_WORK' WHEN 4 THEN 'AUX_WORK' ELSE 'UNKNOWN' END
                   AS WORKMODE_CODE,
               CAST(NULL AS INTEGER) AS RESOURCE_STATE_REASON_KEY
        FROM {sess} ss JOIN (
            SELECT DATA_SOURCE_KEY, SESSIONID, MEDIANAME, AGENTSTATE, ID, CREATED_TS,
                   TERMINATED_TS, HWFLAG, KEYNAME, VALUE, WORKMODE
            FROM GIDB_G_AGENT_STATE_RC_V
            UNION ALL
            SELECT DATA_SOURCE_KEY, SESSIONID, MEDIANAME, AGENTSTATE, ID, CREATED_TS,
                   TERMINATED_TS, HWFLAG, KEYNAME, VALUE, WORKMODE
            FROM GIDB_G_AGENT_STATE_RC_MM
        ) rc ON rc.DATA_SOURCE_KEY = ss.DATA_SOURCE_KEY AND rc.SESSIONID = ss.LOGIN_SESSION_ID
            AND COALESCE(rc.MEDIANAME, 'voice') = ss.MEDIA_NAME
        WHERE rc.CREATED_TS IS NOT NULL
          AND (rc.TERMINATED_TS IS NULL OR rc.TERMINATED_TS > rc.CREATED_TS)""",
               analyze=False)
    run(conn, f"DELETE FROM {raw} WHERE END_TS <= START_TS")
    reason_keys(conn, raw, audit)
    total, lead, trail = _clip("START_TS", "END_TS")
    rows = temp(conn, "tx_sm_reason", f"""
        SELECT SM_RES_SESSION_FACT_KEY * {STATE_KEY_SPAN} + ROW_NUMBER() OVER (
                   PARTITION BY SM_RES_SESSION_FACT_KEY ORDER BY START_TS, ID)
                   AS SM_RES_STATE_REASON_FACT_KEY,
               (START_TS / 900) * 900 AS START_DATE_TIME_KEY, TENANT_KEY, MEDIA_TYPE_KEY,
               RESOURCE_KEY, -1 AS RESOURCE_GROUP_COMBINATION_KEY,
               {_STATE_KEY.replace('s.STATE', 'AGENTSTATE')} AS RESOURCE_STATE_KEY,
               RESOURCE_STATE_REASON_KEY, SM_RES_SESSION_FACT_KEY, START_TS, END_TS,
               COALESCE((END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               {total} AS TOTAL_DURATION, {lead} AS LEAD_CLIP_DURATION,
               {trail} AS TRAIL_CLIP_DURATION,
               CASE WHEN END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG, 0 AS PURGE_FLAG,
               CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY
        FROM {raw}""", analyze=False)
    drop(conn, raw)
    return rows
