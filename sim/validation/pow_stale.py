"""Proof of work: the stale-block rate against propagation theory.

Model (Decker & Wattenhofer 2013, as used by Croman et al. 2016; shared/reference):
blocks are found as a Poisson process of total rate 1/T. While a block found by one
miner travels for d, the other miners (hash share 1 - 1/n with equal shares) still mine
on its parent, at rate (1 - 1/n)/T; if one of them finds a block in that window the
height forks and one of the two blocks ends stale. Hence

    P(stale at a height) = 1 - exp(-(1 - 1/n) d / T),

the textbook 1 - exp(-d/T) without the finder's own share (it mines on its new block);
the two agree as n grows (tests/test_pow.py derives and checks the same).

Measured as in tests/test_pow.py: the share of final heights (up to the height every
node has finalized, so each stale block there has been recorded by its miner) at which
some other block was also found. Configuration: ``pow``, 10 equal miners, T = 10 s,
full mesh with one-way delay d (phase mode: a block reaches every other node exactly d
after it is found), no CPU cost, no workload, 6 confirmations.
"""

from __future__ import annotations

import math

import sim
from sim.config import Scenario, parse_scenario
from sim.validation.cases import CaseResult, case

__all__ = ["stale_rate", "stale_rate_of", "stale_theory"]

MINERS = 10
INTERVAL_S = 10.0


def stale_theory(delay_s: float, interval_s: float, n: int) -> float:
    """P(another miner finds a block while one propagates), equal hash shares."""
    return 1.0 - math.exp(-(1.0 - 1.0 / n) * delay_s / interval_s)


def stale_rate(delay_s: float, heights: int, seed: int = 11) -> tuple[float, int]:
    """Share of final heights with a stale block, and how many final heights were counted."""
    scenario = parse_scenario(
        {
            "name": f"pow-stale-{delay_s:g}",
            "duration_s": heights * INTERVAL_S,
            "warmup_s": 0.0,
            "seed": seed,
            "network": {"nodes": MINERS, "topology": "full_mesh", "latency_s": delay_s, "mode": "phase", "bandwidth_bps": 1e30},
            "node": {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30},
            "protocol": {"name": "pow", "block_interval_s": INTERVAL_S, "confirmations": 6},
            "workload": {"rate_tps": 0.0},
        },
        "<validation>",
    )
    return stale_rate_of(scenario)


def stale_rate_of(scenario: Scenario) -> tuple[float, int]:
    """Run ``scenario`` (a chain protocol); share of final heights with a stale block, and the heights counted."""
    result = sim.run(scenario)
    top = int(result.nodes["ledger_height"].min())
    consensus = result.consensus
    stale = consensus[(consensus["kind"] == "stale_block") & (consensus["height"] <= top)]
    return (stale["height"].nunique() / top if top else float("nan")), top


def _register(ratio: float) -> None:
    delay_s = ratio * INTERVAL_S

    @case(
        name=f"pow_stale_rate_d{ratio:g}T",
        group="proof of work",
        configured=(
            f"pow, {MINERS} equal miners, block interval T = {INTERVAL_S:g} s, full mesh one-way delay "
            f"d = {delay_s:g} s (d/T = {ratio:g}), phase mode, no CPU cost; 4000 expected blocks (quick 2000)"
        ),
        reference="share of heights with a stale block = 1 - exp(-(1 - 1/n) d/T)",
        source=(
            "Decker & Wattenhofer, Information propagation in the Bitcoin network (P2P 2013); "
            "Croman et al. (FC 2016); shared/reference/README.md"
        ),
        tolerance_why=(
            "4 binomial standard errors sqrt(p(1-p)/H) over the H final heights counted (each height forks "
            "or not, independently to first order); fewer blocks in quick mode widen it by sqrt(2)"
        ),
    )
    def compute(quick: bool) -> CaseResult:
        expected = stale_theory(delay_s, INTERVAL_S, MINERS)
        measured, top = stale_rate(delay_s, 2000 if quick else 4000)
        sigma = math.sqrt(expected * (1 - expected) / top) if top else 0.0
        return CaseResult(expected, measured, 4 * sigma, "stale share")


for _ratio in (0.05, 0.2):
    _register(_ratio)
