"""Bounded FIFO mempool."""

from __future__ import annotations

import pytest

from sim.node.mempool import Mempool
from sim.workload.transaction import Transaction


def _tx(i: int, size: int = 100) -> Transaction:
    return Transaction(i, "claim", 0, 0.0, size, 0.0)


def test_fifo_take_respects_count_and_bytes() -> None:
    pool = Mempool(10)
    for i in range(5):
        assert pool.add(_tx(i), 0.0)
    assert [t.tx_id for t in pool.take(1.0, max_tx=2, max_bytes=10_000)] == [0, 1]
    assert [t.tx_id for t in pool.take(1.0, max_tx=10, max_bytes=250)] == [2, 3]
    assert pool.size_bytes == 100 and len(pool) == 1


def test_oversized_transaction_still_taken_alone() -> None:
    pool = Mempool(10)
    pool.add(_tx(0, 5000), 0.0)
    assert len(pool.take(0.0, 10, 1000)) == 1


def test_bound_rejects_and_duplicates_rejected() -> None:
    pool = Mempool(2)
    assert pool.add(_tx(0), 0.0) and pool.add(_tx(1), 0.0)
    assert not pool.add(_tx(2), 0.0)
    pool.remove([0], 0.0)
    assert not pool.add(_tx(1), 0.0)
    assert pool.add(_tx(2), 0.0)


def test_time_weighted_mean_and_peak() -> None:
    pool = Mempool(10)
    pool.add(_tx(0), 0.0)
    pool.add(_tx(1), 1.0)  # 1 tx during [0,1), 2 during [1,3)
    pool.drain(3.0)  # 0 during [3,4)
    assert pool.mean_tx(4.0) == pytest.approx((1 * 1 + 2 * 2) / 4)
    assert pool.peak_tx == 2
