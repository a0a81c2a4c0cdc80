"""Tests for sim.network.topology."""

from __future__ import annotations

from itertools import pairwise

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.network.topology import (
    TOPOLOGIES,
    Topology,
    TopologyParams,
    build_topology,
    load_city_rtt_ms,
)

P = TopologyParams()
CITIES4 = ("Dallas", "Toronto", "London", "Tokyo")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check_common(topo: Topology, n: int) -> None:
    assert topo.n == n
    assert topo.delay_s.shape == (n, n)
    assert topo.delay_s.dtype == np.float64
    assert np.all(np.diag(topo.delay_s) == 0.0)
    assert np.all(np.isfinite(topo.delay_s))
    assert len(topo.region) == n
    assert sorted(topo.graph.nodes) == list(range(n))
    for i in range(n):
        assert topo.peers[i] == tuple(sorted(topo.graph.neighbors(i)))
    for _, _, d in topo.graph.edges(data="delay_s"):
        assert d is not None and d >= 0


def test_city_csv() -> None:
    cities, rtt = load_city_rtt_ms()
    assert len(cities) == 10
    assert rtt.shape == (10, 10)
    assert np.all(np.diag(rtt) == 0)
    assert {"Dallas", "Toronto", "WashingtonDC", "London"} <= set(cities)
    assert rtt[cities.index("Dallas"), cities.index("Toronto")] == 34


def test_full_mesh() -> None:
    topo = build_topology("full_mesh", 5, TopologyParams(latency_s=0.03), _rng())
    _check_common(topo, 5)
    off = ~np.eye(5, dtype=bool)
    assert np.all(topo.delay_s[off] == 0.03)
    assert topo.graph.number_of_edges() == 10
    assert topo.region == ("mesh",) * 5
    assert topo.peers[0] == (1, 2, 3, 4)
    assert topo.name == "full_mesh"


def test_regional_exact() -> None:
    topo = build_topology("regional", 8, TopologyParams(cities=CITIES4), _rng())
    _check_common(topo, 8)
    assert topo.region[:4] == CITIES4 and topo.region[4:] == CITIES4
    assert topo.delay_s[0, 1] == 0.017
    assert topo.delay_s[0, 4] == 0.001
    assert topo.delay_s[2, 3] == 0.1235
    assert topo.graph.number_of_edges() == 28


def test_regional_all_cities_default() -> None:
    cities, _ = load_city_rtt_ms()
    topo = build_topology("regional", 12, P, _rng())
    assert topo.region[:10] == cities
    assert topo.region[10] == cities[0]


def test_delay_is_read_only() -> None:
    topo = build_topology("full_mesh", 3, P, _rng())
    with pytest.raises(ValueError):
        topo.delay_s[0, 1] = 1.0


def test_scale_free_properties() -> None:
    topo = build_topology("scale_free", 200, TopologyParams(cities=CITIES4), _rng(1))
    _check_common(topo, 200)
    assert nx.is_connected(topo.graph)
    d = topo.delay_s
    assert np.allclose(d, d.T)
    # Adjacent nodes: delay never exceeds the direct edge delay.
    for u, v, w in topo.graph.edges(data="delay_s"):
        assert d[u, v] <= w + 1e-12
    rng = _rng(99)
    i, j, k = rng.integers(0, 200, size=(3, 2000))
    assert np.all(d[i, j] <= d[i, k] + d[k, j] + 1e-12)
    # Matches networkx shortest paths from one source.
    ref = nx.single_source_dijkstra_path_length(topo.graph, 7, weight="delay_s")
    for v, length in ref.items():
        assert d[7, v] == pytest.approx(length, abs=1e-12)


def test_scale_free_determinism() -> None:
    a = build_topology("scale_free", 200, P, _rng(5))
    b = build_topology("scale_free", 200, P, _rng(5))
    c = build_topology("scale_free", 200, P, _rng(6))
    assert set(a.graph.edges) == set(b.graph.edges)
    assert np.array_equal(a.delay_s, b.delay_s)
    assert set(a.graph.edges) != set(c.graph.edges)


def test_scale_free_small_n_caps_m() -> None:
    topo = build_topology("scale_free", 2, TopologyParams(degree=8), _rng())
    _check_common(topo, 2)
    assert topo.peers == ((1,), (0,))


def test_scale_free_zero_intra_delay_keeps_edges() -> None:
    params = TopologyParams(cities=("Dallas",), intra_city_delay_s=0.0)
    topo = build_topology("scale_free", 30, params, _rng(3))
    assert nx.is_connected(topo.graph)
    assert np.all(topo.delay_s == 0.0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 60), seed=st.integers(0, 2**32 - 1), degree=st.integers(1, 8))
def test_random_geometric_connected(n: int, seed: int, degree: int) -> None:
    topo = build_topology("random_geometric", n, TopologyParams(degree=degree), _rng(seed))
    _check_common(topo, n)
    assert nx.is_connected(topo.graph)
    assert topo.region == ("geo",) * n
    off = ~np.eye(n, dtype=bool)
    assert np.all(topo.delay_s[off] <= 0.025 * (n - 1) + 1e-12)
    assert np.allclose(topo.delay_s, topo.delay_s.T)


def test_random_geometric_deterministic_and_scaled() -> None:
    a = build_topology("random_geometric", 100, P, _rng(11))
    b = build_topology("random_geometric", 100, P, _rng(11))
    assert set(a.graph.edges) == set(b.graph.edges)
    assert np.array_equal(a.delay_s, b.delay_s)
    for u, v, w in a.graph.edges(data="delay_s"):
        pu, pv = np.array(a.graph.nodes[u]["pos"]), np.array(a.graph.nodes[v]["pos"])
        assert w == pytest.approx(0.025 * np.linalg.norm(pu - pv) / np.sqrt(2))
    mean_deg = 2 * a.graph.number_of_edges() / a.n
    assert 2.0 < mean_deg < 6.0


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_single_node(name: str) -> None:
    topo = build_topology(name, 1, P, _rng())
    assert topo.n == 1
    assert topo.delay_s.tolist() == [[0.0]]
    assert topo.peers == ((),)
    assert topo.graph.number_of_edges() == 0


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_n_below_one(name: str) -> None:
    with pytest.raises(ValueError, match="n must be >= 1"):
        build_topology(name, 0, P, _rng())


def test_unknown_topology() -> None:
    with pytest.raises(ValueError) as exc:
        build_topology("ring", 4, P, _rng())
    msg = str(exc.value)
    assert "'ring'" in msg
    for name in TOPOLOGIES:
        assert name in msg


@pytest.mark.parametrize("name", ["regional", "scale_free"])
def test_unknown_city(name: str) -> None:
    with pytest.raises(ValueError) as exc:
        build_topology(name, 4, TopologyParams(cities=("Dallas", "Gotham")), _rng())
    msg = str(exc.value)
    assert "'Gotham'" in msg
    for city in load_city_rtt_ms()[0]:
        assert city in msg


def test_city_names_case_sensitive() -> None:
    with pytest.raises(ValueError, match="'dallas'"):
        build_topology("regional", 2, TopologyParams(cities=("dallas",)), _rng())


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        TOPOLOGIES["x"] = None  # type: ignore[index]


def test_params_validation() -> None:
    with pytest.raises(ValueError, match="degree"):
        TopologyParams(degree=0)
    with pytest.raises(ValueError, match="latency_s"):
        TopologyParams(latency_s=-1.0)
    with pytest.raises(ValueError, match="cities"):
        TopologyParams(cities=())


def test_large_scale_free_fast() -> None:
    topo = build_topology("scale_free", 1000, P, _rng(2))
    assert topo.n == 1000 and nx.is_connected(topo.graph)
    assert np.all(np.isfinite(topo.delay_s))


# ---------------------------------------------------------------- lazy delays


def _eager_all_pairs(topo: Topology) -> np.ndarray:
    """The all-pairs matrix as the builders computed it before delays became lazy."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    edges = list(topo.graph.edges(data="delay_s"))
    rows = np.array([u for u, _, _ in edges], dtype=np.int64)
    cols = np.array([v for _, v, _ in edges], dtype=np.int64)
    data = np.array([d for _, _, d in edges], dtype=np.float64)
    adj = csr_matrix((data, (rows, cols)), shape=(topo.n, topo.n))
    full = shortest_path(adj, method="D", directed=False)
    np.fill_diagonal(full, 0.0)
    return full


def _old_random_geometric_graph(n: int, params: TopologyParams, rng: np.random.Generator) -> nx.Graph:
    """The dense (n, n)-distance construction the builder used before the k-d tree."""
    pos = rng.random((n, 2))
    dist = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(axis=-1))
    radius = np.sqrt(params.degree / (np.pi * (n - 1)))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    iu, ju = np.nonzero(np.triu(dist <= radius, k=1))
    graph.add_edges_from(zip(iu.tolist(), ju.tolist()))
    comps = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    for a, b in pairwise(comps):
        sub = dist[np.ix_(a, b)]
        i, j = np.unravel_index(int(np.argmin(sub)), sub.shape)
        graph.add_edge(a[i], b[j])
    for u, v in graph.edges():
        graph.edges[u, v]["delay_s"] = float(params.latency_s * dist[u, v] / np.sqrt(2))
    return graph


LAZY_CASES = [
    ("scale_free", 150, TopologyParams(degree=6), 1),
    ("scale_free", 150, TopologyParams(degree=8), 2),
    ("scale_free", 120, TopologyParams(cities=("Dallas", "Toronto", "London"), intra_city_delay_s=0.0), 3),
    ("scale_free", 60, TopologyParams(cities=("Dallas",), intra_city_delay_s=0.0), 4),
    ("random_geometric", 150, TopologyParams(degree=6), 5),
    ("random_geometric", 80, TopologyParams(degree=2), 6),
    ("random_geometric", 50, TopologyParams(degree=4, latency_s=0.0), 7),
]


@pytest.mark.parametrize(("name", "n", "params", "seed"), LAZY_CASES)
def test_lazy_delays_equal_the_eager_all_pairs_matrix(name: str, n: int, params: TopologyParams, seed: int) -> None:
    from sim.network.gossip import FloodGraph
    from sim.network.topology import PathDelays

    topo = build_topology(name, n, params, _rng(seed))
    delays = topo.delay_s
    assert isinstance(delays, PathDelays)
    assert not delays.materialized and delays.rows_computed == 0  # building computes no delays
    eager = _eager_all_pairs(topo)
    # peer delays (what phase-mode gossip reads) without computing all rows
    graph = FloodGraph.build(topo.peers, delays)
    assert not delays.materialized
    assert delays.rows_computed == 0
    assert np.array_equal(graph.delay_s, eager[graph.src, graph.dst])
    # single rows and scalar reads, bit for bit
    for i in range(0, n, 7):
        assert np.array_equal(delays[i], eager[i])
        assert delays[i, n - 1 - i] == eager[i, n - 1 - i]
    assert not delays.materialized
    pairs = _rng(seed + 100).integers(0, n, size=(2, 500))
    assert np.array_equal(delays.pairs(pairs[0], pairs[1]), eager[pairs[0], pairs[1]])
    # all pairs, once, on demand
    assert np.array_equal(np.asarray(delays), eager)
    assert delays.materialized and np.asarray(delays) is delays.full()
    assert np.array_equal(delays[3], eager[3])


def test_lazy_cases_include_edges_longer_than_a_path() -> None:
    # The peer-delay proof must not assume the direct edge is shortest: these graphs have
    # edges beaten by a multi-hop path (the city RTT table breaks the triangle inequality)
    # and zero-delay edges.
    topo = build_topology("scale_free", 150, TopologyParams(degree=8), _rng(2))
    eager = _eager_all_pairs(topo)
    beaten = [(u, v) for u, v, w in topo.graph.edges(data="delay_s") if eager[u, v] < w]
    assert len(beaten) >= 5
    zero = build_topology("scale_free", 120, TopologyParams(cities=("Dallas", "Toronto", "London"), intra_city_delay_s=0.0), _rng(3))
    weights = [w for _, _, w in zero.graph.edges(data="delay_s")]
    assert 0.0 in weights and max(weights) > 0.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [2, 40, 300])
def test_random_geometric_graph_same_as_dense_construction(n: int, seed: int) -> None:
    params = TopologyParams(degree=5)
    topo = build_topology("random_geometric", n, params, _rng(seed))
    old = _old_random_geometric_graph(n, params, _rng(seed))
    assert list(topo.graph.edges(data="delay_s")) == list(old.edges(data="delay_s"))
