"""Links between nodes: propagation, uplink serialization, jitter, loss, accounting.

A message leaves its sender's uplink after every earlier message from that
sender (FIFO), takes ``size_bytes * 8 / bandwidth_bps`` seconds to serialize,
then ``delay_s[src][dst]`` (+ jitter) to propagate. Each message costs exactly
one SimPy event: its arrival. Faults act on the state kept here (``up``,
``group``, ``extra_delay_s``, ``loss_rate``) and never on protocol code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import simpy

from sim.consensus.base import Message

__all__ = ["Network"]

DeliverFn = Callable[[int, int, Message], None]
TxDropFn = Callable[[Sequence[int], int, str], None]


class Network:
    """Point-to-point message transport over a topology's delay matrix.

    Args:
        env: the simulation environment.
        delay_s: (n, n) one-way propagation delays, seconds.
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
        delay_s: np.ndarray,
        bandwidth_bps: float,
        jitter_s: float,
        loss_rate: float,
        rng: np.random.Generator,
        deliver: DeliverFn,
        on_tx_drop: TxDropFn,
    ) -> None:
        n = delay_s.shape[0]
        self.env = env
        self.n = n
        self.delay_s: list[list[float]] = np.asarray(delay_s, dtype=float).tolist()
        #: the same delays as a read-only (n, n) array, src -> dst (for phase-mode kernels)
        self.delay_matrix_s: np.ndarray = np.array(delay_s, dtype=float)
        self.delay_matrix_s.setflags(write=False)
        self.bandwidth_bps = [float(bandwidth_bps)] * n
        self.jitter_s = jitter_s
        self.loss_rate = loss_rate
        self.extra_delay_s = 0.0
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

    # ------------------------------------------------------------------ sending

    def reachable(self, src: int, dst: int) -> bool:
        """True if a message from ``src`` can reach ``dst`` now."""
        return self.up[src] and self.up[dst] and self.group[src] == self.group[dst]

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
        tx_time_s = size * 8.0 / self.bandwidth_bps[src]
        self.uplink_free_s[src] = start_s + tx_time_s
        counter = self.sent.get((src, kind))
        if counter is None:
            self.sent[(src, kind)] = [1, size]
        else:
            counter[0] += 1
            counter[1] += size
        arrival_s = start_s + tx_time_s + self.delay_s[src][dst] + self.extra_delay_s
        if self.jitter_s > 0:
            arrival_s += self._rng.uniform(0.0, self.jitter_s)
        lost = self.loss_rate > 0 and self._rng.random() < self.loss_rate
        if msg.carries_txs:
            self.in_flight_txs.update(msg.tx_ids())
        if lost or not self.reachable(src, dst):
            self._drop(src, dst, msg, kind, "lost" if lost else "unreachable")
            return
        event = self.env.timeout(arrival_s - self.env.now)
        event.callbacks.append(lambda _e: self._arrive(src, dst, msg, kind, size))

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

    # ---------------------------------------------------------- phase mode

    @property
    def links_rng(self) -> np.random.Generator:
        """The ``"links"`` stream: phase-mode kernels draw jitter and loss from it."""
        return self._rng

    def account_bulk(
        self, kind: str, size_bytes: int, sent: Sequence[int], received: Sequence[int], dropped: Sequence[int]
    ) -> None:
        """Count messages of type ``kind`` moved without events (phase mode).

        Args:
            kind: message type name.
            size_bytes: size of each message, bytes.
            sent, received, dropped: per node id, messages it sent, received and lost as a sender.
        """
        for table, counts in ((self.sent, sent), (self.received, received)):
            for node, count in enumerate(counts):
                if count:
                    counter = table.setdefault((node, kind), [0, 0])
                    counter[0] += int(count)
                    counter[1] += int(count) * size_bytes
        for node, count in enumerate(dropped):
            if count:
                self.dropped[(node, kind)] = self.dropped.get((node, kind), 0) + int(count)

    def deliver_at(self, src: int, dst: int, msg: Message, at_s: float) -> None:
        """Hand ``msg`` to ``dst`` at ``at_s`` without transmitting or counting it.

        For phase mode, whose kernels account messages with :meth:`account_bulk`. The
        message is dropped silently if ``src`` cannot reach ``dst`` at that time.
        """
        event = self.env.timeout(max(0.0, at_s - self.env.now))
        event.callbacks.append(lambda _e: self.reachable(src, dst) and self._deliver(src, dst, msg))

    # ------------------------------------------------------------------ totals

    def in_flight(self) -> set[int]:
        """Transactions currently inside forwarding messages on the wire."""
        return {tx for tx, count in self.in_flight_txs.items() if count > 0}

    def totals(self) -> tuple[int, int]:
        """(messages sent, bytes sent) over all nodes and types."""
        count = sum(c for c, _ in self.sent.values())
        size = sum(b for _, b in self.sent.values())
        return count, size
