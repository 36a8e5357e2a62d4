"""The DATE_TIME calendar: one row per 15-minute interval, keyed by the UTC epoch second the
interval starts at, with calendar attributes in the configured time zone.

Pure functions; `gim.jobs.initialize` and the maintenance job write what they return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

INTERVAL = 900  # seconds in a DATE_TIME interval

# The key active facts end at, so that reports never meet a NULL end. The product uses a
# special row dated in 2025, which is past now; gim uses 2038-01-01 00:00 UTC, the last
# round date whose epoch second still fits the product's 32-bit integer keys.
ACTIVE_END_KEY = 2145916800

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")


def interval_key(ts: int) -> int:
    """The DATE_TIME key of the interval holding UTC epoch second `ts`."""
    return (int(ts) // INTERVAL) * INTERVAL


def zone(name: str) -> dt.tzinfo:
    return dt.UTC if name.upper() in ("GMT", "UTC") else ZoneInfo(name)


@dataclass(frozen=True)
class WeekRule:
    """Week numbering: first_day 1 = Sunday ... 7 = Saturday (the product's convention).

    simple: weeks are cut at the year boundary, so the first and last weeks of a year may be
    short (the product's default). Otherwise weeks belong to a week-year whose first week
    holds at least min_days days of the new year, as ISO-8601 does with first_day 2 (Monday)
    and min_days 4.
    """

    first_day: int = 1
    min_days: int = 1
    simple: bool = True

    @property
    def first_weekday(self) -> int:
        """The first day as Python's weekday() number (Monday 0 ... Sunday 6)."""
        return (self.first_day + 5) % 7

    def week_start(self, day: dt.date) -> dt.date:
        return day - dt.timedelta(days=(day.weekday() - self.first_weekday) % 7)

    def week_of(self, day: dt.date) -> tuple[int, int, dt.date]:
        """(week-year, week number, first day of the week as this rule bounds it)."""
        start = self.week_start(day)
        if self.simple:
            jan1 = dt.date(day.year, 1, 1)
            number = (day - self.week_start(jan1)).days // 7 + 1
            return day.year, number, max(start, jan1)
        year = day.year
        for candidate in (year + 1, year, year - 1):
            first = self._first_week_start(candidate)
            if day >= first:
                return candidate, (day - first).days // 7 + 1, start
        raise AssertionError("unreachable")

    def _first_week_start(self, year: int) -> dt.date:
        jan1 = dt.date(year, 1, 1)
        start = self.week_start(jan1)
        days_in_new_year = 7 - (jan1 - start).days
        return start if days_in_new_year >= self.min_days else start + dt.timedelta(days=7)


def _epoch(local: dt.datetime) -> int:
    return int(local.timestamp())


def _local_midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The first instant of a local day (midnight, or the first valid time after a gap)."""
    candidate = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    # A zone that jumps over midnight: the day starts at the first existing local time.
    back = candidate.astimezone(dt.UTC).astimezone(tz)
    if back.replace(tzinfo=None) != candidate.replace(tzinfo=None):
        return back
    return candidate


def calendar_rows(start_key: int, end_key: int, tz_name: str = "GMT",
                  rule: WeekRule | None = None) -> Iterator[dict[str, Any]]:
    """DATE_TIME rows for every interval key in [start_key, end_key)."""
    tz = zone(tz_name)
    rule = rule or WeekRule()
    day_cache: dict[dt.date, dict[str, Any]] = {}
    key = interval_key(start_key)
    while key < end_key:
        local = dt.datetime.fromtimestamp(key, dt.UTC).astimezone(tz)
        day = local.date()
        d = day_cache.get(day)
        if d is None:
            if len(day_cache) > 4:
                day_cache.clear()
            d = day_cache[day] = _day_attributes(day, tz, rule)
        minute = local.minute
        quarter = (day.month - 1) // 3 + 1
        hour_key = key - (minute % 60) * 60
        yield {
            "DATE_TIME_KEY": key,
            "DATE_TIME_NEXT_KEY": key + INTERVAL,
            "DATE_TIME_30MIN_KEY": key - (minute % 30) * 60,
            "DATE_TIME_HOUR_KEY": hour_key,
            "DATE_TIME_DAY_KEY": d["day_key"],
            "DATE_TIME_WEEK_KEY": d["week_key"],
            "DATE_TIME_MONTH_KEY": d["month_key"],
            "DATE_TIME_QUARTER_KEY": d["quarter_key"],
            "DATE_TIME_YEAR_KEY": d["year_key"],
            "UTC_OFFSET_MINUTES": int(local.utcoffset().total_seconds() // 60),
            "CAL_DATE": local.replace(tzinfo=None),
            "CAL_DAY_NAME": DAY_NAMES[day.weekday()],
            "CAL_DAY_NUM_IN_WEEK": (day.weekday() - rule.first_weekday) % 7 + 1,
            "CAL_DAY_NUM_IN_MONTH": day.day,
            "CAL_DAY_NUM_IN_YEAR": day.timetuple().tm_yday,
            "CAL_WEEK_NUM_IN_YEAR": d["week_num"],
            "CAL_WEEK_YEAR_NUM": d["week_year"],
            "CAL_MONTH_NAME": MONTH_NAMES[day.month - 1],
            "CAL_MONTH_NUM_IN_YEAR": day.month,
            "CAL_QUARTER_NAME": f"Q{quarter}",
            "CAL_QUARTER_NUM_IN_YEAR": quarter,
            "CAL_YEAR_NUM": day.year,
            "CAL_HOUR_24_NUM_IN_DAY": local.hour,
            "CAL_MINUTE_NUM_IN_HOUR": minute,
            "LABEL_YYYY": f"{day.year:04d}",
            "LABEL_YYYY_QQ": f"{day.year:04d}-Q{quarter}",
            "LABEL_YYYY_MM": f"{day.year:04d}-{day.month:02d}",
            "LABEL_YYYY_WW": f"{d['week_year']:04d}-W{d['week_num']:02d}",
            "LABEL_YYYY_MM_DD": day.isoformat(),
            "LABEL_YYYY_MM_DD_HH24": f"{day.isoformat()} {local.hour:02d}",
            "LABEL_YYYY_MM_DD_HH24_30INT": f"{day.isoformat()} {local.hour:02d}:"
                                           f"{(minute // 30) * 30:02d}",
            "LABEL_YYYY_MM_DD_HH24_15INT": f"{day.isoformat()} {local.hour:02d}:"
                                           f"{(minute // 15) * 15:02d}",
            "LABEL_HH24": f"{local.hour:02d}",
            "LABEL_HH24_MI": f"{local.hour:02d}:{minute:02d}",
        }
        key += INTERVAL


def _day_attributes(day: dt.date, tz: dt.tzinfo, rule: WeekRule) -> dict[str, Any]:
    week_year, week_num, week_first = rule.week_of(day)
    quarter_month = ((day.month - 1) // 3) * 3 + 1
    return {
        "day_key": _epoch(_local_midnight(day, tz)),
        "week_key": _epoch(_local_midnight(week_first, tz)),
        "month_key": _epoch(_local_midnight(day.replace(day=1), tz)),
        "quarter_key": _epoch(_local_midnight(dt.date(day.year, quarter_month, 1), tz)),
        "year_key": _epoch(_local_midnight(dt.date(day.year, 1, 1), tz)),
        "week_num": week_num,
        "week_year": week_year,
    }


def day_start_key(day: dt.date, tz_name: str) -> int:
    """Key of the first interval of a local calendar day."""
    return interval_key(_epoch(_local_midnight(day, zone(tz_name))))
