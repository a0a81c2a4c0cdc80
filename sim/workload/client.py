"""Open-loop clients: submit transactions to their origin nodes at arrival times."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import simpy

from sim.workload.transaction import Transaction
from sim.workload.types import TX_TYPES

__all__ = ["OpenLoopClient"]


class OpenLoopClient:
    """Submits one transaction per arrival, whatever happened to earlier ones.

    Args:
        env: the simulation environment.
        arrivals: increasing arrival times, seconds.
        mix: transaction type -> weight.
        origins: node ids that submit; each arrival picks one uniformly.
        rng: the ``"workload"`` stream (type and origin draws).
        execute_scale: multiplier on each type's CPU cost.
        submit: ``submit(tx)`` hands a transaction to its origin node.
        next_id: returns the next transaction id of the simulation.
    """

    def __init__(
        self,
        env: simpy.Environment,
        arrivals: Iterator[float],
        mix: dict[str, float],
        origins: Sequence[int],
        rng: np.random.Generator,
        submit: Callable[[Transaction], None],
        next_id: Callable[[], int],
    ) -> None:
        self.env = env
        self._arrivals = arrivals
        names = sorted(mix)
        weights = np.array([mix[n] for n in names], dtype=float)
        self._types = [TX_TYPES[n] for n in names]
        self._cum = np.cumsum(weights / weights.sum())
        self._origins = list(origins)
        self._rng = rng
        self._submit = submit
        self._next_id = next_id
        env.process(self._run())

    def _pick_type(self) -> int:
        if len(self._types) == 1:
            return 0
        return int(np.searchsorted(self._cum, self._rng.random(), side="right").clip(0, len(self._types) - 1))

    def _run(self):  # type: ignore[no-untyped-def]
        for t in self._arrivals:
            yield self.env.timeout(t - self.env.now)
            kind = self._types[self._pick_type()]
            origin = self._origins[int(self._rng.integers(len(self._origins)))]
            tx = Transaction(
                tx_id=self._next_id(),
                tx_type=kind.name,
                origin=origin,
                submit_s=self.env.now,
                size_bytes=kind.size_bytes,
                execute_s=kind.execute_s,
            )
            self._submit(tx)
