"""Extraction windows: contiguous chunks on a fixed grid from the mark to the safe limit,
held back by active rows, resumable after any commit, split and gap-checked for HA pairs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gim.hwm import (
    Window,
    assign_parts,
    coalesce_empty,
    coverage_gaps,
    hold_back_limit,
    merge_through,
    next_windows,
    plan_windows,
    reliable,
    safe_limit,
    source_limit,
    split_window,
    windows_for,
)

TIME = st.integers(0, 2**31)
CHUNK = st.integers(1, 100_000)
LAG = st.integers(0, 3600)
MAX_WINDOWS = 60  # keeps the generated backlogs, and the test run, small
PROPERTY = settings(max_examples=300, deadline=None)


@st.composite
def backlogs(draw: st.DrawFn) -> tuple[int | None, int, int, int]:
    """(mark, floor, limit, chunk) whose windows number at most MAX_WINDOWS."""
    chunk = draw(CHUNK)
    floor = draw(TIME)
    mark = draw(st.none() | st.integers(max(0, floor - 10 * chunk), floor + 10 * chunk))
    start = floor if mark is None else max(mark, floor)
    limit = start + draw(st.integers(-chunk, MAX_WINDOWS * chunk))
    return mark, floor, limit, chunk


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(TIME)
    return Window(start, start + draw(st.integers(1, 100_000)))


def _contiguous(parts: list[Window]) -> bool:
    return all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))


def _committed_in_turn(mark: int | None, floor: int, limit: int, chunk: int,
                       cap: int) -> list[Window]:
    """Every window a job capped at `cap` windows per run loads, run after run."""
    loaded: list[Window] = []
    while batch := next_windows(mark, floor, limit, chunk, cap):
        loaded += batch
        mark = batch[-1].end
    return loaded


# Examples


def test_window_must_not_be_empty():
    with pytest.raises(ValueError):
        Window(10, 10)
    with pytest.raises(ValueError):
        Window(10, 9)


def test_safe_limit_stays_lag_behind_the_source():
    assert safe_limit(1_000, 120) == 880
    assert safe_limit(1_000, 0) == 1_000


def test_young_active_row_holds_the_limit_back():
    assert hold_back_limit(1_000, 700, source_now=1_100, stuck_threshold=600) == 700


def test_active_row_after_the_limit_changes_nothing():
    assert hold_back_limit(1_000, 1_050, source_now=1_100, stuck_threshold=600) == 1_000


def test_stuck_active_row_no_longer_holds_the_limit():
    assert hold_back_limit(1_000, 400, source_now=1_100, stuck_threshold=600) == 1_000
    # exactly as old as the threshold already counts as stuck
    assert hold_back_limit(1_000, 500, source_now=1_100, stuck_threshold=600) == 1_000
    assert hold_back_limit(1_000, 501, source_now=1_100, stuck_threshold=600) == 501


def test_no_active_row_keeps_the_limit():
    assert hold_back_limit(1_000, None, source_now=1_100, stuck_threshold=600) == 1_000


def test_first_run_starts_at_floor_and_cuts_on_the_chunk_grid():
    assert next_windows(None, 130, 380, 100) == [
        Window(130, 230), Window(230, 330), Window(330, 380)]


def test_run_resumes_at_the_mark():
    assert next_windows(300, 100, 350, 100) == [Window(300, 350)]


def test_mark_below_floor_starts_at_floor():
    assert next_windows(50, 100, 250, 100) == [Window(100, 200), Window(200, 250)]


def test_nothing_to_do_when_limit_is_not_past_the_start():
    assert next_windows(300, 100, 300, 100) == []
    assert next_windows(300, 100, 200, 100) == []
    assert next_windows(None, 100, 50, 100) == []


def test_max_windows_caps_the_list():
    assert next_windows(0, 0, 1_000, 100, max_windows=2) == [Window(0, 100), Window(100, 200)]
    assert next_windows(0, 0, 1_000, 100, max_windows=0) == []


def test_chunk_must_be_positive():
    with pytest.raises(ValueError):
        next_windows(0, 0, 1_000, 0)
    with pytest.raises(ValueError):
        next_windows(0, 0, 1_000, -5)


def test_windows_for_applies_lag_and_active_rows():
    assert windows_for(0, 0, source_now=1_120, lag=120, chunk=400) == [
        Window(0, 400), Window(400, 800), Window(800, 1_000)]
    assert windows_for(0, 0, source_now=1_120, lag=120, chunk=400, oldest_active=500,
                       stuck_threshold=28_860) == [Window(0, 400), Window(400, 500)]
    assert windows_for(0, 0, source_now=1_120, lag=120, chunk=400, oldest_active=500,
                       stuck_threshold=600) == [Window(0, 400), Window(400, 800),
                                                Window(800, 1_000)]


def test_split_window_at_inner_cuts_only():
    assert split_window(Window(0, 100), [70, 30, 30, 0, 100, -5, 150]) == [
        Window(0, 30), Window(30, 70), Window(70, 100)]
    assert split_window(Window(0, 100), []) == [Window(0, 100)]


def test_coverage_gaps_merges_overlaps_and_ignores_the_outside():
    covered = [(40, 60), (-10, 10), (55, 70), (90, 200), (300, 400)]
    assert coverage_gaps(Window(0, 100), covered) == [Window(10, 40), Window(70, 90)]


def test_coverage_gaps_of_an_uncovered_and_a_fully_covered_window():
    assert coverage_gaps(Window(0, 100), []) == [Window(0, 100)]
    assert coverage_gaps(Window(0, 100), [(0, 50), (50, 100)]) == []
    assert coverage_gaps(Window(0, 100), [(30, 30), (60, 40)]) == [Window(0, 100)]


# Properties


@PROPERTY
@given(backlogs())
def test_windows_are_contiguous_bounded_chunks_from_start_to_limit(backlog):
    mark, floor, limit, chunk = backlog
    found = next_windows(mark, floor, limit, chunk)
    start = floor if mark is None else max(mark, floor)
    if limit <= start:
        assert found == []
        return
    assert found[0].start == start
    assert found[-1].end == limit
    assert _contiguous(found)
    assert all(0 < w.end - w.start <= chunk for w in found)
    assert all(w.end <= limit for w in found)


@PROPERTY
@given(backlogs(), st.data())
def test_restart_after_any_committed_window_yields_the_rest(backlog, data):
    mark, floor, limit, chunk = backlog
    found = next_windows(mark, floor, limit, chunk)
    if not found:
        return
    k = data.draw(st.integers(0, len(found) - 1))
    assert next_windows(found[k].end, floor, limit, chunk) == found[k + 1:]


@PROPERTY
@given(backlogs(), st.integers(1, 10))
def test_capped_runs_until_empty_load_what_one_uncapped_run_would(backlog, cap):
    mark, floor, limit, chunk = backlog
    assert _committed_in_turn(mark, floor, limit, chunk, cap) == next_windows(
        mark, floor, limit, chunk)


@PROPERTY
@given(st.none() | TIME, TIME, TIME, LAG, CHUNK, st.none() | TIME, st.integers(1, 10**6),
       st.integers(1, MAX_WINDOWS))
def test_the_mark_never_moves_backwards(mark, floor, now, lag, chunk, oldest_active, stuck,
                                        cap):
    found = windows_for(mark, floor, now, lag, chunk, oldest_active, stuck, cap)
    start = floor if mark is None else max(mark, floor)
    assert all(w.start >= start for w in found)
    assert all(w.end <= safe_limit(now, lag) for w in found)


@PROPERTY
@given(TIME, TIME, TIME, st.integers(1, 10**6))
def test_young_active_row_holds_the_limit_and_stuck_one_does_not(limit, now, oldest, stuck):
    held = hold_back_limit(limit, oldest, now, stuck)
    assert held <= limit
    if oldest > now - stuck:
        assert held == min(limit, oldest)
    else:
        assert held == limit


@PROPERTY
@given(st.integers(1, 2**31), LAG, st.data())
def test_a_row_committed_late_is_not_lost(ts, lag, data):
    commit = data.draw(st.integers(ts, ts + lag), label="commit")
    # observed before the commit: the windows extracted at `now` could not see the row
    now = data.draw(st.integers(max(0, commit - 100_000), commit - 1), label="now")
    limit = safe_limit(now, lag)
    assert ts >= limit
    later = safe_limit(commit + lag + 1, lag)
    fewest = -(-(later - limit) // MAX_WINDOWS)
    chunk = data.draw(st.integers(fewest, max(fewest, 100_000)), label="chunk")
    mark = limit - data.draw(st.integers(0, MAX_WINDOWS * chunk), label="backlog")
    assert all(not w.start <= ts < w.end for w in next_windows(mark, 0, limit, chunk))
    # the run after the commit resumes at that limit and picks the row up
    found = next_windows(limit, 0, later, chunk)
    assert any(w.start <= ts < w.end for w in found)


@PROPERTY
@given(windows(), st.lists(st.integers(0, 2**31 + 200_000), max_size=20), st.data())
def test_split_window_covers_the_window_exactly(window, cuts, data):
    cuts += data.draw(st.lists(st.integers(window.start, window.end), max_size=10))
    parts = split_window(window, cuts)
    assert parts[0].start == window.start
    assert parts[-1].end == window.end
    assert _contiguous(parts)
    inner = {c for c in cuts if window.start < c < window.end}
    assert len(parts) == len(inner) + 1


@PROPERTY
@given(windows(), st.data())
def test_coverage_gaps_and_covered_parts_make_up_the_window(window, data):
    length = window.end - window.start
    point = st.integers(window.start - length, window.end + length)
    covered = data.draw(st.lists(st.tuples(point, point), max_size=8))
    gaps = coverage_gaps(window, covered)
    assert all(window.start <= g.start and g.end <= window.end for g in gaps)
    # merged: ordered with covered time between consecutive gaps
    assert all(a.end < b.start for a, b in zip(gaps, gaps[1:], strict=False))
    # membership is constant between consecutive boundaries, so checking them is exhaustive
    bounds = {window.start} | {x for ab in covered for x in ab
                               if window.start <= x < window.end}
    for t in bounds:
        in_gap = any(g.start <= t < g.end for g in gaps)
        in_covered = any(a <= t < b for a, b in covered)
        assert in_gap != in_covered


@PROPERTY
@given(backlogs(), st.data())
def test_restart_while_the_limit_grows_loads_each_time_once(backlog, data):
    """Runs resumed at their marks, each seeing a higher limit than the last, load every
    second from the start to the last limit exactly once, in order."""
    mark, floor, limit, chunk = backlog
    # growth in proportion to the chunk, so that the windows stay few
    growth = data.draw(st.lists(st.integers(0, MAX_WINDOWS * chunk // 4), max_size=4))
    start = floor if mark is None else max(mark, floor)
    limits = [limit]
    for g in growth:
        limits.append(limits[-1] + g)
    loaded: list[Window] = []
    current = mark
    for lim in limits:
        cap = data.draw(st.none() | st.integers(1, 10))
        found = next_windows(current, floor, lim, chunk, cap)
        if found:
            assert found[0].start == (start if not loaded else loaded[-1].end)
            loaded += found
            current = found[-1].end
    # then runs at the last limit until there is nothing left
    loaded += next_windows(current, floor, limits[-1], chunk)
    assert _contiguous(loaded)
    assert all(0 < w.end - w.start <= chunk for w in loaded)
    if limits[-1] > start:
        assert loaded[0].start == start and loaded[-1].end == limits[-1]
    else:
        assert loaded == []


def test_whole_plans_one_window_from_the_mark():
    assert plan_windows(300, 0, 1_000, 100, whole=True) == [Window(300, 1_000)]
    assert plan_windows(None, 50, 1_000, 100, whole=True) == [Window(50, 1_000)]
    assert plan_windows(1_000, 0, 1_000, 100, whole=True) == []
    assert plan_windows(300, 0, 1_000, 100, whole=True, max_windows=0) == []
    assert plan_windows(300, 0, 500, 100) == next_windows(300, 0, 500, 100)


@PROPERTY
@given(backlogs())
def test_whole_window_spans_what_the_chunked_ones_would(backlog):
    mark, floor, limit, chunk = backlog
    chunked = plan_windows(mark, floor, limit, chunk)
    whole = plan_windows(mark, floor, limit, chunk, whole=True)
    if not chunked:
        assert whole == []
    else:
        assert whole == [Window(chunked[0].start, chunked[-1].end)]


def test_source_limit_is_the_lag_behind_then_held_back():
    assert source_limit(1_000, 100) == 900
    assert source_limit(1_000, 100, oldest_active=700, stuck_threshold=600) == 700
    assert source_limit(1_000, 100, oldest_active=300, stuck_threshold=600) == 900


def test_empty_windows_merge_into_the_next_loaded_one():
    grid = next_windows(0, 0, 500, 100)
    assert coalesce_empty(grid, {200}) == [Window(0, 300), Window(300, 500)]
    assert coalesce_empty(grid, set()) == [Window(0, 500)]
    assert coalesce_empty(grid, {0, 100, 200, 300, 400}) == grid
    assert coalesce_empty([], {0}) == []


@st.composite
def grids_with_rows(draw: st.DrawFn) -> tuple[list[Window], set[int], int, int]:
    """A grid of windows, the starts of those holding rows, its floor and chunk."""
    mark, floor, limit, chunk = draw(backlogs())
    grid = next_windows(mark, floor, limit, chunk)
    busy = {w.start for w in grid if draw(st.booleans())}
    return grid, busy, floor, chunk


@PROPERTY
@given(grids_with_rows(), st.data())
def test_coalesced_windows_cover_the_grid_and_restart_exactly(grid_busy, data):
    grid, busy, floor, chunk = grid_busy
    merged = coalesce_empty(grid, busy)
    if not grid:
        assert merged == []
        return
    assert merged[0].start == grid[0].start and merged[-1].end == grid[-1].end
    assert _contiguous(merged)
    for w in merged:
        inside = [g for g in grid if w.start <= g.start and g.end <= w.end]
        assert inside and inside[0].start == w.start and inside[-1].end == w.end
        # only the last grid window of a merged one may hold rows
        assert all(g.start not in busy for g in inside[:-1])
    # every window holding rows is loaded on its own grid bounds' end
    assert all(any(m.end == g.end for m in merged) for g in grid if g.start in busy)
    # a job killed after any merged window resumes with exactly the rest
    k = data.draw(st.integers(0, len(merged) - 1))
    rest = next_windows(merged[k].end, floor, grid[-1].end, chunk)
    assert coalesce_empty(rest, busy) == merged[k + 1:]


@PROPERTY
@given(backlogs(), st.data())
def test_merging_through_the_next_row_is_coalescing_the_empty_windows(backlog, data):
    mark, floor, limit, chunk = backlog
    grid = next_windows(mark, floor, limit, chunk)
    if not grid:
        return
    point = st.integers(grid[0].start - chunk, grid[-1].end + chunk)
    rows = data.draw(st.lists(point, max_size=30))
    busy = {w.start for w in grid if any(w.start <= t < w.end for t in rows)}
    walked, k = [], 0
    while k < len(grid):
        later = [t for t in rows if grid[k].start <= t < grid[-1].end]
        j = merge_through(grid, k, min(later) if later else None)
        walked.append(Window(grid[k].start, grid[j].end))
        k = j + 1
    assert walked == coalesce_empty(grid, busy)


def test_reliable_cuts_sessions_at_the_idb_limit():
    assert reliable([(0, 50), (60, 200), (300, 400)], 100) == [(0, 50), (60, 100)]
    assert reliable(None, 100) == [(-(2**63), 100)]
    assert reliable([], 100) == []
    # before the set's first session nothing was recorded: nothing can be missing there
    assert reliable([(50, 80)], 100, history_start=20) == [(-(2**63), 20), (50, 80)]


def test_parts_go_to_the_idb_that_covers_them_and_stay_there():
    a = [(0, 40), (60, 200)]
    b = [(0, 200)]
    assert assign_parts(Window(0, 100), [a, b]) == [
        (Window(0, 40), 0), (Window(40, 100), 1)]  # b keeps the rest: no flapping back
    assert assign_parts(Window(0, 100), [a, b], preferred=1) == [(Window(0, 100), 1)]
    assert assign_parts(Window(0, 100), [[(0, 30)], [(50, 100)]]) == [
        (Window(0, 30), 0), (Window(30, 50), None), (Window(50, 100), 1)]
    assert assign_parts(Window(0, 100), [[(0, 100)]]) == [(Window(0, 100), 0)]


@st.composite
def coverages(draw: st.DrawFn) -> tuple[Window, list[list[tuple[int, int]]]]:
    window = draw(windows())
    length = window.end - window.start
    point = st.integers(window.start - length, window.end + length)
    covers = draw(st.lists(st.lists(st.tuples(point, point).map(sorted).map(tuple),
                                    max_size=4), min_size=1, max_size=3))
    return window, covers


@PROPERTY
@given(coverages(), st.data())
def test_assigned_parts_make_up_the_window_each_covered_by_its_idb(window_covers, data):
    window, covers = window_covers
    preferred = data.draw(st.integers(0, len(covers) - 1))
    parts = assign_parts(window, covers, preferred)
    assert parts[0][0].start == window.start and parts[-1][0].end == window.end
    assert _contiguous([p for p, _ in parts])
    assert all(a[1] != b[1] for a, b in zip(parts, parts[1:], strict=False))  # merged
    current = preferred
    for part, index in parts:
        if index is None:
            # no IDB covers any instant of it: the cuts make membership constant in a part
            assert all(coverage_gaps(part, c) == [part] for c in covers)
        else:
            assert coverage_gaps(part, covers[index]) == []
            if index != current:
                # left the IDB used last only where that one has a gap
                assert coverage_gaps(part, covers[current]) != []
            current = index
