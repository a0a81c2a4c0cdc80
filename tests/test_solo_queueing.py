"""`solo` under overload: the queue builds in the bounded mempool, and arrivals beyond it are rejected.

Its agreement with M/M/1 and M/D/1 queueing theory is a validation case
(sim/validation/queueing.py), checked by tests/test_validation.py.
"""

from __future__ import annotations

import pytest

import sim
from sim.validation.queueing import SERVICE_S, queue_scenario


def test_overload_fills_the_mempool_and_rejects() -> None:
    scenario = queue_scenario(2.0 / SERVICE_S, "fixed", duration_s=20.0, node={
        "sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30, "execute_scale": 100.0, "mempool_capacity_tx": 50,
    })
    s = sim.run(scenario).summary
    assert s["rejected"] > 0
    assert s["throughput_tps"] == pytest.approx(1.0 / SERVICE_S, rel=0.05)
    assert s["conservation_violations"] == 0
