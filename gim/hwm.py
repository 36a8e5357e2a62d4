"""High-water marks of incremental extraction: the half-open windows [start, end) of UTC
epoch seconds to read next from an IDB table. Pure logic; the extraction job does the I/O."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
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


def source_limit(source_now: int, lag: int, oldest_active: int | None = None,
                 stuck_threshold: int = DEFAULT_STUCK_THRESHOLD) -> int:
    """How far one IDB's rows of a table may be extracted now: the safety lag behind its
    newest time, held back by its oldest young active row."""
    return hold_back_limit(safe_limit(source_now, lag), oldest_active, source_now,
                           stuck_threshold)


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


def plan_windows(mark: int | None, floor: int, limit: int, chunk: int, whole: bool = False,
                 max_windows: int | None = None) -> list[Window]:
    """next_windows, or with `whole` everything from the mark to the limit as one window
    (configuration: all new and changed objects in one cycle and one transaction, so that
    the transformation never sees half of a configuration change)."""
    if not whole:
        return next_windows(mark, floor, limit, chunk, max_windows)
    start = floor if mark is None else max(mark, floor)
    return [Window(start, limit)] if limit > start and max_windows != 0 else []


def windows_for(mark: int | None, floor: int, source_now: int, lag: int, chunk: int,
                oldest_active: int | None = None,
                stuck_threshold: int = DEFAULT_STUCK_THRESHOLD,
                max_windows: int | None = None, whole: bool = False) -> list[Window]:
    """The next windows to extract, observed at source time `source_now`."""
    limit = source_limit(source_now, lag, oldest_active, stuck_threshold)
    return plan_windows(mark, floor, limit, chunk, whole, max_windows)


def coalesce_empty(windows: Sequence[Window], busy: Collection[int]) -> list[Window]:
    """`windows` with each run of empty ones (start not in `busy`) merged into the window
    that follows it; the last window always stays, so that the mark reaches the limit.

    A long quiet stretch then costs one transaction instead of one per chunk, and the
    windows loaded still cover the span without a hole: a row that commits into a merged
    stretch after `busy` was read is read with the window it was merged into.
    """
    out: list[Window] = []
    start: int | None = None
    for i, window in enumerate(windows):
        if start is None:
            start = window.start
        if window.start in busy or i == len(windows) - 1:
            out.append(Window(start, window.end))
            start = None
    return out


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


def merge_through(windows: Sequence[Window], first: int, next_row: int | None) -> int:
    """Where the window to load that starts at `windows[first]` ends: the index of the
    window holding `next_row`, the time of the first row at or after that window's start
    (None: no row up to the last window's end), so that the empty windows before it merge
    into it; the last window when no row is left. Walking the windows this way, one
    look-up per window loaded, gives what `coalesce_empty` gives from the full list of
    windows holding rows."""
    last = len(windows) - 1
    if next_row is None:
        return last
    for k in range(first, last + 1):
        if next_row < windows[k].end:
            return k
    return last


def reliable(sessions: Iterable[tuple[int, int]] | None, limit: int,
             history_start: int | None = None) -> list[tuple[int, int]]:
    """The times an IDB can serve: the intervals its data-source sessions recorded without
    a gap (None: the IDB keeps no session information, so all of them), cut at the IDB's
    own limit (its newest time minus the lag), past which its rows may still be coming.

    Times before `history_start` (the first session of any IDB of the set) count as
    served: no ICON of the set was recording then, so no IDB can miss anything there, and
    what an IDB holds stamped that early (configuration from its first synchronization)
    its partner holds too.
    """
    if sessions is None:
        return [(-(2**63), limit)]
    spans = list(sessions)
    if history_start is not None:
        spans.append((-(2**63), history_start))
    return sorted((a, min(b, limit)) for a, b in spans if a < min(b, limit))


def assign_parts(window: Window, covers: Sequence[Sequence[tuple[int, int]]],
                 preferred: int = 0) -> list[tuple[Window, int | None]]:
    """Which IDB of a redundant set to read each part of `window` from.

    `covers[i]` holds the intervals IDB i can serve (see `reliable`). The window is cut
    where any of them begins or ends; each part goes to the IDB used for the part before it
    if that one covers it (no flapping between equally good IDBs), else to the first that
    does, else to None (no IDB has it yet). Neighbouring parts of one IDB are merged. The
    parts are contiguous and make up the window.
    """
    cuts = {x for spans in covers for ab in spans for x in ab}
    out: list[tuple[Window, int | None]] = []
    current = preferred
    for part in split_window(window, cuts):
        order = [current] + [i for i in range(len(covers)) if i != current]
        chosen = next((i for i in order if 0 <= i < len(covers)
                       and not coverage_gaps(part, covers[i])), None)
        if chosen is not None:
            current = chosen
        if out and out[-1][1] == chosen:
            out[-1] = (Window(out[-1][0].start, part.end), chosen)
        else:
            out.append((part, chosen))
    return out
