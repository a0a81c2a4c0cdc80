"""Immutable blocks whose hash covers only a small header."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from sim.ledger.merkle import merkle_root as compute_merkle_root

__all__ = ["GENESIS_HASH", "HEADER_BYTES", "Block", "tx_digest"]

GENESIS_HASH: bytes = bytes(32)
"""Parent hash of the first real block (height 1): 32 zero bytes."""

HEADER_BYTES: int = 160
"""Approximate size in bytes of a serialized block header plus proposer signature."""


def tx_digest(
    tx_id: int, tx_type: str, origin: int, size_bytes: int, payload_digest: bytes = b""
) -> bytes:
    """Return the 32 B SHA-256 digest of a transaction's canonical encoding.

    Args:
        tx_id: Unique transaction id.
        tx_type: Transaction kind label (e.g. ``"ehr_update"``).
        origin: Id of the submitting node.
        size_bytes: Transaction size in bytes.
        payload_digest: Optional digest of the payload contents.
    """
    encoded = f"{tx_id}|{tx_type}|{origin}|{size_bytes}|".encode() + payload_digest
    return hashlib.sha256(encoded).digest()


@dataclass(frozen=True, slots=True)
class Block:
    """A block; ``block_hash`` covers the header only, the Merkle root binds the txs.

    Attributes:
        height: Chain position (first real block is 1; genesis parent is 0).
        prev_hash: ``block_hash`` of the parent (``GENESIS_HASH`` at height 1).
        proposer: Id of the proposing node.
        created_s: Simulated creation time in seconds.
        tx_ids: Transaction ids in block order.
        tx_hashes: Transaction digests, same order as ``tx_ids``.
        merkle_root: Merkle root of ``tx_hashes``.
        size_bytes: Total block size in bytes (header + transactions).
        round: View/term/round in which the block was proposed.
        block_hash: SHA-256 of the header, computed at construction.
    """

    height: int
    prev_hash: bytes
    proposer: int
    created_s: float
    tx_ids: tuple[int, ...]
    tx_hashes: tuple[bytes, ...]
    merkle_root: bytes
    size_bytes: int
    round: int = 0
    block_hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_hash", self.header_hash())

    @classmethod
    def build(
        cls,
        height: int,
        prev_hash: bytes,
        proposer: int,
        created_s: float,
        tx_ids: Sequence[int],
        tx_hashes: Sequence[bytes],
        tx_bytes: int,
        round: int = 0,
    ) -> Block:
        """Build a block, computing its Merkle root and size.

        Args:
            height: Chain position (>= 1).
            prev_hash: Parent block hash.
            proposer: Proposing node id.
            created_s: Simulated creation time in seconds.
            tx_ids: Transaction ids in block order.
            tx_hashes: Transaction digests, same order as ``tx_ids``.
            tx_bytes: Total transaction payload size in bytes.
            round: View/term/round of the proposal.

        Raises:
            ValueError: If ``tx_ids`` and ``tx_hashes`` differ in length.
        """
        ids, hashes = tuple(tx_ids), tuple(tx_hashes)
        if len(ids) != len(hashes):
            raise ValueError(f"{len(ids)} tx ids but {len(hashes)} tx hashes")
        return cls(
            height=height,
            prev_hash=prev_hash,
            proposer=proposer,
            created_s=created_s,
            tx_ids=ids,
            tx_hashes=hashes,
            merkle_root=compute_merkle_root(hashes),
            size_bytes=HEADER_BYTES + tx_bytes,
            round=round,
        )

    def header_hash(self) -> bytes:
        """Recompute the 32 B header hash from the current field values."""
        encoded = (
            f"{self.height}|{self.prev_hash.hex()}|{self.proposer}|{self.created_s!r}|"
            f"{self.merkle_root.hex()}|{self.size_bytes}|{self.round}"
        ).encode()
        return hashlib.sha256(encoded).digest()

    @property
    def tx_count(self) -> int:
        """Number of transactions in the block."""
        return len(self.tx_ids)

    @property
    def short_hash(self) -> str:
        """First 8 hex characters of ``block_hash``."""
        return self.block_hash.hex()[:8]
