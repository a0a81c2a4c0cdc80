"""Shortest-path delays over a sparse overlay, computed lazily (rows on demand).

An overlay topology (``scale_free``, ``random_geometric``) defines the one-way delay
between two nodes as the shortest-path sum of edge delays. The all-pairs matrix costs
O(n^2 log n) time and n^2 x 8 bytes (800 MB at n = 10,000), but most runs need far
less: message mode reads the rows of the nodes that send, phase-mode gossip only the
delays between peers. :class:`PathDelays` computes a row by one Dijkstra from its
source (cached), the full matrix only when a caller needs all pairs, and the delays
between peers without any Dijkstra where a lower bound proves that the direct edge is
a shortest path.

Exactness: every value equals, bit for bit, the entry of
``scipy.sparse.csgraph.shortest_path(adj, method="D", directed=False)``. Dijkstra's
label for ``v`` from ``u`` is the smallest left-to-right float sum over the paths from
``u`` to ``v`` (float addition is monotone, so taking minima and adding commute); the
direct edge's sum is its delay ``w`` exactly, so where every other path provably sums
to at least ``w`` the entry is ``w``. Proofs use a relative margin of 1e-9, far above
float rounding of paths of any practical hop count; edges not proved get their values
from Dijkstra rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra, shortest_path

__all__ = ["BoundFactory", "PathDelays", "euclidean_bound", "group_bound", "pair_delays"]

#: ``bound(x, v)``: a lower bound (s) on every path of one or more hops from x to v (x != v)
TailBound = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: builds a :data:`TailBound` for a :class:`PathDelays` (it may run Dijkstra on its graph)
BoundFactory = Callable[["PathDelays"], TailBound]

_MARGIN = 1e-9  # relative; float error of a k-hop sum is below k x 1.1e-16
_CHUNK_ROWS = 256  # Dijkstra sources per call when many rows are needed at once
_CHUNK_PAIRS = 1 << 18  # (first hop, edge) pairs per block in the edge proof


class PathDelays(NDArrayOperatorsMixin):
    """The (n, n) shortest-path one-way delays (s) of an undirected graph, computed lazily.

    Indexing works as on the eager matrix: ``d[i]`` is row i (read-only array, one
    Dijkstra the first time), ``d[i, j]`` and ``d[i][j]`` a float; any other index,
    ``np.asarray(d)`` and ``d.T`` use the full matrix, materialized once.

    Args:
        n: number of nodes.
        u: one end of each edge, (E,).
        v: the other end, (E,).
        weight_s: delay of each edge, seconds, (E,); zeros are kept as edges.
        bound: optional lower-bound factory (:func:`group_bound`, :func:`euclidean_bound`)
            that lets :meth:`pairs` skip Dijkstra for most peer pairs.
    """

    def __init__(
        self, n: int, u: np.ndarray, v: np.ndarray, weight_s: np.ndarray, bound: BoundFactory | None = None
    ) -> None:
        self.n = n
        # Same construction as the eager matrix: explicit zero-weight entries stay edges.
        self.adjacency = csr_matrix(
            (np.asarray(weight_s, dtype=np.float64), (np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64))),
            shape=(n, n),
        )
        self._bound_factory = bound
        self._rows: dict[int, np.ndarray] = {}
        self._full: np.ndarray | None = None
        self._edge_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------ array-like

    @property
    def shape(self) -> tuple[int, int]:
        """(n, n)."""
        return (self.n, self.n)

    @property
    def dtype(self) -> np.dtype[Any]:
        """float64."""
        return np.dtype(np.float64)

    @property
    def ndim(self) -> int:
        """2."""
        return 2

    def __len__(self) -> int:
        return self.n

    @property
    def materialized(self) -> bool:
        """True once the full matrix has been computed."""
        return self._full is not None

    @property
    def rows_computed(self) -> int:
        """Number of single rows computed so far (not counting the full matrix)."""
        return len(self._rows)

    def row(self, src: int) -> np.ndarray:
        """Delays (s) from ``src`` to every node, (n,), read-only; one Dijkstra on first use."""
        if self._full is not None:
            return self._full[src]
        row = self._rows.get(src)
        if row is None:
            if not 0 <= src < self.n:
                raise IndexError(f"node {src} out of range for {self.n} nodes")
            row = np.asarray(dijkstra(self.adjacency, directed=False, indices=src), dtype=np.float64)
            row[src] = 0.0
            row.setflags(write=False)
            self._rows[src] = row
        return row

    def full(self) -> np.ndarray:
        """The (n, n) matrix (read-only), computed once; single rows are then dropped."""
        if self._full is None:
            full = np.ascontiguousarray(shortest_path(self.adjacency, method="D", directed=False), dtype=np.float64)
            np.fill_diagonal(full, 0.0)
            full.setflags(write=False)
            self._full = full
            self._rows.clear()
        return self._full

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            return self.row(int(key))
        if isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, (int, np.integer)) for k in key):
            return float(self.row(int(key[0]))[int(key[1])])
        return self.full()[key]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        full = self.full()
        if dtype is not None and np.dtype(dtype) != full.dtype:
            return full.astype(dtype)
        return full.copy() if copy else full

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = [x.full() if isinstance(x, PathDelays) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.full() if isinstance(x, PathDelays) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*args, **kwargs)

    @property
    def T(self) -> np.ndarray:
        """Transpose of the full matrix."""
        return self.full().T

    def tolist(self) -> list[list[float]]:
        """The full matrix as nested lists."""
        return self.full().tolist()

    # -------------------------------------------------------------- pairs

    def pairs(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Delays (s) for the pairs ``src[k] -> dst[k]``, without all-pairs work where possible.

        Pairs that are edges of the graph and proved shortest by the lower bound take the
        edge delay; the rest are read from Dijkstra rows of their sources (computed in
        batches, not cached, unless already computed).
        """
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if self._full is not None:
            return self._full[src, dst]
        out = np.full(len(src), np.nan)
        out[src == dst] = 0.0
        e_src, e_dst, e_val = self._edge_values()
        if len(e_src):
            key = e_src * self.n + e_dst
            want = src * self.n + dst
            pos = np.minimum(np.searchsorted(key, want), len(key) - 1)
            hit = key[pos] == want
            out[hit] = e_val[pos[hit]]
        todo = np.flatnonzero(np.isnan(out))
        if len(todo):
            out[todo] = self._from_rows(src[todo], dst[todo])
        return out

    def _from_rows(self, src: np.ndarray, dst: np.ndarray, upper_s: np.ndarray | None = None) -> np.ndarray:
        """Entries (src, dst) read from Dijkstra rows (cached rows reused, others batched).

        ``upper_s``: known upper bounds of the entries (s); Dijkstra then stops at the
        largest bound of each batch (labels up to the limit are the same as without it).
        """
        out = np.empty(len(src))
        cached = np.array([s in self._rows for s in src.tolist()], dtype=bool)
        for k in np.flatnonzero(cached).tolist():
            out[k] = self._rows[int(src[k])][dst[k]]
        todo = np.flatnonzero(~cached)
        if not len(todo):
            return out
        limit = np.full(self.n, np.inf)
        if upper_s is not None:
            limit[:] = 0.0
            np.maximum.at(limit, src[todo], upper_s[todo] * (1.0 + _MARGIN))
        missing = np.unique(src[todo])
        missing = missing[np.argsort(limit[missing], kind="stable")]  # similar limits batched together
        for start in range(0, len(missing), _CHUNK_ROWS):
            chunk = missing[start : start + _CHUNK_ROWS]
            block = dijkstra(self.adjacency, directed=False, indices=chunk, limit=float(limit[chunk].max()))
            where = np.full(self.n, -1, dtype=np.int64)
            where[chunk] = np.arange(len(chunk))
            sel = todo[where[src[todo]] >= 0]
            out[sel] = block[where[src[sel]], dst[sel]]
        return out

    def _edge_values(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every directed edge (sorted by source, then target) and its exact delay (s)."""
        if self._edge_cache is not None:
            return self._edge_cache
        coo = self.adjacency.tocoo()  # each edge once; explicit zeros kept
        a = np.concatenate([coo.row, coo.col]).astype(np.int64)
        b = np.concatenate([coo.col, coo.row]).astype(np.int64)
        w = np.concatenate([coo.data, coo.data]).astype(np.float64)
        keep = a != b
        a, b, w = a[keep], b[keep], w[keep]
        order = np.lexsort((w, b, a))
        a, b, w = a[order], b[order], w[order]
        first = np.ones(len(a), dtype=bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])  # parallel entries: keep the lightest
        a, b, w = a[first], b[first], w[first]
        proved = w == 0.0  # nothing is shorter than zero
        if self._bound_factory is not None and len(a):
            lower = _edge_lower_bounds(self.n, a, b, w, self._bound_factory(self))
            proved |= lower > w * (1.0 + _MARGIN)
        value = w.copy()
        todo = np.flatnonzero(~proved)
        if len(todo):  # the edge itself bounds its entry from above
            value[todo] = self._from_rows(a[todo], b[todo], w[todo])
        self._edge_cache = (a, b, value)
        return self._edge_cache


def _edge_lower_bounds(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray, tail: TailBound) -> np.ndarray:
    """Lower bound (s) on every path a -> ... -> b other than the edge itself, per directed edge.

    Such a path leaves ``a`` by another edge (a, x), x != b, then goes from x to b in one
    or more hops: it costs at least ``w(a, x) + tail(x, b)``; the bound is the minimum over x.
    Edges are sorted by source (CSR order).
    """
    degree = np.bincount(a, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(degree, out=indptr[1:])
    lower = np.full(len(a), np.inf)
    per_edge = degree[a]  # first hops to try for each edge (its own included, then skipped)
    starts = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(per_edge, out=starts[1:])
    e = 0
    while e < len(a):
        stop = int(np.searchsorted(starts, starts[e] + _CHUNK_PAIRS, side="right")) - 1
        stop = max(stop, e + 1)
        edges = np.arange(e, stop)
        count = per_edge[edges]
        target = np.repeat(edges, count)  # the edge (a, b) being proved
        offset = np.arange(int(count.sum())) - np.repeat(starts[edges] - starts[e], count)
        hop = indptr[a[target]] + offset  # the first hop (a, x)
        other = hop != target
        cost = np.full(len(target), np.inf)
        cost[other] = w[hop[other]] + tail(b[hop[other]], b[target[other]])
        lower[edges] = np.minimum.reduceat(cost, np.r_[0, np.cumsum(count)[:-1]])
        e = stop
    return lower


def group_bound(group: np.ndarray) -> BoundFactory:
    """Lower bound from node groups (e.g. cities): distance to a group, then the last hop.

    A path x -> ... -> y -> v (y a peer of v) is the edge (x, v) itself when y = x;
    otherwise it costs at least ``away[g(y)][x] + w(y, v)``, where ``away[g][x]`` is a
    lower bound on the delay from x to any *other* node of group g: the cheapest
    ``w(x, z) + near[g][z]`` over x's edges, ``near[g][z]`` being the shortest delay
    from z to group g (one multi-source Dijkstra per group). The bound is the smaller
    of the direct edge and the minimum over groups of ``away[g][x]`` plus v's cheapest
    edge from group g.
    """
    group = np.asarray(group, dtype=np.int64)

    def factory(delays: PathDelays) -> TailBound:
        n = delays.n
        labels = np.unique(group)
        code = np.searchsorted(labels, group)
        coo = delays.adjacency.tocoo()
        src = np.concatenate([coo.row, coo.col]).astype(np.int64)
        dst = np.concatenate([coo.col, coo.row]).astype(np.int64)
        weight = np.concatenate([coo.data, coo.data]).astype(np.float64)
        away = np.full((n, len(labels)), np.inf)  # away[x, g]: x to another node of group g
        for g in range(len(labels)):
            near = dijkstra(delays.adjacency, directed=False, indices=np.flatnonzero(code == g), min_only=True)
            np.minimum.at(away[:, g], src, weight + near[dst])
        last = np.full((n, len(labels)), np.inf)  # last[v, g]: v's cheapest edge from group g
        np.minimum.at(last, (src, code[dst]), weight)
        order = np.lexsort((dst, src))
        key = src[order] * n + dst[order]
        direct = weight[order]

        def bound(x: np.ndarray, v: np.ndarray) -> np.ndarray:
            out = (away[x] + last[v]).min(axis=1)
            want = x * n + v
            pos = np.minimum(np.searchsorted(key, want), len(key) - 1)
            hit = key[pos] == want
            out[hit] = np.minimum(out[hit], direct[pos[hit]])
            return out

        return bound

    return factory


def euclidean_bound(pos: np.ndarray, delay_per_unit_s: float) -> BoundFactory:
    """Lower bound for edge delays proportional to Euclidean length: straight-line delay."""
    pos = np.asarray(pos, dtype=np.float64)

    def factory(_delays: PathDelays) -> TailBound:
        def bound(x: np.ndarray, v: np.ndarray) -> np.ndarray:
            return delay_per_unit_s * np.sqrt(((pos[x] - pos[v]) ** 2).sum(axis=-1))

        return bound

    return factory


def pair_delays(delay_s: Any, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Delays (s) for pairs ``src[k] -> dst[k]`` of an eager matrix or a :class:`PathDelays`."""
    if isinstance(delay_s, PathDelays):
        return delay_s.pairs(src, dst)
    return np.asarray(delay_s, dtype=np.float64)[src, dst]
