"""How busy the rest of the machine was while a benchmark measured (Linux /proc/stat)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def machine_busy_s() -> float | None:
    """CPU seconds used so far by everything on the machine, or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class ContentionMeter:
    """How many cores other processes kept busy since it was made."""

    def __init__(self) -> None:
        self._machine = machine_busy_s()
        self._own = own_cpu_s()
        self._wall = time.perf_counter()

    def other_cores(self) -> float | None:
        machine = machine_busy_s()
        wall = time.perf_counter() - self._wall
        if machine is None or self._machine is None or wall <= 0:
            return None
        others = (machine - self._machine) - (own_cpu_s() - self._own)
        return max(0.0, others / wall)
