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
from gim.schema import metadata
from gim.schema.control import SCHEMA_VERSION

# What the product's documentation and the model's specification (infomart-model.md §3)
# spell out, written here by hand: the database is checked against these, not against
# gim.schema.seed.
DOCUMENTED_RESULTS = {
    "Abandoned", "AbnormalStop", "Cleared", "Completed", "Conferenced", "CustomerAbandoned",
    "Deferred", "DestinationBusy", "Diverted", "Incomplete", "None", "OutboundStopped",
    "Pulled", "Redirected", "Routed", "Transferred", "Unspecified"}
DOCUMENTED_RESULT_REASONS = {"Unspecified", "AbandonedWhileRinging", "AbandonedFromHold",
                             "RoutedOnNoAnswer", "AbandonedWhileQueued", "AnsweredByAgent",
                             "AnsweredByOther"}
DOCUMENTED_ROLES = {"Initiated", "InitiatedConsult", "Received", "ReceivedConsult",
                    "ReceivedCollaboration", "RoutedTo", "Unknown"}
DOCUMENTED_ROLE_REASONS = {"Unspecified", "ConferenceInitiator", "ConferenceJoined"}

CALL_RESULTS = {
    0: "Ok", 1: "Transferred", 2: "Conferenced", 3: "General Error", 4: "System Error",
    5: "RemoteRelease", 6: "Busy", 7: "No Answer", 8: "SIT Detected",
    9: "Answering Machine Detected", 10: "All Trunks Busy", 11: "SIT Invalid Num",
    12: "SIT VC", 13: "SIT IC", 14: "SIT Unknown Call State", 15: "SIT NC", 16: "SIT RO",
    17: "Fax Detected", 18: "Queue Full", 19: "Cleared", 20: "Overflowed", 21: "Abandoned",
    22: "Redirected", 23: "Forwarded", 24: "Consult", 25: "PickedUp", 26: "Dropped",
    27: "Dropped on No Answer", 28: "Unknown Call Result", 29: "Covered", 30: "Converse-On",
    31: "Bridged", 32: "Silence", 33: "Answer", 34: "NU Tone", 35: "No Dial Tone",
    36: "No Progress", 37: "No Ring Back Tone", 38: "No Established Detected",
    39: "Pager Detected", 40: "Wrong Party", 41: "Dial Error", 42: "Call Drop Error",
    43: "Switch Error", 44: "No Port Available", 45: "Transfer Error", 46: "Stale",
    47: "Agent CallBack Error", 48: "Group Call Back Error", 49: "Deafened", 50: "Held",
    51: "Do Not Call", 52: "Cancel Record", 53: "Wrong Number"}
RECORD_STATUSES = {0: "No Record Status", 1: "Ready", 2: "Retrieved", 3: "Updated",
                   4: "Stale", 5: "Cancelled", 6: "Agent Error", 7: "Chain Updated",
                   8: "Missed Callback", 9: "Chain Ready"}
RECORD_TYPES = {0: "No Record Type", 1: "Unknown", 2: "General", 3: "Campaign Rescheduled",
                4: "Personal Rescheduled", 5: "Personal Callback", 6: "Campaign Callback",
                7: "No Call"}
CONTACT_INFO_TYPES = {0: "No Contact Type", 1: "Home Phone", 2: "Direct Business Phone",
                      3: "Business With Ext", 4: "Mobile", 5: "Vacation Phone", 6: "Pager",
                      7: "Modem", 8: "Voice Mail", 9: "Pin Pager", 10: "E-mail Address",
                      11: "Instant Messaging"}
DIALING_MODES = {"Unknown", "Predictive", "Progressive", "Preview", "Push Preview",
                 "Progressive with seizing", "Predictive with seizing", "Power GVP",
                 "Progressive GVP", "Predictive GVP"}
DOCUMENTED_SUBTYPES = {
    "INBOUND": {"Inbound", "InboundNew", "InboundCustomerReply", "InboundCollaborationReply"},
    "OUTBOUND": {"Outbound", "OutboundNew", "OutboundReply", "OutboundNotification",
                 "OutboundAcknowledgement", "OutboundAutoResponse",
                 "OutboundCollaborationInvite", "OutboundRedirect"},
    "INTERNAL": {"Internal", "InternalCollaborationInvite", "InternalCollaborationReply",
                 "InternalConferenceInvite"},
    "UNKNOWN": {"Unknown"},
}


def _codes(url, table, key, code):
    return dict(table_snapshot(url, f"(SELECT {key}, {code} FROM {table}) t", key))


def _rows(url, sql):
    return table_snapshot(url, f"({sql}) t")


def _squash(name):
    return "".join(ch for ch in name.upper() if ch.isalnum())


def test_init_fills_the_thirteen_dimensions(cli, config_path, db_url):
    result = invoke(cli, "init", "-c", str(config_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""  # quiet when nobody watches

    # The outbound enumerations: every documented value under its OCS number, and nothing
    # else; codes are the names in upper case, words joined by '_'.
    for table, documented in (("CALL_RESULT", CALL_RESULTS),
                              ("RECORD_STATUS", RECORD_STATUSES),
                              ("RECORD_TYPE", RECORD_TYPES),
                              ("CONTACT_INFO_TYPE", CONTACT_INFO_TYPES)):
        rows = _rows(db_url, f"SELECT {table}_KEY, {table}, {table}_CODE FROM {table}")
        assert {k: name for k, name, _ in rows} == documented, table
        for _, name, code in rows:
            assert code == "_".join("".join(c if c.isalnum() else " " for c in name.upper())
                                    .split()), (table, name, code)
    assert _codes(db_url, "CALL_RESULT", "CALL_RESULT_KEY", "CALL_RESULT_CODE")[28] == \
        "UNKNOWN_CALL_RESULT"

    modes = {k: (name, code) for k, name, code in _rows(
        db_url, "SELECT DIALING_MODE_KEY, DIALING_MODE, DIALING_MODE_CODE FROM DIALING_MODE")}
    assert DIALING_MODES <= {name for name, _ in modes.values()}
    # Keys are Configuration Server's dial-mode numbers.
    assert modes[0][0] == "Unknown" and modes[1] == ("Predictive", "PREDICTIVE")
    assert modes[3] == ("Preview", "PREVIEW") and modes[8] == ("Push Preview", "PUSH_PREVIEW")
    assert _codes(db_url, "CAMPAIGN_GROUP_STATE", "CAMPAIGN_GROUP_STATE_KEY",
                  "CAMPAIGN_GROUP_STATE_CODE") == {0: "UNKNOWN", 1: "LOADED", 2: "STARTED",
                                                   3: "UNLOADING"}

    # ATTEMPT_DISPOSITION: the documented causes; only CHAINEVENTRECORDRESCHEDULE has the
    # by-agent and by-system descriptors. The key holds the cause in its low 8 bits and the
    # descriptor in the next 8.
    dispositions = _rows(db_url, "SELECT ATTEMPT_DISPOSITION_KEY, CAUSE_ID, CAUSE_CODE, "
                                 "DESCRIPTOR_CODE FROM ATTEMPT_DISPOSITION")
    by_cause = {}
    for key, cause_id, cause_code, descriptor in dispositions:
        assert key & 0xFF == cause_id
        assert key >> 8 == {"UNKNOWN": 0, "BY_AGENT": 1, "BY_SYSTEM": 2}[descriptor]
        by_cause.setdefault(cause_code, set()).add(descriptor)
    assert by_cause["CHAINEVENTRECORDRESCHEDULE"] == {"UNKNOWN", "BY_AGENT", "BY_SYSTEM"}
    assert by_cause["CHAINREJECTED"] == by_cause["CHAINRESCHEDTOCONTINUE"] == {"UNKNOWN"}
    assert all(d == {"UNKNOWN"} for c, d in by_cause.items()
               if c != "CHAINEVENTRECORDRESCHEDULE")

    # TECHNICAL_DESCRIPTOR: documented values only, codes the names squashed.
    descriptors = _rows(db_url, "SELECT TECHNICAL_RESULT, TECHNICAL_RESULT_CODE, "
                                "RESULT_REASON, RESULT_REASON_CODE, RESOURCE_ROLE, "
                                "RESOURCE_ROLE_CODE, ROLE_REASON, ROLE_REASON_CODE "
                                "FROM TECHNICAL_DESCRIPTOR")
    for row in descriptors:
        for name, code in zip(row[::2], row[1::2], strict=True):
            assert code == _squash(name), row
    assert {r[0] for r in descriptors} <= DOCUMENTED_RESULTS
    assert {"Abandoned", "Completed", "Diverted", "Redirected"} <= {r[0] for r in descriptors}
    assert {r[2] for r in descriptors} <= DOCUMENTED_RESULT_REASONS
    assert {"RoutedOnNoAnswer", "AbandonedWhileRinging", "AbandonedFromHold"} <= {
        r[2] for r in descriptors}
    assert {r[4] for r in descriptors} == DOCUMENTED_ROLES
    assert {r[6] for r in descriptors} == DOCUMENTED_ROLE_REASONS
    assert ("Redirected", "RoutedOnNoAnswer") in {(r[0], r[2]) for r in descriptors}

    # INTERACTION_TYPE: the four documented types, each with its documented subtypes.
    types = _rows(db_url, "SELECT INTERACTION_TYPE, INTERACTION_TYPE_CODE, "
                          "INTERACTION_SUBTYPE, INTERACTION_SUBTYPE_CODE FROM INTERACTION_TYPE")
    assert {(t, c) for t, c, _, _ in types} == {
        ("Unknown", "UNKNOWN"), ("Inbound", "INBOUND"), ("Outbound", "OUTBOUND"),
        ("Internal", "INTERNAL")}
    for code, subtypes in DOCUMENTED_SUBTYPES.items():
        assert subtypes <= {s for _, c, s, _ in types if c == code}, code
    assert all(sc == s.upper() for _, _, s, sc in types)

    media = {code: online for code, online in _rows(
        db_url, "SELECT MEDIA_NAME_CODE, IS_ONLINE FROM MEDIA_TYPE")}
    assert media["VOICE"] == 1 and media["CHAT"] == 1 and media["EMAIL"] == 0
    assert {"SMS", "WEBCALLBACK", "WORKITEM"} <= set(media)

    states = _rows(db_url, "SELECT STATE_TYPE, STATE_TYPE_CODE, STATE_NAME, STATE_NAME_CODE "
                           "FROM RESOURCE_STATE")
    assert {(t, c) for t, c, _, _ in states} >= {
        ("Unknown", "UNKNOWN"), ("Ready", "READY"), ("NotReady", "NOT_READY"),
        ("Busy", "BUSY")}
    assert {(n, c) for _, _, n, c in states} >= {
        ("Ready", "READY"), ("NotReady", "NOT_READY"), ("AfterCallWork", "ACW"),
        ("Busy", "BUSY"), ("Unknown", "UNKNOWN")}
    assert scalar(db_url, "SELECT STATE_TYPE_CODE FROM RESOURCE_STATE WHERE "
                          "RESOURCE_STATE_KEY = 0") == "UNKNOWN"  # the type list starts so
    assert {(n, c) for n, c in _rows(
        db_url, "SELECT DISTINCT STATE_NAME, STATE_NAME_CODE FROM INTERACTION_RESOURCE_STATE")} \
        == {("Unknown", "UNKNOWN"), ("Initiate", "INITIATE"), ("Alert", "ALERT"),
            ("Connect", "CONNECT"), ("Hold", "HOLD"), ("Wrap", "WRAP")}

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
