"""Messages of ``tendermint`` (see :mod:`sim.consensus.tendermint`)."""

from __future__ import annotations

from dataclasses import dataclass

from sim.consensus.base import MESSAGE_HEADER_BYTES, Message
from sim.faults.byzantine import other_digest
from sim.ledger import Block
from sim.workload.transaction import Transaction

__all__ = ["CatchUp", "CatchUpRequest", "Precommit", "Prevote", "Proposal", "TxGossip", "Vote"]

_SIG_BYTES = 64  # Ed25519 signature
_DIGEST_BYTES = 32


@dataclass(frozen=True, slots=True)
class TxGossip(Message):
    """A transaction broadcast by its origin to every mempool.

    Not ``carries_txs``: the origin keeps the transaction in its own mempool, so a copy
    lost on the way (or sent to a crashed node) loses nothing; tracking it would record
    the transaction as dropped although every other node still holds it.
    """

    tx: Transaction

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.tx.size_bytes


@dataclass(frozen=True, slots=True)
class Proposal(Message):
    """⟨PROPOSAL, h, r, v, vr⟩ with the previous height's commit signatures."""

    height: int
    round: int
    block: Block
    valid_round: int
    last_commit_signatures: int
    #: the proof of lock (POL): senders of the +2/3 prevotes for ``pol_hash`` at ``valid_round``
    pol: tuple[int, ...] = ()
    pol_hash: bytes | None = None

    @property
    def signatures(self) -> int:  # type: ignore[override]
        return 1 + self.last_commit_signatures + len(self.pol)

    def size_bytes(self) -> int:
        pol_bytes = len(self.pol) * (_SIG_BYTES + 8) + (_DIGEST_BYTES if self.pol else 0)
        return MESSAGE_HEADER_BYTES + 8 + self.block.size_bytes + self.last_commit_signatures * _SIG_BYTES + pol_bytes


@dataclass(frozen=True, slots=True)
class Prevote(Message):
    """⟨PREVOTE, h, r, id(v) or nil⟩."""

    height: int
    round: int
    block_hash: bytes | None

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _DIGEST_BYTES  # height and round ride in the header

    def equivocal(self) -> Prevote | None:
        """The same PREVOTE for another block; a nil vote has no conflicting variant here."""
        return None if self.block_hash is None else Prevote(self.height, self.round, other_digest(self.block_hash))


@dataclass(frozen=True, slots=True)
class Precommit(Message):
    """⟨PRECOMMIT, h, r, id(v) or nil⟩."""

    height: int
    round: int
    block_hash: bytes | None

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _DIGEST_BYTES

    def equivocal(self) -> Precommit | None:
        """The same PRECOMMIT for another block; a nil vote has no conflicting variant here."""
        return None if self.block_hash is None else Precommit(self.height, self.round, other_digest(self.block_hash))


@dataclass(frozen=True, slots=True)
class CatchUpRequest(Message):
    """Ask for decided blocks from ``from_height`` on."""

    from_height: int


@dataclass(frozen=True, slots=True)
class CatchUp(Message):
    """Decided blocks in height order, each with its commit (``commit_signatures`` precommits)."""

    blocks: tuple[Block, ...]
    commit_signatures: int

    @property
    def signatures(self) -> int:  # type: ignore[override]
        return 1 + len(self.blocks) * self.commit_signatures

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + sum(b.size_bytes + self.commit_signatures * _SIG_BYTES for b in self.blocks)


Vote = Prevote | Precommit
