"""Published results: Bitcoin block propagation and forks (Decker & Wattenhofer, IEEE P2P 2013).

What the paper did (numbers quoted only from stored text that cites it): it connected
to a large share of the reachable Bitcoin nodes and timed when each announced
(``inv``, sent after verification) every new block. Block propagation, creation to a
node's announcement: median 6.5 s and 90th percentile 26 s (as quoted by Croman et al.,
FC 2016; shared/reference/README.md), mean 12.6 s (as quoted by bitcoinstats.io's
block-race page). Its fork model (quoted and derived on bitcoin.stackexchange.com,
question 74651): with P_b the chance the network finds a block in a second (1/600) and
f(t) the share of nodes that know a block t seconds after it was found, a fork happens
when an unaware node finds a block first,

    P(fork) = 1 - (1 - P_b) ** integral (1 - f(t)) dt = 1 - (1 - P_b) ** E[delay],

the integral being the mean propagation delay.

What we configure (assumptions stated):
- ``pow`` with a 600 s block interval and equal hash shares on 200 nodes of a
  ``scale_free`` peer graph of mean degree 8 (Bitcoin Core's 8 outbound connections),
  cities round-robin over city_rtt_ms.csv, phase mode (flooding along shortest paths:
  every node verifies, then relays to its peers one after another).
- One free parameter, calibrated openly: the uplink bandwidth (5,800 bits/s), which sets
  the time a node takes to hand a block to each next peer (about 0.2 s for our empty
  blocks). It stands for everything a 2013 hop cost (inv/getdata round trips, transfer
  of a block of a few hundred KB, verification) lumped into one per-peer time; we chose
  it so that the median propagation delay is the paper's 6.5 s (tests/test_validation_cases.py
  re-derives it). Blocks are empty (no workload): the lumped time carries the size.
- Per-node arrival times are read from each node's block tree (``Entry.received_s``,
  when it accepted the block) with confirmations so large that nothing is pruned.

What we reproduce:

1. ``pow_decker_fork_rate_model`` (value, out of sample): the share of heights with a
   stale block, in a run with 6 confirmations, against the paper's fork model fed with
   the mean propagation delay the simulator produces on the same graph. The model
   ignores the miner's own share (1/200 here) and two forks in one window; both are
   well under the tolerance.

What we cannot match, and why: the tail. The paper's distribution is long-tailed
(90th percentile four times the median, mean about twice the median); ours, calibrated
to the median, has a 90th percentile about 1.3 times the median and a mean just below
it (see ``propagation_delays``). Every node of our graph has the same uplink and CPU,
so delays differ only by hop count and peer order; the 2013 network mixed fast and very
slow nodes, which make the tail. Fitting the tail would need a per-node capacity
distribution we have no published data for, so the 90th percentile and the mean are
reported here and not tested as values; with our mean (about 6 s) the fork model gives
about 1%, where the paper's 12.6 s mean gives about 2%.
"""

from __future__ import annotations

import math

import numpy as np

from sim.config import parse_scenario
from sim.experiment.simulation import Simulation
from sim.validation.cases import CaseResult, case
from sim.validation.pow_stale import stale_rate_of

__all__ = ["fork_model", "propagation_delays"]

NODES = 200
INTERVAL_S = 600.0  # Bitcoin's target block interval
DEGREE = 8  # Bitcoin Core's outbound connections
UPLINK_BPS = 5800.0  # the one calibrated parameter: median propagation 6.5 s (see the docstring)
_SOURCE = (
    "Decker & Wattenhofer, Information propagation in the Bitcoin network (IEEE P2P 2013), as quoted by Croman et al. "
    "(FC 2016; shared/reference/README.md) and bitcoin.stackexchange.com question 74651 (fork model)"
)


def _scenario(blocks: int, confirmations: int, seed: int) -> dict:
    return {
        "name": "pow-decker",
        "duration_s": blocks * INTERVAL_S,
        "seed": seed,
        "network": {"nodes": NODES, "topology": "scale_free", "degree": DEGREE, "mode": "phase", "bandwidth_bps": UPLINK_BPS},
        "protocol": {"name": "pow", "block_interval_s": INTERVAL_S, "confirmations": confirmations},
        "workload": {"rate_tps": 0.0},
    }


def propagation_delays(blocks: int, seed: int = 3, bandwidth_bps: float = UPLINK_BPS) -> np.ndarray:
    """Seconds from a block's creation to its acceptance, for every (node, block) but the miner's.

    Read from every node's block tree; confirmations are set beyond the run so no
    entry is pruned. Blocks still propagating at the end are counted where they arrived.
    """
    raw = _scenario(blocks, 10**9, seed)
    raw["network"]["bandwidth_bps"] = bandwidth_bps
    world = Simulation(parse_scenario(raw, "<validation>"))
    world.run_until(blocks * INTERVAL_S)
    delays = [
        entry.received_s - entry.block.created_s
        for node in world.nodes
        for entry in node.protocol.tree.values()
        if entry.block is not None and entry.block.proposer != node.node_id
    ]
    return np.array(delays)


def fork_model(mean_delay_s: float, interval_s: float = INTERVAL_S) -> float:
    """Decker & Wattenhofer's fork probability 1 - (1 - P_b) ** E[delay], P_b = 1 / interval."""
    return 1.0 - (1.0 - 1.0 / interval_s) ** mean_delay_s


@case(
    name="pow_decker_fork_rate_model",
    group="published",
    configured=(
        f"pow, {NODES} equal miners, block interval {INTERVAL_S:g} s, scale_free peer graph of mean degree {DEGREE} over "
        f"10 cities, phase mode, uplink {UPLINK_BPS:g} bit/s calibrated so the median propagation delay is 6.5 s; "
        "stale share over 6000 expected blocks (quick 1000), mean delay from 300 blocks (quick 60)"
    ),
    reference="share of heights with a stale block = 1 - (1 - 1/600) ** E[propagation delay] (the paper's fork model)",
    source=_SOURCE,
    tolerance_why=(
        "4 binomial standard errors sqrt(p(1-p)/H) over the H final heights counted; the model's neglect of the miner's "
        "own share (1/200) and of double forks moves it by under 2% of p"
    ),
)
def fork_rate(quick: bool) -> CaseResult:
    mean_delay_s = float(np.mean(propagation_delays(60 if quick else 300)))
    expected = fork_model(mean_delay_s)
    blocks = 1000 if quick else 6000
    measured, top = stale_rate_of(parse_scenario(_scenario(blocks, 6, 11), "<validation>"))
    sigma = math.sqrt(expected * (1 - expected) / top) if top else 0.0
    return CaseResult(expected, measured, 4 * sigma, "stale share")
