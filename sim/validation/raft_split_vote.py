"""Raft: how often the first election meets a second candidate, against order statistics.

Model (Ongaro, PhD thesis 2014, chapter 9 "Leader election evaluation", and the Raft
paper, section 5.2): every server draws its election timeout uniformly on [a, b]; the
first server to time out becomes a candidate and sends RequestVote, which reaches the
others one one-way delay later. A server whose own timeout fires before that request
arrives becomes a candidate in the same term and votes for itself: a split. A server
whose timeout would fire later receives the request first, grants its vote, and does not
stand (our Raft: the vote counts as hearing from a candidate, so its timer is pushed back).

What is measured: on a fresh start (every timer armed at t = 0), whether a *second*
candidate appears in term 1, i.e. more than one ``election_started`` with term 1. For
s = 3 such a split can still elect a leader in term 1 (the third server's vote makes a
majority), so we do not measure "term 1 failed" but "term 1 had two candidates".

Derivation. In units of the range R = b - a, measured from a, the timeouts are s
independent U(0, 1) draws; let M1 < M2 be the two smallest and l the one-way delay over
R (l < 1). No split iff M2 > M1 + l. The joint density of (M1, M2) is
s(s - 1)(1 - m2)^(s - 2) on 0 < m1 < m2 < 1, so

    P(M2 - M1 > l) = int_0^{1-l} dm1 int_{m1+l}^1 s(s-1)(1-m2)^(s-2) dm2
                   = int_0^{1-l} s (1 - l - m1)^(s-1) dm1 = (1 - l)^s.

(Equivalently: the s + 1 spacings of s uniforms are exchangeable, and any one of them
exceeds l with probability (1 - l)^s.) A Monte Carlo of the formula with 200,000 draws
gave 0.5124 for s = 3, l = 0.2 (formula 0.5120), 0.5887 for s = 5, l = 0.1 (0.5905),
0.6286 for s = 9, l = 0.05 (0.6302); tests/test_validation_cases.py repeats it.

Configuration: raft, timeouts 150-300 ms (the paper's), full mesh with one-way delay
l R and no jitter, no CPU cost, a bandwidth so large that serialization vanishes, no
workload; one trial per seed, run until every first timeout has fired (b).
"""

from __future__ import annotations

import math

import numpy as np

from sim.config import parse_scenario
from sim.experiment.simulation import Simulation
from sim.validation.cases import CaseResult, case

__all__ = ["no_split_theory", "term1_candidates"]

TIMEOUT_MIN_S, TIMEOUT_MAX_S = 0.150, 0.300  # Raft paper defaults
RANGE_S = TIMEOUT_MAX_S - TIMEOUT_MIN_S


def no_split_theory(servers: int, latency: float) -> float:
    """P(the second-smallest of ``servers`` uniform timeouts is more than ``latency`` ranges after the smallest)."""
    return (1.0 - latency) ** servers


def term1_candidates(servers: int, latency: float, seed: int) -> int:
    """Candidates in term 1 of a fresh start with one-way delay ``latency`` timeout ranges.

    Returns -1 if a second candidate started more than one delay after the first: the
    model says that cannot happen (the RequestVote would have reached it first).
    """
    scenario = parse_scenario(
        {
            "name": "raft-split-vote",
            "duration_s": 1.0,
            "seed": seed,
            "network": {"nodes": servers, "topology": "full_mesh", "latency_s": latency * RANGE_S, "bandwidth_bps": 1e15},
            "node": {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30},
            "protocol": {"name": "raft", "election_timeout_min_s": TIMEOUT_MIN_S, "election_timeout_max_s": TIMEOUT_MAX_S},
            "workload": {"rate_tps": 0.0},
        },
        "<validation>",
    )
    world = Simulation(scenario)
    world.run_until(TIMEOUT_MAX_S + 1e-6)  # every first timeout has fired by b
    starts = sorted(r.time_s for r in world.recorder.consensus if r.kind == "election_started" and r.fields["term"] == 1)
    if starts[-1] - starts[0] > latency * RANGE_S + 1e-12:
        return -1
    return len(starts)


def _register(servers: int, latency: float) -> None:
    @case(
        name=f"raft_no_split_s{servers}_l{latency:g}",
        group="raft election",
        configured=(
            f"raft, {servers} servers, fresh start, timeouts uniform on [150, 300] ms, full mesh one-way delay "
            f"{latency:g} of the range ({latency * RANGE_S * 1e3:g} ms); 1000 seeds (quick 500)"
        ),
        reference="P(a single candidate in term 1) = P(M2 - M1 > l) = (1 - l)^s, M1 < M2 the two smallest timeouts",
        source=(
            "Ongaro, Consensus: Bridging Theory and Practice, PhD thesis (2014), ch. 9 (model); "
            "order statistics derived in sim/validation/raft_split_vote.py"
        ),
        tolerance_why="4 binomial standard errors sqrt(p(1-p)/N) over N independent seeds",
    )
    def compute(quick: bool) -> CaseResult:
        trials = 500 if quick else 1000
        counts = np.array([term1_candidates(servers, latency, seed) for seed in range(trials)])
        expected = no_split_theory(servers, latency)
        measured = float(np.mean(counts == 1)) if (counts >= 1).all() else float("nan")
        return CaseResult(expected, measured, 4 * math.sqrt(expected * (1 - expected) / trials), "P(no split)")


for _s, _l in ((3, 0.2), (5, 0.1), (9, 0.05)):
    _register(_s, _l)
