"""The shared protocol suite: every registered protocol must pass it.

- safety: no two honest nodes commit different blocks at one height;
- ledger integrity: every node's hash chain verifies;
- conservation: every submitted transaction ends committed, rejected, dropped
  or held somewhere (pending), never vanished;
- liveness: transactions submitted early enough commit, also with as many nodes
  crashed as the protocol says it tolerates.

A protocol that needs other settings to make progress in a short run (a long
block interval, a larger network) adds them to ``SUITE_SETTINGS``. A protocol that
supports phase mode runs the suite a second time with ``network.mode = "phase"``
(the ``*_in_phase_mode`` tests).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.consensus.base import get_protocol
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import small_scenario

#: protocol name -> extra scenario keys (dotted with "__") for the suite
SUITE_SETTINGS: dict[str, dict[str, Any]] = {
    "hotstuff": {"protocol__view_timeout_s": 0.5},  # a crashed leader costs one timeout per n views
    "tendermint": {"protocol__timeout_propose_s": 0.5} | {f"protocol__timeout_{k}_s": 0.2 for k in ("prevote", "precommit", "commit")},
    "clique": {"protocol__period_s": 0.5, "protocol__wiggle_s": 0.05, "protocol__confirmations": 2},
    "aura": {"protocol__step_s": 0.1, "protocol__confirmations": 2},
    "pow": {"protocol__block_interval_s": 0.05, "protocol__confirmations": 3, "network__latency_s": 0.001},
    # majority endorsement tolerates crashed peers; no key contention, so every transaction is valid
    "fabric": {"protocol__endorsement_policy": "majority", "workload__patients": 10**8, "workload__policies": 10**7, "workload__duplicate_claim_fraction": 0.0},
}

#: seconds before the end after which a transaction may still be in flight
SETTLE_S = 3.0

#: protocols that compute phases in bulk in phase mode: the suite runs them in both modes
PHASE_MODE = [name for name in sim.protocol_names() if get_protocol(name).supports_phase_mode]


def _scenario(name: str, mode: str = "message", **extra: Any) -> sim.Scenario:
    keys: dict[str, Any] = {"protocol__name": name, "network__mode": mode, **SUITE_SETTINGS.get(name, {}), **extra}
    return small_scenario(**keys)


def _assert_invariants(summary: dict[str, Any]) -> None:
    assert summary["safety_violations"] == 0, summary["invariant_notes"]
    assert summary["ledger_violations"] == 0, summary["invariant_notes"]
    assert summary["conservation_violations"] == 0, summary["invariant_notes"]
    total = summary["committed"] + summary["rejected"] + summary["dropped"] + summary["pending"]
    assert total == summary["submitted"]


def _assert_live(result: sim.RunResult, horizon_s: float) -> None:
    tx = result.transactions
    early = tx[tx["submit_s"] < horizon_s - SETTLE_S]
    assert len(early) > 0
    committed = (early["outcome"] == "committed").mean()
    assert committed == 1.0, f"only {committed:.1%} of early transactions committed"


@pytest.mark.parametrize("name", sim.protocol_names())
def test_safety_conservation_liveness(name: str, mode: str = "message") -> None:
    scenario = _scenario(name, mode)
    result = sim.run(scenario)
    _assert_invariants(result.summary)
    _assert_live(result, scenario.duration_s)
    assert result.summary["blocks"] > 0


@pytest.mark.parametrize("name", sim.protocol_names())
def test_liveness_with_tolerated_crashes(name: str, mode: str = "message") -> None:
    scenario = _scenario(name, mode, network__nodes=5)
    tolerated = get_protocol(name).crash_tolerance(scenario.protocol, scenario.network.nodes)
    if tolerated == 0:
        pytest.skip(f"{name} tolerates no crashed node")
    world = Simulation(scenario)
    world.run_until(2.0)
    # crash the highest-numbered nodes, which include the leader for some seeds but not all
    for node in world.nodes[-tolerated:]:
        node.crash()
    world.run_until(scenario.duration_s)
    result = collect(world, wall_time_s=0.0)
    _assert_invariants(result.summary)
    tx = result.transactions
    alive = set(range(scenario.network.nodes - tolerated))
    late = tx[(tx["submit_s"] > 4.0) & (tx["submit_s"] < scenario.duration_s - SETTLE_S) & tx["origin"].isin(alive)]
    assert len(late) > 0
    assert (late["outcome"] == "committed").all(), late["outcome"].value_counts()


@pytest.mark.parametrize("name", sim.protocol_names())
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), rate=st.floats(5, 150), loss=st.sampled_from([0.0, 0.02]))
def test_invariants_hold_for_random_runs(name: str, seed: int, rate: float, loss: float) -> None:
    _random_run(name, "message", seed, rate, loss)


def _random_run(name: str, mode: str, seed: int, rate: float, loss: float) -> None:
    scenario = _scenario(name, mode, seed=seed, workload__rate_tps=rate, network__loss_rate=loss, duration_s=6.0)
    result = sim.run(scenario)
    _assert_invariants(result.summary)


@pytest.mark.parametrize("name", PHASE_MODE)
def test_safety_conservation_liveness_in_phase_mode(name: str) -> None:
    test_safety_conservation_liveness(name, "phase")


@pytest.mark.parametrize("name", PHASE_MODE)
def test_liveness_with_tolerated_crashes_in_phase_mode(name: str) -> None:
    test_liveness_with_tolerated_crashes(name, "phase")


@pytest.mark.parametrize("name", PHASE_MODE)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), rate=st.floats(5, 150), loss=st.sampled_from([0.0, 0.02]))
def test_invariants_hold_for_random_runs_in_phase_mode(name: str, seed: int, rate: float, loss: float) -> None:
    _random_run(name, "phase", seed, rate, loss)
