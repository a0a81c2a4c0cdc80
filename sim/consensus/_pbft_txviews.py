"""Which transactions a PBFT replica has executed or ordered, read from its ledger and log.

A replica must not order or re-admit a request it has already executed or that sits in
a pre-prepare it accepted. Keeping a set of every such id at every replica costs
O(replicas x transactions) memory and a set update per replica and transaction; at
1,000 replicas and 200 claims/s that is hundreds of millions of entries an hour. Both
questions are answered instead from what the replica holds anyway: the run's index of
which blocks hold a transaction (:meth:`NodeContext.blocks_holding`), its ledger
(executed: a block holding it was delivered here) and its log (ordered: a pre-prepare
it accepted holds it and it is not executed yet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.consensus.pbft import Pbft
    from sim.node.context import NodeContext

__all__ = ["ExecutedTxs", "OrderedTxs"]


class ExecutedTxs:
    """``tx_id in executed``: a block holding it is on this replica's ledger."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx

    def __contains__(self, tx_id: object) -> bool:
        return isinstance(tx_id, int) and self._ctx.on_ledger(tx_id)


class OrderedTxs:
    """``tx_id in ordered``: a pre-prepare in this replica's log holds it, and it is not executed."""

    __slots__ = ("_pbft",)

    def __init__(self, pbft: Pbft) -> None:
        self._pbft = pbft

    def __contains__(self, tx_id: object) -> bool:
        if not isinstance(tx_id, int):
            return False
        pbft = self._pbft
        log = pbft.log
        for height, block_hash in pbft.ctx.blocks_holding(tx_id):
            slot = log.get(height)
            if slot is not None and slot.pp is not None and slot.pp.block.block_hash == block_hash:
                return tx_id not in pbft.executed
        return False
