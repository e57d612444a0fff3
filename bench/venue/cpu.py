"""CPU accounting for a run: the venue process's (all threads) and the whole machine's, from /proc."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int | list[int]) -> float:
    """User + system CPU seconds of a process (all its threads), or of several, so far."""
    if isinstance(pid, list):
        return sum(process_seconds(p) for p in pid)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return total - idle, total


@dataclass
class CpuWindow:
    """Start with ``CpuWindow.start(pid)``, end with ``.stop()``: cores used by the venue and by the machine."""

    pid: int | list[int]
    t0: float
    proc0: float
    busy0: int
    total0: int
    venue_cores: float = 0.0
    machine_cores: float = 0.0
    client_cores: float = float("nan")
    seconds: float = 0.0

    @classmethod
    def start(cls, pid: int | list[int]) -> CpuWindow:
        busy, total = machine_ticks()
        return cls(pid, time.monotonic(), process_seconds(pid), busy, total)

    def stop(self, client_seconds: float | None = None) -> CpuWindow:
        """End the window; ``client_seconds``: CPU seconds the load generator says it used in it."""
        self.seconds = time.monotonic() - self.t0
        if client_seconds is not None:
            self.client_cores = client_seconds / self.seconds
        busy, total = machine_ticks()
        self.venue_cores = (process_seconds(self.pid) - self.proc0) / self.seconds
        ncpu = os.cpu_count() or 1
        self.machine_cores = ncpu * (busy - self.busy0) / max(1, total - self.total0)
        return self

    @property
    def other_cores(self) -> float:
        return self.machine_cores - self.venue_cores - self.client_cores

    def as_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds, "venue_cores": self.venue_cores, "client_cores": self.client_cores,
                "machine_cores": self.machine_cores, "other_cores": self.other_cores}

    def text(self) -> str:
        client = "" if self.client_cores != self.client_cores else (
            f", load generator {self.client_cores:.2f}, everything else {max(0.0, self.other_cores):.2f}")
        return (f"CPU over {self.seconds:.0f} s: venue process {self.venue_cores:.2f} cores{client}; "
                f"whole machine {self.machine_cores:.2f} of {os.cpu_count()} cores busy")
