"""Block cutting shared by leader-based protocols: by size or by batch timeout."""

from __future__ import annotations

from collections.abc import Callable

from sim.consensus.base import ProtocolParams
from sim.node.context import NodeContext, Timer
from sim.workload.transaction import Transaction

__all__ = ["BlockCutter"]


class BlockCutter:
    """Cuts a batch when ``max_block_tx`` (or ``max_block_bytes``) is reached, or
    ``batch_timeout_s`` after the first transaction of the batch arrived, like
    Fabric's orderer (BatchTimeout, MaxMessageCount, PreferredMaxBytes).

    Args:
        ctx: the node's context (its mempool holds the waiting transactions).
        params: block size and timeout settings.
        on_batch: called with each cut batch (a non-empty list).
        timer_name: name of the timer this cutter owns.
    """

    def __init__(
        self,
        ctx: NodeContext,
        params: ProtocolParams,
        on_batch: Callable[[list[Transaction]], None],
        timer_name: str = "batch_timeout",
    ) -> None:
        self.ctx = ctx
        self.params = params
        self.on_batch = on_batch
        self.timer_name = timer_name
        self._timer: Timer | None = None
        self.enabled = True

    def poke(self) -> None:
        """Transactions arrived: cut full batches now, arm the timer for a partial one."""
        mempool = self.ctx.mempool
        p = self.params
        while self.enabled and len(mempool) and (
            len(mempool) >= p.max_block_tx or mempool.size_bytes >= p.max_block_bytes or p.batch_timeout_s <= 0
        ):
            self._cut()
        if self.enabled and len(mempool) and self._timer is None:
            self._timer = self.ctx.set_timer(p.batch_timeout_s, self.timer_name)

    def on_timer(self) -> None:
        """The batch timeout fired: cut whatever is waiting."""
        self._timer = None
        if self.enabled and len(self.ctx.mempool):
            self._cut()
        self.poke()

    def stop(self) -> None:
        """Stop cutting (this node is no longer the leader)."""
        self.enabled = False
        self.ctx.cancel_timer(self._timer)
        self._timer = None

    def start(self) -> None:
        """Start cutting (this node became the leader)."""
        self.enabled = True
        self.poke()

    def _cut(self) -> None:
        ctx = self.ctx
        ctx.cancel_timer(self._timer)
        self._timer = None
        batch = ctx.mempool.take(ctx.now, self.params.max_block_tx, self.params.max_block_bytes)
        if batch:
            self.on_batch(batch)
