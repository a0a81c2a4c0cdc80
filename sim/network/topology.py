"""Peer-to-peer overlay topologies with one-way propagation delays.

Inter-city delays come from ``data/city_rtt_ms.csv``: average round-trip times (ms)
between IBM Cloud VPC regions, Feb 3 - Mar 3 2024, from the IBM Cloud VPC
documentation on inter-region latency. One-way delay is taken as RTT / 2; the
published matrix is slightly asymmetric and is used as published (row -> column).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from sim.network._path_delays import BoundFactory, PathDelays, euclidean_bound, group_bound

__all__ = [
    "TOPOLOGIES",
    "PathDelays",
    "Topology",
    "TopologyParams",
    "build_full_mesh",
    "build_random_geometric",
    "build_regional",
    "build_scale_free",
    "build_topology",
    "load_city_rtt_ms",
]


@dataclass(frozen=True)
class TopologyParams:
    """Parameters shared by the topology builders.

    Attributes:
        latency_s: one-way delay (s) of every ``full_mesh`` link; delay scale (s) of
            ``random_geometric`` (delay of an edge spanning the unit square's diagonal).
        cities: CSV city names for ``regional``/``scale_free``; None = all of them.
        intra_city_delay_s: one-way delay (s) between two nodes of the same city.
        degree: target mean degree for ``scale_free`` and ``random_geometric``.
    """

    latency_s: float = 0.025
    cities: tuple[str, ...] | None = None
    intra_city_delay_s: float = 0.001
    degree: int = 4

    def __post_init__(self) -> None:
        if not self.latency_s >= 0:
            raise ValueError(f"latency_s must be >= 0 seconds, got {self.latency_s!r}")
        if not self.intra_city_delay_s >= 0:
            raise ValueError(f"intra_city_delay_s must be >= 0 seconds, got {self.intra_city_delay_s!r}")
        if self.degree < 1:
            raise ValueError(f"degree must be >= 1, got {self.degree!r}")
        if self.cities is not None:
            if isinstance(self.cities, str) or len(self.cities) == 0:
                raise ValueError(f"cities must be a non-empty sequence of city names or None, got {self.cities!r}")
            object.__setattr__(self, "cities", tuple(self.cities))


@dataclass(frozen=True, eq=False)
class Topology:
    """A built overlay: graph, pairwise one-way delays (s), regions and peer lists.

    ``delay_s`` is a read-only (n, n) array for the complete graphs (``full_mesh``,
    ``regional``) and a :class:`PathDelays` for the sparse overlays (``scale_free``,
    ``random_geometric``): the same values, computed lazily (rows on demand, the full
    matrix only when asked for all pairs, e.g. by ``np.asarray``).
    """

    name: str
    graph: nx.Graph
    delay_s: np.ndarray | PathDelays
    region: tuple[str, ...]
    peers: tuple[tuple[int, ...], ...]

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.region)


def load_city_rtt_ms() -> tuple[tuple[str, ...], np.ndarray]:
    """Load the packaged inter-region RTT table.

    Returns:
        (city names, (k, k) float64 matrix of round-trip times in ms, row -> column).
    """
    text = (files("sim.network") / "data" / "city_rtt_ms.csv").read_text(encoding="utf-8")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    cities = tuple(c.strip() for c in rows[0][1:])
    body = rows[1:]
    if len(body) != len(cities) or any(r[0].strip() != c for r, c in zip(body, cities)):
        raise ValueError("city_rtt_ms.csv: row names must match the header, in order")
    matrix = np.array([[float(v) for v in r[1:]] for r in body], dtype=np.float64)
    if matrix.shape != (len(cities), len(cities)):
        raise ValueError(f"city_rtt_ms.csv: expected a square matrix, got shape {matrix.shape}")
    return cities, matrix


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"n must be >= 1 node, got {n!r}")


def _make(name: str, graph: nx.Graph, delay: np.ndarray | PathDelays, region: tuple[str, ...]) -> Topology:
    """Assemble a Topology; freezes an eager ``delay`` and derives sorted peer lists."""
    if not isinstance(delay, PathDelays):
        delay = np.ascontiguousarray(delay, dtype=np.float64)
        np.fill_diagonal(delay, 0.0)
        delay.setflags(write=False)
    peers = tuple(tuple(sorted(graph.neighbors(i))) for i in range(graph.number_of_nodes()))
    return Topology(name=name, graph=graph, delay_s=delay, region=region, peers=peers)


def _single(name: str, label: str) -> Topology:
    graph = nx.Graph()
    graph.add_node(0)
    return _make(name, graph, np.zeros((1, 1)), (label,))


def _city_index(n: int, params: TopologyParams) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Round-robin city per node: (region names, city index per node, RTT table in ms)."""
    known, rtt = load_city_rtt_ms()
    chosen = known if params.cities is None else params.cities
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise ValueError(f"unknown city {unknown[0]!r}; known: {', '.join(known)}")
    idx = np.array([known.index(chosen[i % len(chosen)]) for i in range(n)])
    return tuple(known[i] for i in idx), idx, rtt


def _city_pair_delays(src_city: np.ndarray, dst_city: np.ndarray, rtt: np.ndarray, params: TopologyParams) -> np.ndarray:
    """One-way delay (s) src -> dst for nodes in the given cities: RTT / 2, or intra-city."""
    delay = rtt[src_city, dst_city] / 2 / 1000
    delay[src_city == dst_city] = params.intra_city_delay_s
    return delay


def _city_delays(n: int, params: TopologyParams) -> tuple[tuple[str, ...], np.ndarray]:
    """Round-robin city per node and the (n, n) one-way delay matrix (s) between them."""
    region, idx, rtt = _city_index(n, params)
    return region, _city_pair_delays(idx[:, None], idx[None, :], rtt, params)


def _edge_arrays(graph: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    """Both ends of every edge, in ``graph.edges()`` order."""
    edges = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
    return edges[:, 0], edges[:, 1]


def _path_delays(graph: nx.Graph, n: int, bound: BoundFactory) -> PathDelays:
    """Lazy shortest-path sums (s) of edge ``delay_s`` over an undirected graph."""
    edges = list(graph.edges(data="delay_s"))
    rows = np.array([u for u, _, _ in edges], dtype=np.int64)
    cols = np.array([v for _, v, _ in edges], dtype=np.int64)
    data = np.array([d for _, _, d in edges], dtype=np.float64)
    return PathDelays(n, rows, cols, data, bound)


def build_full_mesh(n: int, params: TopologyParams, rng: np.random.Generator) -> Topology:
    """Complete graph; every pair one-way delay ``params.latency_s``; region "mesh"."""
    _check_n(n)
    if n == 1:
        return _single("full_mesh", "mesh")
    graph = nx.complete_graph(n)
    nx.set_edge_attributes(graph, params.latency_s, "delay_s")
    return _make("full_mesh", graph, np.full((n, n), params.latency_s), ("mesh",) * n)


def build_regional(n: int, params: TopologyParams, rng: np.random.Generator) -> Topology:
    """Complete graph over cities assigned round-robin; delay = RTT/2 (row -> column)."""
    _check_n(n)
    region, delay = _city_delays(n, params)
    if n == 1:
        return _single("regional", region[0])
    graph = nx.complete_graph(n)
    for u, v in graph.edges():
        graph.edges[u, v]["delay_s"] = float(delay[min(u, v), max(u, v)])
    return _make("regional", graph, delay, region)


def build_scale_free(n: int, params: TopologyParams, rng: np.random.Generator) -> Topology:
    """Barabasi-Albert graph, m = max(1, degree // 2) capped at n - 1.

    Cities are assigned round-robin as in ``regional``; each edge (u < v) gets the
    regional delay u -> v, and ``delay_s`` is the (symmetric) shortest-path sum.
    """
    _check_n(n)
    region, city, rtt = _city_index(n, params)
    if n == 1:
        return _single("scale_free", region[0])
    m = min(max(1, params.degree // 2), n - 1)
    graph = nx.barabasi_albert_graph(n, m, seed=int(rng.integers(2**31)))
    u, v = _edge_arrays(graph)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    edge_delay = _city_pair_delays(city[lo], city[hi], rtt, params).tolist()
    for a, b, d in zip(u.tolist(), v.tolist(), edge_delay):
        graph.edges[a, b]["delay_s"] = d
    return _make("scale_free", graph, _path_delays(graph, n, group_bound(city)), region)


def build_random_geometric(n: int, params: TopologyParams, rng: np.random.Generator) -> Topology:
    """Random geometric graph in the unit square, made connected; region "geo".

    Radius r = sqrt(degree / (pi (n - 1))) gives expected degree ~= ``degree``. Each
    edge's delay is latency_s * distance / sqrt(2). Components (ordered by smallest
    node id) are chained by an edge between the closest pair of consecutive ones.
    """
    _check_n(n)
    if n == 1:
        return _single("random_geometric", "geo")
    pos = rng.random((n, 2))
    radius = math.sqrt(params.degree / (math.pi * (n - 1)))
    # Pairs within the radius from a k-d tree (a slightly larger radius: the test below
    # is the exact one), so no (n, n) distance matrix is built.
    cand = cKDTree(pos).query_pairs(radius * (1 + 1e-9), output_type="ndarray").astype(np.int64).reshape(-1, 2)
    cand = cand[np.lexsort((cand[:, 1], cand[:, 0]))]
    close = _distance(pos[cand[:, 0]], pos[cand[:, 1]]) <= radius
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(zip(cand[close, 0].tolist(), cand[close, 1].tolist()))
    comps = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    for a, b in itertools.pairwise(comps):
        sub = _distance(pos[a][:, None, :], pos[b][None, :, :])
        i, j = np.unravel_index(int(np.argmin(sub)), sub.shape)
        graph.add_edge(a[i], b[j])
    u, v = _edge_arrays(graph)
    edge_delay = (params.latency_s * _distance(pos[u], pos[v]) / math.sqrt(2)).tolist()
    for a, b, d in zip(u.tolist(), v.tolist(), edge_delay):
        graph.edges[a, b]["delay_s"] = d
    for i in range(n):
        graph.nodes[i]["pos"] = (float(pos[i, 0]), float(pos[i, 1]))
    bound = euclidean_bound(pos, params.latency_s / math.sqrt(2))
    return _make("random_geometric", graph, _path_delays(graph, n, bound), ("geo",) * n)


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between points (last axis = coordinates), elementwise."""
    return np.sqrt(((a - b) ** 2).sum(axis=-1))


TOPOLOGIES: Mapping[str, Callable[[int, TopologyParams, np.random.Generator], Topology]] = types.MappingProxyType(
    {
        "full_mesh": build_full_mesh,
        "regional": build_regional,
        "scale_free": build_scale_free,
        "random_geometric": build_random_geometric,
    }
)


def build_topology(name: str, n: int, params: TopologyParams, rng: np.random.Generator) -> Topology:
    """Build the topology registered under ``name`` (see ``TOPOLOGIES``)."""
    builder = TOPOLOGIES.get(name)
    if builder is None:
        raise ValueError(f"unknown topology {name!r}; known: {', '.join(sorted(TOPOLOGIES))}")
    return builder(n, params, rng)
