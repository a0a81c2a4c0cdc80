"""Bitcoin-style SHA-256 Merkle trees over transaction hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["merkle_proof", "merkle_root", "verify_merkle_proof"]

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()


def _parent(left: bytes, right: bytes) -> bytes:
    """Hash of the concatenation of two child hashes (32 B each)."""
    return hashlib.sha256(left + right).digest()


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    """Compute the parent level, duplicating an odd last node."""
    return [
        _parent(level[i], level[i + 1] if i + 1 < len(level) else level[i])
        for i in range(0, len(level), 2)
    ]


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle root of ``leaf_hashes``.

    Args:
        leaf_hashes: Leaf digests (32 B each), in block order.

    Returns:
        The 32 B root. An empty list gives ``sha256(b"")``; a single leaf
        is its own root.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_proof(leaf_hashes: Sequence[bytes], index: int) -> list[tuple[bytes, bool]]:
    """Return the inclusion proof for the leaf at ``index``.

    Args:
        leaf_hashes: Leaf digests (32 B each), in block order.
        index: Position of the leaf to prove (0-based).

    Returns:
        List of ``(sibling_hash, sibling_is_right)`` pairs from leaf to root.

    Raises:
        IndexError: If ``index`` is out of range.
    """
    if not 0 <= index < len(leaf_hashes):
        raise IndexError(f"leaf index {index} out of range for {len(leaf_hashes)} leaves")
    proof: list[tuple[bytes, bool]] = []
    level = list(leaf_hashes)
    idx = index
    while len(level) > 1:
        if idx % 2 == 0:
            sibling = level[idx + 1] if idx + 1 < len(level) else level[idx]
            proof.append((sibling, True))
        else:
            proof.append((level[idx - 1], False))
        level = _next_level(level)
        idx //= 2
    return proof


def verify_merkle_proof(leaf: bytes, proof: Sequence[tuple[bytes, bool]], root: bytes) -> bool:
    """Check that ``leaf`` is included under ``root`` via ``proof``.

    Args:
        leaf: The 32 B leaf digest.
        proof: Output of :func:`merkle_proof`.
        root: The expected 32 B Merkle root.

    Returns:
        True if folding the proof over ``leaf`` yields ``root``.
    """
    node = leaf
    for sibling, sibling_is_right in proof:
        node = _parent(node, sibling) if sibling_is_right else _parent(sibling, node)
    return node == root
