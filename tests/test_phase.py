"""The phase-mode kernel (sim/network/phase.py) against the message-by-message network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim.consensus.base import Message
from sim.network.network import Network
from sim.network.phase import (
    LinkSnapshot,
    QuorumRound,
    broadcast,
    quorum_done,
    quorum_times,
)

N = 5
SIZE_BYTES = 1000


@dataclass(frozen=True, slots=True)
class Probe(Message):
    tag: int = 0

    def size_bytes(self) -> int:
        return SIZE_BYTES


def make_network(jitter_s: float = 0.0, loss_rate: float = 0.0, seed: int = 3) -> tuple[Network, list[Any]]:
    """A 5-node network with distinct delays and a slow uplink (8 ms per 1000-byte copy)."""
    env = simpy.Environment()
    delay = np.array([[0.0 if i == j else 0.01 * (1 + i) + 0.001 * j for j in range(N)] for i in range(N)])
    got: list[Any] = []
    net = Network(
        env, delay, bandwidth_bps=1e6, jitter_s=jitter_s, loss_rate=loss_rate, rng=np.random.default_rng(seed),
        deliver=lambda src, dst, msg: got.append((env.now, src, dst, msg)), on_tx_drop=lambda ids, node, why: None,
    )  # fmt: skip
    return net, got


def test_broadcast_arrivals_equal_network_multicast() -> None:
    senders, ready = np.array([1, 3]), np.array([0.002, 0.0])
    net, got = make_network()
    net.uplink_free_s[3] = 0.005  # sender 3's uplink is still busy
    for i, r in zip(senders, ready):
        net.multicast(int(i), [j for j in range(N) if j != i], Probe(), float(r))
    net.env.run()
    expected = np.full((N, 2), np.inf)
    for t, src, dst, _ in got:
        expected[dst, list(senders).index(src)] = t

    phase_net, _ = make_network()
    phase_net.uplink_free_s[3] = 0.005
    result = broadcast(phase_net, LinkSnapshot.of(phase_net), senders, ready, SIZE_BYTES, "Probe")
    np.testing.assert_allclose(result.arrival_s, expected, rtol=0, atol=1e-12)
    # sender 1's copy to node 4 is its fourth (receivers 0, 2, 3, 4): 4 * 8 ms + 24 ms
    assert result.arrival_s[4, 0] == pytest.approx(0.002 + 4 * 0.008 + 0.024, abs=1e-12)
    assert phase_net.sent == net.sent and phase_net.received == net.received
    assert phase_net.uplink_free_s[1] == pytest.approx(0.002 + 4 * 0.008)
    assert phase_net.uplink_free_s[3] == pytest.approx(0.005 + 4 * 0.008)


def test_broadcast_masks_down_and_partitioned_nodes() -> None:
    net, _ = make_network()
    net.up[2] = False
    net.group = [0, 0, 0, 1, 1]
    result = broadcast(net, LinkSnapshot.of(net), np.array([0, 3]), np.zeros(2), SIZE_BYTES, "Probe")
    delivered = np.isfinite(result.arrival_s)
    assert delivered[:, 0].tolist() == [False, True, False, False, False]  # 0 reaches 1 only
    assert delivered[:, 1].tolist() == [False, False, False, False, True]  # 3 reaches 4 only
    assert result.received.tolist() == [0, 1, 0, 0, 1]
    assert net.sent[(0, "Probe")] == [4, 4 * SIZE_BYTES] and net.dropped[(0, "Probe")] == 3
    assert net.dropped[(3, "Probe")] == 3


def test_lost_copies_are_retried_one_period_later() -> None:
    senders = np.arange(N)
    base, _ = make_network()
    on_time = broadcast(base, LinkSnapshot.of(base), senders, np.zeros(N), SIZE_BYTES, "Probe").arrival_s
    off_diag = ~np.eye(N, dtype=bool)
    retries, extra_sent = [], 0
    for seed in range(200):
        net, _ = make_network(loss_rate=0.5, seed=seed)
        got = broadcast(net, LinkSnapshot.of(net), senders, np.zeros(N), SIZE_BYTES, "Probe", retry_s=1.0)
        retries.append(got.arrival_s[off_diag] - on_time[off_diag])
        extra_sent += sum(c for c, _ in net.sent.values()) - N * (N - 1)
    tries = np.concatenate(retries)
    assert np.allclose(tries, np.round(tries), atol=1e-9)  # whole retry periods late
    # geometric number of retries with p = 0.5: mean (1 - p) / p = 1; 4000 samples, sd 1.41, se 0.022
    assert tries.mean() == pytest.approx(1.0, abs=0.1)
    assert extra_sent == tries.sum()  # every retry is counted as a message sent


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, (6, 9), elements=st.floats(0, 10)),
    arrays(np.bool_, (6, 9)),
    arrays(np.int64, 6, elements=st.integers(-1, 11)),
)
def test_quorum_times_is_the_kth_order_statistic(values: np.ndarray, lost: np.ndarray, need: np.ndarray) -> None:
    arrival = np.where(lost, np.inf, values)
    got = quorum_times(arrival, need)
    for row, k in enumerate(need):
        ordered = np.sort(arrival[row])
        expected = -np.inf if k <= 0 else (ordered[k - 1] if k <= len(ordered) else np.inf)
        assert got[row] == expected


def fifo_done(arrivals: list[float], k: int, cost_s: float) -> float:
    """When an idle FIFO CPU finishes verifying the k-th of these arrivals."""
    done = -np.inf
    for a in sorted(arrivals)[:k]:
        done = max(done, a) + cost_s
    return done


def test_quorum_done_equals_an_idle_fifo_cpu_in_both_extremes() -> None:
    c = 0.001
    together = np.array([[0.5, 0.5, 0.5, 0.5]])
    apart = np.array([[0.1, 0.2, 0.3, 0.4]])
    for arrival in (together, apart):
        event, done = quorum_done(arrival, np.array([3]), np.array([0.0]), c)
        assert event[0] == np.sort(arrival[0])[2]
        assert done[0] == pytest.approx(fifo_done(list(arrival[0]), 3, c), abs=1e-12)
    # a receiver that is not ready itself waits for that, and one with no quorum never acts
    event, done = quorum_done(np.array([[0.1, np.inf], [0.1, 0.2]]), np.array([2, 1]), np.array([0.0, 0.9]), c)
    assert event.tolist() == [np.inf, 0.9] and done.tolist() == [np.inf, 0.9]


def test_quorum_round_counts_only_confirmed_senders() -> None:
    net, got = make_network()
    # receivers 0 and 1; senders 2, 3, 4 arrive at 1, 2, 3 s; each receiver needs 2
    arrival = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    votes = QuorumRound(net, np.vstack([arrival, np.full((3, 3), np.inf)]), np.array([2, 3, 4]), np.array([2, 2, 0, 0, 0]))
    votes.schedule(np.array([2.0, 2.0, np.inf, np.inf, np.inf]), lambda j: Probe(j))
    votes.decide(2, True)
    votes.decide(3, False)  # sender 3 never sent: receivers must wait for sender 4
    net.env.run(until=2.5)
    assert [(t, dst) for t, _, dst, _ in got] == [(2.0, 0), (2.0, 1)]
    assert votes.check(0) == "waiting"  # sender 4 undecided: its copy would arrive at 3 s
    votes.decide(4, True)  # wakes receiver 0 at its quorum time among confirmed senders
    assert votes.check(1) == "later"  # receiver 1 asks itself: moved to 3 s
    net.env.run()
    assert [(t, dst) for t, _, dst, _ in got[2:]] == [(3.0, 0), (3.0, 1)]
    assert votes.check(0) == "ready"
    lonely = QuorumRound(net, arrival[:1], np.array([2, 3, 4]), np.array([2]))
    lonely.schedule(np.array([2.0]), lambda j: Probe(j))
    lonely.decide(2, False)
    lonely.decide(3, False)
    assert lonely.check(0) == "never"


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.float64, (6, 7), elements=st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])),  # ties on purpose
    arrays(np.bool_, (6, 7)),
    arrays(np.int64, 6, elements=st.integers(-1, 8)),
    st.permutations(list(range(7))),
    arrays(np.bool_, 7),
)
def test_quorum_round_reads_the_computed_quorum_time_only_when_it_is_exact(
    values: np.ndarray, lost: np.ndarray, need: np.ndarray, order: list[int], sends: np.ndarray
) -> None:
    """Whatever senders confirm, in any order, the quorum time ``check`` finds (computed, or an
    order statistic over confirmed senders) is the ``need``-th confirmed arrival."""
    net, _ = make_network()
    arrival = np.where(lost, np.inf, values)
    votes = QuorumRound(net, arrival.copy(), np.arange(7) + 10, need)
    votes.messages = {j: Probe(j) for j in range(6)}
    for c in order:
        votes.decide(10 + c, bool(sends[c]))
        confirmed = np.flatnonzero(votes.sent)
        for j in range(6):
            ordered = np.sort(arrival[j, confirmed])
            k = need[j]
            expected = -np.inf if k <= 0 else (ordered[k - 1] if k <= len(ordered) else np.inf)
            if votes.check(j, tolerance_s=np.inf) == "ready":  # "ready" at any quorum time: read it
                assert votes.ready_quorum_s == expected
            else:
                assert expected == np.inf


@pytest.mark.parametrize(("protocol", "until_s"), [("pbft", 8.0), ("hotstuff", 9.0), ("tendermint", 12.0)])
def test_phase_mode_signs_what_message_mode_signs(protocol: str, until_s: float) -> None:
    # with signing the only CPU cost, each node's CPU seconds count its signatures
    # (proposals, votes, replies, checkpoints): phase mode charges every one message mode does
    import importlib

    from tests.conftest import signatures_per_node

    scenario = importlib.import_module(f"tests.test_{protocol}_phase").scenario
    signed = {
        mode: signatures_per_node(scenario(mode, 7, network__bandwidth_bps=1e30, workload__rate_tps=0.0,
                                           node__sign_s=1e-4), 7, requests=60, until_s=until_s)
        for mode in ("message", "phase")
    }  # fmt: skip
    assert signed["message"] == signed["phase"] and min(signed["phase"]) > 20

