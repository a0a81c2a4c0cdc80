"""Arrival processes against their theory; trace replay is exact."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sim.workload.arrivals import (
    diurnal_arrival_times,
    mmpp_arrival_times,
    mmpp_mean_rate,
    poisson_arrival_times,
    trace_arrival_times,
)
from sim.workload.settings import DEFAULT_DIURNAL


def take_until(times, end_s: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.fromiter(itertools.takewhile(lambda t: t < end_s, times), dtype=float)


def test_poisson_rate_and_exponential_gaps() -> None:
    t = take_until(poisson_arrival_times(50.0, np.random.default_rng(1)), 400.0)
    gaps = np.diff(t)
    # mean gap 1/50 s; its standard error with ~20000 gaps is 1.4e-4 s: allow 4 of them
    assert gaps.mean() == pytest.approx(0.02, abs=4 * 0.02 / math.sqrt(len(gaps)))
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)  # exponential: CV = 1


def test_diurnal_hourly_counts_follow_the_multipliers() -> None:
    day_s, days, mean_rate = 24.0, 40, 400.0  # one simulated hour = 1 s
    t = take_until(diurnal_arrival_times(mean_rate, DEFAULT_DIURNAL, day_s, np.random.default_rng(2)), day_s * days)
    counts = np.bincount((t % day_s).astype(int), minlength=24)
    m = np.asarray(DEFAULT_DIURNAL) / np.mean(DEFAULT_DIURNAL)
    expected = mean_rate * m * days  # Poisson counts: standard deviation sqrt(expected)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    assert len(t) == pytest.approx(mean_rate * day_s * days, rel=0.01)


def test_diurnal_start_hour_shifts_the_profile() -> None:
    multipliers = [0.0] * 24
    multipliers[10] = 1.0  # only 10:00-11:00 has arrivals
    t = take_until(diurnal_arrival_times(10.0, multipliers, 24.0, np.random.default_rng(3), start_hour=8.0), 24.0 * 5)
    assert len(t) > 0 and np.all(np.floor(t % 24.0) == 2.0)  # hour 10 is 2 h after the start (08:00)


def test_mmpp_mean_rate_and_burstiness() -> None:
    rate, factor, burst_s, calm_s, horizon = 10.0, 5.0, 1.0, 5.0, 20_000.0
    t = take_until(mmpp_arrival_times(rate, factor, burst_s, calm_s, np.random.default_rng(4)), horizon)
    mean = mmpp_mean_rate(rate, factor, burst_s, calm_s)
    assert mean == pytest.approx(10.0 * (5.0 + 5.0) / 6.0)
    # the count's relative standard deviation is ~0.9% here (modulation dominates): allow 4%
    assert len(t) / horizon == pytest.approx(mean, rel=0.04)
    per_second = np.bincount(t.astype(int))
    assert per_second.var() / per_second.mean() > 3.0  # Poisson would give 1


def test_trace_times_are_replayed_unchanged() -> None:
    times = [0.0, 0.1, 0.1, 2.75, 1e3 / 7]
    assert list(trace_arrival_times(times)) == times


def test_zero_rate_yields_nothing() -> None:
    rng = np.random.default_rng(0)
    assert list(poisson_arrival_times(0.0, rng)) == []
    assert list(mmpp_arrival_times(0.0, 2.0, 1.0, 1.0, rng)) == []
