"""Errors meant for the operator, each carrying the process exit code it ends with.

Anything else that escapes a job is a bug: the runner logs its traceback and exits 1.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; the README documents them in this order."""

    OK = 0
    JOB_FAILED = 1
    USAGE = 2
    LOCK_BUSY = 3
    MIGRATION_NEEDED = 4
    CONFIG = 5


class GimError(Exception):
    """An error with a one-line message for the operator."""

    exit_code: ExitCode = ExitCode.JOB_FAILED

    def __init__(self, message: str) -> None:
        # Keep the message on one line whatever the cause put in it.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class JobFailed(GimError):
    exit_code = ExitCode.JOB_FAILED


class UsageError(GimError):
    exit_code = ExitCode.USAGE


class LockBusy(GimError):
    exit_code = ExitCode.LOCK_BUSY


class MigrationNeeded(GimError):
    exit_code = ExitCode.MIGRATION_NEEDED


class ConfigError(GimError):
    exit_code = ExitCode.CONFIG


class DatabaseUnavailable(GimError):
    """A database could not be reached; the message names which one (password masked)."""

    exit_code = ExitCode.JOB_FAILED


class JobInterrupted(BaseException):
    """Raised in the main thread by SIGTERM / SIGINT so that open transactions roll back.

    A BaseException, like KeyboardInterrupt, so that `except Exception` in job code
    does not swallow it.
    """

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name = signal_name
