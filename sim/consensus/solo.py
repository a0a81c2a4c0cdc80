"""``solo``: one orderer, no fault tolerance. The queueing baseline.

Every node forwards its clients' transactions to node 0 (the orderer). The
orderer cuts blocks by size or batch timeout, appends each to its own ledger
and broadcasts it; every node delivers blocks in height order. With
``max_block_tx = 1``, no signing cost and a single origin at the orderer, the
orderer is a FIFO single-server queue (M/M/1 or M/D/1, see tests).

The orderer cuts the next block only once it has executed the previous one, so
under overload the queue builds in its bounded mempool (and arrivals beyond the
bound are rejected) rather than in an unbounded backlog of CPU work.
"""

from __future__ import annotations

from pydantic import Field

from sim.consensus.base import Message, Protocol, ProtocolParams, register_protocol
from sim.consensus.batching import BlockCutter
from sim.consensus.common import BlockMsg, ForwardTx
from sim.ledger import Block
from sim.workload.transaction import Transaction

__all__ = ["Solo", "SoloParams"]


class SoloParams(ProtocolParams):
    """Keys of ``[protocol]`` for ``solo``."""

    name: str = "solo"
    orderer: int = Field(0, ge=0, description="node id of the single orderer")


@register_protocol
class Solo(Protocol):
    """Single orderer (Fabric's 'solo' ordering service)."""

    name = "solo"
    Params = SoloParams
    params: SoloParams

    def on_start(self) -> None:
        self.is_orderer = self.ctx.node_id == self.params.orderer
        self.cutter = BlockCutter(self.ctx, self.params, self._propose) if self.is_orderer else None
        self.next_height = 1
        self.prev_hash = self.ctx.ledger_head_hash
        self.waiting: dict[int, Block] = {}  # out-of-order blocks at a replica, by height

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, SoloParams)
        if params.orderer >= n_nodes:
            return [f"orderer = {params.orderer} is not a node id (0..{n_nodes - 1})"]
        return []

    def leader(self) -> int | None:
        return self.params.orderer

    def on_transaction(self, tx: Transaction) -> None:
        if self.is_orderer:
            assert self.cutter is not None
            self.cutter.poke()
        else:
            self.ctx.mempool.remove((tx.tx_id,), self.ctx.now)
            self.ctx.send(self.params.orderer, ForwardTx(tx))

    def on_timer(self, name: str, data: object) -> None:
        assert self.cutter is not None
        if name == "executed":
            self.cutter.start()
        else:
            self.cutter.on_timer()

    def _propose(self, batch: list[Transaction]) -> None:
        assert self.cutter is not None
        block = self.ctx.make_block(self.next_height, self.prev_hash, batch)
        self.next_height += 1
        self.prev_hash = block.block_hash
        applied_s = self.ctx.deliver_block(block)
        if self.ctx.n > 1:
            self.ctx.broadcast(BlockMsg(block))
        if applied_s > self.ctx.now:  # busy executing: cut the next block when done
            self.cutter.stop()
            self.ctx.set_timer(applied_s - self.ctx.now, "executed")

    def on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, ForwardTx):
            if self.is_orderer and self.ctx.admit(msg.tx):
                assert self.cutter is not None
                self.cutter.poke()
        elif isinstance(msg, BlockMsg):
            self.waiting[msg.block.height] = msg.block
            while self.ctx.ledger_height + 1 in self.waiting:
                self.ctx.deliver_block(self.waiting.pop(self.ctx.ledger_height + 1))

    def pending_tx_ids(self) -> list[int]:
        return [t for b in self.waiting.values() for t in b.tx_ids]
