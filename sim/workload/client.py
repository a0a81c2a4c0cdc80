"""Clients: open loop (arrivals regardless of answers) and closed loop (one request at a time).

Both only decide *when* and *what type* a request is and, when bound to a node,
*from where*; :class:`sim.workload.workload.Workload` builds the call, submits
attempts, applies timeouts and retries, and reports when a request is done.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import simpy

if TYPE_CHECKING:
    from sim.workload.generator import Request
    from sim.workload.workload import Workload

__all__ = ["ClosedLoopClient", "OpenLoopClient", "TraceClient", "TypePicker"]


class TypePicker:
    """Draws transaction types from a weighted mix.

    Args:
        mix: type -> weight (weights need not sum to 1).
        rng: the stream to draw from.
    """

    def __init__(self, mix: dict[str, float], rng: np.random.Generator) -> None:
        self.names = sorted(name for name, weight in mix.items() if weight > 0)
        weights = np.array([mix[n] for n in self.names], dtype=float)
        self._cum = np.cumsum(weights / weights.sum())
        self._rng = rng

    def pick(self) -> str:
        if len(self.names) == 1:
            return self.names[0]
        index = int(np.searchsorted(self._cum, self._rng.random(), side="right"))
        return self.names[min(index, len(self.names) - 1)]


class OpenLoopClient:
    """Submits one request per arrival, whatever happened to earlier ones.

    Args:
        env: the simulation environment.
        workload: issues the requests.
        arrivals: increasing arrival times, seconds.
        picker: draws each arrival's type.
        origin: the node this client is bound to (None: the workload picks a sender per request).
    """

    def __init__(
        self, env: simpy.Environment, workload: Workload, arrivals: Iterator[float], picker: TypePicker, origin: int | None = None
    ) -> None:
        self.env = env
        self._workload = workload
        self._arrivals = arrivals
        self._picker = picker
        self._origin = origin
        env.process(self._run())

    def _run(self):  # type: ignore[no-untyped-def]
        for t in self._arrivals:
            yield self.env.timeout(t - self.env.now)
            self._workload.issue(self._picker.pick(), self._origin)


class TraceClient:
    """Replays trace rows ``(time_s, type, origin or -1, size_bytes or 0)`` at their exact times."""

    def __init__(self, env: simpy.Environment, workload: Workload, rows: Sequence[tuple[float, str, int, int]]) -> None:
        self.env = env
        self._workload = workload
        self._rows = rows
        env.process(self._run())

    def _run(self):  # type: ignore[no-untyped-def]
        for time_s, kind, origin, size in self._rows:
            if time_s > self.env.now:
                yield self.env.timeout(time_s - self.env.now)
            self._workload.issue(kind, None if origin < 0 else origin, size_bytes=size)


class ClosedLoopClient:
    """One user at a node: submit, wait until the request is done (or fails), think, repeat.

    Think times are exponential with mean ``think_s``; the first request starts after
    one think time, so clients do not all start at once.

    Args:
        env: the simulation environment.
        workload: issues the requests and calls back when each is done.
        origin: this client's node.
        picker: draws each request's type (only types the node can send).
        think_s: mean think time, seconds.
        rng: the ``"workload/think"`` stream.
    """

    def __init__(
        self, env: simpy.Environment, workload: Workload, origin: int, picker: TypePicker, think_s: float, rng: np.random.Generator
    ) -> None:
        self.env = env
        self._workload = workload
        self.origin = origin
        self._picker = picker
        self._think_s = think_s
        self._rng = rng
        self.completed = 0
        self._schedule_next()

    def _think(self) -> float:
        return float(self._rng.exponential(self._think_s)) if self._think_s > 0 else 0.0

    def _schedule_next(self) -> None:
        event = self.env.timeout(self._think())
        event.callbacks.append(lambda _e: self._issue())

    def _issue(self) -> None:
        request = self._workload.issue(self._picker.pick(), self.origin, on_done=self._done)
        if request is None:  # nothing this client can send right now: think again
            self._schedule_next()

    def _done(self, request: Request) -> None:
        self.completed += 1
        self._schedule_next()
