"""Comparisons of an Info Mart's facts with the simulator's truth ledger (test helpers)."""

from __future__ import annotations

import collections
from collections.abc import Iterable

import sqlalchemy as sa


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _rows(url: str, sql: str) -> list[tuple]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


FIELDS = ("RING", "TALK", "HOLD", "ACW", "CONSULT", "QUEUE")


def interaction_truth(idb_url: str, ended_before: int | None = None) -> dict[str, dict]:
    where = "STATUS = 'completed'"
    if ended_before is not None:
        where += f" AND END_TS < {ended_before}"
    out = {}
    for row in _rows(idb_url, f"""SELECT CALLID, HANDLING_AGENT_ID, RING_S, TALK_S, HOLD_S,
                                  ACW_S, CONSULT_S, QUEUE_S, OUTCOME, MEDIA
                                  FROM SIM_INTERACTION WHERE {where}"""):
        out[row[0]] = {"agent": row[1], **dict(zip(FIELDS, row[2:8], strict=True)),
                       "outcome": row[8], "media": row[9]}
    return out


def interaction_facts(im_url: str) -> dict[str, dict]:
    """Per interaction (by its root call's id): handling agent and summed durations."""
    out: dict[str, dict] = {}
    for guid, iid, status in _rows(im_url, """SELECT MEDIA_SERVER_IXN_GUID, INTERACTION_ID,
                                               STATUS FROM INTERACTION_FACT"""):
        out[guid] = {"id": iid, "status": status, "agent": None,
                     **{k: 0 for k in FIELDS}}
    by_id = {v["id"]: v for v in out.values()}
    first: dict[int, tuple] = {}
    for iid, start, ordinal, dbid, ring, talk, hold, acw, ci, cr in _rows(im_url, """
            SELECT r.INTERACTION_ID, r.START_TS, r.INTERACTION_RESOURCE_ORDINAL,
                   res.RESOURCE_CFG_DBID, r.RING_DURATION, r.TALK_DURATION, r.HOLD_DURATION,
                   r.AFTER_CALL_WORK_DURATION, r.CONS_INIT_TALK_DURATION,
                   r.CONS_RCV_TALK_DURATION
            FROM INTERACTION_RESOURCE_FACT r JOIN RESOURCE_ res
                 ON res.RESOURCE_KEY = r.RESOURCE_KEY"""):
        f = by_id.get(iid)
        if f is None:
            continue
        f["RING"] += ring
        f["TALK"] += talk
        f["HOLD"] += hold
        f["ACW"] += acw
        f["CONSULT"] += ci + cr
        if (talk > 0 or cr > 0) and (iid not in first or (start, ordinal) < first[iid][:2]):
            first[iid] = (start, ordinal, dbid)
    for iid, (_, _, dbid) in first.items():
        by_id[iid]["agent"] = dbid
    for iid, queue in _rows(im_url, """SELECT INTERACTION_ID, SUM(MEDIATION_DURATION)
                                       FROM MEDIATION_SEGMENT_FACT GROUP BY INTERACTION_ID"""):
        if iid in by_id:
            by_id[iid]["QUEUE"] = queue
    return out


def interaction_mismatches(idb_url: str, im_url: str, callids: Iterable[str] | None = None,
                           ended_before: int | None = None) -> list[tuple]:
    truth = interaction_truth(idb_url, ended_before)
    facts = interaction_facts(im_url)
    bad = []
    for callid in (callids if callids is not None else truth):
        t, f = truth.get(callid), facts.get(callid)
        if t is None:
            continue
        if f is None:
            bad.append((callid, "missing"))
            continue
        for k in (*FIELDS, "agent"):
            if (t[k] or 0) != (f[k] or 0):
                bad.append((callid, k, t[k], f[k]))
    return bad


def _split(t0: int, t1: int):  # noqa: ANN202
    t = t0
    while t < t1:
        k = t // 900 * 900
        n = min(t1, k + 900)
        yield k, n - t
        t = n


STATE_FIELD = {1: "READY_S", 2: "NOT_READY_S", 3: "BUSY_S", 4: "ACW_S"}


def agent_mismatches(idb_url: str, im_url: str, before: int | None = None) -> list[tuple]:
    """Per agent, media and 15-minute interval: login, ready, not ready, busy, ACW seconds
    of the facts against the ledger; and not-ready seconds per reason."""
    media = dict(_rows(im_url, "SELECT MEDIA_TYPE_KEY, LOWER(MEDIA_NAME_CODE) FROM MEDIA_TYPE"))
    facts: collections.Counter = collections.Counter()
    for agent, mk, state, t0, t1 in _rows(im_url, """
            SELECT r.RESOURCE_CFG_DBID, s.MEDIA_TYPE_KEY, s.RESOURCE_STATE_KEY, s.START_TS,
                   s.END_TS FROM SM_RES_STATE_FACT s JOIN RESOURCE_ r
                   ON r.RESOURCE_KEY = s.RESOURCE_KEY WHERE s.END_TS IS NOT NULL"""):
        for k, secs in _split(t0, t1):
            facts[(agent, media[mk], k, STATE_FIELD[state])] += secs
    for agent, mk, t0, t1 in _rows(im_url, """
            SELECT r.RESOURCE_CFG_DBID, s.MEDIA_TYPE_KEY, s.START_TS, s.END_TS
            FROM SM_RES_SESSION_FACT s JOIN RESOURCE_ r ON r.RESOURCE_KEY = s.RESOURCE_KEY
            WHERE s.END_TS IS NOT NULL"""):
        for k, secs in _split(t0, t1):
            facts[(agent, media[mk], k, "LOGIN_S")] += secs
    for agent, mk, reason, t0, t1 in _rows(im_url, """
            SELECT r.RESOURCE_CFG_DBID, s.MEDIA_TYPE_KEY, rr.SOFTWARE_REASON_VALUE, s.START_TS,
                   s.END_TS FROM SM_RES_STATE_REASON_FACT s JOIN RESOURCE_ r
                   ON r.RESOURCE_KEY = s.RESOURCE_KEY JOIN RESOURCE_STATE_REASON rr
                   ON rr.RESOURCE_STATE_REASON_KEY = s.RESOURCE_STATE_REASON_KEY"""):
        for k, secs in _split(t0, t1):
            facts[(agent, media[mk], k, "REASON " + reason)] += secs
    ledger: collections.Counter = collections.Counter()
    names = ("LOGIN_S", "READY_S", "NOT_READY_S", "BUSY_S", "ACW_S")
    for row in _rows(idb_url, f"""SELECT AGENT_ID, MEDIA, INTERVAL_KEY, {', '.join(names)}
                                  FROM SIM_AGENT_INTERVAL"""):
        for name, value in zip(names, row[3:], strict=True):
            if value:
                ledger[(row[0], row[1], row[2], name)] += value
    for agent, m, k, reason, secs in _rows(idb_url, """SELECT AGENT_ID, MEDIA, INTERVAL_KEY,
                                           REASON, NOT_READY_S FROM SIM_AGENT_REASON_INTERVAL"""):
        ledger[(agent, m, k, "REASON " + reason)] += secs
    keys = set(ledger) | set(facts)
    if before is not None:
        keys = {k for k in keys if k[2] + 900 <= before}
    return sorted((k, ledger.get(k, 0), facts.get(k, 0)) for k in keys
                  if ledger.get(k, 0) != facts.get(k, 0))
