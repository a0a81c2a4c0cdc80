"""Messages of ``hotstuff`` (chained HotStuff, :mod:`sim.consensus.hotstuff`)."""

from __future__ import annotations

from dataclasses import dataclass

from sim.consensus.base import MESSAGE_HEADER_BYTES, Message
from sim.faults.byzantine import other_digest
from sim.ledger import GENESIS_HASH, Block
from sim.workload.transaction import Transaction

__all__ = ["GENESIS_QC", "QC", "NewView", "Proposal", "SyncRequest", "SyncResponse", "TxToLeader", "Vote"]

_SIG_BYTES = 64  # Ed25519 signature
_DIGEST_BYTES = 32


@dataclass(frozen=True, slots=True)
class QC:
    """Quorum certificate: n - f signed votes for the block ``block_hash`` of ``view``."""

    view: int
    height: int
    block_hash: bytes
    signatures: int

    @property
    def size_bytes(self) -> int:
        return 16 + _DIGEST_BYTES + self.signatures * _SIG_BYTES


GENESIS_QC = QC(0, 0, GENESIS_HASH, 0)


@dataclass(frozen=True, slots=True)
class Proposal(Message):
    """The leader's block for view ``block.round`` with its justify QC."""

    block: Block
    justify: QC

    @property
    def signatures(self) -> int:  # type: ignore[override]
        return 1 + self.justify.signatures  # the leader's, then every signature of the QC

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.block.size_bytes + self.justify.size_bytes


@dataclass(frozen=True, slots=True)
class Vote(Message):
    """A replica's signed vote for a block, sent to the next view's leader."""

    view: int
    height: int
    block_hash: bytes

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _DIGEST_BYTES  # view and height ride in the header

    def equivocal(self) -> Vote:
        """The same vote for another block (sent by an equivocating replica)."""
        return Vote(self.view, self.height, other_digest(self.block_hash))


@dataclass(frozen=True, slots=True)
class NewView(Message):
    """Sent on a view timeout to the leader of ``view`` with the sender's highQC."""

    view: int
    qc: QC

    @property
    def signatures(self) -> int:  # type: ignore[override]
        return 1 + self.qc.signatures

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.qc.size_bytes


@dataclass(frozen=True, slots=True)
class TxToLeader(Message):
    """A transaction forwarded by its origin to a leader.

    Not ``carries_txs``: the origin keeps the transaction until it commits, so a lost
    copy loses nothing (the origin forwards it again).
    """

    tx: Transaction

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.tx.size_bytes


@dataclass(frozen=True, slots=True)
class SyncRequest(Message):
    """Ask for the chain ending at ``block_hash`` above height ``have_height``."""

    block_hash: bytes
    height: int
    have_height: int

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _DIGEST_BYTES + 16


@dataclass(frozen=True, slots=True)
class SyncResponse(Message):
    """Blocks with their justify QCs, in height order, towards the requested block."""

    block_hash: bytes  # the requested block (the last entry unless the answer was cut short)
    height: int
    entries: tuple[tuple[Block, QC], ...]

    @property
    def signatures(self) -> int:  # type: ignore[override]
        return 1 + sum(qc.signatures for _, qc in self.entries)

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _DIGEST_BYTES + sum(b.size_bytes + qc.size_bytes for b, qc in self.entries)
