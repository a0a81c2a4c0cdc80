"""Links between nodes: propagation, uplink serialization, jitter, loss, accounting.

A message leaves its sender's uplink after every earlier message from that
sender (FIFO), takes ``size_bytes * 8 / bandwidth_bps`` seconds to serialize,
then ``delay_s[src][dst]`` (+ jitter) to propagate. Each message costs exactly
one SimPy event: its arrival. Faults act on the state kept here (``up``,
``group``, ``extra_delay_s``, ``loss_rate``, ``link_rules``) and never on protocol code.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from sim.consensus.base import Message
from sim.network import gossip
from sim.network._path_delays import PathDelays

__all__ = ["LinkRule", "Network"]

DeliverFn = Callable[[int, int, Message], None]
TxDropFn = Callable[[Sequence[int], int, str], None]
CallLaterFn = Callable[..., None]


def _call_later_of(env: simpy.Environment) -> CallLaterFn:
    """``env.call_later`` (a plain call as one event, see ``CountingEnvironment``), or the
    same with a Timeout for a bare SimPy environment."""
    call_later: CallLaterFn | None = getattr(env, "call_later", None)
    if call_later is not None:
        return call_later

    def timeout_call(delay_s: float, fn: Callable[..., Any], *args: Any) -> None:
        env.timeout(delay_s).callbacks.append(lambda _e: fn(*args))

    return timeout_call


@dataclass(frozen=True, eq=False)
class LinkRule:
    """A degradation of some links (a ``degrade`` fault): added to their base behaviour.

    Attributes:
        extra_delay_s: added one-way delay, seconds.
        jitter_s: added delay uniform on [0, jitter_s], seconds.
        loss_rate: extra, independent loss probability.
        bandwidth_bps: cap on the sender's serialization rate over these links, bits/s.
        nodes: the rule covers links with an end in this set (None: every node).
        pairs: the rule covers exactly these directed (src, dst) links (overrides ``nodes``).
        cross_region: only links whose ends are in different regions (per ``region``).
        region: region name of every node (needed with ``cross_region``).
        bandwidth_from: nodes whose uplink the bandwidth cap slows (None: every sender the
            rule covers).
    """

    extra_delay_s: float = 0.0
    jitter_s: float = 0.0
    loss_rate: float = 0.0
    bandwidth_bps: float = math.inf
    nodes: frozenset[int] | None = None
    pairs: frozenset[tuple[int, int]] | None = None
    cross_region: bool = False
    region: tuple[str, ...] = ()
    bandwidth_from: frozenset[int] | None = None

    def covers(self, src: int, dst: int) -> bool:
        """True if the link ``src -> dst`` is degraded by this rule."""
        if self.pairs is not None:
            if (src, dst) not in self.pairs:
                return False
        elif self.nodes is not None and src not in self.nodes and dst not in self.nodes:
            return False
        return not self.cross_region or self.region[src] != self.region[dst]


class Network:
    """Point-to-point message transport over a topology's delay matrix.

    Args:
        env: the simulation environment.
        delay_s: (n, n) one-way propagation delays, seconds: an array, or a lazy
            :class:`~sim.network._path_delays.PathDelays` (rows computed on first use).
        bandwidth_bps: uplink bandwidth of every node, bits/s.
        jitter_s: extra delay per message, uniform on [0, jitter_s], seconds.
        loss_rate: probability that a message is lost.
        rng: the ``"links"`` random stream (jitter and loss draws).
        deliver: called as ``deliver(src, dst, msg)`` when a message arrives.
        on_tx_drop: called as ``on_tx_drop(tx_ids, node, reason)`` when a message that
            hands over transactions is lost.
    """

    def __init__(
        self,
        env: simpy.Environment,
        delay_s: np.ndarray | PathDelays,
        bandwidth_bps: float,
        jitter_s: float,
        loss_rate: float,
        rng: np.random.Generator,
        deliver: DeliverFn,
        on_tx_drop: TxDropFn,
    ) -> None:
        n = delay_s.shape[0]
        self.env = env
        self._call_later = _call_later_of(env)
        self.n = n
        #: one-way delays src -> dst, seconds: ``delay_s[src]`` is a row, ``delay_s[src][dst]`` a float
        self.delay_s: np.ndarray | PathDelays = (
            delay_s if isinstance(delay_s, PathDelays) else np.asarray(delay_s, dtype=float)
        )
        # rows as Python lists, made on a node's first send: O(n) per sender, not O(n^2) up front
        self._delay_rows: list[list[float] | None] = [None] * n
        self._delay_matrix_s: np.ndarray | None = None
        if isinstance(self.delay_s, np.ndarray):
            self.delay_s.setflags(write=False)
            self._delay_matrix_s = self.delay_s
        self.bandwidth_bps = [float(bandwidth_bps)] * n
        self.jitter_s = jitter_s
        self.loss_rate = loss_rate
        self.extra_delay_s = 0.0
        self.link_rules: list[LinkRule] = []  # active link degradations (faults), in order
        self.up = [True] * n
        self.group = [0] * n  # partition group per node; messages cross groups never
        self.uplink_free_s = [0.0] * n
        self._rng = rng
        self._deliver = deliver
        self._on_tx_drop = on_tx_drop
        # (node, message type) -> [count, bytes]
        self.sent: dict[tuple[int, str], list[int]] = {}
        self.received: dict[tuple[int, str], list[int]] = {}
        self.dropped: dict[tuple[int, str], int] = {}
        self.in_flight_txs: Counter[int] = Counter()
        self._flood_graph: gossip.FloodGraph | None = None
        self._flood_peers: Sequence[Sequence[int]] | None = None

    # ------------------------------------------------------------------ sending

    @property
    def delay_matrix_s(self) -> np.ndarray:
        """The delays as a read-only (n, n) array, src -> dst (for phase-mode kernels).

        A lazy :class:`PathDelays` materializes its full matrix here, once.
        """
        if self._delay_matrix_s is None:
            self._delay_matrix_s = np.asarray(self.delay_s)  # read-only: PathDelays.full()
        return self._delay_matrix_s

    def reachable(self, src: int, dst: int) -> bool:
        """True if a message from ``src`` can reach ``dst`` now."""
        return self.up[src] and self.up[dst] and self.group[src] == self.group[dst]

    def _delay(self, src: int, dst: int) -> float:
        """Propagation delay src -> dst, seconds (a row becomes a list on its first use: fast scalar reads)."""
        row = self._delay_rows[src]
        if row is None:
            row = self._delay_rows[src] = self.delay_s[src].tolist()
        return row[dst]

    def link(self, src: int, dst: int) -> tuple[float, float, float, float]:
        """The link ``src -> dst`` now, degradations included: (delay_s, jitter_s, loss_rate, bandwidth_bps).

        Phase-mode code that computes deliveries without messages should use this too.
        """
        delay_s = self._delay(src, dst) + self.extra_delay_s
        jitter_s, loss_rate, bandwidth_bps = self.jitter_s, self.loss_rate, self.bandwidth_bps[src]
        for rule in self.link_rules:
            if rule.covers(src, dst):
                delay_s += rule.extra_delay_s
                jitter_s += rule.jitter_s
                loss_rate = 1.0 - (1.0 - loss_rate) * (1.0 - rule.loss_rate)
                if rule.bandwidth_from is None or src in rule.bandwidth_from:
                    bandwidth_bps = min(bandwidth_bps, rule.bandwidth_bps)
        return delay_s, jitter_s, loss_rate, bandwidth_bps

    def send(self, src: int, dst: int, msg: Message, ready_s: float | None = None) -> None:
        """Send ``msg`` from ``src`` to ``dst``; it enters the uplink at ``ready_s`` (default now)."""
        now = self.env.now
        start_s = max(now if ready_s is None else ready_s, self.uplink_free_s[src])
        self._transmit(src, dst, msg, msg.size_bytes(), type(msg).__name__, start_s)

    def multicast(self, src: int, dsts: Iterable[int], msg: Message, ready_s: float | None = None) -> None:
        """Send one copy of ``msg`` to each of ``dsts`` (one uplink serialization per copy)."""
        now = self.env.now
        size = msg.size_bytes()
        kind = type(msg).__name__
        ready = now if ready_s is None else ready_s
        for dst in dsts:
            start_s = max(ready, self.uplink_free_s[src])
            self._transmit(src, dst, msg, size, kind, start_s)

    def _transmit(self, src: int, dst: int, msg: Message, size: int, kind: str, start_s: float) -> None:
        if self.link_rules:
            delay_s, jitter_s, loss_rate, bandwidth_bps = self.link(src, dst)
        else:
            delay_s = self._delay(src, dst) + self.extra_delay_s
            jitter_s, loss_rate, bandwidth_bps = self.jitter_s, self.loss_rate, self.bandwidth_bps[src]
        tx_time_s = size * 8.0 / bandwidth_bps
        self.uplink_free_s[src] = start_s + tx_time_s
        counter = self.sent.get((src, kind))
        if counter is None:
            self.sent[(src, kind)] = [1, size]
        else:
            counter[0] += 1
            counter[1] += size
        arrival_s = start_s + tx_time_s + delay_s
        if jitter_s > 0:
            arrival_s += self._rng.uniform(0.0, jitter_s)
        lost = loss_rate > 0 and self._rng.random() < loss_rate
        if msg.carries_txs:
            self.in_flight_txs.update(msg.tx_ids())
        if lost or not self.reachable(src, dst):
            self._drop(src, dst, msg, kind, "lost" if lost else "unreachable")
            return
        self._call_later(arrival_s - self.env.now, self._arrive, src, dst, msg, kind, size)

    def _arrive(self, src: int, dst: int, msg: Message, kind: str, size: int) -> None:
        if not self.reachable(src, dst):
            self._drop(src, dst, msg, kind, "unreachable")
            return
        if msg.carries_txs:
            self.in_flight_txs.subtract(msg.tx_ids())
        counter = self.received.get((dst, kind))
        if counter is None:
            self.received[(dst, kind)] = [1, size]
        else:
            counter[0] += 1
            counter[1] += size
        self._deliver(src, dst, msg)

    def _drop(self, src: int, dst: int, msg: Message, kind: str, reason: str) -> None:
        self.dropped[(src, kind)] = self.dropped.get((src, kind), 0) + 1
        if msg.carries_txs:
            ids = msg.tx_ids()
            self.in_flight_txs.subtract(ids)
            self._on_tx_drop(ids, dst, f"message {kind} {reason}")

    # ------------------------------------------------------------- bulk gossip

    def flood(self, src: int, msg: Message, ready_s: float, peers: Sequence[Sequence[int]], relay_s: float) -> None:
        """Flood ``msg`` from ``src`` over the peer graph in bulk (phase mode).

        Each node relays once to every peer but its sender; arrival times come from
        :func:`sim.network.gossip.flood` and each reached node gets one arrival event
        (then verifies the message on its CPU as usual). Copies, bytes and losses are
        accounted at once with :meth:`account_bulk`, when the flood starts (so copies
        still on the wire when a run ends are counted as sent and received).

        Args:
            src: origin node.
            msg: the message every node receives.
            ready_s: when the origin's copies can enter its uplink, seconds.
            peers: every node's peer list (the overlay).
            relay_s: CPU time at a relay between receipt and sending on, seconds.
        """
        if self._flood_peers is not peers:
            self._flood_graph = gossip.FloodGraph.build(peers, self.delay_s)
            self._flood_peers = peers
        graph = self._flood_graph
        assert graph is not None
        size = msg.size_bytes()
        kind = type(msg).__name__
        start_s = max(ready_s, self.uplink_free_s[src])
        self.uplink_free_s[src] = start_s + int(graph.degree[src]) * size * 8.0 / self.bandwidth_bps[src]
        group = self.group[src]
        usable = None
        if not all(self.up) or any(g != group for g in self.group):
            usable = np.array([u and g == group for u, g in zip(self.up, self.group)], dtype=bool)
        lost = self._rng.random(len(graph.dst)) < self.loss_rate if self.loss_rate > 0 else None
        wire_s = gossip.hop_costs(graph, size, np.asarray(self.bandwidth_bps), self.extra_delay_s)
        result = gossip.flood(graph, src, start_s, wire_s, relay_s, usable, lost)
        self.account_bulk(kind, size, result.sent, result.received, result.dropped)
        nodes = result.reached(src)
        via = result.via.tolist()
        ids = msg.tx_ids() if msg.carries_txs else ()
        if ids:
            if result.dropped.any():
                self._on_tx_drop(ids, src, f"message {kind} lost or unreachable")
            self.in_flight_txs.update({tx: len(nodes) for tx in ids})

        def arrive(dst: int) -> None:
            if not (self.up[dst] and self.group[dst] == group):  # went down or was cut off meanwhile
                counter = self.received[(dst, kind)]
                counter[0] -= 1
                counter[1] -= size
                self._drop(via[dst], dst, msg, kind, "unreachable")
                return
            if ids:
                self.in_flight_txs.subtract(ids)
            self._deliver(via[dst], dst, msg)

        gossip.schedule_arrivals(self.env, result.arrival_s[nodes], nodes, arrive)

    def account_bulk(self, kind: str, size: int, sent: np.ndarray, received: np.ndarray, dropped: np.ndarray) -> None:
        """Count many copies of one message type at once (per node: sent, received, dropped)."""
        for table, counts in ((self.sent, sent), (self.received, received)):
            values = counts.tolist()  # Python numbers: no numpy scalar per node
            for node in np.flatnonzero(counts).tolist():
                count = int(values[node])
                counter = table.get((node, kind))
                if counter is None:
                    table[(node, kind)] = [count, count * size]
                else:
                    counter[0] += count
                    counter[1] += count * size
        lost = dropped.tolist()
        for node in np.flatnonzero(dropped).tolist():
            self.dropped[(node, kind)] = self.dropped.get((node, kind), 0) + int(lost[node])

    # ---------------------------------------------------------- phase mode

    @property
    def links_rng(self) -> np.random.Generator:
        """The ``"links"`` stream: phase-mode kernels draw jitter and loss from it."""
        return self._rng

    def deliver_at(self, src: int, dst: int, msg: Message, at_s: float) -> None:
        """Hand ``msg`` to ``dst`` at ``at_s`` without transmitting or counting it.

        For phase mode, whose kernels account messages with :meth:`account_bulk`. The
        message is dropped silently if ``src`` cannot reach ``dst`` at that time.
        """
        now = self.env._now
        self._call_later(at_s - now if at_s > now else 0.0, self._deliver_if_reachable, src, dst, msg)

    def _deliver_if_reachable(self, src: int, dst: int, msg: Message) -> None:
        if self.reachable(src, dst):
            self._deliver(src, dst, msg)

    # ------------------------------------------------------------------ totals

    def in_flight(self) -> set[int]:
        """Transactions currently inside forwarding messages on the wire."""
        return {tx for tx, count in self.in_flight_txs.items() if count > 0}

    def totals(self) -> tuple[int, int]:
        """(messages sent, bytes sent) over all nodes and types."""
        count = sum(c for c, _ in self.sent.values())
        size = sum(b for _, b in self.sent.values())
        return count, size
