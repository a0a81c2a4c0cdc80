"""Flooding gossip in bulk (phase mode): arrival times by shortest paths.

When every node relays a message once, on first receipt, to each of its peers
but the one it got it from, and the cost of a hop is additive, the first copy
reaches each node along a shortest path of the peer graph (the flood explores
paths in time order, like Dijkstra's algorithm). So one call of
``scipy.sparse.csgraph.dijkstra`` from the origin gives every node's arrival
time, and one event per receiving node replaces one event per copy.

Cost of the hop u -> v (``hop_costs``), the terms message mode charges:

- ``relay_s``: at u, verifying and hashing the message (``signatures x verify_s``
  plus bytes over the hash rate) and signing the copy it sends on; not charged
  at the origin, whose copy is ready when it calls the flood;
- serialization on u's uplink: v is u's k-th peer (1-based, in peer-list order)
  and the copies leave one after another, so the copy to v waits
  ``k x size x 8 / bandwidth_bps[u]``;
- propagation ``delay_s[u][v]`` plus the network's ``extra_delay_s``.

Where this is exact and where not: with zero serialization time and an idle
CPU and uplink it equals message mode. Otherwise a relaying node in message
mode skips its sender, so peers listed after the sender get their copy one
slot earlier than charged here; and contention with other traffic on an
uplink or a CPU is ignored. Loss is drawn per directed edge (each edge carries
at most one copy of a flood, as in message mode).

CPU: each receiver still verifies its first copy on its own CPU (the usual
receive path, with queueing); the relays' verify-and-sign time enters the
arrival times through ``relay_s`` but is not charged to their CPUs, and
duplicate copies are counted on the wire but not verified.

This module holds pure functions on arrays and a tiny scheduler; the network
(``Network.flood``) does the accounting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import simpy
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from sim.network._path_delays import PathDelays, pair_delays

__all__ = ["FloodGraph", "FloodResult", "flood", "hop_costs", "schedule_arrivals"]


@dataclass(frozen=True, eq=False)
class FloodGraph:
    """The directed peer graph in CSR form, with per-edge constants.

    Attributes:
        n: number of nodes.
        indptr: CSR row pointers, (n + 1,): node u's out-edges are ``indptr[u]:indptr[u+1]``.
        dst: target node of each directed edge, (E,).
        src: source node of each directed edge, (E,).
        slot: 1-based position of the target in the source's peer list, (E,).
        delay_s: one-way propagation delay of each edge, seconds, (E,).
        degree: number of peers of each node, (n,).
    """

    n: int
    indptr: np.ndarray
    dst: np.ndarray
    src: np.ndarray
    slot: np.ndarray
    delay_s: np.ndarray
    degree: np.ndarray

    @classmethod
    def build(cls, peers: Sequence[Sequence[int]], delay_s: Sequence[Sequence[float]] | np.ndarray | PathDelays) -> FloodGraph:
        """From each node's peer list and the (n, n) one-way delay matrix (seconds).

        Only the delays between peers are read (a lazy :class:`PathDelays` computes just those).
        """
        n = len(peers)
        degree = np.array([len(p) for p in peers], dtype=np.int64)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(degree, out=indptr[1:])
        dst = np.fromiter((v for p in peers for v in p), dtype=np.int64, count=int(indptr[-1]))
        src = np.repeat(np.arange(n, dtype=np.int64), degree)
        slot = np.arange(len(dst), dtype=np.int64) - indptr[src] + 1
        delay = pair_delays(delay_s, src, dst) if len(dst) else np.zeros(0)
        return cls(n=n, indptr=indptr, dst=dst, src=src, slot=slot, delay_s=delay, degree=degree)


@dataclass(frozen=True, eq=False)
class FloodResult:
    """Outcome of one flood.

    Attributes:
        arrival_s: time the first copy reaches each node (inf if never; origin: start).
        via: the peer that first copy came from (-1 for the origin and unreached nodes).
        sent: copies each node transmits (its degree at the origin, degree - 1 at a relay).
        received: copies each node receives (first copy and duplicates).
        dropped: copies each node sent that were lost or unreachable.
    """

    arrival_s: np.ndarray
    via: np.ndarray
    sent: np.ndarray
    received: np.ndarray
    dropped: np.ndarray

    def reached(self, origin: int) -> np.ndarray:
        """Nodes the flood reached, origin excluded, in node order."""
        mask = np.isfinite(self.arrival_s)
        mask[origin] = False
        return np.flatnonzero(mask)


def hop_costs(graph: FloodGraph, size_bytes: int, bandwidth_bps: np.ndarray, extra_delay_s: float = 0.0) -> np.ndarray:
    """Wire part of each directed edge's cost: serialization slot plus propagation, seconds.

    Args:
        graph: the directed peer graph.
        size_bytes: message size, bytes.
        bandwidth_bps: uplink bandwidth of each node, bits/s, (n,).
        extra_delay_s: delay added to every message (the network's degradation), seconds.
    """
    tx_s = size_bytes * 8.0 / np.asarray(bandwidth_bps, dtype=np.float64)
    return graph.slot * tx_s[graph.src] + graph.delay_s + extra_delay_s


def flood(
    graph: FloodGraph,
    origin: int,
    start_s: float,
    wire_s: np.ndarray,
    relay_s: float,
    usable: np.ndarray | None = None,
    lost: np.ndarray | None = None,
) -> FloodResult:
    """Flood from ``origin`` at ``start_s``: first arrival at every node and message counts.

    Args:
        graph: the directed peer graph.
        origin: node id the message starts from.
        start_s: time the origin's copies are ready to leave, seconds.
        wire_s: per-edge wire cost (:func:`hop_costs`), seconds.
        relay_s: CPU time at a relaying node between receiving a copy and sending its
            own (verify, hash, sign), seconds; the origin pays none.
        usable: per-node mask of nodes that can receive and relay (up, same partition);
            None = all.
        lost: per-edge mask of copies the links lose; None = none.

    Returns:
        arrival times, first-copy senders and per-node sent/received/dropped counts.
    """
    n = graph.n
    cost_s = wire_s + relay_s
    first, last = graph.indptr[origin], graph.indptr[origin + 1]
    cost_s[first:last] = wire_s[first:last]
    edge_ok = np.ones(len(graph.dst), dtype=bool)
    if usable is not None:
        edge_ok &= usable[graph.src] & usable[graph.dst]
    if lost is not None:
        edge_ok &= ~lost
    if edge_ok.all():
        matrix = csr_matrix((cost_s, graph.dst, graph.indptr), shape=(n, n))
    else:
        keep = np.flatnonzero(edge_ok)
        matrix = csr_matrix((cost_s[keep], (graph.src[keep], graph.dst[keep])), shape=(n, n))
    dist, pred = dijkstra(matrix, directed=True, indices=origin, return_predecessors=True)
    arrival = start_s + np.asarray(dist, dtype=np.float64)
    via = np.where(pred < 0, -1, pred).astype(np.int64)
    reached = np.isfinite(arrival)
    # Which edges carry a copy: from every reached node to each peer but its own sender.
    sends = reached[graph.src] & (graph.dst != via[graph.src])
    sent = np.bincount(graph.src[sends], minlength=n)
    delivered = sends & edge_ok
    received = np.bincount(graph.dst[delivered], minlength=n)
    dropped = np.bincount(graph.src[sends & ~edge_ok], minlength=n)
    return FloodResult(arrival_s=arrival, via=via, sent=sent, received=received, dropped=dropped)


def schedule_arrivals(
    env: simpy.Environment, arrival_s: np.ndarray, nodes: np.ndarray, on_arrival: Callable[[int], None]
) -> int:
    """Call ``on_arrival(node)`` at each node's arrival time, with at most one event per node.

    Arrivals are walked in time order by a chain of timeouts (one per distinct time),
    so the event queue holds one entry per flood rather than one per receiver.

    Returns:
        the number of arrivals scheduled.
    """
    if len(nodes) == 0:
        return 0
    order = np.argsort(arrival_s, kind="stable")
    times = arrival_s[order].tolist()
    who = nodes[order].tolist()
    count = len(who)
    position = [0]

    def step(_event: simpy.Event) -> None:
        i = position[0]
        due = times[i]
        while i < count and times[i] <= due:
            on_arrival(who[i])
            i += 1
        position[0] = i
        if i < count:
            env.timeout(times[i] - env.now).callbacks.append(step)

    env.timeout(max(0.0, times[0] - env.now)).callbacks.append(step)
    return count
