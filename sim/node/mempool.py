"""A bounded, first-in first-out pool of transactions waiting for a block."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from sim.workload.transaction import Transaction

__all__ = ["Mempool"]


class Mempool:
    """Bounded FIFO mempool. When full, new arrivals are rejected (the caller counts them).

    Args:
        capacity_tx: most transactions held at once.
    """

    def __init__(self, capacity_tx: int) -> None:
        self.capacity_tx = capacity_tx
        self._txs: OrderedDict[int, Transaction] = OrderedDict()
        self._bytes = 0
        self.peak_tx = 0
        self._area_tx_s = 0.0  # integral of size over time, for the time-weighted mean
        self._last_change_s = 0.0
        # True time source; set when the node's protocol reads a skewed clock (clock_skew
        # fault) so the time-weighted statistics stay in true time.
        self.clock: Callable[[], float] | None = None

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: int) -> bool:
        return tx_id in self._txs

    def __iter__(self) -> Iterator[Transaction]:
        return iter(self._txs.values())

    @property
    def size_bytes(self) -> int:
        """Bytes of all held transactions."""
        return self._bytes

    def _account(self, now_s: float) -> None:
        if self.clock is not None:
            now_s = self.clock()
        self._area_tx_s += len(self._txs) * (now_s - self._last_change_s)
        self._last_change_s = now_s

    def add(self, tx: Transaction, now_s: float) -> bool:
        """Admit ``tx``; False if the pool is full or already holds it."""
        if len(self._txs) >= self.capacity_tx or tx.tx_id in self._txs:
            return False
        self._account(now_s)
        self._txs[tx.tx_id] = tx
        self._bytes += tx.size_bytes
        self.peak_tx = max(self.peak_tx, len(self._txs))
        return True

    def take(self, now_s: float, max_tx: int, max_bytes: int) -> list[Transaction]:
        """Remove and return the oldest transactions up to ``max_tx`` and ``max_bytes``.

        At least one transaction is taken when any is held, even if it alone exceeds ``max_bytes``.
        """
        self._account(now_s)
        batch: list[Transaction] = []
        total = 0
        while self._txs and len(batch) < max_tx:
            tx = next(iter(self._txs.values()))
            if batch and total + tx.size_bytes > max_bytes:
                break
            self._txs.popitem(last=False)
            batch.append(tx)
            total += tx.size_bytes
        self._bytes -= total
        return batch

    def remove(self, tx_ids: Iterable[int], now_s: float) -> int:
        """Remove the given transactions if held; return how many were removed."""
        if not self._txs:
            return 0
        self._account(now_s)
        held = self._txs.keys() & tx_ids  # in C: a block's ids against a (often much smaller) pool
        for tx_id in held:
            self._bytes -= self._txs.pop(tx_id).size_bytes
        return len(held)

    def drain(self, now_s: float) -> list[Transaction]:
        """Remove and return everything (for forwarding or a crash)."""
        self._account(now_s)
        txs = list(self._txs.values())
        self._txs.clear()
        self._bytes = 0
        return txs

    def mean_tx(self, until_s: float) -> float:
        """Time-weighted mean number of held transactions over [0, until_s]."""
        if until_s <= 0:
            return 0.0
        area = self._area_tx_s + len(self._txs) * max(0.0, until_s - self._last_change_s)
        return area / until_s
