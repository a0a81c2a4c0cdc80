"""Raft: when the first election timeout fires, against Ongaro's order-statistic model."""

from __future__ import annotations

import math

import numpy as np

from sim.config import parse_scenario
from sim.experiment.simulation import Simulation
from sim.validation.cases import CaseResult, case

TIMEOUT_MIN_S, TIMEOUT_MAX_S = 0.150, 0.300  # Raft paper defaults


def first_timeouts(servers: int, samples: int) -> np.ndarray:
    """Normalised time of the first election start, one per seed: (t - min) / (max - min)."""
    out = np.empty(samples)
    for seed in range(samples):
        scenario = parse_scenario(
            {
                "name": "raft-first-timeout",
                "duration_s": 1.0,
                "seed": seed,
                "network": {"nodes": servers, "topology": "full_mesh", "latency_s": 0.005},
                "protocol": {"name": "raft"},
                "workload": {"rate_tps": 0.0},
            },
            "<validation>",
        )
        world = Simulation(scenario)
        world.run_until(TIMEOUT_MAX_S + 1e-6)
        first = min(r.time_s for r in world.recorder.consensus if r.kind == "election_started")
        out[seed] = (first - TIMEOUT_MIN_S) / (TIMEOUT_MAX_S - TIMEOUT_MIN_S)
    return out


def _register(servers: int) -> None:
    @case(
        name=f"raft_first_timeout_mean_s{servers}",
        group="raft election",
        configured=f"raft, {servers} servers, timeouts uniform on [150, 300] ms, one sample per seed",
        reference="E[M_s] = 1/(s+1) of the timeout range, M_s the first of s uniform timeouts",
        source="Ongaro, Consensus: Bridging Theory and Practice, PhD thesis (2014), leader election chapter",
        tolerance_why="4 standard errors of a mean of N samples of M_s (Var M_s = s/((s+1)^2 (s+2)))",
    )
    def mean_case(quick: bool) -> CaseResult:
        n = 200 if quick else 600
        sample = first_timeouts(servers, n)
        sd = math.sqrt(servers / ((servers + 1) ** 2 * (servers + 2)))
        return CaseResult(1 / (servers + 1), float(sample.mean()), 4 * sd / math.sqrt(n), "timeout ranges")

    @case(
        name=f"raft_first_timeout_cdf_s{servers}",
        group="raft election",
        configured=f"raft, {servers} servers, timeouts uniform on [150, 300] ms",
        reference="P(M_s <= t) = 1 - (1 - t)^s: Kolmogorov-Smirnov distance to it is 0",
        source="Ongaro, PhD thesis (2014), leader election chapter",
        tolerance_why="KS critical distance 1.95/sqrt(N) (significance 0.001)",
    )
    def cdf_case(quick: bool) -> CaseResult:
        n = 200 if quick else 600
        sample = np.sort(first_timeouts(servers, n))
        model = 1 - (1 - np.clip(sample, 0, 1)) ** servers
        ecdf_hi = np.arange(1, n + 1) / n
        ecdf_lo = np.arange(0, n) / n
        distance = float(max(np.max(ecdf_hi - model), np.max(model - ecdf_lo)))
        return CaseResult(0.0, distance, 1.95 / math.sqrt(n), "KS distance")


for _s in (3, 5, 9):
    _register(_s)
