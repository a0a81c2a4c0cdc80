"""Messages several protocols share."""

from __future__ import annotations

from dataclasses import dataclass

from sim.consensus.base import MESSAGE_HEADER_BYTES, Message
from sim.ledger import Block
from sim.workload.transaction import Transaction

__all__ = ["BlockMsg", "ForwardTx", "IdBits"]


@dataclass(frozen=True, slots=True)
class ForwardTx(Message):
    """A transaction handed from its origin node to the node that orders it."""

    tx: Transaction
    carries_txs = True

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.tx.size_bytes

    def tx_ids(self) -> tuple[int, ...]:
        return (self.tx.tx_id,)


@dataclass(frozen=True, slots=True)
class BlockMsg(Message):
    """A whole block sent to a peer (header, transactions and proposer signature)."""

    block: Block

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.block.size_bytes


class IdBits:
    """A set of transaction ids (dense, counted from 0) as a growable bitmap."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = bytearray()

    def add(self, i: int) -> None:
        j = i >> 3
        if j >= len(self._bits):
            self._bits.extend(bytes(j + 1 - len(self._bits) + 4096))
        self._bits[j] |= 1 << (i & 7)

    def __contains__(self, i: int) -> bool:
        j = i >> 3
        return j < len(self._bits) and bool(self._bits[j] >> (i & 7) & 1)
