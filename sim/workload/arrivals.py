"""Arrival processes: when clients submit.

Each process is an iterator of increasing arrival times (seconds) drawn from one
random stream, so the same seed gives the same times whatever else happens:

- :func:`poisson_arrival_times`: homogeneous Poisson;
- :func:`diurnal_arrival_times`: non-homogeneous Poisson whose rate follows 24
  hourly multipliers (Lewis-Shedler thinning);
- :func:`mmpp_arrival_times`: a two-state Markov-modulated Poisson process
  (calm and burst states with exponential sojourns), for bursty load;
- :func:`trace_arrival_times`: the times of a replayed trace, exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["diurnal_arrival_times", "mmpp_arrival_times", "mmpp_mean_rate", "poisson_arrival_times", "trace_arrival_times"]

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


def diurnal_arrival_times(
    mean_rate_tps: float,
    multipliers: Sequence[float],
    day_s: float,
    rng: np.random.Generator,
    start_hour: float = 0.0,
) -> Iterator[float]:
    """Poisson arrivals whose rate in hour ``k`` of the day is ``mean_rate_tps * m[k] / mean(m)``.

    Args:
        mean_rate_tps: the rate averaged over a day.
        multipliers: 24 hourly multipliers (normalized here to mean 1).
        day_s: length of a simulated day, seconds (86400 for real time).
        rng: the arrivals stream.
        start_hour: hour of day at time 0.
    """
    m = np.asarray(multipliers, dtype=float)
    m = m / m.mean()
    peak = float(m.max()) * mean_rate_tps
    if peak <= 0:
        return
    hour_s = day_s / 24.0
    offset_s = start_hour * hour_s
    for t in poisson_arrival_times(peak, rng):
        hour = int(((t + offset_s) % day_s) // hour_s) % 24
        if rng.random() * peak < mean_rate_tps * m[hour]:
            yield t


def mmpp_mean_rate(rate_tps: float, burst_factor: float, burst_mean_s: float, calm_mean_s: float) -> float:
    """Long-run mean rate of :func:`mmpp_arrival_times`."""
    return rate_tps * (calm_mean_s + burst_factor * burst_mean_s) / (calm_mean_s + burst_mean_s)


def mmpp_arrival_times(
    rate_tps: float, burst_factor: float, burst_mean_s: float, calm_mean_s: float, rng: np.random.Generator
) -> Iterator[float]:
    """Two-state MMPP: rate ``rate_tps`` while calm, ``rate_tps * burst_factor`` in a burst.

    Sojourns are exponential with means ``calm_mean_s`` and ``burst_mean_s``; the
    process starts calm. Within a sojourn arrivals are Poisson (memoryless, so
    restarting the Poisson clock at each switch is exact).
    """
    if rate_tps <= 0:
        return
    t = 0.0
    burst = False
    while True:
        sojourn = float(rng.exponential(burst_mean_s if burst else calm_mean_s))
        rate = rate_tps * (burst_factor if burst else 1.0)
        end = t + sojourn
        arrival = t + float(rng.exponential(1.0 / rate))
        while arrival < end:
            yield arrival
            arrival += float(rng.exponential(1.0 / rate))
        t = end
        burst = not burst


def trace_arrival_times(times_s: Sequence[float]) -> Iterator[float]:
    """The arrival times of a trace, unchanged."""
    yield from (float(t) for t in times_s)
