"""Arrival processes: when clients submit transactions."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["poisson_arrival_times"]

_CHUNK = 1024  # draws taken from the generator at once; the sequence is the same as one by one


def poisson_arrival_times(rate_tps: float, rng: np.random.Generator, start_s: float = 0.0) -> Iterator[float]:
    """Arrival times of a Poisson process of ``rate_tps`` per second after ``start_s``.

    Yields nothing when ``rate_tps`` is 0.
    """
    if rate_tps <= 0:
        return
    t = start_s
    scale = 1.0 / rate_tps
    while True:
        for gap in rng.exponential(scale, _CHUNK):
            t += float(gap)
            yield t
