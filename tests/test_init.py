"""`gim init` on SQLite and PostgreSQL: the fixed dimensions hold their documented rows,
DATE_TIME has no gap, a second run changes nothing, and calendar settings stay fixed."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from conftest import invoke, scalar, table_snapshot, write_config

from gim.calendar import ACTIVE_END_KEY, INTERVAL, day_start_key
from gim.config import load_config
from gim.db import make_engine
from gim.jobs.initialize import installed_version
from gim.runner import JobSpec, run_job
from gim.schema import metadata, seed
from gim.schema.control import SCHEMA_VERSION
from gim.schema.dims import FIXED_DIMENSIONS

DOCUMENTED_RESULTS = {
    "Abandoned", "AbnormalStop", "Cleared", "Completed", "Conferenced", "CustomerAbandoned",
    "Deferred", "DestinationBusy", "Diverted", "Incomplete", "None", "OutboundStopped",
    "Pulled", "Redirected", "Routed", "Transferred", "Unspecified"}


def _codes(url, table, key, code):
    return dict(table_snapshot(url, f"(SELECT {key}, {code} FROM {table}) t", key))


def test_init_fills_the_thirteen_dimensions(cli, config_path, db_url):
    result = invoke(cli, "init", "-c", str(config_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""  # quiet when nobody watches

    # Every fixed dimension holds exactly gim's seed.
    wanted = seed.fixed_rows()
    for table in FIXED_DIMENSIONS:
        cols = list(wanted[table.name][0])
        got = table_snapshot(db_url, f"(SELECT {', '.join(cols)} FROM {table.name}) t",
                             cols[0])
        assert got == sorted(tuple(r[c] for c in cols) for r in wanted[table.name]), table

    # ... and the seed holds the values the product documents.
    results = {r[0] for r in table_snapshot(
        db_url, "(SELECT DISTINCT TECHNICAL_RESULT FROM TECHNICAL_DESCRIPTOR) t")}
    assert results <= DOCUMENTED_RESULTS and {"Abandoned", "Completed", "Diverted"} <= results
    roles = {r[0] for r in table_snapshot(
        db_url, "(SELECT DISTINCT RESOURCE_ROLE_CODE FROM TECHNICAL_DESCRIPTOR) t")}
    assert {"RECEIVED", "RECEIVEDCONSULT", "INITIATEDCONSULT", "ROUTEDTO"} <= roles
    types = {r[0] for r in table_snapshot(
        db_url, "(SELECT DISTINCT INTERACTION_TYPE_CODE FROM INTERACTION_TYPE) t")}
    assert types == {"UNKNOWN", "INBOUND", "OUTBOUND", "INTERNAL"}
    assert scalar(db_url, "SELECT IS_ONLINE FROM MEDIA_TYPE WHERE MEDIA_NAME_CODE='VOICE'") == 1
    assert scalar(db_url, "SELECT IS_ONLINE FROM MEDIA_TYPE WHERE MEDIA_NAME_CODE='EMAIL'") == 0
    assert {r[0] for r in table_snapshot(
        db_url, "(SELECT DISTINCT STATE_TYPE_CODE FROM RESOURCE_STATE) t")} >= {
        "READY", "NOT_READY", "BUSY", "ACW"}
    assert {r[0] for r in table_snapshot(
        db_url, "(SELECT DISTINCT STATE_NAME_CODE FROM INTERACTION_RESOURCE_STATE) t")} == {
        "UNKNOWN", "INITIATE", "ALERT", "CONNECT", "HOLD", "WRAP"}
    call_results = _codes(db_url, "CALL_RESULT", "CALL_RESULT_KEY", "CALL_RESULT_CODE")
    assert list(call_results) == list(range(54))
    assert call_results[28] == "UNKNOWN_CALL_RESULT" and call_results[7] == "NO_ANSWER"
    assert list(_codes(db_url, "RECORD_STATUS", "RECORD_STATUS_KEY", "RECORD_STATUS")) == \
        list(range(10))
    assert list(_codes(db_url, "RECORD_TYPE", "RECORD_TYPE_KEY", "RECORD_TYPE")) == \
        list(range(8))
    assert list(_codes(db_url, "CONTACT_INFO_TYPE", "CONTACT_INFO_TYPE_KEY",
                       "CONTACT_INFO_TYPE")) == list(range(12))
    modes = _codes(db_url, "DIALING_MODE", "DIALING_MODE_KEY", "DIALING_MODE_CODE")
    assert modes[3] == "PREVIEW" and modes[8] == "PUSH_PREVIEW" and modes[1] == "PREDICTIVE"
    assert _codes(db_url, "CAMPAIGN_GROUP_STATE", "CAMPAIGN_GROUP_STATE_KEY",
                  "CAMPAIGN_GROUP_STATE_CODE") == {0: "UNKNOWN", 1: "LOADED", 2: "STARTED",
                                                   3: "UNLOADING"}
    assert _codes(db_url, "ATTEMPT_DISPOSITION", "ATTEMPT_DISPOSITION_KEY",
                  "DESCRIPTOR_CODE") == {0: "UNKNOWN", 256: "BY_AGENT", 512: "BY_SYSTEM"}

    # DATE_TIME: no gap, no duplicate, from today to date-time-max-days-ahead, plus the
    # far-future row active facts end at.
    lo = scalar(db_url, f"SELECT MIN(DATE_TIME_KEY) FROM DATE_TIME "
                        f"WHERE DATE_TIME_KEY <> {ACTIVE_END_KEY}")
    hi = scalar(db_url, f"SELECT MAX(DATE_TIME_KEY) FROM DATE_TIME "
                        f"WHERE DATE_TIME_KEY <> {ACTIVE_END_KEY}")
    count = scalar(db_url, f"SELECT COUNT(*) FROM DATE_TIME WHERE DATE_TIME_KEY <> "
                           f"{ACTIVE_END_KEY}")
    distinct = scalar(db_url, "SELECT COUNT(DISTINCT DATE_TIME_KEY) FROM DATE_TIME")
    assert count == (hi - lo) // INTERVAL + 1 and distinct == count + 1
    today = dt.datetime.now(dt.UTC).date()
    assert lo == day_start_key(today, "GMT")
    assert hi == day_start_key(today + dt.timedelta(days=367), "GMT") - INTERVAL
    assert scalar(db_url, f"SELECT LABEL_YYYY FROM DATE_TIME "
                          f"WHERE DATE_TIME_KEY = {ACTIVE_END_KEY}") == "2038"
    assert scalar(db_url, "SELECT MAX(SCHEMA_VERSION) FROM CTL_SCHEMA_INFO") == SCHEMA_VERSION
    assert scalar(db_url, "SELECT STATUS FROM CTL_ETL_HISTORY WHERE JOB_NAME='init'") == \
        "COMPLETE"


def _all_tables(url):
    return {t.name: table_snapshot(url, t.name) for t in metadata.sorted_tables
            if t.name != "CTL_ETL_HISTORY"}


def test_second_init_changes_nothing(cli, config_path, db_url):
    assert invoke(cli, "init", "-c", str(config_path)).exit_code == 0
    before = _all_tables(db_url)
    result = invoke(cli, "init", "-c", str(config_path), "--json")
    assert result.exit_code == 0
    assert '"status": "COMPLETE"' in result.stdout
    assert _all_tables(db_url) == before
    assert scalar(db_url, "SELECT COUNT(*) FROM CTL_ETL_HISTORY WHERE STATUS='COMPLETE'") == 2


def test_calendar_settings_cannot_change_after_init(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    path = write_config(tmp_path, db_url, '[date-time]\ndate-time-tz = "Europe/Paris"\n')
    result = invoke(cli, "init", "-c", str(path))
    assert result.exit_code == 5
    assert "[date-time] date-time-tz: 'Europe/Paris' differs from 'GMT'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_time_zone_and_start_date(cli, tmp_path, db_url, db_kind):
    path = write_config(tmp_path, db_url, '''
        [gim-etl]
        etl-start-date = "2026-03-01"
        partitioning-ahead-range = 2
        partitioning-interval-size-gim = 604800

        [date-time]
        date-time-tz = "America/New_York"
        date-time-max-days-ahead = 10
        date-time-min-days-ahead = 5
        ''')
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    start = day_start_key(dt.date(2026, 3, 1), "America/New_York")
    assert scalar(db_url, "SELECT MIN(DATE_TIME_KEY) FROM DATE_TIME") == start
    assert start % 86400 == 5 * 3600  # local midnight is 05:00 UTC in winter
    # 2026-03-08 is 23 hours long in New York.
    day = day_start_key(dt.date(2026, 3, 8), "America/New_York")
    assert scalar(db_url, f"SELECT COUNT(*) FROM DATE_TIME WHERE DATE_TIME_DAY_KEY = {day}") \
        == 92
    if db_kind == "postgresql":
        # Weekly partitions on the epoch grid (epoch weeks start on Thursdays) from the
        # start date to partitioning-ahead-range days from now.
        first = scalar(db_url, "SELECT MIN(relname) FROM pg_class WHERE relname LIKE "
                               "'ctl_audit_log_p2%' AND relkind = 'r'")
        assert first == "ctl_audit_log_p20260226"
        last = scalar(db_url, "SELECT MAX(relname) FROM pg_class WHERE relname LIKE "
                              "'ctl_audit_log_p2%' AND relkind = 'r'")
        ahead = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)
        last_start = dt.date(1970, 1, 1) + dt.timedelta(
            days=((ahead - dt.date(1970, 1, 1)).days // 7) * 7)
        assert last == f"ctl_audit_log_p{last_start:%Y%m%d}"


def test_any_job_initializes_a_new_infomart_first(tmp_path, db_url):
    config = load_config(write_config(tmp_path, db_url), env={})
    seen = {}

    def body(ctx):
        seen["version"] = installed_version(ctx.engine)
        return "done"

    result = run_job(JobSpec("probe", locks=("probe",)), config, body)
    assert result.exit_code == 0, result.message
    assert seen["version"] == SCHEMA_VERSION
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM MEDIA_TYPE")).scalar() > 0
        assert conn.execute(sa.text(
            "SELECT STATUS FROM CTL_ETL_HISTORY WHERE JOB_NAME = 'probe'")).scalar() == \
            "COMPLETE"
    engine.dispose()
