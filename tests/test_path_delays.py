"""Tests for sim.network._path_delays: lazy shortest-path delays and their lower bounds."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from sim.network._path_delays import (
    PathDelays,
    euclidean_bound,
    group_bound,
    pair_delays,
)
from sim.network.network import Network
from sim.network.topology import TopologyParams, build_topology

# 0 - 1 (5 s), 1 - 2 (1 s), 0 - 2 (1 s), 2 - 3 (0 s): the edge 0 - 1 is beaten by 0 - 2 - 1
U = np.array([0, 1, 0, 2])
V = np.array([1, 2, 2, 3])
W = np.array([5.0, 1.0, 1.0, 0.0])


def _eager(n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    return shortest_path(csr_matrix((w, (u, v)), shape=(n, n)), method="D", directed=False)


def test_small_graph_exact_values_rows_and_pairs() -> None:
    d = PathDelays(4, U, V, W, group_bound(np.array([0, 0, 1, 1])))
    assert d.shape == (4, 4) and d.dtype == np.float64 and len(d) == 4
    assert d[0].tolist() == [0.0, 2.0, 1.0, 1.0]
    assert d[0, 1] == 2.0 and d[3][1] == 1.0
    assert d.rows_computed == 2 and not d.materialized
    assert d.pairs(np.array([0, 1, 2, 3, 3]), np.array([1, 0, 3, 2, 3])).tolist() == [2.0, 2.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        d[0][1] = 1.0  # rows are read-only
    with pytest.raises(IndexError):
        d.row(4)
    assert np.array_equal(np.asarray(d), _eager(4, U, V, W))
    assert np.all(d == d.T) and np.isfinite(d).all()
    assert d.tolist() == _eager(4, U, V, W).tolist()


def test_bounds_never_exceed_true_delays() -> None:
    # Proofs are only as good as the bounds: check them against every pair.
    topo = build_topology("scale_free", 200, TopologyParams(degree=8), np.random.default_rng(4))
    delays = topo.delay_s
    assert isinstance(delays, PathDelays)
    full = np.asarray(delays)
    known = sorted(set(topo.region))
    bound = group_bound(np.array([known.index(r) for r in topo.region]))(delays)
    x, v = np.nonzero(~np.eye(200, dtype=bool))
    assert np.all(bound(x, v) <= full[x, v] * (1 + 1e-12))
    geo = build_topology("random_geometric", 150, TopologyParams(degree=5), np.random.default_rng(4))
    pos = np.array([geo.graph.nodes[i]["pos"] for i in range(150)])
    gfull = np.asarray(geo.delay_s)
    x, v = np.nonzero(~np.eye(150, dtype=bool))
    assert np.all(euclidean_bound(pos, 0.025 / np.sqrt(2))(geo.delay_s)(x, v) <= gfull[x, v] * (1 + 1e-12))


def test_rows_with_limit_match_full_rows() -> None:
    topo = build_topology("scale_free", 300, TopologyParams(degree=8), np.random.default_rng(8))
    delays = topo.delay_s
    assert isinstance(delays, PathDelays)
    full = _eager(300, *[np.array(c) for c in zip(*topo.graph.edges(data="delay_s"))])
    src = np.repeat(np.arange(0, 300, 3), 4)
    dst = (src * 7 + np.tile(np.arange(4), 100)) % 300
    upper = full[src, dst] + 0.001  # limits just above the answers
    assert np.array_equal(delays._from_rows(src, dst, upper), full[src, dst])
    assert delays.rows_computed == 0  # batched rows are not cached


def test_without_bound_every_peer_delay_comes_from_dijkstra() -> None:
    d = PathDelays(4, U, V, W)
    assert d.pairs(np.array([0, 1, 2]), np.array([1, 2, 3])).tolist() == [2.0, 1.0, 0.0]
    assert pair_delays(np.ones((2, 2)), np.array([0]), np.array([1])).tolist() == [1.0]


def test_network_reads_rows_and_materializes_the_matrix_once() -> None:
    topo = build_topology("scale_free", 50, TopologyParams(degree=4), np.random.default_rng(1))
    delays = topo.delay_s
    assert isinstance(delays, PathDelays)
    net = Network(simpy.Environment(), delays, 1e9, 0.0, 0.0, np.random.default_rng(1),
                  deliver=lambda *a: None, on_tx_drop=lambda *a: None)  # fmt: skip
    assert net._delay(3, 7) == _eager(50, *[np.array(c) for c in zip(*topo.graph.edges(data="delay_s"))])[3, 7]
    assert delays.rows_computed == 1 and not delays.materialized
    matrix = net.delay_matrix_s
    assert matrix is net.delay_matrix_s and delays.materialized
    assert not matrix.flags.writeable and matrix.shape == (50, 50)
