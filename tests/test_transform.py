"""Transformation, judged by the simulator's truth ledger on SQLite and PostgreSQL: facts
per interaction and per agent interval, faults, incremental loading, killed runs, waits."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import operator
import random
import signal
import time

import pytest
import sqlalchemy as sa
from conftest import Watch, invoke, new_database, run_gim, spawn_gim, write_config
from truth_check import (
    agent_mismatches,
    interaction_mismatches,
    interaction_truth,
    lineage_mismatches,
    queue_mismatches,
    state_mismatches,
)

from gim.calendar import ACTIVE_END_KEY
from gim.schema import facts as f
from gim.simulate import simulate

START = dt.date(2026, 9, 7)
SIM = dict(calls_per_day=140, agents=14, seed=21, media=("voice", "chat", "email"),
           outbound=True)
DAY = 86400


def _t0() -> int:
    return int(dt.datetime.combine(START, dt.time(), dt.UTC).timestamp())


def _engine(url):
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _q(url, sql, **params):
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()
    finally:
        engine.dispose()


def _config(path, im_url, idb_url, extra=""):
    return write_config(path, im_url, f"""
        [date-time]
        date-time-max-days-ahead = 20
        date-time-min-days-ahead = 10

        [gim-etl]
        etl-start-date = "{START}"
        partitioning-interval-size-gim = 604800
        extract-data-chunk-size = 43200
        {extra}

        [[dap]]
        name = "site"
        url = "{idb_url}"
        roles = ["ICON_CFG", "ICON_CORE", "ICON_MM", "ICON_OCS"]
        """)


def _cycle(cli, path) -> dict:
    for args in (("extract", "--role", "all"), ("transform",)):
        result = invoke(cli, *args, "-c", str(path), "--json")
        assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def center(db_kind, tmp_path):
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "im") as im_url:
        yield idb_url, im_url


def _queue_needed(url: str, interaction: int | None = None) -> set[tuple[int, int]]:
    """(tenant, interval) of every 15 minutes an interaction or session (or the one
    interaction) covers, from its start to the latest time its facts name (after-call work
    included)."""
    spans: dict[tuple, list] = {}

    def add(entity: tuple, tenant: int, t0: int, t1: int) -> None:
        span = spans.setdefault(entity, [tenant, t0, t1])
        span[1], span[2] = min(span[1], t0), max(span[2], t1)

    for table, acw in (("INTERACTION_FACT", "0"),
                       ("INTERACTION_RESOURCE_FACT", "AFTER_CALL_WORK_DURATION"),
                       ("MEDIATION_SEGMENT_FACT", "0")):
        for iid, tenant, t0, t1 in _q(url, f"""SELECT INTERACTION_ID, TENANT_KEY, START_TS,
                COALESCE(END_TS + {acw}, START_TS) FROM {table}"""):
            add(("i", iid), tenant, t0, t1)
    for table in ("SM_RES_SESSION_FACT", "SM_RES_STATE_FACT", "SM_RES_STATE_REASON_FACT"):
        for key, tenant, t0, t1 in _q(url, f"""SELECT SM_RES_SESSION_FACT_KEY, TENANT_KEY,
                START_TS, COALESCE(END_TS, START_TS) FROM {table}"""):
            add(("s", key), tenant, t0, t1)
    if interaction is not None:
        spans = {k: v for k, v in spans.items() if k == ("i", interaction)}
    return {(tenant, k) for tenant, t0, t1 in spans.values()
            for k in range(t0 // 900 * 900, t1 // 900 * 900 + 1, 900)}


def _queued(url: str) -> set[tuple[int, int]]:
    return set(_q(url, "SELECT TENANT_KEY, DATE_TIME_KEY FROM CTL_AGG_QUEUE"))


def test_facts_equal_the_truth(cli, tmp_path, center):
    idb_url, im_url = center
    simulate(idb_url, start=START, days=2, **SIM)
    path = _config(tmp_path, im_url, idb_url,
                   'factor-dnd-into-sm-resource-states = "true"')
    summary = _cycle(cli, path)
    assert summary["counts"]["INTERACTION_FACT rows"] > 300
    end = _t0() + 2 * DAY
    # Every interaction that ended an hour before the data does is in the facts, with the
    # ledger's handling agent, media, outcome, times and ring / talk / hold / ACW /
    # consultation / queue seconds; every agent's part with its role, result and seconds;
    # every stay in a queue with its times, seconds and outcome.
    assert interaction_mismatches(idb_url, im_url, ended_before=end - 3600) == []
    # Who delivered each part: the queue stay that distributed it, the agent who consulted.
    assert lineage_mismatches(idb_url, im_url,
                              interaction_truth(idb_url, ended_before=end - 3600)) == []
    # The agents' states within their parts add up to the parts' seconds.
    assert state_mismatches(im_url) == []
    # Per queue and interval: entries, abandons, distributions, seconds queued.
    assert queue_mismatches(idb_url, im_url, before=end - 3600) == []
    # Every agent's login, ready, not ready (by reason), busy, ACW and DND seconds per
    # interval.
    assert agent_mismatches(idb_url, im_url, before=end - 3600, dnd=True) == []
    assert _q(im_url, "SELECT COUNT(*) FROM SM_RES_STATE_FACT s JOIN RESOURCE_STATE r ON "
                      "r.RESOURCE_STATE_KEY = s.RESOURCE_STATE_KEY WHERE r.STATE_NAME_CODE "
                      "= 'DND'")[0][0] > 0
    # Nothing was discarded from clean data; exactly the intervals the facts cover are
    # queued for aggregation.
    assert _q(im_url, "SELECT COUNT(*) FROM STG_TRANSFORM_DISCARDS")[0][0] == 0
    assert _queued(im_url) == _queue_needed(im_url)
    # Dimensions came with it: agents, queues, groups and memberships, user-data rows.
    agents = _q(im_url, "SELECT COUNT(*) FROM RESOURCE_ WHERE RESOURCE_TYPE_CODE = 'AGENT'")
    assert agents[0][0] == SIM["agents"]
    # Every membership the configuration recorded, agents' and DNs', with its dates.
    members = set(_q(im_url, """SELECT r.RESOURCE_CFG_TYPE_ID, r.RESOURCE_CFG_DBID,
        g.GROUP_KEY, g.START_TS, g.END_TS FROM RESOURCE_GROUP_FACT_ g
        JOIN RESOURCE_ r ON r.RESOURCE_KEY = g.RESOURCE_KEY"""))
    links = set(_q(idb_url, """SELECT 3, AGENTID, GROUPID, CREATED_TS, DELETED_TS
        FROM GCX_GROUP_AGENT UNION ALL SELECT 2, ENDPOINTID, GROUPID, CREATED_TS, DELETED_TS
        FROM GCX_GROUP_ENDPOINT"""))
    assert members == links
    assert {m[0] for m in members} == {2, 3}
    skills = set(_q(im_url, """SELECT r.RESOURCE_CFG_DBID, s.SKILL_KEY, s.SKILL_LEVEL,
        s.START_TS, s.END_TS FROM RESOURCE_SKILL_FACT_ s
        JOIN RESOURCE_ r ON r.RESOURCE_KEY = s.RESOURCE_KEY"""))
    assert skills and skills == set(_q(idb_url, """SELECT AGENTID, SKILLID, SLEVEL,
        CREATED_TS, DELETED_TS FROM GCX_SKILL_LEVEL"""))
    places = set(_q(im_url, """SELECT p.PLACE_CFG_DBID, g.GROUP_KEY, g.START_TS, g.END_TS
        FROM PLACE_GROUP_FACT_ g JOIN PLACE p ON p.PLACE_KEY = g.PLACE_KEY"""))
    assert places and places == set(_q(idb_url, """SELECT PLACEID, GROUPID, CREATED_TS,
        DELETED_TS FROM GCX_GROUP_PLACE"""))
    assert _q(im_url, "SELECT COUNT(DISTINCT SERVICE_TYPE) FROM INTERACTION_DESCRIPTOR")[0][0] \
        >= 3
    assert _q(im_url, "SELECT COUNT(*) FROM IRF_USER_DATA_GEN_1 WHERE CUSTOMER_ID IS NOT "
                      "NULL")[0][0] > 100
    media = {m for (m,) in _q(im_url, """SELECT DISTINCT m.MEDIA_NAME_CODE FROM
        INTERACTION_FACT i JOIN MEDIA_TYPE m ON m.MEDIA_TYPE_KEY = i.MEDIA_TYPE_KEY""")}
    assert media == {"VOICE", "CHAT", "EMAIL"}
    results = {r for (r,) in _q(im_url, """SELECT DISTINCT t.TECHNICAL_RESULT_CODE FROM
        INTERACTION_RESOURCE_FACT r JOIN TECHNICAL_DESCRIPTOR t
        ON t.TECHNICAL_DESCRIPTOR_KEY = r.TECHNICAL_DESCRIPTOR_KEY""")}
    assert {"COMPLETED", "TRANSFERRED", "CONFERENCED", "REDIRECTED", "ABANDONED"} <= results
    # A second run finds nothing to do and changes nothing.
    before = _q(im_url, "SELECT COUNT(*), MAX(UPDATE_AUDIT_KEY) FROM INTERACTION_RESOURCE_FACT")
    again = _cycle(cli, path)
    assert not any(k.endswith("FACT rows") for k in again["counts"])
    assert _q(im_url, "SELECT COUNT(*), MAX(UPDATE_AUDIT_KEY) FROM "
                      "INTERACTION_RESOURCE_FACT") == before


FAULTY = {**SIM, "faults": 0.05}
# The discard each kind of fault gets (code, and what STG_TRANSFORM_DISCARDS.GUID names); the
# other kinds are kept.
DISCARDED = {"bad_timestamp": 1, "duplicate_row": 2, "orphan_party": 3}


def _expected_discards(idb_url: str, faults: list[tuple]) -> set[tuple]:
    """(TABLE_NAME, GUID, CODE) of the discards the faults call for."""
    out = set()
    for kind, callid, row_id, media in faults:
        suffix = "_V" if media == "voice" else "_MM"
        if kind == "orphan_party":
            party = _q(idb_url, "SELECT PARTYID FROM G_PARTY WHERE ID = :i", i=row_id)[0][0]
            out.add((f"GIDB_G_PARTY{suffix}", party, DISCARDED[kind]))
        elif kind == "bad_timestamp":
            root = _q(idb_url, "SELECT ROOTIRID FROM G_CALL WHERE CALLID = :c "
                               "ORDER BY ID", c=callid)[0][0]
            out.add((f"GIDB_G_CALL{suffix}", root, DISCARDED[kind]))
        elif kind == "duplicate_row":
            out.add((f"GIDB_G_CALL{suffix}", callid, DISCARDED[kind]))
    return out


def test_faults_are_discarded_or_kept_with_placeholders(cli, tmp_path, center):
    idb_url, im_url = center
    simulate(idb_url, start=START, days=2, **FAULTY)
    path = _config(tmp_path, im_url, idb_url)
    summary = _cycle(cli, path)
    # What ended well before the data does has surely been transformed: extraction holds
    # voice calls back behind a call never terminated for its stuck threshold (8 h).
    cutoff = _t0() + 2 * DAY - 10 * 3600
    faults = _q(idb_url, """SELECT f.KIND, f.CALLID, f.ROW_ID, i.MEDIA, i.END_TS
        FROM SIM_FAULT f JOIN SIM_INTERACTION i ON i.CALLID = f.CALLID""")
    assert {k for k, _, _, _, e in faults if e is not None and e < cutoff} == {
        "orphan_party", "unknown_config", "bad_timestamp", "duplicate_row", "never_terminated",
        "garbage_string"}
    # Every discard is one a fault calls for, with its code; every fault of the data surely
    # transformed that calls for one has it.
    discards = set(_q(im_url, "SELECT TABLE_NAME, GUID, CODE FROM STG_TRANSFORM_DISCARDS"))
    old = [r[:4] for r in faults if r[4] is not None and r[4] < cutoff]
    assert _expected_discards(idb_url, old) <= discards
    assert discards <= _expected_discards(idb_url, [r[:4] for r in faults])
    facts = {g: (s, a) for g, s, a in _q(im_url, """SELECT MEDIA_SERVER_IXN_GUID, STATUS,
        ACTIVE_FLAG FROM INTERACTION_FACT""")}
    by_kind: dict[str, list[tuple]] = {}
    for kind, callid, _, media in old:
        by_kind.setdefault(kind, []).append((callid, media))
    # A call with impossible times leaves no facts.
    assert not [c for c, _ in by_kind["bad_timestamp"] if c in facts]
    # The ledger's clean interactions are all there and right, and so are those whose fault
    # touched nothing the facts are made of: a duplicate G_CALL row (the first is kept), a
    # party of a call that does not exist, a garbage user-data value (replaced).
    faulty = {c for _, c, _, _, _ in faults}
    clean = [c for (c,) in _q(idb_url, "SELECT CALLID FROM SIM_INTERACTION WHERE STATUS = "
                                      "'completed' AND END_TS < :c", c=cutoff)
             if c not in faulty]
    assert len(clean) > 300
    harmless = [c for k in ("duplicate_row", "orphan_party", "garbage_string")
                for c, _ in by_kind[k]]
    assert interaction_mismatches(idb_url, im_url, callids=clean + harmless,
                                  ended_before=cutoff) == []
    # A voice call never terminated ends with its last party: right but for its status; a
    # multimedia one stays active, its parts right.
    stuck_voice = [c for c, m in by_kind["never_terminated"] if m == "voice"]
    stuck_mm = [c for c, m in by_kind["never_terminated"] if m != "voice"]
    assert stuck_voice and all(facts[c] == (f.STATUS_ENDED_WITH_PARTIES, 0)
                                   for c in stuck_voice)
    assert all(facts[c][1] == 1 for c in stuck_mm)
    assert interaction_mismatches(idb_url, im_url, callids=stuck_voice,
                                  ended_before=cutoff) == []
    assert interaction_mismatches(idb_url, im_url, callids=stuck_mm, ended_before=cutoff,
                                  checks=("RING", "TALK", "HOLD", "ACW", "CONSULT", "QUEUE",
                                          "agent", "media", "start")) == []
    # An unknown agent gets a placeholder resource; the seconds are the ledger's, but for
    # after-call work, which the agent states show for the real agent, not the placeholder.
    for callid, _ in by_kind["unknown_config"]:
        placeholder = _q(im_url, """SELECT COUNT(*) FROM INTERACTION_RESOURCE_FACT r
            JOIN INTERACTION_FACT i ON i.INTERACTION_ID = r.INTERACTION_ID
            JOIN RESOURCE_ res ON res.RESOURCE_KEY = r.RESOURCE_KEY
            WHERE i.MEDIA_SERVER_IXN_GUID = :c AND res.IS_PLACEHOLDER = 1
            AND res.RESOURCE_CFG_DBID = 999999""", c=callid)
        assert placeholder[0][0] >= 1, callid
    assert interaction_mismatches(
        idb_url, im_url, callids=[c for c, _ in by_kind["unknown_config"]],
        ended_before=cutoff, checks=("RING", "TALK", "HOLD", "CONSULT", "QUEUE", "outcome",
                                     "media", "start", "end"), parts=False) == []
    # Garbage is no value.
    assert summary["counts"].get("user data values replaced (control characters)", 0) >= 1
    for table, column in (("INTERACTION_DESCRIPTOR", "CUSTOMER_SEGMENT"),
                          ("IRF_USER_DATA_GEN_1", "CUSTOMER_ID")):
        assert not _q(im_url, f"SELECT COUNT(*) FROM {table} WHERE {column} LIKE :g",
                      g="%\x1b%")[0][0]
    # The job says what it discarded.
    codes = {c: n for c, n in _q(im_url, "SELECT CODE, COUNT(*) FROM STG_TRANSFORM_DISCARDS "
                                         "GROUP BY CODE")}
    assert summary["counts"].get("discarded (party of a call that does not exist)") == \
        codes.get(DISCARDED["orphan_party"])


def test_call_never_terminated_is_recomputed_when_it_ends(cli, tmp_path, center):
    """A voice call ICON never terminated ends with its last party; when ICON terminates
    it after all, the interaction is recomputed with the real end, and nothing of it is left
    waiting."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **{**FAULTY, "faults": 0.1})
    path = _config(tmp_path, im_url, idb_url)
    _cycle(cli, path)
    stuck = _q(im_url, """SELECT MEDIA_SERVER_IXN_GUID, MEDIA_SERVER_ROOT_IXN_GUID, END_TS
        FROM INTERACTION_FACT WHERE STATUS = :s ORDER BY START_TS""",
               s=f.STATUS_ENDED_WITH_PARTIES)
    assert stuck
    callid, root, end = stuck[0]
    simulate(idb_url, days=0, minutes=30, resume=True)
    now = _q(idb_url, "SELECT END_TS FROM SIM_RUN")[0][0]
    # ICON terminates its stuck voice calls, five seconds after their last party.
    engine = _engine(idb_url)
    with engine.begin() as conn:
        n = conn.execute(sa.text("""UPDATE G_CALL SET STATE = 2, LASTCHANGE_TS = :c,
            TERMINATED_TS = 5 + (SELECT MAX(p.TERMINATED_TS) FROM G_PARTY p
                                 WHERE p.CALLID = G_CALL.CALLID)
            WHERE STATE <> 2 AND MEDIANAME = 'voice' AND CALLID IN (
                SELECT CALLID FROM SIM_FAULT WHERE KIND = 'never_terminated')
            AND NOT EXISTS (SELECT 1 FROM G_PARTY p WHERE p.CALLID = G_CALL.CALLID
                            AND p.TERMINATED_TS IS NULL)"""), {"c": now - 600}).rowcount
    engine.dispose()
    assert n >= len(stuck)
    summary = _cycle(cli, path)
    assert _q(im_url, """SELECT STATUS, END_TS, ACTIVE_FLAG FROM INTERACTION_FACT
        WHERE MEDIA_SERVER_IXN_GUID = :i""", i=callid) == [(f.STATUS_OK, end + 5, 0)]
    assert not _q(im_url, "SELECT * FROM CTL_TRANSFORM_PENDING WHERE ENTITY_ID = :r",
                  r=root)
    assert summary["counts"].get("INTERACTION_FACT rows", 0) >= 1


def test_resume_policy_discards_silently(cli, tmp_path, db_kind):
    """error-policy-irf-exception = resume: the same facts as log_db_resume, no discard
    rows."""
    with new_database(db_kind, tmp_path, "idb") as idb, \
            new_database(db_kind, tmp_path, "im1") as im1, \
            new_database(db_kind, tmp_path, "im2") as im2:
        simulate(idb, start=START, days=1, **{**FAULTY, "faults": 0.1})
        (tmp_path / "log").mkdir()
        (tmp_path / "quiet").mkdir()
        logged = _config(tmp_path / "log", im1, idb)
        quiet = _config(tmp_path / "quiet", im2, idb)
        quiet.write_text(quiet.read_text().replace(
            "[date-time]", '[error-policy]\nerror-policy-irf-exception = "resume"\n\n'
                           "[date-time]"))
        _cycle(cli, logged)
        summary = _cycle(cli, quiet)
        assert _q(im1, "SELECT COUNT(*) FROM STG_TRANSFORM_DISCARDS")[0][0] > 0
        assert _q(im2, "SELECT COUNT(*) FROM STG_TRANSFORM_DISCARDS")[0][0] == 0
        assert any(k.startswith("discarded") for k in summary["counts"])
        one, two = _content(im1), _content(im2)
        one.pop("STG_TRANSFORM_DISCARDS", None)
        two.pop("STG_TRANSFORM_DISCARDS", None)
        assert one == two


# Surrogate keys -> the dimension or fact they point to and the natural key that stands for
# them there (keys assigned in order of discovery differ between equivalent runs).
_NATURAL = {
    "RESOURCE": ("RESOURCE_", "RESOURCE_KEY", ("RESOURCE_CFG_TYPE_ID", "RESOURCE_CFG_DBID",
                                               "IS_PLACEHOLDER")),
    "PLACE_KEY": ("PLACE", "PLACE_KEY", ("PLACE_CFG_DBID", "IS_PLACEHOLDER")),
    "MEDIA_TYPE_KEY": ("MEDIA_TYPE", "MEDIA_TYPE_KEY", ("MEDIA_NAME_CODE",)),
    "INTERACTION_TYPE_KEY": ("INTERACTION_TYPE", "INTERACTION_TYPE_KEY",
                             ("INTERACTION_TYPE_CODE", "INTERACTION_SUBTYPE_CODE")),
    "INTERACTION_DESCRIPTOR_KEY": ("INTERACTION_DESCRIPTOR", "INTERACTION_DESCRIPTOR_KEY",
                                   ("CUSTOMER_SEGMENT", "SERVICE_TYPE", "SERVICE_SUBTYPE",
                                    "BUSINESS_RESULT")),
    "RESOURCE_STATE_REASON_KEY": ("RESOURCE_STATE_REASON", "RESOURCE_STATE_REASON_KEY",
                                  ("REASON_TYPE_CODE", "HARDWARE_REASON",
                                   "SOFTWARE_REASON_KEY", "SOFTWARE_REASON_VALUE",
                                   "WORKMODE_CODE")),
}
_RESOURCE_COLUMNS = ("RESOURCE_KEY", "MEDIA_RESOURCE_KEY", "LAST_VQUEUE_RESOURCE_KEY",
                     "LAST_QUEUE_RESOURCE_KEY")
_IRF_COLUMNS = ("INTERACTION_RESOURCE_ID", "RECEIVED_FROM_IXN_RESOURCE_ID",
                "TARGET_IXN_RESOURCE_ID")
_OWN_KEYS = {"INTERACTION_FACT": "INTERACTION_ID",
             "INTERACTION_RESOURCE_FACT": "INTERACTION_RESOURCE_ID",
             "SM_RES_SESSION_FACT": "SM_RES_SESSION_FACT_KEY"}
_SKIP = {"CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY", "ETL_TS", "ETL_DATE_TIME_KEY", "AUDIT_KEY",
         "QUEUED_TS"}


def _natural_select(table: sa.Table) -> str:
    """SELECT of `table` with every surrogate key replaced by the natural key it stands for
    and audit columns left out."""
    cols, joins = [], []
    for n, c in enumerate(table.columns):
        name, j = c.name, f"j{n}"
        if name in _SKIP or _OWN_KEYS.get(table.name) == name:
            continue
        if name == "MEDIATION_SEGMENT_ID":  # its ordinal within the interaction
            cols.append(f"x.MEDIATION_SEGMENT_ID - x.INTERACTION_ID * {1000}")
        elif name in ("SM_RES_STATE_FACT_KEY", "SM_RES_STATE_REASON_FACT_KEY"):
            cols.append(f"x.{name} - x.SM_RES_SESSION_FACT_KEY * {100_000}")
        elif name == "SM_RES_SESSION_FACT_KEY":
            joins.append(f"LEFT JOIN SM_RES_SESSION_FACT {j} ON "
                         f"{j}.SM_RES_SESSION_FACT_KEY = x.{name} LEFT JOIN MEDIA_TYPE {j}m "
                         f"ON {j}m.MEDIA_TYPE_KEY = {j}.MEDIA_TYPE_KEY")
            cols += [f"{j}.LOGIN_SESSION_ID", f"{j}.DATA_SOURCE_KEY", f"{j}m.MEDIA_NAME_CODE"]
        elif name == "INTERACTION_ID":
            joins.append(f"LEFT JOIN INTERACTION_FACT {j} ON {j}.INTERACTION_ID = x.{name}")
            cols += [f"{j}.DATA_SOURCE_KEY", f"{j}.MEDIA_SERVER_ROOT_IXN_GUID"]
        elif name in _IRF_COLUMNS:
            joins.append(f"LEFT JOIN INTERACTION_RESOURCE_FACT {j} ON "
                         f"{j}.INTERACTION_RESOURCE_ID = x.{name} LEFT JOIN INTERACTION_FACT "
                         f"{j}i ON {j}i.INTERACTION_ID = {j}.INTERACTION_ID")
            cols += [f"{j}i.DATA_SOURCE_KEY", f"{j}i.MEDIA_SERVER_ROOT_IXN_GUID",
                     f"{j}.INTERACTION_RESOURCE_ORDINAL"]
        elif name in _NATURAL or name in _RESOURCE_COLUMNS:
            dim, key, natural = _NATURAL["RESOURCE" if name in _RESOURCE_COLUMNS else name]
            joins.append(f"LEFT JOIN {dim} {j} ON {j}.{key} = x.{name}")
            cols += [f"{j}.{c2}" for c2 in natural]
        else:
            cols.append(f"x.{name}")
    return f"SELECT {', '.join(cols)} FROM {table.name} x {' '.join(joins)}"


def _content(url: str) -> dict[str, list]:
    """Every fact, user-data extension, discard, queued interval and dimension member the
    transformation writes, by natural keys (no surrogate or audit keys)."""
    def norm(rows):
        return sorted((tuple(int(v) if isinstance(v, decimal.Decimal) else v for v in r)
                       for r in rows), key=repr)

    out = {}
    for table in (f.INTERACTION_FACT, f.INTERACTION_RESOURCE_FACT, f.MEDIATION_SEGMENT_FACT,
                  f.SM_RES_SESSION_FACT, f.SM_RES_STATE_FACT, f.SM_RES_STATE_REASON_FACT,
                  f.IRF_USER_DATA_KEYS, f.IRF_USER_DATA_GEN_1, f.IRF_USER_DATA_CUST_1,
                  f.STG_TRANSFORM_DISCARDS, f.CTL_AGG_QUEUE):
        out[table.name] = norm(_q(url, _natural_select(table)))
    for name, (dim, _, natural) in (("RESOURCE_", _NATURAL["RESOURCE"]),
                                    ("PLACE", _NATURAL["PLACE_KEY"]),
                                    ("INTERACTION_DESCRIPTOR",
                                     _NATURAL["INTERACTION_DESCRIPTOR_KEY"]),
                                    ("RESOURCE_STATE_REASON",
                                     _NATURAL["RESOURCE_STATE_REASON_KEY"])):
        out[name] = norm(_q(url, f"SELECT {', '.join(natural)} FROM {dim}"))
    assert out["INTERACTION_FACT"] and out["SM_RES_STATE_FACT"] and out["CTL_AGG_QUEUE"]
    return out


def test_quarter_hour_cycles_give_the_facts_of_one_run(cli, db_kind, tmp_path):
    """Extract and transform every simulated quarter of an hour through busy hours and
    across midnight, with faults: the same facts as one run over the whole span, and the
    truth all along."""
    with new_database(db_kind, tmp_path, "idb1") as idb1, \
            new_database(db_kind, tmp_path, "im1") as im1, \
            new_database(db_kind, tmp_path, "idb2") as idb2, \
            new_database(db_kind, tmp_path, "im2") as im2:
        (tmp_path / "one").mkdir()
        (tmp_path / "inc").mkdir()
        one = _config(tmp_path / "one", im1, idb1)
        inc = _config(tmp_path / "inc", im2, idb2)
        sim = {**SIM, "faults": 0.05}
        simulate(idb1, start=START, days=1, minutes=90, **sim)
        _cycle(cli, one)
        simulate(idb2, start=START, days=0, minutes=10 * 60, **sim)
        _cycle(cli, inc)
        # 10:00 - 11:00, then to 23:30, then 23:30 - 00:30, then to 01:30.
        for minutes in (15, 15, 15, 15, 12 * 60 + 30, 15, 15, 15, 15, 60):
            simulate(idb2, days=0, minutes=minutes, resume=True)
            _cycle(cli, inc)
        assert _content(im2) == _content(im1)
        end = _t0() + DAY + 90 * 60
        assert interaction_mismatches(idb2, im2, callids=_clean_calls(idb2),
                                      ended_before=end - 10 * 3600) == []
        assert agent_mismatches(idb2, im2, before=end - 3600) == []


# Transactions of facts the transformation has committed (its audit-log rows).
COMMITTED = """SELECT COUNT(*) FROM CTL_AUDIT_LOG WHERE JOB_NAME = 'transform'
    AND TABLE_NAME IN ('interaction facts', 'SM_* facts')"""


def _chunks_committed(url: str) -> int:
    return _q(url, COMMITTED)[0][0]


def _clean_calls(idb: str) -> list[str]:
    """The ledger's interactions that no injected fault touched."""
    faulty = {c for (c,) in _q(idb, "SELECT CALLID FROM SIM_FAULT")}
    return [c for (c,) in _q(idb, "SELECT CALLID FROM SIM_INTERACTION") if c not in faulty]


@contextlib.contextmanager
def _twin_infomarts(cli, db_kind, tmp_path, extra: str):
    """A simulated day with faults and two Info Marts extracting it: the first
    transformed in one uninterrupted run, the second extracted only, its configuration
    given `extra` (a TOML section). Yields (idb, im1, im2, second config)."""
    with new_database(db_kind, tmp_path, "idb") as idb, \
            new_database(db_kind, tmp_path, "im1") as im1, \
            new_database(db_kind, tmp_path, "im2") as im2:
        simulate(idb, start=START, days=1, **{**SIM, "faults": 0.05})
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        clean = _config(tmp_path / "a", im1, idb)
        other = _config(tmp_path / "b", im2, idb)
        other.write_text(other.read_text() + extra)
        _cycle(cli, clean)
        assert invoke(cli, "extract", "--role", "all", "-c", str(other)).exit_code == 0
        yield idb, im1, im2, other


def test_killed_transformations_end_like_an_uninterrupted_one(cli, db_kind, tmp_path):
    """SIGKILL lands while the job is writing facts (after at least one of its chunks
    committed, before it finished), again and again; the run after that ends with the facts
    of an uninterrupted run."""
    small = "\n[gim-transformation]\ninteractions-per-transaction = 10\n" \
            "sessions-per-transaction = 3\n"
    with _twin_infomarts(cli, db_kind, tmp_path, small) as (_, im1, im2, killed), \
            Watch(im2, COMMITTED) as committed:
        rng = random.Random(7)
        kills = 0
        for _ in range(30):
            before = committed()
            proc = spawn_gim("transform", "-c", str(killed))
            while proc.poll() is None and committed() == before:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.25))
            if proc.poll() is not None:  # it finished first
                assert proc.returncode == 0, proc.stderr.read()
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            status = _q(im2, "SELECT STATUS FROM CTL_ETL_HISTORY WHERE PID = :p AND "
                             "JOB_NAME = 'transform' ORDER BY START_TS DESC", p=proc.pid)
            if committed() > before and status and status[0][0] == "RUNNING":
                kills += 1
            if kills == 6:
                break
        done = run_gim("transform", "-c", str(killed))
        assert done.returncode == 0, done.stderr
        assert kills >= 4
        assert _chunks_committed(im2) > _chunks_committed(im1)
        assert _q(im2, "SELECT COUNT(*) FROM CTL_TRANSFORM_PENDING")[0][0] == \
            _q(im1, "SELECT COUNT(*) FROM CTL_TRANSFORM_PENDING")[0][0]
        assert _content(im2) == _content(im1)


def test_interrupted_side_by_side_transformation_ends_like_an_uninterrupted_one(
        cli, db_kind, tmp_path):
    """Interactions recomputed in many small transactions, three at a time on PostgreSQL;
    SIGTERM while several are under way: the job stops with the documented error once they
    have committed or rolled back, and the next run ends with the facts, dimension members
    and queue of one uninterrupted transaction, and the truth."""
    side_by_side = ("\n[gim-transformation]\ninteractions-per-transaction = 10\n"
                    "transform-thread-pool-size = 3\n")
    with _twin_infomarts(cli, db_kind, tmp_path, side_by_side) as (idb, im1, im2, stopped), \
            Watch(im2, COMMITTED) as committed:
        proc = spawn_gim("transform", "-c", str(stopped))
        while proc.poll() is None and committed()[0][0] < 3:
            time.sleep(0.01)
        assert proc.poll() is None, "the transformation finished before it was interrupted"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        assert "interrupted by SIGTERM" in err.strip().splitlines()[-1]
        assert _q(im2, "SELECT STATUS FROM CTL_ETL_HISTORY WHERE JOB_NAME = 'transform'"
                       )[0][0] == "FAILED"
        assert _q(im2, "SELECT COUNT(*) FROM CTL_TRANSFORM_PENDING WHERE KIND = "
                       "'interaction'")[0][0] > 0
        done = run_gim("transform", "-c", str(stopped))
        assert done.returncode == 0, done.stderr
        # Side by side, the transactions invented placeholders and dimension members,
        # queued intervals and discarded faults as one transaction does.
        assert _q(im2, "SELECT COUNT(*) FROM RESOURCE_ WHERE IS_PLACEHOLDER = 1")[0][0] > 0
        assert _chunks_committed(im2) > _chunks_committed(im1) + 10
        assert _content(im2) == _content(im1)
        # (Extraction holds voice calls back 8 h behind a call never terminated.)
        assert interaction_mismatches(idb, im2, callids=_clean_calls(idb),
                                      ended_before=_t0() + DAY - 10 * 3600) == []


def test_interactions_wait_for_their_data(cli, tmp_path, center):
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **SIM)
    path = _config(tmp_path, im_url, idb_url)
    assert invoke(cli, "extract", "--role", "all", "-c", str(path)).exit_code == 0
    # Pretend agent states were extracted only up to the morning.
    engine = _engine(im_url)
    with engine.begin() as conn:
        real = conn.execute(sa.text("SELECT MARK_TS FROM CTL_EXTRACT_HWM WHERE TABLE_NAME = "
                                    "'GIDB_G_AGENT_STATE_HISTORY_V'")).scalar()
        conn.execute(sa.text("UPDATE CTL_EXTRACT_HWM SET MARK_TS = :m WHERE TABLE_NAME = "
                             "'GIDB_G_AGENT_STATE_HISTORY_V'"), {"m": _t0() + 10 * 3600})
    engine.dispose()
    result = json.loads(invoke(cli, "transform", "-c", str(path), "--json").stdout)
    assert "waiting for their data" in result["message"]
    late = _q(im_url, """SELECT COUNT(*) FROM INTERACTION_FACT i JOIN MEDIA_TYPE m
        ON m.MEDIA_TYPE_KEY = i.MEDIA_TYPE_KEY WHERE m.MEDIA_NAME_CODE = 'VOICE'
        AND i.END_TS > :m""", m=_t0() + 10 * 3600)[0][0]
    assert late == 0
    waiting = _q(im_url, "SELECT COUNT(*) FROM CTL_TRANSFORM_PENDING WHERE KIND = "
                         "'interaction'")[0][0]
    assert waiting > 50
    # Once the data is there, they go through.
    engine = _engine(im_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE CTL_EXTRACT_HWM SET MARK_TS = :m WHERE TABLE_NAME = "
                             "'GIDB_G_AGENT_STATE_HISTORY_V'"), {"m": real})
    engine.dispose()
    assert invoke(cli, "transform", "-c", str(path)).exit_code == 0
    assert interaction_mismatches(idb_url, im_url, ended_before=_t0() + DAY - 3600) == []


def test_wait_timeout_lets_interactions_go_ahead(cli, tmp_path, center):
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **SIM)
    path = _config(tmp_path, im_url, idb_url)
    assert invoke(cli, "extract", "--role", "all", "-c", str(path)).exit_code == 0
    engine = _engine(im_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE CTL_EXTRACT_HWM SET MARK_TS = :m WHERE TABLE_NAME = "
                             "'GIDB_G_AGENT_STATE_HISTORY_V'"), {"m": _t0() + 10 * 3600})
    engine.dispose()
    path = _config(tmp_path, im_url, idb_url).parent / "gim.toml"
    path.write_text(path.read_text().replace(
        "[date-time]", "[gim-transformation]\ndependency-wait-timeout = 0\n\n[date-time]"))
    result = json.loads(invoke(cli, "transform", "-c", str(path), "--json").stdout)
    assert any("went ahead after waiting" in n for n in result["notes"])
    assert _q(im_url, "SELECT COUNT(*) FROM CTL_TRANSFORM_PENDING WHERE KIND = "
                      "'interaction'")[0][0] == 0


def test_exception_policy_fails_the_job(cli, tmp_path, center):
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **{**SIM, "faults": 0.1})
    path = _config(tmp_path, im_url, idb_url).parent / "gim.toml"
    path.write_text(path.read_text().replace(
        "[date-time]", '[error-policy]\nerror-policy-irf-exception = "exception"\n\n'
                       "[date-time]"))
    assert invoke(cli, "extract", "--role", "all", "-c", str(path)).exit_code == 0
    result = invoke(cli, "transform", "-c", str(path))
    assert result.exit_code == 1
    assert "error-policy-irf-exception = exception" in result.stderr
    assert _q(im_url, "SELECT COUNT(*) FROM STG_TRANSFORM_DISCARDS")[0][0] == 0


def test_active_facts_complete_later(cli, tmp_path, center):
    idb_url, im_url = center
    # E-mails that arrived in the night wait in their queue until the first shifts.
    simulate(idb_url, start=START, days=0, minutes=6 * 60, **SIM)
    path = _config(tmp_path, im_url, idb_url)
    _cycle(cli, path)
    active = _q(im_url, """SELECT INTERACTION_ID, MEDIA_SERVER_IXN_GUID, CREATE_AUDIT_KEY,
        UPDATE_AUDIT_KEY, END_DATE_TIME_KEY FROM INTERACTION_FACT WHERE ACTIVE_FLAG = 1""")
    assert active and all(r[4] == ACTIVE_END_KEY for r in active)
    simulate(idb_url, days=1, resume=True)
    _cycle(cli, path)
    after = {r[1]: r for r in _q(im_url, """SELECT INTERACTION_ID, MEDIA_SERVER_IXN_GUID,
        CREATE_AUDIT_KEY, UPDATE_AUDIT_KEY, END_DATE_TIME_KEY, ACTIVE_FLAG
        FROM INTERACTION_FACT""")}
    completed = [r for r in active if after[r[1]][5] == 0]
    assert completed
    for iid, guid, created, updated, _ in completed:
        assert after[guid][0] == iid and after[guid][2] == created
        assert after[guid][3] > updated and after[guid][4] < ACTIVE_END_KEY


def _set(url: str, sql: str, **params) -> int:
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(sa.text(sql), params).rowcount
    finally:
        engine.dispose()


def test_long_active_interactions_end_artificially(cli, tmp_path, center):
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **SIM)
    path = _config(tmp_path, im_url, idb_url, "days-to-keep-active-facts = 1")
    _cycle(cli, path)
    newest = _q(im_url, "SELECT MAX(START_TS) FROM INTERACTION_FACT")[0][0]
    # An interaction that began three days before the newest one, its parts (which began
    # later) all still open.
    iid = _q(im_url, """SELECT MIN(i.INTERACTION_ID) FROM INTERACTION_FACT i WHERE EXISTS (
        SELECT 1 FROM INTERACTION_RESOURCE_FACT r WHERE r.INTERACTION_ID = i.INTERACTION_ID)
        AND EXISTS (SELECT 1 FROM MEDIATION_SEGMENT_FACT m
                    WHERE m.INTERACTION_ID = i.INTERACTION_ID)""")[0][0]
    _set(im_url, "UPDATE INTERACTION_FACT SET ACTIVE_FLAG = 1, START_TS = :s, END_TS = NULL "
                 "WHERE INTERACTION_ID = :i", s=newest - 3 * DAY, i=iid)
    for table in ("INTERACTION_RESOURCE_FACT", "MEDIATION_SEGMENT_FACT"):
        _set(im_url, f"UPDATE {table} SET ACTIVE_FLAG = 1, END_TS = NULL WHERE "
                     f"INTERACTION_ID = :i", i=iid)
    _set(im_url, "DELETE FROM CTL_AGG_QUEUE")
    result = json.loads(invoke(cli, "transform", "-c", str(path), "--json").stdout)
    assert result["counts"]["interactions terminated artificially"] == 1
    row = _q(im_url, "SELECT STATUS, ACTIVE_FLAG, END_TS FROM INTERACTION_FACT WHERE "
                     "INTERACTION_ID = :i", i=iid)[0]
    # It ends a day after its start, unless a part of it began later: then with it.
    latest = max(t for (t,) in _q(im_url, """SELECT START_TS FROM INTERACTION_RESOURCE_FACT
        WHERE INTERACTION_ID = :i UNION SELECT START_TS FROM MEDIATION_SEGMENT_FACT
        WHERE INTERACTION_ID = :i""", i=iid))
    assert latest > newest - 2 * DAY
    assert row == (f.STATUS_ARTIFICIAL_END, 0, latest)
    parts = _q(im_url, """SELECT START_TS, END_TS, ACTIVE_FLAG, END_DATE_TIME_KEY, 0
        FROM INTERACTION_RESOURCE_FACT WHERE INTERACTION_ID = :i UNION ALL
        SELECT START_TS, END_TS, ACTIVE_FLAG, END_DATE_TIME_KEY, END_TS - START_TS -
               MEDIATION_DURATION FROM MEDIATION_SEGMENT_FACT WHERE INTERACTION_ID = :i""",
               i=iid)
    assert parts and all(e == latest and e >= s and a == 0 and k == e // 900 * 900 and d == 0
                         for s, e, a, k, d in parts)
    # Its intervals, from its start (within the calendar) to its end, are queued.
    assert set(range(_t0(), latest // 900 * 900 + 1, 900)) <= \
        {k for _, k in _queued(im_url)}
    # Rows of it that come later are ignored, and do not wait for ever.
    _set(im_url, """INSERT INTO CTL_TRANSFORM_PENDING (KIND, DATA_SOURCE_KEY, ENTITY_ID,
        SINCE_TS) SELECT 'interaction', DATA_SOURCE_KEY, MEDIA_SERVER_ROOT_IXN_GUID, 0
        FROM INTERACTION_FACT WHERE INTERACTION_ID = :i""", i=iid)
    assert invoke(cli, "transform", "-c", str(path)).exit_code == 0
    assert _q(im_url, """SELECT COUNT(*) FROM CTL_TRANSFORM_PENDING p JOIN INTERACTION_FACT i
        ON i.MEDIA_SERVER_ROOT_IXN_GUID = p.ENTITY_ID WHERE i.INTERACTION_ID = :i""",
              i=iid)[0][0] == 0
    assert _q(im_url, "SELECT STATUS, ACTIVE_FLAG, END_TS FROM INTERACTION_FACT WHERE "
                      "INTERACTION_ID = :i", i=iid)[0] == row


def test_open_agent_facts_reach_their_limits(cli, tmp_path, center):
    """Open reasons are active facts, completed later; a state ends after
    max-state-duration, a session after days-to-keep-active-facts, once the data has
    passed those limits (also when nothing else of the session changes)."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=0, minutes=12 * 60, **SIM)
    # A voice session that, for ICON, began two days earlier and never ended.
    first = _q(idb_url, """SELECT LOGINSESSIONID, CREATED_TS FROM G_LOGIN_SESSION
        WHERE MEDIALIST IS NULL ORDER BY CREATED_TS, ID""")[0]
    assert _set(idb_url, """UPDATE G_LOGIN_SESSION SET CREATED_TS = :c, STATE = 1,
        TERMINATED_TS = NULL WHERE LOGINSESSIONID = :l""", c=first[1] - 2 * DAY,
                l=first[0]) == 1
    path = _config(tmp_path, im_url, idb_url, "days-to-keep-active-facts = 1")
    path.write_text(path.read_text() + "\n[gim-transformation]\nmax-state-duration = 1800\n")
    _cycle(cli, path)
    session = _q(im_url, """SELECT SM_RES_SESSION_FACT_KEY, START_TS, END_TS, ACTIVE_FLAG
        FROM SM_RES_SESSION_FACT WHERE LOGIN_SESSION_ID = :l""", l=first[0])
    assert session == [(session[0][0], first[1] - 2 * DAY, first[1] - DAY, 0)]
    assert not _q(im_url, """SELECT 1 FROM SM_RES_STATE_FACT WHERE
        SM_RES_SESSION_FACT_KEY = :k AND (END_TS IS NULL OR END_TS > :e)""",
                  k=session[0][0], e=first[1] - DAY)
    states = _q(im_url, "SELECT TOTAL_DURATION, ACTIVE_FLAG FROM SM_RES_STATE_FACT")
    assert max(d for d, _ in states) == 1800
    # A lower limit ends the open states it has passed at the next run, without new data.
    mark = _q(im_url, """SELECT MIN(MARK_TS) FROM CTL_EXTRACT_HWM
        WHERE TABLE_NAME LIKE 'GIDB_G_AGENT_STATE%'""")[0][0]
    due = "SELECT COUNT(*) FROM SM_RES_STATE_FACT WHERE ACTIVE_FLAG = 1 AND START_TS + 901 <= :m"
    assert _q(im_url, due, m=mark)[0][0] > 0
    path.write_text(path.read_text().replace("max-state-duration = 1800",
                                             "max-state-duration = 901"))
    assert invoke(cli, "transform", "-c", str(path)).exit_code == 0
    assert _q(im_url, due, m=mark)[0][0] == 0
    assert _q(im_url, "SELECT COUNT(*) FROM SM_RES_STATE_FACT WHERE TOTAL_DURATION = 901 "
                      "AND END_TS <= :m", m=mark)[0][0] > 0
    # (What lies before the calendar's first day cannot be queued.)
    assert {x for x in _queue_needed(im_url) if x[1] >= _t0()} <= _queued(im_url)


def _extracted(url: str, sql: str, **params) -> None:
    """Change GIDB rows as an extraction chunk would: `sql` sets UPDATE_AUDIT_KEY = :audit
    on the rows it writes, in a transaction with its CTL_AUDIT_LOG row."""
    from gim.db import ops_for

    engine = _engine(url)
    with engine.begin() as conn:
        audit = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
        n = conn.execute(sa.text(sql), {**params, "audit": audit}).rowcount
        conn.execute(sa.text("""INSERT INTO CTL_AUDIT_LOG (AUDIT_KEY, JOB_ID, JOB_NAME,
            CREATED, PROCESSING_STATUS_KEY, MIN_START_DATE_TIME_KEY, MAX_START_DATE_TIME_KEY,
            TABLE_NAME, ROW_COUNT, CREATED_TS) VALUES (:a, 'test', 'extract', :c, 0, 0, 0,
            'GIDB_G_AGENT_STATE_RC_V', :n, :t)"""),
                     {"a": audit, "c": dt.datetime(2026, 1, 1), "n": n, "t": int(time.time())})
    engine.dispose()


def test_open_reasons_are_active_facts_completed_later(cli, tmp_path, center):
    """A reason code still open in GIDB is an active SM_RES_STATE_REASON_FACT (far-future
    end); once it ends, the same fact is completed."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=0, minutes=12 * 60, **SIM)
    path = _config(tmp_path, im_url, idb_url)
    _cycle(cli, path)
    # The latest reason of a session still open, as if it had not ended yet.
    rc_id, ended = _q(im_url, """SELECT r.ID, r.TERMINATED_TS FROM GIDB_G_AGENT_STATE_RC_V r
        JOIN GIDB_G_LOGIN_SESSION_V s ON s.LOGINSESSIONID = r.SESSIONID
        WHERE s.TERMINATED_TS IS NULL ORDER BY r.CREATED_TS DESC""")[0]
    fact = "SELECT s.SM_RES_STATE_REASON_FACT_KEY, s.CREATE_AUDIT_KEY, s.END_TS, " \
        "s.END_DATE_TIME_KEY, s.ACTIVE_FLAG FROM SM_RES_STATE_REASON_FACT s JOIN " \
        "GIDB_G_AGENT_STATE_RC_V r ON r.CREATED_TS = s.START_TS WHERE r.ID = :i"
    done = _q(im_url, fact, i=rc_id)
    _extracted(im_url, "UPDATE GIDB_G_AGENT_STATE_RC_V SET TERMINATED_TS = NULL, "
                       "UPDATE_AUDIT_KEY = :audit WHERE ID = :i", i=rc_id)
    assert invoke(cli, "transform", "-c", str(path)).exit_code == 0
    key, created = done[0][:2]
    assert _q(im_url, fact, i=rc_id) == [(key, created, None, ACTIVE_END_KEY, 1)]
    _extracted(im_url, "UPDATE GIDB_G_AGENT_STATE_RC_V SET TERMINATED_TS = :e, "
                       "UPDATE_AUDIT_KEY = :audit WHERE ID = :i", i=rc_id, e=ended)
    assert invoke(cli, "transform", "-c", str(path)).exit_code == 0
    assert _q(im_url, fact, i=rc_id) == done


def test_after_call_work_within_a_tolerance(cli, tmp_path, center):
    """ACW that begins up to two seconds after the part ended belongs to it, later ACW
    does not; multimedia ACW counts too."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=0, minutes=14 * 60, **SIM)
    # Voice ACW states two seconds late (even ids) or three (odd ids).
    _set(idb_url, "UPDATE G_AGENT_STATE_HISTORY SET ADDED_TS = ADDED_TS + 2 + ID % 2 "
                  "WHERE STATE = 4 AND MEDIANAME IS NULL")
    # A chat agent who, after a chat, goes to ACW instead of ready.
    chat = _q(idb_url, """SELECT p.PARTYGUID, c.ROOTIRID, p.TERMINATED_TS, s.ID,
        s.LOGINSESSIONID FROM G_PARTY p JOIN G_CALL c ON c.CALLID = p.CALLID
        JOIN G_AGENT_STATE_HISTORY s ON s.AGENTID = p.AGENTID AND s.MEDIANAME = 'chat'
             AND s.ADDED_TS = p.TERMINATED_TS AND s.STATE = 3
        WHERE c.MEDIANAME = 'chat' AND p.AGENTID IS NOT NULL ORDER BY p.ID""")[0]
    guid, root, ended, state_id, login = chat
    nxt = _q(idb_url, """SELECT MIN(ADDED_TS) FROM G_AGENT_STATE_HISTORY WHERE
        LOGINSESSIONID = :l AND MEDIANAME = 'chat' AND ADDED_TS > :t""", l=login, t=ended)[0][0]
    _set(idb_url, "UPDATE G_AGENT_STATE_HISTORY SET STATE = 4 WHERE ID = :i", i=state_id)
    path = _config(tmp_path, im_url, idb_url)
    _cycle(cli, path)
    chat_call = _q(idb_url, "SELECT CALLID FROM G_CALL WHERE IRID = :r", r=root)[0][0]
    bad = [b for b in interaction_mismatches(
        idb_url, im_url, ended_before=_t0() + 13 * 3600,
        checks=("RING", "TALK", "HOLD", "CONSULT", "QUEUE", "agent")) if b[0] != chat_call]
    assert bad and all(b[1] == "IRF" and b[4] == "ACW" and b[6] in (b[5] - 2, 0)
                       for b in bad), [b for b in bad if b[1] != "IRF" or b[4] != "ACW"
                                       or b[6] not in (b[5] - 2, 0)][:8]
    late = {b[6] for b in bad}
    assert late - {0} and 0 in late
    assert _q(im_url, """SELECT AFTER_CALL_WORK_DURATION FROM INTERACTION_RESOURCE_FACT
        WHERE PARTYGUID = :g""", g=guid) == [(nxt - ended,)]


def test_changes_queue_the_intervals_they_touch(cli, tmp_path, center):
    """A discarded interaction's old intervals are queued for aggregation."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=0, minutes=14 * 60, **SIM)
    path = _config(tmp_path, im_url, idb_url)
    _cycle(cli, path)
    assert _queued(im_url) == _queue_needed(im_url)
    callid, iid = _q(im_url, """SELECT MEDIA_SERVER_IXN_GUID, INTERACTION_ID
        FROM INTERACTION_FACT i JOIN MEDIA_TYPE m ON m.MEDIA_TYPE_KEY = i.MEDIA_TYPE_KEY
        WHERE m.MEDIA_NAME_CODE = 'VOICE' AND i.END_DATE_TIME_KEY > i.START_DATE_TIME_KEY
        ORDER BY i.START_TS""")[0]
    covered = _queue_needed(im_url, iid)
    assert len(covered) >= 2
    _set(im_url, "DELETE FROM CTL_AGG_QUEUE")
    simulate(idb_url, days=0, minutes=30, resume=True)
    now = _q(idb_url, "SELECT END_TS FROM SIM_RUN")[0][0]
    _set(idb_url, "UPDATE G_CALL SET TERMINATED_TS = CREATED_TS - 10, LASTCHANGE_TS = :c "
                  "WHERE CALLID = :i", c=now - 600, i=callid)
    _cycle(cli, path)
    assert not _q(im_url, "SELECT 1 FROM INTERACTION_FACT WHERE INTERACTION_ID = :i",
                  i=iid)
    assert covered <= _queued(im_url)


def _map_rule(cli, path, url, key, rule, column=None, table="IRF_USER_DATA_GEN_1",
              row_id=None):
    """Initialize the Info Mart of `path` and make `key` map by `rule` (to `column` of
    `table` in a new mapping row when row_id is given, else in the key's own row)."""
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    engine = _engine(url)
    with engine.begin() as conn:
        if row_id is None:
            conn.execute(sa.text("UPDATE CTL_UD_TO_UDE_MAPPING SET PROPAGATION_RULE = :r "
                                 "WHERE UD_KEY_NAME = :k"), {"r": rule, "k": key})
        else:
            conn.execute(sa.text("""INSERT INTO CTL_UD_TO_UDE_MAPPING (ID, UD_KEY_NAME,
                UDE_TABLE_NAME, UDE_COLUMN_NAME, PROPAGATION_RULE, ACTIVE_FLAG)
                VALUES (:i, :k, :t, :c, :r, 1)"""),
                         {"i": row_id, "k": key, "t": table, "c": column, "r": rule})
    engine.dispose()


def test_agent_user_data_after_the_timeout_is_ignored(cli, tmp_path, center, db_kind):
    """Key-value pairs an agent sends after the call ended count (for the PARTY rule, the
    only one that looks past the agent's part) within user-event-data-timeout, not later;
    the timeout is the agent's: a change the media server made is never counted ignored."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **{**SIM, "media": ("voice",), "outbound": False})
    timeout = 300
    engine = _engine(idb_url)
    try:
        with engine.begin() as conn:
            from gim.schema.idb import idb_metadata

            ud = idb_metadata.tables["G_USERDATA_HISTORY"]
            # An interaction of one call that ended well before the data does, and the
            # one agent who handled it.
            callid, end, agent = conn.execute(sa.text(f"""
                SELECT c.CALLID, c.TERMINATED_TS, MIN(p.AGENTID) FROM G_CALL c
                JOIN G_PARTY p ON p.CALLID = c.CALLID AND p.AGENTID IS NOT NULL
                WHERE c.STATE = 2 AND c.TERMINATED_TS < {_t0() + DAY - 4 * 3600}
                AND c.ROOTIRID = c.IRID AND NOT EXISTS (SELECT 1 FROM G_CALL o WHERE
                    o.ROOTIRID = c.ROOTIRID AND o.CALLID <> c.CALLID)
                GROUP BY c.CALLID, c.TERMINATED_TS
                HAVING COUNT(DISTINCT p.AGENTID) = 1 ORDER BY c.CALLID""")).first()
            model = dict(conn.execute(sa.select(ud).where(ud.c.CALLID == callid)
                                      .limit(1)).mappings().one())
            top = conn.execute(sa.select(sa.func.max(ud.c.ID))).scalar()

            def kvp(n, value, late, by_agent):
                ts = end + late
                return {**model, "ID": top + n, "KEYNAME": "CustomerID", "VALUE": value,
                        "AGENTID": agent if by_agent else None, "PARTYID": None,
                        "CHANGETYPE": 2, "ADDED_TS": ts,
                        "ADDED": dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None),
                        "CSEQ": 90 + n}

            conn.execute(ud.insert(), [kvp(1, "SENT-IN-TIME", timeout - 60, True),
                                       kvp(2, "SENT-TOO-LATE", timeout + 60, True)])
    finally:
        engine.dispose()

    def agent_values(url):
        return {v for (v,) in _q(url, """SELECT u.CUSTOMER_ID FROM IRF_USER_DATA_GEN_1 u
            JOIN INTERACTION_RESOURCE_FACT r
                 ON r.INTERACTION_RESOURCE_ID = u.INTERACTION_RESOURCE_ID
            JOIN INTERACTION_FACT i ON i.INTERACTION_ID = r.INTERACTION_ID
            JOIN RESOURCE_ x ON x.RESOURCE_KEY = r.RESOURCE_KEY
            WHERE i.MEDIA_SERVER_IXN_GUID = :c AND x.RESOURCE_CFG_DBID = :a
            AND x.RESOURCE_TYPE_CODE = 'AGENT'""", c=callid, a=agent)}

    ignored = "user data ignored (sent by an agent after user-event-data-timeout)"
    path = _config(tmp_path, im_url, idb_url, f"user-event-data-timeout = {timeout}")
    _map_rule(cli, path, im_url, "CustomerID", "PARTY")
    summary = _cycle(cli, path)
    assert agent_values(im_url) == {"SENT-IN-TIME"}
    assert summary["counts"][ignored] == 1
    # By the media server, the same late change is no agent's: not counted ignored (and
    # no party's change either).
    engine = _engine(idb_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE G_USERDATA_HISTORY SET AGENTID = NULL, PARTYID = NULL "
                             "WHERE VALUE = 'SENT-TOO-LATE'"))
    engine.dispose()
    # ICON does not change rows in place; a fresh Info Mart reads the changed history.
    with new_database(db_kind, tmp_path, "im2") as im2:
        (tmp_path / "b").mkdir()
        path2 = _config(tmp_path / "b", im2, idb_url, f"user-event-data-timeout = {timeout}")
        _map_rule(cli, path2, im2, "CustomerID", "PARTY")
        summary = _cycle(cli, path2)
        assert agent_values(im2) == {"SENT-IN-TIME"}
        assert ignored not in summary["counts"]


def _key_changes(idb_url, key):
    """The IDB's changes of attached-data `key`, by root IRID, as _expected_value takes
    them."""
    changes: dict[str, list[dict]] = {}
    for root, t, n, value, agent in _q(idb_url, """SELECT c.ROOTIRID, u.ADDED_TS, u.ID,
            u.VALUE, u.AGENTID FROM G_USERDATA_HISTORY u JOIN G_CALL c ON c.CALLID = u.CALLID
            WHERE u.KEYNAME = :k""", k=key):
        changes.setdefault(root, []).append({"t": t, "n": n, "value": value, "agent": agent})
    return changes


# Each propagation rule, from its documented meaning, over one key's changes (t: when, n:
# the IDB row's ID, agent: who made it) for a resource fact from t0 to t1 (None: still
# active) whose IRF_FIRST_UPDATE window begins at `window`.
def _expected_value(rule, changes, t0, t1, window, agent):
    until = [c for c in changes if t1 is None or c["t"] <= t1]
    chosen = {"CALL": until,
              "IRF": [c for c in until if c["t"] >= t0],
              "IRF_FIRST_UPDATE": [c for c in until if c["t"] >= window],
              "IRF_INITIAL": [c for c in changes if c["t"] <= t0],
              "PARTY": [c for c in changes if agent is not None and c["agent"] == agent
                        and c["t"] >= t0]}[rule]
    if not chosen:
        return None
    order = operator.itemgetter("t", "n")
    pick = min(chosen, key=order) if rule == "IRF_FIRST_UPDATE" else max(chosen, key=order)
    return pick["value"]


RULE_COLUMNS = {"CALL": "CUSTOM_DATA_1", "PARTY": "CUSTOM_DATA_2", "IRF": "CUSTOM_DATA_3",
                "IRF_FIRST_UPDATE": "CUSTOM_DATA_4", "IRF_INITIAL": "CUSTOM_DATA_5"}


def test_propagation_rules_pick_each_facts_value(cli, tmp_path, center):
    """One attached-data key the IVR sets and agents change (ServiceSubType), mapped by each
    propagation rule to a column of its own: every resource fact holds the value the
    rule's documented meaning picks from the IDB's history of the key, and the rules
    disagree where they should."""
    idb_url, im_url = center
    # Enough calls for some to be redirected when an agent does not answer.
    simulate(idb_url, start=START, days=1, **{**SIM, "media": ("voice",), "outbound": False,
                                              "calls_per_day": 400})
    # The media server changes the key while an agent lets the call ring unanswered, so
    # that the window of the next resource's first update reaches back to that change.
    engine = _engine(idb_url)
    with engine.begin() as conn:
        from gim.schema.icon_codes import CCCause
        from gim.schema.idb import idb_metadata

        ud = idb_metadata.tables["G_USERDATA_HISTORY"]
        model = dict(conn.execute(sa.select(ud).limit(1)).mappings().one())
        top = conn.execute(sa.select(sa.func.max(ud.c.ID))).scalar()
        rings = conn.execute(sa.text(f"""SELECT CALLID, CREATED_TS FROM G_PARTY WHERE
            AGENTID IS NOT NULL AND CCEVENTCAUSE = {int(CCCause.NO_ANSWER)}""")).all()
        assert rings
        conn.execute(ud.insert(), [
            {**model, "ID": top + n, "CALLID": callid, "PARTYID": None, "AGENTID": None,
             "ENDPOINTID": None, "ENDPOINTDN": None, "KEYNAME": "ServiceSubType",
             "VALUE": f"WHILE-RINGING-{n}", "CHANGETYPE": 2, "ADDED_TS": ts + 1,
             "ADDED": dt.datetime.fromtimestamp(ts + 1, dt.UTC).replace(tzinfo=None),
             "CSEQ": 500 + n} for n, (callid, ts) in enumerate(rings, start=1)])
    engine.dispose()
    path = _config(tmp_path, im_url, idb_url)
    for n, (rule, column) in enumerate(RULE_COLUMNS.items(), start=100):
        _map_rule(cli, path, im_url, "ServiceSubType", rule, column, "IRF_USER_DATA_CUST_1",
                  row_id=n)
    _cycle(cli, path)
    changes = _key_changes(idb_url, "ServiceSubType")
    facts = _q(im_url, f"""SELECT i.MEDIA_SERVER_ROOT_IXN_GUID, r.INTERACTION_ID,
            r.INTERACTION_RESOURCE_ORDINAL, r.START_TS, r.END_TS, t.TECHNICAL_RESULT,
            CASE WHEN x.RESOURCE_TYPE_CODE = 'AGENT' THEN x.RESOURCE_CFG_DBID END,
            {', '.join('u.' + c for c in RULE_COLUMNS.values())}
        FROM INTERACTION_RESOURCE_FACT r
        JOIN INTERACTION_FACT i ON i.INTERACTION_ID = r.INTERACTION_ID
        JOIN TECHNICAL_DESCRIPTOR t ON t.TECHNICAL_DESCRIPTOR_KEY = r.TECHNICAL_DESCRIPTOR_KEY
        JOIN RESOURCE_ x ON x.RESOURCE_KEY = r.RESOURCE_KEY
        JOIN IRF_USER_DATA_CUST_1 u ON u.INTERACTION_RESOURCE_ID = r.INTERACTION_RESOURCE_ID
        ORDER BY r.INTERACTION_ID, r.INTERACTION_RESOURCE_ORDINAL""")
    agents_per_ixn: dict[int, list] = {}
    for row in facts:
        agents_per_ixn.setdefault(row[1], []).append(row[6])
    window_start: dict[int, int] = {}
    disagree: set[str] = set()
    checked = reached_back = 0
    for i, (root, iid, _, t0, t1, _result, agent, *stored) in enumerate(facts):
        previous = facts[i - 1] if i else None
        chained = previous is not None and previous[1] == iid and previous[5] == "Redirected"
        window_start[iid] = window_start[iid] if chained else t0
        mine = changes.get(root, [])
        expected = {rule: _expected_value(rule, mine, t0, t1, window_start[iid], agent)
                    for rule in RULE_COLUMNS}
        # PARTY by the agent stands for the agent's party where the agent has one fact.
        lone = agent is not None and agents_per_ixn[iid].count(agent) == 1
        for (rule, _), value in zip(RULE_COLUMNS.items(), stored, strict=True):
            if rule == "PARTY" and not lone:
                continue
            assert value == expected[rule], (root, rule, t0, t1, mine)
        checked += 1
        disagree |= {r for r in RULE_COLUMNS if expected[r] != expected["CALL"]}
        reached_back += expected["IRF_FIRST_UPDATE"] != _expected_value(
            "IRF_FIRST_UPDATE", mine, t0, t1, t0, agent)
    assert checked > 300
    # The simulated day makes each rule matter somewhere, the redirections too.
    assert set(RULE_COLUMNS) - {"CALL"} <= disagree, disagree
    assert reached_back > 0


def test_user_data_mapping_it_cannot_apply_stops_the_job(cli, tmp_path, center):
    """A mapping row with a rule, table or column gim does not know, or a column mapped
    twice: the transformation stops with a configuration error naming the row, before it
    writes anything."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=0, minutes=120, **SIM)
    path = _config(tmp_path, im_url, idb_url)
    assert invoke(cli, "extract", "--role", "all", "-c", str(path)).exit_code == 0
    for n, (table, column, rule, says) in enumerate((
            ("IRF_USER_DATA_CUST_1", "CUSTOM_DATA_1", "IRF_ROUTE", "propagation rule"),
            ("IRF_USER_DATA_CUST_9", "CUSTOM_DATA_1", "CALL", "unknown table"),
            ("IRF_USER_DATA_CUST_1", "CUSTOM_DATA_99", "CALL", "has no column"),
            ("IRF_USER_DATA_GEN_1", "CUSTOMER_ID", "CALL", "already mapped by row ID"))):
        row_id = 200 + n
        engine = _engine(im_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM CTL_UD_TO_UDE_MAPPING WHERE ID >= 200"))
            conn.execute(sa.text("""INSERT INTO CTL_UD_TO_UDE_MAPPING (ID, UD_KEY_NAME,
                UDE_TABLE_NAME, UDE_COLUMN_NAME, PROPAGATION_RULE, ACTIVE_FLAG)
                VALUES (:i, 'Whatever', :t, :c, :r, 1)"""),
                         {"i": row_id, "t": table, "c": column, "r": rule})
        engine.dispose()
        result = invoke(cli, "transform", "-c", str(path))
        assert result.exit_code == 5, result.output
        line = result.stderr.strip().splitlines()[-1]
        assert f"CTL_UD_TO_UDE_MAPPING row ID {row_id}" in line and says in line, line
        assert _q(im_url, "SELECT COUNT(*) FROM INTERACTION_FACT")[0][0] == 0
        assert _q(im_url, "SELECT COUNT(*) FROM CTL_TRANSFORM_HISTORY")[0][0] == 0


@pytest.mark.parametrize("linked", ["voice", "mm"])
def test_mediation_segments_get_user_data_when_linked(cli, tmp_path, center, linked):
    """With link-msf-userdata-voice (or -mm), the MSFs of that medium get user-data rows of
    their own, by the same rules over their own time (PARTY: the party of the IRF the
    segment distributed to); the other medium's MSFs get none, and the IRFs' rows are
    those of an Info Mart without the option."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **SIM)
    # A key agents change on voice calls; multimedia interactions have only keys set at
    # their start.
    key = "ServiceSubType" if linked == "voice" else "CustomerSegment"
    option = f"link-msf-userdata-{'voice' if linked == 'voice' else 'mm'} = true"
    path = _config(tmp_path, im_url, idb_url, option)
    for n, rule in enumerate(("CALL", "PARTY"), start=100):
        _map_rule(cli, path, im_url, key, rule, RULE_COLUMNS[rule],
                  "IRF_USER_DATA_CUST_1", row_id=n)
    _cycle(cli, path)
    changes = _key_changes(idb_url, key)
    segments = _q(im_url, """SELECT i.MEDIA_SERVER_ROOT_IXN_GUID, m.START_TS, m.END_TS,
            CASE WHEN x.RESOURCE_TYPE_CODE = 'AGENT' THEN x.RESOURCE_CFG_DBID END,
            mt.MEDIA_NAME_CODE, u.INTERACTION_RESOURCE_ID, u.CUSTOM_DATA_1, u.CUSTOM_DATA_2,
            k.INTERACTION_RESOURCE_ID
        FROM MEDIATION_SEGMENT_FACT m
        JOIN INTERACTION_FACT i ON i.INTERACTION_ID = m.INTERACTION_ID
        JOIN MEDIA_TYPE mt ON mt.MEDIA_TYPE_KEY = m.MEDIA_TYPE_KEY
        LEFT JOIN INTERACTION_RESOURCE_FACT r
             ON r.INTERACTION_RESOURCE_ID = m.TARGET_IXN_RESOURCE_ID
        LEFT JOIN RESOURCE_ x ON x.RESOURCE_KEY = r.RESOURCE_KEY
        LEFT JOIN IRF_USER_DATA_CUST_1 u ON u.INTERACTION_RESOURCE_ID = m.MEDIATION_SEGMENT_ID
        LEFT JOIN IRF_USER_DATA_KEYS k ON k.INTERACTION_RESOURCE_ID = m.MEDIATION_SEGMENT_ID""")
    mine = [s for s in segments if (s[4] == "VOICE") == (linked == "voice")]
    others = [s for s in segments if (s[4] == "VOICE") != (linked == "voice")]
    assert len(mine) > 20 and others
    assert all(s[5] is None and s[8] is None for s in others)
    for root, t0, t1, agent, _, row, call_value, party_value, keys_row in mine:
        assert row is not None and keys_row is not None, root
        history = changes.get(root, [])
        assert call_value == _expected_value("CALL", history, t0, t1, t0, agent), root
        assert party_value == _expected_value("PARTY", history, t0, t1, t0, agent), root
    assert {s[6] for s in mine} - {None}
    if linked == "voice":  # what the agent a segment distributed to recorded
        assert {s[7] for s in mine} - {None}
    # The IRFs' user data is that of an Info Mart without the option.
    with new_database("sqlite", tmp_path, "plain") as plain:
        (tmp_path / "p").mkdir()
        other = _config(tmp_path / "p", plain, idb_url)
        for n, rule in enumerate(("CALL", "PARTY"), start=100):
            _map_rule(cli, other, plain, key, rule, RULE_COLUMNS[rule],
                      "IRF_USER_DATA_CUST_1", row_id=n)
        _cycle(cli, other)
        irf_rows = """SELECT u.* FROM IRF_USER_DATA_CUST_1 u JOIN INTERACTION_RESOURCE_FACT r
            ON r.INTERACTION_RESOURCE_ID = u.INTERACTION_RESOURCE_ID"""

        def strip(rows):
            return sorted(tuple(v for k, v in r._mapping.items()
                                if not k.upper().endswith("AUDIT_KEY")) for r in rows)

        assert strip(_q(im_url, irf_rows)) == strip(_q(plain, irf_rows))
        assert not _q(plain, """SELECT COUNT(*) FROM IRF_USER_DATA_CUST_1 u
            JOIN MEDIATION_SEGMENT_FACT m ON m.MEDIATION_SEGMENT_ID = u.INTERACTION_RESOURCE_ID
            """)[0][0]


def test_short_conferences_end_as_transfers_under_the_threshold(cli, tmp_path, center, db_kind):
    """introduced-transfer-threshold: the part of an agent who left a conference less than
    that many seconds after the other agent joined (who stayed on) ends Transferred; every
    other fact is that of an Info Mart without the option."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **{**SIM, "media": ("voice",), "outbound": False,
                                              "calls_per_day": 400})
    threshold = 40
    # When each initiator left its conference, and how long after the other agent joined.
    left_after = {}
    for callid, agent, end, joined in _q(idb_url, """
            SELECT i.CALLID, i.AGENTID, i.TERMINATED_TS, MAX(m.CREATED_TS)
            FROM G_PARTY i JOIN G_PARTY m ON m.CALLID = i.CALLID AND m.PROLE = 3
                 AND m.AGENTID IS NOT NULL AND m.AGENTID <> i.AGENTID
                 AND m.CREATED_TS <= i.TERMINATED_TS
                 AND (m.TERMINATED_TS IS NULL OR m.TERMINATED_TS > i.TERMINATED_TS)
            WHERE i.AGENTID IS NOT NULL AND i.CCEVENTCAUSE = 2 AND i.PROLE <> 3
            GROUP BY i.CALLID, i.AGENTID, i.TERMINATED_TS"""):
        left_after[(callid, agent, end)] = end - joined
    short = {k for k, v in left_after.items() if v < threshold}
    assert short and len(short) < len(left_after)

    def results(url):
        return {(r[0], r[1], r[2]): r[3] for r in _q(url, """
            SELECT i.MEDIA_SERVER_IXN_GUID, x.RESOURCE_CFG_DBID, r.END_TS,
                   t.TECHNICAL_RESULT FROM INTERACTION_RESOURCE_FACT r
            JOIN INTERACTION_FACT i ON i.INTERACTION_ID = r.INTERACTION_ID
            JOIN RESOURCE_ x ON x.RESOURCE_KEY = r.RESOURCE_KEY
            JOIN TECHNICAL_DESCRIPTOR t
                 ON t.TECHNICAL_DESCRIPTOR_KEY = r.TECHNICAL_DESCRIPTOR_KEY""")}

    _cycle(cli, _config(tmp_path, im_url, idb_url,
                        f"\n[gim-transformation]\nintroduced-transfer-threshold = {threshold}\n"))
    with new_database(db_kind, tmp_path, "plain") as plain:
        (tmp_path / "p").mkdir()
        _cycle(cli, _config(tmp_path / "p", plain, idb_url))
        before, after = results(plain), results(im_url)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == short
    assert {before[k] for k in changed} == {"Conferenced"}
    assert {after[k] for k in changed} == {"Transferred"}
    assert before.keys() == after.keys()
    assert "Conferenced" in {after[k] for k in left_after.keys() - short}


def test_stop_queue_ends_the_interaction_there(cli, tmp_path, center, db_kind):
    """stop-ixn-queues: an agent placing an e-mail in a stop queue ends the interaction
    then: the agent's part is completed, nothing after it (the stop queue's stay, the
    reply, a later agent) makes facts, the interaction is no longer active; interactions
    never placed there are those of an Info Mart without the option."""
    idb_url, im_url = center
    simulate(idb_url, start=START, days=1, **SIM)
    engine = _engine(idb_url)
    with engine.begin() as conn:
        from gim.schema.idb import idb_metadata

        script, party = idb_metadata.tables["GC_SCRIPT"], idb_metadata.tables["G_PARTY"]
        model = dict(conn.execute(sa.select(script).where(script.c.ID == 702))
                     .mappings().one())
        conn.execute(script.insert(), {**model, "ID": 799, "NAME": "Email_Done",
                                       "GSYS_SEQ": 90001, "GSYS_USEQ": 90001})
        # Three inbound e-mails an agent handled: at the end of the agent's part, into the
        # stop queue.
        placed = conn.execute(sa.text("""SELECT p.CALLID, p.ID, p.TERMINATED_TS, c.ROOTIRID
            FROM G_PARTY p JOIN G_CALL c ON c.CALLID = p.CALLID
            WHERE c.MEDIANAME = 'email' AND c.CALLTYPE = 2 AND p.AGENTID IS NOT NULL
              AND p.TERMINATED_TS IS NOT NULL ORDER BY p.CALLID LIMIT 3""")).all()
        assert len(placed) == 3
        top = conn.execute(sa.select(sa.func.max(party.c.ID))).scalar()

        def when(ts):
            return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)

        for n, (_, agent_party, ts, _) in enumerate(placed, start=1):
            row = dict(conn.execute(sa.select(party).where(party.c.ID == agent_party))
                       .mappings().one())
            conn.execute(party.insert(), {
                **row, "ID": top + n, "PARTYID": f"STOP{n:028d}", "PARTYGUID": f"STOP{n:028d}",
                "TYPE": 4, "PROLE": 2, "ENDPOINTID": 799, "ENDPOINTDN": "Email_Done",
                "AGENTID": None, "PLACEID": None, "CCEVENT": 9, "CCEVENTCAUSE": 0,
                "STATE": 9, "PREVSTATE": 0, "CREATED_TS": ts, "CREATED": when(ts),
                "TERMINATED_TS": None, "TERMINATED": None, "LASTCHANGE_TS": ts,
                "LASTCHANGE": when(ts), "GSYS_SEQ": 90000 + n, "GSYS_USEQ": 90000 + n,
                "GSYS_TS": when(ts)})
    engine.dispose()
    roots = {root for *_, root in placed}
    facts = ("""SELECT i.MEDIA_SERVER_ROOT_IXN_GUID, i.START_TS, i.END_TS, i.ACTIVE_FLAG,
                       i.STATUS FROM INTERACTION_FACT i""",
             """SELECT i.MEDIA_SERVER_ROOT_IXN_GUID, r.START_TS, r.END_TS, t.TECHNICAL_RESULT,
                       t.RESULT_REASON, t.RESOURCE_ROLE, r.TALK_DURATION
                FROM INTERACTION_RESOURCE_FACT r
                JOIN INTERACTION_FACT i ON i.INTERACTION_ID = r.INTERACTION_ID
                JOIN TECHNICAL_DESCRIPTOR t
                     ON t.TECHNICAL_DESCRIPTOR_KEY = r.TECHNICAL_DESCRIPTOR_KEY""",
             """SELECT i.MEDIA_SERVER_ROOT_IXN_GUID, m.START_TS, m.END_TS
                FROM MEDIATION_SEGMENT_FACT m
                JOIN INTERACTION_FACT i ON i.INTERACTION_ID = m.INTERACTION_ID""")
    summary = _cycle(cli, _config(tmp_path, im_url, idb_url,
                                  '\n[gim-transformation]\nstop-ixn-queues = ["Email_Done"]\n'))
    assert summary["counts"]["interactions ended in a stop queue (stop-ixn-queues)"] == 3
    with new_database(db_kind, tmp_path, "plain") as plain:
        (tmp_path / "p").mkdir()
        _cycle(cli, _config(tmp_path / "p", plain, idb_url))
        for sql in facts:
            stopped, free = _q(im_url, sql), _q(plain, sql)
            assert sorted(r for r in stopped if r[0] not in roots) == \
                sorted(r for r in free if r[0] not in roots)
    for _, _, ts, root in placed:
        (start, end, active, _), = [r[1:] for r in _q(im_url, facts[0]) if r[0] == root]
        assert (end, active) == (ts, 0) and start < ts
        parts = [r[1:] for r in _q(im_url, facts[1]) if r[0] == root]
        assert parts and all(p[1] is not None and p[1] <= ts for p in parts), parts
        # The part that placed it; a reply the agent began in the same second (recorded
        # before the stop) stays, cut at the stop, with its own result.
        assert [p[2:4] for p in parts if p[1] == ts and p[0] < ts] == \
            [("Completed", "Unspecified")]
        assert all(m[1] < ts for m in _q(im_url, facts[2]) if m[0] == root)
