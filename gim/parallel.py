"""Work done side by side by threads, each with its own connection and transactions.

Jobs hand independent pieces of work (tables to extract, ranges of pending entities to
transform) to a few threads when the Info Mart is PostgreSQL; an SQLite Info Mart has a
single writer, so there the pieces run one after the other.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from gim.runner import JobContext

K = TypeVar("K")
MAX_WORKERS = 8


def workers(ctx: JobContext, section: str, option: str, pieces: int) -> int:
    """How many threads: the option's value, at most MAX_WORKERS and `pieces`; 1 on an
    SQLite Info Mart."""
    if ctx.engine.dialect.name != "postgresql":
        return 1
    return max(1, min(ctx.config.get(section, option), MAX_WORKERS, pieces))


def side_by_side(count: int, tasks: Iterable[tuple[K, Callable[[], Any]]],
                 done: Callable[[K, Any], None], stop: threading.Event,
                 name: str) -> None:
    """Run each (key, task) by `count` threads, handing each result to `done(key, result)`
    in the calling thread as it comes. On the first failure, or an interruption of the job
    (raised in the calling thread), `stop` is set so that the tasks under way end at their
    next transaction boundary (a transaction commits whole or not at all), tasks not begun
    are cancelled, and the failure is raised once the others have ended."""
    with concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix=name) as pool:
        futures = {pool.submit(task): key for key, task in tasks}
        try:
            for future in concurrent.futures.as_completed(futures):
                done(futures[future], future.result())
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            concurrent.futures.wait(futures)
            raise
