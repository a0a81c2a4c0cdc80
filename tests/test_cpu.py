"""The closed-form FIFO CPU equals simpy.Resource served in request order."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.node.cpu import Cpu


def _simpy_completions(arrivals: list[float], costs: list[float], cores: int) -> list[float]:
    env = simpy.Environment()
    cpu = simpy.Resource(env, capacity=cores)
    done = [0.0] * len(arrivals)

    def job(i: int):  # type: ignore[no-untyped-def]
        yield env.timeout(arrivals[i])
        with cpu.request() as req:
            yield req
            yield env.timeout(costs[i])
            done[i] = env.now

    for i in range(len(arrivals)):
        env.process(job(i))
    env.run()
    return done


@settings(max_examples=60, deadline=None)
@given(
    cores=st.integers(1, 4),
    gaps=st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=40),
    seed=st.integers(0, 10_000),
)
def test_matches_simpy_resource(cores: int, gaps: list[float], seed: int) -> None:
    arrivals = list(np.cumsum(gaps))
    costs = list(np.random.default_rng(seed).exponential(1.0, len(arrivals)))
    cpu = Cpu(cores)
    ours = [cpu.reserve(a, c) for a, c in zip(arrivals, costs)]
    assert ours == pytest.approx(_simpy_completions(arrivals, costs, cores), abs=1e-9)


def test_utilization_is_time_weighted() -> None:
    cpu = Cpu(2)
    cpu.reserve(0.0, 1.0)
    cpu.reserve(0.0, 3.0)  # second core busy until 3
    assert cpu.utilization(2.0) == pytest.approx((1.0 + 2.0) / (2 * 2.0))
    assert cpu.utilization(4.0) == pytest.approx(4.0 / 8.0)


def test_reset_drops_queued_work() -> None:
    cpu = Cpu(1)
    cpu.reserve(0.0, 5.0)
    cpu.reset(1.0)
    assert cpu.reserve(1.0, 1.0) == 2.0
    assert cpu.utilization(2.0) == pytest.approx(1.0)
