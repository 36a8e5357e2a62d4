"""The job contract: every command runs through `run_job`.

1. configuration is already loaded and valid (a bad one exits 5 before we get here);
2. the job's file lock is taken without waiting (busy: exit 3), and on PostgreSQL an
   advisory lock beside it, so two hosts cannot run one job against one Info Mart;
3. the Info Mart's schema version is checked: never initialized -> initialize first; older
   than the code -> exit 4 unless the job is `migrate` (or on-demand-migration is set);
4. a CTL_ETL_HISTORY row is written RUNNING, the job runs, and the row becomes COMPLETE or
   FAILED with counts and a message; SIGTERM / Ctrl-C roll back what is open and end FAILED.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
import re
import signal
import socket
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gim import __version__
from gim.config import Config, mask_url
from gim.db import describe_db_error, label_of, make_engine, ops_for
from gim.db.engine import check_connection, write_tx
from gim.errors import (
    ExitCode,
    GimError,
    JobInterrupted,
    LockBusy,
    MigrationNeeded,
)

log = logging.getLogger("gim")

RUNNING, COMPLETE, FAILED = "RUNNING", "COMPLETE", "FAILED"

# Every lock a job can hold. `gim migrate` takes them all, so no job runs during a migration.
EXTRACT_LOCKS = tuple(f"extract-{r.lower()}" for r in
                      ("ICON_CFG", "ICON_CORE", "ICON_OCS", "ICON_MM"))
ALL_LOCKS = ("init", *EXTRACT_LOCKS, "transform", "aggregate", "maintain", "update-stats",
             "export", "gdpr", "migrate")


@dataclass(frozen=True)
class JobSpec:
    """What the runner needs to know about a job."""

    name: str  # as shown in CTL_ETL_HISTORY.JOB_NAME
    locks: tuple[str, ...]  # file (and advisory) locks held for the whole run
    gated: bool = True  # refuse to run on an Info Mart older than the code
    initializes: bool = True  # initialize a never-initialized Info Mart first
    writes_history: bool = True  # False for read-only commands such as status
    # PostgreSQL: commit without waiting for the WAL flush. For jobs whose every chunk commits
    # its rows with its own high-water mark (a chunk lost in a server crash is redone).
    fast_commit: bool = False


@dataclass
class Output:
    """How the command talks: --json, -v, and whether a person is watching."""

    json: bool = False
    verbose: int = 0
    interactive: bool = field(default_factory=lambda: sys.stderr.isatty() and
                              sys.stdout.isatty())


# --------------------------------------------------------------------------------------------
# Job context handed to the job body


class Progress:
    """Progress reporting: rich bars on a terminal, nothing (but the log) otherwise."""

    def __init__(self, output: Output) -> None:
        self._bar = None
        if output.interactive and not output.json:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(), transient=True)

    def __enter__(self) -> Progress:
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        log.info("%s ...", description)
        if not self._bar:
            yield lambda n=1: None
            return
        task_id = self._bar.add_task(description, total=total)
        try:
            yield lambda n=1: self._bar.advance(task_id, n)
        finally:
            self._bar.remove_task(task_id)


@dataclass
class JobContext:
    config: Config
    engine: Engine
    job_id: str
    job_name: str
    progress: Progress
    counts: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    started_ts: int = field(default_factory=lambda: int(time.time()))

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"gim.{self.job_name}")

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def note(self, text: str) -> None:
        """Something the operator should read in the summary (and the log)."""
        self.notes.append(text)
        self.log.warning(text)

    def new_audit_key(self, conn: Connection, *, key: int | None = None, min_key: int = 0,
                      max_key: int = 0,
                      row_count: int = 0, max_chunk_ts: int | None = None,
                      data_source_key: int | None = None, dap_name: str | None = None,
                      table_name: str | None = None) -> int:
        """Write this transaction's CTL_AUDIT_LOG row (in `conn`'s transaction); return its key
        (`key` when the caller drew it beforehand, to stamp rows with it)."""
        from gim.schema.control import CTL_AUDIT_LOG

        if key is None:
            key = ops_for(conn).allocate_keys(conn, "AUDIT_KEY")
        now = time.time()
        when = _utc_naive(now)
        conn.execute(CTL_AUDIT_LOG.insert().values(
            AUDIT_KEY=key, JOB_ID=self.job_id, JOB_NAME=self.job_name, CREATED=when,
            INSERTED=when, PROCESSING_STATUS_KEY=0, MIN_START_DATE_TIME_KEY=min_key,
            MAX_START_DATE_TIME_KEY=max_key, MAX_CHUNK_TS=max_chunk_ts,
            DATA_SOURCE_KEY=data_source_key, DAP_NAME=dap_name, TABLE_NAME=table_name,
            ROW_COUNT=row_count, CREATED_TS=int(now)))
        return key


def _utc_naive(ts: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------------------------
# Logging


class _SecretFilter(logging.Filter):
    """Last line of defence: no database password reaches a log line."""

    _pw = re.compile(r"(://[^:/@\s]+:)([^@\s]+)@")

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "://" in msg:
            record.msg, record.args = self._pw.sub(r"\1***@", msg), ()
        return True


def setup_logging(config: Config, output: Output) -> Path | None:
    root = logging.getLogger("gim")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    secret_filter = _SecretFilter()
    log_path = config.path_option("log", "file")
    if log_path:
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.handlers.RotatingFileHandler(
                log_path, maxBytes=config.get("log", "max-bytes"),
                backupCount=config.get("log", "max-backup-index"), encoding="utf-8")
        except OSError as exc:
            raise GimError(f"cannot open log file {log_path}: {exc.strerror}") from None
        fh.setLevel(config.get("log", "level"))
        fh.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
        fh.addFilter(secret_filter)
        root.addHandler(fh)
    if output.verbose:
        sh = logging.StreamHandler(sys.stderr)
        sh.setLevel(logging.DEBUG if output.verbose > 1 else logging.INFO)
        sh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                          "%H:%M:%S"))
        sh.addFilter(secret_filter)
        root.addHandler(sh)
    return log_path


# --------------------------------------------------------------------------------------------
# Signals


class _Signals:
    """SIGTERM and SIGINT raise JobInterrupted in the main thread, except while the runner
    records the outcome, when they are held until that is done."""

    def __init__(self) -> None:
        self.hold = False
        self.pending: str | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.hold:
            self.pending = name
            return
        raise JobInterrupted(name)

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Outside the main thread (some test runners) signals cannot be caught here.
            with contextlib.suppress(ValueError):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------------------------
# Locks


def lock_dir(config: Config) -> Path:
    return config.path_option("lock", "dir") or Path(".")


def _lock_info_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def read_lock_holder(directory: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads(_lock_info_path(directory, name).read_text())
    except (OSError, ValueError):
        return {}


def describe_holder(info: dict[str, Any]) -> str:
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return (f"'{info.get('job', '?')}' (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, since {since})")


@contextmanager
def file_locks(config: Config, names: tuple[str, ...], job: str,
               job_id: str) -> Iterator[None]:
    directory = lock_dir(config)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GimError(f"cannot create lock folder {directory}: {exc.strerror}") from None
    with ExitStack() as stack:
        for name in names:
            lock = filelock.FileLock(str(directory / f"{name}.lock"), timeout=0)
            try:
                lock.acquire()
            except filelock.Timeout:
                holder = describe_holder(read_lock_holder(directory, name))
                raise LockBusy(f"lock '{name}' is held by {holder}; this copy of "
                               f"'{job}' did not start") from None
            stack.callback(lock.release)
            _lock_info_path(directory, name).write_text(json.dumps({
                "job": job, "job_id": job_id, "pid": os.getpid(),
                "host": socket.gethostname(), "started": int(time.time())}))
        yield


def lock_is_held(config: Config, name: str) -> bool:
    path = lock_dir(config) / f"{name}.lock"
    if not path.exists():
        return False
    lock = filelock.FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return True
    lock.release()
    return False


@contextmanager
def advisory_locks(config: Config, engine: Engine, names: tuple[str, ...],
                   job: str) -> Iterator[None]:
    """PostgreSQL: hold session advisory locks on a dedicated connection for the whole run."""
    if engine.dialect.name != "postgresql" or not config.get("lock", "advisory"):
        yield
        return
    ops = ops_for(engine)
    with engine.connect() as conn:
        taken: list[str] = []
        try:
            for name in names:
                if not ops.try_advisory_lock(conn, name):
                    conn.commit()
                    raise LockBusy(f"lock '{name}' is held on the Info Mart by another host "
                                   f"(PostgreSQL advisory lock); this copy of '{job}' did "
                                   "not start")
                taken.append(name)
            conn.commit()
            yield
        finally:
            try:
                for name in taken:
                    ops.advisory_unlock(conn, name)
                conn.commit()
            except sa.exc.DBAPIError:
                pass  # the connection is gone, and its locks with it


# --------------------------------------------------------------------------------------------
# History


def _history_insert(engine: Engine, spec: JobSpec, job_id: str, command: str) -> None:
    from gim.schema.control import CTL_ETL_HISTORY

    now = int(time.time())
    with write_tx(engine) as conn:
        # We hold the job's locks, so any RUNNING row of this lock was left by a process that
        # died (SIGKILL, power loss): say so instead of leaving it RUNNING for ever.
        conn.execute(sa.update(CTL_ETL_HISTORY)
                     .where(CTL_ETL_HISTORY.c.LOCK_NAME == spec.locks[0],
                            CTL_ETL_HISTORY.c.STATUS == RUNNING)
                     .values(STATUS=FAILED, END_TS=now, EXIT_CODE=int(ExitCode.JOB_FAILED),
                             MESSAGE="abandoned: the process ended without recording an "
                                     "outcome (killed?)"))
        conn.execute(CTL_ETL_HISTORY.insert().values(
            JOB_ID=job_id, JOB_NAME=spec.name, JOB_VERSION=__version__,
            LOCK_NAME=spec.locks[0], COMMAND=command[:255], HOST_NAME=socket.gethostname(),
            PID=os.getpid(), START_TS=now, STATUS=RUNNING, CREATED_TS=now))


def _history_finish(engine: Engine, job_id: str, status: str, exit_code: int,
                    counts: Counter, message: str | None) -> None:
    from gim.schema.control import CTL_ETL_HISTORY

    rows = sum(v for k, v in counts.items() if k.endswith("rows"))
    with write_tx(engine) as conn:
        conn.execute(sa.update(CTL_ETL_HISTORY).where(CTL_ETL_HISTORY.c.JOB_ID == job_id)
                     .values(STATUS=status, END_TS=int(time.time()), EXIT_CODE=exit_code,
                             ROW_COUNT=rows, COUNTS=json.dumps(dict(counts), sort_keys=True),
                             MESSAGE=(message or "")[:1024] or None))


# --------------------------------------------------------------------------------------------
# The runner


JobBody = Callable[[JobContext], str | None]


@dataclass
class JobResult:
    job: str
    job_id: str
    status: str
    exit_code: int
    message: str | None
    counts: dict[str, int]
    notes: list[str]
    started: float
    ended: float
    log_file: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job, "job_id": self.job_id, "status": self.status,
            "exit_code": self.exit_code, "message": self.message, "counts": self.counts,
            "notes": self.notes,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.ended)),
            "duration_s": round(self.ended - self.started, 3), "log_file": self.log_file,
        }


def run_job(spec: JobSpec, config: Config, body: JobBody, output: Output | None = None,
            command: str = "") -> JobResult:
    """Run `body` under the job contract; never raises (but for bugs in this function)."""
    output = output or Output(interactive=False)
    job_id = str(uuid.uuid4())
    started = time.time()
    status, exit_code, message = FAILED, ExitCode.JOB_FAILED, None
    counts: Counter = Counter()
    notes: list[str] = []
    log_path: Path | None = None
    history_open = False
    engine: Engine | None = None
    signals = _Signals()
    try:
        log_path = setup_logging(config, output)
        with signals, ExitStack() as stack:
            log.info("%s %s starting (job id %s, gim %s, Info Mart %s)", spec.name,
                     command, job_id, __version__, mask_url(config.infomart_url))
            stack.enter_context(file_locks(config, spec.locks, spec.name, job_id))
            engine = make_engine(config.infomart_url, fast_commit=spec.fast_commit)
            stack.callback(engine.dispose)
            check_connection(engine)
            stack.enter_context(advisory_locks(config, engine, spec.locks, spec.name))
            progress = stack.enter_context(Progress(output))
            ctx = JobContext(config=config, engine=engine, job_id=job_id, job_name=spec.name,
                             progress=progress, counts=counts, notes=notes)
            _gate(spec, ctx, stack)
            if spec.writes_history:
                _history_insert(engine, spec, job_id, command)
                history_open = True
            message = body(ctx)
            status, exit_code = COMPLETE, ExitCode.OK
    except GimError as exc:
        message, exit_code = exc.message, exc.exit_code
    except JobInterrupted as exc:
        message = f"{exc}; open work was rolled back, run the job again to finish"
    except sa.exc.DBAPIError as exc:
        where = label_of(engine) if engine is not None else "database"
        message = f"database error on {where}: {describe_db_error(exc)}"
        log.error("%s\n%s", message, traceback.format_exc())
    except Exception as exc:  # a bug: keep the traceback in the log
        message = f"internal error: {type(exc).__name__}: {exc}"
        log.error("%s\n%s", message, traceback.format_exc())
        if log_path:
            message += f" (traceback in {log_path})"
    finally:
        signals.hold = True
        if history_open and engine is not None:
            try:
                _history_finish(engine, job_id, status, int(exit_code), counts, message)
            except Exception as exc:  # noqa: BLE001 - the outcome must still be reported
                log.error("could not record the outcome in CTL_ETL_HISTORY: %s", exc)
            engine.dispose()
    result = JobResult(job=spec.name, job_id=job_id, status=status, exit_code=int(exit_code),
                       message=" ".join((message or "").split()) or None,
                       counts=dict(counts), notes=notes, started=started, ended=time.time(),
                       log_file=str(log_path) if log_path else None)
    level = logging.INFO if status == COMPLETE else logging.ERROR
    log.log(level, "%s %s (exit %d)%s", spec.name, status, result.exit_code,
            f": {result.message}" if result.message else "")
    return result


def _gate(spec: JobSpec, ctx: JobContext, stack: ExitStack) -> None:
    """The migration-state gate, and initialization of a brand-new Info Mart."""
    from gim.jobs import initialize, migrate
    from gim.schema.control import SCHEMA_VERSION

    version = initialize.installed_version(ctx.engine)
    if version is None:
        if spec.initializes:
            # Any job on a never-initialized Info Mart initializes it first, under the
            # initialization lock: a `gim init` running now wins.
            if "init" not in spec.locks:
                stack.enter_context(file_locks(ctx.config, ("init",), spec.name, ctx.job_id))
            initialize.initialize(ctx)
        else:
            # The job initializes (or migrates) itself; it needs the history table first.
            initialize.create_control_tables(ctx.engine)
        return
    if version == SCHEMA_VERSION or not spec.gated:
        return
    if version > SCHEMA_VERSION:
        raise MigrationNeeded(
            f"the Info Mart schema is version {version}, newer than this gim "
            f"({__version__}, schema {SCHEMA_VERSION}); upgrade gim")
    if ctx.config.get("schedule", "on-demand-migration"):
        ctx.note(f"schema version {version} is older than {SCHEMA_VERSION}: migrating first "
                 "(on-demand-migration)")
        migrate.migrate_schema(ctx)
        return
    raise MigrationNeeded(
        f"the Info Mart schema is version {version}, older than this gim's "
        f"{SCHEMA_VERSION}: run `gim migrate` first")


def print_result(result: JobResult, output: Output) -> None:
    """Cron mails what reaches stderr: a success run non-interactively prints nothing unless
    -v; a failure always prints one line."""
    if output.json:
        sys.stdout.write(json.dumps(result.as_dict(), sort_keys=True) + "\n")
    elif result.status == COMPLETE and (output.interactive or output.verbose):
        from rich.console import Console

        console = Console(stderr=not output.interactive, highlight=False)
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.counts.items()))
        took = result.ended - result.started
        console.print(f"[green]gim {result.job}: done[/] in {took:.1f}s"
                      + (f" - {counts}" if counts else ""))
        for note in result.notes:
            console.print(f"  [yellow]note:[/] {note}")
        if result.message:
            console.print(f"  {result.message}")
    if result.status != COMPLETE:
        sys.stderr.write(f"gim {result.job}: error: {result.message}\n")
