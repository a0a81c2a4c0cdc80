"""Tests for sim.consensus.aura (Authority Round)."""

from __future__ import annotations

from typing import Any

import pytest

from sim.consensus.aura import Aura, AuraParams, slot_author
from sim.consensus.chain import ChainBlock
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import small_scenario

STEP_S = 1.0

EXACT: dict[str, Any] = {
    "protocol__name": "aura",
    "protocol__step_s": STEP_S,
    "protocol__confirmations": 2,
    "node__sign_s": 0.0,
    "node__verify_s": 0.0,
    "node__hash_rate_bps": 1e30,
    "network__bandwidth_bps": 1e30,
    "workload__rate_tps": 0.0,
}


def _world(**extra: Any) -> Simulation:
    return Simulation(small_scenario(**{**EXACT, **extra}))


def test_slot_author_rule() -> None:
    assert [slot_author(s, (0, 1, 2, 3)) for s in range(9)] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert [slot_author(s, (3, 1, 2)) for s in range(6)] == [3, 1, 2, 3, 1, 2]
    assert Aura.crash_tolerance(AuraParams(), 5) == 4
    assert Aura.crash_tolerance(AuraParams(validators=[1, 2]), 5) == 1
    assert AuraParams().step_s == 5.0


def test_every_final_block_is_its_slots_author_with_exact_times() -> None:
    world = _world(duration_s=20.5, protocol__validators=[2, 0, 3, 1])
    world.run_until(20.5)
    result = collect(world, 0.0)
    blocks = result.blocks
    validators = (2, 0, 3, 1)
    # one block per slot 1..20; slots 19 and 20 are not yet 2 deep
    assert blocks["round"].tolist() == list(range(1, 19))
    assert blocks["height"].tolist() == list(range(1, 19))
    assert blocks["proposer"].tolist() == [slot_author(s, validators) for s in range(1, 19)]
    assert blocks["created_s"].tolist() == pytest.approx([s * STEP_S for s in range(1, 19)], abs=1e-9)
    assert blocks["decided_s"].tolist() == pytest.approx([(s + 2) * STEP_S for s in range(1, 19)], abs=1e-9)
    assert result.summary["safety_violations"] == 0
    assert (result.consensus["kind"] == "block_proposed").sum() == 20


def test_crashed_validators_slots_stay_empty_and_the_chain_continues() -> None:
    world = _world(duration_s=30.5)
    world.run_until(5.5)
    world.nodes[2].crash()
    world.run_until(30.5)
    result = collect(world, 0.0)
    blocks = result.blocks
    # slots 1..30 less those of node 2 (s % 4 == 2) from slot 6 on; the last 2 blocks are not final
    produced = [s for s in range(1, 31) if s < 6 or s % 4 != 2]
    assert blocks["round"].tolist() == produced[:-2]
    assert blocks["height"].tolist() == list(range(1, len(produced) - 1))
    assert (blocks["proposer"] == blocks["round"] % 4).all()
    assert blocks["created_s"].tolist() == pytest.approx([s * STEP_S for s in produced[:-2]], abs=1e-9)
    assert result.summary["safety_violations"] == 0
    # the chain keeps going with a single validator left
    world.nodes[1].crash()
    world.nodes[3].crash()
    world.run_until(50.5)
    survivor = world.nodes[0].protocol
    assert isinstance(survivor, Aura)
    # node 0 seals slots 32, 36, ..., 48 alone; 44 and 48 are not 2 deep yet
    assert [b.round for b in survivor.final_blocks[len(produced) - 2 :]] == [28, 29, 32, 36, 40]
    assert survivor.tip.round == 48


def test_wrong_author_and_second_block_in_a_slot_are_rejected() -> None:
    world = _world(duration_s=10.0)
    world.run_until(0.5)
    world.nodes[3].crash()  # slot 3 stays empty
    world.run_until(5.5)  # slots 1, 2, 4, 5 sealed: heights 1..4, height 2 final
    receiver = world.nodes[0].protocol
    assert isinstance(receiver, Aura)
    tip = receiver.tip
    assert (tip.height, tip.round) == (4, 5) and tip.block is not None and tip.block.proposer == 1
    parent = tip.parent  # slot 4, node 0
    assert parent is not None and parent.round == 4

    def offer(author: int, parent_hash: bytes, height: int, slot: int) -> bytes:
        block = world.nodes[author].ctx.make_block(height, parent_hash, [], round=slot)
        receiver.on_message(author, ChainBlock(block))
        return block.block_hash

    # slot 5 belongs to node 1; node 2 sealing it is rejected
    wrong = offer(2, parent.block_hash, 4, 5)
    assert wrong in receiver.dead
    assert "not slot 5's author 1" in world.recorder.consensus[-1].fields["reason"]
    # node 1 sealing a second, different block for slot 5: equivocation
    twin = offer(1, parent.block_hash, 4, 5)
    assert twin in receiver.dead
    assert "second block in slot 5" in world.recorder.consensus[-1].fields["reason"]
    # a block for a slot that has not begun (slot 7 at time 5.5)
    early = offer(3, tip.block_hash, 5, 7)
    assert early in receiver.dead
    assert "has not begun" in world.recorder.consensus[-1].fields["reason"]
    # a slot not after the parent's
    stale = offer(0, tip.block_hash, 5, 4)
    assert stale in receiver.dead
    assert "not after its parent's slot 5" in world.recorder.consensus[-1].fields["reason"]
    # control: the empty slot 3, sealed late by its author on the final block 2, is valid
    control = offer(3, receiver.final.block_hash, 3, 3)
    assert control in receiver.tree
    assert receiver.tip is tip  # a shorter branch does not win
    assert sum(r.kind == "invalid_block" for r in world.recorder.consensus) == 4
