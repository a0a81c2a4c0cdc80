"""Tests for sim.consensus.chain: gossip, finality depth, orphans, sync, stale-block records."""

from __future__ import annotations

from typing import Any

import pytest

from sim.consensus.chain import ChainBlock, ChainProtocol
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import small_scenario

EXACT: dict[str, Any] = {
    "protocol__name": "aura",
    "protocol__step_s": 1.0,
    "protocol__confirmations": 3,
    "node__sign_s": 0.0,
    "node__verify_s": 0.0,
    "node__hash_rate_bps": 1e30,
    "network__bandwidth_bps": 1e30,
}


def _world(**extra: Any) -> Simulation:
    keys = {**EXACT, **extra}
    if keys["protocol__name"] != "aura":
        del keys["protocol__step_s"]
    return Simulation(small_scenario(**keys))


def _chain(world: Simulation, i: int) -> ChainProtocol:
    protocol = world.nodes[i].protocol
    assert isinstance(protocol, ChainProtocol)
    return protocol


def test_transactions_reach_every_mempool_and_finality_lags_the_tip_by_k() -> None:
    world = _world(workload__rate_tps=20.0, protocol__step_s=100.0, duration_s=3.0)
    world.run_until(3.0)  # no block yet (first slot at 100 s): every transaction waits everywhere
    submitted = {tx.tx_id for tx in world.txs if tx.submit_s < 2.9}
    assert len(submitted) > 30
    for node in world.nodes:
        assert submitted <= {tx.tx_id for tx in node.mempool}
    # flooding on a 4-node full mesh: the origin sends 3 copies, each other node relays 2
    # (all peers but its sender): 9 copies per transaction once it has spread
    messages = collect(world, 0.0).messages.set_index(["node_id", "msg_type"])
    sent = int(messages.xs("TxGossip", level="msg_type")["sent_count"].sum())
    assert 9 * len(submitted) <= sent <= 9 * len(world.txs)
    world2 = _world(duration_s=20.5)
    world2.run_until(20.5)
    for i in range(4):
        chain = _chain(world2, i)
        assert chain.tip.height == 20
        assert chain.final.height == world2.nodes[i].ledger.height == 17


def test_orphan_waits_for_its_parent_which_is_requested() -> None:
    world = _world(workload__rate_tps=0.0, duration_s=10.0)
    world.run_until(3.5)  # blocks 1..3
    receiver = _chain(world, 0)
    tip = receiver.tip
    parent = world.nodes[0].ctx.make_block(4, tip.block_hash, [], round=4)  # slot 4 is node 0's
    world.run_until(5.2)  # slots 4 and 5 pass; the real block 4 and 5 exist, we build a side branch
    assert receiver.tip.height == 5
    # a child arriving before its parent waits and its parent is requested from the sender
    child = world.nodes[1].ctx.make_block(5, parent.block_hash, [], round=5)
    before = world.network.sent.get((0, "GetBlocks"), [0, 0])[0]
    receiver.on_message(1, ChainBlock(child))
    assert child.block_hash in receiver.orphan_by_hash and child.block_hash not in receiver.tree
    assert world.network.sent[(0, "GetBlocks")][0] == before + 1
    # the parent arrives: both join the tree (a different block for slot 4 and 5: rejected as twins)
    receiver.on_message(0, ChainBlock(parent))
    assert not receiver.orphan_by_hash
    assert parent.block_hash in receiver.dead and child.block_hash in receiver.dead


def test_orphan_chain_connects_and_wins() -> None:
    # pow: no slot rules, so a longer side branch received child-first must take over
    world = _world(
        protocol__name="pow", protocol__block_interval_s=1e9, protocol__confirmations=2, workload__rate_tps=0.0, duration_s=10.0
    )
    world.run_until(1.0)
    receiver = _chain(world, 0)
    assert receiver.tip.height == 0
    a = world.nodes[1].ctx.make_block(1, receiver.tip.block_hash, [], 0)
    b = world.nodes[1].ctx.make_block(2, a.block_hash, [], 0)
    c = world.nodes[1].ctx.make_block(3, b.block_hash, [], 0)
    receiver.on_message(1, ChainBlock(c))
    receiver.on_message(1, ChainBlock(b))
    assert receiver.tip.height == 0 and len(receiver.orphan_by_hash) == 2
    receiver.on_message(1, ChainBlock(a))
    assert receiver.tip.block_hash == c.block_hash
    assert receiver.final.block_hash == a.block_hash  # 3 - 2 confirmations
    assert world.nodes[0].ledger.height == 1


def test_recovered_node_catches_up_by_sync() -> None:
    world = _world(workload__rate_tps=5.0, duration_s=40.5)
    world.run_until(2.5)
    world.nodes[3].crash()
    world.run_until(20.5)
    lagging = _chain(world, 3)
    assert lagging.tip.height == 2
    world.nodes[3].recover()
    world.run_until(40.5)
    heights = [node.ledger.height for node in world.nodes]
    assert heights[3] == heights[0] > 20
    assert world.nodes[3].ledger.head_hash == world.nodes[0].ledger.head_hash
    result = collect(world, 0.0)
    assert result.summary["safety_violations"] == 0
    # on recovery it asked a peer for its best chain, and got the missing blocks
    assert world.network.sent[(3, "GetBlocks")][0] >= 1
    assert world.network.received[(3, "SyncBlocks")][0] >= 1


def test_each_stale_block_is_recorded_once_by_its_miner() -> None:
    world = _world(
        protocol__name="pow",
        protocol__block_interval_s=2.0,
        protocol__confirmations=4,
        network__latency_s=0.5,
        workload__rate_tps=0.0,
        duration_s=600.0,
        network__nodes=6,
    )
    world.run_until(600.0)
    result = collect(world, 0.0)
    consensus = result.consensus
    top = min(node.ledger.height for node in world.nodes)
    final = {b.block_hash.hex()[:8] for b in world.nodes[0].ledger.blocks[:top]}
    proposed = consensus[(consensus["kind"] == "block_proposed") & (consensus["height"] <= top)]
    stale = consensus[(consensus["kind"] == "stale_block") & (consensus["height"] <= top)]
    expected = proposed[~proposed["block"].isin(final)]
    assert len(expected) > 20  # delay / interval = 0.25: many forks
    assert sorted(stale["block"]) == sorted(expected["block"])
    assert stale["node_id"].tolist() == stale["proposer"].tolist()
    assert result.summary["safety_violations"] == 0


@pytest.mark.parametrize("mode", ["message", "phase"])
def test_partition_heals_and_the_heavier_side_wins(mode: str) -> None:
    # pow in two halves for a while (below the confirmation depth), then one network again
    world = _world(
        protocol__name="pow",
        protocol__block_interval_s=1.0,
        protocol__confirmations=30,
        network__mode=mode,
        workload__rate_tps=2.0,
        duration_s=80.0,
    )
    world.run_until(10.0)
    world.network.group[:] = [0, 0, 1, 1]
    world.run_until(15.0)
    tips = {_chain(world, i).tip.block_hash for i in range(4)}
    assert len(tips) == 2  # each half extends its own branch
    world.network.group[:] = [0, 0, 0, 0]
    world.run_until(80.0)
    result = collect(world, 0.0)
    assert result.summary["safety_violations"] == 0 and result.summary["conservation_violations"] == 0
    assert len({_chain(world, i).final.block_hash for i in range(4)}) == 1
    assert (result.consensus["kind"] == "reorg").any()
