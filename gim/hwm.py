"""High-water marks of incremental extraction: the half-open windows [start, end) of UTC
epoch seconds to read next from an IDB table. Pure logic; the extraction job does the I/O."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

DEFAULT_STUCK_THRESHOLD = 28860  # the product's default for extract-data-stuck-threshold


@dataclass(frozen=True)
class Window:
    """Source rows with start <= timestamp < end; end is the mark committed after loading."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty window: end {self.end} <= start {self.start}")


def safe_limit(source_now: int, lag: int) -> int:
    """The newest time extraction may reach at source time `source_now`.

    A row may commit up to `lag` seconds after its timestamp; staying `lag` behind the
    source's clock means such a row is either visible now or lands in a later window.
    """
    return source_now - lag


def hold_back_limit(limit: int, oldest_active: int | None, source_now: int,
                    stuck_threshold: int) -> int:
    """`limit`, lowered to the start of the oldest row still active unless that row is stuck.

    Active rows change until they terminate, so their window must be read again; a row
    active for longer than `stuck_threshold` is presumed abandoned and must not block the
    extraction forever.
    """
    if oldest_active is None or oldest_active <= source_now - stuck_threshold:
        return limit
    return min(limit, oldest_active)


def next_windows(mark: int | None, floor: int, limit: int, chunk: int,
                 max_windows: int | None = None) -> list[Window]:
    """The windows from the mark (or `floor`) up to `limit`, at most `chunk` seconds each.

    Cuts fall on start + k * chunk, so every window but the last is a full chunk: resuming
    from the end of any committed window walks the same grid and yields the same remainder.
    `max_windows` caps the list; the next call returns the rest.
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, not {chunk}")
    if max_windows is not None and max_windows < 0:
        raise ValueError(f"max_windows must not be negative, not {max_windows}")
    start = floor if mark is None else max(mark, floor)
    return list(islice(_grid(start, limit, chunk), max_windows))


def _grid(start: int, limit: int, chunk: int) -> Iterator[Window]:
    # A generator, so that a capped call on a long backlog costs only what it returns.
    for cut in range(start, limit, chunk):
        yield Window(cut, min(cut + chunk, limit))


def windows_for(mark: int | None, floor: int, source_now: int, lag: int, chunk: int,
                oldest_active: int | None = None,
                stuck_threshold: int = DEFAULT_STUCK_THRESHOLD,
                max_windows: int | None = None) -> list[Window]:
    """The next windows to extract, observed at source time `source_now`."""
    limit = hold_back_limit(safe_limit(source_now, lag), oldest_active, source_now,
                            stuck_threshold)
    return next_windows(mark, floor, limit, chunk, max_windows)


def split_window(window: Window, cuts: Iterable[int]) -> list[Window]:
    """`window` cut at the points of `cuts` that fall strictly inside it.

    Redundant IDBs may each be reliable for only part of a window; each part is then read
    from the IDB that covers it.
    """
    inner = sorted({c for c in cuts if window.start < c < window.end})
    bounds = [window.start, *inner, window.end]
    return [Window(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def coverage_gaps(window: Window, covered: Iterable[tuple[int, int]]) -> list[Window]:
    """The parts of `window` outside every half-open interval of `covered`, in order.

    An IDB is a candidate for a window only where it was reliable; the gaps are what another
    IDB of the redundant pair has to supply.
    """
    gaps = []
    cursor = window.start
    for a, b in _clipped(window, covered):
        if a > cursor:
            gaps.append(Window(cursor, a))
        cursor = max(cursor, b)
    if cursor < window.end:
        gaps.append(Window(cursor, window.end))
    return gaps


def _clipped(window: Window, intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The non-empty intersections of `intervals` with `window`, sorted by start."""
    clipped = ((max(a, window.start), min(b, window.end)) for a, b in intervals)
    return sorted((a, b) for a, b in clipped if a < b)
