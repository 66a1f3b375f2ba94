"""Event timestamps: parse what clients send into epoch microseconds (UTC), the one internal form.

Clients send ISO-8601 strings with an offset (``2024-05-01T12:00:00Z``,
``...+02:00``), epoch seconds (int or float), or aware datetimes. A timestamp without a
time zone is refused rather than guessed: the same wall-clock string means different
instants on a tester in Dresden and one in Austin.

>>> parse_timestamp("1970-01-01T00:00:01Z")
1000000
>>> parse_timestamp(1.5)
1500000
>>> to_datetime(1500000).isoformat()
'1970-01-01T00:00:01.500000+00:00'
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


class TimestampError(ValueError):
    """A value that is not a usable timestamp; the message says why, for the client."""


def datetime_to_micros(dt: datetime) -> int:
    """Epoch microseconds of an aware datetime (TimestampError for a naive one)."""
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise TimestampError("timestamp has no time zone; add an offset or 'Z'")
    return (dt - EPOCH) // _US


def parse_timestamp(value: Any) -> int:
    """Epoch microseconds (UTC) from an ISO-8601 string, epoch seconds or an aware datetime.

    Raises :class:`TimestampError` with a client-facing reason otherwise (bool, NaN,
    naive time, unparseable text).
    """
    if type(value) is str:  # the common case first
        try:
            return datetime_to_micros(datetime.fromisoformat(value))
        except ValueError:
            pass  # surrounding spaces, or not ISO: the general path below names the problem
    if isinstance(value, bool):
        raise TimestampError("expected a timestamp, got bool")
    if isinstance(value, int):
        return value * 1_000_000
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TimestampError("timestamp is not finite")
        return round(value * 1_000_000)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise TimestampError(f"not an ISO-8601 timestamp: {value[:40]!r}") from None
        return datetime_to_micros(dt)
    if isinstance(value, datetime):
        return datetime_to_micros(value)
    raise TimestampError(f"expected a timestamp, got {type(value).__name__}")


def as_micros(value: datetime | int) -> int:
    """A clock value (aware datetime or epoch microseconds) as epoch microseconds."""
    if isinstance(value, datetime):
        return datetime_to_micros(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an aware datetime or epoch microseconds, got {type(value).__name__}")
    return value


def to_datetime(micros: int) -> datetime:
    """The aware UTC datetime of epoch microseconds."""
    return EPOCH + timedelta(microseconds=int(micros))


def micros_of(delta: timedelta) -> int:
    """A duration in whole microseconds."""
    return delta // _US
