"""The voice merge of extraction, on SQLite and PostgreSQL: the calls of one interaction,
on several sites recorded by one IDB or by an IDB per site, reach GIDB_G_CALL_V together
under one merged root; what is missing is waited for, then said. Judged by the simulator's
ledger (which call each part of each interaction was on) and its list of faults."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import pytest
import sqlalchemy as sa
from conftest import invoke, new_database
from test_extract import _config, _extract, _query, gidb_content

from gim.jobs.merge import MergeState
from gim.simulate import simulate

START = dt.date(2026, 10, 5)
SIM = dict(calls_per_day=300, agents=16, seed=23, media=("voice",), sites=2)
MAX_CALL = 3600  # max-call-duration's default


def _calls(im_url: str, table: str = "GIDB_G_CALL_V") -> dict[str, tuple]:
    return {r[0]: tuple(r[1:]) for r in _query(
        im_url, f"SELECT CALLID, DATA_SOURCE_KEY, MERGE_SOURCE_KEY, MERGE_ROOTIRID, "
                f"MERGE_STATE, ROOTIRID, COALESCE(TERMINATED_TS, LASTCHANGE_TS) FROM {table}")}


def _ledger(idb_url: str) -> dict[str, set[str]]:
    """Interaction (root CALLID) -> the calls its parts began on, and its first call."""
    out: dict[str, set[str]] = defaultdict(set)
    for callid, leg in _query(idb_url, "SELECT CALLID, LEG_CALLID FROM SIM_PARTICIPATION"):
        out[callid].add(leg or callid)
    for (callid,) in _query(idb_url, "SELECT CALLID FROM SIM_INTERACTION WHERE MEDIA = "
                                     "'voice'"):
        out[callid].add(callid)
    return out


def _backlog(cli, path) -> int:
    """The calls `gim status` says wait to merge (checked against the merge table)."""
    result = invoke(cli, "status", "-c", str(path), "--json")
    assert result.exit_code == 0, result.output
    backlog = json.loads(result.stdout)["progress"]["merge"]
    assert all(g["waiting_for"] and g["oldest_end"] for g in backlog), backlog
    return sum(g["calls"] for g in backlog)


def _assert_merged_as_ledger(idb_urls: list[str], im_url: str, faults: set[str]) -> int:
    """Every interaction's released calls share one merged root: its first call's ICON
    root, in its first call's data source; no two interactions share a root. Returns the
    number of interactions spanning both sites that were checked."""
    released = _calls(im_url)
    ledger = _ledger(idb_urls[0])
    roots: dict[tuple, str] = {}
    multi = 0
    for ixn, legs in ledger.items():
        if ixn in faults or ixn not in released:
            continue
        got = {released[c][1:3] for c in legs if c in released}
        first = released[ixn]
        assert got == {(first[0], first[4])}, (ixn, legs, got)
        assert roots.setdefault(got.pop(), ixn) == ixn
        sources = {released[c][0] for c in legs if c in released}
        if len({c for c in legs if c in released}) > 1 and (len(sources) > 1 or
                                                           len(idb_urls) == 1):
            multi += 1
        for c in legs:
            if c in released:
                assert released[c][3] == MergeState.COMPLETE, (ixn, c, released[c])
    return multi


@pytest.fixture
def two_sites(db_kind, tmp_path):
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "infomart") as im_url:
        simulate(idb_url, start=START, days=1, **SIM)
        yield idb_url, im_url


def test_two_sites_in_one_idb_merge_as_the_ledger_says(cli, tmp_path, two_sites):
    idb_url, im_url = two_sites
    path = _config(tmp_path, im_url, [("site", idb_url, None)])
    _extract(cli, path)
    multi = _assert_merged_as_ledger([idb_url], im_url, set())
    assert multi >= 10  # the day has interactions spanning both switches
    # The calls of the two switches are one interaction each.
    sites = _query(im_url, "SELECT COUNT(DISTINCT SWITCHID) FROM GIDB_G_CALL_V GROUP BY "
                           "MERGE_SOURCE_KEY, MERGE_ROOTIRID ORDER BY 1 DESC LIMIT 1")
    assert sites[0][0] == 2
    # What waits is linked to a call still going on at the end of the day.
    waiting = _calls(im_url, "MRG_G_CALL_V")
    active = {c for (c,) in _query(idb_url, "SELECT CALLID FROM G_CALL WHERE STATE <> 2")}
    ledger = _ledger(idb_url)
    for callid, row in waiting.items():
        assert row[3] & MergeState.LINKED_CALL_MISSING or \
            row[3] & MergeState.MERGECALL_MISSING, (callid, row)
        ixn = next(i for i, legs in ledger.items() if callid in legs)
        assert ledger[ixn] & active, (callid, ixn)
    assert _backlog(cli, path) == len(waiting)
    # Run again: nothing moves.
    before = gidb_content(im_url, drop=())
    again = _extract(cli, path)
    assert "voice calls merged" not in again["counts"]
    assert gidb_content(im_url, drop=()) == before


def test_an_idb_per_site_merges_across_idbs(cli, db_kind, tmp_path):
    with new_database(db_kind, tmp_path, "site1") as s1, \
            new_database(db_kind, tmp_path, "site2") as s2, \
            new_database(db_kind, tmp_path, "infomart") as im_url:
        simulate(s1, site_idbs=(s2,), start=START, days=1, **{**SIM, "faults": 0.0})
        path = _config(tmp_path, im_url, [("one", s1, None, ["ICON_CORE"]),
                                          ("two", s2, None, ["ICON_CORE"])])
        _extract(cli, path)
        multi = _assert_merged_as_ledger([s1, s2], im_url, set())
        assert multi >= 10
        keys = dict(_query(im_url, "SELECT SOURCE_NAME, DATA_SOURCE_KEY FROM CTL_DS"))
        # Site 2's calls of interactions begun at site 1 carry site 1's source as root.
        assert _query(im_url, "SELECT COUNT(*) FROM GIDB_G_CALL_V WHERE DATA_SOURCE_KEY = "
                              ":two AND MERGE_SOURCE_KEY = :one", two=keys["two"],
                      one=keys["one"])[0][0] >= 10


def test_merge_day_by_day_equals_one_run(cli, db_kind, tmp_path):
    """Extracting while the day goes on merges the calls as one extraction at its end."""
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "step") as im_step, \
            new_database(db_kind, tmp_path, "once") as im_once:
        simulate(idb_url, start=START, days=0, minutes=10 * 60 + 7, **SIM)
        (tmp_path / "step").mkdir()
        (tmp_path / "once").mkdir()
        step = _config(tmp_path / "step", im_step, [("site", idb_url, None)])
        for minutes in (23, 41, 67, 19, 150, 31, 240, 12 * 60):
            _extract(cli, step)
            waiting = _backlog(cli, step)
            assert waiting == len(_calls(im_step, "MRG_G_CALL_V"))
            simulate(idb_url, minutes=minutes, resume=True)
        _extract(cli, step)
        _extract(cli, _config(tmp_path / "once", im_once, [("site", idb_url, None)]))
        assert gidb_content(im_step) == gidb_content(im_once)
        for table in ("GIDB_G_CALL_V", "MRG_G_CALL_V"):
            assert _calls(im_step, table) == _calls(im_once, table)


def test_missing_sides_are_waited_for_then_said(cli, tmp_path, db_kind):
    """Faults: a site's calls lost (dangling IS-Links), merge references to calls that do
    not exist. Such calls wait max-call-duration of source time, then go on with the
    merge state saying what was missing; no other call is partially merged."""
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "infomart") as im_url:
        simulate(idb_url, start=START, days=1, **{**SIM, "faults": 0.4})
        path = _config(tmp_path, im_url, [("site", idb_url, None)])
        _extract(cli, path)
        mark = _query(im_url, "SELECT MARK_TS FROM CTL_EXTRACT_HWM WHERE TABLE_NAME = "
                              "'GIDB_G_CALL_V'")[0][0]
        released, waiting = _calls(im_url), _calls(im_url, "MRG_G_CALL_V")
        link_call = dict(_query(idb_url, "SELECT ID, CALLID FROM G_IS_LINK"))
        call_id = dict(_query(idb_url, "SELECT ID, CALLID FROM G_CALL"))
        expected: dict[str, int] = defaultdict(int)
        for kind, row_id in _query(idb_url, "SELECT KIND, ROW_ID FROM SIM_FAULT WHERE KIND "
                                            "IN ('dangling_islink', 'mergecall_missing')"):
            if kind == "dangling_islink":
                expected[link_call[row_id]] |= MergeState.ISLINK_DANGLING
            else:
                expected[call_id[row_id]] |= MergeState.MERGECALL_MISSING
        assert len(expected) >= 5
        seen = 0
        for callid, bits in expected.items():
            row = released.get(callid) or waiting.get(callid)
            if row is None:
                continue  # still active at the end of the day
            seen += 1
            assert row[3] & bits == bits, (callid, row, bits)
            if callid in released:
                assert row[5] + MAX_CALL < mark, (callid, row)  # it waited long enough
            else:
                assert row[5] + MAX_CALL >= mark, (callid, row)
        assert seen >= 5
        assert _backlog(cli, path) == len(waiting) > 0
        assert any(c in released for c in expected)
        # Nothing else is released partially merged, apart from calls of the same
        # interactions as the damaged ones.
        faulty = {c for (c,) in _query(idb_url, "SELECT CALLID FROM SIM_FAULT")}
        ledger = _ledger(idb_url)
        of = {leg: ixn for ixn, legs in ledger.items() for leg in legs}
        for callid, row in released.items():
            if row[3] != MergeState.COMPLETE and callid not in expected:
                assert of.get(callid, callid) in faulty or any(
                    released.get(c, (0, 0, 0, 0))[2] == row[2] for c in expected), \
                    (callid, row)


@pytest.mark.parametrize("policy", ["resume", "exception"])
def test_transformation_applies_the_merge_policies(cli, tmp_path, db_kind, policy):
    """resume: an interaction merged without some of its calls is kept; exception: it is
    discarded whole, with a reason, as error-policy-irf-exception (log_db_resume) says."""
    with new_database(db_kind, tmp_path, "idb") as idb_url, \
            new_database(db_kind, tmp_path, "infomart") as im_url:
        simulate(idb_url, start=START, days=1, **{**SIM, "faults": 0.4})
        extra = ("extract-data-chunk-size = 21600\n\n[error-policy]\n"
                 f'error-policy-islink-dangling = "{policy}"\n'
                 f'error-policy-call-mergecall-missing = "{policy}"\n')
        path = _config(tmp_path, im_url, [("site", idb_url, None)], extra=extra)
        _extract(cli, path)
        result = invoke(cli, "transform", "-c", str(path), "--json")
        assert result.exit_code == 0, result.output
        counts = json.loads(result.stdout)["counts"]
        partial = {r for (r,) in _query(im_url, "SELECT DISTINCT MERGE_ROOTIRID FROM "
                                                "GIDB_G_CALL_V WHERE MERGE_STATE <> 0")}
        assert len(partial) >= 3
        facts = {r for (r,) in _query(im_url, "SELECT MEDIA_SERVER_ROOT_IXN_GUID FROM "
                                              "INTERACTION_FACT")}
        discards = _query(im_url, "SELECT GUID, CODE FROM STG_TRANSFORM_DISCARDS")
        merge_discards = {g for g, code in discards if code == 5}
        other = {g for g, code in discards if code != 5}
        if policy == "resume":
            assert not merge_discards
            assert partial - other <= facts
            assert counts["interactions partially merged"] == len(partial - other)
        else:
            assert not partial & facts
            assert merge_discards == partial - other
            assert "interactions partially merged" not in counts


def _transform(cli, path) -> None:
    result = invoke(cli, "transform", "-c", str(path))
    assert result.exit_code == 0, result.output


def test_interactions_across_idbs_are_transformed_as_one(cli, db_kind, tmp_path):
    """An IDB per site gives the facts one IDB recording both sites gives: each interaction
    once, its calls of both sites in it, every agent's part with its seconds; and those
    that stayed on one site equal the ledger."""
    from truth_check import (
        interaction_facts,
        interaction_mismatches,
        lineage_mismatches,
        state_mismatches,
    )

    sim = {**SIM, "faults": 0.0}
    with new_database(db_kind, tmp_path, "both") as both, \
            new_database(db_kind, tmp_path, "site1") as s1, \
            new_database(db_kind, tmp_path, "site2") as s2, \
            new_database(db_kind, tmp_path, "im_one") as im_one, \
            new_database(db_kind, tmp_path, "im_split") as im_split:
        simulate(both, start=START, days=1, **sim)
        simulate(s1, site_idbs=(s2,), start=START, days=1, **sim)
        (tmp_path / "one").mkdir()
        (tmp_path / "split").mkdir()
        one = _config(tmp_path / "one", im_one, [("both", both, None)])
        split = _config(tmp_path / "split", im_split,
                        [("one", s1, None, ["ICON_CFG", "ICON_CORE"]),
                         ("two", s2, None, ["ICON_CORE"])])
        for path in (one, split):
            _extract(cli, path)
            _transform(cli, path)

        def facts(url):
            return {guid: {k: v for k, v in f.items() if k != "id"}
                    for guid, f in interaction_facts(url).items()}

        got = facts(im_split)
        assert got == facts(im_one)
        site2 = {c for (c,) in _query(s1, "SELECT DISTINCT CALLID FROM SIM_PARTICIPATION "
                                          "WHERE SWITCH_ID = 212")}
        across = [c for c in site2 if c in got]
        assert len(across) >= 10
        # Site 2's agents are in the interactions begun at site 1, with their own part
        # (a consultation received from the other site counted as one until the
        # consultation call ended); every interaction equals the ledger.
        assert all(any(p["agent"] is not None for p in got[c]["irf"]) for c in across)
        end = int(dt.datetime.combine(START, dt.time(), dt.UTC).timestamp()) + 86400
        outcomes = dict(_query(s1, "SELECT CALLID, OUTCOME FROM SIM_INTERACTION"))
        assert interaction_mismatches(s1, im_split, ended_before=end - 3600) == []
        assert lineage_mismatches(s1, im_split, outcomes) == []
        assert state_mismatches(im_split) == []
        # Routed to a switch no ICON monitors: the routing point's IRF, routed, is the
        # interaction's last part.
        remote = [c for c, o in outcomes.items() if o == "routed_remote" and c in got]
        assert remote
        for c in remote:
            last = got[c]["irf"][-1]
            assert (last["cfg_type"], last["role"], last["result"]) == (2, "ROUTEDTO",
                                                                        "ROUTED"), (c, last)


def test_killed_multisite_extraction_ends_like_an_uninterrupted_one(db_kind, tmp_path):
    """An IDB per site, extracted while the day goes on, the extraction killed (SIGKILL) at
    random moments, voice calls left waiting in the merge table by some of the kills, then
    run to the end: the same GIDB content, merged calls and marks as one extraction of the
    whole day."""
    import random
    import signal
    import time

    from conftest import Watch, run_gim, spawn_gim

    def _source_marks(url):  # the two sources have a mark each for the same table
        return {(src, t): m for src, t, m in _query(
            url, "SELECT SOURCE_NAME, TABLE_NAME, MARK_TS FROM CTL_EXTRACT_HWM")}

    rng = random.Random(11)
    with new_database(db_kind, tmp_path, "site1") as s1, \
            new_database(db_kind, tmp_path, "site2") as s2, \
            new_database(db_kind, tmp_path, "killed") as im_killed, \
            new_database(db_kind, tmp_path, "once") as im_once:
        simulate(s1, site_idbs=(s2,), start=START, days=0, minutes=8 * 60, **SIM)
        daps = [("one", s1, None, ["ICON_CORE"]), ("two", s2, None, ["ICON_CORE"])]
        (tmp_path / "k").mkdir()
        (tmp_path / "o").mkdir()
        killed = _config(tmp_path / "k", im_killed, daps, "extract-data-chunk-size = 1800\n")
        assert run_gim("init", "-c", str(killed)).returncode == 0
        with Watch(im_killed, "SELECT SOURCE_NAME, TABLE_NAME, MARK_TS FROM "
                              "CTL_EXTRACT_HWM ORDER BY 1, 2") as marks_now:
            kills = waiting_after = 0
            for _ in range(12):
                if kills >= 5 and waiting_after >= 2:
                    break
                simulate(s1, site_idbs=(s2,), minutes=rng.choice((30, 45, 60)), resume=True)
                before = marks_now()
                proc = spawn_gim("extract", "--role", "ICON_CORE", "-c", str(killed))
                while proc.poll() is None and marks_now() == before:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0, 0.3))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                proc.wait(60)
                waiting_after += bool(_query(im_killed,
                                             "SELECT COUNT(*) FROM MRG_G_CALL_V")[0][0])
        assert kills >= 5 and waiting_after >= 2, (kills, waiting_after)
        # A killed run's PostgreSQL session may hold its advisory lock a moment longer
        # (exit 3, lock busy: nothing done).
        for _ in range(40):
            done = run_gim("extract", "--role", "ICON_CORE", "-c", str(killed))
            if done.returncode != 3:
                break
            time.sleep(0.5)
        assert done.returncode == 0, done.stderr
        once = _config(tmp_path / "o", im_once, daps)
        assert run_gim("extract", "--role", "ICON_CORE", "-c", str(once)).returncode == 0
        assert gidb_content(im_killed) == gidb_content(im_once)
        for table in ("GIDB_G_CALL_V", "MRG_G_CALL_V"):
            assert _calls(im_killed, table) == _calls(im_once, table)
        assert _source_marks(im_killed) == _source_marks(im_once)


def test_the_tables_a_pass_waits_for_are_all_it_reads():
    """On PostgreSQL the pass starts as soon as the tables in merge.INPUTS are extracted,
    while the others are still loading: a GIDB table its SQL reads and INPUTS leaves out
    would be read half loaded."""
    import inspect
    import re

    from gim.jobs import merge

    read = set(re.findall(r"GIDB_[A-Z_]+", inspect.getsource(merge)))
    assert read and read <= set(merge.INPUTS), read - set(merge.INPUTS)


def test_an_interaction_waits_for_every_idb_holding_its_calls(cli, db_kind, tmp_path):
    """An interaction with calls in two IDBs is transformed once both have extracted past
    its end, not when the IDB of its first call has: with the second site's parties
    extracted only up to noon, its interactions ending later wait (those of the first site
    alone do not), and go once that site catches up."""
    sim = {**SIM, "faults": 0.0}
    with new_database(db_kind, tmp_path, "site1") as s1, \
            new_database(db_kind, tmp_path, "site2") as s2, \
            new_database(db_kind, tmp_path, "im") as im:
        simulate(s1, site_idbs=(s2,), start=START, days=1, **sim)
        path = _config(tmp_path, im, [("one", s1, None, ["ICON_CFG", "ICON_CORE"]),
                                      ("two", s2, None, ["ICON_CORE"])])
        _extract(cli, path)
        keys = dict(_query(im, "SELECT SOURCE_NAME, DATA_SOURCE_KEY FROM CTL_DS"))
        groups: dict[tuple, list] = {}
        for msk, root, dsk, end in _query(im, "SELECT MERGE_SOURCE_KEY, MERGE_ROOTIRID, "
                                              "DATA_SOURCE_KEY, TERMINATED_TS FROM "
                                              "GIDB_G_CALL_V"):
            g = groups.setdefault((msk, root), [set(), 0])
            g[0].add(dsk)
            g[1] = max(g[1], end or 0)
        day = int(dt.datetime.combine(START, dt.time(), dt.UTC).timestamp())
        noon = day + 12 * 3600
        mark_sql = ("UPDATE CTL_EXTRACT_HWM SET MARK_TS = :m WHERE SOURCE_NAME = 'two' AND "
                    "TABLE_NAME = 'GIDB_G_PARTY_V'")
        (saved,), = _query(im, "SELECT MARK_TS FROM CTL_EXTRACT_HWM WHERE SOURCE_NAME = "
                               "'two' AND TABLE_NAME = 'GIDB_G_PARTY_V'")
        engine = sa.create_engine(im.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(sa.text(mark_sql), {"m": noon})
        _transform(cli, path)

        def transformed() -> set[tuple]:
            return set(_query(im, "SELECT DATA_SOURCE_KEY, MEDIA_SERVER_ROOT_IXN_GUID FROM "
                                  "INTERACTION_FACT"))

        got = transformed()
        late_cross = {k for k, (srcs, end) in groups.items()
                      if keys["two"] in srcs and end > noon and end < day + 20 * 3600}
        late_own = {k for k, (srcs, end) in groups.items()
                    if srcs == {keys["one"]} and noon < end < day + 20 * 3600}
        early_cross = {k for k, (srcs, end) in groups.items()
                       if keys["two"] in srcs and keys["one"] in srcs and end < noon - 600}
        assert late_cross and late_own and early_cross
        assert not late_cross & got
        assert late_own <= got and early_cross <= got
        with engine.begin() as conn:
            conn.execute(sa.text(mark_sql), {"m": saved})
        engine.dispose()
        _transform(cli, path)
        assert late_cross <= transformed()
