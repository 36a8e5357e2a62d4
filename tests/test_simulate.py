"""The simulator: deterministic, continuable, ICON-consistent except for the faults it
injects (each named by the ledger), and a ledger that adds up."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib

import pytest
import sqlalchemy as sa
from conftest import invoke, new_database

from gim.schema.idb import idb_metadata
from gim.simulate import simulate
from gim.simulate.ledger import ledger_metadata

START = dt.date(2026, 10, 5)
KW = dict(calls_per_day=150, agents=15, seed=11, media=("voice", "chat", "email"),
          outbound=True, faults=0.05)


def _norm(value):
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, decimal.Decimal):
        return int(value)
    return value


def digest(url: str) -> dict[str, tuple[int, str]]:
    """Per table: row count and a digest of its sorted, normalized rows."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    out = {}
    try:
        with engine.connect() as conn:
            for table in [*idb_metadata.sorted_tables, *ledger_metadata.sorted_tables]:
                rows = sorted(repr(tuple(_norm(v) for v in r))
                              for r in conn.execute(sa.select(table)))
                out[table.name] = (len(rows), hashlib.md5("\n".join(rows).encode()).hexdigest())
    finally:
        engine.dispose()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Two simulated days on SQLite: the content every other run is compared with."""
    path = tmp_path_factory.mktemp("ref")
    url = f"sqlite:///{path / 'idb.db'}"
    simulate(url, start=START, days=2, **KW)
    return url, digest(url)


def test_same_seed_same_content_on_both_databases(db_kind, tmp_path, reference):
    with new_database(db_kind, tmp_path, "idb") as url:
        simulate(url, start=START, days=2, **KW)
        assert digest(url) == reference[1]


def test_continued_idb_equals_one_run(db_kind, tmp_path, reference):
    with new_database(db_kind, tmp_path, "idb") as url:
        simulate(url, start=START, days=1, **KW)
        first = digest(url)
        result = simulate(url, days=1, resume=True)
        assert result.previous_end == result.start + 86400
        assert digest(url) == reference[1]
        assert first["G_CALL"][0] < reference[1]["G_CALL"][0]


def test_other_seed_other_content(tmp_path, reference):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    simulate(url, start=START, days=2, **{**KW, "seed": 12})
    assert digest(url)["G_CALL"] != reference[1]["G_CALL"]


def _q(conn, sql):
    return conn.execute(sa.text(sql)).all()


def test_ledger_adds_up(reference):
    engine = sa.create_engine(reference[0])
    with engine.connect() as conn:
        # An agent's states cover exactly its login time, per media.
        assert _q(conn, """SELECT AGENT_ID, MEDIA FROM SIM_AGENT_INTERVAL GROUP BY 1, 2
                           HAVING SUM(LOGIN_S) <> SUM(READY_S + NOT_READY_S + BUSY_S + ACW_S)
                        """) == []
        # No interval holds more than 15 minutes of login.
        assert _q(conn, "SELECT * FROM SIM_AGENT_INTERVAL WHERE LOGIN_S > 900") == []
        # Reason time is part of not-ready time.
        assert _q(conn, """SELECT r.AGENT_ID FROM SIM_AGENT_REASON_INTERVAL r
                           JOIN SIM_AGENT_INTERVAL a USING (AGENT_ID, MEDIA, INTERVAL_KEY)
                           GROUP BY r.AGENT_ID, r.MEDIA, r.INTERVAL_KEY, a.NOT_READY_S
                           HAVING SUM(r.NOT_READY_S) > a.NOT_READY_S""") == []
        # Every handled interaction has exactly one handling agent, who accepted it.
        assert _q(conn, """SELECT CALLID FROM SIM_INTERACTION WHERE OUTCOME = 'handled'
                           AND (HANDLING_AGENT_ID IS NULL OR AGENTS < 1)""") == []
        assert _q(conn, """SELECT i.CALLID FROM SIM_INTERACTION i WHERE i.HANDLING_AGENT_ID
                           IS NOT NULL AND NOT EXISTS (SELECT 1 FROM SIM_PARTICIPATION p
                           WHERE p.CALLID = i.CALLID AND p.RESOURCE_KIND = 'AGENT'
                           AND p.RESOURCE_ID = i.HANDLING_AGENT_ID)""") == []
        # Interaction totals are the sums of their participants'.
        assert _q(conn, """SELECT i.CALLID FROM SIM_INTERACTION i JOIN SIM_PARTICIPATION p
                           ON p.CALLID = i.CALLID AND p.RESOURCE_KIND = 'AGENT'
                           GROUP BY i.CALLID, i.TALK_S, i.HOLD_S, i.RING_S
                           HAVING SUM(p.TALK_S) <> i.TALK_S OR SUM(p.HOLD_S) <> i.HOLD_S
                           OR SUM(p.RING_S) <> i.RING_S""") == []
        # Offers accepted by agents match handled interactions' participants.
        accepted = conn.execute(sa.text(
            "SELECT SUM(ACCEPTED) FROM SIM_AGENT_INTERVAL")).scalar()
        assert accepted > 100
        # Queues: what entered left by one way or another (or is still waiting).
        for entered, left in _q(conn, """SELECT SUM(ENTERED), SUM(ABANDONED + DISTRIBUTED
                                         + CLEARED) FROM SIM_QUEUE_INTERVAL"""):
            assert 0 <= entered - left <= 50
        outcomes = dict(_q(conn, "SELECT OUTCOME, COUNT(*) FROM SIM_INTERACTION GROUP BY 1"))
        for outcome in ("handled", "abandoned_queue", "short_abandon", "no_answer", "busy"):
            assert outcomes.get(outcome, 0) > 0, outcome
        media = {m for (m,) in _q(conn, "SELECT DISTINCT MEDIA FROM SIM_INTERACTION")}
        assert media == {"voice", "chat", "email"}
        assert conn.execute(sa.text("SELECT SUM(TRANSFERS), SUM(CONFERENCES) FROM "
                                    "SIM_INTERACTION")).one() > (0, 0)
    engine.dispose()


# Reference checks of the IDB: (description, query returning offending rows' ids, the fault
# kind allowed to explain them).
INTEGRITY = [
    ("party of a call that does not exist",
     "SELECT p.ID FROM G_PARTY p LEFT JOIN G_CALL c ON c.CALLID = p.CALLID "
     "WHERE c.ID IS NULL", "orphan_party"),
    ("party naming an unknown agent",
     "SELECT p.ID FROM G_PARTY p WHERE p.AGENTID IS NOT NULL AND p.AGENTID NOT IN "
     "(SELECT ID FROM GC_AGENT)", "unknown_config"),
    ("voice party on an unknown DN",
     "SELECT p.ID FROM G_PARTY p WHERE p.TYPE = 1 AND p.ENDPOINTID NOT IN "
     "(SELECT ID FROM GC_ENDPOINT)", None),
    ("call ending before it starts",
     "SELECT ID FROM G_CALL WHERE TERMINATED_TS < CREATED_TS OR CREATED_TS IS NULL",
     "bad_timestamp"),
    ("two rows for one call",
     "SELECT ID FROM G_CALL WHERE CALLID IN (SELECT CALLID FROM G_CALL GROUP BY CALLID "
     "HAVING COUNT(*) > 1) AND ID > 9000000000000", "duplicate_row"),
    ("call active with every party ended",
     "SELECT c.ID FROM G_CALL c WHERE c.STATE = 1 AND NOT EXISTS (SELECT 1 FROM G_PARTY p "
     "WHERE p.CALLID = c.CALLID AND p.TERMINATED_TS IS NULL)", "never_terminated"),
    ("user data of an unknown call",
     "SELECT u.ID FROM G_USERDATA_HISTORY u WHERE u.CALLID NOT IN (SELECT CALLID FROM G_CALL)",
     None),
    ("state of an unknown login session",
     "SELECT s.ID FROM G_AGENT_STATE_HISTORY s WHERE s.LOGINSESSIONID NOT IN "
     "(SELECT LOGINSESSIONID FROM G_LOGIN_SESSION)", None),
    ("reason code of an unknown session",
     "SELECT r.ID FROM G_AGENT_STATE_RC r WHERE r.SESSIONID NOT IN "
     "(SELECT LOGINSESSIONID FROM G_LOGIN_SESSION)", None),
    ("chain call of an unknown call or chain",
     "SELECT x.ID FROM GOX_CHAIN_CALL x WHERE x.CALLID NOT IN (SELECT CALLID FROM G_CALL) "
     "OR x.CHAINGUID NOT IN (SELECT CHAINGUID FROM GO_CHAIN)", None),
    ("chain of an unknown campaign session",
     "SELECT ID FROM GO_CHAIN WHERE SESSID NOT IN (SELECT SESSID FROM GO_CAMPAIGN)", None),
    ("group membership of an unknown agent or group",
     "SELECT ID FROM GCX_GROUP_AGENT WHERE AGENTID NOT IN (SELECT ID FROM GC_AGENT) OR "
     "GROUPID NOT IN (SELECT ID FROM GC_GROUP)", None),
    ("agent of an unknown place",
     "SELECT ID FROM GC_AGENT WHERE PLACEID NOT IN (SELECT ID FROM GC_PLACE)", None),
    ("rows of an unknown data-source session",
     "SELECT ID FROM G_CALL WHERE GSYS_DOMAIN NOT IN (SELECT DSS_ID FROM G_DSS_GCC_PROVIDER)",
     None),
    ("agent states of an unknown data-source session",
     "SELECT ID FROM G_AGENT_STATE_HISTORY WHERE GSYS_DOMAIN NOT IN "
     "(SELECT DSS_ID FROM G_DSS_GLS_PROVIDER)", None),
    ("outbound rows of an unknown data-source session",
     "SELECT ID FROM GO_CHAIN WHERE GSYS_DOMAIN NOT IN (SELECT DSS_ID FROM G_DSS_GOS_PROVIDER)",
     None),
]


def test_idb_is_consistent_except_the_named_faults(reference):
    engine = sa.create_engine(reference[0])
    with engine.connect() as conn:
        faults = {}
        for kind, table, row_id in _q(conn, "SELECT KIND, TABLE_NAME, ROW_ID FROM SIM_FAULT"):
            faults.setdefault(kind, set()).add((table, row_id))
        assert set(faults) == {"orphan_party", "unknown_config", "bad_timestamp",
                               "duplicate_row", "never_terminated", "garbage_string"}
        explained = set()
        for text, sql, kind in INTEGRITY:
            bad = {r[0] for r in _q(conn, sql)}
            allowed = {rid for _, rid in faults.get(kind, ())} if kind else set()
            assert bad <= allowed, f"{text}: {sorted(bad - allowed)[:5]}"
            if kind:
                explained |= {(kind, rid) for rid in bad}
        # Each named fault is really in the IDB.
        for kind in ("orphan_party", "unknown_config", "duplicate_row"):
            assert {(kind, rid) for _, rid in faults[kind]} <= explained, kind
        garbage = [v for (v,) in _q(conn, "SELECT VALUE FROM G_USERDATA_HISTORY WHERE ID IN "
                                         "(SELECT ROW_ID FROM SIM_FAULT WHERE KIND = "
                                         "'garbage_string')")]
        assert garbage and all("\x1b" in v for v in garbage)
        # Keys: IDs unique per table (the primary keys), CALLIDs unique but for duplicates.
        dup_calls = _q(conn, "SELECT CALLID FROM G_CALL GROUP BY CALLID HAVING COUNT(*) > 1")
        assert len(dup_calls) == len(faults["duplicate_row"])
    engine.dispose()


def test_cli_simulate_and_errors(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'idb.db'}"
    args = ["simulate", "--idb", url, "--start", "2026-10-01", "--calls-per-day", "50",
            "--agents", "6", "--json"]
    result = invoke(cli, *args)
    assert result.exit_code == 0, result.output
    assert '"rows":' in result.stdout
    again = invoke(cli, *args)
    assert again.exit_code == 2 and "already holds a simulation" in again.stderr
    assert invoke(cli, "simulate", "--idb", url, "--continue", "--days", "1").exit_code == 0
    bad = invoke(cli, "simulate", "--idb", f"sqlite:///{tmp_path / 'x.db'}", "--start",
                 "2026-10-01", "--media", "voice,fax")
    assert bad.exit_code == 2 and "fax" in bad.stderr
    none = invoke(cli, "simulate", "--idb", f"sqlite:///{tmp_path / 'y.db'}", "--continue")
    assert none.exit_code == 2 and "no simulation to continue" in none.stderr
    created = invoke(cli, "idb", "create", "--url", f"sqlite:///{tmp_path / 'z.db'}")
    assert created.exit_code == 0 and created.stdout.startswith(f"{len(idb_metadata.tables)} ")


def test_demo(cli, tmp_path):
    result = invoke(cli, "demo", "--dir", str(tmp_path / "demo"), "--days", "1",
                    "--calls-per-day", "60")
    assert result.exit_code == 0, result.output
    assert "gim init" in result.stdout and "gim status -c" in result.stdout
    for name in ("idb.db", "infomart.db", "gim.toml", "gim.log"):
        assert (tmp_path / "demo" / name).exists(), name
    again = invoke(cli, "demo", "--dir", str(tmp_path / "demo"))
    assert again.exit_code == 0 and "reusing the simulated IDB" in again.stdout
