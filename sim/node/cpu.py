"""A node's CPU: a FIFO server with identical cores, computed in closed form.

Equivalent to a ``simpy.Resource(capacity=cores)`` served in request order
(each job takes the earliest free core), but it costs no SimPy events: a job's
completion time is known the moment it is requested, so the caller schedules
one event for what happens next (or none at all). ``tests/test_cpu.py`` checks
the equivalence against ``simpy.Resource``.
"""

from __future__ import annotations

import heapq

__all__ = ["Cpu"]


class Cpu:
    """FIFO multi-core CPU.

    Args:
        cores: number of identical cores (>= 1).
    """

    def __init__(self, cores: int = 1) -> None:
        if cores < 1:
            raise ValueError(f"cores must be >= 1, got {cores}")
        self.cores = cores
        self._free_at_s = [0.0] * cores  # min-heap of the time each core becomes free
        self.busy_s = 0.0  # total CPU seconds reserved so far
        self.jobs = 0

    def reserve(self, now_s: float, cost_s: float) -> float:
        """Queue a job of ``cost_s`` seconds requested at ``now_s``; return its completion time."""
        free = self._free_at_s
        start_s = max(now_s, free[0])
        done_s = start_s + cost_s
        if cost_s > 0:  # a zero-cost job leaves the core as it was (a later job starts no earlier)
            if self.cores == 1:
                free[0] = done_s
            else:
                heapq.heapreplace(free, done_s)
        self.busy_s += cost_s
        self.jobs += 1
        return done_s

    def idle_at(self, now_s: float) -> bool:
        """True if some core is free at ``now_s``."""
        return self._free_at_s[0] <= now_s

    def backlog_s(self, now_s: float) -> float:
        """Work still queued or running after ``now_s``, CPU seconds."""
        return sum(max(0.0, t - now_s) for t in self._free_at_s)

    def utilization(self, until_s: float) -> float:
        """Time-weighted fraction of core capacity busy over [0, until_s]."""
        if until_s <= 0:
            return 0.0
        return (self.busy_s - self.backlog_s(until_s)) / (self.cores * until_s)

    def reset(self, now_s: float) -> None:
        """Drop queued work (a crash): every core is free from ``now_s``."""
        self.busy_s -= self.backlog_s(now_s)
        self._free_at_s = [now_s] * self.cores
