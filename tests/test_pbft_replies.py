"""ReplyRound: an origin confirms exactly when f + 1 replies have arrived, whatever the estimates."""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from sim.consensus._pbft_replies import PhaseReply, ReplyRound


class _Network:
    """Just what ReplyRound uses: the clock and deliver_at (recorded, not delivered)."""

    def __init__(self, now_s: float) -> None:
        self.env = simpy.Environment(initial_time=now_s)
        self.delivered: list[float] = []

    def deliver_at(self, src: int, dst: int, msg: Any, at_s: float) -> None:
        self.delivered.append(at_s)


def _round(network: _Network, arrival: list[float], travel: list[float], need: int) -> tuple[ReplyRound, PhaseReply]:
    arrival_s = np.array([arrival])
    votes = ReplyRound(network, arrival_s, np.array([travel]), arrival_s[0] - np.array(travel), np.array([9]), need)
    return votes, PhaseReply(9, 0, 0, 1, b"d", (), votes, 0.0, 0.0)


def test_ready_when_enough_confirmed_replies_have_arrived() -> None:
    net = _Network(now_s=2.0)
    votes, msg = _round(net, [1.0, 1.5, 3.0], [0.1, 0.1, 0.1], need=2)
    votes.confirm(0, 0.9)
    votes.confirm(1, 1.4)
    assert votes.check(msg) and votes.ready_quorum_s == 1.5


def test_a_late_replica_moves_the_quorum_later() -> None:
    net = _Network(now_s=1.5)
    votes, msg = _round(net, [1.0, 1.5, 3.0], [0.1, 0.1, 0.1], need=2)
    votes.confirm(0, 0.9)
    votes.confirm(1, 1.9)  # executed 0.5 s later than estimated: its reply arrives at 2.0
    assert not votes.check(msg)
    # replica 2 has not executed, but its estimate (3.0) is a lower bound: the quorum is
    # complete at 2.0, when replica 1's late reply arrives
    assert net.delivered == [2.0]


def test_an_unconfirmed_replica_that_could_be_faster_is_looked_at_first() -> None:
    net = _Network(now_s=1.5)
    votes, msg = _round(net, [1.0, 1.2, 3.0], [0.1, 0.1, 0.1], need=2)
    votes.confirm(0, 0.9)
    votes.confirm(2, 2.9)  # confirmed replies complete the quorum at 3.0 ...
    assert not votes.check(msg)
    # ... but replica 1 (estimated at 1.2, not executed yet) could still arrive from 1.6 on
    assert net.delivered == [1.6]


def test_an_unconfirmed_replica_with_no_travel_time_is_waited_for() -> None:
    # replica 1 (the origin's own reply, free signing) may still confirm now: the origin is
    # parked and looks again at once, not only when the confirmed replies complete the quorum
    net = _Network(now_s=1.0)
    votes, msg = _round(net, [1.0, 0.5, 3.0], [0.1, 0.0, 0.1], need=2)
    votes.confirm(0, 0.9)
    votes.confirm(2, 2.9)
    assert not votes.check(msg) and net.delivered == [3.0]
    votes.confirm(1, 1.0)  # executes now: its reply counts now
    assert net.delivered == [3.0, 1.0]
    assert votes.check(msg) and votes.ready_quorum_s == 1.0
