"""The models behind individual validation cases (the cases themselves run in test_validation.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.config import parse_scenario
from sim.experiment.simulation import Simulation
from sim.validation import CASES, run_validation
from sim.validation.pow_propagation import NODES, fork_model, propagation_delays
from sim.validation.pow_propagation import UPLINK_BPS as UPLINK_BPS_POW
from sim.validation.pow_stale import stale_theory
from sim.validation.published import leader_crash_downtime
from sim.validation.raft_split_vote import (
    RANGE_S,
    TIMEOUT_MIN_S,
    no_split_theory,
    term1_candidates,
)
from sim.validation.tendermint_thesis import UPLINK_BPS, block_latency


@pytest.mark.parametrize(("servers", "latency"), [(3, 0.2), (5, 0.1), (9, 0.05), (5, 0.5)])
def test_no_split_formula_matches_a_monte_carlo_of_uniform_timeouts(servers: int, latency: float) -> None:
    draws = np.sort(np.random.default_rng(servers).uniform(size=(200_000, servers)), axis=1)
    measured = float(np.mean(draws[:, 1] - draws[:, 0] > latency))
    expected = no_split_theory(servers, latency)
    assert abs(measured - expected) < 4 * math.sqrt(expected * (1 - expected) / len(draws))


def test_a_second_candidate_appears_exactly_when_two_timeouts_are_within_one_delay() -> None:
    servers, latency = 5, 0.1
    splits = 0
    for seed in range(40):
        scenario = parse_scenario(
            {
                "name": "draws",
                "duration_s": 1.0,
                "seed": seed,
                "network": {"nodes": servers, "topology": "full_mesh"},
                "protocol": {"name": "raft"},
                "workload": {"rate_tps": 0.0},
            }
        )
        world = Simulation(scenario)
        world.run_until(1e-9)  # every node has drawn its first timeout (same streams as the case's runs)
        timeouts = np.sort([(node.protocol.election_timeout_s - TIMEOUT_MIN_S) / RANGE_S for node in world.nodes])
        split = bool(timeouts[1] - timeouts[0] < latency)
        candidates = term1_candidates(servers, latency, seed)
        assert (candidates >= 2) == split, (seed, timeouts, candidates)
        assert candidates == 1 + int(np.sum(timeouts[1:] - timeouts[0] < latency))  # every early server stands
        splits += split
    assert 5 < splits < 35  # both outcomes occur


def test_stale_theory_tends_to_the_textbook_formula() -> None:
    assert stale_theory(0.0, 10.0, 10) == 0.0
    assert stale_theory(2.0, 10.0, 10) == pytest.approx(1 - math.exp(-0.18))
    assert stale_theory(2.0, 10.0, 10**9) == pytest.approx(1 - math.exp(-0.2))


def test_randomized_timeouts_elect_where_equal_ones_never_do() -> None:
    # the no-randomness case's measure is not vacuous: the same setup with 150-300 ms
    # timeouts elects a new leader in every trial, well within a second
    for k in range(5):
        downtime = leader_crash_downtime(k, (k + 0.5) / 5, 0.150, 0.300, 0.0075, jitter_s=0.001, settle=True, horizon_s=10.0)
        assert 0.150 - 0.075 < downtime < 1.0
    assert leader_crash_downtime(0, 0.5, 0.150, 0.150, 0.0075, jitter_s=0.001, fast_node_0=True, settle=True, horizon_s=10.0) == math.inf


def test_new_cases_are_registered_with_their_groups() -> None:
    run_validation(names=[])  # loads every case module
    groups = {c.group for c in CASES.values()}
    assert {"hotstuff messages", "tendermint latency", "proof of work", "raft election", "published"} <= groups
    names = ("hotstuff_votes_per_view_n16", "tendermint_decision_3d_n4", "tendermint_decision_3d_n4_phase", "pow_stale_rate_d0.2T", "raft_no_split_s5_l0.1")
    assert all(name in CASES for name in (*names, "raft_paper_no_randomness_no_leader_10s", "raft_paper_leader_crash_mean_s5"))


def test_tendermint_thesis_latency_does_not_depend_on_how_transactions_are_grouped() -> None:
    # the case carries 250-byte transactions as 64 KB aggregates; finer groups give the same latency
    coarse = block_latency(4, 2048, 4)
    fine = block_latency(4, 2048, 4, part_tx=32)
    assert math.isfinite(coarse) and coarse == pytest.approx(fine, rel=0.02)


def test_tendermint_thesis_latency_grows_with_the_uplink_time_of_the_block() -> None:
    # the proposer's uplink sends the block to each validator in turn: 20 MB/s is what limits it
    small, large = block_latency(8, 512, 4), block_latency(8, 8192, 4)
    extra_bytes = (8192 - 512) * 250
    assert large - small > 4 * extra_bytes * 8 / UPLINK_BPS  # at least the copies a +2/3 quorum waits for


def test_tendermint_thesis_shape_counts_broken_relations(monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.validation.tendermint_thesis as thesis

    monkeypatch.setattr(thesis, "block_latency", lambda n, b, heights: 1.0)  # flat latency: nothing grows
    # 2 x 3 grid: 2 x 2 block steps + 3 N steps not growing, 2 x 2 gains of 4 > 1 hold, 2 gains not diminishing
    assert thesis.shape_violations((4, 8), (512, 2048, 8192), 2) == 4 + 3 + 2
    monkeypatch.setattr(thesis, "block_latency", lambda n, b, heights: n * (0.1 + b / 4096))
    assert thesis.shape_violations((4, 8), (512, 2048, 8192), 2) == 0


def test_pow_decker_calibration_gives_the_papers_median_and_reacts_to_its_parameter() -> None:
    delays = propagation_delays(100)
    assert len(delays) > 50 * (NODES - 1) and delays.min() > 0  # every node but the miner, per block found
    assert float(np.median(delays)) == pytest.approx(6.5, abs=0.2)  # the one calibrated parameter
    faster = propagation_delays(100, bandwidth_bps=2 * UPLINK_BPS_POW)
    assert float(np.median(faster)) < 0.6 * float(np.median(delays))  # the hand-over time dominates the delay


def test_fork_model_is_the_papers_formula() -> None:
    assert fork_model(0.0) == 0.0
    assert fork_model(12.6) == pytest.approx(1 - (599 / 600) ** 12.6)
    assert fork_model(6.5) == pytest.approx(1 - math.exp(-6.5 / 600), rel=2e-3)
