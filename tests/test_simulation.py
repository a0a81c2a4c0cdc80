"""World assembly plumbing: the event environment's plain calls, its counting and the run's GC setting."""

from __future__ import annotations

import gc

import pytest
import simpy

from sim.experiment.simulation import RUN_GC_THRESHOLD, CountingEnvironment, RunTimeout, Simulation
from tests.conftest import small_scenario


def test_calls_and_timeouts_share_one_order() -> None:
    """A call is ordered like a Timeout created at the same moment: by time, then creation."""
    env = CountingEnvironment()
    log: list[tuple[str, float]] = []
    env.call_later(1.0, lambda tag: log.append((tag, env.now)), "call a")
    env.timeout(1.0).callbacks.append(lambda _e: log.append(("timeout b", env.now)))
    env.call_later(1.0, lambda tag: log.append((tag, env.now)), "call c")
    env.call_later(0.5, lambda tag: log.append((tag, env.now)), "call d")
    env.timeout(0.25).callbacks.append(lambda _e: log.append(("timeout e", env.now)))
    env.run()
    assert log == [("timeout e", 0.25), ("call d", 0.5), ("call a", 1.0), ("timeout b", 1.0), ("call c", 1.0)]
    assert env.events_scheduled == 5


def test_call_time_is_now_plus_delay_as_for_a_timeout() -> None:
    """The heap time is ``now + delay`` computed as SimPy does (bit for bit)."""
    env = CountingEnvironment()
    seen: list[float] = []
    env.call_later(0.1, lambda: env.call_later(0.2, lambda: seen.append(env.now)))
    env.timeout(0.1).callbacks.append(lambda _e: env.timeout(0.2).callbacks.append(lambda _e2: seen.append(env.now)))
    env.run()
    assert seen == [0.1 + 0.2, 0.1 + 0.2] and seen[0] != 0.3  # 0.30000000000000004, not 0.3


def test_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="negative delay"):
        CountingEnvironment().call_later(-1e-9, print)


def test_run_until_stops_between_calls_and_resumes() -> None:
    env = CountingEnvironment()
    fired: list[float] = []
    for t in (1.0, 2.0, 3.0):
        env.call_later(t, lambda: fired.append(env.now))
    env.run(until=2.5)
    assert fired == [1.0, 2.0] and env.now == 2.5
    env.run(until=5.0)
    assert fired == [1.0, 2.0, 3.0]


def test_failed_simpy_event_still_raises() -> None:
    env = CountingEnvironment()
    env.event().fail(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        env.run()


def test_deadline_stops_a_run_of_plain_calls() -> None:
    """A run stuck at one instant scheduling only calls still meets the wall-clock limit."""
    env = CountingEnvironment()

    def again() -> None:
        env.call_later(0.0, again)

    env.call_later(0.0, again)
    env.deadline = 0.0  # long past
    with pytest.raises(RunTimeout, match="wall-clock limit"):
        env.run(until=1.0)
    assert env.events_scheduled == 0x10000


def test_run_raises_the_young_gc_threshold_and_restores_it() -> None:
    world = Simulation(small_scenario(duration_s=1.0, warmup_s=0.0))
    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []
    world.env.call_later(0.5, lambda: during.append(gc.get_threshold()))
    world.run_until(1.0)
    assert during == [(max(before[0], RUN_GC_THRESHOLD), *before[1:])]
    assert gc.get_threshold() == before


def test_gc_threshold_is_restored_when_a_run_fails() -> None:
    world = Simulation(small_scenario(duration_s=1.0, warmup_s=0.0))
    before = gc.get_threshold()

    def fail() -> None:
        raise RuntimeError("stop")

    world.env.call_later(0.5, fail)
    with pytest.raises(RuntimeError, match="stop"):
        world.run_until(1.0)
    assert gc.get_threshold() == before


def test_network_on_a_bare_simpy_environment_uses_timeouts() -> None:
    """Network works on a plain simpy.Environment too (its calls become Timeouts)."""
    import numpy as np

    from sim.network.network import Network

    env = simpy.Environment()
    got: list[tuple[int, int, float]] = []
    net = Network(env, np.full((2, 2), 0.5), 1e30, 0.0, 0.0, np.random.default_rng(0),
                  lambda s, d, m: got.append((s, d, env.now)), lambda *_: None)  # fmt: skip
    net.deliver_at(0, 1, object(), 2.0)  # type: ignore[arg-type]
    net.deliver_at(1, 0, object(), -1.0)  # type: ignore[arg-type]  # in the past: now
    env.run()
    assert got == [(1, 0, 0.0), (0, 1, 2.0)]
