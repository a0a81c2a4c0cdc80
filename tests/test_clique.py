"""Tests for sim.consensus.clique (EIP-225)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import sim
from sim.consensus.chain import ChainBlock
from sim.consensus.clique import (
    DIFF_INTURN,
    DIFF_NOTURN,
    Clique,
    CliqueParams,
    in_turn,
    signer_limit,
)
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import small_scenario

PERIOD_S = 1.0

#: fixed costs and delays: every time in these runs is a sum of known terms
EXACT: dict[str, Any] = {
    "protocol__name": "clique",
    "protocol__period_s": PERIOD_S,
    "protocol__confirmations": 3,
    "node__sign_s": 0.0,
    "node__verify_s": 0.0,
    "node__hash_rate_bps": 1e30,
    "network__bandwidth_bps": 1e30,
    "workload__rate_tps": 0.0,
}


def _world(**extra: Any) -> Simulation:
    return Simulation(small_scenario(**{**EXACT, **extra}))


def _check_difficulty_rule(blocks: pd.DataFrame, signers: list[int]) -> None:
    """Every final block: difficulty 2 iff its number mod N is its signer's index."""
    n = len(signers)
    for height, proposer, difficulty in blocks[["height", "proposer", "round"]].itertuples(index=False):
        expected = DIFF_INTURN if in_turn(height, signers.index(proposer), n) else DIFF_NOTURN
        assert difficulty == expected, (height, proposer, difficulty)


def _check_signer_limit(blocks: pd.DataFrame, n_signers: int) -> None:
    """No signer signs twice within any floor(N/2) + 1 consecutive final blocks."""
    proposers = blocks.sort_values("height")["proposer"].tolist()
    window = signer_limit(n_signers)
    for start in range(len(proposers) - window + 1):
        chunk = proposers[start : start + window]
        assert len(set(chunk)) == window, (start + 1, chunk)


def test_in_turn_and_signer_limit_rules() -> None:
    # EIP-225: in turn iff number % N == index; limit floor(N/2) + 1
    assert [in_turn(b, 1, 4) for b in range(9)] == [False, True, False, False, False, True, False, False, False]
    assert in_turn(8, 0, 4) and in_turn(7, 3, 4) and not in_turn(7, 2, 4)
    assert [signer_limit(n) for n in (1, 2, 3, 4, 5, 16)] == [1, 2, 2, 3, 3, 9]
    params = CliqueParams()
    assert [Clique.crash_tolerance(params, n) for n in (1, 2, 3, 4, 5, 16)] == [0, 0, 1, 1, 2, 7]
    assert Clique.crash_tolerance(CliqueParams(signers=[0, 2, 4]), 16) == 1
    assert params.period_s == 15.0 and params.epoch == 30000 and params.wiggle_s == 0.5


def test_check_rejects_bad_signers() -> None:
    with pytest.raises(sim.ScenarioError, match="outside 0..3"):
        small_scenario(protocol__name="clique", protocol__signers=[0, 7])
    with pytest.raises(sim.ScenarioError, match="twice"):
        small_scenario(protocol__name="clique", protocol__signers=[1, 1])


def test_healthy_run_is_all_in_turn_with_exact_times() -> None:
    world = _world(duration_s=20.0)
    world.run_until(20.0)
    result = collect(world, 0.0)
    blocks = result.blocks
    signers = [0, 1, 2, 3]
    _check_difficulty_rule(blocks, signers)
    _check_signer_limit(blocks, 4)
    # the in-turn signer of every number seals exactly one period after its parent
    assert blocks["height"].tolist() == list(range(1, 17))  # tip 19 at the end (the run stops at 20 s): 16 final
    assert blocks["proposer"].tolist() == [h % 4 for h in range(1, 17)]
    assert (blocks["round"] == DIFF_INTURN).all()
    assert blocks["created_s"].tolist() == pytest.approx([h * PERIOD_S for h in range(1, 17)], abs=1e-9)
    # final when block h + 3 exists: first at its signer, the moment it seals
    assert blocks["decided_s"].tolist() == pytest.approx([(h + 3) * PERIOD_S for h in range(1, 17)], abs=1e-9)
    assert result.summary["safety_violations"] == 0


def test_out_of_turn_block_when_in_turn_signer_crashed() -> None:
    world = _world(duration_s=40.0, network__nodes=5)
    world.run_until(0.5)
    world.nodes[1].crash()
    world.run_until(40.0)
    result = collect(world, 0.0)
    blocks = result.blocks.set_index("height")
    signers = [0, 1, 2, 3, 4]
    _check_difficulty_rule(result.blocks, signers)
    _check_signer_limit(result.blocks, 5)
    assert 1 not in set(blocks["proposer"])
    # every number node 1 was in turn for got an out-of-turn block from someone else
    slots_of_1 = [h for h in blocks.index if h % 5 == 1]
    assert slots_of_1 and (blocks.loc[slots_of_1, "round"] == DIFF_NOTURN).all()
    # in turn: sealed exactly at parent time + period; out of turn: plus a wiggle in [0, N x 500 ms]
    created = [0.0, *blocks["created_s"].tolist()]  # genesis at time 0
    for h, gap_s in enumerate(pd.Series(created).diff().tolist()[1:], start=1):
        if blocks.loc[h, "round"] == DIFF_INTURN:
            assert gap_s == pytest.approx(PERIOD_S, abs=1e-9)
        else:
            assert PERIOD_S - 1e-9 <= gap_s <= PERIOD_S + 5 * 0.5 + 1e-9
    assert (blocks["round"] == DIFF_INTURN).any()  # some numbers still find their in-turn signer
    # the chain keeps going: at least one block per period + largest wiggle, 3 kept unfinal
    assert len(blocks) >= int(40.0 / (PERIOD_S + 5 * 0.5)) - 3
    assert result.summary["safety_violations"] == 0


def test_minimum_live_signers_keep_the_chain_going() -> None:
    # N = 5: limit 3, so 3 live signers suffice; each block has exactly one eligible signer
    world = _world(duration_s=40.0, network__nodes=5)
    world.run_until(0.5)
    world.nodes[3].crash()
    world.nodes[4].crash()
    world.run_until(40.0)
    blocks = collect(world, 0.0).blocks
    _check_signer_limit(blocks, 5)
    late = blocks[blocks["created_s"] > 5.0]["proposer"].tolist()
    assert set(late) == {0, 1, 2}
    assert all(late[i] != late[i + 1] and late[i] != late[i + 2] for i in range(len(late) - 2))
    assert len(blocks) >= int(40.0 / (PERIOD_S + 5 * 0.5)) - 3


def test_signer_limit_violation_is_rejected_by_a_receiver() -> None:
    world = _world(duration_s=10.0)
    world.run_until(6.5)  # blocks 1..6 exist (block h sealed by node h % 4 at h s), 1..3 final
    receiver = world.nodes[0].protocol
    assert isinstance(receiver, Clique)
    parent = receiver.tip.parent  # block 5, sealed by node 1 at 5 s: a child may carry any time >= 6 s
    assert parent is not None and parent.height == 5 and parent.block is not None and parent.block.proposer == 1
    # node 1 signed block 5: it may not sign block 6 (one of any 3 consecutive blocks for N = 4)
    bad = world.nodes[1].ctx.make_block(6, parent.block_hash, [], round=DIFF_NOTURN)
    receiver.on_message(1, ChainBlock(bad))
    assert bad.block_hash not in receiver.tree and bad.block_hash in receiver.dead
    record = world.recorder.consensus[-1]
    assert record.kind == "invalid_block" and record.node_id == 0
    assert "signed recently" in record.fields["reason"] and record.fields["proposer"] == 1
    # control: the same block from node 3 (signed block 3, outside the window) is accepted
    good = world.nodes[3].ctx.make_block(6, parent.block_hash, [], round=DIFF_NOTURN)
    receiver.on_message(3, ChainBlock(good))
    assert good.block_hash in receiver.tree
    # a wrong difficulty is rejected too: node 2 is in turn for 6 (6 % 4 == 2), so 1 is wrong
    wrong = world.nodes[2].ctx.make_block(6, parent.block_hash, [], round=DIFF_NOTURN)
    receiver.on_message(2, ChainBlock(wrong))
    assert wrong.block_hash in receiver.dead
    assert "difficulty" in world.recorder.consensus[-1].fields["reason"]
    # and so is an unknown signer's block, whatever its difficulty
    stranger_world = _world(duration_s=10.0, protocol__signers=[0, 1, 2])
    stranger_world.run_until(3.5)
    honest = stranger_world.nodes[0].protocol
    assert isinstance(honest, Clique)
    forged = stranger_world.nodes[3].ctx.make_block(honest.tip.height + 1, honest.tip.block_hash, [], round=DIFF_NOTURN)
    honest.on_message(3, ChainBlock(forged))
    assert forged.block_hash in honest.dead
    assert "unauthorized signer 3" in stranger_world.recorder.consensus[-1].fields["reason"]


def test_checkpoint_headers_carry_the_signer_list() -> None:
    # epoch 4: blocks 4, 8, ... carry 20 bytes per signer; the others nothing extra
    world = _world(duration_s=9.5, protocol__epoch=4)
    world.run_until(9.5)
    protocol = world.nodes[0].protocol
    assert isinstance(protocol, Clique)
    assert [protocol.extra_bytes(h) for h in (3, 4, 5, 8)] == [0, 80, 0, 80]
    sizes = [protocol._wrap(b).size_bytes() - protocol._wrap(b).block.size_bytes for b in protocol.final_blocks[:5]]
    assert sizes == [128, 128, 128, 208, 128]
