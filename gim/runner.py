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
import threading
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
from gim.config import Config, mask_url, not_applied_settings
from gim.db import describe_db_error, label_of, make_engine, ops_for
from gim.db.engine import check_connection, write_tx
from gim.errors import (
    ConfigError,
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


_TALLY = threading.Lock()


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
        with _TALLY:  # jobs may count from several threads
            self.counts[key] += n

    def note(self, text: str) -> None:
        """Something the operator should read in the summary (and the log)."""
        with _TALLY:
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
    """Last line of defence: no database password reaches a log line, whether in a URL's
    credentials, its query string or a key=value connection string."""

    _url = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
    _keyword = re.compile(r"(\bpassword\s*=\s*)('[^']*'|[^\s&]+)", re.IGNORECASE)
    _trailing = ".,:;)]}"

    def _mask(self, match: re.Match[str]) -> str:
        token = match[0]
        if "@" not in token and "password=" not in token.lower():
            return token
        body = token.rstrip(self._trailing)
        return (mask_url(body) or "") + token[len(body):]

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = self._keyword.sub(r"\1***", self._url.sub(self._mask, msg))
        if masked != msg:
            record.msg, record.args = masked, ()
        return True


def setup_logging(config: Config, output: Output) -> Path | None:
    root = logging.getLogger("gim")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    # Without any handler Python's last-resort handler would print warnings and errors on
    # stderr: a cron run with no log file would mail them, and a failure would print twice.
    root.addHandler(logging.NullHandler())
    secret_filter = _SecretFilter()
    log_path = config.path_option("log", "file")
    if log_path:
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.handlers.RotatingFileHandler(
                log_path, maxBytes=config.get("log", "max-bytes"),
                backupCount=config.get("log", "max-backup-index"), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{config.describe_source()}: [log] file: cannot open "
                              f"{log_path}: {exc.strerror or exc}") from None
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
    """SIGTERM and SIGINT raise JobInterrupted in the main thread, once: later signals, and
    any that arrive while the runner records the outcome (`hold`), are only noted, so that a
    second Ctrl-C cannot leave the history row RUNNING. The handlers stay installed until
    the outcome is recorded."""

    def __init__(self) -> None:
        self.hold = False
        self.raised = False
        self.pending: str | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.hold or self.raised:
            self.pending = name
            return
        self.raised = True
        raise JobInterrupted(name)

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Outside the main thread (some test runners) signals cannot be caught here.
            with contextlib.suppress(ValueError):
                self._old[sig] = signal.signal(sig, self._handler)

    def restore(self, ignore: bool = False) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, signal.SIG_IGN if ignore else old)
        self._old.clear()

    @contextmanager
    def held(self) -> Iterator[None]:
        """No interruption inside; a signal that arrived meanwhile is raised on leaving."""
        self.hold = True
        try:
            yield
        finally:
            self.hold = False
        if self.pending and not self.raised:
            self.raised = True
            raise JobInterrupted(self.pending)


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


def _write_holder(path: Path, info: dict[str, Any]) -> None:
    # Written whole, then renamed: a reader never sees half a record.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def _remove_holder(path: Path, job_id: str) -> None:
    if read_lock_holder(path.parent, path.stem).get("job_id") == job_id:
        with contextlib.suppress(OSError):
            path.unlink()


def _lock_error(config: Config, what: str, path: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"{config.describe_source()}: [lock] dir: cannot {what} {path}: "
                       f"{exc.strerror or exc}")


@contextmanager
def file_locks(config: Config, names: tuple[str, ...], job: str,
               job_id: str) -> Iterator[None]:
    """Take each lock without waiting (busy: LockBusy), and record its holder beside it
    (`<name>.json`, removed before the lock is released) for messages and `gim status`."""
    directory = lock_dir(config)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _lock_error(config, "create the lock folder", directory, exc) from None
    with ExitStack() as stack:
        for name in names:
            path = directory / f"{name}.lock"
            lock = filelock.FileLock(str(path), timeout=0)
            try:
                lock.acquire()
            except filelock.Timeout:
                holder = describe_holder(read_lock_holder(directory, name))
                raise LockBusy(f"lock '{name}' is held by {holder}; this copy of "
                               f"'{job}' did not start") from None
            except OSError as exc:
                raise _lock_error(config, "create the lock file", path, exc) from None
            stack.callback(lock.release)
            info_path = _lock_info_path(directory, name)
            try:
                _write_holder(info_path, {
                    "job": job, "job_id": job_id, "pid": os.getpid(),
                    "host": socket.gethostname(), "started": int(time.time())})
            except OSError as exc:
                raise _lock_error(config, "write", info_path, exc) from None
            stack.callback(_remove_holder, info_path, job_id)
        yield


def _process_alive(info: dict[str, Any]) -> bool:
    if info.get("host") != socket.gethostname():
        return True  # a lock folder shared with another host: its processes cannot be seen
    try:
        os.kill(int(info.get("pid")), 0)
    except (TypeError, ValueError, OverflowError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def lock_is_held(config: Config, name: str) -> bool:
    """Whether a live process holds the job lock `name`, judged from the holder's record.

    The lock itself is never taken to find out: even a brief probe would make a job that
    starts at that moment exit 3. A holder killed by SIGKILL leaves its record behind, so the
    record counts only while its process lives (a recycled pid may fool this; the next run
    of the job replaces the record). The instants between a job taking its lock and writing
    its record read as free, which is harmless for a report.
    """
    info = read_lock_holder(lock_dir(config), name)
    return bool(info) and _process_alive(info)


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

    now_ms = int(time.time() * 1000)
    now = now_ms // 1000
    row = {"JOB_ID": job_id, "JOB_NAME": spec.name, "JOB_VERSION": __version__,
           "LOCK_NAME": spec.locks[0], "COMMAND": command[:255],
           "HOST_NAME": socket.gethostname(), "PID": os.getpid(), "START_TS": now,
           "START_TS_MS": now_ms, "STATUS": RUNNING, "CREATED_TS": now}
    with write_tx(engine) as conn:
        # An Info Mart awaiting `gim migrate` may lack newer columns; the migration's own
        # run is recorded with those it has.
        present = ops_for(conn).column_names(conn, CTL_ETL_HISTORY.name)
        # We hold the job's locks, so any RUNNING row of this lock was left by a process that
        # died (SIGKILL, power loss): say so instead of leaving it RUNNING for ever.
        conn.execute(sa.update(CTL_ETL_HISTORY)
                     .where(CTL_ETL_HISTORY.c.LOCK_NAME == spec.locks[0],
                            CTL_ETL_HISTORY.c.STATUS == RUNNING)
                     .values(STATUS=FAILED, END_TS=now, EXIT_CODE=int(ExitCode.JOB_FAILED),
                             MESSAGE="abandoned: the process ended without recording an "
                                     "outcome (killed?)"))
        conn.execute(CTL_ETL_HISTORY.insert().values(
            {k: v for k, v in row.items() if k in present}))


def _history_finish(engine: Engine, job_id: str, outcome: _Outcome) -> None:
    from gim.schema.control import CTL_ETL_HISTORY

    counts = outcome.counts
    rows = sum(v for k, v in counts.items() if k.endswith("rows"))
    message = " ".join((outcome.message or "").split())
    with write_tx(engine) as conn:
        conn.execute(sa.update(CTL_ETL_HISTORY).where(CTL_ETL_HISTORY.c.JOB_ID == job_id)
                     .values(STATUS=outcome.status, END_TS=int(time.time()),
                             EXIT_CODE=int(outcome.exit_code), ROW_COUNT=rows,
                             COUNTS=json.dumps(dict(counts), sort_keys=True),
                             MESSAGE=message[:1024] or None))


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
            command: str = "", ends_process: bool = False) -> JobResult:
    """Run `body` under the job contract; never raises (but for bugs in this function).

    ends_process: the process exits once the outcome is reported (the command line); from
    the recorded outcome on, SIGTERM and SIGINT are then ignored instead of killing the
    process before it prints the outcome and exits with its code.
    """
    output = output or Output(interactive=False)
    job_id = str(uuid.uuid4())
    started = time.time()
    outcome = _Outcome()
    log_path: Path | None = None
    engine: Engine | None = None
    signals = _Signals()
    try:
        log_path = setup_logging(config, output)
        signals.install()
        with ExitStack() as stack:
            log.info("%s %s starting (job id %s, gim %s, Info Mart %s)", spec.name,
                     command, job_id, __version__, mask_url(config.infomart_url))
            stack.enter_context(file_locks(config, spec.locks, spec.name, job_id))
            engine = make_engine(config.infomart_url, fast_commit=spec.fast_commit)
            stack.callback(engine.dispose)
            check_connection(engine)
            stack.enter_context(advisory_locks(config, engine, spec.locks, spec.name))
            progress = stack.enter_context(Progress(output))
            ctx = JobContext(config=config, engine=engine, job_id=job_id, job_name=spec.name,
                             progress=progress, counts=outcome.counts, notes=outcome.notes)
            _gate(spec, ctx, stack)
            for setting in not_applied_settings(config):
                ctx.note(f"{setting} is set, but this version of gim does not apply it")
            # The history row is finished while the locks are still held, and no signal
            # can come between the job's end and its row's (held until the end).
            history_open = False
            try:
                if spec.writes_history:
                    with signals.held():
                        _history_insert(engine, spec, job_id, command)
                        history_open = True
                outcome.message = body(ctx)
                signals.hold = True
                outcome.status, outcome.exit_code = COMPLETE, ExitCode.OK
            except BaseException as exc:  # noqa: BLE001 - classified, or raised again
                signals.hold = True
                if not outcome.failed_by(exc, engine, log_path):
                    raise
            finally:
                signals.hold = True
                if history_open:
                    try:
                        _history_finish(engine, job_id, outcome)
                    except Exception as exc:  # noqa: BLE001 - the outcome is still reported
                        log.error("could not record the outcome in CTL_ETL_HISTORY: %s", exc)
    except BaseException as exc:  # noqa: BLE001 - classified, or raised again
        signals.hold = True
        if not outcome.failed_by(exc, engine, log_path):
            raise
    finally:
        signals.hold = True
        signals.restore(ignore=ends_process)
    if signals.pending and outcome.status == COMPLETE:
        log.warning("%s received while %s was recording its outcome; the job had completed",
                    signals.pending, spec.name)
    result = JobResult(job=spec.name, job_id=job_id, status=outcome.status,
                       exit_code=int(outcome.exit_code),
                       message=" ".join((outcome.message or "").split()) or None,
                       counts=dict(outcome.counts), notes=outcome.notes, started=started,
                       ended=time.time(), log_file=str(log_path) if log_path else None)
    level = logging.INFO if outcome.status == COMPLETE else logging.ERROR
    log.log(level, "%s %s (exit %d)%s", spec.name, outcome.status, result.exit_code,
            f": {result.message}" if result.message else "")
    return result


@dataclass
class _Outcome:
    status: str = FAILED
    exit_code: int = ExitCode.JOB_FAILED
    message: str | None = None
    counts: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    classified: bool = False

    def failed_by(self, exc: BaseException, engine: Engine | None,
                  log_path: Path | None) -> bool:
        """Record why the job failed; False for what is not ours to handle (SystemExit)."""
        if self.classified:
            return True  # the inner handler has already said why; this is the unwinding
        self.status, self.exit_code = FAILED, ExitCode.JOB_FAILED
        if isinstance(exc, GimError):
            self.message, self.exit_code = exc.message, exc.exit_code
        elif isinstance(exc, JobInterrupted):
            # Transactions under way when the signal came have committed whole or rolled back
            # (side by side, each finishes the one it is in): nothing is left half-written.
            self.message = (f"{exc}; what it committed stays, nothing half-done was kept: "
                            "run the job again to finish")
        elif isinstance(exc, sa.exc.DBAPIError):
            where = label_of(engine) if engine is not None else "database"
            self.message = f"database error on {where}: {describe_db_error(exc)}"
            log.error("%s\n%s", self.message, traceback.format_exc())
        elif isinstance(exc, Exception):  # a bug: keep the traceback in the log
            self.message = f"internal error: {type(exc).__name__}: {exc}"
            log.error("%s\n%s", self.message, traceback.format_exc())
            if log_path:
                self.message += f" (traceback in {log_path})"
        else:
            return False
        self.classified = True
        return True


def _gate(spec: JobSpec, ctx: JobContext, stack: ExitStack) -> None:
    """The migration-state gate, the calendar settings, and initialization of a brand-new
    Info Mart."""
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
    if version != SCHEMA_VERSION and spec.gated:
        if version > SCHEMA_VERSION:
            raise MigrationNeeded(
                f"the Info Mart schema is version {version}, newer than this gim "
                f"({__version__}, schema {SCHEMA_VERSION}); upgrade gim")
        if not ctx.config.get("schedule", "on-demand-migration"):
            raise MigrationNeeded(
                f"the Info Mart schema is version {version}, older than this gim's "
                f"{SCHEMA_VERSION}: run `gim migrate` first")
    # The calendar settings an Info Mart was built with bind every job, not only init: a
    # job run with another time zone would file facts under the wrong local days.
    with ctx.engine.connect() as conn:
        initialize.check_settings(conn, ctx.config)
    if version < SCHEMA_VERSION and spec.gated:
        ctx.note(f"schema version {version} is older than {SCHEMA_VERSION}: migrating first "
                 "(on-demand-migration)")
        migrate.migrate_schema(ctx)


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
