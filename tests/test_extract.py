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

import pytest
import sqlalchemy as sa
from conftest import invoke, new_database, pg_clone, run_gim, spawn_gim, write_config

from gim.config import load_config
from gim.jobs import extract as extract_job
from gim.runner import JobSpec, run_job
from gim.schema.gidb import COPIES
from gim.simulate import simulate

START = dt.date(2026, 10, 5)
SIM = dict(calls_per_day=120, agents=12, seed=5, media=("voice", "chat", "email"),
           outbound=True, faults=0.03)
LAG = 120
STUCK = 28860
AUDIT = ("DATA_SOURCE_KEY", "CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY")
KILLS = 20
DS_TYPE = {"ICON_CFG": 4, "ICON_CORE": 1, "ICON_MM": 2, "ICON_OCS": 3}


def _engine(url):
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _norm(v):
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, decimal.Decimal):
        return int(v)
    return v


def _digest(rows) -> tuple[int, str]:
    text = sorted(repr(tuple(_norm(v) for v in r)) for r in rows)
    return len(text), hashlib.md5("\n".join(text).encode()).hexdigest()


def gidb_content(url: str, drop=AUDIT) -> dict[str, tuple[int, str]]:
    """Every GIDB table's rows, without the columns that say when and from where."""
    engine = _engine(url)
    out = {}
    with engine.connect() as conn:
        for copy in COPIES:
            cols = [c for c in copy.target.columns if c.name not in drop]
            out[copy.target.name] = _digest(conn.execute(sa.select(*cols)))
    engine.dispose()
    return out


def marks(url: str) -> dict[str, int]:
    engine = _engine(url)
    with engine.connect() as conn:
        out = dict(conn.execute(sa.text("SELECT TABLE_NAME, MARK_TS FROM CTL_EXTRACT_HWM")).all())
    engine.dispose()
    return out


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


def assert_gidb_matches_idb(idb_url: str, infomart_url: str, floor: int) -> None:
    """The GIDB tables hold exactly the IDB rows of each table's role below its mark (voice
    calls: terminated or stuck), as the IDB holds them now; a row ICON changed after the
    mark may still be there in the version extracted before, and nothing else."""
    m = marks(infomart_url)
    idb, im = _engine(idb_url), _engine(infomart_url)
    with idb.connect() as src, im.connect() as dst:
        newest = max(src.execute(sa.select(sa.func.max(c.source.c[c.time_column]))).scalar()
                     or 0 for c in COPIES if c.time_column)
        for copy in COPIES:
            s = copy.source.c
            cols = [s[c] for c in copy.columns]
            query = sa.select(*cols)
            if "GSYS_DOMAIN" in s:
                domains = [d for (d,) in src.execute(sa.text(
                    f"SELECT DSS_ID FROM {_provider(copy)} WHERE DS_TYPE = "
                    f"{DS_TYPE[copy.role]}"))]
                query = query.where(s.GSYS_DOMAIN.in_(domains))
            rows = {r[0]: r for r in src.execute(query)}
            mark = m.get(copy.target.name)
            def extractable(r, mark=mark, copy=copy):
                if not copy.time_column:
                    return True
                t = r._mapping[copy.time_column]
                low = 0 if copy.role == "ICON_CFG" else floor
                ok = mark is not None and t is not None and low <= t < mark
                if copy.completed_only:
                    ok = ok and (r._mapping["STATE"] == 2 or
                                 r._mapping["CREATED_TS"] < newest - STUCK)
                return ok
            expected = {k: r for k, r in rows.items() if extractable(r)}
            got = {r[0]: r for r in dst.execute(
                sa.select(*(copy.target.c[c] for c in copy.columns)))}
            name = copy.target.name
            for key, row in expected.items():
                assert key in got, (name, key)
                assert [_norm(v) for v in got[key]] == [_norm(v) for v in row], (name, key)
            for key in set(got) - set(expected):
                assert key in rows and not extractable(rows[key]), (name, key)
    idb.dispose()
    im.dispose()


def _floor() -> int:
    return int(dt.datetime.combine(START, dt.time(), dt.UTC).timestamp())


def _config(tmp_path, infomart_url, daps: list[tuple[str, str, str | None]],
            extra="extract-data-chunk-size = 21600\n"):
    # A short calendar ahead keeps initialization quick.
    text = (f'[date-time]\ndate-time-max-days-ahead = 20\ndate-time-min-days-ahead = 10\n\n'
            f'[gim-etl]\netl-start-date = "{START}"\npartitioning-interval-size-gim = 604800\n'
            f'{extra}\n')
    for name, url, ha in daps:
        text += (f'\n[[dap]]\nname = "{name}"\nurl = "{url}"\n'
                 f'roles = ["ICON_CFG", "ICON_CORE", "ICON_MM", "ICON_OCS"]\n')
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


def test_late_committed_rows_are_not_lost(cli, tmp_path, idb_and_infomart):
    idb_url, im_url = idb_and_infomart
    path = _config(tmp_path, im_url, [("site", idb_url, None)])
    _extract(cli, path)
    mark = marks(im_url)["GIDB_G_AGENT_STATE_HISTORY_V"]
    engine = _engine(idb_url)
    with engine.begin() as conn:
        # The mark is the safety lag behind the newest source time. A row stamped between
        # the two, committed only now (late, but within the lag):
        late = mark + LAG // 2
        conn.execute(sa.text(
            "INSERT INTO G_AGENT_STATE_HISTORY (ID, TYPE, STATE, SEQ, LOGINSESSIONID, ADDED, "
            "ADDED_TS, GSYS_DOMAIN) SELECT 999999999, 5, 3, 99, LOGINSESSIONID, ADDED, :ts, "
            "GSYS_DOMAIN FROM G_AGENT_STATE_HISTORY WHERE ID = 1"), {"ts": late})
    engine.dispose()
    _extract(cli, path)  # no newer data yet: the mark stays, the row waits
    simulate(idb_url, days=1, resume=True)
    _extract(cli, path)
    im = _engine(im_url)
    with im.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM GIDB_G_AGENT_STATE_HISTORY_V "
                                    "WHERE ID = 999999999")).scalar() == 1
    im.dispose()


def test_killed_runs_end_like_an_uninterrupted_one(db_kind, tmp_path):
    """SIGKILL at random moments, twenty times and more, then let it finish: the same GIDB
    content as one uninterrupted run."""
    extra = "extract-data-chunk-size = 1800\nextract-data-batch-rows = 500\n"
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "im1") as im1, \
            new_database(db_kind, tmp_path, "im2") as im2:
        simulate(idb_url, start=START, days=1, **SIM)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        clean = _config(tmp_path / "a", im1, [("site", idb_url, None)], extra)
        killed = _config(tmp_path / "b", im2, [("site", idb_url, None)], extra)
        assert run_gim("extract", "--role", "all", "-c", str(clean)).returncode == 0
        assert run_gim("init", "-c", str(killed)).returncode == 0
        rng = random.Random(3)
        kills = 0
        for _ in range(KILLS):
            proc = spawn_gim("extract", "--role", "all", "-c", str(killed))
            time.sleep(rng.uniform(0.25, 0.9))
            if proc.poll() is not None:  # it finished first: nothing left to interrupt
                assert proc.returncode == 0, proc.stderr.read()
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            kills += 1
        done = run_gim("extract", "--role", "all", "-c", str(killed))
        assert done.returncode == 0, done.stderr
        assert kills == KILLS, f"the extraction finished after {kills} kills"
        drop = ("CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY")
        assert gidb_content(im2, drop=drop) == gidb_content(im1, drop=drop)
        assert marks(im2) == marks(im1)


def _clone(kind: str, url: str, tmp_path):
    """A copy of a database: the same simulation, as the partner IDB of an HA pair holds."""
    if kind == "sqlite":
        path = tmp_path / "idbgap.db"
        shutil.copy(url.removeprefix("sqlite:///"), path)
        return contextlib.nullcontext(f"sqlite:///{path}")
    return pg_clone(url)


def _cut_gap(url: str, gap_start: int, gap_end: int) -> None:
    """Make an IDB whose ICON missed [gap_start, gap_end): no rows stamped in the gap, and
    data-source sessions that say so."""
    from gim.schema.idb import idb_metadata

    engine = _engine(url)
    with engine.begin() as conn:
        for t in idb_metadata.sorted_tables:
            col = t.info["time_column"]
            if col and t.info["kind"] not in ("dss", "cfg", "link"):
                conn.execute(sa.text(f"DELETE FROM {t.name} WHERE {col} >= :a AND {col} < :b"),
                             {"a": gap_start, "b": gap_end})
        for dss in ("G_DSS_GCC_PROVIDER", "G_DSS_GLS_PROVIDER", "G_DSS_GUD_PROVIDER",
                    "G_DSS_GOS_PROVIDER"):
            table = idb_metadata.tables[dss]
            for r in conn.execute(sa.select(table)).mappings().all():
                conn.execute(table.update().where(table.c.DSS_ID == r["DSS_ID"])
                             .values(DSCONN_ETS=gap_start))
                conn.execute(table.insert().values(
                    dict(r, DSS_ID=r["DSS_ID"] + 100, DSCONN_STS=gap_end, FEVENT_ITS=gap_end,
                         DSCONN_TYPE=2)))
    engine.dispose()


def test_ha_pair_fills_the_gap_of_one_idb_from_the_other(cli, db_kind, tmp_path):
    gap_start = _floor() + 11 * 3600
    gap_end = gap_start + 3600
    with new_database(db_kind, tmp_path, "idbfull") as full, \
            new_database(db_kind, tmp_path, "imha") as im_ha, \
            new_database(db_kind, tmp_path, "imone") as im_one:
        simulate(full, start=START, days=1, **SIM)
        with _clone(db_kind, full, tmp_path) as gappy:
            _cut_gap(gappy, gap_start, gap_end)
            (tmp_path / "ha").mkdir()
            (tmp_path / "one").mkdir()
            ha = _config(tmp_path / "ha", im_ha, [("a", gappy, "pair"), ("b", full, "pair")])
            one = _config(tmp_path / "one", im_one, [("b", full, None)])
            _extract(cli, ha)
            _extract(cli, one)
            drop = ("DATA_SOURCE_KEY", "CREATE_AUDIT_KEY", "UPDATE_AUDIT_KEY")
            assert gidb_content(im_ha, drop=drop) == gidb_content(im_one, drop=drop)
            engine = _engine(im_ha)
            with engine.connect() as conn:
                used = dict(conn.execute(sa.text(
                    "SELECT DAP_NAME, COUNT(*) FROM CTL_EXTRACT_HISTORY GROUP BY DAP_NAME")).all())
            engine.dispose()
            assert used.get("a", 0) > 0 and used.get("b", 0) > 0  # both IDBs served


def test_unreachable_dap_fails_naming_it_and_keeps_the_marks(cli, tmp_path, db_url):
    path = _config(tmp_path, db_url, [("far", "postgresql://u:pw@127.0.0.1:1/idb", None)])
    result = invoke(cli, "extract", "--role", "ICON_CORE", "-c", str(path))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "DAP far" in line and "pw" not in line
    assert marks(db_url) == {}


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
