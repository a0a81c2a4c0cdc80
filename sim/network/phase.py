"""Phase mode: an all-to-all phase computed with numpy instead of one event per message.

DESIGN.md, "Two ways to move a message, one answer". In an all-to-all phase (PBFT
prepare/commit, Tendermint prevote/precommit, HotStuff votes to a leader) each sender
multicasts one message and each receiver waits for a quorum of them. Phase mode
computes, for every (receiver, sender) pair, the time the message would arrive:

    arrival[j, i] = max(ready[i], uplink_free[i]) + (pos_i(j) + 1) * size * 8 / bandwidth[i]
                    + delay[i, j] + extra_delay + jitter[j, i]

exactly as :class:`~sim.network.network.Network` would (copies leave a sender's uplink
one after the other, receivers in id order; ``pos_i(j)`` is j's place among i's
receivers), masks pairs that cannot deliver (crashed or partitioned ends, a lost
copy drawn from the ``links`` stream), and reads each receiver's quorum time as an
order statistic (``np.partition``). One SimPy event per receiver then stands for
the whole phase. Every logical message is still counted, with its bytes, through
:meth:`Network.account_bulk`, and each sender's uplink stays busy for its copies.

How a protocol uses it (PBFT's ``_phases_vectorized`` is the worked example)::

    links = LinkSnapshot.of(ctx.network)                  # once per computation
    sent = broadcast(net, links, senders, ready_s, size_bytes, "Prepare")
    event_s, done_s = quorum_done(sent.arrival_s, need, own_s, ctx.receive_cost_s(msg))
    votes = QuorumRound(net, sent.arrival_s, senders, need)
    votes.schedule(event_s, lambda j: QuorumReached(votes, ...))
    # each sender, when it really sends (or refuses): votes.decide(i, sends)
    # each receiver, on its event: if votes.check(j) == "ready": act

The computation assumes every sender sends. A sender that in fact does not (it was
changing view, its window was full ...) must not be counted: ``QuorumRound`` lets
each receiver count only senders that confirmed, moves its event later or parks it
until enough senders confirm. A quorum is then never made of votes nobody cast.

Modelling differences from message mode (state them when reporting results):
link state is read when the phase is computed, not when each copy leaves; jitter and
loss are drawn in another order (same distribution, other sample path); with
``retry_s`` a lost copy is re-sent one period later (message mode protocols repair
loss their own way); messages are counted when the phase is computed, so a run that
ends mid-phase counts some not yet sent; a sender's uplink is reserved in computation
order, and copies leaving after an idle gap do not hold back its other traffic (see
``_reserve_uplinks``). With zero CPU cost, negligible serialization and no jitter the
two modes give the same times (tests/test_pbft_phase.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.consensus.base import Message
    from sim.network.network import Network

__all__ = ["Broadcast", "LinkSnapshot", "PhaseDelivery", "QuorumRound", "broadcast", "quorum_done", "quorum_times"]


@dataclass(frozen=True)
class LinkSnapshot:
    """The network state a phase computation reads, as arrays over node ids.

    ``uplink_free_s`` is a private copy that :func:`broadcast` advances, so several
    phases computed back to back queue behind each other on each sender's uplink.
    """

    delay_s: np.ndarray  # (n, n) one-way propagation, src -> dst, seconds
    up: np.ndarray  # (n,) bool
    group: np.ndarray  # (n,) partition group
    bandwidth_bps: np.ndarray  # (n,) uplink bandwidth
    uplink_free_s: np.ndarray  # (n,) when each uplink is next free, seconds
    extra_delay_s: float
    jitter_s: float
    loss_rate: float

    @classmethod
    def of(cls, network: Network) -> LinkSnapshot:
        """Snapshot ``network`` now."""
        return cls(
            delay_s=network.delay_matrix_s,
            up=np.array(network.up, dtype=bool),
            group=np.array(network.group),
            bandwidth_bps=np.array(network.bandwidth_bps, dtype=float),
            uplink_free_s=np.array(network.uplink_free_s, dtype=float),
            extra_delay_s=network.extra_delay_s,
            jitter_s=network.jitter_s,
            loss_rate=network.loss_rate,
        )

    @property
    def n(self) -> int:
        return len(self.up)


@dataclass(frozen=True)
class Broadcast:
    """Result of :func:`broadcast`.

    Attributes:
        arrival_s: (n, len(senders)) arrival time at receiver j of sender column i's
            copy, seconds; ``inf`` where it is not delivered (itself, down, cut, lost).
        received: (n,) copies each node receives.
    """

    arrival_s: np.ndarray
    received: np.ndarray


def broadcast(
    network: Network,
    links: LinkSnapshot,
    senders: np.ndarray,
    ready_s: np.ndarray,
    size_bytes: int,
    kind: str,
    retry_s: float | None = None,
) -> Broadcast:
    """Every sender multicasts one ``size_bytes`` message of type ``kind`` to all other nodes.

    Draws jitter and loss from the network's ``links`` stream, counts every copy with
    :meth:`Network.account_bulk` and keeps each sender's uplink busy until its last
    copy has left (in ``links`` and in the network).

    Args:
        senders: (s,) node ids, each at most once.
        ready_s: (s,) time each sender's message is signed and ready, seconds.
        retry_s: None: a lost copy never arrives. Otherwise the protocol retransmits: a
            lost copy is sent again ``retry_s`` later, until one gets through (each try
            lost with the loss rate, each counted as sent and the lost ones as dropped).
    """
    n = links.n
    senders = np.asarray(senders, dtype=np.int64)
    s = len(senders)
    if s == 0:
        return Broadcast(np.full((n, 0), np.inf), np.zeros(n, dtype=np.int64))
    tx_s = size_bytes * 8.0 / links.bandwidth_bps[senders]
    start_s = np.maximum(np.asarray(ready_s, dtype=float), links.uplink_free_s[senders])
    recv = np.arange(n)[:, None]
    # (pos + 1) * tx_s + start + delay + extra, pos = receiver j's place in sender i's list
    # of the others: built in place, one (n, s) array (each step the same float operation)
    arrival = (recv + 1.0) - (recv > senders[None, :])
    arrival *= tx_s[None, :]
    arrival += start_s[None, :]
    arrival += links.delay_s[senders].T
    arrival += links.extra_delay_s
    rng = network.links_rng
    if links.jitter_s > 0:
        arrival += rng.uniform(0.0, links.jitter_s, size=(n, s))
    ok = (recv != senders[None, :]) & links.up[:, None] & links.up[senders][None, :]
    ok &= links.group[:, None] == links.group[senders][None, :]
    retried = np.zeros(s, dtype=np.int64)  # copies sent again, per sender
    if links.loss_rate > 0 and retry_s is None:
        ok &= rng.random((n, s)) >= links.loss_rate
    elif links.loss_rate > 0:
        retries = np.where(ok, rng.geometric(1.0 - links.loss_rate, size=(n, s)) - 1, 0)
        arrival = arrival + retries * retry_s
        retried = retries.sum(axis=0)
    np.copyto(arrival, np.inf, where=~ok)
    end_s = start_s + (n - 1) * tx_s
    links.uplink_free_s[senders] = end_s
    _reserve_uplinks(network, senders, start_s, end_s)
    sent = np.zeros(n, dtype=np.int64)
    sent[senders] = n - 1 + retried
    dropped = np.zeros(n, dtype=np.int64)
    dropped[senders] = (n - 1) - ok.sum(axis=0) + retried
    received = ok.sum(axis=1)
    network.account_bulk(kind, size_bytes, sent, received, dropped)
    return Broadcast(arrival, received)


def _reserve_uplinks(network: Network, senders: np.ndarray, start_s: np.ndarray, end_s: np.ndarray) -> None:
    """Keep each sender's uplink busy until its copies have left, when that is sound.

    The network keeps one "free at" time per uplink, so it cannot hold a gap before
    copies that leave later (e.g. prepares sent one delay from now): reserving them
    would hold back every message sent in the gap. Copies are reserved when the gap
    before them is shorter than their own serialization time; otherwise they do not
    delay other traffic. Either way the error is at most one phase's serialization.
    """
    now = network.env.now
    for i, start, end in zip(senders.tolist(), start_s.tolist(), end_s.tolist()):
        free = max(now, network.uplink_free_s[i])
        if start - free <= end - start:
            network.uplink_free_s[i] = max(network.uplink_free_s[i], end)


def quorum_times(arrival_s: np.ndarray, quorum: int | np.ndarray) -> np.ndarray:
    """Each receiver's time of its ``quorum``-th arrival (an order statistic per row).

    Args:
        arrival_s: (r, s) arrival times, ``inf`` for copies that never arrive.
        quorum: copies needed, one value or one per row.

    Returns:
        (r,) seconds: ``-inf`` where 0 copies are needed, ``inf`` where too few arrive.
    """
    r, s = arrival_s.shape
    need = np.broadcast_to(np.asarray(quorum, dtype=np.int64), (r,))
    out = np.full(r, np.inf)
    out[need <= 0] = -np.inf
    rows = np.flatnonzero((need > 0) & (need <= s))
    if len(rows):
        kth = np.unique(need[rows]) - 1
        part = arrival_s[rows]  # a copy (fancy index), partitioned in place
        part.partition(kth, axis=1)
        out[rows] = part[np.arange(len(rows)), need[rows] - 1]
    return out


def quorum_done(
    arrival_s: np.ndarray, need: np.ndarray, own_s: np.ndarray, cost_s: float, quorum_s: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """When each receiver has its quorum (event time) and has verified it (done time).

    A receiver acts once it is ready itself (``own_s``, e.g. it holds the proposal)
    and holds ``need`` verified copies. An idle CPU verifying copies as they arrive,
    ``cost_s`` each, finishes the ``need``-th at ``max(q + c, first + need * c)``
    (q: the need-th arrival, first: the earliest): exact when copies arrive well apart
    or all together, a lower bound in between.

    Args:
        arrival_s: (n, s) arrival times from :func:`broadcast`.
        need: (n,) copies each receiver needs besides its own.
        own_s: (n,) when each receiver is ready itself, seconds (``inf``: never).
        cost_s: CPU seconds to verify one copy.
        quorum_s: ``quorum_times(arrival_s, need)`` if the caller has it already.

    Returns:
        (event_s, done_s), each (n,) seconds, ``inf`` for receivers that never get there.
    """
    q = quorum_times(arrival_s, need) if quorum_s is None else quorum_s
    event_s = np.maximum(own_s, q)
    if cost_s <= 0:
        return event_s, event_s
    first = arrival_s.min(axis=1) if arrival_s.shape[1] else np.full(len(q), np.inf)
    with np.errstate(invalid="ignore"):
        verified = np.where(need > 0, np.maximum(q + cost_s, first + need * cost_s), -np.inf)
    return event_s, np.maximum(own_s, verified)


class PhaseDelivery:
    """Schedules one delivery per receiver at its own time (``inf``: none).

    Deliveries go through the network's normal path (the receiver's node, its CPU
    and its protocol's ``on_message``) but are not counted again: :func:`broadcast`
    already counted the messages they stand for.
    """

    def __init__(self, network: Network) -> None:
        self.network = network

    def deliver(self, at_s: np.ndarray, make_msg: Callable[[int], Message], src: int | None = None) -> int:
        """Deliver ``make_msg(j)`` to each node j at ``at_s[j]``; returns how many were scheduled.

        Args:
            at_s: (n,) delivery times, seconds; non-finite entries are skipped.
            make_msg: builds receiver j's message (called now, once per receiver).
            src: the sender shown to receivers (default: the receiver itself).
        """
        scheduled = 0
        times = np.asarray(at_s, dtype=float)
        deliver_at, when = self.network.deliver_at, times.tolist()
        for j in np.flatnonzero(np.isfinite(times)).tolist():
            deliver_at(j if src is None else src, j, make_msg(j), when[j])
            scheduled += 1
        return scheduled


class QuorumRound:
    """One phase whose senders confirm (or retract) the copies the computation assumed.

    Receivers count only confirmed senders. In a fault-free run every sender confirms
    before its copies arrive and receivers act at the computed times; otherwise a
    receiver's event moves to its quorum time among confirmed senders, or waits until
    more senders confirm, or is dropped when the quorum can no longer form.

    Args:
        network: delivers the (re-)scheduled events.
        arrival_s: (n, s) arrival times from :func:`broadcast`.
        senders: (s,) node id of each column.
        need: (n,) copies each receiver needs.
        quorum_s: ``quorum_times(arrival_s, need)`` if the caller has it already.
    """

    def __init__(
        self,
        network: Network,
        arrival_s: np.ndarray,
        senders: np.ndarray,
        need: np.ndarray,
        quorum_s: np.ndarray | None = None,
    ) -> None:
        self.network = network
        self.arrival_s = arrival_s
        self.column = {int(i): c for c, i in enumerate(np.asarray(senders).tolist())}
        self.sent = np.zeros(len(self.column), dtype=bool)
        self.undecided = np.ones(len(self.column), dtype=bool)
        self.need = np.asarray(need)
        self.messages: dict[int, Message] = {}
        self.waiting: set[int] = set()
        # copies each receiver gets from confirmed senders: a waiting receiver's quorum
        # time is finite exactly when this reaches its need, so ``decide`` computes
        # order statistics only for receivers that can wake (O(n) per decision, not O(n^2))
        by_sender = arrival_s.T  # (s, n) view: row c is sender column c's copies; the arrays below store it so
        self._finite_by_sender = np.isfinite(by_sender, order="C")
        self._have = np.zeros(arrival_s.shape[0], dtype=np.int64)
        self._copies = self._finite_by_sender.sum(axis=0)  # copies each receiver gets if every sender sends
        # ... and its quorum time then (``quorum_s``: ``quorum_times(arrival_s, need)``, if known)
        self._full_quorum_s = quorum_times(arrival_s, self.need) if quorum_s is None else quorum_s
        # confirmed senders whose copy arrives by that time: once a receiver has ``need`` of
        # them, its quorum time among confirmed senders is that time exactly (at most
        # need - 1 copies of all arrive earlier), with no order statistic to compute
        self._early_by_sender = np.less_equal(by_sender, self._full_quorum_s[None, :], order="C")
        self._early = np.zeros(arrival_s.shape[0], dtype=np.int64)
        #: the quorum time :meth:`check` last found ready (when the receiver's quorum was complete)
        self.ready_quorum_s = -np.inf

    def schedule(self, at_s: np.ndarray, make_msg: Callable[[int], Message]) -> None:
        """Deliver ``make_msg(j)`` to each receiver j at ``at_s[j]`` (kept for re-delivery)."""
        messages = self.messages

        def kept(j: int) -> Message:
            msg = messages[j] = make_msg(j)
            return msg

        PhaseDelivery(self.network).deliver(at_s, kept)

    def shift_sender(self, column: int, shift_s: float) -> None:
        """Sender ``column``'s copies leave ``shift_s`` later than computed (earlier if < 0)."""
        if shift_s != 0.0:
            self.arrival_s[:, column] += shift_s  # inf stays inf
            self._full_quorum_s = None  # the computed quorum times no longer hold

    def quorum_time(self, receiver: int) -> float:
        """The ``need``-th arrival at ``receiver`` among confirmed senders (-inf: none needed)."""
        k = int(self.need[receiver])
        if k <= 0:
            return -np.inf
        row = self.arrival_s[receiver, self.sent]  # a copy (boolean index): partitioned in place
        if len(row) < k:
            return np.inf
        row.partition(k - 1)
        return float(row[k - 1])

    def check(self, receiver: int, tolerance_s: float = 1e-9) -> str:
        """"ready" if ``receiver`` holds its quorum now; else re-schedules it ("later"),
        parks it until more senders confirm ("waiting"), or gives up ("never")."""
        now = self.network.env.now
        if self._full_quorum_s is not None and (
            self._early[receiver] >= self.need[receiver] or self._have[receiver] == self._copies[receiver]
        ):
            # enough confirmed senders arrive by the computed quorum time (or every sender
            # confirmed), at the computed times: the quorum time is as computed
            at = float(self._full_quorum_s[receiver])
        else:
            at = self.quorum_time(receiver)
        if at <= now + tolerance_s:
            self.ready_quorum_s = at
            return "ready"
        if np.isfinite(at):
            self.network.deliver_at(receiver, receiver, self.messages[receiver], at)
            return "later"
        k = int(self.need[receiver])
        possible = np.isfinite(self.arrival_s[receiver, self.sent | self.undecided]).sum() >= k
        if possible and receiver in self.messages:
            self.waiting.add(receiver)
            return "waiting"
        return "never"

    def decide(self, sender: int, sends: bool) -> None:
        """``sender`` did (or did not) send its copies; wake receivers that now have a quorum."""
        c = self.column.get(sender)
        if c is None or not self.undecided[c]:
            return
        self.undecided[c] = False
        self.sent[c] = sends
        if not sends:
            return
        self._have += self._finite_by_sender[c]
        self._early += self._early_by_sender[c]
        if not self.waiting:
            return
        waiting = np.fromiter(self.waiting, dtype=np.int64, count=len(self.waiting))
        need = self.need[waiting]
        wake = waiting[(need > 0) & (self._have[waiting] >= need)]
        now = self.network.env.now
        for j in np.sort(wake).tolist():
            at = self.quorum_time(j)  # finite: j has ``need`` copies from confirmed senders
            self.waiting.discard(j)
            self.network.deliver_at(j, j, self.messages[j], max(now, at))


def gather(
    network: Network,
    links: LinkSnapshot,
    senders: np.ndarray,
    ready_s: np.ndarray,
    dst: int,
    size_bytes: int,
    kind: str,
) -> np.ndarray:
    """Every sender sends one ``size_bytes`` message of type ``kind`` to ``dst`` (votes to a leader).

    The linear counterpart of :func:`broadcast`: same link model (uplink queue,
    serialization, delay, jitter and loss from the ``links`` stream, crash and partition
    masks), same accounting and uplink reservation, one copy per sender.

    Args:
        senders: (s,) node ids, each at most once, ``dst`` not among them.
        ready_s: (s,) time each sender's message is signed and ready, seconds.

    Returns:
        (s,) arrival time at ``dst`` of each sender's message, seconds; ``inf`` where it
        is not delivered (an end down or cut off, or lost).
    """
    n = links.n
    senders = np.asarray(senders, dtype=np.int64)
    s = len(senders)
    if s == 0:
        return np.full(0, np.inf)
    tx_s = size_bytes * 8.0 / links.bandwidth_bps[senders]
    start_s = np.maximum(np.asarray(ready_s, dtype=float), links.uplink_free_s[senders])
    end_s = start_s + tx_s
    arrival = end_s + links.delay_s[senders, dst] + links.extra_delay_s
    rng = network.links_rng
    if links.jitter_s > 0:
        arrival += rng.uniform(0.0, links.jitter_s, size=s)
    ok = (senders != dst) & links.up[senders] & bool(links.up[dst]) & (links.group[senders] == links.group[dst])
    if links.loss_rate > 0:
        ok &= rng.random(s) >= links.loss_rate
    links.uplink_free_s[senders] = end_s
    _reserve_uplinks(network, senders, start_s, end_s)
    sent = np.zeros(n, dtype=np.int64)
    sent[senders] = 1
    dropped = np.zeros(n, dtype=np.int64)
    dropped[senders] = ~ok
    received = np.zeros(n, dtype=np.int64)
    received[dst] = int(ok.sum())
    network.account_bulk(kind, size_bytes, sent, received, dropped)
    return np.where(ok, arrival, np.inf)
