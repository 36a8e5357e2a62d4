"""The simulator: deterministic, continuable from its checkpoint at any second, ICON-consistent
except for the faults it injects (each named by the ledger and really present), and a ledger
that adds up and agrees with the IDB rows."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import hashlib

import pytest
import sqlalchemy as sa
from conftest import execute, invoke, new_database, require_pg, scalar

from gim.errors import UsageError
from gim.schema import icon_codes as codes
from gim.schema.idb import idb_metadata
from gim.simulate import simulate
from gim.simulate.ledger import ledger_metadata
from gim.simulate.model import NEW_SKILL, OLD_SKILL, when
from gim.simulate.writer import BAD_TIMESTAMPS, FAULT_KINDS, MULTISITE_FAULT_KINDS, UNKNOWN_AGENT

START = dt.date(2026, 10, 5)
T0 = int(dt.datetime.combine(START, dt.time(), dt.UTC).timestamp())
KW = dict(calls_per_day=150, agents=15, seed=11, media=("voice", "chat", "email"),
          outbound=True, faults=0.05)
VARIANTS = {"orphan_party": {"missing_call"}, "unknown_config": {"agent_party", "agent_session"},
            "bad_timestamp": set(BAD_TIMESTAMPS), "duplicate_row": {"second_call_row"},
            "never_terminated": {"call_left_active"}, "garbage_string": {"control_characters"},
            "dangling_islink": {"missing_leg"}, "mergecall_missing": {"missing_target"}}


def _norm(value):
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, decimal.Decimal):
        return int(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def digest(url: str, ledger: bool = True) -> dict[str, tuple[int, str]]:
    """Per table: row count and a digest of its sorted, normalized rows (ledger: of the
    ledger's tables too)."""
    engine = _engine(url)
    out = {}
    tables = [*idb_metadata.sorted_tables, *(ledger_metadata.sorted_tables if ledger else ())]
    try:
        with engine.connect() as conn:
            for table in tables:
                rows = sorted(repr(tuple(_norm(v) for v in r))
                              for r in conn.execute(sa.select(table)))
                out[table.name] = (len(rows), hashlib.md5("\n".join(rows).encode()).hexdigest())
    finally:
        engine.dispose()
    return out


def _q(url: str, sql: str, **params) -> list[tuple]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _split(t0: int, t1: int):
    t = t0
    while t < t1:
        k = t // 900 * 900
        n = min(t1, k + 900)
        yield k, n - t
        t = n


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Two simulated days on SQLite: the content every other run is compared with."""
    path = tmp_path_factory.mktemp("ref")
    url = f"sqlite:///{path / 'idb.db'}"
    simulate(url, start=START, days=2, **KW)
    return url, digest(url)


def _module_db(request, tmp_path_factory, name: str):
    kind = request.param
    if kind == "postgresql":
        require_pg()
    return kind, new_database(kind, tmp_path_factory.mktemp(name), name)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def simulated(request, tmp_path_factory):
    """The reference's two days simulated again, on each database."""
    _, ctx = _module_db(request, tmp_path_factory, "idb")
    with ctx as url:
        simulate(url, start=START, days=2, **KW)
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def faulty(request, tmp_path_factory):
    """A day in which half the interactions are damaged."""
    _, ctx = _module_db(request, tmp_path_factory, "faulty")
    with ctx as url:
        simulate(url, start=START, days=1, **{**KW, "faults": 0.5})
        yield url


# --------------------------------------------------------------------------------------------
# Determinism and continuation


def test_same_seed_same_content_on_both_databases(simulated, reference):
    assert digest(simulated) == reference[1]


def _open_work(url: str) -> dict[str, int]:
    return dict(
        calls=_q(url, "SELECT COUNT(*) FROM G_CALL WHERE STATE = 1 AND MEDIANAME = 'voice'")[0][0],
        sessions=_q(url, "SELECT COUNT(*) FROM G_LOGIN_SESSION WHERE STATE = 1")[0][0],
        campaigns=_q(url, "SELECT COUNT(*) FROM GO_CAMPAIGN WHERE STATE <> 0")[0][0],
        chains=_q(url, "SELECT COUNT(*) FROM GO_CHAIN WHERE FINISHED_TS IS NULL")[0][0])


def test_continued_in_busy_hours_equals_one_run(db_kind, tmp_path):
    """Runs that stop at 12:07, 15:18 and midnight, with voice calls, sessions and the
    campaign open at the stops, hold what one run over the same 30 hours holds."""
    kw = {**KW, "calls_per_day": 500, "agents": 20, "faults": 0.1}
    with new_database(db_kind, tmp_path, "one") as one, \
            new_database(db_kind, tmp_path, "idb") as url:
        simulate(one, start=START, days=0, minutes=30 * 60, **kw)
        simulate(url, start=START, days=0, minutes=12 * 60 + 7, **kw)
        assert all(_open_work(url).values()), _open_work(url)
        simulate(url, minutes=3 * 60 + 11, resume=True)
        assert all(_open_work(url).values()), _open_work(url)
        result = simulate(url, minutes=8 * 60 + 42, resume=True)
        assert result.previous_end == T0 + 15 * 3600 + 18 * 60 and result.end == T0 + 86400
        assert _q(url, "SELECT END_TS, STATE FROM SIM_RUN") == [(T0 + 86400, "complete")]
        simulate(url, minutes=6 * 60, resume=True)
        assert digest(url) == digest(one)


def test_continued_at_midnight_equals_one_run(db_kind, tmp_path, reference):
    with new_database(db_kind, tmp_path, "idb") as url:
        simulate(url, start=START, days=1, **KW)
        result = simulate(url, days=1, resume=True)
        assert result.previous_end == result.start + 86400
        assert digest(url) == reference[1]


def test_other_seed_other_content(tmp_path, reference):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    simulate(url, start=START, days=2, **{**KW, "seed": 12})
    assert digest(url)["G_CALL"] != reference[1]["G_CALL"]


def test_state_does_not_grow_with_simulated_time(tmp_path):
    """What the simulator keeps (its checkpoint: every open interaction, session, ledger
    interval and queue) is the same size after four days as after one: memory follows what
    is going on, not how long it has run."""
    url = f"sqlite:///{tmp_path / 'idb.db'}"
    kw = dict(calls_per_day=400, agents=10, seed=5, media=("voice", "chat", "email"),
              outbound=True)
    simulate(url, start=START, days=1, **kw)
    one = _q(url, "SELECT STATE FROM SIM_CHECKPOINT")[0][0]
    simulate(url, days=3, resume=True)
    four = _q(url, "SELECT STATE FROM SIM_CHECKPOINT")[0][0]
    rows = _q(url, "SELECT COUNT(*) FROM G_PARTY_HISTORY")[0][0]
    assert rows > 4 * 3000
    assert len(four) < 1.5 * len(one), (len(one), len(four))


# --------------------------------------------------------------------------------------------
# The ledger


def test_ledger_adds_up(simulated):
    _ledger_adds_up(simulated)


def _ledger_adds_up(url: str) -> None:
    # An agent's states cover exactly its login time, per media and interval; DND is part
    # of the logged-in time outside after-call work (which outranks it); reasons are part
    # of not-ready time.
    assert _q(url, """SELECT * FROM SIM_AGENT_INTERVAL
                      WHERE LOGIN_S <> READY_S + NOT_READY_S + BUSY_S + ACW_S
                      OR LOGIN_S > 900 OR DND_S > LOGIN_S - ACW_S""") == []
    assert _q(url, """SELECT r.AGENT_ID FROM SIM_AGENT_REASON_INTERVAL r
                      JOIN SIM_AGENT_INTERVAL a ON a.AGENT_ID = r.AGENT_ID
                      AND a.MEDIA = r.MEDIA AND a.INTERVAL_KEY = r.INTERVAL_KEY
                      GROUP BY r.AGENT_ID, r.MEDIA, r.INTERVAL_KEY, a.NOT_READY_S
                      HAVING SUM(r.NOT_READY_S) > a.NOT_READY_S""") == []
    dnd = dict(_q(url, "SELECT MEDIA, SUM(DND_S) FROM SIM_AGENT_INTERVAL GROUP BY MEDIA"))
    assert dnd["voice"] > 0 and dnd["chat"] > 0
    # Accepted offers per agent, media and interval are the accepted participations;
    # abandons while ringing too; every participation was an offer.
    parts = collections.Counter()
    for agent, media, start, accepted, outcome in _q(url, """
            SELECT p.RESOURCE_ID, i.MEDIA, p.START_TS, p.ACCEPTED, p.OUTCOME
            FROM SIM_PARTICIPATION p JOIN SIM_INTERACTION i ON i.CALLID = p.CALLID
            WHERE p.RESOURCE_KIND = 'AGENT'"""):
        key = (agent, media, start // 900 * 900)
        parts[key + ("ACCEPTED",)] += accepted
        parts[key + ("ABANDONED",)] += outcome == "AbandonedWhileRinging"
        parts[(agent, media, "OFFERED")] += 1
    ledger = collections.Counter()
    for agent, media, key, offered, accepted, abandoned in _q(url, """
            SELECT AGENT_ID, MEDIA, INTERVAL_KEY, OFFERED, ACCEPTED, ABANDONED
            FROM SIM_AGENT_INTERVAL"""):
        ledger[(agent, media, key, "ACCEPTED")] += accepted
        ledger[(agent, media, key, "ABANDONED")] += abandoned
        ledger[(agent, media, "OFFERED")] += offered
    for k in set(parts) | set(ledger):
        if k[-1] == "OFFERED":  # a preview record may be offered before the run's end and
            assert 0 <= ledger[k] - parts[k] <= 1, k  # dialed after it
        else:
            assert ledger[k] == parts[k], k
    assert sum(v for k, v in ledger.items() if k[-1] == "ACCEPTED") > 300
    # Interaction totals are the sums of their participants'; a handled interaction is
    # one an agent accepted, and its handling agent is the first who did.
    assert _q(url, """SELECT i.CALLID FROM SIM_INTERACTION i JOIN SIM_PARTICIPATION p
                      ON p.CALLID = i.CALLID AND p.RESOURCE_KIND = 'AGENT'
                      GROUP BY i.CALLID, i.TALK_S, i.HOLD_S, i.RING_S, i.ACW_S, i.CONSULT_S
                      HAVING SUM(p.TALK_S) <> i.TALK_S OR SUM(p.HOLD_S) <> i.HOLD_S
                      OR SUM(p.RING_S) <> i.RING_S OR SUM(p.ACW_S) <> i.ACW_S
                      OR SUM(p.CONSULT_S) <> i.CONSULT_S""") == []
    assert _q(url, """SELECT i.CALLID FROM SIM_INTERACTION i WHERE
                      (i.OUTCOME = 'handled') <> EXISTS (SELECT 1 FROM SIM_PARTICIPATION p
                           WHERE p.CALLID = i.CALLID AND p.ACCEPTED = 1)
                      OR (i.HANDLING_AGENT_ID IS NULL) <> (i.OUTCOME <> 'handled')
                      OR i.HANDLING_AGENT_ID <> (SELECT p.RESOURCE_ID FROM SIM_PARTICIPATION p
                           WHERE p.CALLID = i.CALLID AND p.ACCEPTED = 1 ORDER BY p.SEQ
                           LIMIT 1)""") == []
    # Short abandons: the interaction's within 10 s of its start; the queue's within 10 s
    # of entering that queue.
    assert _q(url, """SELECT CALLID FROM SIM_INTERACTION WHERE OUTCOME = 'short_abandon'
                      AND END_TS - START_TS >= 10""") == []
    assert _q(url, """SELECT CALLID FROM SIM_INTERACTION WHERE OUTCOME = 'abandoned_queue'
                      AND END_TS - START_TS < 10""") == []
    short = collections.Counter(
        (q, s // 900 * 900) for q, s in _q(url, """SELECT RESOURCE_ID, START_TS
            FROM SIM_PARTICIPATION WHERE OUTCOME = 'Abandoned' AND QUEUE_S < 10
            AND RESOURCE_KIND IN ('VQ', 'ACD_QUEUE', 'IXN_QUEUE')"""))
    assert short == collections.Counter({
        (q, k): n for q, k, n in _q(url, """SELECT QUEUE_ID, INTERVAL_KEY, SHORT_ABANDONED
            FROM SIM_QUEUE_INTERVAL WHERE SHORT_ABANDONED > 0""")})
    # A call handled, transferred, then abandoned in the second queue is handled.
    assert _q(url, """SELECT COUNT(*) FROM SIM_INTERACTION i WHERE i.OUTCOME = 'handled'
                      AND EXISTS (SELECT 1 FROM SIM_PARTICIPATION p WHERE p.CALLID = i.CALLID
                      AND p.OUTCOME = 'Abandoned')""")[0][0] > 0
    # Queues: what entered left one way or another, or is still waiting.
    waiting = _q(url, """SELECT COUNT(*) FROM SIM_PARTICIPATION WHERE END_TS IS NULL
                         AND RESOURCE_KIND IN ('VQ', 'ACD_QUEUE', 'IXN_QUEUE')""")[0][0]
    assert _q(url, """SELECT SUM(ENTERED - ABANDONED - DISTRIBUTED - CLEARED)
                      FROM SIM_QUEUE_INTERVAL""")[0][0] == waiting
    outcomes = dict(_q(url, "SELECT OUTCOME, COUNT(*) FROM SIM_INTERACTION GROUP BY 1"))
    for outcome in ("handled", "abandoned_queue", "short_abandon", "abandoned_ringing",
                    "no_answer", "busy", "answering_machine", "abandoned_dialer", "failed"):
        assert outcomes.get(outcome, 0) > 0, outcome
    media = {m for (m,) in _q(url, "SELECT DISTINCT MEDIA FROM SIM_INTERACTION")}
    assert media == {"voice", "chat", "email"}
    assert _q(url, "SELECT SUM(TRANSFERS), SUM(CONFERENCES) FROM SIM_INTERACTION")[0] > (0, 0)


def _sessions(url: str) -> tuple[list, int]:
    """(agent, media, session id, start, end) of each login session's media, the agent
    found by place (a damaged session names an unknown agent), media ending at its log-off."""
    end = _q(url, "SELECT END_TS FROM SIM_RUN")[0][0]
    logoff = {(s, m): t for s, m, t in _q(url, """SELECT LOGINSESSIONID, MEDIANAME,
        MIN(ADDED_TS) FROM G_AGENT_STATE_HISTORY WHERE STATE = 0 AND MEDIANAME IS NOT NULL
        GROUP BY LOGINSESSIONID, MEDIANAME""")}
    out = []
    for agent, sid, t0, t1, media in _q(url, """SELECT a.ID, s.LOGINSESSIONID, s.CREATED_TS,
            s.TERMINATED_TS, s.MEDIALIST FROM G_LOGIN_SESSION s
            JOIN GC_AGENT a ON a.PLACEID = s.PLACEID"""):
        for m in (media.split(",") if media else ["voice"]):
            out.append((agent, m, sid, t0, logoff.get((sid, m), t1 if t1 else end)))
    return out, end


def test_ledger_is_what_the_agent_rows_say(simulated):
    """Per agent, media and interval: login time is the login sessions', state times the
    agent-state rows', DND the DND rows' (a multimedia DND is the place's: it covers each
    media's states but after-call work)."""
    _ledger_is_what_the_agent_rows_say(simulated)


def _ledger_is_what_the_agent_rows_say(url: str) -> None:
    sessions, end = _sessions(url)
    idb = collections.Counter()
    names = {2: "NOT_READY_S", 3: "READY_S", 4: "ACW_S", 5: "BUSY_S"}
    states = collections.defaultdict(list)
    for sid, media, state, ts in _q(url, """SELECT LOGINSESSIONID, MEDIANAME, STATE, ADDED_TS
                                            FROM G_AGENT_STATE_HISTORY ORDER BY SEQ, ID"""):
        states[(sid, media or "voice")].append((ts, state))
    place_agent = dict(_q(url, "SELECT PLACEID, ID FROM GC_AGENT"))
    place_dnd = collections.defaultdict(list)
    for place, ep, t0, t1 in _q(url, """SELECT PLACEID, ENDPOINTID, CREATED_TS, TERMINATED_TS
                                        FROM G_DND_HISTORY"""):
        if ep == 0:
            place_dnd[place_agent[place]].append((t0, t1 or end))
        else:
            for k, secs in _split(t0, t1 or end):
                idb[(place_agent[place], "voice", k, "DND_S")] += secs
    for agent, media, sid, t0, t1 in sessions:
        for k, secs in _split(t0, t1):
            idb[(agent, media, k, "LOGIN_S")] += secs
        rows = states[(sid, media)]
        for (ts, state), (nxt, _) in zip(rows, [*rows[1:], (t1, None)], strict=True):
            if state in names:
                for k, secs in _split(ts, min(nxt, t1)):
                    idb[(agent, media, k, names[state])] += secs
            if media != "voice" and state in (2, 3, 5):
                for on, off in place_dnd[agent]:
                    for k, secs in _split(max(ts, on), min(nxt, t1, off)):
                        idb[(agent, media, k, "DND_S")] += secs
    ledger = collections.Counter()
    fields = ("LOGIN_S", "READY_S", "NOT_READY_S", "BUSY_S", "ACW_S", "DND_S")
    for row in _q(url, f"SELECT AGENT_ID, MEDIA, INTERVAL_KEY, {', '.join(fields)} "
                       "FROM SIM_AGENT_INTERVAL"):
        for name, value in zip(fields, row[3:], strict=True):
            if value:
                ledger[row[:3] + (name,)] = value
    assert {k: v for k, v in idb.items() if v} == dict(ledger)
    assert sum(v for k, v in ledger.items() if k[3] == "DND_S" and k[1] == "chat") > 0


def test_ledger_durations_are_the_party_statistics(simulated):
    """Per interaction and agent: ring, talk, hold, consultation and after-call-work
    seconds of the ledger are G_PARTY_STAT's (TT_ACW written when the work ends)."""
    _ledger_durations_are_the_party_statistics(simulated)


def _ledger_durations_are_the_party_statistics(url: str, consult_apart: bool = True) -> None:
    """consult_apart: consultation seconds are told from talk by the call type. An agent
    consulted from another site talks on in the call of its own switch that the
    consultation reached, so with several sites the two are compared together."""
    end = _q(url, "SELECT END_TS FROM SIM_RUN")[0][0]
    faulty = {c for (c,) in _q(url, "SELECT CALLID FROM SIM_FAULT WHERE CALLID IS NOT NULL")}
    # A call belongs to the interaction whose part it holds; a consultation to its root's.
    owner = {leg: callid for callid, leg in _q(url, "SELECT CALLID, LEG_CALLID FROM "
                                                    "SIM_PARTICIPATION")}
    root = {irid: callid for irid, callid in _q(url, "SELECT IRID, CALLID FROM G_CALL")}
    stats = collections.Counter()
    for rootirid, calltype, agent, ring, talk, hold, acw in _q(url, """
            SELECT c.ROOTIRID, c.CALLTYPE, p.AGENTID, s.TT_ALERTING, s.TT_CONNECTED,
                   s.TT_HOLD, s.TT_ACW FROM G_PARTY_STAT s
            JOIN G_PARTY p ON p.PARTYID = s.PARTYID JOIN G_CALL c ON c.CALLID = p.CALLID
            WHERE p.AGENTID IS NOT NULL"""):
        base = root.get(rootirid)
        key = (owner.get(base, base), agent)
        stats[key + ("RING",)] += ring
        consult = consult_apart and calltype == codes.CallType.CONSULT
        stats[key + ("CONSULT" if consult else "TALK",)] += talk
        stats[key + ("HOLD",)] += hold
        stats[key + ("ACW",)] += acw
    ledger = collections.Counter()
    for callid, agent, *values in _q(url, """
            SELECT p.CALLID, p.RESOURCE_ID, p.RING_S, p.TALK_S, p.CONSULT_S, p.HOLD_S,
                   p.ACW_S FROM SIM_PARTICIPATION p JOIN SIM_INTERACTION i
            ON i.CALLID = p.CALLID WHERE p.RESOURCE_KIND = 'AGENT' AND i.END_TS < :e""",
            e=end - 120):
        for name, value in zip(("RING", "TALK", "CONSULT", "HOLD", "ACW"), values,
                               strict=True):
            if name == "CONSULT" and not consult_apart:
                name = "TALK"
            ledger[(callid, agent, name)] += value
    done = {k[0] for k in ledger}
    compared = {k: v for k, v in stats.items() if k[0] in done and k[0] not in faulty and v}
    expected = {k: v for k, v in ledger.items() if k[0] not in faulty and v}
    assert compared == expected
    assert sum(v for k, v in expected.items() if k[2] == "ACW") > 0
    assert not consult_apart or sum(v for k, v in expected.items() if k[2] == "CONSULT") > 0


def test_outbound_modes_results_and_retries(simulated):
    url = simulated
    attempts = _q(url, """SELECT CHAINGUID, ATTEMPT, DIALING_MODE, CALL_RESULT, CALLID, AGENT_ID
                          FROM SIM_OUTBOUND_ATTEMPT ORDER BY CHAINGUID, ATTEMPT""")
    modes = {(m, r) for _, _, m, r, _, _ in attempts}
    assert {m for m, _ in modes} == {int(m) for m in (codes.DialMode.PREDICTIVE,
                                                     codes.DialMode.PROGRESSIVE,
                                                     codes.DialMode.PREVIEW)}
    # The dialer drops answered calls only when it dials ahead of agents.
    dropped = {m for m, r in modes if r == codes.CallResult.ABANDONED}
    assert dropped == {codes.DialMode.PREDICTIVE}
    # Retries: attempt n > 1 follows a busy or unanswered attempt n - 1 of the same record.
    previous = {(c, a): r for c, a, _, r, _, _ in attempts}
    retried = [(c, a) for c, a, *_ in attempts if a > 1]
    assert retried
    for chain, attempt in retried:
        assert previous[(chain, attempt - 1)] in (codes.CallResult.BUSY,
                                                   codes.CallResult.NO_ANSWER)
    assert _q(url, "SELECT MAX(ATTEMPT) FROM GO_CHAINREC_HIST")[0][0] > 1
    # A preview call is dialed from the agent's extension, the others by the dialer.
    origin = {c: (ep, agent) for c, ep, agent in _q(url, """SELECT CALLID, ENDPOINTID,
        AGENTID FROM G_PARTY WHERE PROLE = 1 AND ID < 9000000000000""")}
    for _, _, mode, result, callid, agent in attempts:
        ep, origin_agent = origin[callid]
        if mode == codes.DialMode.PREVIEW:
            assert origin_agent is not None and ep != 1002
        else:
            assert ep == 1002 and origin_agent is None
        assert (agent is not None) == (result == codes.CallResult.ANSWER)
    # The campaign changed its dialing mode while it ran.
    assert _q(url, "SELECT COUNT(*) FROM GO_CAMPPROP_HIST WHERE PREVDIALMODE IS NOT NULL "
                   "AND PREVDIALMODE <> DIALMODE")[0][0] >= 2


# Coded columns and the enumeration whose values they hold (written to G_DICTIONARY).
CODED = [("G_CALL", "CALLTYPE", codes.CallType), ("G_CALL", "MERGETYPE", codes.MergeType),
         ("G_CALL", "STATE", codes.IrState), ("G_IR", "STATE", codes.IrState),
         ("G_PARTY", "TYPE", codes.PartyType), ("G_PARTY", "PROLE", codes.PartyRole),
         ("G_PARTY", "STATE", codes.PartyState), ("G_PARTY", "CCEVENT", codes.CCEvent),
         ("G_PARTY", "CCEVENTCAUSE", codes.CCCause),
         ("G_PARTY", "PARENTLINKTYPE", codes.LinkType),
         ("G_PARTY_HISTORY", "CHANGETYPE", codes.PartyChange),
         ("G_CALL_HISTORY", "CHANGETYPE", codes.CallChange),
         ("G_IR_HISTORY", "CHANGETYPE", codes.IrChange),
         ("G_USERDATA_HISTORY", "CHANGETYPE", codes.UserDataChange),
         ("G_VIRTUAL_QUEUE", "RESULT", codes.VqResult),
         ("G_ROUTE_RESULT", "RESULT", codes.RouteResult),
         ("G_AGENT_STATE_HISTORY", "STATE", codes.AgentState),
         ("G_AGENT_STATE_HISTORY", "WORKMODE", codes.WorkMode),
         ("G_LOGIN_SESSION", "STATE", codes.SessionState),
         ("G_DND_HISTORY", "STATE", codes.DndState),
         ("GO_CAMPAIGN", "DIALMODE", codes.DialMode),
         ("GO_CAMPPROP_HIST", "DIALMODE", codes.DialMode),
         ("GO_CAMPAIGN", "STATE", codes.CampaignState),
         ("GO_CHAIN", "STATE", codes.ChainState),
         ("GO_CHAINREC_HIST", "STATE", codes.ChainState),
         ("GO_CHAINREC_HIST", "CALLRESULT", codes.CallResult),
         ("GO_CHAINREC_HIST", "RECORDSTATUS", codes.RecordStatus),
         ("GO_CHAINREC_HIST", "RECORDTYPE", codes.RecordType),
         ("GO_CHAINREC_HIST", "CONTACTINFOTYPE", codes.ContactInfoType),
         ("GC_ENDPOINT", "TYPE", codes.DnType), ("GC_SKILL", "STATUS", codes.CfgStatus)]


def test_codes_are_named_in_the_dictionary(simulated):
    _codes_are_named_in_the_dictionary(simulated, CODED)
    # A single-site IDB holds no dictionary of multi-site codes.
    assert not {t for (t,) in _q(simulated, "SELECT ID FROM G_DICT_TYPE")} & \
        codes.MULTISITE_DICTIONARIES


def _codes_are_named_in_the_dictionary(url: str, coded: list) -> None:
    types = {enum: number for number, (_, enum) in codes.DICTIONARIES.items()}
    named = collections.defaultdict(set)
    for dict_type, code in _q(url, "SELECT DICT_TYPE, ID FROM G_DICTIONARY"):
        named[dict_type].add(code)
    for table, column, enum in coded:
        used = {v for (v,) in _q(url, f"SELECT DISTINCT {column} FROM {table} "
                                      f"WHERE {column} IS NOT NULL")}
        assert used and used <= named[types[enum]], (table, column, used - named[types[enum]])
    results = {v for (v,) in _q(url, "SELECT DISTINCT CALL_RESULT FROM SIM_OUTBOUND_ATTEMPT")}
    assert results <= named[types[codes.CallResult]]


def test_user_data_is_updated_and_deleted_over_calls(simulated):
    url = simulated
    changes = dict(_q(url, "SELECT CHANGETYPE, COUNT(*) FROM G_USERDATA_HISTORY GROUP BY 1"))
    assert all(changes.get(int(c), 0) > 0 for c in codes.UserDataChange)
    # A delete empties a key added before; an update changes one added before, by the
    # handling agent.
    assert _q(url, """SELECT d.ID FROM G_USERDATA_HISTORY d WHERE d.CHANGETYPE IN (2, 3) AND
                      (d.AGENTID IS NULL OR (d.CHANGETYPE = 3 AND d.VALUE IS NOT NULL) OR
                       NOT EXISTS (SELECT 1 FROM G_USERDATA_HISTORY a WHERE a.CALLID = d.CALLID
                       AND a.KEYNAME = d.KEYNAME AND a.CHANGETYPE = 1 AND a.ID < d.ID))""") == []
    # The principal user-data row holds each call's latest subtype.
    latest = {}
    for callid, value in _q(url, """SELECT CALLID, VALUE FROM G_USERDATA_HISTORY
                                    WHERE KEYNAME = 'ServiceSubType' ORDER BY ID"""):
        latest[callid] = value
    principal = dict(_q(url, "SELECT CALLID, G_SERVICE_SUBTYPE FROM G_CALL_USERDATA"))
    assert principal == {c: v for c, v in latest.items() if c in principal}
    assert len(principal) > 100


def test_configuration_changes_during_the_run(simulated):
    url = simulated
    deleted = _q(url, "SELECT STATUS, DELETED_TS, LASTCHANGE_TS, CREATED_TS FROM GC_SKILL "
                      "WHERE ID = :i", i=OLD_SKILL[0])
    assert deleted == [(2, T0 + OLD_SKILL[2], T0 + OLD_SKILL[2], T0 - 7 * 86400)]
    links = _q(url, "SELECT STATUS, DELETED_TS FROM GCX_SKILL_LEVEL WHERE SKILLID = :i",
               i=OLD_SKILL[0])
    assert links and set(links) == {(2, T0 + OLD_SKILL[2])}
    created = _q(url, "SELECT STATUS, CREATED_TS, DELETED_TS FROM GC_SKILL WHERE ID = :i",
                 i=NEW_SKILL[0])
    assert created == [(1, T0 + NEW_SKILL[2], None)]
    assert _q(url, "SELECT COUNT(*) FROM GCX_SKILL_LEVEL WHERE SKILLID = :i AND STATUS = 1",
              i=NEW_SKILL[0])[0][0] >= 3


# --------------------------------------------------------------------------------------------
# Keys and references of the IDB, and the faults


def _refs(table: str, column: str, target: str, key: str = "ID", ids: str = "x.ID",
          kind: str | None = None) -> tuple[str, str, str | None]:
    return (f"{table}.{column} naming no {target}.{key}",
            f"SELECT {ids} FROM {table} x WHERE x.{column} IS NOT NULL AND x.{column} NOT IN "
            f"(SELECT {key} FROM {target} WHERE {key} IS NOT NULL)", kind)


def _unique(table: str, column: str, kind: str | None = None) -> tuple[str, str, str | None]:
    return (f"two {table} rows for one {column}",
            f"SELECT ID FROM {table} WHERE {column} IN (SELECT {column} FROM {table} "
            f"GROUP BY {column} HAVING COUNT(*) > 1)" +
            (" AND ID > 9000000000000" if kind else ""), kind)


def _session_of(table: str) -> str:
    return (f"SELECT s.ID FROM G_LOGIN_SESSION s JOIN {table} x ON x.LOGINSESSIONID = "
            f"s.LOGINSESSIONID WHERE x.AGENTID NOT IN (SELECT ID FROM GC_AGENT)")


LINKS = [("GCX_GROUP_AGENT", "GROUPID", "GC_GROUP"), ("GCX_GROUP_AGENT", "AGENTID", "GC_AGENT"),
         ("GCX_GROUP_PLACE", "GROUPID", "GC_GROUP"), ("GCX_GROUP_PLACE", "PLACEID", "GC_PLACE"),
         ("GCX_GROUP_ENDPOINT", "GROUPID", "GC_GROUP"),
         ("GCX_GROUP_ENDPOINT", "ENDPOINTID", "GC_ENDPOINT"),
         ("GCX_SKILL_LEVEL", "SKILLID", "GC_SKILL"), ("GCX_SKILL_LEVEL", "AGENTID", "GC_AGENT"),
         ("GCX_AGENT_PLACE", "PLACEID", "GC_PLACE"), ("GCX_AGENT_PLACE", "AGENTID", "GC_AGENT"),
         ("GCX_ENDPOINT_PLACE", "ENDPOINTID", "GC_ENDPOINT"),
         ("GCX_ENDPOINT_PLACE", "PLACEID", "GC_PLACE"),
         ("GCX_LOGIN_INFO", "LOGINID", "GC_LOGIN"), ("GCX_LOGIN_INFO", "AGENTID", "GC_AGENT"),
         ("GCX_CAMPLIST", "CAMPAIGNID", "GC_CAMPAIGN"),
         ("GCX_CAMPLIST", "CALLINGLISTID", "GC_CALLING_LIST"),
         ("GCX_GROUP_CAMPAIGN", "GROUPID", "GC_GROUP"),
         ("GCX_GROUP_CAMPAIGN", "CAMPAIGNID", "GC_CAMPAIGN")]
CFG = ["GC_TENANT", "GC_SWITCH", "GC_APPLICATION", "GC_ENDPOINT", "GC_AGENT", "GC_PLACE",
       "GC_GROUP", "GC_SKILL", "GC_LOGIN", "GC_TIME_ZONE", "GC_SCRIPT", "GC_CAMPAIGN",
       "GC_CALLING_LIST"]

# IS-Links with no counterpart although the switch they name is monitored.
UNPAIRED = ("SELECT l.ID FROM G_IS_LINK l WHERE NOT EXISTS (SELECT 1 FROM G_IS_LINK o WHERE "
            "o.LINKID = l.LINKID AND o.ID <> l.ID) AND l.REMOTELOCATION NOT IN "
            "(SELECT REMOTELOCATION FROM GSYS_DNPREMOTELOCATION)")

# (description, query returning the ids of offending rows, the fault kind that may explain
# them: the ids are then those SIM_FAULT names in ROW_ID).
INTEGRITY = [
    _refs("G_PARTY", "CALLID", "G_CALL", "CALLID", kind="orphan_party"),
    _refs("G_PARTY", "AGENTID", "GC_AGENT", kind="unknown_config"),
    _refs("G_PARTY", "PLACEID", "GC_PLACE", kind="unknown_config"),
    ("voice party on an unknown DN", "SELECT p.ID FROM G_PARTY p WHERE p.TYPE = 1 AND "
     "p.ENDPOINTID NOT IN (SELECT ID FROM GC_ENDPOINT)", None),
    _refs("G_PARTY", "PARENTPARTYID", "G_PARTY", "PARTYID"),
    _unique("G_PARTY", "PARTYID"),
    ("call ending before it starts", "SELECT ID FROM G_CALL WHERE TERMINATED_TS < CREATED_TS",
     "bad_timestamp"),
    ("call at a negative time", "SELECT ID FROM G_CALL WHERE CREATED_TS < 0 OR "
     "TERMINATED_TS < 0", "bad_timestamp"),
    ("call with no start", "SELECT ID FROM G_CALL WHERE CREATED_TS IS NULL OR CREATED IS NULL",
     "bad_timestamp"),
    ("terminated call with no end", "SELECT ID FROM G_CALL WHERE STATE = 2 AND "
     "(TERMINATED_TS IS NULL OR TERMINATED IS NULL)", "bad_timestamp"),
    _unique("G_CALL", "CALLID", "duplicate_row"),
    ("call active with every party ended", "SELECT c.ID FROM G_CALL c WHERE c.STATE = 1 AND "
     "NOT EXISTS (SELECT 1 FROM G_PARTY p WHERE p.CALLID = c.CALLID AND "
     "p.TERMINATED_TS IS NULL)", "never_terminated"),
    _refs("G_CALL", "IRID", "G_IR", "IRID"), _refs("G_CALL", "ROOTIRID", "G_IR", "IRID"),
    _refs("G_CALL", "PARENTCALLID", "G_CALL", "CALLID"),
    _refs("G_CALL", "MERGECALLID", "G_CALL", "CALLID", kind="mergecall_missing"),
    _unique("G_IR", "IRID"), _refs("G_IR", "ROOTCALLID", "G_CALL", "CALLID"),
    _refs("G_IR", "PARENTIRID", "G_IR", "IRID"),
    _refs("G_PARTY_HISTORY", "PARTYID", "G_PARTY", "PARTYID", ids="x.PHID"),
    _refs("G_PARTY_STAT", "PARTYID", "G_PARTY", "PARTYID"),
    _refs("G_CALL_HISTORY", "CALLID", "G_CALL", "CALLID", ids="x.CHID"),
    _refs("G_CALL_STAT", "CALLID", "G_CALL", "CALLID"),
    _refs("G_IR_HISTORY", "IRID", "G_IR", "IRID", ids="x.IRHID"),
    _refs("G_IS_LINK", "CALLID", "G_CALL", "CALLID"),
    ("IS-Link without its counterpart", UNPAIRED, "dangling_islink"),
    ("IS-Link of more than two calls", "SELECT ID FROM G_IS_LINK WHERE LINKID IN (SELECT "
     "LINKID FROM G_IS_LINK GROUP BY LINKID HAVING COUNT(*) > 2)", None),
    ("IS-Link whose counterpart is not where it says, or of the same type", "SELECT l.ID "
     "FROM G_IS_LINK l JOIN G_IS_LINK o ON o.LINKID = l.LINKID AND o.ID <> l.ID JOIN G_CALL c "
     "ON c.CALLID = o.CALLID JOIN GC_SWITCH s ON s.ID = c.SWITCHID WHERE s.NAME <> "
     "l.REMOTELOCATION OR o.ISLINKTYPE = l.ISLINKTYPE", None),
    *[_refs(t, c, target, key) for t in ("G_ROUTE_RESULT", "G_VIRTUAL_QUEUE")
      for c, target, key in (("CALLID", "G_CALL", "CALLID"), ("PARTYID", "G_PARTY", "PARTYID"),
                             ("IRID", "G_IR", "IRID"), ("ENDPOINTID", "GC_ENDPOINT", "ID"))],
    _refs("G_VIRTUAL_QUEUE", "TARGETAGENTID", "GC_AGENT"),
    *[_refs(t, "CALLID", "G_CALL", "CALLID") for t in ("G_USERDATA_HISTORY", "G_CALL_USERDATA",
                                                       "GM_F_USERDATA", "GM_L_USERDATA")],
    _refs("G_LOGIN_SESSION", "AGENTID", "GC_AGENT", kind="unknown_config"),
    ("session endpoint of an unknown agent", _session_of("GX_SESSION_ENDPOINT"),
     "unknown_config"),
    ("agent state of an unknown agent", _session_of("G_AGENT_STATE_HISTORY"), "unknown_config"),
    _refs("G_LOGIN_SESSION", "PLACEID", "GC_PLACE"), _refs("G_LOGIN_SESSION", "LOGINID", "GC_LOGIN"),
    _unique("G_LOGIN_SESSION", "LOGINSESSIONID"),
    *[_refs(t, "LOGINSESSIONID", "G_LOGIN_SESSION", "LOGINSESSIONID")
      for t in ("GX_SESSION_ENDPOINT", "G_DND_HISTORY", "G_AGENT_STATE_HISTORY")],
    _refs("G_AGENT_STATE_RC", "SESSIONID", "G_LOGIN_SESSION", "LOGINSESSIONID"),
    ("session endpoint on an unknown DN (Interaction Server's are 0)", "SELECT ID FROM "
     "GX_SESSION_ENDPOINT WHERE ENDPOINTID <> 0 AND ENDPOINTID NOT IN (SELECT ID FROM "
     "GC_ENDPOINT)", None),
    _refs("GOX_CHAIN_CALL", "CALLID", "G_CALL", "CALLID"),
    _refs("GOX_CHAIN_CALL", "CHAINGUID", "GO_CHAIN", "CHAINGUID"),
    _refs("GOX_CHAIN_CALL", "CALLATTID", "GO_CHAINREC_HIST", "CALLATTID"),
    _refs("GO_CHAIN", "SESSID", "GO_CAMPAIGN", "SESSID"),
    _refs("GO_CHAIN", "CAMPAIGNID", "GC_CAMPAIGN"), _refs("GO_CHAIN", "CALLINGLISTID",
                                                          "GC_CALLING_LIST"),
    _refs("GO_CAMPAIGN", "CAMPAIGNID", "GC_CAMPAIGN"), _refs("GO_CAMPAIGN", "GROUPID", "GC_GROUP"),
    _refs("GO_CAMPAIGNHISTORY", "SESSID", "GO_CAMPAIGN", "SESSID"),
    _refs("GO_CAMPPROP_HIST", "SESSID", "GO_CAMPAIGN", "SESSID"),
    _refs("GO_CHAINREC_HIST", "CHAINGUID", "GO_CHAIN", "CHAINGUID"),
    _refs("GO_CUSTOM_FIELDS", "CHAINGUID", "GO_CHAIN", "CHAINGUID"),
    *[_refs(t, c, target) for t, c, target in LINKS],
    *[(f"active {t} row naming a deleted {target}", f"SELECT x.ID FROM {t} x JOIN {target} o "
       f"ON o.ID = x.{c} WHERE x.STATUS = 1 AND o.STATUS = 2", None) for t, c, target in LINKS],
    *[(f"{t} deleted with no deletion time", f"SELECT ID FROM {t} WHERE (STATUS = 2) <> "
       "(DELETED_TS IS NOT NULL)", None) for t in CFG + sorted({t for t, _, _ in LINKS})],
    _refs("GC_AGENT", "PLACEID", "GC_PLACE"), _refs("GC_ENDPOINT", "SWITCHID", "GC_SWITCH"),
    _refs("GC_LOGIN", "SWITCHID", "GC_SWITCH"),
    ("calls of an unknown data-source session", "SELECT ID FROM G_CALL WHERE GSYS_DOMAIN NOT "
     "IN (SELECT DSS_ID FROM G_DSS_GCC_PROVIDER)", None),
    ("agent states of an unknown data-source session", "SELECT ID FROM G_AGENT_STATE_HISTORY "
     "WHERE GSYS_DOMAIN NOT IN (SELECT DSS_ID FROM G_DSS_GLS_PROVIDER)", None),
    ("outbound rows of an unknown data-source session", "SELECT ID FROM GO_CHAIN WHERE "
     "GSYS_DOMAIN NOT IN (SELECT DSS_ID FROM G_DSS_GOS_PROVIDER)", None),
]

# Per fault variant: the ids of rows that really carry it.
PRESENT = {
    ("orphan_party", "missing_call"):
        "SELECT ID FROM G_PARTY WHERE CALLID NOT IN (SELECT CALLID FROM G_CALL)",
    ("unknown_config", "agent_party"): f"SELECT ID FROM G_PARTY WHERE AGENTID = {UNKNOWN_AGENT}",
    ("unknown_config", "agent_session"):
        f"SELECT s.ID FROM G_LOGIN_SESSION s WHERE s.AGENTID = {UNKNOWN_AGENT} AND NOT EXISTS "
        f"(SELECT 1 FROM G_AGENT_STATE_HISTORY h WHERE h.LOGINSESSIONID = s.LOGINSESSIONID "
        f"AND h.AGENTID <> {UNKNOWN_AGENT}) AND NOT EXISTS (SELECT 1 FROM GX_SESSION_ENDPOINT e "
        f"WHERE e.LOGINSESSIONID = s.LOGINSESSIONID AND e.AGENTID <> {UNKNOWN_AGENT})",
    ("bad_timestamp", "end_before_start"):
        "SELECT ID FROM G_CALL WHERE STATE = 2 AND TERMINATED_TS < CREATED_TS",
    ("bad_timestamp", "missing_end"):
        "SELECT ID FROM G_CALL WHERE STATE = 2 AND TERMINATED_TS IS NULL AND TERMINATED IS "
        "NULL AND TERMINATED_TCODE IS NULL",
    ("bad_timestamp", "negative_start"): "SELECT ID FROM G_CALL WHERE CREATED_TS < 0",
    ("bad_timestamp", "missing_start"):
        "SELECT ID FROM G_CALL WHERE CREATED_TS IS NULL AND CREATED IS NULL AND "
        "CREATED_TCODE IS NULL",
    ("duplicate_row", "second_call_row"):
        "SELECT ID FROM G_CALL WHERE ID > 9000000000000 AND CALLID IN (SELECT CALLID FROM "
        "G_CALL WHERE ID < 9000000000000)",
    ("never_terminated", "call_left_active"):
        "SELECT c.ID FROM G_CALL c JOIN SIM_INTERACTION i ON i.CALLID = c.CALLID WHERE "
        "c.STATE = 1 AND i.STATUS = 'completed'",
    ("garbage_string", "control_characters"):
        "SELECT ID FROM G_USERDATA_HISTORY WHERE VALUE LIKE :esc",
    ("dangling_islink", "missing_leg"): UNPAIRED,
    ("mergecall_missing", "missing_target"):
        "SELECT ID FROM G_CALL WHERE MERGECALLID NOT IN (SELECT CALLID FROM G_CALL)",
}


def test_idb_is_consistent_except_the_named_faults(faulty):
    _idb_is_consistent_except_the_named_faults(faulty, set(FAULT_KINDS))


def _idb_is_consistent_except_the_named_faults(url: str, kinds: set[str]) -> None:
    faults = collections.defaultdict(set)
    for kind, description, row_id in _q(url, "SELECT KIND, DESCRIPTION, ROW_ID "
                                             "FROM SIM_FAULT"):
        variant = description.split(":")[0]
        assert variant in VARIANTS[kind], description
        faults[(kind, variant)].add(row_id)
    # Every kind and variant was injected, and is really in the IDB, where the ledger says.
    assert set(faults) == {(k, v) for k, vs in VARIANTS.items() if k in kinds for v in vs}
    assert set(VARIANTS) == set(FAULT_KINDS + MULTISITE_FAULT_KINDS)
    for key, sql in PRESENT.items():
        assert faults[key] <= {r[0] for r in _q(url, sql, esc="%\x1b%")}, key
    # Every broken key or reference is one of them.
    by_kind = collections.defaultdict(set)
    for (kind, _), ids in faults.items():
        by_kind[kind] |= ids
    for text, sql, kind in INTEGRITY:
        bad = {r[0] for r in _q(url, sql)}
        assert bad <= (by_kind[kind] if kind else set()), f"{text}: {sorted(bad)[:5]}"
    # A call is never left active while it goes on: only calls that ended.
    assert _q(url, """SELECT f.CALLID FROM SIM_FAULT f JOIN SIM_INTERACTION i
                      ON i.CALLID = f.CALLID WHERE f.KIND = 'never_terminated'
                      AND i.STATUS <> 'completed'""") == []


def test_times_agree_with_themselves(faulty):
    """Each time's date-time, UTC seconds and time code agree, also where faults broke it."""
    engine = _engine(faulty)
    try:
        with engine.connect() as conn:
            for table in (idb_metadata.tables["G_CALL"], idb_metadata.tables["G_PARTY"]):
                for row in conn.execute(sa.select(table)).mappings():
                    for name in ("CREATED", "TERMINATED", "LASTCHANGE"):
                        ts = row[f"{name}_TS"]
                        expected = (None, None) if ts is None else (when(ts), ts // 300)
                        assert (row[name], row[f"{name}_TCODE"]) == expected, (table, row["ID"])
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Several sites

KW_MS = {**KW, "calls_per_day": 400, "agents": 16, "seed": 23, "sites": 2}
KW_SPLIT = {**KW_MS, "faults": 0.0}  # so that each IDB alone is free of broken references


@pytest.fixture(scope="module")
def ms_reference(tmp_path_factory):
    """A day of two sites recorded by one ICON, on SQLite."""
    url = f"sqlite:///{tmp_path_factory.mktemp('msref') / 'idb.db'}"
    simulate(url, start=START, days=1, **KW_MS)
    return url, digest(url)


@pytest.fixture(scope="module")
def split_reference(tmp_path_factory):
    """The same day with an IDB per site, on SQLite."""
    path = tmp_path_factory.mktemp("splitref")
    urls = (f"sqlite:///{path / 'site1.db'}", f"sqlite:///{path / 'site2.db'}")
    simulate(urls[0], site_idbs=urls[1:], start=START, days=1, **KW_SPLIT)
    return urls, (digest(urls[0]), digest(urls[1], ledger=False))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def multisite(request, tmp_path_factory):
    _, ctx = _module_db(request, tmp_path_factory, "multisite")
    with ctx as url:
        simulate(url, start=START, days=1, **KW_MS)
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def multisite_faulty(request, tmp_path_factory):
    """Three sites in one IDB, half the interactions damaged."""
    _, ctx = _module_db(request, tmp_path_factory, "msfaulty")
    with ctx as url:
        simulate(url, start=START, days=1, **{**KW_MS, "sites": 3, "faults": 0.5})
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def split(request, tmp_path_factory):
    _, first = _module_db(request, tmp_path_factory, "site1")
    _, second = _module_db(request, tmp_path_factory, "site2")
    with first as url1, second as url2:
        simulate(url1, site_idbs=(url2,), start=START, days=1, **KW_SPLIT)
        yield url1, url2


def _both(urls, sql: str, **params) -> list[tuple]:
    return [r for url in urls for r in _q(url, sql, **params)]


def _rows(urls, table: str) -> list[str]:
    return sorted(repr(tuple(_norm(v) for v in r)) for r in _both(urls, f"SELECT * FROM {table}"))


def test_multisite_same_seed_same_content(multisite, ms_reference, split, split_reference,
                                          tmp_path):
    assert digest(multisite) == ms_reference[1]
    assert (digest(split[0]), digest(split[1], ledger=False)) == split_reference[1]
    # The sites' rows are the same whether one ICON records them or each its own (only the
    # configuration differs, by the ICON applications, and the data-source sessions).
    one = f"sqlite:///{tmp_path / 'one.db'}"
    simulate(one, start=START, days=1, **KW_SPLIT)
    compared = 0
    for table in [*idb_metadata.sorted_tables, *ledger_metadata.sorted_tables]:
        if table.info.get("kind") in ("state", "history") or table.name in (
                "SIM_INTERACTION", "SIM_PARTICIPATION", "SIM_AGENT_INTERVAL", "SIM_FAULT"):
            urls = split_reference[0] if table.name[:4] != "SIM_" else split_reference[0][:1]
            assert _rows(urls, table.name) == _rows((one,), table.name), table.name
            compared += bool(_rows((one,), table.name))
    assert compared > 20


def test_a_single_site_has_no_multi_site_rows(simulated):
    assert _q(simulated, "SELECT COUNT(*) FROM G_IS_LINK")[0][0] == 0
    assert _q(simulated, "SELECT COUNT(*) FROM GSYS_DNPREMOTELOCATION")[0][0] == 0
    assert {s for (s,) in _q(simulated, "SELECT ID FROM GC_SWITCH")} == {201, 202}
    assert "sites" not in _q(simulated, "SELECT PARAMS FROM SIM_RUN")[0][0]
    assert set(_q(simulated, "SELECT DISTINCT SITES FROM SIM_INTERACTION")) == {(1,)}
    assert _q(simulated, """SELECT COUNT(*) FROM SIM_PARTICIPATION p JOIN G_CALL c
                            ON c.CALLID = p.LEG_CALLID WHERE c.SWITCHID <> p.SWITCH_ID""") \
        == [(0,)]


def test_multisite_continued_equals_one_run(db_kind, tmp_path, ms_reference):
    with new_database(db_kind, tmp_path, "idb") as url:
        simulate(url, start=START, days=0, minutes=13 * 60 + 7, **KW_MS)
        assert _q(url, "SELECT COUNT(*) FROM G_IS_LINK WHERE TERMINATED_TS IS NULL")[0][0]
        simulate(url, minutes=10 * 60 + 53, resume=True)
        assert digest(url) == ms_reference[1]


def test_split_continued_equals_one_run(db_kind, tmp_path, split_reference):
    """With an IDB per site, a continued run is given the site IDBs again, in order, and
    checks them; it then writes what one run writes."""
    with new_database(db_kind, tmp_path, "one") as url1, \
            new_database(db_kind, tmp_path, "two") as url2, \
            new_database(db_kind, tmp_path, "other") as other:
        simulate(url1, site_idbs=(url2,), start=START, days=0, minutes=11 * 60 + 41,
                 **KW_SPLIT)
        before = (digest(url1), digest(url2, ledger=False))
        # The ledger and the checkpoint stay in the first IDB.
        assert not [t for t in _tables(url2) if t.upper().startswith("SIM_")]
        with pytest.raises(UsageError, match="--site-idb"):
            simulate(url1, minutes=5, resume=True)
        with pytest.raises(UsageError, match="not the IDB of site 2"):
            simulate(url1, site_idbs=(other,), minutes=5, resume=True)
        with pytest.raises(UsageError, match="given twice"):
            simulate(url1, site_idbs=(url1,), minutes=5, resume=True)
        with pytest.raises(UsageError, match="already holds IDB rows"):
            simulate(other, site_idbs=(url2,), start=START, **KW_SPLIT)
        assert (digest(url1), digest(url2, ledger=False)) == before
        simulate(url1, site_idbs=(url2,), minutes=2 * 60 + 2, resume=True)
        simulate(url1, site_idbs=(url2,), minutes=10 * 60 + 17, resume=True)
        assert (digest(url1), digest(url2, ledger=False)) == split_reference[1]


def _tables(url: str) -> set[str]:
    engine = _engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _islinks_pair_up(urls, faults: set[int]) -> None:
    """Over all IDBs: every IS-Link has exactly one counterpart, of the other type, on the
    switch it names, except those to the unmonitored switch (named in every IDB's
    GSYS_DNPREMOTELOCATION) and the injected dangling ones (`faults`: their G_IS_LINK IDs)."""
    remote = {r for (r,) in _both(urls, "SELECT REMOTELOCATION FROM GSYS_DNPREMOTELOCATION")}
    assert remote == {"Remote_Switch"}
    switch = dict(_q(urls[0], "SELECT ID, NAME FROM GC_SWITCH"))
    call_switch = dict(_both(urls, "SELECT CALLID, SWITCHID FROM G_CALL"))
    links = collections.defaultdict(list)
    for row in _both(urls, "SELECT ID, LINKID, CALLID, ISLINKTYPE, REMOTELOCATION, STATE, "
                           "MERGESTATE FROM G_IS_LINK"):
        links[row[1]].append(row)
    unpaired = set()
    for rows in links.values():
        assert len(rows) <= 2, rows
        if len(rows) == 1:
            unpaired.add(rows[0][0])
            if rows[0][4] in remote:
                assert rows[0][3] == codes.IsLinkType.SOURCE
                assert rows[0][0] not in faults
            continue
        (a, b) = sorted(rows, key=lambda r: r[3])
        assert (a[3], b[3]) == (codes.IsLinkType.SOURCE, codes.IsLinkType.TARGET)
        assert a[4] == switch[call_switch[b[2]]] and b[4] == switch[call_switch[a[2]]]
        assert call_switch[a[2]] != call_switch[b[2]]
    assert {r[5] for rows in links.values() for r in rows} == {codes.IsLinkState.ACTIVE}
    assert {r[6] for rows in links.values() for r in rows} == {codes.IsLinkMerge.NOT_MERGED}
    to_remote = {r[0] for rows in links.values() for r in rows if r[4] in remote}
    assert to_remote and faults <= unpaired
    assert unpaired == to_remote | faults


def test_islinks_pair_up_across_idbs(split, multisite):
    _islinks_pair_up(split, set())
    _islinks_pair_up((multisite,), {r for (r,) in _q(
        multisite, "SELECT ROW_ID FROM SIM_FAULT WHERE KIND = 'dangling_islink'")})


def test_multisite_faults_are_named(multisite_faulty):
    url = multisite_faulty
    _idb_is_consistent_except_the_named_faults(url, set(FAULT_KINDS + MULTISITE_FAULT_KINDS))
    dangling = {r for (r,) in _q(url, "SELECT ROW_ID FROM SIM_FAULT WHERE KIND = "
                                      "'dangling_islink'")}
    _islinks_pair_up((url,), dangling)
    # A dangling link names a monitored switch, whose calls of that interaction are all
    # missing there: no row of it on that switch's session.
    for callid, remote in _q(url, """SELECT f.CALLID, l.REMOTELOCATION FROM SIM_FAULT f
                                     JOIN G_IS_LINK l ON l.ID = f.ROW_ID
                                     WHERE f.KIND = 'dangling_islink'"""):
        switch = _q(url, "SELECT ID FROM GC_SWITCH WHERE NAME = :n", n=remote)[0][0]
        legs = {leg for (leg,) in _q(url, "SELECT LEG_CALLID FROM SIM_PARTICIPATION WHERE "
                                          "CALLID = :c AND SWITCH_ID = :s", c=callid, s=switch)}
        assert legs and not _q(url, "SELECT CALLID FROM G_CALL WHERE CALLID IN "
                                    f"({', '.join(repr(x) for x in legs)})")
    # Three sites, calls on each.
    assert {s for (s,) in _q(url, "SELECT DISTINCT SWITCHID FROM G_CALL")} >= {201, 212, 213}


def test_multisite_ledger_adds_up(multisite):
    _ledger_adds_up(multisite)
    _ledger_is_what_the_agent_rows_say(multisite)
    _ledger_durations_are_the_party_statistics(multisite, consult_apart=False)
    outcomes = dict(_q(multisite, "SELECT OUTCOME, COUNT(*) FROM SIM_INTERACTION GROUP BY 1"))
    assert outcomes["routed_remote"] > 0
    assert _q(multisite, "SELECT COUNT(*) FROM SIM_INTERACTION WHERE OUTCOME = "
                         "'routed_remote' AND (SITES <> 1 OR HANDLING_AGENT_ID IS NOT NULL)") \
        == [(0,)]


def _calls_of(urls) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in _both(urls, "SELECT CALLID, SWITCHID, PARENTCALLID, "
                                             "MERGECALLID, IRID, ROOTIRID FROM G_CALL")}


def _parts_are_where_the_idb_says(urls) -> None:
    """Each participation's party is on the call and switch it names, in the IDB of that
    switch; an interaction's calls, linked by parent and merge references within a switch
    and by IS-Links across, are those its participations name, and no other's; every
    site's call keeps its own interaction record."""
    url = urls[0]
    faulty = {c for (c,) in _q(url, "SELECT CALLID FROM SIM_FAULT WHERE CALLID IS NOT NULL")}
    idb_of = {}
    for url_k in urls:
        for (callid,) in _q(url_k, "SELECT CALLID FROM G_CALL"):
            idb_of[callid] = url_k
    calls = _calls_of(urls)
    parts = [r for r in _q(url, """SELECT CALLID, RESOURCE_KIND, RESOURCE_ID, LEG_CALLID,
                                   SWITCH_ID FROM SIM_PARTICIPATION""") if r[0] not in faulty]
    # each IDB's parties, read once: (call, agent), (call, place), (call, endpoint)
    on_call = {u: {(kind, c, x) for c, a, p, e in _q(
                   u, "SELECT CALLID, AGENTID, PLACEID, ENDPOINTID FROM G_PARTY")
                   for kind, x in (("a", a), ("p", p), ("e", e)) if x is not None}
               for u in urls}
    place_of = dict(_q(url, "SELECT ID, PLACEID FROM GC_AGENT"))
    agents = collections.Counter()
    for callid, kind, resource, leg, switch in parts:
        assert calls[leg][0] == switch, (callid, leg)
        here = on_call[idb_of[leg]]
        if kind == "AGENT":
            found = ("a", leg, resource) in here or ("p", leg, place_of.get(resource)) in here
            assert found, (callid, resource, leg)
            agents[switch] += 1
        elif kind in ("ACD_QUEUE", "ROUTING_POINT"):
            assert ("e", leg, resource) in here, (callid, leg)
    assert len(agents) == 3  # both sites' voice switches, and multimedia
    # Calls linked together, as a merge would link them.
    parent = {c: c for c in calls}

    def find(c):
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    def union(a, b):
        if a in parent and b in parent:
            parent[find(a)] = find(b)

    for callid, (_, parent_call, merge_call, _, _) in calls.items():
        for other in (parent_call, merge_call):
            if other:
                union(callid, other)
    by_link = collections.defaultdict(list)
    for linkid, callid in _both(urls, "SELECT LINKID, CALLID FROM G_IS_LINK"):
        by_link[linkid].append(callid)
    for pair in by_link.values():
        if len(pair) == 2:
            union(*pair)
    legs = collections.defaultdict(set)
    ledger_agents = collections.defaultdict(set)
    for callid, kind, resource, leg, _ in parts:
        legs[callid].add(leg)
        if kind == "AGENT":
            ledger_agents[callid].add(resource)
    # The agents whose parties are on each group of linked calls.
    idb_agents = collections.defaultdict(set)
    for callid, agent in _both(urls, "SELECT CALLID, AGENTID FROM G_PARTY WHERE AGENTID IS "
                                     "NOT NULL"):
        if callid in parent:
            idb_agents[find(callid)].add(agent)
    owner = {}
    multi = 0
    for callid, sites, agents in _q(url, "SELECT CALLID, SITES, AGENTS FROM SIM_INTERACTION"):
        if callid in faulty:
            continue
        group = find(callid)
        assert {find(leg) for leg in legs[callid]} <= {group}, callid
        assert owner.setdefault(group, callid) == callid, (callid, owner[group])
        switches = {calls[leg][0] for leg in legs[callid]}
        assert len(switches) <= sites, callid
        assert idb_agents[group] == ledger_agents[callid], callid
        assert agents <= len(ledger_agents[callid])
        multi += sites > 1
    assert multi > 50
    # Every call that is no consultation is the root of its own interaction record.
    for callid, (_, parent_call, _, irid, rootirid) in calls.items():
        if not parent_call:
            assert rootirid == irid, callid
    roots = _both(urls, "SELECT IRID, ROOTCALLID, ROOTIRID FROM G_IR")
    assert {(irid, call) for irid, call, rootirid in roots if irid == rootirid} == {
        (v[3], c) for c, v in calls.items() if not v[1]}


def test_multisite_parts_are_where_the_idb_says(multisite, split):
    _parts_are_where_the_idb_says((multisite,))
    _parts_are_where_the_idb_says(split)


def test_split_idbs_hold_their_sites(split):
    """Each IDB is an ICON's: its site's calls, parties, sessions and their data-source
    sessions, every reference within it; configuration and dictionaries the same in all."""
    url1, url2 = split
    for url in split:
        for text, sql, kind in INTEGRITY:
            if kind != "dangling_islink":  # counterparts are in the other IDB
                assert _q(url, sql) == [], (url, text)
        assert _q(url, "SELECT DISTINCT ICON_DBID FROM G_DSS_GCC_PROVIDER") == \
            _q(url, "SELECT DISTINCT ICON_DBID FROM G_DSS_CFG_PROVIDER")
    assert {s for (s,) in _q(url2, "SELECT DISTINCT SWITCHID FROM G_CALL")} == {212}
    assert {s for (s,) in _q(url1, "SELECT DISTINCT SWITCHID FROM G_CALL")} == {201, 202}
    assert {s for (s,) in _q(url2, "SELECT DISTINCT SWITCHID FROM G_LOGIN_SESSION")} == {212}
    assert _q(url2, "SELECT COUNT(*) FROM GO_CHAIN")[0][0] == 0
    assert _q(url1, "SELECT COUNT(*) FROM GO_CHAIN")[0][0] > 0
    d1, d2 = digest(url1), digest(url2, ledger=False)
    for name in d2:
        if name[:3] in ("GC_", "GCX") or name.startswith(("G_DICT", "GSYS_")):
            assert d1[name] == d2[name], name
    assert d2["GC_AGENT"][0] == 16 and d2["GSYS_DNPREMOTELOCATION"][0] == 1
    # The ledger's agents of site 2 have their sessions in its IDB.
    site2 = {a for (a,) in _q(url2, "SELECT DISTINCT AGENTID FROM G_LOGIN_SESSION")}
    assert site2 and not site2 & {a for (a,) in _q(
        url1, "SELECT DISTINCT AGENTID FROM G_LOGIN_SESSION")}
    assert site2 <= {a for (a,) in _q(url1, "SELECT DISTINCT AGENT_ID FROM SIM_AGENT_INTERVAL")}


CODED_MULTISITE = [("G_IS_LINK", "ISLINKTYPE", codes.IsLinkType),
                   ("G_IS_LINK", "STATE", codes.IsLinkState),
                   ("G_IS_LINK", "MERGESTATE", codes.IsLinkMerge)]


def test_multisite_codes_are_named(multisite):
    _codes_are_named_in_the_dictionary(multisite, CODED + CODED_MULTISITE)


def test_cli_multisite_errors(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'idb.db'}"
    site2 = f"sqlite:///{tmp_path / 'site2.db'}"
    args = ["simulate", "--idb", url, "--start", "2026-10-01", "--calls-per-day", "40",
            "--agents", "6", "--minutes", "60"]
    for extra, words in ((["--sites", "0"], "--sites"), (["--sites", "10"], "--sites"),
                         (["--sites", "3", "--site-idb", site2], "--site-idb"),
                         (["--sites", "2", "--site-idb", url], "given twice"),
                         (["--sites", "8"], "too few")):
        refused = invoke(cli, *args, *extra)
        assert refused.exit_code == 2, (extra, refused.output)
        message = refused.stderr.strip()
        assert "\n" not in message and words in message, (extra, message)
    assert not (tmp_path / "site2.db").exists() or not _tables(site2)
    done = invoke(cli, *args, "--sites", "2", "--site-idb", site2)
    assert done.exit_code == 0, done.output
    assert scalar(site2, "SELECT COUNT(*) FROM G_CALL WHERE SWITCHID = 212") > 0
    again = invoke(cli, "simulate", "--idb", url, "--continue", "--minutes", "5")
    assert again.exit_code == 2 and "--site-idb" in again.stderr
    changed = invoke(cli, "simulate", "--idb", url, "--continue", "--minutes", "5",
                     "--sites", "3", "--site-idb", site2)
    assert changed.exit_code == 2 and "--sites" in changed.stderr
    ok = invoke(cli, "simulate", "--idb", url, "--continue", "--minutes", "5", "--site-idb",
                site2)
    assert ok.exit_code == 0, ok.output


# --------------------------------------------------------------------------------------------
# Command line


def test_cli_simulate_and_errors(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'idb.db'}"
    args = ["simulate", "--idb", url, "--start", "2026-10-01", "--calls-per-day", "50",
            "--agents", "6", "--json"]
    result = invoke(cli, *args)
    assert result.exit_code == 0, result.output
    assert '"rows":' in result.stdout
    assert scalar(url, "SELECT END_TS - START_TS FROM SIM_RUN") == 86400
    again = invoke(cli, *args)
    assert again.exit_code == 2 and "already holds a simulation" in again.stderr
    assert invoke(cli, "simulate", "--idb", url, "--continue", "--days", "1").exit_code == 0
    assert scalar(url, "SELECT END_TS - START_TS FROM SIM_RUN") == 2 * 86400
    bad = invoke(cli, "simulate", "--idb", f"sqlite:///{tmp_path / 'x.db'}", "--start",
                 "2026-10-01", "--media", "voice,fax")
    assert bad.exit_code == 2 and "fax" in bad.stderr
    none = invoke(cli, "simulate", "--idb", f"sqlite:///{tmp_path / 'y.db'}", "--continue",
                  "--minutes", "5")
    assert none.exit_code == 2 and "no simulation to continue" in none.stderr
    created = invoke(cli, "idb", "create", "--url", f"sqlite:///{tmp_path / 'z.db'}")
    assert created.exit_code == 0 and created.stdout.startswith(f"{len(idb_metadata.tables)} ")


def test_cli_continue_adds_what_is_asked_only(cli, db_kind, tmp_path):
    with new_database(db_kind, tmp_path, "idb") as url:
        assert invoke(cli, "simulate", "--idb", url, "--start", "2026-10-01",
                      "--calls-per-day", "40", "--agents", "5").exit_code == 0
        end = scalar(url, "SELECT END_TS FROM SIM_RUN")
        result = invoke(cli, "simulate", "--idb", url, "--continue", "--minutes", "15")
        assert result.exit_code == 0, result.output
        assert scalar(url, "SELECT END_TS FROM SIM_RUN") == end + 900
        assert scalar(url, "SELECT END_TS FROM SIM_CHECKPOINT") == end + 900
        # What was fixed at creation cannot change; nothing is written then.
        before = digest(url)
        for extra in (["--seed", "3"], ["--faults", "0.1"], ["--calls-per-day", "9"],
                      ["--agents", "9", "--media", "voice,chat"], ["--start", "2026-10-02"],
                      ["--outbound"]):
            refused = invoke(cli, "simulate", "--idb", url, "--continue", "--minutes", "5",
                             *extra)
            assert refused.exit_code == 2, (extra, refused.output)
            message = refused.stderr.strip()
            assert "\n" not in message and all(a in message for a in extra if a[:2] == "--")
        empty = invoke(cli, "simulate", "--idb", url, "--continue")
        assert empty.exit_code == 2 and "--days or --minutes" in empty.stderr
        assert digest(url) == before
        # A checkpoint of another format, or a run that did not complete, cannot go on.
        execute(url, "UPDATE SIM_CHECKPOINT SET FORMAT_VERSION = 0")
        old = invoke(cli, "simulate", "--idb", url, "--continue", "--minutes", "5")
        assert old.exit_code == 2 and "format 0" in old.stderr
        execute(url, "UPDATE SIM_CHECKPOINT SET FORMAT_VERSION = 1")
        engine = _engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE SIM_CHECKPOINT SET STATE = :b"), {"b": b"garbage"})
        engine.dispose()
        unreadable = invoke(cli, "simulate", "--idb", url, "--continue", "--minutes", "5")
        assert unreadable.exit_code == 2 and "cannot be read" in unreadable.stderr
        execute(url, "UPDATE SIM_RUN SET STATE = 'running'")
        broken = invoke(cli, "simulate", "--idb", url, "--continue", "--minutes", "5")
        assert broken.exit_code == 1 and "did not complete" in broken.stderr
        assert scalar(url, "SELECT END_TS FROM SIM_RUN") == end + 900


def test_demo(cli, tmp_path):
    result = invoke(cli, "demo", "--dir", str(tmp_path / "demo"), "--days", "1",
                    "--calls-per-day", "60")
    assert result.exit_code == 0, result.output
    assert "gim init" in result.stdout and "gim status -c" in result.stdout
    for name in ("idb.db", "infomart.db", "gim.toml", "gim.log"):
        assert (tmp_path / "demo" / name).exists(), name
    again = invoke(cli, "demo", "--dir", str(tmp_path / "demo"))
    assert again.exit_code == 0 and "reusing the simulated IDB" in again.stdout
    # A simulation that did not complete is not reused.
    idb = f"sqlite:///{tmp_path / 'demo' / 'idb.db'}"
    execute(idb, "UPDATE SIM_RUN SET STATE = 'running'")
    third = invoke(cli, "demo", "--dir", str(tmp_path / "demo"), "--days", "1",
                   "--calls-per-day", "60")
    assert third.exit_code == 0 and "reusing" not in third.stdout, third.output
    assert scalar(idb, "SELECT STATE FROM SIM_RUN") == "complete"
