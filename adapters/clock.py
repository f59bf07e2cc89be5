"""The system clock, in the unit of every stored time (int µs since the Unix epoch, UTC)."""
from __future__ import annotations

import time


def system_clock() -> int:
    return time.time_ns() // 1_000
