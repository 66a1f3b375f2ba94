"""EventBridge schedule expressions: every expectation here was worked out by hand from a
calendar (2026-01-01 is a Thursday), not computed by the code under test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localcloud import cron
from localcloud.errors import LocalCloudError


def utc(*args: int) -> datetime:
    """A UTC datetime."""
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # Weekly retraining: Sundays 03:00 UTC.
        ("cron(0 3 ? * SUN *)", utc(2026, 1, 1, 12, 0), utc(2026, 1, 4, 3, 0)),
        ("cron(0 3 ? * SUN *)", utc(2026, 1, 4, 3, 0), utc(2026, 1, 11, 3, 0)),  # strictly after
        ("cron(0 3 ? * SUN *)", utc(2026, 1, 4, 2, 59, 59), utc(2026, 1, 4, 3, 0)),
        # AWS numbers weekdays 1=SUN .. 7=SAT: 2 is Monday, 1 is Sunday, 7 is Saturday.
        ("cron(0 12 ? * 2 *)", utc(2026, 1, 1), utc(2026, 1, 5, 12, 0)),
        ("cron(0 3 ? * 1 *)", utc(2026, 1, 1), utc(2026, 1, 4, 3, 0)),
        ("cron(0 0 ? * 7 *)", utc(2026, 1, 1), utc(2026, 1, 3, 0, 0)),
        # Lists, ranges and steps; weekday ranges by name.
        ("cron(0/15 9-17 ? * MON-FRI *)", utc(2026, 1, 2, 17, 50), utc(2026, 1, 5, 9, 0)),
        ("cron(0/15 9-17 ? * MON-FRI *)", utc(2026, 1, 5, 9, 0), utc(2026, 1, 5, 9, 15)),
        ("cron(5,35 */6 * * ? *)", utc(2026, 1, 1, 6, 36), utc(2026, 1, 1, 12, 5)),
        ("cron(10-20/5 0 * * ? *)", utc(2026, 1, 1, 0, 16), utc(2026, 1, 1, 0, 20)),
        # Month names and numbers.
        ("cron(30 6 1 JAN,JUL ? *)", utc(2026, 2, 1), utc(2026, 7, 1, 6, 30)),
        ("cron(0 0 1 12 ? *)", utc(2026, 12, 1, 0, 0), utc(2027, 12, 1, 0, 0)),
        # L: the last day of the month (leap and common February).
        ("cron(0 0 L * ? *)", utc(2024, 2, 10), utc(2024, 2, 29)),
        ("cron(0 0 L * ? *)", utc(2023, 2, 10), utc(2023, 2, 28)),
        ("cron(0 0 L * ? *)", utc(2026, 4, 30, 0, 0), utc(2026, 5, 31)),
        # nL: the last Friday (6) of the month; L alone in day-of-week is Saturday.
        ("cron(0 0 ? * 6L *)", utc(2026, 1, 1), utc(2026, 1, 30)),
        ("cron(0 0 ? * FRIL *)", utc(2026, 1, 31), utc(2026, 2, 27)),
        ("cron(0 0 ? * L *)", utc(2026, 1, 1), utc(2026, 1, 3)),
        # n#k: the second Tuesday (3#2), the first Monday, a fifth Thursday.
        ("cron(0 0 ? * 3#2 *)", utc(2026, 1, 1), utc(2026, 1, 13)),
        ("cron(0 8 ? * MON#1 *)", utc(2026, 1, 6), utc(2026, 2, 2, 8, 0)),
        ("cron(0 0 ? * 5#5 *)", utc(2026, 1, 1), utc(2026, 1, 29)),
        ("cron(0 0 ? * 5#5 *)", utc(2026, 1, 30), utc(2026, 4, 30)),  # Feb and Mar have four
        # nW: nearest weekday within the month.
        ("cron(0 0 17W * ? *)", utc(2026, 1, 1), utc(2026, 1, 16)),  # Sat 17th -> Fri 16th
        ("cron(0 0 15W * ? *)", utc(2026, 2, 1), utc(2026, 2, 16)),  # Sun 15th -> Mon 16th
        ("cron(0 9 1W * ? *)", utc(2026, 7, 5), utc(2026, 8, 3, 9, 0)),  # Sat 1st -> Mon 3rd
        ("cron(0 0 31W * ? *)", utc(2026, 5, 1), utc(2026, 5, 29)),  # Sun 31st -> Fri 29th
        ("cron(0 0 14W * ? *)", utc(2026, 1, 1), utc(2026, 1, 14)),  # already a weekday
        # LW: the last weekday of the month (Jan 31 2026 is a Saturday).
        ("cron(0 0 LW * ? *)", utc(2026, 1, 1), utc(2026, 1, 30)),
        # Year field; a schedule that has ended.
        ("cron(0 0 1 1 ? 2027)", utc(2026, 6, 1), utc(2027, 1, 1)),
        ("cron(0 0 1 1 ? 2027)", utc(2027, 1, 1), None),
        ("cron(0 0 30 FEB ? *)", utc(2026, 1, 1), None),
    ],
)
def test_next_fire(expression: str, after: datetime, expected: datetime | None) -> None:
    assert cron.next_fire(expression, after) == expected


def test_lowercase_names_and_spacing_are_accepted() -> None:
    assert cron.next_fire("cron(0  3 ? *  sun *)", utc(2026, 1, 1)) == utc(2026, 1, 4, 3, 0)


def test_next_fire_converts_other_timezones_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    # 2026-01-04 03:30 CET is 02:30 UTC, before the 03:00 UTC firing.
    assert cron.next_fire("cron(0 3 ? * SUN *)", datetime(2026, 1, 4, 3, 30, tzinfo=cet)) == utc(2026, 1, 4, 3, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        cron.next_fire("cron(0 3 ? * SUN *)", datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("expression", "created", "after", "expected"),
    [
        ("rate(5 minutes)", utc(2026, 1, 1, 12, 0), utc(2026, 1, 1, 12, 7), utc(2026, 1, 1, 12, 10)),
        ("rate(5 minutes)", utc(2026, 1, 1, 12, 0), utc(2026, 1, 1, 12, 10), utc(2026, 1, 1, 12, 15)),
        ("rate(1 minute)", utc(2026, 1, 1, 12, 0, 30), utc(2026, 1, 1, 12, 0, 30), utc(2026, 1, 1, 12, 1, 30)),
        ("rate(1 hour)", utc(2026, 1, 1, 12, 20), utc(2026, 1, 1, 15, 0), utc(2026, 1, 1, 15, 20)),
        ("rate(2 days)", utc(2026, 1, 1, 9, 0), utc(2026, 1, 2), utc(2026, 1, 3, 9, 0)),
        ("rate(1 day)", utc(2026, 1, 1, 9, 0), utc(2025, 12, 1), utc(2026, 1, 2, 9, 0)),  # before creation
    ],
)
def test_rates_count_from_creation(expression: str, created: datetime, after: datetime, expected: datetime) -> None:
    assert cron.next_fire(expression, after, created) == expected


def test_fire_times_window_is_start_exclusive_end_inclusive() -> None:
    sunday = utc(2026, 1, 4, 3, 0)
    assert cron.fire_times("cron(0 3 ? * SUN *)", sunday, sunday + timedelta(days=7)) == [utc(2026, 1, 11, 3, 0)]
    assert cron.fire_times("cron(0 3 ? * SUN *)", utc(2026, 1, 1), utc(2026, 1, 15)) == [
        utc(2026, 1, 4, 3, 0), utc(2026, 1, 11, 3, 0)]


def test_fire_times_skip_firings_before_the_rule_existed() -> None:
    times = cron.fire_times("cron(0 3 ? * SUN *)", utc(2026, 1, 1), utc(2026, 1, 15), created_at=utc(2026, 1, 5))
    assert times == [utc(2026, 1, 11, 3, 0)]


def test_rate_fire_times_in_a_window() -> None:
    created = utc(2026, 1, 1, 12, 0)
    hourly = cron.fire_times("rate(5 minutes)", created, created + timedelta(hours=1), created)
    assert len(hourly) == 12
    assert hourly[0] == utc(2026, 1, 1, 12, 5) and hourly[-1] == utc(2026, 1, 1, 13, 0)
    later = cron.fire_times("rate(5 minutes)", created, created + timedelta(hours=1), utc(2026, 1, 1, 12, 3))
    assert later[0] == utc(2026, 1, 1, 12, 8) and later[-1] == utc(2026, 1, 1, 12, 58) and len(later) == 11


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("cron(0 3 * * SUN *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 3 ? * SUN)", "cron needs 6 fields"),
        ("cron(60 3 ? * SUN *)", "minutes value 60 is outside 0-59"),
        ("cron(0 24 ? * SUN *)", "hours value 24 is outside 0-23"),
        ("cron(0 3 ? * 0 *)", "day-of-week value 0 is outside 1-7"),
        ("cron(0 3 ? * SUNDAY *)", "'SUNDAY' is not a valid day-of-week value"),
        ("cron(0 3 32 * ? *)", "day-of-month value 32 is outside 1-31"),
        ("cron(0 3 ? 13 MON *)", "month value 13 is outside 1-12"),
        ("cron(0 3 ? * MON 1969)", "year value 1969 is outside 1970-2199"),
        ("cron(0 5-2 ? * MON *)", "range '5-2' in the hours field runs backwards"),
        ("cron(0/0 3 ? * MON *)", "step '0' in the minutes field must be a positive number"),
        ("cron(? 3 1 * ? *)", "'?' is only allowed in day-of-month or day-of-week"),
        ("cron(? 3 1 * MON *)", "exactly one of day-of-month"),
        ("cron(? 3 ? * MON *)", "'?' is only allowed in day-of-month or day-of-week"),
        ("cron(0 3 ? * 3#6 *)", "week number after # value 6 is outside 1-5"),
        ("cron(0 3 ? * 6L,2 *)", "'6L' is not a valid day-of-week value"),
        ("cron(0 3 L,15 * ? *)", "'L' is not a valid day-of-month value"),
        ("cron(0 3 1,,2 * ? *)", "empty item in the day-of-month field"),
        ("rate(1 minutes)", "use 'minute' for a value of 1"),
        ("rate(5 minute)", "use 'minute' for a value of 1 and 'minutes' otherwise"),
        ("rate(0 minutes)", "must be a positive whole number"),
        ("rate(2 weeks)", "unknown rate unit 'weeks'"),
        ("rate(five minutes)", "rate needs a value and a unit"),
        ("every 5 minutes", "expected cron(...) or rate(...)"),
    ],
)
def test_bad_expressions_name_the_expression_and_the_problem(expression: str, problem: str) -> None:
    with pytest.raises(LocalCloudError) as err:
        cron.parse(expression)
    message = str(err.value)
    assert expression in message and problem in message
    assert "\n" not in message


def test_aws_weekday_numbering() -> None:
    # 2026-01-04 is a Sunday.
    assert [cron.aws_weekday(utc(2026, 1, 4 + i).date()) for i in range(7)] == [1, 2, 3, 4, 5, 6, 7]


@settings(max_examples=200, deadline=None)
@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    weekday=st.integers(1, 7),
    after=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2190, 1, 1),
                       timezones=st.just(timezone.utc)),
)
def test_weekly_firings_are_the_next_matching_minute(minute: int, hour: int, weekday: int, after: datetime) -> None:
    fired = cron.next_fire(f"cron({minute} {hour} ? * {weekday} *)", after)
    assert fired is not None
    assert fired > after and fired - after <= timedelta(days=7)
    assert (fired.minute, fired.hour, cron.aws_weekday(fired.date()), fired.second) == (minute, hour, weekday, 0)
    # Nothing in between: one week earlier is not after ``after``.
    assert fired - timedelta(days=7) <= after
