"""Block cutting (Fabric's orderer rule) against the renewal model of Poisson arrivals.

The cutter (``sim/consensus/batching.py``, used by every leader-based protocol and
by Fabric's ordering service) cuts a block at MaxMessageCount transactions or
BatchTimeout after the first transaction of the batch. With Poisson arrivals of
rate lambda, each batch starts at an arrival, so its size is
min(M, 1 + N) with N ~ Poisson(lambda T): batches are independent and identically
distributed, and the mean block size is E[min(M, 1 + N)].
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import poisson

import sim
from sim.config import parse_scenario
from sim.validation.cases import CaseResult, case

BATCH_TIMEOUT_S = 2.0  # Fabric BatchTimeout (fabric-samples configtx.yaml)
MAX_MESSAGE_COUNT = 10  # Fabric MaxMessageCount (fabric-samples configtx.yaml)


def expected_block_size(rate_tps: float, timeout_s: float, max_tx: int) -> float:
    """E[min(M, 1 + N)], N ~ Poisson(rate * timeout)."""
    k = np.arange(max_tx)  # 1 + N = k + 1 < M for N < M - 1
    p = poisson.pmf(k[:-1], rate_tps * timeout_s)
    return float(np.sum((k[:-1] + 1) * p) + max_tx * (1.0 - p.sum()))


def _register(rate_tps: float) -> None:
    @case(
        name=f"block_cutting_mean_size_rate{rate_tps:g}",
        group="block cutting",
        configured=(
            f"solo orderer (the cutter Fabric's orderer uses), BatchTimeout {BATCH_TIMEOUT_S:g} s, "
            f"MaxMessageCount {MAX_MESSAGE_COUNT}, Poisson arrivals {rate_tps:g}/s, no CPU cost"
        ),
        reference="E[min(MaxMessageCount, 1 + arrivals within BatchTimeout)]",
        source="Hyperledger Fabric ordering service (BatchTimeout, MaxMessageCount); renewal argument in the module docstring",
        tolerance_why="4 standard errors of the mean over i.i.d. blocks",
    )
    def cutting_case(quick: bool) -> CaseResult:
        raw = {
            "name": "validate-block-cutting",
            "duration_s": 1000.0 if quick else 4000.0,
            "seed": 2,
            "network": {"nodes": 1, "topology": "full_mesh"},
            "node": {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30, "execute_scale": 0.0},
            "protocol": {"name": "solo", "max_block_tx": MAX_MESSAGE_COUNT, "batch_timeout_s": BATCH_TIMEOUT_S},
            "workload": {"rate_tps": rate_tps},
        }
        blocks = sim.run(parse_scenario(raw, "<validation>")).blocks
        sizes = blocks.loc[blocks["tx_count"] > 0, "tx_count"].to_numpy(dtype=float)[:-1]  # the last may be cut by the end
        reference = expected_block_size(rate_tps, BATCH_TIMEOUT_S, MAX_MESSAGE_COUNT)
        return CaseResult(reference, float(sizes.mean()), 4 * float(sizes.std(ddof=1)) / math.sqrt(len(sizes)), "transactions")


for _rate in (1.0, 4.0):
    _register(_rate)
