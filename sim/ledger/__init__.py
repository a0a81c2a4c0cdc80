"""Ledger data structures: Merkle trees, blocks and per-node chains."""

from __future__ import annotations

from sim.ledger.block import GENESIS_HASH, HEADER_BYTES, Block, tx_digest
from sim.ledger.chain import Ledger, LedgerError, verify_chain
from sim.ledger.merkle import merkle_proof, merkle_root, verify_merkle_proof

__all__ = [
    "GENESIS_HASH",
    "HEADER_BYTES",
    "Block",
    "Ledger",
    "LedgerError",
    "merkle_proof",
    "merkle_root",
    "tx_digest",
    "verify_chain",
    "verify_merkle_proof",
]
