"""Tests for sim.consensus.pow (Nakamoto proof of work) against theory."""

from __future__ import annotations

import math
from typing import Any

import pytest

import sim
from sim.consensus.pow import Pow, PowParams
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import small_scenario

N_NODES = 10
INTERVAL_S = 10.0

#: zero CPU cost, instant serialization: a block reaches every other node exactly
#: one link delay after it is found (full mesh)
EXACT: dict[str, Any] = {
    "protocol__name": "pow",
    "protocol__block_interval_s": INTERVAL_S,
    "protocol__confirmations": 6,
    "network__nodes": N_NODES,
    "network__mode": "phase",
    "node__sign_s": 0.0,
    "node__verify_s": 0.0,
    "node__hash_rate_bps": 1e30,
    "network__bandwidth_bps": 1e30,
    "workload__rate_tps": 0.0,
    "warmup_s": 0.0,
}


def _run(**extra: Any) -> sim.RunResult:
    return sim.run(small_scenario(**{**EXACT, **extra}))


def _fork_rate(result: sim.RunResult) -> tuple[float, int]:
    """Share of final heights where some other block was also found, and how many heights.

    Counted up to the height every node has finalized, so each stale block there has
    been recorded (its miner records it when finalizing that height).
    """
    top = int(result.nodes["ledger_height"].min())
    consensus = result.consensus
    stale = consensus[(consensus["kind"] == "stale_block") & (consensus["height"] <= top)]
    return stale["height"].nunique() / top, top


def _fork_theory(delay_s: float, interval_s: float, n: int) -> float:
    """P(another miner finds a block while one propagates), equal shares.

    While the block found by one miner travels for ``delay_s``, the other miners
    (share 1 - 1/n) still mine on its parent at rate (1 - 1/n) / interval. This is
    the textbook 1 - exp(-delay / interval) with the finder's own share removed
    (it mines on its new block); as n grows the two agree.
    """
    return 1.0 - math.exp(-(1.0 - 1.0 / n) * delay_s / interval_s)


@pytest.mark.parametrize("delay_s", [0.5, 1.0, 2.0])
def test_fork_rate_matches_propagation_theory(delay_s: float) -> None:
    heights = 1500
    result = _run(network__latency_s=delay_s, duration_s=heights * INTERVAL_S, seed=11)
    measured, top = _fork_rate(result)
    expected = _fork_theory(delay_s, INTERVAL_S, N_NODES)
    # each height forks or not, independently to first order: binomial standard error
    sigma = math.sqrt(expected * (1.0 - expected) / top)
    assert top > 1100  # about 1500 x (1 - stale share) heights
    assert abs(measured - expected) < 4.0 * sigma, (measured, expected, sigma)
    # finality at depth 6: no node's final chain was ever reorganised (shared safety check)
    assert result.summary["safety_violations"] == 0
    assert result.summary["ledger_violations"] == 0
    reorgs = result.consensus[result.consensus["kind"] == "reorg"]
    assert len(reorgs) > 0 and reorgs["depth"].max() < 6


def test_fork_rate_grows_with_delay_over_interval() -> None:
    # the same seed, so the same mining draws: only the delay changes
    rates = [_fork_rate(_run(network__latency_s=d, duration_s=6000.0, seed=5))[0] for d in (0.0, 0.5, 2.0)]
    assert rates[0] == 0.0  # no delay, no fork
    assert rates[0] < rates[1] < rates[2]


def test_block_rate_and_hash_shares() -> None:
    # Poisson process of total rate 1 / interval; miner i wins a share w_i / sum(w)
    duration_s = 8000.0
    result = _run(network__nodes=4, protocol__hash_shares=[3.0, 1.0, 0.0, 0.0], network__latency_s=0.0, duration_s=duration_s, seed=3)
    proposed = result.consensus[result.consensus["kind"] == "block_proposed"]
    mean = duration_s / INTERVAL_S
    assert abs(len(proposed) - mean) < 4.0 * math.sqrt(mean)  # Poisson count: variance = mean
    share_0 = (proposed["node_id"] == 0).mean()
    assert abs(share_0 - 0.75) < 4.0 * math.sqrt(0.75 * 0.25 / len(proposed))
    assert set(proposed["node_id"]) == {0, 1}  # zero-share nodes never mine
    # no delay: no forks, and every block found is final or among the last 6
    assert (result.consensus["kind"] == "stale_block").sum() == 0
    assert result.summary["blocks"] == len(proposed) - 6


def test_parameters_and_tolerance() -> None:
    params = PowParams()
    assert params.block_interval_s == 600.0 and params.confirmations == 6
    assert Pow.crash_tolerance(params, 7) == 6
    assert Pow.crash_tolerance(PowParams(hash_shares=[1.0, 0.0, 2.0]), 3) == 1
    with pytest.raises(sim.ScenarioError, match="3 weights for 4 nodes"):
        small_scenario(protocol__name="pow", protocol__hash_shares=[1.0, 1.0, 1.0])


def test_stale_blocks_give_their_transactions_back() -> None:
    # forks with a workload, message mode: transactions of losing blocks commit in later ones
    scenario = small_scenario(
        **{
            **EXACT,
            "network__nodes": 5,
            "network__mode": "message",
            "network__latency_s": 2.0,
            "workload__rate_tps": 0.5,
            "duration_s": 2000.0,
            "seed": 2,
        }
    )
    world = Simulation(scenario)
    world.run_until(scenario.duration_s)
    result = collect(world, 0.0)
    summary = result.summary
    assert (result.consensus["kind"] == "stale_block").sum() > 0
    assert summary["safety_violations"] == 0 and summary["conservation_violations"] == 0
    tx = result.transactions
    early = tx[tx["submit_s"] < scenario.duration_s - 30 * INTERVAL_S]
    assert len(early) > 500 and (early["outcome"] == "committed").all()
    # no transaction is in two final blocks, and every final one was committed
    for node in world.nodes:
        protocol = node.protocol
        assert isinstance(protocol, Pow)
        ids = [t for block in protocol.final_blocks for t in block.tx_ids]
        assert len(ids) == len(set(ids))
        assert set(ids) <= set(tx.loc[tx["outcome"] == "committed", "tx_id"])
