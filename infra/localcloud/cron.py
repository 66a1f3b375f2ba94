"""EventBridge schedule expressions, computed offline: ``cron(...)`` and ``rate(...)``.

The scheduler (`schedule.py`) asks when a rule fires next so that it can move the virtual
clock from one firing to the next. The grammar is EventBridge's, which is not Unix cron:

* six fields, ``cron(minutes hours day-of-month month day-of-week year)``, all in UTC;
* ``*`` ``,`` ``-`` ``/`` in every field; month names ``JAN``..``DEC`` and weekday names
  ``SUN``..``SAT``; weekdays are numbered ``1=SUN`` .. ``7=SAT`` (not 0..6);
* exactly one of day-of-month and day-of-week is ``?``;
* day-of-month also takes ``L`` (last day), ``nW`` (the weekday nearest day n, within the
  month) and ``LW`` (the last weekday); day-of-week takes ``L`` (Saturday, the last day of
  the week), ``nL`` (the last weekday n of the month) and ``n#k`` (the k-th weekday n);
  these forms stand alone in their field, as in EventBridge;
* ``rate(N unit)``, unit ``minute(s)``, ``hour(s)`` or ``day(s)``: singular when N is 1,
  plural otherwise; a rate counts from when the rule was created.

A bad expression is a `LocalCloudError` naming the expression and the problem. Every function
here is pure: no clock is read.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from .errors import LocalCloudError

MONTHS = {name: i for i, name in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
WEEKDAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
YEAR_RANGE = (1970, 2199)
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_EXPRESSION = re.compile(r"^\s*(cron|rate)\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)

DayMatcher = Callable[[date], bool]


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the allowed values of each field and the day rule."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day_matches: DayMatcher  # day-of-month or day-of-week, whichever is not '?'


@dataclass(frozen=True)
class Rate:
    """A parsed rate expression: fires every ``seconds`` after the rule's creation."""

    expression: str
    seconds: int


def _bad(expression: str, problem: str) -> LocalCloudError:
    return LocalCloudError(f"schedule expression '{expression}': {problem}")


def aws_weekday(day: date) -> int:
    """EventBridge's weekday number of a date: 1=SUN, 2=MON, ..., 7=SAT."""
    return (day.weekday() + 1) % 7 + 1


# -- parsing ------------------------------------------------------------------------------
def _value(token: str, field: str, lo: int, hi: int, names: dict[str, int], expression: str) -> int:
    """One number (or name) of a field, range-checked."""
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise _bad(expression, f"'{token}' is not a valid {field} value")
    number = int(token)
    if not lo <= number <= hi:
        raise _bad(expression, f"{field} value {number} is outside {lo}-{hi}")
    return number


def _values(text: str, field: str, lo: int, hi: int, expression: str,
            names: dict[str, int] | None = None) -> frozenset[int]:
    """The set a plain field allows: ``*``, numbers, names, ``a-b``, ``*/n``, ``a/n``, ``a-b/n``, lists."""
    names = names or {}
    allowed: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _bad(expression, f"empty item in the {field} field '{text}'")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise _bad(expression, f"step '{step_text}' in the {field} field must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _value(first, field, lo, hi, names, expression)
            end = _value(last, field, lo, hi, names, expression)
            if start > end:
                raise _bad(expression, f"range '{base}' in the {field} field runs backwards")
        else:
            start = _value(base, field, lo, hi, names, expression)
            end = hi if slash else start
        allowed.update(range(start, end + 1, step))
    return frozenset(allowed)


def _nearest_weekday(year: int, month: int, day: int) -> int | None:
    """The day of the month ``nW`` means: the weekday nearest ``day``, never leaving the month."""
    last = calendar.monthrange(year, month)[1]
    if day > last:
        return None
    weekday = date(year, month, day).weekday()  # Mon=0 .. Sun=6
    if weekday == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return day + 1 if day < last else day - 2
    return day


def _last_weekday_of_month(year: int, month: int) -> int:
    last = calendar.monthrange(year, month)[1]
    while date(year, month, last).weekday() >= 5:
        last -= 1
    return last


def _day_of_month_matcher(text: str, expression: str) -> DayMatcher:
    upper = text.upper()
    if upper == "L":
        return lambda d: d.day == calendar.monthrange(d.year, d.month)[1]
    if upper == "LW":
        return lambda d: d.day == _last_weekday_of_month(d.year, d.month)
    if upper.endswith("W"):
        day = _value(upper[:-1], "day-of-month", 1, 31, {}, expression)
        return lambda d: d.day == _nearest_weekday(d.year, d.month, day)
    days = _values(text, "day-of-month", 1, 31, expression)
    return lambda d: d.day in days


def _day_of_week_matcher(text: str, expression: str) -> DayMatcher:
    upper = text.upper()
    if upper == "L":
        return lambda d: aws_weekday(d) == 7
    if "#" in upper:
        weekday_text, _, nth_text = upper.partition("#")
        weekday = _value(weekday_text, "day-of-week", 1, 7, WEEKDAYS, expression)
        nth = _value(nth_text, "week number after #", 1, 5, {}, expression)
        return lambda d: aws_weekday(d) == weekday and (d.day - 1) // 7 + 1 == nth
    if upper.endswith("L"):
        weekday = _value(upper[:-1], "day-of-week", 1, 7, WEEKDAYS, expression)
        return lambda d: (aws_weekday(d) == weekday
                          and d.day + 7 > calendar.monthrange(d.year, d.month)[1])
    weekdays = _values(text, "day-of-week", 1, 7, expression, WEEKDAYS)
    return lambda d: aws_weekday(d) in weekdays


def _parse_cron(expression: str, body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise _bad(expression, "cron needs 6 fields (minutes hours day-of-month month day-of-week year), "
                               f"got {len(fields)}")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise _bad(expression, "exactly one of day-of-month and day-of-week must be '?'")
    if "?" in (minute, hour, month, year):
        raise _bad(expression, "'?' is only allowed in day-of-month or day-of-week")
    day_matches = _day_of_week_matcher(dow, expression) if dom == "?" else _day_of_month_matcher(dom, expression)
    return Cron(
        expression=expression,
        minutes=_values(minute, "minutes", 0, 59, expression),
        hours=_values(hour, "hours", 0, 23, expression),
        months=_values(month, "month", 1, 12, expression, MONTHS),
        years=_values(year, "year", *YEAR_RANGE, expression),
        day_matches=day_matches,
    )


def _parse_rate(expression: str, body: str) -> Rate:
    match = re.fullmatch(r"\s*(\d+)\s+([A-Za-z]+)\s*", body)
    if not match:
        raise _bad(expression, "rate needs a value and a unit, e.g. rate(5 minutes)")
    value, unit = int(match.group(1)), match.group(2).lower()
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        raise _bad(expression, f"unknown rate unit '{unit}' (minute(s), hour(s) or day(s))")
    if value <= 0:
        raise _bad(expression, "the rate value must be a positive whole number")
    if (value == 1) != (unit == singular):
        raise _bad(expression, f"use '{singular}' for a value of 1 and '{singular}s' otherwise")
    return Rate(expression, value * _RATE_UNITS[singular])


def parse(expression: str) -> Cron | Rate:
    """Parse a schedule expression; raises `LocalCloudError` naming the problem."""
    if not isinstance(expression, str):
        raise LocalCloudError(f"schedule expression {expression!r} is not a string")
    match = _EXPRESSION.match(expression)
    if not match:
        raise _bad(expression, "expected cron(...) or rate(...)")
    kind, body = match.group(1).lower(), match.group(2)
    return _parse_cron(expression, body) if kind == "cron" else _parse_rate(expression, body)


# -- evaluation ---------------------------------------------------------------------------
def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(timezone.utc)


def _days_from(cron: Cron, day: date) -> Iterator[date]:
    """Days from ``day`` on whose year, month and day match, skipping whole years and months."""
    while day.year <= YEAR_RANGE[1]:
        if day.year not in cron.years:
            day = date(day.year + 1, 1, 1)
        elif day.month not in cron.months:
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        else:
            if cron.day_matches(day):
                yield day
            day += timedelta(days=1)


def _next_cron(cron: Cron, after: datetime) -> datetime | None:
    hours, minutes = sorted(cron.hours), sorted(cron.minutes)
    for day in _days_from(cron, after.date()):
        for hour in hours:
            for minute in minutes:
                moment = datetime.combine(day, time(hour, minute), timezone.utc)
                if moment > after:
                    return moment
    return None


def next_fire(expression: str, after: datetime, created_at: datetime | None = None) -> datetime | None:
    """The first firing strictly after ``after`` (UTC), or None when the schedule has ended.

    A rate counts whole periods from ``created_at`` (default: ``after`` itself).
    """
    spec = parse(expression)
    after = _utc(after, "after")
    if isinstance(spec, Rate):
        anchor = _utc(created_at, "created_at") if created_at else after
        if after < anchor:
            return anchor + timedelta(seconds=spec.seconds)
        periods = (after - anchor) // timedelta(seconds=spec.seconds) + 1
        return anchor + timedelta(seconds=periods * spec.seconds)
    return _next_cron(spec, after)


def fire_times(expression: str, start: datetime, end: datetime,
               created_at: datetime | None = None) -> list[datetime]:
    """Every firing in the window ``(start, end]``, in order; none before ``created_at``.

    ``created_at`` is when the rule was created (rates count from it; default ``start``).
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    created = _utc(created_at, "created_at") if created_at else start
    times: list[datetime] = []
    cursor = max(start, created)
    while True:
        moment = next_fire(expression, cursor, created)
        if moment is None or moment > end:
            return times
        times.append(moment)
        cursor = moment
