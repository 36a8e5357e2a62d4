"""The job contract, end to end through the `gim` command: locks (exit 3), the migration
gate (exit 4), history rows, signals, unreachable databases, output and help."""

from __future__ import annotations

import json
import signal
import time

import psycopg
import pytest
from conftest import execute, invoke, run_gim, scalar, spawn_gim, write_config

from gim.calendar import ACTIVE_END_KEY, INTERVAL
from gim.cli import app
from gim.config import load_config
from gim.runner import ALL_LOCKS, JobSpec, file_locks, lock_is_held, run_job
from gim.schema import seed
from gim.schema.control import SCHEMA_VERSION

# A calendar long enough that initialization runs for several seconds.
SLOW = """
[gim-etl]
etl-start-date = "2024-01-01"
partitioning-interval-size-gim = 2592000
"""


def _wait_for(predicate, timeout=60.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_second_copy_exits_3_while_the_lock_is_held(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    config = load_config(path, env={})
    with file_locks(config, ("init",), "init", "test-holder"):
        result = invoke(cli, "init", "-c", str(path))
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "lock 'init' is held by 'init' (pid" in lines[0]
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0


def test_two_simultaneous_runs_one_exits_3(tmp_path, db_url):
    path = write_config(tmp_path, db_url, SLOW)
    config = load_config(path, env={})
    first = spawn_gim("init", "-c", str(path))
    try:
        _wait_for(lambda: lock_is_held(config, "init"), what="the first copy's lock")
        second = run_gim("init", "-c", str(path))
        assert second.returncode == 3
        assert second.stderr.count("\n") == 1 and "is held by 'init'" in second.stderr
        # The second copy left no trace in the history.
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
    assert scalar(db_url, "SELECT COUNT(*) FROM CTL_ETL_HISTORY") == 1


def test_postgres_advisory_lock_stops_a_second_host(tmp_path):
    from conftest import pg_database

    with pg_database() as url:
        path = write_config(tmp_path, url)
        from gim.db.ops import _lock_id

        with psycopg.connect(url, autocommit=True) as other_host:
            other_host.execute(f"SELECT pg_advisory_lock({_lock_id('init')})")
            result = run_gim("init", "-c", str(path))
        assert result.returncode == 3
        assert "held on the Info Mart by another host" in result.stderr
        assert run_gim("init", "-c", str(path)).returncode == 0


def test_migration_gate(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    execute(db_url, "DELETE FROM CTL_SCHEMA_INFO",
            "INSERT INTO CTL_SCHEMA_INFO (SCHEMA_VERSION, GIM_VERSION, APPLIED_TS) "
            "VALUES (0, '0.0.1', 0)")
    status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
    assert status["schema"] == {"installed": 0, "code": SCHEMA_VERSION,
                                "state": "migration needed"}
    assert "run `gim migrate`" in invoke(cli, "status", "-c", str(path)).stdout
    for command in (["init"], ["extract", "--role", "ICON_CORE"], ["extract", "--role", "all"],
                    ["transform"]):
        result = invoke(cli, *command, "-c", str(path))
        assert result.exit_code == 4, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "older than this gim's" in lines[0] and "gim migrate" in lines[0]
    # Nothing ran: only init's run is recorded.
    assert scalar(db_url, "SELECT COUNT(*) FROM CTL_ETL_HISTORY") == 1
    config = load_config(path, env={})
    probe = run_job(JobSpec("probe", locks=("probe",)), config, lambda ctx: "ran")
    assert probe.exit_code == 4 and probe.message and "gim migrate" in probe.message

    result = invoke(cli, "migrate", "-c", str(path))
    assert result.exit_code == 0, result.stderr
    status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
    assert status["schema"]["state"] == "current"
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0

    # An Info Mart newer than the code: every job refuses, migrate too.
    execute(db_url, "INSERT INTO CTL_SCHEMA_INFO (SCHEMA_VERSION, GIM_VERSION, APPLIED_TS) "
                    f"VALUES ({SCHEMA_VERSION + 1}, '9.9.9', 0)")
    for command in (["init"], ["migrate"], ["extract", "--role", "ICON_CFG"], ["transform"]):
        result = invoke(cli, *command, "-c", str(path))
        assert result.exit_code == 4 and "upgrade gim" in result.stderr, command


def test_on_demand_migration(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url, "[schedule]\non-demand-migration = true\n")
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    execute(db_url, "DELETE FROM CTL_SCHEMA_INFO",
            "INSERT INTO CTL_SCHEMA_INFO (SCHEMA_VERSION, GIM_VERSION, APPLIED_TS) "
            "VALUES (0, '0.0.1', 0)")
    result = invoke(cli, "init", "-c", str(path), "--json")
    assert result.exit_code == 0
    assert "migrating first" in json.loads(result.stdout)["notes"][0]
    assert scalar(db_url, "SELECT MAX(SCHEMA_VERSION) FROM CTL_SCHEMA_INFO") == SCHEMA_VERSION


def _assert_complete(url):
    """The state a complete initialization leaves."""
    assert scalar(url, "SELECT MAX(SCHEMA_VERSION) FROM CTL_SCHEMA_INFO") == SCHEMA_VERSION
    lo, hi, n = (scalar(url, f"SELECT {f}(DATE_TIME_KEY) FROM DATE_TIME "
                             f"WHERE DATE_TIME_KEY <> {ACTIVE_END_KEY}")
                 for f in ("MIN", "MAX", "COUNT"))
    assert n == (hi - lo) // INTERVAL + 1
    assert scalar(url, f"SELECT COUNT(*) FROM DATE_TIME WHERE DATE_TIME_KEY = {ACTIVE_END_KEY}") \
        == 1
    for name, rows in seed.fixed_rows().items():
        assert scalar(url, f"SELECT COUNT(*) FROM {name}") == len(rows), name


def test_sigterm_during_init_then_init_completes(tmp_path, db_url):
    path = write_config(tmp_path, db_url, SLOW)
    proc = spawn_gim("init", "-c", str(path))

    def some_calendar():
        try:
            return (scalar(db_url, "SELECT COUNT(*) FROM DATE_TIME") or 0) > 0
        except Exception:  # noqa: BLE001 - table not there yet
            return False

    _wait_for(some_calendar, what="the first calendar batch")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [
        "gim init: error: interrupted by SIGTERM; what it committed stays, nothing half-done "
        "was kept: run the job again to finish"]
    assert scalar(db_url, "SELECT STATUS FROM CTL_ETL_HISTORY") == "FAILED"
    assert scalar(db_url, "SELECT COUNT(*) FROM CTL_SCHEMA_INFO") == 0  # not initialized yet
    done = run_gim("init", "-c", str(path))
    assert done.returncode == 0, done.stderr
    _assert_complete(db_url)


def test_sigkill_leaves_an_abandoned_run_that_the_next_run_closes(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url, SLOW)
    proc = spawn_gim("init", "-c", str(path))
    _wait_for(lambda: _count_or_zero(db_url, "DATE_TIME") > 0, what="calendar rows")
    proc.kill()
    proc.wait(30)
    status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
    assert status["schema"]["state"] == "not initialized"
    assert status["jobs"][0]["status"] == "ABANDONED"
    assert status["locks"] == []
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    _assert_complete(db_url)
    statuses = sorted(r for (r,) in _rows(db_url, "SELECT STATUS FROM CTL_ETL_HISTORY"))
    assert statuses == ["COMPLETE", "FAILED"]
    assert "abandoned" in scalar(db_url, "SELECT MESSAGE FROM CTL_ETL_HISTORY "
                                         "WHERE STATUS = 'FAILED'")


def _count_or_zero(url, table):
    try:
        return scalar(url, f"SELECT COUNT(*) FROM {table}") or 0
    except Exception:  # noqa: BLE001
        return 0


def _rows(url, sql):
    from conftest import table_snapshot

    return table_snapshot(url, f"({sql}) t")


def test_unreachable_infomart_is_exit_1_naming_it(cli, tmp_path):
    path = write_config(tmp_path, "postgresql://gim:hunter2@127.0.0.1:1/infomart")
    result = invoke(cli, "init", "-c", str(path))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert "cannot connect to Info Mart postgresql+psycopg://gim:***@127.0.0.1:1/infomart" \
        in line
    assert "hunter2" not in line
    assert "hunter2" not in (tmp_path / "gim.log").read_text()
    status = invoke(cli, "status", "-c", str(path))
    assert status.exit_code == 1 and "cannot connect" in status.stderr


def test_quiet_on_success_json_on_request_and_no_password_in_logs(tmp_path):
    from conftest import pg_database

    with pg_database() as url:
        secret_url = url.replace("postgres@", "postgres:not-a-real-secret@")
        path = write_config(tmp_path, secret_url)
        quiet = run_gim("init", "-c", str(path))
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
        loud = run_gim("init", "-c", str(path), "--json", "-v")
        assert loud.returncode == 0
        summary = json.loads(loud.stdout)
        assert summary["status"] == "COMPLETE" and summary["job"] == "init"
        assert summary["exit_code"] == 0 and summary["job_id"]
        assert "init COMPLETE" in loud.stderr
        for text in (loud.stdout, loud.stderr, (tmp_path / "gim.log").read_text(),
                     run_gim("status", "-c", str(path)).stdout,
                     run_gim("config", "show", "-c", str(path)).stdout):
            assert "not-a-real-secret" not in text


def test_status_lists_runs_and_held_locks(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    config = load_config(path, env={})
    with file_locks(config, ("transform",), "transform", "job-1"):
        status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
        text = invoke(cli, "status", "-c", str(path)).stdout
    assert [j["job"] for j in status["jobs"]] == ["init"]
    assert status["jobs"][0]["status"] == "COMPLETE"
    assert [lk["lock"] for lk in status["locks"]] == ["transform"]
    assert "lock transform held by 'transform'" in text
    assert set(ALL_LOCKS) >= {"init", "transform", "migrate"}


def test_status_of_a_new_sqlite_path_creates_nothing(cli, tmp_path):
    path = write_config(tmp_path, f"sqlite:///{tmp_path}/none/im.db")
    status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
    assert status["schema"]["state"] == "not initialized"
    assert not (tmp_path / "none").exists()


def _commands(command, path=()):
    """Every command of the Typer tree, with its path."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_describes_every_command_and_option(cli):
    import typer

    seen = []
    for path, command in _commands(typer.main.get_command(app)):
        seen.append(" ".join(path))
        result = invoke(cli, *path, "--help")
        assert result.exit_code == 0, path
        assert f"Usage: gim {' '.join(path)}".rstrip() in result.stdout
        assert (command.help or "").strip(), f"{path}: no help"
        for param in command.params:
            if param.param_type_name == "option":
                assert (param.help or "").strip(), f"{path} {param.opts}: no help"
                assert param.opts[0] in result.stdout, (path, param.opts)
            else:  # arguments are documented in the command's help
                assert param.human_readable_name.upper() in command.help.upper(), \
                    (path, param.name)
        if path and not hasattr(command, "commands"):
            assert "Example: gim" in command.help, f"{path}: no example"
    assert {"init", "migrate", "extract", "transform", "status", "demo", "simulate",
            "config show", "config check", "config template", "idb create"} <= set(seen)


def test_usage_error_is_exit_2(cli):
    assert invoke(cli, "init", "--no-such-option").exit_code == 2
    assert invoke(cli, "no-such-command").exit_code == 2


def _config_text(url, log_file="gim.log", lock_dir="locks", extra=""):
    return (f'[infomart]\nurl = "{url}"\n\n[lock]\ndir = "{lock_dir}"\n\n'
            f'[log]\nfile = "{log_file}"\n' + extra)


def test_without_a_log_file_nothing_but_the_error_line_reaches_stderr(tmp_path, db_url):
    path = tmp_path / "gim.toml"
    # A DAP out of reach: init succeeds with a note (a warning in the log).
    path.write_text(_config_text(db_url, log_file="") + (
        '\n[[dap]]\nname = "away"\nurl = "postgresql://reader@127.0.0.1:1/idb"\n'
        'roles = ["ICON_CORE"]\n'))
    done = run_gim("init", "-c", str(path))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not (tmp_path / "gim.log").exists()
    path.write_text(_config_text("postgresql://gim@127.0.0.1:1/infomart", log_file=""))
    failed = run_gim("init", "-c", str(path))
    assert failed.returncode == 1
    assert len(failed.stderr.splitlines()) == 1, failed.stderr
    assert failed.stderr.startswith("gim init: error: cannot connect to Info Mart")


def test_unusable_log_file_or_lock_folder_is_a_configuration_error(cli, tmp_path, db_url):
    (tmp_path / "logs").mkdir()
    path = tmp_path / "gim.toml"
    for text, culprit in ((_config_text(db_url, log_file="logs"), "[log] file: cannot open"),
                          (_config_text(db_url, lock_dir="gim.toml/locks"),
                           "[lock] dir: cannot create the lock folder")):
        path.write_text(text)
        result = invoke(cli, "init", "-c", str(path))
        assert result.exit_code == 5, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{path}: {culprit}" in lines[0], lines
    # Nothing was done: the Info Mart was not even created.
    assert not (tmp_path / "infomart.db").exists() or \
        scalar(db_url, "SELECT COUNT(*) FROM sqlite_master") == 0


def test_repeated_sigterm_still_records_the_outcome(tmp_path, db_url):
    path = write_config(tmp_path, db_url, SLOW)
    proc = spawn_gim("init", "-c", str(path))
    _wait_for(lambda: _count_or_zero(db_url, "DATE_TIME") > 0, what="calendar rows")
    # A first SIGTERM, then more while the job rolls back and records its outcome (an
    # operator pressing Ctrl-C again and again).
    for _ in range(40):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.01)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert err.strip().splitlines() == [
        "gim init: error: interrupted by SIGTERM; what it committed stays, nothing half-done "
        "was kept: run the job again to finish"]
    assert _rows(db_url, "SELECT STATUS, EXIT_CODE FROM CTL_ETL_HISTORY") == [("FAILED", 1)]
    assert run_gim("init", "-c", str(path)).returncode == 0
    _assert_complete(db_url)


def test_changed_calendar_setting_stops_every_job(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    path = write_config(tmp_path, db_url, '[date-time]\nfirst-day-of-week = 2\n')
    for command in (["transform"], ["extract", "--role", "ICON_CORE"], ["migrate"], ["init"]):
        result = invoke(cli, *command, "-c", str(path))
        assert result.exit_code == 5, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert f"{path}: [date-time] first-day-of-week: '2' differs from '1'" in lines[0]
    assert scalar(db_url, "SELECT COUNT(*) FROM CTL_ETL_HISTORY") == 1


def test_migrate_brings_a_schema_1_infomart_up_to_date(cli, tmp_path, db_url, db_kind):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    # Schema 1: CTL_ETL_HISTORY without START_TS_MS, descriptors on the unknown cause.
    execute(db_url, "DROP INDEX ix_ctl_etl_history_job_ms",
            "ALTER TABLE CTL_ETL_HISTORY DROP COLUMN START_TS_MS",
            "UPDATE CTL_SCHEMA_INFO SET SCHEMA_VERSION = 1",
            "INSERT INTO ATTEMPT_DISPOSITION (ATTEMPT_DISPOSITION_KEY, CAUSE, CAUSE_ID, "
            "CAUSE_CODE, DESCRIPTOR, DESCRIPTOR_CODE, CREATE_AUDIT_KEY, UPDATE_AUDIT_KEY) "
            "VALUES (256, 'Unknown', 0, 'UNKNOWN', 'By agent', 'BY_AGENT', 0, 0)")
    status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
    assert status["schema"]["state"] == "migration needed"
    assert [(j["job"], j["status"]) for j in status["jobs"]] == [("init", "COMPLETE")]
    assert invoke(cli, "transform", "-c", str(path)).exit_code == 4

    result = invoke(cli, "migrate", "-c", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["message"] == \
        f"schema migrated from version 1 to {SCHEMA_VERSION}"
    assert scalar(db_url, "SELECT MAX(SCHEMA_VERSION) FROM CTL_SCHEMA_INFO") == SCHEMA_VERSION
    # Every run, the migration's own included, has its millisecond start.
    assert _rows(db_url, "SELECT JOB_NAME, START_TS_MS - CAST(START_TS AS BIGINT) * 1000 FROM "
                         "CTL_ETL_HISTORY") == [("init", 0), ("init", 0), ("migrate", 0)]
    assert scalar(db_url, "SELECT COUNT(*) FROM ATTEMPT_DISPOSITION WHERE "
                          "ATTEMPT_DISPOSITION_KEY = 256") == 0
    status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
    assert status["schema"]["state"] == "current"
    assert invoke(cli, "migrate", "-c", str(path)).exit_code == 0  # nothing left to do
    done = invoke(cli, "init", "-c", str(path), "--json")
    assert done.exit_code == 0
    new = scalar(db_url, "SELECT START_TS_MS FROM CTL_ETL_HISTORY WHERE JOB_ID = :j",
                 j=json.loads(done.stdout)["job_id"])
    assert new is not None and new // 1000 == scalar(
        db_url, "SELECT START_TS FROM CTL_ETL_HISTORY WHERE JOB_ID = :j",
        j=json.loads(done.stdout)["job_id"])


@pytest.mark.parametrize("form", ["query", "no-user", "at-signs"])
def test_no_form_of_password_reaches_output_log_or_status(tmp_path, form):
    from conftest import pg_database

    with pg_database() as url:
        base, _, dbname = url.rpartition("/")
        host = base.split("@", 1)[1]
        secret_url, secret = {
            "query": (f"postgresql://postgres@{host}/{dbname}?password=pw-in-query",
                      "pw-in-query"),
            "no-user": (f"postgresql://:pw-no-user@{host}/{dbname}", "pw-no-user"),
            "at-signs": (f"postgresql://postgres:pw@t@signs@{host}/{dbname}", "t@signs"),
        }[form]
        path = write_config(tmp_path, secret_url)
        init = run_gim("init", "-c", str(path), "-v", "--json")
        # With no user name libpq logs in as the system user, who may have no role.
        assert init.returncode in ((0, 1) if form == "no-user" else (0,)), init.stderr
        texts = [init.stdout, init.stderr, (tmp_path / "gim.log").read_text()]
        for args in (["status"], ["status", "--json"], ["config", "show"],
                     ["config", "show", "--json"]):
            shown = run_gim(*args, "-c", str(path))
            texts += [shown.stdout, shown.stderr]
        for text in texts:
            assert secret not in text
        assert any("***" in text for text in texts)


def test_log_lines_never_hold_a_password(tmp_path, db_url):
    config = load_config(write_config(tmp_path, db_url), env={})

    def body(ctx):
        ctx.log.info("reading postgresql://reader:pw-one@icon/idb, then "
                     "postgresql://reader@icon/idb?sslmode=require&password=pw-two.")
        ctx.log.warning("conninfo host=icon password=pw-three dbname=idb; also "
                        "(postgresql://:pw-four@icon/idb) and postgresql://r:pw@five@icon/x")
        return None

    assert run_job(JobSpec("probe", locks=("probe",)), config, body).exit_code == 0
    text = (tmp_path / "gim.log").read_text()
    for secret in ("pw-one", "pw-two", "pw-three", "pw-four", "five"):
        assert secret not in text, secret
    assert "postgresql://reader:***@icon/idb, then" in text
    assert "password=***" in text and "(postgresql://:***@icon/idb)" in text


def _schema_2_staging(db_url: str, rows: bool) -> None:
    """GIDB_G_CALL_V as schema 2 had it (no DAP_KEY), with or without a staged row, and the
    schema version set back to 2."""
    execute(db_url, "DROP TABLE GIDB_G_CALL_V",
            "CREATE TABLE GIDB_G_CALL_V (DATA_SOURCE_KEY INTEGER NOT NULL, ID BIGINT NOT NULL, "
            "CALLID VARCHAR(50), PRIMARY KEY (DATA_SOURCE_KEY, ID))",
            *(["INSERT INTO GIDB_G_CALL_V VALUES (1, 1, 'C1')"] if rows else []),
            "UPDATE CTL_SCHEMA_INFO SET SCHEMA_VERSION = 2")


def test_migrate_remakes_empty_schema_2_staging(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    _schema_2_staging(db_url, rows=False)
    result = invoke(cli, "migrate", "-c", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert scalar(db_url, "SELECT MAX(SCHEMA_VERSION) FROM CTL_SCHEMA_INFO") == SCHEMA_VERSION
    # The staging table has its schema-3 shape again (a DAP_KEY column), empty.
    assert scalar(db_url, "SELECT COUNT(DAP_KEY) + COUNT(*) FROM GIDB_G_CALL_V") == 0


def test_migrate_refuses_staged_schema_2_rows(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    _schema_2_staging(db_url, rows=True)
    result = invoke(cli, "migrate", "-c", str(path))
    assert result.exit_code == 4
    assert "GIDB_G_CALL_V" in result.stderr and "new Info Mart" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # Nothing was dropped or half-done: the staged row and the old version are still there.
    assert scalar(db_url, "SELECT CALLID FROM GIDB_G_CALL_V WHERE ID = 1") == "C1"
    assert scalar(db_url, "SELECT MAX(SCHEMA_VERSION) FROM CTL_SCHEMA_INFO") == 2


def _lookup_index(db_url: str, db_kind: str, name: str) -> tuple:
    """How an index is made: its method on PostgreSQL, its columns on both."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            if db_kind == "postgresql":
                return tuple(conn.execute(sa.text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name})
                    .scalar_one().split(" USING ")[1].split())
            return tuple(r[2] for r in conn.exec_driver_sql(f"PRAGMA index_info({name})"))
    finally:
        engine.dispose()


def test_migrate_remakes_the_lookup_indexes_of_schema_4(cli, tmp_path, db_url, db_kind):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    made = _lookup_index(db_url, db_kind, "ix_gidb_g_party_v_callid")
    # Schema 4 looked calls up through B-trees led by the data source.
    execute(db_url, "DROP INDEX ix_gidb_g_party_v_callid",
            "CREATE INDEX ix_gidb_g_party_v_callid ON GIDB_G_PARTY_V (DATA_SOURCE_KEY, CALLID)",
            "INSERT INTO GIDB_G_PARTY_V (DATA_SOURCE_KEY, DAP_KEY, ID, CALLID, PARTYID, "
            "CREATE_AUDIT_KEY, UPDATE_AUDIT_KEY) VALUES (1, 1, 7, 'C7', 'P7', 0, 0)",
            "UPDATE CTL_SCHEMA_INFO SET SCHEMA_VERSION = 4")
    if db_kind == "postgresql":  # SQLite keeps the B-tree
        assert _lookup_index(db_url, db_kind, "ix_gidb_g_party_v_callid") != made
    result = invoke(cli, "migrate", "-c", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["message"] == \
        f"schema migrated from version 4 to {SCHEMA_VERSION}"
    assert _lookup_index(db_url, db_kind, "ix_gidb_g_party_v_callid") == made
    assert made == (("hash", "(callid)") if db_kind == "postgresql"
                    else ("DATA_SOURCE_KEY", "CALLID"))
    assert scalar(db_url, "SELECT PARTYID FROM GIDB_G_PARTY_V WHERE CALLID = 'C7'") == "P7"
    assert invoke(cli, "migrate", "-c", str(path)).exit_code == 0
