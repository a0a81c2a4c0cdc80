"""Raft: exact round trips with fixed delays, elections, leader crash and recovery."""

from __future__ import annotations

import pytest

from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import exact_scenario, small_scenario

D = 0.01  # one-way delay, seconds


def _exact_world(nodes: int = 3, **extra: object) -> Simulation:
    """Fixed delays, free CPU, instant serialization, no client load."""
    return Simulation(exact_scenario("raft", D, **{
        "network__nodes": nodes,
        "protocol__batch_timeout_s": 0.0,
        "protocol__max_block_tx": 1,
        "workload__rate_tps": 0.0,
        **extra,
    }))


def _leader(world: Simulation) -> int:
    leaders = {n.protocol.leader() for n in world.nodes if n.up}
    assert len(leaders) == 1 and None not in leaders, leaders
    return leaders.pop()  # type: ignore[return-value]


def test_single_leader_elected_within_timeout_plus_round_trip() -> None:
    world = _exact_world(nodes=5)
    world.run_until(1.0)
    elected = [r for r in world.recorder.consensus if r.kind == "leader_elected"]
    assert len(elected) == 1
    # the first timeout fires within [150, 300] ms; votes need one round trip
    assert 0.150 + 2 * D <= elected[0].time_s <= 0.300 + 2 * D + 1e-9
    _leader(world)


def test_commit_at_leader_takes_one_round_trip() -> None:
    world = _exact_world()
    world.run_until(1.0)
    leader = _leader(world)
    tx = world.submit_now(leader)
    world.run_until(2.0)
    result = collect(world, 0.0)
    row = result.transactions.set_index("tx_id").loc[tx.tx_id]
    # AppendEntries to followers (d) and their replies (d)
    assert row["decided_s"] - row["submit_s"] == pytest.approx(2 * D, abs=1e-9)
    assert row["latency_s"] == pytest.approx(2 * D, abs=1e-9)


def test_commit_at_follower_takes_two_round_trips() -> None:
    world = _exact_world()
    world.run_until(1.0)
    leader = _leader(world)
    follower = (leader + 1) % 3
    tx = world.submit_now(follower)
    world.run_until(2.0)
    row = collect(world, 0.0).transactions.set_index("tx_id").loc[tx.tx_id]
    # forward to leader (d), append + ack (2d), commit notice back (d)
    assert row["proposed_s"] - row["submit_s"] == pytest.approx(D, abs=1e-9)
    assert row["decided_s"] - row["submit_s"] == pytest.approx(3 * D, abs=1e-9)
    assert row["latency_s"] == pytest.approx(4 * D, abs=1e-9)


def test_new_leader_after_crash_and_commits_resume() -> None:
    world = _exact_world(nodes=5)
    world.run_until(1.0)
    old = _leader(world)
    world.nodes[old].crash()
    crash_s = world.env.now
    world.run_until(2.0)
    new = _leader(world)
    assert new != old
    elected = [r for r in world.recorder.consensus if r.kind == "leader_elected" and r.time_s > crash_s]
    assert len(elected) == 1
    # followers notice within one timeout range after the last heartbeat, then one round trip of votes
    assert elected[0].time_s - crash_s <= 0.300 + 2 * D + 1e-9
    origin = (new + 1) % 5 if (new + 1) % 5 != old else (new + 2) % 5
    tx = world.submit_now(origin)
    world.run_until(3.0)
    result = collect(world, 0.0)
    assert result.transactions.set_index("tx_id").loc[tx.tx_id, "outcome"] == "committed"
    assert result.summary["safety_violations"] == 0
    assert result.summary["conservation_violations"] == 0


def test_recovered_node_catches_up() -> None:
    world = _exact_world(nodes=3)
    world.run_until(1.0)
    leader = _leader(world)
    lagging = (leader + 1) % 3
    world.nodes[lagging].crash()
    for _ in range(5):
        world.submit_now(leader)
    world.run_until(2.0)
    assert world.nodes[lagging].ledger.height < world.nodes[leader].ledger.height
    world.nodes[lagging].recover()
    world.run_until(3.0)
    assert world.nodes[lagging].ledger.height == world.nodes[leader].ledger.height
    assert world.nodes[lagging].ledger.head_hash == world.nodes[leader].ledger.head_hash


def test_majority_crashed_stops_commits() -> None:
    world = _exact_world(nodes=5)
    world.run_until(1.0)
    leader = _leader(world)
    others = [i for i in range(5) if i != leader][:3]
    for i in others:
        world.nodes[i].crash()
    tx = world.submit_now(leader)
    world.run_until(4.0)
    row = collect(world, 0.0).transactions.set_index("tx_id").loc[tx.tx_id]
    assert row["outcome"] == "pending"


def test_check_rejects_heartbeat_not_shorter_than_timeout() -> None:
    from sim.errors import ScenarioError

    with pytest.raises(ScenarioError, match="heartbeat_s"):
        small_scenario(protocol__heartbeat_s=0.2)
