"""Tests for sim.ledger: Merkle trees, blocks, ledgers and chain verification."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.ledger import (
    GENESIS_HASH,
    HEADER_BYTES,
    Block,
    Ledger,
    LedgerError,
    merkle_proof,
    merkle_root,
    tx_digest,
    verify_chain,
    verify_merkle_proof,
)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaves(n: int) -> list[bytes]:
    return [_h(f"leaf{i}".encode()) for i in range(n)]


def _make_chain(n: int = 5, txs_per_block: int = 3) -> list[Block]:
    blocks: list[Block] = []
    prev = GENESIS_HASH
    for height in range(1, n + 1):
        ids = [height * 100 + j for j in range(txs_per_block)]
        hashes = [tx_digest(i, "ehr_update", height % 3, 512) for i in ids]
        block = Block.build(height, prev, height % 3, height * 0.5, ids, hashes, 512 * len(ids))
        blocks.append(block)
        prev = block.block_hash
    return blocks


def _tamper(block: Block, **changes: object) -> None:
    for name, value in changes.items():
        object.__setattr__(block, name, value)


def test_merkle_root_known_inputs() -> None:
    a, b, c, d = _leaves(4)
    expected = _h(_h(a + b) + _h(c + d))
    assert merkle_root([a, b, c, d]) == expected
    assert merkle_root([a, b]) == _h(a + b)


def test_merkle_root_empty_and_single() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").digest()
    (a,) = _leaves(1)
    assert merkle_root([a]) == a


def test_merkle_odd_leaf_duplicated() -> None:
    a, b, c = _leaves(3)
    assert merkle_root([a, b, c]) == _h(_h(a + b) + _h(c + c))
    a, b, c, d, e = _leaves(5)
    left = _h(_h(a + b) + _h(c + d))
    right = _h(_h(e + e) + _h(e + e))
    assert merkle_root([a, b, c, d, e]) == _h(left + right)


def test_merkle_proofs_verify_and_wrong_leaf_fails() -> None:
    leaves = _leaves(7)
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = merkle_proof(leaves, i)
        assert verify_merkle_proof(leaf, proof, root)
    proof = merkle_proof(leaves, 2)
    assert not verify_merkle_proof(leaves[3], proof, root)
    assert not verify_merkle_proof(_h(b"intruder"), proof, root)
    with pytest.raises(IndexError):
        merkle_proof(leaves, 7)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=50))
def test_every_proof_verifies_property(leaves: list[bytes]) -> None:
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        assert verify_merkle_proof(leaf, merkle_proof(leaves, i), root)


def test_block_build_fields() -> None:
    ids = [1, 2, 3]
    hashes = [tx_digest(i, "claim", 0, 300) for i in ids]
    block = Block.build(1, GENESIS_HASH, 4, 1.25, ids, hashes, 900, round=2)
    assert block.size_bytes == HEADER_BYTES + 900
    assert block.merkle_root == merkle_root(hashes)
    assert block.tx_count == 3
    assert block.round == 2
    assert block.header_hash() == block.block_hash
    assert len(block.block_hash) == 32
    assert block.short_hash == block.block_hash.hex()[:8]
    assert tx_digest(1, "claim", 0, 300) != tx_digest(1, "claim", 0, 300, b"x")
    with pytest.raises(ValueError):
        Block.build(1, GENESIS_HASH, 0, 0.0, [1, 2], hashes[:1], 10)


def test_valid_chain_verifies_clean() -> None:
    assert verify_chain(_make_chain(5)) == []
    assert verify_chain([]) == []


def test_tampered_tx_hash_detected() -> None:
    blocks = _make_chain(5)
    _tamper(blocks[2], tx_hashes=(_h(b"forged"),) + blocks[2].tx_hashes[1:])
    assert verify_chain(blocks) == ["height 3: merkle root does not match its transactions"]


def test_tx_list_length_mismatch_detected() -> None:
    blocks = _make_chain(5)
    _tamper(blocks[1], tx_ids=blocks[1].tx_ids[:-1])
    problems = verify_chain(blocks)
    assert problems == ["height 2: 2 tx ids but 3 tx hashes"]


def test_changed_created_s_detected() -> None:
    blocks = _make_chain(5)
    _tamper(blocks[3], created_s=99.0)
    assert verify_chain(blocks) == ["height 4: header hash does not match block hash"]


def test_broken_prev_hash_link_detected() -> None:
    blocks = _make_chain(5)
    b = blocks[3]
    relinked = Block.build(
        b.height, _h(b"wrong parent"), b.proposer, b.created_s, b.tx_ids, b.tx_hashes, 1536
    )
    blocks[3] = relinked
    problems = verify_chain(blocks)
    assert "height 4: prev_hash does not link to parent" in problems
    assert "height 5: prev_hash does not link to parent" in problems
    assert len(problems) == 2


def test_gap_in_heights_detected() -> None:
    blocks = _make_chain(5)
    b = blocks[2]
    skipped = Block.build(
        7, b.prev_hash, b.proposer, b.created_s, b.tx_ids, b.tx_hashes, 1536
    )
    blocks[2] = skipped
    problems = verify_chain(blocks)
    assert "height 7: expected height 3" in problems
    assert any(p.startswith("height 4: prev_hash") for p in problems)


def test_verified_cache_same_answer_and_skips_content() -> None:
    blocks = _make_chain(5)
    cache: dict[bytes, bool] = {}
    assert verify_chain(blocks, cache) == verify_chain(blocks) == []
    assert cache == {b.block_hash: True for b in blocks}
    # A second node sharing the same Block objects: content is not re-checked,
    # so mutating a cached block after verification goes unnoticed...
    _tamper(blocks[0], tx_hashes=(_h(b"forged"),) * 3)
    assert verify_chain(blocks, cache) == []
    # ...while an uncached verification still catches it.
    assert verify_chain(blocks) == ["height 1: merkle root does not match its transactions"]
    # Linkage is still checked per chain even when content is cached.
    assert verify_chain(blocks[1:], cache) != []


def test_verified_cache_records_bad_blocks() -> None:
    blocks = _make_chain(3)
    _tamper(blocks[1], created_s=42.0)
    cache: dict[bytes, bool] = {}
    first = verify_chain(blocks, cache)
    assert first == verify_chain(blocks, cache) == verify_chain(blocks)
    assert cache[blocks[1].block_hash] is False
    assert cache[blocks[0].block_hash] is True


def test_ledger_append_and_accessors() -> None:
    ledger = Ledger()
    assert ledger.height == 0 and len(ledger) == 0
    assert ledger.head_hash == GENESIS_HASH
    assert ledger.hash_at(0) == GENESIS_HASH
    blocks = _make_chain(5)
    for block in blocks:
        ledger.append(block)
    assert ledger.height == len(ledger) == 5
    assert ledger.head_hash == blocks[-1].block_hash
    assert ledger.block_at(3) is blocks[2]
    assert ledger.hash_at(5) == blocks[4].block_hash
    assert ledger.tx_count == 15
    assert list(ledger.blocks) == blocks
    assert ledger.blocks[-1] is blocks[-1]
    assert verify_chain(ledger.blocks) == []
    with pytest.raises(IndexError):
        ledger.block_at(6)
    with pytest.raises(IndexError):
        ledger.block_at(0)
    assert not hasattr(ledger.blocks, "append")


def test_ledger_holds_only_its_own_blocks_at_their_heights() -> None:
    ledger = Ledger()
    blocks = _make_chain(4)
    for block in blocks[:3]:
        ledger.append(block)
    assert ledger.holds(0, GENESIS_HASH) and not ledger.holds(0, blocks[0].block_hash)
    assert all(ledger.holds(b.height, b.block_hash) for b in blocks[:3])
    assert not ledger.holds(4, blocks[3].block_hash)  # above the head
    assert not ledger.holds(2, blocks[0].block_hash)  # another block's hash
    assert not ledger.holds(-1, blocks[0].block_hash)


def test_ledger_rejects_wrong_height_and_parent() -> None:
    ledger = Ledger()
    blocks = _make_chain(3)
    ledger.append(blocks[0])
    for bad_height in (blocks[2], blocks[0]):
        with pytest.raises(LedgerError):
            ledger.append(bad_height)
    b = blocks[1]
    orphan = Block.build(2, _h(b"other fork"), b.proposer, b.created_s, b.tx_ids, b.tx_hashes, 0)
    with pytest.raises(LedgerError):
        ledger.append(orphan)
    assert ledger.height == 1 and ledger.tx_count == 3
    ledger.append(b)
    assert ledger.height == 2
