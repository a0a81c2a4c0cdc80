"""Tests for sim.consensus.hotstuff: exact message counts, commit latency, pacemaker.

Deterministic runs use a full mesh with one-way delay D = 1/64 s (a binary fraction, so
every sum of delays is exact in floating point), no CPU cost and a bandwidth so large
that serialization vanishes below one ulp. With ``batch_timeout_s = 0`` and no
workload, leaders propose empty blocks at once and the schedule is:

- view v (leader v mod n) is proposed at 2D(v - 1): the proposal takes D to reach the
  replicas, their votes D to reach leader(v + 1), which then forms the QC and proposes;
- the block of view v heads a Three-Chain when leader(v + 3) forms the QC of view v + 2
  and proposes view v + 3, at 2D(v + 2): it commits there 6D (three views) after its
  proposal, and at every other replica D later, on receiving that proposal (7D).
"""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.consensus.base import Message
from sim.consensus.hotstuff import (
    GENESIS_QC,
    QC,
    HotStuff,
    HotStuffParams,
    Proposal,
    Vote,
)
from sim.errors import ScenarioError
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.ledger import GENESIS_HASH, HEADER_BYTES, Block
from tests.conftest import exact_scenario, run_with_crashes, small_scenario

D = 1 / 64


def _exact(n: int, **extra: Any) -> sim.Scenario:
    return exact_scenario("hotstuff", D, **{
        "network__nodes": n,
        "protocol__batch_timeout_s": 0.0,
        "workload__rate_tps": 0.0,
        "duration_s": 10.0,
        **extra,
    })


def _sent(result: sim.RunResult) -> dict[str, int]:
    return result.messages.groupby("msg_type")["sent_count"].sum().to_dict()


# ------------------------------------------------------------------ messages


@pytest.mark.parametrize("n", [4, 7, 10])
def test_each_view_sends_n_minus_1_proposals_and_n_minus_1_votes(n: int) -> None:
    # Views 1..K+1 are proposed by 2DK; stopping at 2DK + 1.5D every vote of view K+1
    # has been sent (the leader's own at 2DK, the others' at 2DK + D) and view K+2 not yet.
    # Votes are n - 1, not n: leader(v + 1) counts its own vote without a message.
    views = 21
    result = run_with_crashes(_exact(n), until_s=2 * D * (views - 1) + 1.5 * D)
    assert _sent(result) == {"Proposal": views * (n - 1), "Vote": views * (n - 1)}
    proposers = result.consensus.query("kind == 'leader_elected'")
    assert proposers["view"].tolist() == list(range(1, views + 1))
    assert proposers["leader"].tolist() == [v % n for v in range(1, views + 1)]


def test_messages_per_view_grow_linearly_while_pbft_grows_quadratically() -> None:
    views = 11
    per_view = {}
    for n in (4, 7, 10):
        sent = _sent(run_with_crashes(_exact(n), until_s=2 * D * (views - 1) + 1.5 * D))
        per_view[n] = (sent["Proposal"] + sent["Vote"]) / views
    assert per_view == {4: 6.0, 7: 12.0, 10: 18.0}  # 2(n - 1)
    assert {n: m / (n - 1) for n, m in per_view.items()} == {4: 2.0, 7: 2.0, 10: 2.0}
    # PBFT normal case per request: pre-prepare n-1, prepare (n-1)^2, commit n(n-1)
    pbft = {n: (n - 1) + (n - 1) ** 2 + n * (n - 1) for n in per_view}
    assert pbft == {4: 24, 7: 84, 10: 180}
    assert per_view[10] - per_view[7] == per_view[7] - per_view[4]  # equal steps: linear
    assert pbft[10] - pbft[7] > pbft[7] - pbft[4]  # growing steps: quadratic


def test_proposal_size_and_verification_count_include_the_qc() -> None:
    n, q = 10, 7  # f = 3, QC of n - f = 7 signatures
    block = Block.build(2, GENESIS_HASH, 0, 0.0, (), (), 0, round=2)
    msg = Proposal(block, QC(1, 1, GENESIS_HASH, q))
    assert msg.signatures == 1 + q
    assert msg.size_bytes() == 128 + HEADER_BYTES + (16 + 32 + 64 * q)
    result = run_with_crashes(_exact(n), until_s=2 * D * 3 + 1.5 * D)  # views 1..4
    rows = result.messages.query("msg_type == 'Proposal'")
    # view 1 carries the genesis QC (no signatures), views 2..4 a QC of 7 signatures
    assert int(rows["sent_bytes"].sum()) == (n - 1) * (4 * (128 + HEADER_BYTES + 48) + 3 * 64 * q)


# -------------------------------------------------------------- commit latency


@pytest.mark.parametrize("n", [4, 7])
def test_block_commits_three_views_after_its_proposal(n: int) -> None:
    result = run_with_crashes(_exact(n), until_s=2 * D * 20)
    blocks = result.blocks
    assert len(blocks) >= 15
    for row in blocks.itertuples():
        view = row.round
        assert row.height == view  # no failed view: one block per view
        assert row.created_s == 2 * D * (view - 1)
        assert row.decided_s == row.created_s + 6 * D  # first commit: leader(view + 3)
    commits = result.consensus.query("kind == 'block_committed' and view <= 12")
    for row in commits.itertuples():
        proposed_s = 2 * D * (row.view - 1)
        expected = proposed_s + (6 * D if row.node_id == (row.view + 3) % n else 7 * D)
        assert row.time_s == expected
    assert len(commits) == 12 * n


def test_transactions_commit_exactly_once_six_delays_after_their_block() -> None:
    scenario = _exact(4, workload__rate_tps=50.0, duration_s=3.0)
    world = Simulation(scenario)
    world.run_until(3.0)
    result = collect(world, wall_time_s=0.0)
    tx = result.transactions
    assert (tx[tx["submit_s"] < 2.5]["outcome"] == "committed").all()
    ids = [t for b in world.nodes[0].ledger.blocks for t in b.tx_ids]
    assert len(ids) == len(set(ids)) > 100  # leaders skip what the chain they extend holds
    decided = tx.dropna(subset=["decided_s"]).merge(result.blocks[["height", "created_s"]], on="height")
    assert ((decided["decided_s"] - decided["created_s"]) == 6 * D).all()


def test_transactions_sent_to_dead_leaders_are_forwarded_again() -> None:
    # Origins forward to the leaders of the next two views. With nodes 4 and 5 of 7 down,
    # transactions sent while view 3 runs reach no live leader; their origins forward
    # them again after a view timeout, so they commit, each exactly once.
    scenario = _exact(7, workload__rate_tps=50.0, workload__origins=[0, 1, 2, 3, 6], duration_s=8.0)
    world = Simulation(scenario)
    world.run_until(0.5)
    world.nodes[4].crash()
    world.nodes[5].crash()
    world.run_until(8.0)
    result = collect(world, wall_time_s=0.0)
    tx = result.transactions
    assert (tx[tx["submit_s"] < 3.0]["outcome"] == "committed").all()
    ids = [t for b in world.nodes[0].ledger.blocks for t in b.tx_ids]
    assert len(ids) == len(set(ids))
    forwards = int(result.messages.query("msg_type == 'TxToLeader'")["sent_count"].sum())
    assert forwards > 2 * len(tx)  # more than the first two copies: forwarded again
    assert result.summary["safety_violations"] == 0


# ------------------------------------------------------------------ pacemaker


def test_crashed_next_leader_costs_one_view_timeout_then_views_continue() -> None:
    # n = 7: leader(11) = node 4 crashes after view 10 is proposed (at 18D).
    n, timeout_s = 7, 1.0
    result = run_with_crashes(_exact(n, duration_s=4.0), until_s=3.0, crashes={18 * D + D / 2: [4]})
    events = result.consensus
    # leader(10) = node 3 entered view 11 on its own proposal at 18D, the others on
    # receiving it at 19D; all time out one view timeout later, and the NEW-VIEWs
    # complete a quorum at leader(12) = node 5 at 20D + 1 s.
    timeouts = events.query("kind == 'view_timeout' and view == 11").set_index("node_id")["time_s"]
    assert timeouts.to_dict() == {3: 18 * D + timeout_s} | {i: 19 * D + timeout_s for i in (0, 1, 2, 5, 6)}
    elected = events.query("kind == 'leader_elected'").set_index("view")
    assert 11 not in elected.index
    for view in range(12, 18):  # views continue every 2D after the timeout
        assert elected.loc[view, "time_s"] == 20 * D + timeout_s + 2 * D * (view - 12)
        assert elected.loc[view, "leader"] == view % n
    # view 18's leader is node 4 again: a second, single timeout (the count was reset)
    second = events.query("kind == 'view_timeout' and view == 18").set_index("node_id")["time_s"]
    view_17_s = 20 * D + timeout_s + 10 * D
    assert second.to_dict() == {3: view_17_s + timeout_s} | {i: view_17_s + D + timeout_s for i in (0, 1, 2, 5, 6)}
    blocks = result.blocks.set_index("height")
    # view 10's block never got a QC; view 12's block extends view 9's (height 10) and
    # commits (with views 8 and 9, which waited for a Three-Chain) at leader(15).
    assert 10 not in set(result.blocks["round"])
    assert blocks.loc[10, "round"] == 12
    commit_s = 20 * D + timeout_s + 6 * D
    assert [blocks.loc[h, "decided_s"] for h in (8, 9, 10)] == [commit_s] * 3
    assert result.summary["safety_violations"] == 0
    assert result.summary["ledger_violations"] == 0


def test_round_robin_commit_needs_four_consecutive_live_leaders() -> None:
    # n = 4 with one crash: every window of four views has a dead leader, so no block
    # is ever certified by three consecutive QCs. Views go on, nothing commits, nothing forks.
    # Node 3 crashes at 0.5 s = 32D, after view 17 was proposed; view 18's proposal is
    # in flight, so view 15's block still commits at 34D (6D after its proposal at 28D).
    result = run_with_crashes(_exact(4, duration_s=12.0), until_s=12.0, crashes={0.5: [3]})
    assert result.blocks["round"].tolist() == list(range(1, 16))
    assert result.blocks["decided_s"].max() == 34 * D
    assert result.consensus.query("kind == 'leader_elected' and time_s > 0.5").shape[0] >= 20
    assert result.summary["safety_violations"] == 0
    params = HotStuffParams()
    assert [HotStuff.crash_tolerance(params, n) for n in (4, 5, 7, 10, 16)] == [0, 1, 1, 2, 3]


def test_repeated_timeouts_double_and_recovered_replicas_resynchronise() -> None:
    # Nodes 1 and 2 of 4 crash before view 1's proposal arrives: no quorum. Nodes 0 and 3
    # time out in views 1, 2, 3 after 1, 2 and 4 s (doubling), broadcasting NEW-VIEW from
    # the second timeout on. After recovery at 9 s, node 1 times out of its view 2 at 10 s
    # and its NEW-VIEW for view 3 completes the quorum at leader(3) = node 3 (10 s + D),
    # which proposes view 3 although its own pacemaker is already in view 4.
    world = Simulation(_exact(4, duration_s=20.0))
    world.run_until(D / 2)
    world.nodes[1].crash()
    world.nodes[2].crash()
    world.run_until(9.0)
    world.nodes[1].recover()
    world.nodes[2].recover()
    world.run_until(12.0)
    result = collect(world, wall_time_s=0.0)
    events = result.consensus
    times = events.query("kind == 'view_timeout' and node_id == 0")["time_s"].tolist()
    assert times == [1.0, 3.0, 7.0]
    elected = events.query("kind == 'leader_elected' and view >= 3").set_index("view")
    for view in range(3, 12):
        assert elected.loc[view, "time_s"] == 10.0 + D + 2 * D * (view - 3)
    assert result.blocks["round"].tolist()[:3] == [3, 4, 5]
    assert result.summary["safety_violations"] == 0


def test_lagging_replica_catches_up_by_block_sync() -> None:
    scenario = small_scenario(protocol__name="hotstuff", network__nodes=5, duration_s=8.0)
    world = Simulation(scenario)
    world.run_until(1.0)
    world.nodes[2].crash()
    world.run_until(4.0)
    world.nodes[2].recover()
    world.run_until(8.0)
    result = collect(world, wall_time_s=0.0)
    heights = [node.ledger.height for node in world.nodes]
    assert max(heights) - heights[2] <= 1
    assert _sent(result).get("SyncRequest", 0) > 0
    assert result.summary["safety_violations"] == 0
    tx = result.transactions
    early = tx[tx["submit_s"] < 5.0]
    assert (early[early["origin"] != 2]["outcome"] == "committed").all()
    lost = early[early["outcome"] != "committed"]
    assert set(lost["reason"]) <= {"node crashed", "origin node down"}


def test_replica_rejoining_through_a_crash_fault_catches_up_and_keeps_voting() -> None:
    # Regression: through [[faults]], the framework's block sync (sim/faults/sync.py) used to
    # fill the rejoining replica's ledger behind the protocol's back. Its own chain stayed
    # behind, so it could never link new proposals (buffered forever), stopped voting and
    # proposing, and every one of its leader turns cost the others a view timeout (or, with
    # other timing, _commit raised "block of view ... does not extend the ledger").
    scenario = small_scenario(
        protocol__name="hotstuff",
        protocol__view_timeout_s=5.0,
        network__nodes=5,
        workload__rate_tps=5.0,
        duration_s=40.0,
        faults=[{"kind": "crash", "nodes": [4], "at_s": 5.0, "until_s": 20.0}],
    )
    result = sim.run(scenario)
    heights = result.nodes["ledger_height"]
    assert heights.max() - heights.min() <= 1
    events = result.consensus
    assert events.query("kind == 'view_timeout' and time_s > 21.0").empty  # node 4 leads its views again
    assert not events.query("kind == 'leader_elected' and node_id == 4 and time_s > 21.0").empty
    assert "caught_up" in set(result.faults["action"])
    assert result.summary["invariant_violations"] == 0


# --------------------------------------------------------------- safety rule


def test_vote_rule_respects_the_lock_unless_the_justify_qc_is_newer() -> None:
    world = Simulation(_exact(4))
    replica = world.nodes[0].protocol
    assert isinstance(replica, HotStuff)
    sent: list[tuple[int, Message]] = []
    replica.ctx.send = lambda dst, msg: sent.append((dst, msg))  # type: ignore[method-assign]
    replica.on_start()  # node 0 of 4: leader of views 4, 8, ...

    def block(view: int, parent: Block | None, justify: QC) -> Proposal:
        height = parent.height + 1 if parent else 1
        prev = parent.block_hash if parent else GENESIS_HASH
        return Proposal(world.nodes[view % 4].ctx.make_block(height, prev, [], round=view), justify)

    def qc(p: Proposal) -> QC:
        return QC(p.block.round, p.block.height, p.block.block_hash, 3)

    def votes() -> list[tuple[int, int]]:
        return [(dst, m.view) for dst, m in sent if isinstance(m, Vote)]

    b1 = block(1, None, GENESIS_QC)
    b2 = block(2, b1.block, qc(b1))
    b3 = block(3, b2.block, qc(b2))
    for p in (b1, b2, b3):
        replica.on_message(p.block.round % 4, p)
    assert votes() == [(2, 1), (3, 2)]  # the vote for view 3 goes to itself, leader(4)
    assert (replica.lock.view, replica.high_qc.view) == (1, 2)  # b3 carries QC(b2) -> lock b1
    fork = block(4, None, GENESIS_QC)  # conflicts with b1, justify older than the lock
    replica.on_message(0, fork)
    assert votes() == [(2, 1), (3, 2)]
    newer = block(6, fork.block, qc(fork))  # conflicts with b1, but justify view 4 > lock 1
    replica.on_message(2, newer)
    assert votes() == [(2, 1), (3, 2), (3, 6)]
    replica.on_message(2, block(6, b3.block, qc(b3)))  # leader 6 equivocates: a second block
    assert len(votes()) == 3  # one vote per view


# -------------------------------------------------------------------- checks


def test_check_rejects_an_impossible_f() -> None:
    with pytest.raises(ScenarioError, match=r"f = 2 is impossible for n = 4"):
        small_scenario(protocol__name="hotstuff", protocol__f=2)
    with pytest.raises(ScenarioError, match="batch_timeout_s = 1.0 must be below view_timeout_s = 1.0"):
        small_scenario(protocol__name="hotstuff", protocol__batch_timeout_s=1.0)
    scenario = small_scenario(protocol__name="hotstuff", network__nodes=7, protocol__f=1)
    assert HotStuff.crash_tolerance(scenario.protocol, 7) == 1
