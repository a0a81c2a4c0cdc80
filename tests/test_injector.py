"""The injector: crashes, partitions, link degradations, churn, clock skew and catch-up.

Exact-value cases use a 2-node ``solo`` network with fixed delays and no CPU cost,
where a transaction submitted at node 1 commits after exactly two one-way delays
(forward to the orderer, block back) plus serialization.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim
from sim.config import Scenario
from sim.consensus.base import MESSAGE_HEADER_BYTES
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import small_scenario

D = 0.01  # one-way delay, seconds
FORWARD_BYTES = MESSAGE_HEADER_BYTES + 1100  # a ForwardTx carrying one claim


def _exact_solo(faults: list[dict[str, Any]], **extra: Any) -> Scenario:
    keys: dict[str, Any] = {
        "duration_s": 10.0,
        "seed": 5,
        "network__nodes": 2,
        "network__latency_s": D,
        "network__bandwidth_bps": 1e15,
        "protocol__name": "solo",
        "protocol__max_block_tx": 1,
        "protocol__batch_timeout_s": 0.0,
        "node__sign_s": 0.0,
        "node__verify_s": 0.0,
        "node__hash_rate_bps": 1e30,
        "node__execute_scale": 0.0,
        "workload__rate_tps": 2.0,
        "workload__origins": [1],
        "workload__insurers": [0],  # node 1 is then a provider and sends the claims
        "faults": faults,
        **extra,
    }
    return small_scenario(**keys)


def _raft(faults: list[dict[str, Any]], **extra: Any) -> Scenario:
    keys: dict[str, Any] = {"network__nodes": 5, "duration_s": 8.0, "faults": faults, **extra}
    return small_scenario(**keys)


def _rows(result: sim.RunResult, *actions: str) -> list[tuple[float, str, str]]:
    f = result.faults
    f = f[f["action"].isin(actions)]
    return [(round(t, 9), a, n) for t, a, n in zip(f["time_s"], f["action"], f["nodes"])]


# ------------------------------------------------------------------ links


def test_degrade_adds_exactly_its_delay_to_the_links_it_covers() -> None:
    spec = {"kind": "degrade", "nodes": [1], "extra_delay_s": 0.05, "at_s": 3.0, "until_s": 6.0}
    tx = sim.run(_exact_solo([spec])).transactions
    before = tx[tx["submit_s"] < 3.0 - 2 * D]
    inside = tx[(tx["submit_s"] >= 3.0) & (tx["submit_s"] < 6.0 - 2 * (D + 0.05))]
    after = tx[tx["submit_s"] >= 6.0]
    assert len(before) and len(inside) and len(after)
    assert np.allclose(before["latency_s"], 2 * D, atol=1e-9)
    assert np.allclose(inside["latency_s"], 2 * (D + 0.05), atol=1e-9)
    assert np.allclose(after["latency_s"], 2 * D, atol=1e-9)


def test_a_bandwidth_cap_slows_the_uplinks_in_scope_only() -> None:
    spec = {"kind": "degrade", "nodes": [1], "bandwidth_bps": 1e5, "at_s": 3.0, "until_s": 6.0}
    tx = sim.run(_exact_solo([spec])).transactions
    inside = tx[(tx["submit_s"] >= 3.0) & (tx["submit_s"] < 5.0)]
    serialize_s = FORWARD_BYTES * 8 / 1e5  # node 1's uplink; the orderer's block comes back at full speed
    assert inside["latency_s"].min() == pytest.approx(2 * D + serialize_s, abs=1e-9)
    assert (inside["latency_s"] >= 2 * D + serialize_s - 1e-9).all()  # queued behind each other at most


def test_a_lossy_link_loses_the_transactions_it_carries_and_says_so() -> None:
    spec = {"kind": "degrade", "links": [[0, 1]], "loss_rate": 1.0, "at_s": 3.0, "until_s": 6.0}
    result = sim.run(_exact_solo([spec]))
    tx = result.transactions
    inside = tx[(tx["submit_s"] >= 3.0) & (tx["submit_s"] < 6.0)]
    assert len(inside) > 0
    assert (inside["outcome"] == "dropped").all()
    assert set(inside["reason"]) == {"message ForwardTx lost"}
    assert (tx.loc[tx["submit_s"] >= 6.0, "outcome"] == "committed").all()
    assert result.summary["conservation_violations"] == 0


def test_degradations_compose_per_link() -> None:
    faults = [
        {"kind": "degrade", "nodes": [1], "extra_delay_s": 0.05, "loss_rate": 0.5, "at_s": 1.0, "until_s": 3.0},
        {"kind": "degrade", "extra_delay_s": 0.01, "loss_rate": 0.2, "bandwidth_bps": 1e6, "at_s": 2.0, "until_s": 4.0},
    ]
    world = Simulation(_exact_solo(faults))
    net = world.network
    world.run_until(1.5)
    assert net.link(0, 1) == pytest.approx((D + 0.05, 0.0, 0.5, 1e15))
    world.run_until(2.5)
    assert net.link(0, 1) == pytest.approx((D + 0.06, 0.0, 1 - 0.5 * 0.8, 1e6))
    assert net.link(1, 0) == pytest.approx((D + 0.06, 0.0, 1 - 0.5 * 0.8, 1e6))
    world.run_until(3.5)
    assert net.link(0, 1) == pytest.approx((D + 0.01, 0.0, 0.2, 1e6))
    world.run_until(4.5)
    assert net.link(0, 1) == pytest.approx((D, 0.0, 0.0, 1e15)) and not net.link_rules


def test_jitter_in_a_degrade_stays_within_its_bound() -> None:
    spec = {"kind": "degrade", "extra_delay_s": 0.0, "jitter_s": 0.03, "at_s": 0.0}
    lat = sim.run(_exact_solo([spec])).transactions["latency_s"].dropna()
    assert lat.min() >= 2 * D - 1e-9
    assert lat.max() <= 2 * (D + 0.03) + 1e-9
    assert lat.std() > 0.005  # it does spread


# ---------------------------------------------------------------- crashes


def test_crash_and_recovery_rows_are_exact() -> None:
    result = sim.run(_raft([{"kind": "crash", "nodes": [3, 4], "at_s": 2.0, "until_s": 4.0}]))
    assert _rows(result, "crash", "recover") == [(2.0, "crash", "3"), (2.0, "crash", "4"), (4.0, "recover", "3"), (4.0, "recover", "4")]
    nodes = result.nodes.set_index("node_id")
    assert nodes["up"].all()


def test_crashing_the_leader_crashes_the_node_the_others_follow() -> None:
    scenario = _raft([{"kind": "crash", "nodes": "leader", "at_s": 3.0}])
    world = Simulation(scenario)
    world.run_until(3.0 - 1e-9)
    assert world.faults is not None
    leader = world.faults.current_leader()
    assert leader is not None and world.nodes[leader].protocol.role == "leader"  # type: ignore[attr-defined]
    followers = [n.protocol.leader() for n in world.nodes if n.node_id != leader]
    assert followers == [leader] * 4
    world.run_until(scenario.duration_s)
    result = collect(world, 0.0)
    assert _rows(result, "crash") == [(3.0, "crash", str(leader))]
    assert result.recovery.loc[0, "detail"] == "the leader"


def test_a_leader_target_waits_until_a_leader_is_known() -> None:
    result = sim.run(_raft([{"kind": "crash", "nodes": "leader", "at_s": 0.01, "until_s": 2.0}]))
    (time_s, _, node), = _rows(result, "crash")
    first_leader = result.consensus.loc[result.consensus["kind"] == "leader_elected"].iloc[0]
    assert time_s == pytest.approx(first_leader["time_s"], abs=0.0101)  # polled every 10 ms
    assert node == str(first_leader["node_id"])


def test_a_recovered_raft_follower_catches_up_and_its_cost_is_recorded() -> None:
    result = sim.run(_raft([{"kind": "crash", "nodes": [4], "at_s": 2.0, "until_s": 5.0}], duration_s=7.0))
    (row,) = result.faults[result.faults["action"] == "caught_up"].to_dict("records")
    fields = dict(part.split("=") for part in row["detail"].split())
    assert row["nodes"] == "4" and 5.0 < row["time_s"] < 5.5
    assert int(fields["blocks"]) > 10
    assert int(fields["received_bytes"]) >= int(fields["block_bytes"]) > 0
    assert result.summary["safety_violations"] == 0


def test_block_sync_brings_a_solo_replica_back_and_costs_real_messages() -> None:
    scenario = small_scenario(protocol__name="solo", faults=[{"kind": "crash", "nodes": [2], "at_s": 3.0, "until_s": 6.0}])
    world = Simulation(scenario)
    world.run_until(6.0 - 1e-9)
    start, target = world.nodes[2].ledger.height, world.nodes[0].ledger.height
    world.run_until(scenario.duration_s)
    result = collect(world, 0.0)
    replica = world.nodes[2]
    assert target - start > 10  # solo alone would never deliver these: it has no catch-up of its own
    assert replica.synced_through >= target
    assert replica.ledger.height >= world.nodes[0].ledger.height - 1
    msgs = result.messages.set_index(["node_id", "msg_type"])
    batches = int(msgs.loc[(2, "SyncBlocks"), "received_count"])
    synced = [replica.ledger.block_at(h) for h in range(start + 1, replica.synced_through + 1)]
    assert int(msgs.loc[(2, "SyncBlocks"), "received_bytes"]) == batches * MESSAGE_HEADER_BYTES + sum(b.size_bytes for b in synced)
    assert int(msgs.loc[(2, "SyncRequest"), "sent_count"]) == batches
    assert (result.faults["action"] == "caught_up").sum() == 1
    assert result.summary["safety_violations"] == 0 and result.summary["conservation_violations"] == 0


def test_majority_crash_stalls_and_the_summary_says_so() -> None:
    result = sim.run(_raft([{"kind": "crash", "nodes": [1, 2, 3], "at_s": 3.0}]))
    s = result.summary
    assert s["stalled"] is True
    assert s["recover_s"] != s["recover_s"]  # NaN: never
    assert bool(result.recovery.loc[0, "recovered"]) is False
    decided = result.transactions["decided_s"]
    assert not (decided > 3.1).any()
    assert s["safety_violations"] == 0 and s["conservation_violations"] == 0


# ------------------------------------------------------------- partitions


def _heights(world: Simulation) -> list[int]:
    return [n.ledger.height for n in world.nodes]


def _assert_nothing_committed_is_lost(world: Simulation, committed: list[bytes]) -> None:
    """Blocks committed before a fault are still at their heights in every final ledger."""
    for node in world.nodes:
        for height, block_hash in enumerate(committed, start=1):
            assert node.ledger.hash_at(height) == block_hash, (node.node_id, height)


def _partition_run(groups: list[list[int]]) -> tuple[Simulation, list[int], list[int], list[bytes]]:
    scenario = _raft([{"kind": "partition", "groups": groups, "at_s": 2.0, "until_s": 5.0}], duration_s=9.0)
    world = Simulation(scenario)
    world.run_until(2.0)
    committed = [b.block_hash for b in world.nodes[0].ledger.blocks[: min(_heights(world))]]
    world.run_until(2.5)  # in-flight commits settle
    early = _heights(world)
    world.run_until(5.0 - 1e-9)
    late = _heights(world)
    world.run_until(scenario.duration_s)
    return world, early, late, committed


def test_a_partition_without_a_quorum_anywhere_halts_commits_and_heals() -> None:
    world, early, late, committed = _partition_run([[0], [1, 2]])  # and [3, 4]: 1/2/2 of 5
    assert late == early  # no side has 3 of 5: nobody commits
    result = collect(world, 0.0)
    decided = result.transactions["decided_s"]
    assert not ((decided > 2.5) & (decided < 5.0)).any()
    assert (decided > 5.5).any()  # commits resume after the heal
    _assert_nothing_committed_is_lost(world, committed)
    s = result.summary
    assert (s["safety_violations"], s["ledger_violations"], s["committed_lost"], s["conservation_violations"]) == (0, 0, 0, 0)
    assert result.recovery.loc[0, "recover_s"] > 3.0  # recovery only after the heal


@pytest.mark.parametrize("leader_in_minority", [True, False])
def test_a_minority_side_halts_while_the_majority_commits(leader_in_minority: bool) -> None:
    probe = Simulation(_raft([]))
    probe.run_until(2.0)
    assert probe.faults is None
    leader = next(n.node_id for n in probe.nodes if n.protocol.leader() == n.node_id)
    others = [i for i in range(5) if i != leader]
    minority = [leader, others[0]] if leader_in_minority else others[:2]
    world, early, late, committed = _partition_run([minority])
    majority = [i for i in range(5) if i not in minority]
    assert all(late[i] == early[i] for i in minority)
    assert all(late[i] > early[i] + 10 for i in majority)
    _assert_nothing_committed_is_lost(world, committed)
    result = collect(world, 0.0)
    caught = result.faults[result.faults["action"] == "caught_up"]
    assert sorted(int(n) for n in caught["nodes"]) == sorted(minority)
    s = result.summary
    assert (s["safety_violations"], s["ledger_violations"], s["committed_lost"], s["conservation_violations"]) == (0, 0, 0, 0)
    lost = result.recovery.loc[0, "txs_lost"]
    assert (lost > 0) == leader_in_minority  # the isolated leader's uncommitted entries are overwritten


def test_isolating_a_node_is_a_partition_of_one() -> None:
    world = Simulation(_raft([{"kind": "isolate", "node": 2, "at_s": 2.0, "until_s": 4.0}]))
    world.run_until(3.0)
    assert world.network.group[2] != world.network.group[0] == world.network.group[4]
    world.run_until(4.0 + 1e-9)
    assert len(set(world.network.group)) == 1


def test_partitions_intersect() -> None:
    faults = [
        {"kind": "partition", "groups": [[0, 1]], "at_s": 1.0, "until_s": 3.0},
        {"kind": "partition", "groups": [[1, 2]], "at_s": 2.0, "until_s": 4.0},
    ]
    world = Simulation(_raft(faults))
    world.run_until(2.5)
    g = world.network.group
    cells = {frozenset(i for i in range(5) if g[i] == c) for c in set(g)}
    assert cells == {frozenset({0}), frozenset({1}), frozenset({2}), frozenset({3, 4})}
    world.run_until(3.5)
    assert len(set(world.network.group)) == 2
    world.run_until(4.5)
    assert len(set(world.network.group)) == 1


# ------------------------------------------------------------------ churn


def _down_counts(faults: pd.DataFrame) -> list[int]:
    down: set[str] = set()
    counts = []
    for action, node in zip(faults["action"], faults["nodes"]):
        if action == "crash":
            down.add(node)
        elif action == "recover":
            down.discard(node)
        counts.append(len(down))
    return counts


def test_churn_respects_its_cap_is_reproducible_and_leaves_the_workload_alone() -> None:
    churn = {"kind": "churn", "mtbf_s": 2.0, "mttr_s": 0.5, "max_down": 2, "until_s": 7.0}
    first = sim.run(_raft([churn]))
    again = sim.run(_raft([churn]))
    other = sim.run(_raft([churn], seed=8))
    calm = sim.run(_raft([]))
    crashes = first.faults[first.faults["action"] == "crash"]
    assert len(crashes) >= 5
    assert max(_down_counts(first.faults)) == 2
    assert _down_counts(first.faults)[-1] == 0  # everyone churn crashed recovers when it stops
    pd.testing.assert_frame_equal(first.faults, again.faults)
    assert not first.faults["time_s"].equals(other.faults["time_s"])
    assert np.array_equal(first.transactions["submit_s"], calm.transactions["submit_s"])  # own random stream
    s = first.summary
    assert (s["safety_violations"], s["conservation_violations"], s["committed_lost"]) == (0, 0, 0)


# ------------------------------------------------------------- clock skew


def test_a_leader_with_a_slow_clock_loses_its_followers() -> None:
    quiet = {"workload__rate_tps": 0.0, "duration_s": 6.0}  # heartbeats only
    base = sim.run(_raft([], **quiet))
    leader = int(base.consensus.loc[base.consensus["kind"] == "leader_elected", "node_id"].iloc[0])
    # 5x slow: its 50 ms heartbeats take 250 ms, beyond the followers' 150-300 ms timeouts
    slow = sim.run(_raft([{"kind": "clock_skew", "nodes": [leader], "drift": -0.8, "at_s": 2.0}], **quiet))
    everyone = sim.run(_raft([{"kind": "clock_skew", "nodes": [0, 1, 2, 3, 4], "drift": -0.8, "at_s": 2.0}], **quiet))
    assert base.summary["leader_changes"] == 1
    assert slow.summary["leader_changes"] >= 2
    assert slow.consensus.loc[slow.consensus["kind"] == "leader_elected", "time_s"].iloc[1] > 2.0
    assert everyone.summary["leader_changes"] == 1  # no relative skew, no effect
    assert slow.summary["safety_violations"] == 0


def test_a_constant_clock_offset_is_invisible_to_relative_timers() -> None:
    base = sim.run(_raft([]))
    ahead = sim.run(_raft([{"kind": "clock_skew", "nodes": [0, 2], "offset_s": 1000.0}]))
    assert ahead.summary["committed"] == base.summary["committed"]
    assert ahead.summary["leader_changes"] == base.summary["leader_changes"]
    assert ahead.blocks["created_s"].max() < 10.0  # tables stay in true time
    assert math.isclose(ahead.nodes["mempool_mean_tx"].sum(), base.nodes["mempool_mean_tx"].sum(), rel_tol=1e-6)
