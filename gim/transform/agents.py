"""Agent activity facts from login sessions, agent states and reason codes:
SM_RES_SESSION_FACT (one per session and media), SM_RES_STATE_FACT (contiguous time in one
summarized state) and SM_RES_STATE_REASON_FACT (time in a state with a reason code).

A session is recomputed whole whenever any of its rows changed; a session still open gives
active facts that end at the far-future key.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from gim.schema import facts as f
from gim.transform.dimensions import CFG_PERSON, FAR, placeholder_resources, reason_keys
from gim.transform.sqlkit import assign_keys, drop, replace_facts, run, temp

# ICON agent state -> RESOURCE_STATE key (gim.schema.seed): ready 1, not ready 2, busy 3,
# after-call work 4. Logged-in and logged-off mark session edges, not states.
_STATE_KEY = "CASE s.STATE WHEN 3 THEN 1 WHEN 2 THEN 2 WHEN 5 THEN 3 WHEN 4 THEN 4 END"
STATE_KEY_SPAN = 100_000  # state facts of a session: session key * this + ordinal


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


def transform_sessions(conn: Connection, sessions: str, audit: int) -> dict[str, int]:
    """Recompute the facts of the login sessions in temp table `sessions`
    (DATA_SOURCE_KEY, ENTITY_ID = LoginSessionID)."""
    # The session rows, voice and multimedia, one per (session, media).
    base = temp(conn, "tx_sess", f"""
        SELECT x.DATA_SOURCE_KEY, x.LOGINSESSIONID, x.AGENTID, x.TENANTID, x.CREATED_TS,
               x.TERMINATED_TS, x.MEDIA_NAME
        FROM (
            SELECT l.DATA_SOURCE_KEY, l.LOGINSESSIONID, l.AGENTID, l.TENANTID, l.CREATED_TS,
                   l.TERMINATED_TS, 'voice' AS MEDIA_NAME
            FROM GIDB_G_LOGIN_SESSION_V l JOIN {sessions} p
                 ON p.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY AND p.ENTITY_ID = l.LOGINSESSIONID
            UNION ALL
            SELECT l.DATA_SOURCE_KEY, l.LOGINSESSIONID, l.AGENTID, l.TENANTID,
                   l.CREATED_TS,
                   -- A media leaves the session when it logs off, maybe before the others.
                   COALESCE(MIN(CASE WHEN s.STATE = 0 THEN s.ADDED_TS END), l.TERMINATED_TS),
                   s.MEDIANAME
            FROM GIDB_G_LOGIN_SESSION_MM l JOIN {sessions} p
                 ON p.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY AND p.ENTITY_ID = l.LOGINSESSIONID
            JOIN GIDB_G_AGENT_STATE_HISTORY_MM s ON s.DATA_SOURCE_KEY = l.DATA_SOURCE_KEY
                 AND s.LOGINSESSIONID = l.LOGINSESSIONID AND s.MEDIANAME IS NOT NULL
            GROUP BY l.DATA_SOURCE_KEY, l.LOGINSESSIONID, l.AGENTID, l.TENANTID,
                     l.CREATED_TS, l.TERMINATED_TS, s.MEDIANAME
        ) x WHERE x.CREATED_TS IS NOT NULL""")
    refs = temp(conn, "tx_sess_refs", f"""
        SELECT DISTINCT COALESCE(TENANTID, 0) AS TENANT_KEY, {CFG_PERSON} AS
               RESOURCE_CFG_TYPE_ID, AGENTID AS RESOURCE_CFG_DBID FROM {base}""")
    placeholders = placeholder_resources(conn, refs, audit)
    drop(conn, refs)
    total, lead, trail = _clip("b.CREATED_TS", "b.TERMINATED_TS")
    sess = temp(conn, "tx_sm_session", f"""
        SELECT CAST(NULL AS BIGINT) AS SM_RES_SESSION_FACT_KEY,
               (b.CREATED_TS / 900) * 900 AS START_DATE_TIME_KEY,
               COALESCE(b.TENANTID, 0) AS TENANT_KEY,
               {_media_key("NULLIF(b.MEDIA_NAME, 'voice')")} AS MEDIA_TYPE_KEY,
               r.RESOURCE_KEY, -1 AS RESOURCE_GROUP_COMBINATION_KEY,
               b.LOGINSESSIONID AS LOGIN_SESSION_ID, b.DATA_SOURCE_KEY,
               b.CREATED_TS AS START_TS, b.TERMINATED_TS AS END_TS,
               COALESCE((b.TERMINATED_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               {total} AS TOTAL_DURATION, {lead} AS LEAD_CLIP_DURATION,
               {trail} AS TRAIL_CLIP_DURATION,
               CASE WHEN b.TERMINATED_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG,
               0 AS PURGE_FLAG, CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY,
               b.MEDIA_NAME
        FROM {base} b JOIN RESOURCE_ r ON r.TENANT_KEY = COALESCE(b.TENANTID, 0)
             AND r.RESOURCE_CFG_TYPE_ID = {CFG_PERSON} AND r.RESOURCE_CFG_DBID = b.AGENTID""")
    assign_keys(conn, sess, "SM_RES_SESSION_FACT_KEY", f.SM_RES_SESSION_FACT.name,
                "SM_RES_SESSION_FACT_KEY", ["LOGIN_SESSION_ID", "MEDIA_TYPE_KEY"],
                "SM_RES_SESSION_FACT_KEY")
    states = _state_spans(conn, sess)
    reasons = _reason_spans(conn, sess, audit)
    scope_sessions = (f"SM_RES_SESSION_FACT_KEY IN (SELECT SM_RES_SESSION_FACT_KEY FROM "
                      f"{sess})")
    out = {
        "SM_RES_SESSION_FACT rows": replace_facts(
            conn, f.SM_RES_SESSION_FACT, _facts_only(conn, sess, f.SM_RES_SESSION_FACT),
            f"LOGIN_SESSION_ID IN (SELECT ENTITY_ID FROM {sessions})", audit),
        "SM_RES_STATE_FACT rows": replace_facts(
            conn, f.SM_RES_STATE_FACT, states, scope_sessions, audit),
        "SM_RES_STATE_REASON_FACT rows": replace_facts(
            conn, f.SM_RES_STATE_REASON_FACT, reasons, scope_sessions, audit),
        "placeholder resources": placeholders,
    }
    _queue_intervals(conn, sess, audit)
    drop(conn, base, sess, states, reasons, "tx_sm_session_f")
    return out


def _facts_only(conn: Connection, rows: str, table) -> str:  # noqa: ANN001
    cols = [c.name for c in table.columns if c.name != "UPDATE_AUDIT_KEY"]
    return temp(conn, f"{rows}_f", f"SELECT {', '.join(cols)} FROM {rows}")


def _state_spans(conn: Connection, sess: str) -> str:
    """One span per agent-state record, to the next record of the same session and media
    (or the session's end); records of no summarized state and empty spans are dropped."""
    spans = temp(conn, "tx_state_span", f"""
        SELECT x.* FROM (
            SELECT ss.SM_RES_SESSION_FACT_KEY, ss.TENANT_KEY, ss.MEDIA_TYPE_KEY,
                   ss.RESOURCE_KEY, s.STATE, s.SEQ, s.ADDED_TS AS START_TS,
                   COALESCE(LEAD(s.ADDED_TS) OVER (PARTITION BY s.DATA_SOURCE_KEY,
                            s.LOGINSESSIONID, s.MEDIANAME ORDER BY s.SEQ, s.ID),
                            ss.END_TS) AS END_TS
            FROM {sess} ss JOIN (
                SELECT DATA_SOURCE_KEY, LOGINSESSIONID, MEDIANAME, STATE, SEQ, ID, ADDED_TS
                FROM GIDB_G_AGENT_STATE_HISTORY_V
                UNION ALL
                SELECT DATA_SOURCE_KEY, LOGINSESSIONID, MEDIANAME, STATE, SEQ, ID, ADDED_TS
                FROM GIDB_G_AGENT_STATE_HISTORY_MM
            ) s ON s.DATA_SOURCE_KEY = ss.DATA_SOURCE_KEY
                AND s.LOGINSESSIONID = ss.LOGIN_SESSION_ID
                AND COALESCE(s.MEDIANAME, 'voice') = ss.MEDIA_NAME
        ) x WHERE x.STATE IN (2, 3, 4, 5) AND (x.END_TS IS NULL OR x.END_TS > x.START_TS)""")
    total, lead, trail = _clip("START_TS", "END_TS")
    rows = temp(conn, "tx_sm_state", f"""
        SELECT SM_RES_SESSION_FACT_KEY * {STATE_KEY_SPAN} + ROW_NUMBER() OVER (
                   PARTITION BY SM_RES_SESSION_FACT_KEY ORDER BY START_TS, SEQ)
                   AS SM_RES_STATE_FACT_KEY,
               (START_TS / 900) * 900 AS START_DATE_TIME_KEY, TENANT_KEY, MEDIA_TYPE_KEY,
               RESOURCE_KEY, -1 AS RESOURCE_GROUP_COMBINATION_KEY,
               {_STATE_KEY.replace('s.STATE', 'STATE')} AS RESOURCE_STATE_KEY,
               SM_RES_SESSION_FACT_KEY, START_TS, END_TS,
               COALESCE((END_TS / 900) * 900, {FAR}) AS END_DATE_TIME_KEY,
               {total} AS TOTAL_DURATION, {lead} AS LEAD_CLIP_DURATION,
               {trail} AS TRAIL_CLIP_DURATION,
               CASE WHEN END_TS IS NULL THEN 1 ELSE 0 END AS ACTIVE_FLAG, 0 AS PURGE_FLAG,
               CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY
        FROM {spans}""")
    drop(conn, spans)
    return rows


def _reason_spans(conn: Connection, sess: str, audit: int) -> str:
    """Not-ready time with a reason code, from the reason-code records (written when a
    reason ends, so every span here is complete)."""
    raw = temp(conn, "tx_reason_raw", f"""
        SELECT ss.SM_RES_SESSION_FACT_KEY, ss.TENANT_KEY, ss.MEDIA_TYPE_KEY,
               ss.RESOURCE_KEY, rc.AGENTSTATE, rc.ID, rc.CREATED_TS AS START_TS,
               rc.TERMINATED_TS AS END_TS,
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
        WHERE rc.CREATED_TS IS NOT NULL AND rc.TERMINATED_TS > rc.CREATED_TS""")
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
               (END_TS / 900) * 900 AS END_DATE_TIME_KEY, {total} AS TOTAL_DURATION,
               {lead} AS LEAD_CLIP_DURATION, {trail} AS TRAIL_CLIP_DURATION,
               0 AS ACTIVE_FLAG, 0 AS PURGE_FLAG, CAST(NULL AS BIGINT) AS CREATE_AUDIT_KEY
        FROM {raw}""")
    drop(conn, raw)
    return rows


def _queue_intervals(conn: Connection, sess: str, audit: int) -> None:
    """Queue the 15-minute intervals the sessions cover for aggregation."""
    run(conn, f"""
        INSERT INTO {f.CTL_AGG_QUEUE.name} (TENANT_KEY, DATE_TIME_KEY, AUDIT_KEY, QUEUED_TS)
        SELECT DISTINCT s.TENANT_KEY, d.DATE_TIME_KEY, {audit}, {audit_time()}
        FROM {sess} s JOIN DATE_TIME d ON d.DATE_TIME_KEY >= s.START_DATE_TIME_KEY
             AND d.DATE_TIME_KEY <= CASE WHEN s.END_TS IS NULL THEN s.START_DATE_TIME_KEY
                                         ELSE s.END_DATE_TIME_KEY END
        WHERE 1 = 1
        ON CONFLICT (TENANT_KEY, DATE_TIME_KEY) DO UPDATE SET AUDIT_KEY = excluded.AUDIT_KEY,
            QUEUED_TS = excluded.QUEUED_TS""")


def audit_time() -> int:
    import time

    return int(time.time())
