"""Tests for sim.network.gossip: bulk flooding equals message-by-message flooding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.consensus.chain import ChainProtocol
from sim.experiment.result import collect
from sim.experiment.simulation import CountingEnvironment, Simulation
from sim.network.gossip import FloodGraph, flood, hop_costs, schedule_arrivals
from tests.conftest import small_scenario

# 0 - 1, 0 - 2, 1 - 3, 2 - 3, 3 - 4 with one-way delays 1, 3, 1, 0.5, 2 s
PEERS = ((1, 2), (0, 3), (0, 3), (1, 2, 4), (3,))
DELAY = np.zeros((5, 5))
for (u, v), d in {(0, 1): 1.0, (0, 2): 3.0, (1, 3): 1.0, (2, 3): 0.5, (3, 4): 2.0}.items():
    DELAY[u, v] = DELAY[v, u] = d
SIZE_BYTES = 1000
BANDWIDTH = np.full(5, 8000.0)  # 1 s to serialize one copy
RELAY_S = 0.1


def _flood(**kwargs: Any) -> Any:
    graph = FloodGraph.build(PEERS, DELAY)
    wire = hop_costs(graph, SIZE_BYTES, BANDWIDTH)
    return flood(graph, 0, 10.0, wire, RELAY_S, **kwargs)


def test_flood_graph_layout() -> None:
    graph = FloodGraph.build(PEERS, DELAY)
    assert graph.indptr.tolist() == [0, 2, 4, 6, 9, 10]
    assert graph.dst.tolist() == [1, 2, 0, 3, 0, 3, 1, 2, 4, 3]
    assert graph.slot.tolist() == [1, 2, 1, 2, 1, 2, 1, 2, 3, 1]
    assert graph.delay_s.tolist() == [1.0, 3.0, 1.0, 1.0, 3.0, 0.5, 1.0, 0.5, 2.0, 2.0]


def test_flood_arrival_times_and_counts_by_hand() -> None:
    result = _flood()
    # 0 -> 1: slot 1 (1 s) + 1 s; 0 -> 2: slot 2 (2 s) + 3 s;
    # 1 -> 3: relay 0.1 + slot 2 + 1 = 3.1 (beats 2 -> 3 at 15 + 0.1 + 2 + 0.5);
    # 3 -> 4: relay 0.1 + slot 3 + 2 = 5.1
    assert result.arrival_s.tolist() == pytest.approx([10.0, 12.0, 15.0, 15.1, 20.2], abs=1e-12)
    assert result.via.tolist() == [-1, 0, 0, 1, 3]
    # origin sends to both peers; relays to every peer but their sender
    assert result.sent.tolist() == [2, 1, 1, 2, 0]
    assert result.received.tolist() == [0, 1, 2, 2, 1]
    assert result.dropped.tolist() == [0, 0, 0, 0, 0]
    assert result.reached(0).tolist() == [1, 2, 3, 4]


def test_flood_around_a_down_node_and_a_lost_copy() -> None:
    down = _flood(usable=np.array([True, False, True, True, True]))
    assert down.arrival_s.tolist() == pytest.approx([10.0, np.inf, 15.0, 17.6, 22.7], abs=1e-12)
    assert down.sent.tolist() == [2, 0, 1, 2, 0]
    assert down.dropped.tolist() == [1, 0, 0, 1, 0]  # copies to the down node
    assert down.received.tolist() == [0, 0, 1, 1, 1]
    lost = np.zeros(10, dtype=bool)
    lost[3] = True  # the copy 1 -> 3
    result = _flood(lost=lost)
    assert result.arrival_s.tolist() == pytest.approx([10.0, 12.0, 15.0, 17.6, 22.7], abs=1e-12)
    assert result.dropped.tolist() == [0, 1, 0, 0, 0]


def test_scheduler_one_event_per_distinct_time() -> None:
    env = CountingEnvironment()
    seen: list[tuple[float, int]] = []
    count = schedule_arrivals(env, np.array([3.0, 1.0, 1.0, 2.0]), np.array([7, 8, 9, 10]), lambda v: seen.append((env.now, v)))
    env.run()
    assert count == 4
    assert seen == [(1.0, 8), (1.0, 9), (2.0, 10), (3.0, 7)]
    assert env.events_scheduled == 3


def _gossip_world(mode: str) -> Simulation:
    scenario = small_scenario(
        protocol__name="aura",
        protocol__step_s=5.0,
        protocol__confirmations=2,
        network__nodes=50,
        network__topology="scale_free",
        network__mode=mode,
        node__sign_s=0.0,
        node__verify_s=0.0,
        node__hash_rate_bps=1e30,
        network__bandwidth_bps=1e30,
        workload__rate_tps=2.0,
        duration_s=62.5,
    )
    world = Simulation(scenario)
    world.run_until(0.5)
    world.nodes[7].crash()  # floods must route around it in both modes
    world.run_until(scenario.duration_s)
    return world


def test_phase_mode_block_arrivals_equal_message_mode() -> None:
    message, phase = _gossip_world("message"), _gossip_world("phase")
    assert phase.phase_mode and not message.phase_mode
    arrivals = {}
    for name, world in (("message", message), ("phase", phase)):
        rows = []
        for node in world.nodes:
            protocol = node.protocol
            assert isinstance(protocol, ChainProtocol)
            rows.append(list(protocol.final_received_s))
        arrivals[name] = np.array(rows[:7] + rows[8:])
    assert arrivals["message"].shape == (49, 9)  # slots 1..12 but 7 (crashed author), 2 not yet final
    # the first copy of every block reaches every node at the same time, to 1e-9
    assert np.abs(arrivals["message"] - arrivals["phase"]).max() < 1e-9
    # and it did travel: block 1 is sealed by node 1 at 5 s, everyone else gets it later
    assert arrivals["message"][1, 0] == 5.0 and (np.delete(arrivals["message"][:, 0], 1) > 5.0).all()
    # same ledgers, and the same block copies sent, received and dropped per node
    for a, b in zip(message.nodes, phase.nodes):
        assert a.ledger.head_hash == b.ledger.head_hash
    tables = [collect(w, 0.0).messages.set_index(["node_id", "msg_type"]) for w in (message, phase)]
    blocks = [t.xs("ChainBlock", level="msg_type") for t in tables]
    assert blocks[0][["sent_count", "sent_bytes", "dropped_count"]].equals(blocks[1][["sent_count", "sent_bytes", "dropped_count"]])
    # who receives the duplicates depends on which of two equally fast copies counts as first
    # (a tie: equal path delays are common with one intra-city delay); the total does not
    assert blocks[0]["received_count"].sum() == blocks[1]["received_count"].sum() == 1408
    assert blocks[0]["dropped_count"].sum() == len(message.topology.peers[7]) * 11  # copies to the crashed node
