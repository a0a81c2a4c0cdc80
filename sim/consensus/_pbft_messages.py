"""Messages of ``pbft`` (Castro & Liskov, OSDI 1999, sections 4.2-4.4; TOCS 2002, section 4).

Sizes are the shared header plus payload: a pre-prepare carries its block (the
batched requests), a prepare or commit a 32-byte digest, a view change its
checkpoint proof and prepared certificates, a new view the view changes it is
built on and the pre-prepares it re-proposes. Messages that carry certificates
ask the receiver to verify every signature in them (``signatures``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.consensus.base import MESSAGE_HEADER_BYTES, Message
from sim.faults.byzantine import other_digest
from sim.ledger import Block
from sim.workload.transaction import Transaction

__all__ = [
    "CHECKPOINT_BYTES",
    "DIGEST_BYTES",
    "PREPARE_BYTES",
    "PRE_PREPARE_DIGEST_BYTES",
    "Checkpoint",
    "Commit",
    "FetchNewView",
    "FetchState",
    "NewView",
    "PhaseQuorum",
    "PrePrepare",
    "Prepare",
    "PreparedCert",
    "Reply",
    "Request",
    "RequestBatch",
    "StateReply",
    "ViewChange",
]

DIGEST_BYTES = 32  # SHA-256
_ID_BYTES = 16  # view and sequence number, 8 bytes each
PREPARE_BYTES = MESSAGE_HEADER_BYTES + _ID_BYTES + DIGEST_BYTES
#: a pre-prepare without its requests, as certificates and NEW-VIEW carry it
PRE_PREPARE_DIGEST_BYTES = PREPARE_BYTES
CHECKPOINT_BYTES = MESSAGE_HEADER_BYTES + 8 + DIGEST_BYTES


@dataclass(frozen=True, slots=True)
class Request(Message):
    """A client request handed by its origin node to the primary.

    Not ``carries_txs``: the origin keeps the request until it sees it executed, so
    a lost copy is not a lost transaction.
    """

    tx: Transaction

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.tx.size_bytes


@dataclass(frozen=True, slots=True)
class RequestBatch(Message):
    """Requests sent together: a client's retransmission to all replicas, a backup
    relaying it, or held requests re-sent to a new primary."""

    txs: tuple[Transaction, ...]

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + sum(tx.size_bytes for tx in self.txs)


@dataclass(frozen=True, slots=True)
class PrePrepare(Message):
    """PRE-PREPARE(v, n, d) with the batch of requests, as one block at height n."""

    view: int
    seq: int
    block: Block
    txs: tuple[Transaction, ...] = field(compare=False)  # their bytes are in block.size_bytes

    @property
    def digest(self) -> bytes:
        return self.block.block_hash

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _ID_BYTES + self.block.size_bytes


@dataclass(frozen=True, slots=True)
class Prepare(Message):
    """PREPARE(v, n, d, i): a backup accepted the pre-prepare."""

    view: int
    seq: int
    digest: bytes

    def size_bytes(self) -> int:
        return PREPARE_BYTES

    def equivocal(self) -> Prepare:
        """The same PREPARE for another digest (sent by an equivocating replica)."""
        return Prepare(self.view, self.seq, other_digest(self.digest))


@dataclass(frozen=True, slots=True)
class Commit(Message):
    """COMMIT(v, n, d, i): the sender is prepared."""

    view: int
    seq: int
    digest: bytes

    def size_bytes(self) -> int:
        return PREPARE_BYTES

    def equivocal(self) -> Commit:
        """The same COMMIT for another digest (sent by an equivocating replica)."""
        return Commit(self.view, self.seq, other_digest(self.digest))


@dataclass(frozen=True, slots=True)
class Reply(Message):
    """REPLY to one origin node: its transactions of block ``seq`` were executed."""

    view: int
    seq: int
    digest: bytes
    tx_ids: tuple[int, ...]

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _ID_BYTES + DIGEST_BYTES + 8 * len(self.tx_ids)


@dataclass(frozen=True, slots=True)
class Checkpoint(Message):
    """CHECKPOINT(n, d, i): the state after executing ``seq`` has digest ``digest``."""

    seq: int
    digest: bytes

    def size_bytes(self) -> int:
        return CHECKPOINT_BYTES


@dataclass(frozen=True, slots=True)
class PreparedCert:
    """A prepared certificate: a pre-prepare and the ``prepares`` matching prepares.

    On the wire the pre-prepare goes without its requests (OSDI 1999, section 4.4);
    ``pp`` keeps them because replicas in this model already hold them.
    """

    view: int
    pp: PrePrepare
    prepares: int

    def size_bytes(self) -> int:
        return PRE_PREPARE_DIGEST_BYTES + self.prepares * PREPARE_BYTES


@dataclass(frozen=True, slots=True)
class ViewChange(Message):
    """VIEW-CHANGE(v+1, n, C, P, i): last stable checkpoint with its proof, prepared certificates."""

    view: int
    replica: int
    stable_seq: int
    stable_digest: bytes
    proof: int  # checkpoint messages proving the stable checkpoint
    certs: tuple[PreparedCert, ...]

    @property
    def signatures(self) -> int:  # type: ignore[override]
        return 1 + self.proof + sum(1 + c.prepares for c in self.certs)

    def size_bytes(self) -> int:
        certs = sum(c.size_bytes() for c in self.certs)
        return MESSAGE_HEADER_BYTES + _ID_BYTES + 8 + DIGEST_BYTES + self.proof * CHECKPOINT_BYTES + certs


@dataclass(frozen=True, slots=True)
class NewView(Message):
    """NEW-VIEW(v+1, V, O): the view changes it is built on and the pre-prepares to redo
    (sent without their requests, like the certificates in V)."""

    view: int
    view_changes: tuple[ViewChange, ...]
    entries: tuple[PrePrepare, ...]

    @property
    def signatures(self) -> int:  # type: ignore[override]
        return 1 + len(self.entries) + sum(vc.signatures for vc in self.view_changes)

    def size_bytes(self) -> int:
        vcs = sum(vc.size_bytes() for vc in self.view_changes)
        return MESSAGE_HEADER_BYTES + 8 + vcs + len(self.entries) * PRE_PREPARE_DIGEST_BYTES


@dataclass(frozen=True, slots=True)
class FetchState(Message):
    """Simplified state transfer: send me your blocks above ``height``."""

    height: int

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + 8


@dataclass(frozen=True, slots=True)
class StateReply(Message):
    """Blocks a lagging replica asked for, in height order."""

    blocks: tuple[Block, ...]

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + sum(b.size_bytes for b in self.blocks)


@dataclass(frozen=True, slots=True)
class FetchNewView(Message):
    """A replica that missed a view change asks that view's primary for its NEW-VIEW."""

    view: int

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + 8


@dataclass(frozen=True, slots=True)
class PhaseQuorum(Message):
    """Phase mode only, never on the wire: one stage of a sequence number at one replica.

    ``stage`` is "pre-prepare" (the pre-prepare arrived), "prepared" or "committed"
    (the replica's quorum of prepares or commits arrived). The two rounds record which
    replicas really sent prepares and commits (:class:`sim.network.phase.QuorumRound`).
    The receiver spends ``cpu_now_s`` verifying before it acts and ``cpu_later_s`` on
    the rest of the phase's messages after.
    """

    stage: str
    pp: PrePrepare
    prepares: Any = field(repr=False)  # QuorumRound of the prepare phase
    commits: Any = field(repr=False)  # QuorumRound of the commit phase
    cpu_now_s: float
    cpu_later_s: float
    replies: Any = field(default=None, repr=False)  # ReplyRound of the block's replies
    checkpoints: Any = field(default=None, repr=False)  # ReplyRound of its checkpoints, if any
    signatures = 0  # type: ignore[misc]  # the CPU cost is in cpu_now_s and cpu_later_s

    @property
    def view(self) -> int:
        return self.pp.view

    @property
    def seq(self) -> int:
        return self.pp.seq

    def size_bytes(self) -> int:
        return 0
