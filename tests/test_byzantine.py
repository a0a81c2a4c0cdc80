"""Byzantine behaviours: within tolerance nothing unsafe happens; beyond it the checks see harm.

Raft (5 nodes) tolerates no Byzantine node in theory, but a Byzantine *follower*, or a
Byzantine leader for a bounded window, is survivable: for each behaviour that applies to
Raft (silent, delay, censor, invalid) we check zero safety, ledger, durability and
conservation violations and liveness once the behaviour ends. Equivocation needs a BFT
protocol to be tolerated; on Raft and solo it must show up as safety violations.
"""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.consensus.base import _REGISTRY, Protocol, register_protocol
from sim.consensus.common import BlockMsg, ForwardTx
from sim.consensus.raft import AppendEntries, Entry
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.faults.byzantine import corrupt_block, sibling_block
from sim.faults.sync import SyncBlocks
from sim.ledger import GENESIS_HASH, Block, merkle_root, tx_digest, verify_chain
from sim.workload.transaction import Transaction
from tests.conftest import small_scenario

SETTLE_S = 1.5  # after a behaviour ends: an election plus a few round trips


def _raft(faults: list[dict[str, Any]], **extra: Any) -> sim.Scenario:
    keys: dict[str, Any] = {"network__nodes": 5, "duration_s": 9.0, "faults": faults, **extra}
    return small_scenario(**keys)


def _leader_window(behaviour: str, **keys: Any) -> dict[str, Any]:
    return {"kind": "byzantine", "nodes": "leader", "behaviour": behaviour, "at_s": 2.0, "until_s": 5.0, **keys}


def _assert_safe(summary: dict[str, Any]) -> None:
    keys = ("safety_violations", "ledger_violations", "committed_lost", "conservation_violations", "consent_violations")
    assert {k: summary[k] for k in keys} == dict.fromkeys(keys, 0), summary["invariant_notes"]


def _assert_live_after(result: sim.RunResult, from_s: float, exclude_origins: tuple[int, ...] = ()) -> None:
    tx = result.transactions
    late = tx[(tx["submit_s"] > from_s) & (tx["submit_s"] < result.scenario.duration_s - 1.0) & ~tx["origin"].isin(exclude_origins)]
    assert len(late) > 20
    assert (late["outcome"] == "committed").all(), late["outcome"].value_counts()


def _byzantine_node(result: sim.RunResult) -> int:
    return int(result.faults.loc[result.faults["action"] == "start", "nodes"].iloc[0])


# ------------------------------------------------------------------ hooks


def _block(height: int = 1, prev: bytes = GENESIS_HASH, ids: tuple[int, ...] = (0, 1)) -> Block:
    txs = [Transaction(i, "claim", 0, 0.0, 1100, 1e-4) for i in ids]
    return Block.build(height, prev, 0, 1.0, ids, [tx_digest(t.tx_id, t.tx_type, t.origin, t.size_bytes) for t in txs], 2200)


def test_messages_expose_and_replace_the_blocks_they_carry() -> None:
    a, b = _block(1), _block(2, _block(1).block_hash, (2,))
    append = AppendEntries(3, 0, 0, (Entry(3, a), Entry(3, b)), 0)
    assert append.carried_blocks() == (a, b)
    assert BlockMsg(a).carried_blocks() == (a,)
    assert SyncBlocks((a, b), more=False).carried_blocks() == (a, b)
    assert ForwardTx(Transaction(0, "claim", 0, 0.0, 1100, 1e-4)).carried_blocks() == ()
    swapped = append.map_blocks(lambda blk: sibling_block(blk) if blk is b else blk)
    assert isinstance(swapped, AppendEntries) and swapped.entries[0].block is a
    assert swapped.entries[1].block == sibling_block(b) and swapped.entries[1].term == 3
    assert append.map_blocks(lambda blk: blk) is append  # nothing changed: the same message
    assert append.equivocal() is None  # proposals need no code: blocks give the variant


def test_a_sibling_is_a_valid_conflicting_block_and_corruptions_are_invalid() -> None:
    block = _block(4, bytes(range(32)), (0, 1, 2))
    sibling = sibling_block(block)
    assert (sibling.height, sibling.prev_hash) == (block.height, block.prev_hash)
    assert sibling.block_hash != block.block_hash
    assert verify_chain([sibling.__class__(**{**_fields(sibling), "height": 1, "prev_hash": GENESIS_HASH})]) == []
    assert sibling_block(_block(1, ids=())).block_hash != _block(1, ids=()).block_hash  # empty blocks too
    for how in ("merkle_root", "tx_hash", "parent", "block_hash"):
        bad = corrupt_block(block, how)
        assert bad.block_hash != block.block_hash and (bad.height, bad.tx_ids) == (block.height, block.tx_ids)
    forged = corrupt_block(block, "tx_hash")
    assert forged.merkle_root == merkle_root(forged.tx_hashes)  # consistent root: only checking the transaction catches it
    assert "merkle root" in verify_chain([corrupt_block(_block(1), "merkle_root")])[0]
    assert "header hash" in verify_chain([corrupt_block(_block(1), "block_hash")])[0]


def _fields(block: Block) -> dict[str, Any]:
    return {k: getattr(block, k) for k in ("height", "prev_hash", "proposer", "created_s", "tx_ids", "tx_hashes", "merkle_root", "size_bytes", "round")}


def test_honest_receivers_reject_each_kind_of_invalid_block() -> None:
    world = Simulation(_raft([{"kind": "byzantine", "nodes": [4], "behaviour": "silent"}], duration_s=3.0))
    world.run_until(3.0)
    guard = world.block_guard
    good = world.nodes[0].ledger.block_at(5)
    assert guard.content_problem(good) == ""
    expected = {
        "merkle_root": "Merkle root does not match the transactions",
        "tx_hash": "does not match what its client signed",
        "parent": "its parent is no block anyone built",
        "block_hash": "header hash does not match the header",
    }
    for how, problem in expected.items():
        assert problem in guard.content_problem(corrupt_block(good, how)), how
    ledger = world.nodes[0].ledger
    b4, b5, b6, b7 = (ledger.block_at(h) for h in (4, 5, 6, 7))
    assert guard._problem((b4, b5, b6)) == ""
    assert guard._problem((b5, sibling_block(b6))) == ""  # a conflicting sibling is still a valid block
    assert guard._problem((b4, b6)) == ""  # not consecutive: no linkage to check
    relabelled = Block(**{**_fields(b7), "height": 6})  # claims height 6 but builds on block 6
    assert guard._problem((b4, b5, relabelled)) == "height 6: parent is not the block before it in the message"
    append = AppendEntries(1, 4, 1, (Entry(1, b5), Entry(1, corrupt_block(b6, "merkle_root"))), 0)
    assert not guard.accepts(world.nodes[1], 0, append)  # one bad block: the whole message is dropped
    assert guard.rejected_messages == 1 and guard.accepts(world.nodes[1], 0, AppendEntries(1, 4, 1, (Entry(1, b5),), 0))


# ------------------------------------------------- within tolerance (Raft)


@pytest.mark.parametrize(
    ("behaviour", "keys"),
    [("silent", {}), ("delay", {"delay_s": 0.4}), ("delay", {"delay_s": 0.03}), ("invalid", {}), ("invalid", {"corrupt": "tx_hash"})],
)
def test_a_byzantine_leader_for_a_while_is_safe_and_raft_recovers_after(behaviour: str, keys: dict[str, Any]) -> None:
    result = sim.run(_raft([_leader_window(behaviour, **keys)]))
    _assert_safe(result.summary)
    _assert_live_after(result, 5.0 + SETTLE_S)
    row = result.recovery.iloc[0]
    assert bool(row["recovered"])


def test_a_silent_leader_is_replaced_by_an_election() -> None:
    result = sim.run(_raft([_leader_window("silent")]))
    row = result.recovery.iloc[0]
    timeout_max_s = 0.300
    assert 0 < row["new_leader_s"] < timeout_max_s + 0.05
    assert "withheld=" in row["detail"]
    bad = _byzantine_node(result)
    tx = result.transactions
    assert (tx["reason"] == f"withheld by silent Byzantine node {bad}").sum() > 0
    own = tx[(tx["origin"] == bad) & (tx["submit_s"] > 2.1) & (tx["submit_s"] < 4.9)]
    assert len(own) > 0 and (own["outcome"] == "dropped").all()  # its clients' claims never leave it


def test_invalid_blocks_are_rejected_and_never_committed() -> None:
    result = sim.run(_raft([_leader_window("invalid")]))
    s = result.summary
    assert s["invalid_blocks_rejected"] > 0 and s["invalid_messages_dropped"] > 0
    rejected = result.faults[result.faults["action"] == "invalid_block_rejected"]
    assert set(rejected["detail"].str.extract(r"(Merkle root does not match the transactions)")[0]) == {"Merkle root does not match the transactions"}
    assert s["ledger_violations"] == 0  # no honest ledger holds a corrupted block
    assert result.recovery.loc[0, "txs_lost"] > 0  # its unaccepted blocks are discarded


def test_a_censoring_leader_drops_one_hospital_only_while_it_censors() -> None:
    load = {"workload__rate_tps": 100.0, "duration_s": 10.0}
    probe = sim.run(_raft([_leader_window("silent", until_s=2.1)], **load))
    victim = (_byzantine_node(probe) + 1) % 5
    result = sim.run(_raft([_leader_window("censor", censor_origins=[victim], until_s=7.0)], **load))
    _assert_safe(result.summary)
    tx = result.transactions
    window = tx[(tx["submit_s"] > 2.1) & (tx["submit_s"] < 6.9)]
    censored = window[window["origin"] == victim]
    assert len(censored) > 5
    assert (censored["outcome"] == "dropped").all()
    assert censored["reason"].str.startswith("censored by Byzantine node").all()
    assert (window.loc[window["origin"] != victim, "outcome"] == "committed").all()
    _assert_live_after(result, 7.0 + SETTLE_S)
    assert result.recovery.loc[0, "recover_s"] > 4.5  # a fifth of the load is missing for the whole window


def test_a_censor_by_transaction_type_filters_its_proposals() -> None:
    result = sim.run(_raft([_leader_window("censor", censor_tx_types=["claim"])]))
    _assert_safe(result.summary)
    tx = result.transactions
    window = tx[(tx["submit_s"] > 2.1) & (tx["submit_s"] < 4.9)]
    assert (window["outcome"] == "dropped").all()
    _assert_live_after(result, 5.0 + SETTLE_S)


def test_a_byzantine_minority_of_followers_changes_nothing_for_the_others() -> None:
    probe = sim.run(_raft([]))
    leader = int(probe.consensus.loc[probe.consensus["kind"] == "leader_elected", "node_id"].iloc[0])
    followers = [i for i in range(5) if i != leader][:2]
    for behaviour, keys in [("silent", {}), ("delay", {"delay_s": 0.2}), ("invalid", {}), ("censor", {"censor_origins": [leader]})]:
        spec = {"kind": "byzantine", "nodes": followers, "behaviour": behaviour, "at_s": 1.0, **keys}
        result = sim.run(_raft([spec]))
        _assert_safe(result.summary)
        _assert_live_after(result, 1.0 + SETTLE_S, exclude_origins=tuple(followers))


def test_withheld_transactions_are_pending_not_vanished_mid_delay() -> None:
    scenario = _raft([{"kind": "byzantine", "nodes": [1, 2], "behaviour": "delay", "delay_s": 2.0, "at_s": 1.0}], duration_s=6.0)
    world = Simulation(scenario)
    world.run_until(2.5)  # forwards of nodes 1 and 2 are held right now
    assert world.faults is not None and world.faults.held_tx_ids()
    result = collect(world, 0.0)
    assert result.summary["conservation_violations"] == 0
    assert result.summary["pending"] >= len(world.faults.held_tx_ids())


def test_colluders_accept_each_others_blocks_and_honest_nodes_do_not() -> None:
    spec = {"kind": "byzantine", "nodes": [3, 4], "behaviour": "invalid", "group": "cartel", "at_s": 0.5}
    world = Simulation(_raft([spec], duration_s=2.0))
    world.run_until(2.0)
    guard = world.block_guard
    bad = corrupt_block(world.nodes[0].ledger.block_at(3), "merkle_root")
    msg = BlockMsg(bad)
    assert guard.accepts(world.nodes[4], 3, msg)  # from a colluder
    assert not guard.accepts(world.nodes[4], 0, msg)  # a colluder still checks honest senders
    assert not guard.accepts(world.nodes[1], 3, msg)
    assert world.nodes[3].behaviour.colluders == world.nodes[4].behaviour.colluders == frozenset({3, 4})


# ------------------------------------------------------- beyond tolerance


def test_an_equivocating_raft_leader_breaks_safety_and_the_checker_counts_it() -> None:
    result = sim.run(_raft([_leader_window("equivocate")]))
    s = result.summary
    assert s["safety_violations"] >= 1
    inv = result.invariants.set_index("invariant")
    assert inv.loc["safety", "violations"] == s["safety_violations"]
    assert "different blocks" in inv.loc["safety", "examples"]
    assert s["invariant_violations"] >= s["safety_violations"]
    assert "equivocated=" in result.recovery.loc[0, "detail"]
    refused = result.faults[result.faults["action"] == "block_refused"]
    assert len(refused) > 0  # the misled half can no longer extend its ledger


def test_an_equivocating_solo_orderer_splits_the_replicas() -> None:
    spec = {"kind": "byzantine", "nodes": [0], "behaviour": "equivocate", "at_s": 2.0}
    result = sim.run(small_scenario(protocol__name="solo", faults=[spec]))
    # replica 1 (the first half of the honest nodes 1, 2, 3) gets the original, 2 and 3 the variant
    (note,) = [n for n in result.summary["invariant_notes"] if "different blocks" in n][:1]
    assert "at nodes [1]" in note and "at nodes [2, 3]" in note
    assert result.summary["safety_violations"] == 1  # node 3 refuses everything after the fork


class _Forky(Protocol):
    """Test-only and deliberately broken: every node finalizes its own block each second."""

    name = "forky"

    def on_start(self) -> None:
        self.ctx.set_timer(1.0, "tick")

    def on_timer(self, name: str, data: Any) -> None:
        ctx = self.ctx
        ctx.deliver_block(ctx.make_block(ctx.ledger_height + 1, ctx.ledger_head_hash, []))
        ctx.set_timer(1.0, "tick")

    def on_message(self, src: int, msg: sim.consensus.base.Message) -> None:
        pass

    def on_transaction(self, tx: Transaction) -> None:
        self.ctx.tx_dropped([tx.tx_id], "forky keeps nothing")


def test_the_safety_checker_counts_every_conflicting_height(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_REGISTRY, "forky", _Forky)  # registered for this test only
    assert register_protocol(_Forky) is _Forky
    result = sim.run(small_scenario(protocol__name="forky", duration_s=5.5))
    assert result.summary["safety_violations"] == 5  # heights 1..5 differ at every node
    assert result.summary["ledger_violations"] == 0  # each chain is valid on its own
    # with all but one node Byzantine, the one honest node cannot disagree with itself
    alone = {"kind": "byzantine", "nodes": [1, 2, 3], "behaviour": "silent"}
    assert sim.run(small_scenario(protocol__name="forky", duration_s=5.5, faults=[alone])).summary["safety_violations"] == 0
