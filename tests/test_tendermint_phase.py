"""Tendermint in phase mode gives the same answer as message mode (DESIGN.md, two modes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import ks_2samp

import sim
from sim.config import Scenario
from sim.consensus._tendermint_phase import RoundPhase
from sim.consensus.tendermint import Tendermint
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import assert_same_commits, modes_scenario
from tests.test_pbft import inject


def scenario(mode: str, n: int, **extra: Any) -> Scenario:
    protocol = {"name": "tendermint", "max_block_tx": 20}
    return modes_scenario(mode, n, protocol, **{"duration_s": 12.0, "workload__rate_tps": 10.0, **extra})


def run_injected(mode: str, n: int, **extra: Any) -> sim.RunResult:
    """60 claims at random times in [0.5, 9.5] s from random origins, all settled by 12 s."""
    world = Simulation(scenario(mode, n, network__bandwidth_bps=1e30, workload__rate_tps=0.0, **extra))
    draw = np.random.default_rng(5)
    for at_s in np.sort(draw.uniform(0.5, 9.5, 60)):
        inject(world, float(at_s), origin=int(draw.integers(n)))
    world.run_until(12.0)
    return collect(world, wall_time_s=0.0)


@pytest.mark.parametrize("n", [4, 7, 16])
def test_modes_give_identical_commit_times(n: int) -> None:
    # zero CPU cost, no jitter, serialization negligible: phase mode is exact
    message, phase = run_injected("message", n), run_injected("phase", n)
    assert_same_commits(message, phase)  # every logical message counted (all phases finished by 12 s)
    assert phase.summary["blocks"] == message.summary["blocks"] > 8
    assert {"Proposal", "Prevote", "Precommit"} <= set(phase.messages["msg_type"])
    # O(n) events per height instead of O(n^2) (transaction gossip stays messages)
    if n > 4:
        assert phase.summary["events"] < message.summary["events"] * 5 / n


def count_dissolved(monkeypatch: pytest.MonkeyPatch) -> list[RoundPhase]:
    """Record every phased round that falls back to message mode."""
    dissolved: list[RoundPhase] = []
    original = RoundPhase.dissolve

    def dissolve(self: RoundPhase) -> None:
        if not self.dissolved:
            dissolved.append(self)
        original(self)

    monkeypatch.setattr(RoundPhase, "dissolve", dissolve)
    return dissolved


def test_happy_rounds_stay_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    # the happy path really is computed in phase mode: no round falls back to messages,
    # the live round is a phase whose prevotes are being confirmed
    dissolved = count_dissolved(monkeypatch)
    world = Simulation(scenario("phase", 7, duration_s=3.0))
    world.run_until(2.4)  # height 3 proposed at 2.31 s, decided at 2.47 s
    protocol = world.nodes[0].protocol
    assert isinstance(protocol, Tendermint) and protocol.height == 3
    rounds = list(protocol.phases.values())
    assert len(rounds) == 1 and not rounds[0].dissolved
    assert rounds[0].prevotes.sent.any()
    world.run_until(3.0)
    assert dissolved == []


def test_a_nil_prevote_dissolves_the_round_into_message_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # validators far from the proposer time out before its proposal arrives and prevote nil:
    # those rounds fall back to message mode and give exactly message mode's answer
    dissolved = count_dissolved(monkeypatch)
    extra = {"protocol__timeout_propose_s": 0.05, "protocol__timeout_propose_delta_s": 0.5}
    message, phase = run_injected("message", 7, **extra), run_injected("phase", 7, **extra)
    a, b = message.transactions, phase.transactions
    np.testing.assert_allclose(b["commit_s"], a["commit_s"], rtol=0, atol=1e-9)
    assert phase.summary["safety_violations"] == 0
    counts = [r.messages.set_index(["node_id", "msg_type"]).sort_index() for r in (message, phase)]
    assert counts[0].equals(counts[1])
    assert len(dissolved) > 0


def test_latency_distributions_agree_with_jitter() -> None:
    # Jitter is drawn in another order in phase mode, so sample paths differ but the
    # distribution of a block's consensus latency (proposal to decision, three jittered
    # delays) must not. Under the null hypothesis the KS p-value is uniform, so p > 0.01
    # fails 1% of seeds by chance (the seed is fixed: the test is deterministic); the same
    # test rejects a shift of 2 ms (5% of the ~44 ms mean), see below.
    def latencies(mode: str) -> np.ndarray:
        s = scenario(
            mode, 7, duration_s=40.0, network__topology="full_mesh", network__cities=None, network__latency_s=0.01,
            network__jitter_s=0.01, protocol__timeout_commit_s=0.05, workload__rate_tps=4.0,
        )  # fmt: skip
        blocks = sim.run(s).blocks
        return (blocks["decided_s"] - blocks["created_s"]).to_numpy()

    message, phase = latencies("message"), latencies("phase")
    assert len(message) > 300 and len(phase) > 300
    assert ks_2samp(message, phase).pvalue > 0.01
    assert ks_2samp(message, phase + 0.002).pvalue < 0.01  # the test has power


def test_phase_mode_with_cpu_costs_stays_close() -> None:
    # with CPU costs a late voter shifts its column and quorum events charge an estimate
    # of the CPU (see _tendermint_phase): the mean latency agrees within 2%
    cpu = {"node__sign_s": 23e-6, "node__verify_s": 69e-6, "node__hash_rate_bps": 1.44e10, "node__execute_scale": 1.0}
    message = sim.run(scenario("message", 16, **cpu)).summary
    phase = sim.run(scenario("phase", 16, **cpu)).summary
    assert phase["latency_mean_s"] == pytest.approx(message["latency_mean_s"], rel=0.02)
    assert phase["cpu_utilization_max"] == pytest.approx(message["cpu_utilization_max"], rel=0.1)


def test_proposer_crash_in_phase_mode_progresses_in_a_later_round() -> None:
    # the proposer of height 3 crashes as soon as it has proposed: validators decide
    # that height (or, failing that, the next round's proposer's value) without it
    n = 7
    world = Simulation(scenario("phase", n, duration_s=20.0, workload__rate_tps=5.0))
    proposer = 3 % n  # (height + round) mod n at height 3, round 0

    def crash_when_proposed(_event: object) -> None:
        node = world.nodes[proposer]
        protocol = node.protocol
        assert isinstance(protocol, Tendermint)
        if protocol.height == 3 and 0 in protocol.proposals:
            node.crash()
        else:
            world.env.timeout(0.001).callbacks.append(crash_when_proposed)

    world.env.timeout(0.001).callbacks.append(crash_when_proposed)
    world.run_until(20.0)
    assert not world.nodes[proposer].up
    result = collect(world, wall_time_s=0.0)
    assert result.summary["safety_violations"] == 0, result.summary["invariant_notes"]
    assert result.summary["conservation_violations"] == 0
    heights = [node.ledger.height for node in world.nodes if node.up]
    assert min(heights) >= 8  # progress well past the crash (about one height per 1.3 s)
    rounds = result.consensus
    later = rounds[(rounds["kind"] == "round_started") & (rounds["round"] > 0)]
    assert len(later) > 0  # heights whose round-0 proposer is down needed a later round
