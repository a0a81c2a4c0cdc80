"""Published results: Tendermint's global throughput and latency (Buchman, MASc thesis, Guelph 2016).

What the thesis did (chapter "Performance and Fault Tolerance", section "Throughput and
Latency"; text read in the thesis' LaTeX source, github.com/ebuchman/thesis,
chapters/performance.tex; numbers quoted only from that text): Tendermint validators in
docker on AWS EC2 t2.medium instances "distributed across seven datacenters, spanning
five continents", every validator connected directly to every other; 250-byte
transactions preloaded on each validator, mempool gossip disabled, an in-process nil
application; TimeoutPropose 10 s and every other timeout 1 ms; validator sets doubling
from 2 to 64 and block sizes doubling from 128 to 32768 transactions, 16 blocks per
experiment; a block's commit time is when a monitor first hears of it. Reported in the
text: Tendermint "easily handles thousands of transactions per second with around one
second block latency", "there appears to be a capacity limit at around ten thousand
transactions per second", a 16384-transaction block is about 4 MB, connections reach
"upwards of 20MB/s", validators "can spend upwards of two seconds waiting for block
parts" at high block sizes, and larger blocks "incur diminishing returns in transaction
throughput". The figures' points are images; we quote no number from them.

What we configure (assumptions stated):
- ``tendermint`` over ``regional`` with seven cities of city_rtt_ms.csv on five
  continents, assigned round-robin: WashingtonDC, Dallas, Frankfurt, London, Tokyo,
  Sydney, SaoPaulo. Our table has no AWS regions; the test harness' EC2 list
  (tendermint/network_testing, utils/create.go) names us-east-1, us-west-1/2,
  eu-west-1, eu-central-1, ap-northeast-1 and ap-southeast-1, which are three
  continents, so we follow the thesis' "five continents" with the nearest cities we have.
- Uplink bandwidth 20 MB/s (160 Mbps) per validator: the thesis' per-connection figure.
- Timeouts as the thesis: propose 10 s, prevote, precommit and commit 1 ms.
- Transactions are preloaded straight into every mempool (no gossip, as the thesis),
  carried as 64 KB aggregates of 256 transactions of 250 bytes (Tendermint's block
  part size): our consensus costs depend on a block's bytes, not on its transaction
  count, and the nil application executes nothing (execute_scale 0). Throughput counts
  250-byte transactions.
- Signing and verification costs are our defaults (Ed25519 on one vCPU).
- Block latency: time between the first commits of consecutive full heights (the
  monitor's view); the first full height is skipped (it starts from genesis).

What we reproduce:

1. ``tendermint_thesis_latency_n32_b2048`` (value): 32 validators ("dozens of nodes",
   the thesis' abstract), 2048-transaction blocks (its fault experiments' block size):
   block latency against the text's "around one second", which the abstract pairs with
   "thousands of transactions per second" (ours: about 2,500 tx/s at 0.83 s).
2. ``tendermint_thesis_shape`` (shape): over 4 to 32 validators and 512, 2048, 8192
   transaction blocks, latency grows with block size and with validators, throughput
   grows with block size with diminishing returns (the gain of the second fourfold
   step is below that of the first). Reference: no violated relation.

What we cannot match, and why: the capacity limit. Our proposer sends the whole block
to each validator over its own uplink (gossip reduced to direct broadcast), so a large
block takes (N - 1) x size / bandwidth to leave it and our capacity falls as about
1 / (N - 1): about 25,000 tx/s with 4 validators, 10,700 with 8, 4,700 with 16, 3,200
with 32 (full-mode runs). Tendermint gossips 64 KB block parts that validators relay,
so its proposer's uplink is not the bottleneck, and the thesis attributes its limit to
validators waiting for block parts instead. The thesis' "around ten thousand" is one
number over all validator counts; matching it at one N of our choosing would be
tuning, so we do not test it as a value.
"""

from __future__ import annotations

import math

import numpy as np

from sim.config import parse_scenario
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.validation.cases import CaseResult, case
from sim.workload.transaction import Transaction

__all__ = ["CITIES", "block_latency"]

#: seven cities of city_rtt_ms.csv on five continents (see the module docstring)
CITIES = ("WashingtonDC", "Dallas", "Frankfurt", "London", "Tokyo", "Sydney", "SaoPaulo")
TX_BYTES = 250  # the thesis' transaction size
PART_TX = 256  # transactions per preloaded aggregate: 64 KB, Tendermint's block part size
UPLINK_BPS = 20e6 * 8  # the thesis: connections "upwards of 20MB/s"
_SOURCE = (
    "Buchman, Tendermint: Byzantine Fault Tolerance in the Age of Blockchains, MASc thesis, University of Guelph "
    "2016, chapter Performance and Fault Tolerance (github.com/ebuchman/thesis chapters/performance.tex)"
)


def block_latency(n: int, block_tx: int, heights: int, horizon_s: float = 120.0, part_tx: int = PART_TX) -> float:
    """Mean seconds between the first commits of consecutive full heights (NaN if too few).

    Args:
        n: validators, spread round-robin over :data:`CITIES`.
        block_tx: 250-byte transactions per block (a multiple of 256, or below 256).
        heights: full heights to average over (one more is preloaded and skipped).
        horizon_s: simulated time limit, seconds.
        part_tx: transactions per preloaded aggregate.
    """
    per_part = min(block_tx, part_tx)
    if block_tx % per_part:
        raise ValueError(f"block_tx must be below {part_tx} or a multiple of it, got {block_tx}")
    parts = block_tx // per_part
    scenario = parse_scenario(
        {
            "name": f"tendermint-thesis-n{n}-b{block_tx}",
            "duration_s": horizon_s,
            "seed": 1,
            "network": {"nodes": n, "topology": "regional", "cities": list(CITIES), "bandwidth_bps": UPLINK_BPS},
            "node": {"execute_scale": 0.0, "mempool_capacity_tx": 10**7},
            "protocol": {
                "name": "tendermint",
                "max_block_tx": parts,
                "max_block_bytes": 2**30,
                "timeout_propose_s": 10.0,
                "timeout_prevote_s": 0.001,
                "timeout_precommit_s": 0.001,
                "timeout_commit_s": 0.001,
            },
            "workload": {"rate_tps": 0.0},
        },
        "<validation>",
    )
    world = Simulation(scenario)
    for k in range(parts * (heights + 1)):  # preloaded in every mempool, no gossip (as the thesis)
        tx = Transaction(len(world.txs), "claim", k % n, 0.0, TX_BYTES * per_part, 0.0)
        world.txs.append(tx)
        world.recorder.tx_submitted(tx)
        for node in world.nodes:
            node.admit(tx, notify=False)
    now_s = 0.0
    while min(node.ledger.height for node in world.nodes) < heights + 2 and now_s < horizon_s:
        now_s += 0.25
        world.run_until(now_s)
    result = collect(world, wall_time_s=0.0)
    first = result.consensus.query("kind == 'block_committed'").groupby("height")["time_s"].min()
    blocks = result.blocks.set_index("height")
    full = [h for h in blocks.index if blocks.at[h, "tx_count"] == parts and h - 1 in first.index]
    gaps = [float(first[h] - first[h - 1]) for h in full[1:]]
    return float(np.mean(gaps)) if len(gaps) >= heights - 1 else math.nan


@case(
    name="tendermint_thesis_latency_n32_b2048",
    group="published",
    configured=(
        "tendermint, 32 validators round-robin over 7 cities on 5 continents (regional), uplink 20 MB/s, 250-byte "
        "transactions preloaded (no mempool gossip), 2048-transaction blocks, timeouts propose 10 s, others 1 ms; "
        "mean gap between first commits of 16 consecutive full heights (quick 6)"
    ),
    reference="block latency 'around one second' at 'thousands of transactions per second' (thesis text)",
    source=_SOURCE,
    tolerance_why=(
        "the text gives the value only as 'around one second', read as 0.5 to 1.5 s: that band holds the thesis' own "
        "2048-transaction block latencies in its crash-fault tables (fastest 0.43 s, medians up to 1.14 s, 4 to 32 validators)"
    ),
)
def latency_n32(quick: bool) -> CaseResult:
    return CaseResult(1.0, block_latency(32, 2048, 6 if quick else 16), 0.5, "s")


def shape_violations(ns: tuple[int, ...], blocks: tuple[int, ...], heights: int) -> int:
    """Relations of the thesis' shape that a grid of runs breaks (see the module docstring).

    Latency must grow with block size (each N) and with N (each block size); throughput
    must grow with block size, each step by a smaller factor than the step before.
    NaN latencies count as broken relations.
    """
    latency = np.array([[block_latency(n, b, heights) for b in blocks] for n in ns])
    throughput = np.array(blocks, dtype=float)[None, :] / latency
    broken = int(np.isnan(latency).sum())
    with np.errstate(invalid="ignore"):
        broken += int((~(np.diff(latency, axis=1) > 0)).sum())
        broken += int((~(np.diff(latency, axis=0) > 0)).sum())
        gain = throughput[:, 1:] / throughput[:, :-1]
        broken += int((~(gain > 1)).sum())
        broken += int((~(np.diff(gain, axis=1) < 0)).sum())
    return broken


@case(
    name="tendermint_thesis_shape",
    group="published",
    configured=(
        "as tendermint_thesis_latency_n32_b2048, for 4, 8, 16, 32 validators (quick 4, 8, 16) and 512, 2048, 8192 "
        "transaction blocks; 16 gaps each (quick 6)"
    ),
    reference=(
        "0 broken relations: latency grows with block size and with validators; throughput grows with block size with "
        "diminishing returns ('Larger blocks incur diminishing returns in transaction throughput')"
    ),
    source=_SOURCE,
    tolerance_why="exact: every relation must hold (the capacity value is not matched, see sim/validation/tendermint_thesis.py)",
)
def shape(quick: bool) -> CaseResult:
    ns = (4, 8, 16) if quick else (4, 8, 16, 32)
    return CaseResult(0.0, float(shape_violations(ns, (512, 2048, 8192), 6 if quick else 16)), 0.0, "broken relations")
