"""`gim status`: locks held here and on other hosts, abandoned runs, the latest run of each
job, and never getting in a job's way."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
from conftest import execute, invoke, pg_database, scalar, spawn_gim, write_config

from gim.config import load_config
from gim.errors import LockBusy
from gim.runner import JobSpec, file_locks, lock_is_held, run_job

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


def test_a_job_running_on_another_host_is_not_abandoned(cli, tmp_path):
    """The other host has its own lock folder: only the advisory lock shows it runs."""
    with pg_database() as url:
        there, here = tmp_path / "there", tmp_path / "here"
        there.mkdir()
        here.mkdir()
        other = spawn_gim("init", "-c", str(write_config(there, url, SLOW)))
        try:
            path = write_config(here, url)

            def running():
                status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
                return status if status["jobs"] and status["locks"] else None

            _wait_for(running, what="the other host's run")
            status = running()
            text = invoke(cli, "status", "-c", str(path)).stdout
        finally:
            other.send_signal(signal.SIGTERM)
            other.wait(60)
        assert [(j["job"], j["status"]) for j in status["jobs"]] == [("init", "RUNNING")]
        [lock] = status["locks"]
        assert (lock["lock"], lock["file"], lock["advisory"], lock["pid"]) == \
            ("init", False, True, other.pid)
        assert f"lock init held by 'init' (pid {other.pid}" in text
        assert "PostgreSQL advisory lock" in text and "no lock held" not in text
        # Once it is gone, its lock is too.
        status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
        assert status["locks"] == [] and status["jobs"][0]["status"] == "FAILED"


def test_status_never_takes_a_lock(tmp_path):
    """Jobs start while status looks at their locks: none of them is refused."""
    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path}/im.db"), env={})
    stop = threading.Event()
    probes = []

    def look():
        while not stop.is_set():
            probes.append(lock_is_held(config, "transform"))

    watcher = threading.Thread(target=look)
    watcher.start()
    busy = 0
    try:
        deadline = time.time() + 3
        starts = 0
        while time.time() < deadline or starts < 200:
            try:
                with file_locks(config, ("transform",), "transform", f"job-{starts}"):
                    time.sleep(0.001)
            except LockBusy:
                busy += 1
            starts += 1
    finally:
        stop.set()
        watcher.join()
    assert busy == 0
    assert len(probes) > 100 and True in probes and False in probes


def test_a_lock_whose_holder_died_is_not_held(tmp_path):
    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path}/im.db"), env={})
    with file_locks(config, ("transform",), "transform", "job-1"):
        assert lock_is_held(config, "transform")
        holder = tmp_path / "locks" / "transform.json"
        record = json.loads(holder.read_text())
    assert not lock_is_held(config, "transform") and not holder.exists()
    # What SIGKILL leaves: the record of a process that no longer exists.
    proc = spawn_gim("--version")
    proc.wait(30)
    holder.write_text(json.dumps({**record, "pid": proc.pid}))
    assert not lock_is_held(config, "transform")


@pytest.fixture
def initialized(cli, tmp_path, db_url):
    path = write_config(tmp_path, db_url)
    assert invoke(cli, "init", "-c", str(path)).exit_code == 0
    return path


def _latest(cli, path, job):
    status = json.loads(invoke(cli, "status", "-c", str(path), "--json").stdout)
    return next(j for j in status["jobs"] if j["job"] == job)


def test_latest_run_of_runs_started_in_the_same_second(cli, initialized, db_url):
    config = load_config(initialized, env={})
    runs = []
    # Quick runs until two in a row start within one second.
    while len(runs) < 2 or runs[-1][1] != runs[-2][1]:
        assert len(runs) < 50
        result = run_job(JobSpec("probe", locks=("probe",)), config, lambda ctx: None)
        runs.append((result.job_id, int(result.started)))
    assert _latest(cli, initialized, "probe")["job_id"] == runs[-1][0]

    # Job ids are random: the later run may well have the smaller one.
    start = int(time.time()) - 60
    for job_id, ms in (("ffffffff-late-id-first", 300), ("00000000-early-id-last", 700)):
        execute(db_url, "INSERT INTO CTL_ETL_HISTORY (JOB_ID, JOB_NAME, JOB_VERSION, "
                        "LOCK_NAME, HOST_NAME, PID, START_TS, START_TS_MS, END_TS, STATUS, "
                        f"CREATED_TS) VALUES ('{job_id}', 'probe2', '0', 'probe2', 'h', 1, "
                        f"{start}, {start * 1000 + ms}, {start}, 'COMPLETE', {start})")
    assert _latest(cli, initialized, "probe2")["job_id"] == "00000000-early-id-last"
    assert scalar(db_url, "SELECT COUNT(*) FROM CTL_ETL_HISTORY WHERE JOB_NAME = 'probe2'") == 2
