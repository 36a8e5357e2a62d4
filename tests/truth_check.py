"""Comparisons of an Info Mart's facts with the simulator's truth ledger (test helpers).

- per interaction (SIM_INTERACTION): handling agent, media, outcome and the ring / talk /
  hold / ACW / consultation / queue seconds summed over its participants;
- per participation (SIM_PARTICIPATION): each agent's part against its
  INTERACTION_RESOURCE_FACT (role, result, times and seconds), each stay in a queue against
  its MEDIATION_SEGMENT_FACT (times, seconds, outcome);
- per queue and interval (SIM_QUEUE_INTERVAL): entries, abandons, distributions, seconds;
- per agent, media and interval (SIM_AGENT_INTERVAL, SIM_AGENT_REASON_INTERVAL): login,
  ready, not-ready (by reason), busy, ACW and DND seconds.

Every function returns the differences found, as sorted tuples: [] means the facts agree.
"""

from __future__ import annotations

import collections
import decimal
from collections.abc import Iterable

import sqlalchemy as sa

from gim.simulate.engine import SHORT_ABANDON


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _rows(url: str, sql: str) -> list[tuple]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(int(v) if isinstance(v, decimal.Decimal) else v for v in r)
                    for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


FIELDS = ("RING", "TALK", "HOLD", "ACW", "CONSULT", "QUEUE")
# Ledger kinds of the parts that are stays in a mediation resource (MSF). Routing points
# are left out: the facts of routing points would be IRFs of non-agent resources, which the
# transformation does not write.
QUEUE_KINDS = ("VQ", "ACD_QUEUE", "IXN_QUEUE")
# The ledger's outcome of an agent's part -> (TECHNICAL_RESULT_CODE, RESULT_REASON_CODE or
# None when any reason will do).
AGENT_RESULT = {"Completed": ("COMPLETED", None), "Transferred": ("TRANSFERRED", None),
                "Conferenced": ("CONFERENCED", None),
                "RoutedOnNoAnswer": ("REDIRECTED", "ROUTEDONNOANSWER"),
                "AbandonedWhileRinging": ("ABANDONED", "ABANDONEDWHILERINGING")}
QUEUE_RESULT = {"Distributed": "DIVERTED", "Abandoned": "ABANDONED", "Cleared": "CLEARED"}
# The ledger's interaction outcomes the facts can tell apart: without outbound contact
# attempts (not transformed yet) every unanswered outbound call looks alike.
OUTCOME_CLASS = {"handled": "handled", "abandoned_ringing": "abandoned_ringing",
                 "abandoned_queue": "abandoned", "short_abandon": "short_abandon",
                 "no_answer": "not_handled", "busy": "not_handled",
                 "answering_machine": "not_handled", "failed": "not_handled",
                 "unhandled": "not_handled", "abandoned_dialer": "not_handled",
                 "routed_remote": "not_handled"}


# --------------------------------------------------------------------------------------------
# Interactions


def interaction_truth(idb_url: str, ended_before: int | None = None) -> dict[str, dict]:
    where = "STATUS = 'completed'"
    if ended_before is not None:
        where += f" AND END_TS < {ended_before}"
    out = {}
    for row in _rows(idb_url, f"""SELECT CALLID, HANDLING_AGENT_ID, RING_S, TALK_S, HOLD_S,
                                  ACW_S, CONSULT_S, QUEUE_S, OUTCOME, MEDIA, START_TS, END_TS
                                  FROM SIM_INTERACTION WHERE {where}"""):
        out[row[0]] = {"agent": row[1], **dict(zip(FIELDS, row[2:8], strict=True)),
                       "outcome": OUTCOME_CLASS[row[8]], "media": row[9],
                       "start": row[10], "end": row[11]}
    return out


def _irf_rows(im_url: str) -> list[tuple]:
    return _rows(im_url, """
        SELECT r.INTERACTION_ID, r.START_TS, r.END_TS, r.INTERACTION_RESOURCE_ORDINAL,
               res.RESOURCE_CFG_DBID, res.RESOURCE_CFG_TYPE_ID, t.RESOURCE_ROLE_CODE,
               t.TECHNICAL_RESULT_CODE, t.RESULT_REASON_CODE, r.RING_DURATION,
               r.TALK_DURATION, r.HOLD_DURATION, r.AFTER_CALL_WORK_DURATION,
               r.CONS_INIT_TALK_DURATION, r.CONS_RCV_TALK_DURATION, r.ACTIVE_FLAG
        FROM INTERACTION_RESOURCE_FACT r
        JOIN RESOURCE_ res ON res.RESOURCE_KEY = r.RESOURCE_KEY
        JOIN TECHNICAL_DESCRIPTOR t ON t.TECHNICAL_DESCRIPTOR_KEY = r.TECHNICAL_DESCRIPTOR_KEY
        """)


def _msf_rows(im_url: str) -> list[tuple]:
    return _rows(im_url, """
        SELECT s.INTERACTION_ID, s.START_TS, s.END_TS, s.MEDIATION_SEGMENT_ID,
               COALESCE(res.RESOURCE_CFG_DBID, -1), t.TECHNICAL_RESULT_CODE,
               s.MEDIATION_DURATION, s.ACTIVE_FLAG
        FROM MEDIATION_SEGMENT_FACT s
        LEFT JOIN RESOURCE_ res ON res.RESOURCE_KEY = s.RESOURCE_KEY
        JOIN TECHNICAL_DESCRIPTOR t ON t.TECHNICAL_DESCRIPTOR_KEY = s.TECHNICAL_DESCRIPTOR_KEY
        """)


def interaction_facts(im_url: str) -> dict[str, dict]:
    """Per interaction (by its root call's id): handling agent, media, outcome, summed
    durations, and its IRFs and MSFs in start order."""
    out: dict[str, dict] = {}
    for guid, iid, status, media, kind, start, end, active in _rows(im_url, """
            SELECT i.MEDIA_SERVER_IXN_GUID, i.INTERACTION_ID, i.STATUS,
                   LOWER(m.MEDIA_NAME_CODE), t.INTERACTION_TYPE_CODE, i.START_TS, i.END_TS,
                   i.ACTIVE_FLAG
            FROM INTERACTION_FACT i JOIN MEDIA_TYPE m ON m.MEDIA_TYPE_KEY = i.MEDIA_TYPE_KEY
            JOIN INTERACTION_TYPE t ON t.INTERACTION_TYPE_KEY = i.INTERACTION_TYPE_KEY"""):
        out[guid] = {"id": iid, "status": status, "agent": None, "media": media,
                     "inbound": kind == "INBOUND", "start": start, "end": end,
                     "active": active, "irf": [], "msf": [],
                     **{k: 0 for k in FIELDS}}
    by_id = {v["id"]: v for v in out.values()}
    for (iid, start, end, _ordinal, dbid, cfg_type, role, result, reason, ring, talk, hold,
         acw, ci, cr, active) in sorted(_irf_rows(im_url), key=lambda r: (r[0], r[1], r[3])):
        f = by_id.get(iid)
        if f is None:
            continue
        f["irf"].append({"start": start, "end": end, "agent": dbid, "cfg_type": cfg_type,
                         "role": role, "result": result, "reason": reason, "RING": ring,
                         "TALK": talk, "HOLD": hold, "ACW": acw, "CONSULT": ci + cr,
                         "active": active})
        f["RING"] += ring
        f["TALK"] += talk
        f["HOLD"] += hold
        f["ACW"] += acw
        f["CONSULT"] += ci + cr
        if f["agent"] is None and (talk > 0 or cr > 0):
            f["agent"] = dbid
    for iid, start, end, _seg_id, dbid, result, secs, active in sorted(
            _msf_rows(im_url), key=lambda r: (r[0], r[1], r[3])):
        f = by_id.get(iid)
        if f is None:
            continue
        f["msf"].append({"start": start, "end": end, "queue": dbid, "result": result,
                         "QUEUE": secs, "active": active})
        f["QUEUE"] += secs
    for f in out.values():
        f["outcome"] = _outcome(f)
    return out


def _outcome(f: dict) -> str:
    """The interaction's outcome as the facts tell it: the way its last part ended."""
    # Agents' IRFs, stays in queues, and the IRF of the mediation resource (routing point,
    # queue) an interaction ended in.
    parts = [("irf" if p["cfg_type"] == 3 else "mediation", p) for p in f["irf"]] + \
        [("msf", p) for p in f["msf"]]
    last = max(parts, key=lambda kp: (kp[1]["end"] or 0, kp[1]["start"]), default=None)
    short = f["end"] is not None and f["end"] - f["start"] < SHORT_ABANDON
    # An interaction an agent accepted is handled however it ended afterwards (a transfer
    # abandoned while ringing at the next agent, say): the ledger's rule.
    if any(p["TALK"] > 0 or p["CONSULT"] > 0 for k, p in parts if k == "irf"):
        return "handled"
    if last is not None and last[0] in ("msf", "mediation") and \
            last[1]["result"] == "ABANDONED":
        return "short_abandon" if short else "abandoned"
    if last is not None and last[0] == "irf" and last[1]["result"] == "ABANDONED":
        return "abandoned_ringing"
    return "not_handled"


def participation_truth(idb_url: str, callids: set[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = collections.defaultdict(list)
    for (callid, _seq, kind, rid, role, start, end, ring, talk, hold, acw, consult, queue,
         outcome) in sorted(_rows(idb_url, """
            SELECT CALLID, SEQ, RESOURCE_KIND, RESOURCE_ID, ROLE, START_TS, END_TS, RING_S,
                   TALK_S, HOLD_S, ACW_S, CONSULT_S, QUEUE_S, OUTCOME
            FROM SIM_PARTICIPATION"""), key=lambda r: (r[0], r[5], r[1])):
        if callid in callids:
            out[callid].append({"kind": kind, "id": rid, "role": role, "start": start,
                                "end": end, "RING": ring, "TALK": talk, "HOLD": hold,
                                "ACW": acw, "CONSULT": consult, "QUEUE": queue,
                                "outcome": outcome})
    return out


def _email_reply(irf: dict, media: str) -> bool:
    """An e-mail's outbound reply: an IRF of the agent who sent it, which the ledger does not
    count as a part of its own."""
    return media == "email" and irf["role"] == "INITIATED" and not any(
        irf[k] for k in ("RING", "TALK", "HOLD", "ACW", "CONSULT"))


def part_mismatches(callid: str, parts: list[dict], f: dict) -> list[tuple]:
    """Each agent's k-th part against the agent's k-th IRF, each queue's k-th stay against
    its k-th MSF (in start order)."""
    bad: list[tuple] = []
    irfs: dict[int, list[dict]] = collections.defaultdict(list)
    for irf in f["irf"]:
        if irf["cfg_type"] == 3 and not _email_reply(irf, f["media"]):
            irfs[irf["agent"]].append(irf)
    msfs: dict[int, list[dict]] = collections.defaultdict(list)
    for msf in f["msf"]:
        msfs[msf["queue"]].append(msf)
    agent_parts: dict[int, list[dict]] = collections.defaultdict(list)
    queue_parts: dict[int, list[dict]] = collections.defaultdict(list)
    for p in parts:
        if p["kind"] == "AGENT":
            agent_parts[p["id"]].append(p)
        elif p["kind"] in QUEUE_KINDS:
            queue_parts[p["id"]].append(p)
    for agent in sorted(set(agent_parts) | set(irfs)):
        want, got = agent_parts.get(agent, []), irfs.get(agent, [])
        if len(want) != len(got):
            bad.append((callid, "IRF count", agent, len(want), len(got)))
            continue
        for k, (p, r) in enumerate(zip(want, got, strict=True)):
            role = p["role"].upper()
            result, reason = AGENT_RESULT.get(p["outcome"], (p["outcome"].upper(), None))
            checks = [("role", role, r["role"]), ("result", result, r["result"]),
                      ("start", p["start"], r["start"]), ("end", p["end"], r["end"])]
            if reason is not None:
                checks.append(("reason", reason, r["reason"]))
            checks += [(k2, p[k2], r[k2]) for k2 in ("RING", "TALK", "HOLD", "ACW", "CONSULT")]
            bad += [(callid, "IRF", agent, k, name, t, v) for name, t, v in checks if t != v]
    for queue in sorted(set(queue_parts) | set(msfs)):
        want, got = queue_parts.get(queue, []), msfs.get(queue, [])
        if len(want) != len(got):
            bad.append((callid, "MSF count", queue, len(want), len(got)))
            continue
        for k, (p, s) in enumerate(zip(want, got, strict=True)):
            checks = [("result", QUEUE_RESULT.get(p["outcome"], p["outcome"].upper()),
                       s["result"]), ("start", p["start"], s["start"]),
                      ("end", p["end"], s["end"]), ("QUEUE", p["QUEUE"], s["QUEUE"])]
            bad += [(callid, "MSF", queue, k, name, t, v) for name, t, v in checks if t != v]
    return bad


INTERACTION_CHECKS = (*FIELDS, "agent", "outcome", "media", "start", "end")


def lineage_mismatches(idb_url: str, im_url: str, callids: Iterable[str]) -> list[tuple]:
    """Who delivered each agent's part. A stay in a queue the ledger says was distributed
    and an agent's part beginning on the same call when it ended: the stay's MSF targets
    that agent's IRF beginning then, whose MEDIATION_SEGMENT_ID is a segment of the
    interaction. A consultation received: the IRF names as RECEIVED_FROM the IRF of an agent
    whose part consulted while it began; another part, the part that last transferred the
    interaction before it began (none if none did)."""
    wanted = set(callids)
    irfs = {}
    for (rid, guid, agent, start, end, from_id, seg, qkey) in _rows(im_url, """
            SELECT r.INTERACTION_RESOURCE_ID, i.MEDIA_SERVER_IXN_GUID, res.RESOURCE_CFG_DBID,
                   r.START_TS, r.END_TS, r.RECEIVED_FROM_IXN_RESOURCE_ID,
                   r.MEDIATION_SEGMENT_ID, r.LAST_QUEUE_RESOURCE_KEY
            FROM INTERACTION_RESOURCE_FACT r
            JOIN INTERACTION_FACT i ON i.INTERACTION_ID = r.INTERACTION_ID
            JOIN RESOURCE_ res ON res.RESOURCE_KEY = r.RESOURCE_KEY"""):
        irfs[rid] = {"guid": guid, "agent": agent, "start": start, "end": end,
                     "from": from_id, "seg": seg, "qkey": qkey}
    msfs = collections.defaultdict(list)
    seg_guid = {}
    for sid, guid, queue, start, _end, target in _rows(im_url, """
            SELECT s.MEDIATION_SEGMENT_ID, i.MEDIA_SERVER_IXN_GUID,
                   COALESCE(res.RESOURCE_CFG_DBID, -1), s.START_TS, s.END_TS,
                   s.TARGET_IXN_RESOURCE_ID
            FROM MEDIATION_SEGMENT_FACT s
            JOIN INTERACTION_FACT i ON i.INTERACTION_ID = s.INTERACTION_ID
            LEFT JOIN RESOURCE_ res ON res.RESOURCE_KEY = s.RESOURCE_KEY"""):
        msfs[(guid, queue, start)].append(target)
        seg_guid[sid] = guid
    parts = collections.defaultdict(list)
    for callid, kind, rid, role, start, end, consult, outcome, leg, switch in _rows(
            idb_url, """SELECT CALLID, RESOURCE_KIND, RESOURCE_ID, ROLE, START_TS, END_TS,
                               CONSULT_S, OUTCOME, LEG_CALLID, SWITCH_ID
                        FROM SIM_PARTICIPATION"""):
        if callid in wanted:
            parts[callid].append((kind, rid, role, start, end, consult, outcome, leg,
                                  switch))
    by_agent_start = {(v["guid"], v["agent"], v["start"]): k for k, v in irfs.items()}
    bad: list[tuple] = []
    delivered = 0
    for callid, ps in sorted(parts.items()):
        for kind, rid, _role, start, end, _c, outcome, leg, _switch in ps:
            if kind not in QUEUE_KINDS or outcome != "Distributed":
                continue
            takers = sorted((p[3], p[1]) for p in ps if p[0] == "AGENT" and p[7] == leg
                            and end <= p[3] <= end + 2)
            if not takers:
                continue
            want = by_agent_start.get((callid, takers[0][1], takers[0][0]))
            got = msfs.get((callid, rid, start), [None])
            if want is None or want not in got:
                bad.append((callid, "MSF target", rid, start, want, got))
                continue
            delivered += 1
            seg = irfs[want]["seg"]
            if seg is None or seg_guid.get(seg) != callid:
                bad.append((callid, "IRF segment", want, seg))
    for v in irfs.values():
        if v["guid"] not in wanted:
            continue
        received = [p for p in parts[v["guid"]] if p[0] == "AGENT" and p[1] == v["agent"]
                    and p[2] == "ReceivedConsult" and p[3] == v["start"]]
        if not received:
            continue
        # agents whose part consulted while this one began, on the same switch, else on
        # another (a consultation another site received)
        consulting = [p for p in parts[v["guid"]] if p[0] == "AGENT" and p[5] > 0
                      and p[2] != "ReceivedConsult" and p[3] <= v["start"]
                      and (p[4] is None or p[4] >= v["start"])]
        initiators = {p[1] for p in consulting if p[8] == received[0][8]} or \
            {p[1] for p in consulting}
        src = irfs.get(v["from"]) if v["from"] is not None else None
        if not initiators:
            continue
        if src is None or src["guid"] != v["guid"] or src["agent"] not in initiators or \
                not (src["start"] <= v["start"] and (src["end"] is None
                                                     or src["end"] >= v["start"])):
            bad.append((v["guid"], "RECEIVED_FROM", v["agent"], v["start"], src))
        else:
            delivered += 1
    # Any other agent's part came from the agent's part that last transferred the
    # interaction before it began, if one did.
    transfers = 0
    for v in irfs.values():
        if v["guid"] not in wanted:
            continue
        mine = [p for p in parts[v["guid"]] if p[0] == "AGENT" and p[1] == v["agent"]
                and p[3] == v["start"]]
        if not mine or mine[0][2] == "ReceivedConsult":
            continue
        before = sorted((p[4], p[1], p[3]) for p in parts[v["guid"]]
                        if p[0] == "AGENT" and p[6] == "Transferred" and p[4] is not None
                        and p[4] <= v["start"] and p is not mine[0])
        src = irfs.get(v["from"]) if v["from"] is not None else None
        if not before:
            if src is not None:
                bad.append((v["guid"], "RECEIVED_FROM (none)", v["agent"], v["start"], src))
            continue
        want = [b for b in before if b[0] == before[-1][0]]
        if src is None or (src["agent"], src["start"]) not in {(a, s) for _, a, s in want}:
            bad.append((v["guid"], "RECEIVED_FROM (transfer)", v["agent"], v["start"],
                        want, src))
        else:
            transfers += 1
    if transfers == 0:
        bad.append(("no transferred part was checked",))
    if delivered == 0:
        bad.append(("no distributed stay or consultation was checked",))
    return sorted(bad, key=repr)


def interaction_mismatches(idb_url: str, im_url: str, callids: Iterable[str] | None = None,
                           ended_before: int | None = None,
                           checks: Iterable[str] = INTERACTION_CHECKS,
                           parts: bool = True) -> list[tuple]:
    """The ledger's completed interactions (those of `callids`, or all) that ended before
    `ended_before` against their facts: every one must be there, with the `checks` of
    INTERACTION_CHECKS equal and (with `parts`) every participation equal."""
    truth = interaction_truth(idb_url, ended_before)
    facts = interaction_facts(im_url)
    wanted = [c for c in (callids if callids is not None else truth) if c in truth]
    ledger_parts = participation_truth(idb_url, set(wanted)) if parts else {}
    bad: list[tuple] = []
    for callid in wanted:
        t, f = truth[callid], facts.get(callid)
        if f is None:
            bad.append((callid, "missing"))
            continue
        for k in checks:
            if (t[k] or 0) != (f[k] or 0):
                bad.append((callid, k, t[k], f[k]))
        if parts:
            bad += part_mismatches(callid, ledger_parts.get(callid, []), f)
    return sorted(bad, key=repr)


# --------------------------------------------------------------------------------------------
# Queues


def queue_mismatches(idb_url: str, im_url: str, before: int) -> list[tuple]:
    """Per queue and 15-minute interval of entry, before `before`: entries, abandons (short
    ones too), distributions, clears and the seconds of the stays that ended."""
    names = ("ENTERED", "ABANDONED", "SHORT_ABANDONED", "DISTRIBUTED", "CLEARED", "QUEUE_S")
    ledger: collections.Counter = collections.Counter()
    for row in _rows(idb_url, f"""SELECT QUEUE_ID, INTERVAL_KEY, {', '.join(names)}
                                  FROM SIM_QUEUE_INTERVAL"""):
        for name, value in zip(names, row[2:], strict=True):
            if value:
                ledger[(row[0], row[1], name)] += value
    facts: collections.Counter = collections.Counter()
    for _, start, _end, _, queue, result, secs, active in _msf_rows(im_url):
        key = (queue, start // 900 * 900)
        facts[key + ("ENTERED",)] += 1
        if result == "ABANDONED":
            facts[key + ("ABANDONED",)] += 1
            if secs < SHORT_ABANDON:
                facts[key + ("SHORT_ABANDONED",)] += 1
        elif result == "DIVERTED":
            facts[key + ("DISTRIBUTED",)] += 1
        elif result == "CLEARED":
            facts[key + ("CLEARED",)] += 1
        if not active and secs:
            facts[key + ("QUEUE_S",)] += secs
    keys = {k for k in set(ledger) | set(facts) if k[1] + 900 <= before}
    return sorted((k, ledger.get(k, 0), facts.get(k, 0)) for k in keys
                  if ledger.get(k, 0) != facts.get(k, 0))


# --------------------------------------------------------------------------------------------
# Agents


def _split(t0: int, t1: int):  # noqa: ANN202
    t = t0
    while t < t1:
        k = t // 900 * 900
        n = min(t1, k + 900)
        yield k, n - t
        t = n


# RESOURCE_STATE.STATE_TYPE_CODE -> the ledger's column.
STATE_FIELD = {"READY": "READY_S", "NOT_READY": "NOT_READY_S", "BUSY": "BUSY_S",
               "ACW": "ACW_S"}


def agent_mismatches(idb_url: str, im_url: str, before: int, dnd: bool = False) -> list[tuple]:
    """Per agent, media and 15-minute interval before `before`: login, ready, not ready,
    busy, ACW seconds of the facts against the ledger, and not-ready seconds per reason;
    with `dnd` (DND factored into the states) DND seconds too. A fact still active counts
    up to `before` (the data reaches beyond it)."""
    media = dict(_rows(im_url, "SELECT MEDIA_TYPE_KEY, LOWER(MEDIA_NAME_CODE) FROM MEDIA_TYPE"))
    facts: collections.Counter = collections.Counter()

    def add(agent: int, mk: int, t0: int, t1: int | None, field: str) -> None:
        for k, secs in _split(t0, before if t1 is None else min(t1, before)):
            facts[(agent, media[mk], k, field)] += secs

    for agent, mk, state_type, state_name, t0, t1 in _rows(im_url, """
            SELECT r.RESOURCE_CFG_DBID, s.MEDIA_TYPE_KEY, rs.STATE_TYPE_CODE,
                   rs.STATE_NAME_CODE, s.START_TS, s.END_TS
            FROM SM_RES_STATE_FACT s JOIN RESOURCE_ r ON r.RESOURCE_KEY = s.RESOURCE_KEY
            JOIN RESOURCE_STATE rs ON rs.RESOURCE_STATE_KEY = s.RESOURCE_STATE_KEY"""):
        add(agent, mk, t0, t1, STATE_FIELD.get(state_type, "UNKNOWN " + state_type))
        if state_name == "DND":
            add(agent, mk, t0, t1, "DND_S")
    for agent, mk, t0, t1 in _rows(im_url, """
            SELECT r.RESOURCE_CFG_DBID, s.MEDIA_TYPE_KEY, s.START_TS, s.END_TS
            FROM SM_RES_SESSION_FACT s JOIN RESOURCE_ r ON r.RESOURCE_KEY = s.RESOURCE_KEY"""):
        add(agent, mk, t0, t1, "LOGIN_S")
    for agent, mk, reason, t0, t1 in _rows(im_url, """
            SELECT r.RESOURCE_CFG_DBID, s.MEDIA_TYPE_KEY, rr.SOFTWARE_REASON_VALUE, s.START_TS,
                   s.END_TS FROM SM_RES_STATE_REASON_FACT s JOIN RESOURCE_ r
                   ON r.RESOURCE_KEY = s.RESOURCE_KEY JOIN RESOURCE_STATE_REASON rr
                   ON rr.RESOURCE_STATE_REASON_KEY = s.RESOURCE_STATE_REASON_KEY"""):
        add(agent, mk, t0, t1, "REASON " + reason)
    ledger: collections.Counter = collections.Counter()
    # DND_S is compared only when DND is factored into the states: otherwise the facts do
    # not show it, as the product's do not.
    names = ("LOGIN_S", "READY_S", "NOT_READY_S", "BUSY_S", "ACW_S") + \
        (("DND_S",) if dnd else ())
    for row in _rows(idb_url, f"""SELECT AGENT_ID, MEDIA, INTERVAL_KEY, {', '.join(names)}
                                  FROM SIM_AGENT_INTERVAL"""):
        for name, value in zip(names, row[3:], strict=True):
            if value:
                ledger[(row[0], row[1], row[2], name)] += value
    for agent, m, k, reason, secs in _rows(idb_url, """SELECT AGENT_ID, MEDIA, INTERVAL_KEY,
                                           REASON, NOT_READY_S FROM SIM_AGENT_REASON_INTERVAL"""):
        ledger[(agent, m, k, "REASON " + reason)] += secs
    if not dnd:
        facts = collections.Counter({k: v for k, v in facts.items() if k[3] != "DND_S"})
    keys = {k for k in set(ledger) | set(facts) if k[2] + 900 <= before}
    return sorted((k, ledger.get(k, 0), facts.get(k, 0)) for k in keys
                  if ledger.get(k, 0) != facts.get(k, 0))


# INTERACTION_RESOURCE_STATE keys (gim.schema.seed): role block + state.
_STATE_SUMS = {"RING": (12, 22), "TALK": (13,), "CONSULT": (23,), "HOLD": (14,), "ACW": (15,)}


def state_mismatches(im_url: str) -> list[tuple]:
    """Each completed IRF against its IXN_RESOURCE_STATE_FACT rows: alerting sums to its
    ring time, connected to its talk (customer) and consultation time, held on the
    customer's call to its hold time, wrap to its after-call work; every state lies within
    the IRF's time (after-call work included)."""
    irfs = {rid: {"start": start, "end": end, "RING": ring, "TALK": talk, "HOLD": hold,
                  "ACW": acw, "CONSULT": ci + cr}
            for rid, start, end, ring, talk, hold, acw, ci, cr in _rows(im_url, """
                SELECT INTERACTION_RESOURCE_ID, START_TS, END_TS, RING_DURATION,
                       TALK_DURATION, HOLD_DURATION, AFTER_CALL_WORK_DURATION,
                       CONS_INIT_TALK_DURATION, CONS_RCV_TALK_DURATION
                FROM INTERACTION_RESOURCE_FACT WHERE ACTIVE_FLAG = 0""")}
    sums: dict = collections.defaultdict(lambda: collections.Counter())
    bad: list[tuple] = []
    for rid, key, start, end, total in _rows(im_url, """
            SELECT INTERACTION_RESOURCE_ID, INTERACTION_RESOURCE_STATE_KEY, START_TS, END_TS,
                   TOTAL_DURATION FROM IXN_RESOURCE_STATE_FACT"""):
        irf = irfs.get(rid)
        if irf is None:
            continue
        sums[rid][key] += total
        if end is None or total != end - start or start < irf["start"] or \
                end > irf["end"] + irf["ACW"]:
            bad.append((rid, "state span", key, start, end, total))
    for rid, irf in irfs.items():
        for name, keys in _STATE_SUMS.items():
            got = sum(sums[rid][k] for k in keys)
            if got != irf[name]:
                bad.append((rid, name, irf[name], got))
    if not sums:
        bad.append(("no state facts",))
    return sorted(bad, key=repr)
