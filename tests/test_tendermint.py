"""Tests for sim.consensus.tendermint: exact height timing, round timeouts, lock rules.

Deterministic runs use a full mesh with one-way delay D = 1/16 s (a binary fraction, so
sums of delays and timeouts are exact), no CPU cost and a bandwidth so large that
serialization vanishes below one ulp. In the fault-free case a height proposed at t
decides at t + 3D at every node (proposal D, prevotes D, precommits D), and the next
height starts ``timeout_commit`` (1 s) later.
"""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.consensus.base import Message
from sim.consensus.tendermint import Precommit, Prevote, Proposal, Tendermint
from sim.errors import ScenarioError
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.ledger import GENESIS_HASH, Block
from tests.conftest import exact_scenario, run_with_crashes, small_scenario

D = 1 / 16
COMMIT_S = 1.0  # CometBFT timeout_commit
PROPOSE_S, PROPOSE_DELTA_S = 3.0, 0.5  # CometBFT timeout_propose and its per-round delta
PRECOMMIT_S, PRECOMMIT_DELTA_S = 1.0, 0.5


def _exact(n: int, **extra: Any) -> sim.Scenario:
    return exact_scenario("tendermint", D, **{
        "network__nodes": n,
        "protocol__max_block_tx": 500,
        "workload__rate_tps": 20.0,
        "duration_s": 30.0,
        **extra,
    })


# ---------------------------------------------------------------- fault-free


@pytest.mark.parametrize("n", [4, 7])
def test_height_decides_three_delays_after_its_proposal(n: int) -> None:
    heights = 6
    interval_s = 3 * D + COMMIT_S
    # stop half a second into the commit wait after height 6: no height 7 message yet
    result = run_with_crashes(_exact(n), until_s=heights * interval_s - 0.5)
    blocks = result.blocks
    assert blocks["height"].tolist() == list(range(1, heights + 1))
    assert blocks["proposer"].tolist() == [h % n for h in range(1, heights + 1)]  # (h + 0) mod n
    assert (blocks["round"] == 0).all()
    assert blocks["created_s"].tolist() == [(h - 1) * interval_s for h in range(1, heights + 1)]
    assert (blocks["decided_s"] - blocks["created_s"] == 3 * D).all()
    commits = result.consensus.query("kind == 'block_committed'")
    assert len(commits) == heights * n
    assert (commits["time_s"] == (commits["height"] - 1) * interval_s + 3 * D).all()  # every node at once
    sent = result.messages.groupby("msg_type")["sent_count"].sum().to_dict()
    assert {k: sent[k] for k in ("Proposal", "Prevote", "Precommit")} == {
        "Proposal": heights * (n - 1),
        "Prevote": heights * n * (n - 1),  # all-to-all: quadratic, unlike HotStuff's votes
        "Precommit": heights * n * (n - 1),
    }
    tx = result.transactions
    assert (tx[tx["submit_s"] < (heights - 1) * interval_s - D]["outcome"] == "committed").all()


# -------------------------------------------------------------- round timeouts


def test_crashed_round_0_proposer_moves_height_to_round_1() -> None:
    # Height 2's round-0 proposer is node 2 (2 + 0 mod 4). It crashes during the commit
    # wait. Round 0 starts at t0 = 3D + 1 s; the others prevote nil when timeout_propose(0)
    # = 3 s expires, precommit nil on +2/3 nil prevotes D later, and start round 1 when
    # timeout_precommit(0) = 1 s expires after +2/3 precommits another D later:
    # round 1 starts at t0 + 3 s + 2D + 1 s (Algorithm 1, lines 57-65), not at t0 + 3 s.
    t0 = 3 * D + COMMIT_S
    result = run_with_crashes(_exact(4), until_s=9.0, crashes={0.5: [2]})
    events = result.consensus
    rounds = events.query("kind == 'round_started' and height == 2")
    assert set(rounds.query("round == 0")["time_s"]) == {t0}
    assert set(events.query("kind == 'timeout_propose' and height == 2")["time_s"]) == {t0 + PROPOSE_S}
    t1 = t0 + PROPOSE_S + 2 * D + PRECOMMIT_S
    assert set(rounds.query("round == 1")["time_s"]) == {t1}
    assert sorted(rounds.query("round == 1")["node_id"]) == [0, 1, 3]
    elected = events.query("kind == 'leader_elected' and height == 2")
    assert elected[["round", "leader", "time_s"]].values.tolist() == [[1, 3, t1]]
    block = result.blocks.set_index("height").loc[2]
    assert (block["proposer"], block["round"], block["created_s"], block["decided_s"]) == (3, 1, t1, t1 + 3 * D)
    assert result.summary["safety_violations"] == 0


def test_round_timeouts_grow_by_their_delta_each_round() -> None:
    # n = 7 (f = 2): height 2's proposers of rounds 0 and 1 (nodes 2 and 3) both crash.
    t0 = 3 * D + COMMIT_S
    result = run_with_crashes(_exact(7), until_s=12.0, crashes={0.5: [2, 3]})
    events = result.consensus.query("node_id == 0 and height == 2")
    t1 = t0 + PROPOSE_S + 2 * D + PRECOMMIT_S
    t2 = t1 + (PROPOSE_S + PROPOSE_DELTA_S) + 2 * D + (PRECOMMIT_S + PRECOMMIT_DELTA_S)
    starts = events.query("kind == 'round_started'")[["round", "time_s"]].values.tolist()
    assert starts == [[0, t0], [1, t1], [2, t2]]
    proposes = events.query("kind == 'timeout_propose'")["time_s"].tolist()
    assert proposes == [t0 + PROPOSE_S, t1 + PROPOSE_S + PROPOSE_DELTA_S]
    block = result.blocks.set_index("height").loc[2]
    assert (block["proposer"], block["round"], block["decided_s"]) == (4, 2, t2 + 3 * D)


def test_lagging_replica_catches_up_with_decided_blocks() -> None:
    scenario = small_scenario(protocol__name="tendermint", network__nodes=4, duration_s=12.0)
    world = Simulation(scenario)
    world.run_until(0.5)
    world.nodes[3].crash()
    world.run_until(5.0)
    world.nodes[3].recover()
    world.run_until(12.0)
    result = collect(world, wall_time_s=0.0)
    heights = [node.ledger.height for node in world.nodes]
    assert heights[3] == max(heights) >= 8
    sent = result.messages.groupby("msg_type")["sent_count"].sum().to_dict()
    assert sent["CatchUp"] >= 1
    assert result.summary["safety_violations"] == 0


def test_replica_rejoining_through_a_crash_fault_is_counted_in_the_quorum_again() -> None:
    # Regression: through [[faults]], the framework's block sync (sim/faults/sync.py) used to
    # fill the rejoining replica's ledger behind the protocol's back. Its height stayed behind,
    # its catch-up asked for the block after its ledger, which nobody could decide without it
    # while node 0 was down: 4 of 5 nodes up (f = 1) and no commit from 30 s to 60 s.
    scenario = small_scenario(
        protocol__name="tendermint",
        network__nodes=5,
        workload__rate_tps=5.0,
        duration_s=70.0,
        faults=[
            {"kind": "crash", "nodes": [4], "at_s": 5.0, "until_s": 30.0},
            {"kind": "crash", "nodes": [0], "at_s": 25.0, "until_s": 60.0},
        ],
    )
    result = sim.run(scenario)
    decided = result.blocks["decided_s"]
    assert ((decided > 35.0) & (decided < 60.0)).sum() >= 10  # one height every ~1.1 s
    assert result.nodes["ledger_height"].nunique() == 1
    assert result.summary["invariant_violations"] == 0


# ------------------------------------------------------------------ lock rules


class _Probe:
    """Node 0 of a 4-node network, driven by hand: messages in, broadcasts recorded."""

    def __init__(self) -> None:
        self.world = Simulation(_exact(4, workload__rate_tps=0.0))
        self.proto = self.world.nodes[0].protocol
        assert isinstance(self.proto, Tendermint)
        self.out: list[Message] = []
        self.proto.ctx.broadcast = lambda msg, include_self=False: self.out.append(msg)  # type: ignore[method-assign]
        self.proto.on_start()  # round 0 of height 1; proposers: round r -> node (1 + r) mod 4

    def block(self, proposer: int, round: int) -> Block:
        return self.world.nodes[proposer].ctx.make_block(1, GENESIS_HASH, [], round=round)

    def feed(self, src: int, msg: Message) -> None:
        self.proto.on_message(src, msg)

    def votes(self, kind: type, round: int) -> list[bytes | None]:
        return [m.block_hash for m in self.out if isinstance(m, kind) and m.round == round]  # type: ignore[attr-defined]

    def next_round(self, voters: tuple[int, ...] = (1, 2, 3)) -> None:
        """Everyone else precommits nil; timeout_precommit then starts the next round."""
        p = self.proto
        for src in voters:
            self.feed(src, Precommit(1, p.round, None))
        p.on_timer("timeout_precommit", (1, p.round))


def _lock_on_a_in_round_0(probe: _Probe) -> Block:
    a = probe.block(1, 0)
    probe.feed(1, Proposal(1, 0, a, -1, 0))
    assert probe.votes(Prevote, 0) == [a.block_hash]  # L22: unlocked, prevote the proposal
    probe.feed(1, Prevote(1, 0, a.block_hash))
    probe.feed(2, Prevote(1, 0, a.block_hash))  # with its own: +2/3 prevotes for a
    p = probe.proto
    assert (p.locked_value, p.locked_round, p.valid_round) == (a, 0, 0)  # L36
    assert probe.votes(Precommit, 0) == [a.block_hash]
    probe.next_round()
    assert (p.round, p.step) == (1, "propose")
    return a


def test_locked_replica_prevotes_nil_for_another_value() -> None:
    probe = _Probe()
    _lock_on_a_in_round_0(probe)
    b = probe.block(2, 1)
    probe.feed(2, Proposal(1, 1, b, -1, 0))  # new value, no proof of lock change
    assert probe.votes(Prevote, 1) == [None]


def test_locked_replica_prevotes_its_locked_value_again() -> None:
    probe = _Probe()
    a = _lock_on_a_in_round_0(probe)
    probe.feed(2, Proposal(1, 1, a, 0, 0))  # round 1's proposer re-proposes a with vr = 0
    assert probe.votes(Prevote, 1) == [a.block_hash]


def test_lock_moves_only_with_two_thirds_prevotes_at_or_after_locked_round() -> None:
    probe = _Probe()
    _lock_on_a_in_round_0(probe)
    p = probe.proto
    b = probe.block(2, 1)
    probe.feed(2, Proposal(1, 1, b, -1, 0))
    assert probe.votes(Prevote, 1) == [None]
    probe.feed(1, Prevote(1, 1, b.block_hash))
    probe.feed(2, Prevote(1, 1, b.block_hash))  # two for b and our nil: not +2/3 for b
    assert p.locked_round == 0
    p.on_timer("timeout_prevote", (1, 1))
    probe.next_round()  # round 2, proposer node 3
    probe.feed(3, Proposal(1, 2, b, 1, 0))  # b with vr = 1, but only 2 prevotes for b seen
    assert probe.votes(Prevote, 2) == []  # L28 waits for the proof
    probe.feed(3, Prevote(1, 1, b.block_hash))  # node 3's round-1 prevote arrives late
    assert probe.votes(Prevote, 2) == [b.block_hash]  # +2/3 at vr = 1 >= lockedRound = 0


def test_proof_of_lock_older_than_the_lock_is_not_enough() -> None:
    # The replica locks on x in round 1; +2/3 prevotes for y at round 0 then arrive.
    # A round-2 proposal of y with vr = 0 < lockedRound = 1 gets a nil prevote (L28).
    probe = _Probe()
    p = probe.proto
    x, y = probe.block(2, 1), probe.block(1, 0)
    probe.feed(2, Prevote(1, 1, x.block_hash))
    probe.feed(3, Prevote(1, 1, x.block_hash))  # f + 1 = 2 nodes are in round 1: join (L55)
    assert (p.round, p.step) == (1, "propose")
    probe.feed(2, Proposal(1, 1, x, -1, 0))
    assert probe.votes(Prevote, 1) == [x.block_hash]
    assert (p.locked_value, p.locked_round) == (x, 1)
    for src in (1, 2, 3):
        probe.feed(src, Prevote(1, 0, y.block_hash))  # +2/3 for y, but at round 0
    assert p.locked_round == 1
    probe.next_round()
    probe.feed(3, Proposal(1, 2, y, 0, 0))
    assert probe.votes(Prevote, 2) == [None]


# -------------------------------------------------------------------- checks


def test_check_rejects_an_impossible_f() -> None:
    with pytest.raises(ScenarioError, match=r"f = 2 is impossible for n = 4"):
        small_scenario(protocol__name="tendermint", protocol__f=2)
    scenario = small_scenario(protocol__name="tendermint", network__nodes=7)
    assert Tendermint.crash_tolerance(scenario.protocol, 7) == 2
