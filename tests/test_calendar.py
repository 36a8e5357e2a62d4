"""DATE_TIME rows: keys on the 15-minute UTC grid, parent keys and labels in the calendar's
time zone, week numbering rules."""

from __future__ import annotations

import datetime as dt

import pytest

from gim.calendar import INTERVAL, WeekRule, calendar_rows, day_start_key, interval_key


def _ts(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


def test_keys_are_contiguous_utc_quarters():
    rows = list(calendar_rows(_ts("2026-03-01 00:07:00"), _ts("2026-03-02 00:00:00")))
    keys = [r["DATE_TIME_KEY"] for r in rows]
    assert keys[0] == _ts("2026-03-01 00:00:00")
    assert len(keys) == 96 and all(b - a == INTERVAL for a, b in zip(keys, keys[1:], strict=False))
    assert all(r["DATE_TIME_NEXT_KEY"] == r["DATE_TIME_KEY"] + INTERVAL for r in rows)
    assert interval_key(_ts("2026-03-01 10:44:59")) == _ts("2026-03-01 10:30:00")


def test_gmt_attributes_and_labels():
    row = next(calendar_rows(_ts("2026-11-24 13:45:00"), _ts("2026-11-24 14:00:00")))
    assert row["CAL_DATE"] == dt.datetime(2026, 11, 24, 13, 45)
    assert row["DATE_TIME_30MIN_KEY"] == _ts("2026-11-24 13:30:00")
    assert row["DATE_TIME_HOUR_KEY"] == _ts("2026-11-24 13:00:00")
    assert row["DATE_TIME_DAY_KEY"] == _ts("2026-11-24 00:00:00")
    assert row["DATE_TIME_MONTH_KEY"] == _ts("2026-11-01 00:00:00")
    assert row["DATE_TIME_QUARTER_KEY"] == _ts("2026-10-01 00:00:00")
    assert row["DATE_TIME_YEAR_KEY"] == _ts("2026-01-01 00:00:00")
    # 2026-11-24 is a Tuesday; weeks start on Sunday by default (Sunday = day 1).
    assert row["CAL_DAY_NAME"] == "Tuesday" and row["CAL_DAY_NUM_IN_WEEK"] == 3
    assert row["DATE_TIME_WEEK_KEY"] == _ts("2026-11-22 00:00:00")
    assert row["LABEL_YYYY_MM_DD"] == "2026-11-24"
    assert row["LABEL_YYYY_MM_DD_HH24"] == "2026-11-24 13"
    assert row["LABEL_YYYY_MM_DD_HH24_30INT"] == "2026-11-24 13:30"
    assert row["LABEL_YYYY_MM_DD_HH24_15INT"] == "2026-11-24 13:45"
    assert row["LABEL_YYYY_QQ"] == "2026-Q4" and row["CAL_QUARTER_NUM_IN_YEAR"] == 4
    assert row["UTC_OFFSET_MINUTES"] == 0


def test_dst_days_have_92_and_100_intervals_in_new_york():
    tz = "America/New_York"
    for day, expected in ((dt.date(2026, 3, 8), 92), (dt.date(2026, 11, 1), 100),
                          (dt.date(2026, 7, 1), 96)):
        start = day_start_key(day, tz)
        end = day_start_key(day + dt.timedelta(days=1), tz)
        rows = list(calendar_rows(start, end, tz))
        assert len(rows) == expected
        assert {r["DATE_TIME_DAY_KEY"] for r in rows} == {start}
        assert {r["LABEL_YYYY_MM_DD"] for r in rows} == {day.isoformat()}
    # The local hour key of a quarter in a half-hour-offset zone is the local hour start.
    row = next(calendar_rows(_ts("2026-06-01 10:00:00"), _ts("2026-06-01 10:15:00"),
                             "Asia/Kolkata"))
    assert row["CAL_HOUR_24_NUM_IN_DAY"] == 15 and row["CAL_MINUTE_NUM_IN_HOUR"] == 30
    assert row["DATE_TIME_HOUR_KEY"] == _ts("2026-06-01 09:30:00")
    assert row["UTC_OFFSET_MINUTES"] == 330


@pytest.mark.parametrize("day, simple_week, iso_week", [
    (dt.date(2026, 1, 1), (2026, 1), (2026, 1)),     # Thursday
    (dt.date(2026, 1, 4), (2026, 2), (2026, 1)),     # Sunday starts week 2 (simple)
    (dt.date(2027, 1, 1), (2027, 1), (2026, 53)),    # Friday: ISO week 53 of 2026
    (dt.date(2024, 12, 30), (2024, 53), (2025, 1)),  # Monday: ISO week 1 of 2025
])
def test_week_rules(day, simple_week, iso_week):
    simple = WeekRule()
    iso = WeekRule(first_day=2, min_days=4, simple=False)
    assert simple.week_of(day)[:2] == simple_week
    assert iso.week_of(day)[:2] == iso_week
    assert iso.week_of(day)[:2] == day.isocalendar()[:2]
    # Simple numbering cuts the first week at January 1st.
    assert simple.week_of(dt.date(2026, 1, 2))[2] == dt.date(2026, 1, 1)


def test_iso_rule_agrees_with_python_for_three_years():
    iso = WeekRule(first_day=2, min_days=4, simple=False)
    day = dt.date(2025, 1, 1)
    while day < dt.date(2028, 1, 1):
        assert iso.week_of(day)[:2] == day.isocalendar()[:2], day
        day += dt.timedelta(days=1)
