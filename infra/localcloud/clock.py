"""A clock that can run on virtual time.

Step Functions `Wait` states, `Retry` intervals and EventBridge schedules read and advance
this clock instead of sleeping, so a week of bake time runs in milliseconds. With
``real_time=True`` it is the wall clock and `sleep` really sleeps.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone


class VirtualClock:
    """Virtual UTC time that starts at ``start`` (default: now) and moves only when told.

    >>> clock = VirtualClock(datetime(2026, 1, 4, tzinfo=timezone.utc))
    >>> clock.sleep(90)
    >>> clock.now().isoformat()
    '2026-01-04T00:01:30+00:00'
    """

    def __init__(self, start: datetime | None = None, *, real_time: bool = False) -> None:
        start = start or datetime.now(timezone.utc)
        if start.tzinfo is None:
            raise ValueError("the clock's start time must be timezone-aware")
        self.real_time = real_time
        self._offset = 0.0
        self._start = start
        self._wall_start = time.time()
        self._lock = threading.Lock()
        self.slept = 0.0  # virtual seconds skipped by `sleep`, for reports

    def now(self) -> datetime:
        if self.real_time:
            return datetime.now(timezone.utc)
        with self._lock:
            return self._start + timedelta(seconds=self._offset)

    def time(self) -> float:
        """Seconds since the epoch, like `time.time`."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (a no-op on real time)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        if not self.real_time:
            with self._lock:
                self._offset += seconds
                self.slept += seconds

    def sleep(self, seconds: float) -> None:
        """Sleep for real on real time; otherwise advance virtual time at once."""
        if seconds <= 0:
            return
        if self.real_time:
            time.sleep(seconds)
        else:
            self.advance(seconds)
