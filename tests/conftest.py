"""Shared fixtures: small scenarios that run in well under a second."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.config import Scenario, parse_scenario
from sim.experiment.result import RunResult, collect
from sim.experiment.simulation import Simulation


def small_scenario(**overrides: Any) -> Scenario:
    """A 4-node full-mesh scenario; keyword overrides use dotted keys with '__' for '.'."""
    raw: dict[str, Any] = {
        "name": "small",
        "duration_s": 10.0,
        "warmup_s": 1.0,
        "seed": 7,
        "network": {"nodes": 4, "topology": "full_mesh", "latency_s": 0.01},
        "protocol": {"name": "raft", "max_block_tx": 50, "batch_timeout_s": 0.05},
        "workload": {"rate_tps": 50.0},
    }
    return parse_scenario(with_overrides(raw, overrides), "<test>")


def with_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply keyword overrides to a raw scenario dict in place ('__' separates tables)."""
    for key, value in overrides.items():
        table = raw
        parts = key.split("__")
        for part in parts[:-1]:
            table = table.setdefault(part, {})
        table[parts[-1]] = value
    return raw


#: four cities with unequal delays, so the order statistics of phase mode matter
MODE_CITIES = ["Dallas", "Toronto", "London", "Tokyo"]
#: no CPU cost: phase mode is exact against message mode
ZERO_COST_NODE = {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30, "execute_scale": 0.0}


def exact_scenario(protocol: str, latency_s: float, **overrides: Any) -> Scenario:
    """:func:`small_scenario` with one fixed one-way delay ``latency_s``, unlimited bandwidth and
    free CPU, running ``protocol``: every protocol time is a sum of known delays and timeouts."""
    free = {f"node__{key}": value for key, value in ZERO_COST_NODE.items()}
    keys = {"protocol__name": protocol, "network__latency_s": latency_s, "network__bandwidth_bps": 1e30, **free}
    return small_scenario(**{**keys, **overrides})


def run_with_crashes(scenario: Scenario, until_s: float, crashes: dict[float, list[int]] | None = None) -> RunResult:
    """Run ``scenario`` to ``until_s``, crashing the listed nodes at each time in ``crashes``."""
    world = Simulation(scenario)
    for at_s, ids in sorted((crashes or {}).items()):
        world.run_until(at_s)
        for i in ids:
            world.nodes[i].crash()
    world.run_until(until_s)
    return collect(world, wall_time_s=0.0)


def modes_scenario(mode: str, n: int, protocol: dict[str, Any], **overrides: Any) -> Scenario:
    """The regional, zero-CPU-cost scenario the message-vs-phase mode tests compare
    (``overrides`` set ``duration_s``, ``workload__rate_tps`` and anything else)."""
    raw: dict[str, Any] = {
        "name": f"{protocol['name']}_modes",
        "seed": 21,
        "network": {"nodes": n, "topology": "regional", "cities": MODE_CITIES, "mode": mode},
        "node": dict(ZERO_COST_NODE),
        "protocol": dict(protocol),
        "workload": {},
    }
    return parse_scenario(with_overrides(raw, overrides), "<test>")


@pytest.fixture
def small() -> Scenario:
    return small_scenario()


def assert_same_commits(message: Any, phase: Any) -> None:
    """Message and phase mode committed every transaction at the same times, and counted the
    same messages and bytes per node and type (for runs in which every phase has finished)."""
    import numpy as np

    a, b = message.transactions, phase.transactions
    assert (a["outcome"] == "committed").all() and (b["outcome"] == "committed").all()
    np.testing.assert_allclose(b["commit_s"], a["commit_s"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(b["decided_s"], a["decided_s"], rtol=0, atol=1e-9)
    counts = [r.messages.set_index(["node_id", "msg_type"]).sort_index() for r in (message, phase)]
    assert counts[0].equals(counts[1])


def jitter_latencies(scenario: Any, mode: str) -> Any:
    """Latencies of 7 nodes on a 10 ms full mesh with 10 ms jitter, one block per transaction
    at 10 tps for 40 s (~400 nearly independent samples): the KS comparisons of the modes."""
    import sim

    s = scenario(
        mode, 7, duration_s=40.0, network__topology="full_mesh", network__cities=None, network__latency_s=0.01,
        network__jitter_s=0.01, protocol__batch_timeout_s=0.0, protocol__max_block_tx=1, workload__rate_tps=10.0,
    )  # fmt: skip
    return sim.run(s).transactions["latency_s"].dropna().to_numpy()


def signatures_per_node(scenario: Scenario, n: int, requests: int, until_s: float, sign_s: float = 1e-4) -> list[float]:
    """Signatures each node made: its CPU seconds over ``sign_s`` in ``scenario`` (where signing
    is the only CPU cost), with ``requests`` claims injected at random times in [0.5, 5.5] s."""
    from tests.test_pbft import inject

    world = Simulation(scenario)
    draw = np.random.default_rng(5)
    for at_s in np.sort(draw.uniform(0.5, 5.5, requests)):
        inject(world, float(at_s), origin=int(draw.integers(n)))
    world.run_until(until_s)
    return [round(node.cpu.busy_s / sign_s, 6) for node in world.nodes]

