"""Extraction on SQLite and PostgreSQL, judged against the simulated IDBs it reads: exactly
the extractable rows, nothing twice, nothing lost when killed, HA pairs, late rows, faults."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import json
import random
import shutil
import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa
from conftest import Watch, invoke, new_database, pg_clone, run_gim, spawn_gim, write_config

from gim.config import load_config
from gim.jobs import extract as extract_job
from gim.runner import JobSpec, run_job
from gim.schema.gidb import COPIES
from gim.schema.idb import idb_metadata
from gim.simulate import simulate

START = dt.date(2026, 10, 5)
SIM = dict(calls_per_day=120, agents=12, seed=5, media=("voice", "chat", "email"),
           outbound=True, faults=0.03)
LAG = 120
STUCK = 28860
AUDIT = ("CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY")
# Which IDB of an HA set served a row: the only column allowed to differ from one complete IDB.
SERVED_BY = ("DAP_KEY", *AUDIT)
ROLES = ("ICON_CFG", "ICON_CORE", "ICON_OCS", "ICON_MM")
DS_TYPE = {"ICON_CFG": 4, "ICON_CORE": 1, "ICON_MM": 2, "ICON_OCS": 3}
DOWN = "postgresql://u:pw@127.0.0.1:1/idb"


def _engine(url):
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _norm(v):
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, decimal.Decimal):
        return int(v)
    return v


def _row(r) -> tuple:
    return tuple(_norm(v) for v in r)


def _digest(rows) -> tuple[int, str]:
    text = sorted(repr(_row(r)) for r in rows)
    return len(text), hashlib.md5("\n".join(text).encode()).hexdigest()


def gidb_content(url: str, drop=AUDIT) -> dict[str, tuple[int, str]]:
    """Every GIDB table's rows (count and checksum), without the columns in `drop`."""
    engine = _engine(url)
    out = {}
    with engine.connect() as conn:
        for copy in COPIES:
            cols = [c for c in copy.target.columns if c.name not in drop]
            out[copy.target.name] = _digest(conn.execute(sa.select(*cols)))
    engine.dispose()
    return out


def _query(url: str, sql: str, **params):
    engine = _engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).all()
    engine.dispose()
    return rows


def marks(url: str) -> dict[str, int]:
    return dict(_query(url, "SELECT TABLE_NAME, MARK_TS FROM CTL_EXTRACT_HWM"))


def _provider(copy) -> str:
    name = copy.source.name
    if copy.role == "ICON_CFG":
        return "G_DSS_CFG_PROVIDER"
    if copy.role == "ICON_OCS":
        return "G_DSS_GOS_PROVIDER"
    if name in ("G_LOGIN_SESSION", "GX_SESSION_ENDPOINT", "G_AGENT_STATE_HISTORY",
                "G_AGENT_STATE_RC", "G_DND_HISTORY"):
        return "G_DSS_GLS_PROVIDER"
    if name in ("G_USERDATA_HISTORY", "G_SECURE_USERDATA_HISTORY", "G_CALL_USERDATA") or \
            name.startswith("GM_"):
        return "G_DSS_GUD_PROVIDER"
    return "G_DSS_GCC_PROVIDER"


def assert_gidb_matches_idb(idb_url: str, infomart_url: str, floor: int,
                            stuck: int = STUCK) -> None:
    """The GIDB tables hold exactly the IDB rows of each table's role below its mark (voice
    calls: terminated or stuck), as the IDB holds them now, compared as multisets of whole
    rows; besides, a row ICON changed after the mark may still be there in the version
    extracted before (one version per IDB row), and nothing else."""
    m = marks(infomart_url)
    idb, im = _engine(idb_url), _engine(infomart_url)
    with idb.connect() as src, im.connect() as dst:
        newest = max(src.execute(sa.select(sa.func.max(c.source.c[c.time_column]))).scalar()
                     or 0 for c in COPIES if c.time_column)
        keys = set()
        for copy in COPIES:
            s = copy.source.c
            query = sa.select(*(s[c] for c in copy.columns))
            if "GSYS_DOMAIN" in s:
                domains = [d for (d,) in src.execute(sa.text(
                    f"SELECT DSS_ID FROM {_provider(copy)} WHERE DS_TYPE = "
                    f"{DS_TYPE[copy.role]}"))]
                query = query.where(s.GSYS_DOMAIN.in_(domains))
            pk = [copy.columns.index(c.name) for c in copy.source.primary_key.columns]
            mark = m.get(copy.target.name)

            def extractable(r, mark=mark, copy=copy):
                if not copy.time_column:
                    return True
                t = r._mapping[copy.time_column]
                low = 0 if copy.role == "ICON_CFG" else floor
                ok = mark is not None and t is not None and low <= t < mark
                if copy.completed_only:
                    ok = ok and (r._mapping["STATE"] == 2 or
                                 r._mapping["CREATED_TS"] < newest - stuck)
                return ok

            rows = src.execute(query).all()
            now_by_key = {tuple(_row(r)[i] for i in pk): r for r in rows}
            expected = Counter(_row(r) for r in rows if extractable(r))
            got = Counter(_row(r) for r in dst.execute(
                sa.select(*(copy.target.c[c] for c in copy.columns))))
            name = copy.target.name
            assert not expected - got, (name, sorted(expected - got)[:3])
            extra = got - expected
            assert all(n == 1 for n in extra.values()), (name, extra)
            for row in extra:
                # an older version of a row that changed after the mark: not the row as it
                # is now (that one is not extractable yet, so it must not be there)
                key = tuple(row[i] for i in pk)
                assert key in now_by_key and not extractable(now_by_key[key]), (name, row)
                assert _row(now_by_key[key]) != row, (name, row)
            keys |= {k for (k,) in dst.execute(sa.select(copy.target.c.DATA_SOURCE_KEY)
                                                .distinct())}
    idb.dispose()
    im.dispose()
    assert len(keys) == 1  # one source, one DATA_SOURCE_KEY


def _floor() -> int:
    return int(dt.datetime.combine(START, dt.time(), dt.UTC).timestamp())


def _config(tmp_path, infomart_url, daps, extra="extract-data-chunk-size = 21600\n"):
    """daps: (name, url, ha-set) or (name, url, ha-set, roles)."""
    # A short calendar ahead keeps initialization quick.
    text = (f'[date-time]\ndate-time-max-days-ahead = 20\ndate-time-min-days-ahead = 10\n\n'
            f'[gim-etl]\netl-start-date = "{START}"\npartitioning-interval-size-gim = 604800\n'
            f'{extra}\n')
    for name, url, ha, *roles in daps:
        roles = roles[0] if roles else ROLES
        text += (f'\n[[dap]]\nname = "{name}"\nurl = "{url}"\n'
                 f'roles = [{", ".join(json.dumps(r) for r in roles)}]\n')
        if ha:
            text += f'ha-set = "{ha}"\n'
    return write_config(tmp_path, infomart_url, text)


def _extract(cli, path, *extra):
    result = invoke(cli, "extract", "--role", "all", "-c", str(path), "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def idb_and_infomart(db_kind, tmp_path):
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "infomart") as im_url:
        simulate(idb_url, start=START, days=1, **SIM)
        yield idb_url, im_url


def test_extraction_holds_exactly_the_extractable_rows(cli, tmp_path, idb_and_infomart):
    idb_url, im_url = idb_and_infomart
    path = _config(tmp_path, im_url, [("site", idb_url, None)])
    first = _extract(cli, path)
    assert first["status"] == "COMPLETE"
    # A small IDB (no statistics say otherwise) is loaded with its GIDB indexes in place.
    assert "GIDB tables indexed after their first load" not in first["counts"]
    assert_gidb_matches_idb(idb_url, im_url, _floor())
    content = gidb_content(im_url)
    # Something of every role arrived, faults included.
    for table in ("GIDB_GC_AGENT", "GIDB_G_CALL_V", "GIDB_G_PARTY_V", "GIDB_G_CALL_MM",
                  "GIDB_G_AGENT_STATE_HISTORY_V", "GIDB_GO_CHAIN", "GIDB_G_USERDATA_HISTORY_V",
                  "GIDB_G_DICTIONARY"):
        assert content[table][0] > 0, table
    # Marks stop the safety lag behind the newest source time.
    newest = max(v for v in marks(im_url).values())
    engine = _engine(idb_url)
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT MAX(LASTCHANGE_TS) FROM G_LOGIN_SESSION")).scalar()
        assert newest <= last - LAG + 1 or newest <= 86400 + _floor()
        orphan = conn.execute(sa.text("SELECT COUNT(*) FROM G_PARTY WHERE CALLID LIKE "
                                      "'MISSING%'")).scalar()
    engine.dispose()
    assert orphan > 0
    im = _engine(im_url)
    with im.connect() as conn:
        # Faulty rows are loaded as they are: the transformation judges them.
        assert conn.execute(sa.text("SELECT COUNT(*) FROM GIDB_G_PARTY_V WHERE CALLID LIKE "
                                    "'MISSING%'")).scalar() > 0
        # Every chunk that loaded rows has its audit row and history row.
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM GIDB_G_CALL_V g LEFT JOIN CTL_AUDIT_LOG a ON a.AUDIT_KEY = "
            "g.CREATE_AUDIT_KEY WHERE a.AUDIT_KEY IS NULL")).scalar() == 0
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM CTL_EXTRACT_HISTORY h WHERE NOT EXISTS (SELECT 1 FROM "
            "CTL_AUDIT_LOG a WHERE a.AUDIT_KEY = h.CREATE_AUDIT_KEY)")).scalar() == 0
        bad = conn.execute(sa.text(
            "SELECT COUNT(*) FROM GIDB_G_CALL_V WHERE START_DATE_TIME_KEY <> "
            "(CREATED_TS / 900) * 900")).scalar()
        assert bad == 0
        # Each chunk's audit row has the count and START_DATE_TIME_KEY range of its rows.
        for table in ("GIDB_G_PARTY_V", "GIDB_G_PARTY_HISTORY_V", "GIDB_G_CALL_MM",
                      "GIDB_GO_CHAIN"):
            chunks = conn.execute(sa.text(
                f"SELECT a.AUDIT_KEY, a.ROW_COUNT, a.MIN_START_DATE_TIME_KEY, "
                f"a.MAX_START_DATE_TIME_KEY, COUNT(*), MIN(g.START_DATE_TIME_KEY), "
                f"MAX(g.START_DATE_TIME_KEY) FROM CTL_AUDIT_LOG a JOIN {table} g ON "
                f"g.UPDATE_AUDIT_KEY = a.AUDIT_KEY GROUP BY a.AUDIT_KEY, a.ROW_COUNT, "
                f"a.MIN_START_DATE_TIME_KEY, a.MAX_START_DATE_TIME_KEY")).all()
            assert chunks, table
            assert all(r[1:4] == r[4:7] for r in chunks), (table, chunks)
        # The source has one DATA_SOURCE_KEY, the DAP one DAP_KEY; both are recorded.
        assert conn.execute(sa.text(
            "SELECT SOURCE_NAME, DAP_NAMES FROM CTL_DS")).all() == [("site", "site")]
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM GIDB_G_CALL_V g JOIN CTL_DS d ON d.DATA_SOURCE_KEY = "
            "g.DATA_SOURCE_KEY JOIN CTL_DAP p ON p.DAP_KEY = g.DAP_KEY AND p.DAP_NAME = "
            "'site'")).scalar() == content["GIDB_G_CALL_V"][0]
    im.dispose()

    # A second run finds nothing new and changes nothing.
    before = gidb_content(im_url, drop=())
    again = _extract(cli, path)
    assert not any(k.endswith(" rows") for k in again["counts"])
    assert gidb_content(im_url, drop=()) == before

    # The IDB goes on for a day: the next run adds exactly the new rows.
    simulate(idb_url, days=1, resume=True)
    _extract(cli, path)
    assert_gidb_matches_idb(idb_url, im_url, _floor())


def test_dictionary_changes_reach_the_gidb(cli, tmp_path, idb_and_infomart):
    idb_url, im_url = idb_and_infomart
    path = _config(tmp_path, im_url, [("site", idb_url, None)])
    _extract(cli, path)
    (kept_type, kept_id, kept_audit), = _query(
        im_url, "SELECT DICT_TYPE, ID, UPDATE_AUDIT_KEY FROM GIDB_G_DICTIONARY WHERE "
        "DICT_TYPE = (SELECT MAX(DICT_TYPE) FROM GIDB_G_DICTIONARY) AND ID = (SELECT MAX(ID) "
        "FROM GIDB_G_DICTIONARY g WHERE g.DICT_TYPE = GIDB_G_DICTIONARY.DICT_TYPE)")
    engine = _engine(idb_url)
    with engine.begin() as conn:
        first = conn.execute(sa.text("SELECT MIN(DICT_TYPE) FROM G_DICTIONARY")).scalar()
        changed = conn.execute(sa.text(
            "UPDATE G_DICTIONARY SET NAME = 'RENAMED', DESCRIPTION = 'now described' "
            "WHERE DICT_TYPE = :t"), {"t": first}).rowcount
        conn.execute(sa.text("DELETE FROM G_DICTIONARY WHERE DICT_TYPE = :t AND ID = (SELECT "
                             "MIN(ID) FROM G_DICTIONARY WHERE DICT_TYPE = :t)"), {"t": first})
        conn.execute(sa.text("INSERT INTO G_DICTIONARY (DICT_TYPE, ID, NAME) VALUES "
                             "(:t, 9999, 'ADDED')"), {"t": first})
        conn.execute(sa.text("INSERT INTO G_DICTIONARY (DICT_TYPE, ID, NAME) VALUES "
                             "(:t, 9998, 'ADDED')"), {"t": first})
    engine.dispose()
    assert changed > 1
    result = _extract(cli, path)
    assert result["counts"]["GIDB_G_DICTIONARY rows"] == changed + 1  # changed-1, +2 added
    assert result["counts"]["GIDB_G_DICTIONARY rows removed"] == changed
    assert_gidb_matches_idb(idb_url, im_url, _floor())
    # rows that did not change keep the transaction that loaded them
    assert _query(im_url, "SELECT UPDATE_AUDIT_KEY FROM GIDB_G_DICTIONARY WHERE DICT_TYPE = "
                  ":t AND ID = :i", t=kept_type, i=kept_id) == [(kept_audit,)]


def test_idb_indexes_are_created_by_init_and_extract(cli, tmp_path, idb_and_infomart):
    from gim.schema.idb import extraction_indexes

    idb_url, im_url = idb_and_infomart
    path = _config(tmp_path, im_url, [("site", idb_url, None)])

    def count():
        engine = _engine(idb_url)
        with engine.connect() as conn:
            names = set()
            for t in {i.table for i in extraction_indexes()}:
                name = t.lower() if "postgresql" in idb_url else t
                names |= {i["name"] for i in sa.inspect(conn).get_indexes(name)}
        engine.dispose()
        return len({i.name for i in extraction_indexes()} & names)

    assert count() == 0
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    assert count() == len(extraction_indexes())
    engine = _engine(idb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX gim_ix_g_call_state")
    engine.dispose()
    result = _extract(cli, path)
    assert result["counts"]["IDB indexes created"] == 1
    assert count() == len(extraction_indexes())


def _add_state_row(idb_url: str, row_id: int, ts: int) -> None:
    engine = _engine(idb_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO G_AGENT_STATE_HISTORY (ID, TYPE, STATE, SEQ, LOGINSESSIONID, ADDED, "
            "ADDED_TS, GSYS_DOMAIN) SELECT :id, 5, 3, 99, LOGINSESSIONID, ADDED, :ts, "
            "GSYS_DOMAIN FROM G_AGENT_STATE_HISTORY WHERE ID = 1"), {"id": row_id, "ts": ts})
    engine.dispose()


def test_late_committed_rows_are_kept_by_the_lag(cli, tmp_path, db_kind):
    """A row stamped just below the IDB's newest time but committed after an extraction
    ran is picked up by the next one thanks to the safety lag; without the lag (the
    control, on the same IDB) the mark had passed it and it is lost."""
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "imlag") as im_lag, \
            new_database(db_kind, tmp_path, "imnolag") as im_nolag:
        simulate(idb_url, start=START, days=1, **SIM)
        (tmp_path / "lag").mkdir()
        (tmp_path / "nolag").mkdir()
        with_lag = _config(tmp_path / "lag", im_lag, [("site", idb_url, None)],
                           f"extract-data-safety-lag = {LAG}\n")
        no_lag = _config(tmp_path / "nolag", im_nolag, [("site", idb_url, None)],
                         "extract-data-safety-lag = 0\n")
        _extract(cli, with_lag)
        _extract(cli, no_lag)
        table = "GIDB_G_AGENT_STATE_HISTORY_V"
        newest = marks(im_nolag)[table]  # no lag: the mark is the IDB's newest time
        assert marks(im_lag)[table] == newest - LAG
        late = newest - 1  # older than the lagless mark, within the lag
        _add_state_row(idb_url, 999_999_999, late)
        _extract(cli, with_lag)  # nothing newer yet: the mark stays, the row waits
        assert marks(im_lag)[table] == newest - LAG
        simulate(idb_url, days=1, resume=True)
        _extract(cli, with_lag)
        _extract(cli, no_lag)
        assert marks(im_lag)[table] > late and marks(im_nolag)[table] > late
        sql = f"SELECT COUNT(*) FROM {table} WHERE ID = 999999999"
        assert _query(im_lag, sql) == [(1,)]
        assert _query(im_nolag, sql) == [(0,)]


def _add_active_call(idb_url: str, ts: int) -> None:
    """A voice call that started at `ts` and is still active."""
    g = idb_metadata.tables["G_CALL"]
    engine = _engine(idb_url)
    with engine.begin() as conn:
        row = dict(conn.execute(sa.select(g).where(g.c.GSYS_DOMAIN == 1, g.c.STATE == 2)
                                .limit(1)).mappings().one())
        when = dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)
        row.update(ID=999_999_999, CALLID="STUCK-CALL", IRID="STUCK-IR", ROOTIRID="STUCK-IR",
                   STATE=1, CREATED=when, CREATED_TS=ts, TERMINATED=None, TERMINATED_TS=None,
                   LASTCHANGE=when, LASTCHANGE_TS=ts)
        conn.execute(g.insert().values(row))
    engine.dispose()


def test_stuck_threshold_holds_young_active_calls_back_and_lets_stuck_ones_go(
        cli, tmp_path, idb_and_infomart):
    idb_url, im_url = idb_and_infomart
    stuck = 3600
    path = _config(tmp_path, im_url, [("site", idb_url, None, ["ICON_CORE"])],
                   f"extract-data-stuck-threshold = {stuck}\n")
    sql = "SELECT STATE, TERMINATED_TS FROM GIDB_G_CALL_V WHERE ID = 999999999"
    engine = _engine(idb_url)
    with engine.connect() as conn:
        newest = conn.execute(sa.text("SELECT MAX(LEVENT_ITS) FROM G_DSS_GCC_PROVIDER")).scalar()
    engine.dispose()
    started = newest - 600
    _add_active_call(idb_url, started)
    # Young: it holds the G_CALL mark back to its last change, while the others go on.
    _extract(cli, path)
    m = marks(im_url)
    assert m["GIDB_G_CALL_V"] <= started
    assert m["GIDB_G_PARTY_V"] == newest - LAG
    assert _query(im_url, sql) == []
    # An hour on it is stuck: loaded as it is, still active, and the mark goes on.
    simulate(idb_url, days=0, minutes=60, resume=True)
    _extract(cli, path)
    assert _query(im_url, sql) == [(1, None)]
    assert marks(im_url)["GIDB_G_CALL_V"] > newest
    # It ends at last: the completed row replaces the active one.
    now = newest + 3600
    engine = _engine(idb_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE G_CALL SET STATE = 2, TERMINATED_TS = :t, "
                             "LASTCHANGE_TS = :t WHERE ID = 999999999"), {"t": now + 60})
    engine.dispose()
    # (later than any call still young then, which would hold the mark back again)
    simulate(idb_url, days=0, minutes=120, resume=True)
    _extract(cli, path)
    assert _query(im_url, sql) == [(2, now + 60)]
    assert _query(im_url, "SELECT COUNT(*) FROM GIDB_G_CALL_V WHERE CALLID = 'STUCK-CALL'") \
        == [(1,)]


# Changes with every committed chunk, empty ones included.
PROGRESS = ("SELECT (SELECT COUNT(*) FROM CTL_AUDIT_LOG), (SELECT COUNT(*) FROM "
            "CTL_EXTRACT_HWM), (SELECT COALESCE(SUM(MARK_TS), 0) FROM CTL_EXTRACT_HWM)")


def _role_marks(url: str, role: str) -> dict[str, int]:
    tables = {c.target.name for c in COPIES if c.role == role}
    return {t: m for t, m in marks(url).items() if t in tables}


def test_killed_runs_end_like_an_uninterrupted_one(db_kind, tmp_path):
    """SIGKILL at random moments during the extraction of every role, twenty times and
    more, then let it finish: the same GIDB content as one uninterrupted run. A kill counts
    only if it landed after a chunk of that run committed and before the role was done."""
    # Every first load builds its indexes last, so kills land between the two too.
    extra = ("extract-data-chunk-size = 900\nextract-data-batch-rows = 200\n"
             "extract-first-load-index-rows = 0\n")
    per_role, attempts = 6, 20
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "im1") as im1, \
            new_database(db_kind, tmp_path, "im2") as im2, contextlib.ExitStack() as stack:
        simulate(idb_url, start=START, days=1, **SIM)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        # the uninterrupted run takes the default chunks: content and marks do not depend on them
        clean = _config(tmp_path / "a", im1, [("site", idb_url, None)], "")
        killed = _config(tmp_path / "b", im2, [("site", idb_url, None)], extra)
        assert run_gim("extract", "--role", "all", "-c", str(clean)).returncode == 0
        assert run_gim("init", "-c", str(killed)).returncode == 0
        rng = random.Random(3)
        kills: Counter = Counter()
        progress = stack.enter_context(Watch(im2, PROGRESS))
        for role in ROLES:
            final = _role_marks(im1, role)
            for _ in range(attempts):
                before = progress()
                proc = spawn_gim("extract", "--role", role, "-c", str(killed))
                while proc.poll() is None and progress() == before:
                    time.sleep(0.002)
                if proc.poll() is None:
                    # Configuration history comes in a few chunks written fast (the whole
                    # history in one cycle), outbound data in few: kill it soon after one
                    # commits, or it is done (a loaded machine leaves little time).
                    short = role in ("ICON_CFG", "ICON_OCS")
                    time.sleep(rng.uniform(0, 0.004 if short else 0.08))
                if proc.poll() is not None:  # it finished first: nothing left to interrupt
                    assert proc.returncode == 0, proc.stderr.read()
                    break
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                if _role_marks(im2, role) != final:  # work was left: a mid-run kill
                    kills[role] += 1
                if kills[role] == per_role:
                    break
            done = run_gim("extract", "--role", role, "-c", str(killed))
            assert done.returncode == 0, done.stderr
        assert sum(kills.values()) >= 20 and all(kills[r] >= 3 for r in ROLES), kills
        assert gidb_content(im2) == gidb_content(im1)
        assert marks(im2) == marks(im1)
        # First loads put their indexes off; the killed ones were made again.
        assert gidb_indexes(im2) == gidb_indexes(im1) == expected_gidb_indexes(im1)


def gidb_indexes(url: str) -> set[str]:
    """The names of the indexes the GIDB and merge tables have."""
    from gim.jobs.gidb_indexes import gidb_tables

    engine = _engine(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        names = {i["name"].lower() for t in gidb_tables()
                 for i in inspector.get_indexes(t.name.lower() if "postgresql" in url
                                                else t.name)}
    engine.dispose()
    return names


def expected_gidb_indexes(url: str) -> set[str]:
    from gim.jobs.gidb_indexes import gidb_tables
    from gim.schema.base import index_applies

    dialect = "postgresql" if "postgresql" in url else "sqlite"
    return {i.name.lower() for t in gidb_tables() for i in t.indexes
            if index_applies(i, dialect)}


def test_first_load_makes_its_gidb_indexes_last_and_missing_ones_are_made_again(
        cli, tmp_path, idb_and_infomart):
    """A first load builds the secondary GIDB indexes after its rows; a job killed before
    that leaves them missing, and the next extraction or transformation makes them."""
    idb_url, im_url = idb_and_infomart
    path = _config(tmp_path, im_url, [("site", idb_url, None)],
                   "extract-first-load-index-rows = 0\n")
    first = _extract(cli, path)
    assert "GIDB indexes made again" not in first["counts"]
    assert first["counts"]["GIDB tables indexed after their first load"] >= 10
    assert gidb_indexes(im_url) == expected_gidb_indexes(im_url)
    assert_gidb_matches_idb(idb_url, im_url, _floor())
    gone = sorted(i for i in expected_gidb_indexes(im_url)
                  if i.startswith("ix_gidb_g_party_v_"))
    assert len(gone) >= 3, gone
    for job in (("transform",), ("extract", "--role", "ICON_CORE")):
        engine = _engine(im_url)
        with engine.begin() as conn:
            for name in gone:
                conn.exec_driver_sql(f"DROP INDEX {name}")
        engine.dispose()
        assert not set(gone) & gidb_indexes(im_url)
        result = invoke(cli, *job, "-c", str(path), "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["counts"]["GIDB indexes made again"] == len(gone)
        assert gidb_indexes(im_url) == expected_gidb_indexes(im_url)


def test_tables_extracted_one_at_a_time_or_together_end_the_same(db_kind, tmp_path):
    """extract-data-thread-pool-size changes how long a run takes, not what it loads (an
    SQLite Info Mart takes one table at a time whatever it says)."""
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "im1") as im1, \
            new_database(db_kind, tmp_path, "im2") as im2:
        simulate(idb_url, start=START, days=1, **SIM)
        for sub, im, size in (("a", im1, 1), ("b", im2, 8)):
            (tmp_path / sub).mkdir()
            path = _config(tmp_path / sub, im, [("site", idb_url, None)],
                           f"extract-data-chunk-size = 3600\n"
                           f"extract-data-thread-pool-size = {size}\n")
            result = run_gim("extract", "--role", "all", "-c", str(path), "--json")
            assert result.returncode == 0, result.stderr
            assert "voice calls merged" in json.loads(result.stdout)["message"]
        assert gidb_content(im2) == gidb_content(im1)
        assert marks(im2) == marks(im1)
        assert_gidb_matches_idb(idb_url, im2, _floor())


def _clone(kind: str, url: str, tmp_path, name: str):
    """A copy of a database: the same simulation, as the partner IDB of an HA pair holds."""
    if kind == "sqlite":
        path = tmp_path / f"{name}.db"
        shutil.copy(url.removeprefix("sqlite:///"), path)
        return contextlib.nullcontext(f"sqlite:///{path}")
    return pg_clone(url)


def _cut_sessions(conn, dss: str, gap_start: int, gap_end: int) -> None:
    table = idb_metadata.tables[dss]
    for r in conn.execute(sa.select(table)).mappings().all():
        conn.execute(table.update().where(table.c.DSS_ID == r["DSS_ID"])
                     .values(DSCONN_ETS=gap_start))
        conn.execute(table.insert().values(
            dict(r, DSS_ID=r["DSS_ID"] + 100, DSCONN_STS=gap_end, FEVENT_ITS=gap_end,
                 DSCONN_TYPE=2)))


def _cut_gap(url: str, gap_start: int, gap_end: int, cfg_gap: tuple[int, int]) -> None:
    """Make an IDB whose ICON missed [gap_start, gap_end): no rows stamped in the gap, and
    data-source sessions that say so; its configuration session has a gap over `cfg_gap`
    (the configuration rows of that time are served by the partner)."""
    engine = _engine(url)
    with engine.begin() as conn:
        for t in idb_metadata.sorted_tables:
            col = t.info["time_column"]
            if col and t.info["kind"] not in ("dss", "cfg", "link"):
                conn.execute(sa.text(f"DELETE FROM {t.name} WHERE {col} >= :a AND {col} < :b"),
                             {"a": gap_start, "b": gap_end})
        for dss in ("G_DSS_GCC_PROVIDER", "G_DSS_GLS_PROVIDER", "G_DSS_GUD_PROVIDER",
                    "G_DSS_GOS_PROVIDER"):
            _cut_sessions(conn, dss, gap_start, gap_end)
        _cut_sessions(conn, "G_DSS_CFG_PROVIDER", *cfg_gap)
    engine.dispose()


def _config_change(url: str) -> int:
    """When the simulated day's first configuration change happened."""
    return _query(url, "SELECT MIN(LASTCHANGE_TS) FROM GCX_SKILL_LEVEL WHERE "
                       "LASTCHANGE_TS >= :f", f=_floor())[0][0]


def _served(url: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for dap, table in _query(url, "SELECT DISTINCT DAP_NAME, TABLE_NAME FROM CTL_AUDIT_LOG "
                                  "WHERE DAP_NAME IS NOT NULL"):
        out.setdefault(dap, set()).add(table)
    return out


@pytest.fixture
def ha_pair(db_kind, tmp_path):
    """(full IDB, IDB missing 11:00-12:00 and its configuration session a minute around
    the day's first configuration change, Info Mart of the pair, Info Mart of one IDB)."""
    gap_start = _floor() + 11 * 3600
    with new_database(db_kind, tmp_path, "idbfull") as full, \
            new_database(db_kind, tmp_path, "imha") as im_ha, \
            new_database(db_kind, tmp_path, "imone") as im_one:
        simulate(full, start=START, days=1, **SIM)
        change = _config_change(full)
        with _clone(db_kind, full, tmp_path, "gappy") as gappy:
            _cut_gap(gappy, gap_start, gap_start + 3600, (change - 30, change + 30))
            (tmp_path / "ha").mkdir()
            (tmp_path / "one").mkdir()
            yield full, gappy, im_ha, im_one, gap_start


def test_ha_pair_fills_the_gap_of_one_idb_from_the_other(cli, tmp_path, ha_pair):
    full, gappy, im_ha, im_one, _ = ha_pair
    _extract(cli, _config(tmp_path / "ha", im_ha, [("a", gappy, "pair"), ("b", full, "pair")]))
    _extract(cli, _config(tmp_path / "one", im_one, [("b", full, None)]))
    assert gidb_content(im_ha, drop=SERVED_BY) == gidb_content(im_one, drop=SERVED_BY)
    served = _served(im_ha)
    assert served["a"] and served["b"]  # both IDBs served
    assert any(t.startswith("GIDB_GC") for t in served["b"])  # configuration too
    assert _query(im_ha, "SELECT SOURCE_NAME, HA_SET, DAP_NAMES FROM CTL_DS") == [
        ("pair", "pair", "a,b")]
    assert sorted(_query(im_ha, "SELECT DAP_NAME FROM CTL_DAP")) == [("a",), ("b",)]
    # gim status tells the source and which IDB stands where
    status = json.loads(invoke(cli, "status", "-c", str(tmp_path / "ha" / "gim.toml"),
                               "--json").stdout)
    (progress,) = status["progress"]["extraction"]
    assert progress["source"] == "pair" and progress["data_source_key"] == 1
    assert set(progress["last_served_by"]) <= {"a", "b"}
    assert sum(progress["last_served_by"].values()) == progress["tables"] == len(marks(im_ha))
    text = invoke(cli, "status", "-c", str(tmp_path / "ha" / "gim.toml")).stdout
    assert "extracted from pair:" in text and "latest windows from DAP" in text
    # the history of each chunk says which DAP served it, under the source's key
    assert _query(im_ha, "SELECT DISTINCT h.DAP_NAME FROM CTL_EXTRACT_HISTORY h JOIN CTL_DS "
                         "d ON d.DATA_SOURCE_KEY = h.DATA_SOURCE_KEY ORDER BY 1") == [
        ("a",), ("b",)]


def test_ha_partner_down_then_back_ends_like_one_complete_idb(cli, tmp_path, ha_pair):
    full, gappy, im_ha, im_one, gap_start = ha_pair
    down = _config(tmp_path / "ha", im_ha, [("a", gappy, "pair"), ("b", DOWN, "pair")])
    first = _extract(cli, down)
    assert any("DAP b" in n and "partner" in n for n in first["notes"])
    # the IDB left has a gap: what follows waits for the partner, nothing is skipped
    assert any("waiting" in n and "unreachable" in n for n in first["notes"])
    assert marks(im_ha)["GIDB_G_PARTY_V"] == gap_start
    assert _query(im_ha, "SELECT COUNT(*) FROM GIDB_G_PARTY_V WHERE CREATED_TS >= :g",
                  g=gap_start) == [(0,)]
    up = _config(tmp_path / "ha", im_ha, [("a", gappy, "pair"), ("b", full, "pair")])
    _extract(cli, up)
    _extract(cli, _config(tmp_path / "one", im_one, [("b", full, None)]))
    assert gidb_content(im_ha, drop=SERVED_BY) == gidb_content(im_one, drop=SERVED_BY)
    assert_gidb_matches_idb(full, im_ha, _floor())


def test_ha_switch_between_runs_takes_no_row_twice(cli, db_kind, tmp_path):
    """Each IDB of the pair down in turn, the IDBs going on in between: rows ICON updated
    in place (calls, parties, configuration) are kept once, as from one IDB."""
    with new_database(db_kind, tmp_path, "a") as a, \
            new_database(db_kind, tmp_path, "imha") as im_ha, \
            new_database(db_kind, tmp_path, "imone") as im_one:
        simulate(a, start=START, days=1, **SIM)
        with _clone(db_kind, a, tmp_path, "b") as b:
            (tmp_path / "ha").mkdir()
            (tmp_path / "one").mkdir()
            ha = tmp_path / "ha"
            _extract(cli, _config(ha, im_ha, [("a", DOWN, "pair"), ("b", b, "pair")]))
            for url in (a, b):
                simulate(url, days=1, resume=True)
            _extract(cli, _config(ha, im_ha, [("a", a, "pair"), ("b", DOWN, "pair")]))
            _extract(cli, _config(tmp_path / "one", im_one, [("a", a, None)]))
            assert gidb_content(im_ha, drop=SERVED_BY) == gidb_content(im_one, drop=SERVED_BY)
            served = _served(im_ha)
            # (voice calls are loaded into their merge table first)
            assert "MRG_G_CALL_V" in served["a"] and "MRG_G_CALL_V" in served["b"]
            assert any(t.startswith("GIDB_GC") for t in served["a"])
            assert "GIDB_GC_AGENT" in served["b"]
            # calls updated after the switch were replaced, not kept twice
            assert _query(im_ha, "SELECT COUNT(*) FROM (SELECT CALLID FROM GIDB_G_CALL_V "
                                 "GROUP BY CALLID HAVING COUNT(DISTINCT DAP_KEY) > 1) x") \
                == [(0,)]


def test_unreachable_dap_fails_naming_it_and_keeps_the_marks(cli, tmp_path, idb_and_infomart):
    idb_url, im_url = idb_and_infomart
    _extract(cli, _config(tmp_path, im_url, [("far", idb_url, None)]))
    before, content = marks(im_url), gidb_content(im_url, drop=())
    assert before
    path = _config(tmp_path, im_url, [("far", DOWN, None)])
    result = invoke(cli, "extract", "--role", "all", "-c", str(path))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "DAP far" in line and "pw" not in line
    assert marks(im_url) == before
    assert gidb_content(im_url, drop=()) == content


def _rename_column(url: str, table: str, old: str, new: str) -> None:
    engine = _engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
    engine.dispose()


def test_idb_failing_mid_run_is_named_and_its_chunk_left_whole(cli, tmp_path,
                                                               idb_and_infomart, db_kind):
    """One table at a time (SQLite), or several (PostgreSQL): the failing table's windows
    are not committed, the others' are each whole, and a run after the repair completes
    them."""
    idb_url, im_url = idb_and_infomart
    workers = 1 if db_kind == "sqlite" else 4
    path = _config(tmp_path, im_url, [("site", idb_url, None)],
                   "extract-data-chunk-size = 21600\n"
                   f"extract-data-thread-pool-size = {workers}\n")
    _extract(cli, path)
    simulate(idb_url, days=1, resume=True)
    before, content = marks(im_url), gidb_content(im_url, drop=())
    counted = dict(_query(im_url, "SELECT TABLE_NAME, ROW_COUNT FROM CTL_EXTRACT_HWM"))
    _rename_column(idb_url, "G_PARTY", "ENDPOINTDN", "ENDPOINTDN_GONE")
    result = invoke(cli, "extract", "--role", "all", "-c", str(path))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "DAP site" in line and "G_PARTY" in line, line
    after = marks(im_url)
    if workers == 1:  # the tables before it in the run's order were extracted ...
        assert after["GIDB_G_AGENT_STATE_HISTORY_V"] > before["GIDB_G_AGENT_STATE_HISTORY_V"]
    else:  # the others stopped after a window, each committed whole with its mark
        now = gidb_content(im_url, drop=())
        gained = {t: n - counted.get(t, 0) for t, n in _query(
            im_url, "SELECT TABLE_NAME, ROW_COUNT FROM CTL_EXTRACT_HWM")}
        for copy in COPIES:
            name = copy.target.name
            # rows ICON only adds (voice calls wait in the merge)
            if copy.source.info["kind"] == "history" and copy.landing is None and \
                    name in gained:
                assert now[name][0] - content[name][0] == gained[name], name
        # the tables loading alongside the failing one committed the window they were in
        assert any(n > 0 for t, n in gained.items() if t != "GIDB_G_PARTY_V"), gained
    # ... and the failing table's mark and rows did not move
    assert after["GIDB_G_PARTY_V"] == before["GIDB_G_PARTY_V"]
    assert gidb_content(im_url, drop=())["GIDB_G_PARTY_V"] == content["GIDB_G_PARTY_V"]
    _rename_column(idb_url, "G_PARTY", "ENDPOINTDN_GONE", "ENDPOINTDN")
    _extract(cli, path)
    assert_gidb_matches_idb(idb_url, im_url, _floor())


def test_failed_chunk_is_rolled_back_whole(tmp_path, idb_and_infomart, monkeypatch):
    idb_url, im_url = idb_and_infomart
    path = _config(tmp_path, im_url, [("site", idb_url, None)])
    config = load_config(path, env={})
    real = extract_job._advance
    calls = {"n": 0}

    def failing(conn, ctx, source, copy, idb, window, count, audit):
        if copy.target.name == "GIDB_G_PARTY_V" and count:
            calls["n"] += 1
            raise RuntimeError("disk full")
        return real(conn, ctx, source, copy, idb, window, count, audit)

    monkeypatch.setattr(extract_job, "_advance", failing)
    result = run_job(JobSpec("extract", locks=("extract-icon_core",)), config,
                     lambda ctx: extract_job.run(ctx, "ICON_CORE"))
    assert result.exit_code == 1 and "disk full" in result.message
    assert calls["n"] == 1
    engine = _engine(im_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM GIDB_G_PARTY_V")).scalar() == 0
        assert conn.execute(sa.text("SELECT COUNT(*) FROM CTL_AUDIT_LOG WHERE TABLE_NAME = "
                                    "'GIDB_G_PARTY_V'")).scalar() == 0
    engine.dispose()
    assert "GIDB_G_PARTY_V" not in marks(im_url)
    monkeypatch.setattr(extract_job, "_advance", real)
    assert run_job(JobSpec("extract", locks=("extract-icon_core",)), config,
                   lambda ctx: extract_job.run(ctx, "ICON_CORE")).exit_code == 0
    assert "GIDB_G_PARTY_V" in marks(im_url)


def test_dap_option_extracts_that_dap_only(cli, tmp_path, idb_and_infomart):
    idb_url, im_url = idb_and_infomart
    path = _config(tmp_path, im_url, [("one", idb_url, None),
                                      ("two", idb_url, None, ["ICON_CORE"])])

    def sources():
        return {s for (s,) in _query(im_url, "SELECT DISTINCT SOURCE_NAME FROM "
                                             "CTL_EXTRACT_HWM")}

    result = invoke(cli, "extract", "--role", "ICON_CORE", "--dap", "two", "-c", str(path))
    assert result.exit_code == 0, result.output
    assert sources() == {"two"}
    assert _query(im_url, "SELECT DISTINCT d.SOURCE_NAME FROM GIDB_G_CALL_V g JOIN CTL_DS d "
                          "ON d.DATA_SOURCE_KEY = g.DATA_SOURCE_KEY") == [("two",)]
    result = invoke(cli, "extract", "--role", "all", "--dap", "one", "-c", str(path))
    assert result.exit_code == 0, result.output
    assert sources() == {"one", "two"}
    # the same IDB read as two sources: the same rows under each
    per_source = dict(_query(im_url, "SELECT DATA_SOURCE_KEY, COUNT(*) FROM GIDB_G_CALL_V "
                                     "GROUP BY DATA_SOURCE_KEY"))
    assert len(per_source) == 2 and len(set(per_source.values())) == 1


def test_values_longer_than_the_idb_allows_are_loaded_as_they_are(cli, tmp_path, db_kind):
    """A SQLite IDB does not enforce declared lengths; the value is loaded whole into either
    kind of Info Mart, and the transformation cuts it to the width of the dimension or fact
    column it goes to (PostgreSQL would refuse it) rather than stop on it."""
    long = "x" * 300 + "-end"
    with new_database("sqlite", tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "infomart") as im_url:
        simulate(idb_url, start=START, days=1, **SIM)
        engine = _engine(idb_url)
        with engine.begin() as conn:
            assert conn.execute(sa.text("UPDATE GC_AGENT SET EMAIL = :v WHERE ID = (SELECT "
                                        "MIN(ID) FROM GC_AGENT)"), {"v": long}).rowcount == 1
            assert conn.execute(sa.text(
                "UPDATE G_PARTY SET ENDPOINTDN = :v WHERE ID = (SELECT MIN(ID) FROM G_PARTY "
                "WHERE GSYS_DOMAIN = 1)"), {"v": long}).rowcount == 1
        engine.dispose()
        _extract(cli, _config(tmp_path, im_url, [("site", idb_url, None)]))
        assert _query(im_url, "SELECT EMAIL FROM GIDB_GC_AGENT WHERE LENGTH(EMAIL) > 255") \
            == [(long,)]
        assert _query(im_url, "SELECT ENDPOINTDN FROM GIDB_G_PARTY_V WHERE "
                              "LENGTH(ENDPOINTDN) > 255") == [(long,)]
        assert_gidb_matches_idb(idb_url, im_url, _floor())
        engine = _engine(idb_url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE GC_AGENT SET USERNAME = :v, FIRSTNAME = :v, "
                                 "LASTNAME = :v, EMPLOYEEID = :v WHERE ID = (SELECT MIN(ID) "
                                 "FROM GC_AGENT)"), {"v": long})
            conn.execute(sa.text("UPDATE G_PARTY SET ENDPOINTDN = :v WHERE AGENTID IS NOT "
                                 "NULL"), {"v": long})
            conn.execute(sa.text("UPDATE G_CALL SET ANI = :v, DNIS = :v"), {"v": long})
            conn.execute(sa.text("UPDATE G_AGENT_STATE_RC SET VALUE = :v"), {"v": long})
        engine.dispose()
        with new_database(db_kind, tmp_path, "infomart2") as im2:
            (tmp_path / "two").mkdir()
            path = _config(tmp_path / "two", im2, [("site", idb_url, None)])
            _extract(cli, path)
            result = invoke(cli, "transform", "-c", str(path), "--json")
            assert result.exit_code == 0, result.output
            # The transformation keeps every fact (those of the same rows with short values
            # in the first Info Mart), the long values cut to the columns.
            first = invoke(cli, "transform", "-c", str(tmp_path / "gim.toml"), "--json")
            assert first.exit_code == 0, first.output
            counts = [json.loads(r.stdout)["counts"] for r in (first, result)]
            for table in ("INTERACTION_FACT", "INTERACTION_RESOURCE_FACT", "SM_RES_STATE_FACT",
                          "SM_RES_STATE_REASON_FACT"):
                assert counts[0][f"{table} rows"] == counts[1][f"{table} rows"] > 0, table
            for table, column, width in (("RESOURCE_", "RESOURCE_NAME", 255),
                                         ("INTERACTION_FACT", "SOURCE_ADDRESS", 255),
                                         ("INTERACTION_RESOURCE_FACT", "TARGET_ADDRESS", 255),
                                         ("RESOURCE_STATE_REASON", "SOFTWARE_REASON_VALUE",
                                          255)):
                assert _query(im2, f"SELECT MAX(LENGTH({column})), COUNT(*) FROM {table} "
                                   f"WHERE {column} LIKE 'xxx%'") [0] [0] == width, table
            assert "cut to fit" in (tmp_path / "two" / "gim.log").read_text()
            assert counts[1]["rows with a text cut to fit its column"] > 0


def test_cli_errors(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    bad = invoke(cli, "extract", "--role", "ICON_COR", "-c", str(path))
    assert bad.exit_code == 2 and "ICON_COR" in bad.stderr
    none = invoke(cli, "extract", "--role", "ICON_OCS", "-c", str(path))
    assert none.exit_code == 5 and "no [[dap]] has role ICON_OCS" in none.stderr
    unknown = invoke(cli, "extract", "--role", "ICON_CORE", "--dap", "nope", "-c", str(path))
    assert unknown.exit_code == 5 and "no [[dap]] named 'nope'" in unknown.stderr


def test_same_gidb_from_sqlite_and_postgres_idbs(cli, tmp_path):
    """The loaders of every database pair give the same rows."""
    from conftest import require_pg

    require_pg()
    results = []
    with new_database("sqlite", tmp_path, "idb") as lite, \
            new_database("postgresql", tmp_path, "idb") as pg:
        idbs = {"sqlite": lite, "postgresql": pg}
        for url in idbs.values():
            simulate(url, start=START, days=1, **SIM)
        for kind_idb, kind_im in (("sqlite", "sqlite"), ("postgresql", "postgresql"),
                                  ("sqlite", "postgresql"), ("postgresql", "sqlite")):
            sub = tmp_path / f"{kind_idb}-{kind_im}"
            sub.mkdir()
            with new_database(kind_im, sub, "im") as im_url:
                _extract(cli, _config(sub, im_url, [("site", idbs[kind_idb], None)]))
                results.append(gidb_content(im_url))
    assert all(r == results[0] for r in results[1:])


def test_big_loads_refresh_statistics_on_postgresql(tmp_path, idb_and_infomart, monkeypatch,
                                                    db_kind):
    idb_url, im_url = idb_and_infomart
    config = load_config(_config(tmp_path, im_url, [("site", idb_url, None)]), env={})
    monkeypatch.setattr(extract_job._Statistics, "THRESHOLD", 50)
    result = run_job(JobSpec("extract", locks=("extract-icon_core",)), config,
                     lambda ctx: extract_job.run(ctx, "ICON_CORE"))
    assert result.exit_code == 0, result.message
    loaded = {k.removesuffix(" rows").lower() for k, n in result.counts.items()
              if k.startswith("GIDB_") and k.endswith(" rows") and n >= 50}
    assert "gidb_g_party_v" in loaded
    if db_kind == "sqlite":  # SQLite plans without such statistics
        assert "tables analyzed" not in result.counts
        return
    assert result.counts["tables analyzed"] == len(loaded)
    analyzed = {t for (t,) in _query(im_url, "SELECT relname FROM pg_stat_user_tables WHERE "
                                             "last_analyze IS NOT NULL")}
    assert loaded <= analyzed
