"""`solo` against queueing theory.

One orderer, clients submitting only at the orderer, one transaction per block,
no signing or verification cost: each block is one FIFO job on the orderer's
CPU, so the orderer is an M/M/1 (exponential execution time) or M/D/1 (fixed)
queue and a transaction's latency is its time in system.

Tolerance: the mean of N correlated latencies has a batch-means 95% interval
(reported by the run itself as latency_mean_ci95_s). We assert the theory value
lies within 4 such half-widths (an exact-seed test, so it cannot flake), and
that the half-width itself is small, so the check is tight: below 5% of the
theory value at rho = 0.5 and 10% at rho = 0.8, where the queue's relaxation
time (which grows like 1/(1 - rho)^2) makes consecutive batches more correlated.
"""

from __future__ import annotations

import pytest

import sim
from tests.conftest import small_scenario

SERVICE_S = 0.01  # mean execution time: mu = 100 per second


def _queue_run(rate_tps: float, cpu_time: str, seed: int = 3) -> dict:
    scenario = small_scenario(
        duration_s=2000.0,
        warmup_s=100.0,
        seed=seed,
        network__nodes=1,
        protocol__name="solo",
        protocol__max_block_tx=1,
        protocol__batch_timeout_s=0.0,
        node__sign_s=0.0,
        node__verify_s=0.0,
        node__hash_rate_bps=1e30,
        node__cpu_time=cpu_time,
        node__execute_scale=SERVICE_S / 100e-6,  # claim execute_s is 100 us
        workload__rate_tps=rate_tps,
    )
    return sim.run(scenario).summary


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mm1_mean_time_in_system(rho: float) -> None:
    mu = 1.0 / SERVICE_S
    lam = rho * mu
    expected = 1.0 / (mu - lam)
    s = _queue_run(lam, "exponential")
    assert s["latency_mean_ci95_s"] < (0.05 if rho <= 0.5 else 0.10) * expected
    assert s["latency_mean_s"] == pytest.approx(expected, abs=4 * s["latency_mean_ci95_s"])


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_mean_time_in_system(rho: float) -> None:
    mu = 1.0 / SERVICE_S
    lam = rho * mu
    expected = SERVICE_S + rho / (2 * mu * (1 - rho))  # service + M/D/1 mean wait
    s = _queue_run(lam, "fixed")
    assert s["latency_mean_ci95_s"] < (0.05 if rho <= 0.5 else 0.10) * expected
    assert s["latency_mean_s"] == pytest.approx(expected, abs=4 * s["latency_mean_ci95_s"])


def test_overload_fills_the_mempool_and_rejects() -> None:
    scenario = small_scenario(
        duration_s=20.0,
        network__nodes=1,
        protocol__name="solo",
        protocol__max_block_tx=1,
        protocol__batch_timeout_s=0.0,
        node__execute_scale=SERVICE_S / 100e-6,
        node__mempool_capacity_tx=50,
        workload__rate_tps=200.0,  # twice the service rate
    )
    s = sim.run(scenario).summary
    assert s["rejected"] > 0
    assert s["throughput_tps"] == pytest.approx(100.0, rel=0.05)
    assert s["conservation_violations"] == 0
