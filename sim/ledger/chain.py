"""Per-node append-only ledger and whole-chain verification."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from sim.ledger.block import GENESIS_HASH, Block
from sim.ledger.merkle import merkle_root

__all__ = ["Ledger", "LedgerError", "verify_chain"]


class LedgerError(Exception):
    """Raised when a block cannot be appended to a ledger."""


class _BlockView(Sequence[Block]):
    """Read-only, zero-copy view over a ledger's block list."""

    __slots__ = ("_blocks",)

    def __init__(self, blocks: list[Block]) -> None:
        self._blocks = blocks

    @overload
    def __getitem__(self, index: int) -> Block: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Block, ...]: ...
    def __getitem__(self, index: int | slice) -> Block | tuple[Block, ...]:
        if isinstance(index, slice):
            return tuple(self._blocks[index])
        return self._blocks[index]

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[Block]:
        return iter(self._blocks)

    def __repr__(self) -> str:
        return f"<blocks 1..{len(self._blocks)}>"


class Ledger:
    """An append-only chain of blocks held by one node (heights start at 1)."""

    __slots__ = ("_blocks", "_tx_count")

    def __init__(self) -> None:
        self._blocks: list[Block] = []
        self._tx_count: int = 0

    def append(self, block: Block) -> None:
        """Append ``block`` as the new head.

        Raises:
            LedgerError: If the block's height or parent hash does not extend the head.
        """
        if block.height != self.height + 1:
            raise LedgerError(
                f"block {block.short_hash} has height {block.height}, expected {self.height + 1}"
            )
        if block.prev_hash != self.head_hash:
            raise LedgerError(
                f"block {block.short_hash} at height {block.height} has parent "
                f"{block.prev_hash.hex()[:8]}, expected head {self.head_hash.hex()[:8]}"
            )
        self._blocks.append(block)
        self._tx_count += block.tx_count

    @property
    def height(self) -> int:
        """Height of the head block (0 when empty)."""
        return len(self._blocks)

    @property
    def head_hash(self) -> bytes:
        """Hash of the head block (``GENESIS_HASH`` when empty)."""
        return self._blocks[-1].block_hash if self._blocks else GENESIS_HASH

    @property
    def blocks(self) -> Sequence[Block]:
        """Read-only view of the blocks, index 0 is height 1."""
        return _BlockView(self._blocks)

    @property
    def tx_count(self) -> int:
        """Total number of transactions in the chain."""
        return self._tx_count

    def block_at(self, height: int) -> Block:
        """Return the block at ``height`` (1..``self.height``).

        Raises:
            IndexError: If no block exists at that height.
        """
        if not 1 <= height <= len(self._blocks):
            raise IndexError(f"no block at height {height} (chain height {self.height})")
        return self._blocks[height - 1]

    def hash_at(self, height: int) -> bytes:
        """Return the block hash at ``height``; height 0 gives ``GENESIS_HASH``."""
        return GENESIS_HASH if height == 0 else self.block_at(height).block_hash

    def holds(self, height: int, block_hash: bytes) -> bool:
        """True if the block at ``height`` (0: genesis) is on this ledger and has hash ``block_hash``."""
        if height == 0:
            return block_hash == GENESIS_HASH
        blocks = self._blocks
        return 0 < height <= len(blocks) and blocks[height - 1].block_hash == block_hash

    def __len__(self) -> int:
        return len(self._blocks)


def _content_problems(block: Block) -> list[str]:
    """Check a block's self-consistency (header hash, tx lists, Merkle root)."""
    problems: list[str] = []
    h = block.height
    if block.header_hash() != block.block_hash:
        problems.append(f"height {h}: header hash does not match block hash")
    if len(block.tx_ids) != len(block.tx_hashes):
        problems.append(
            f"height {h}: {len(block.tx_ids)} tx ids but {len(block.tx_hashes)} tx hashes"
        )
    if merkle_root(block.tx_hashes) != block.merkle_root:
        problems.append(f"height {h}: merkle root does not match its transactions")
    return problems


def verify_chain(
    blocks: Sequence[Block], verified: dict[bytes, bool] | None = None
) -> list[str]:
    """Verify block contents and linkage of a chain starting at height 1.

    Args:
        blocks: Blocks in chain order; ``blocks[0]`` must be height 1.
        verified: Optional cache ``block_hash -> content OK`` shared across
            calls, so each distinct block's content is checked once. Linkage is
            always checked. A cached block mutated afterwards is not re-checked.

    Returns:
        Human-readable problems naming the height; empty if the chain is valid.
    """
    problems: list[str] = []
    prev_hash = GENESIS_HASH
    for i, block in enumerate(blocks):
        expected_height = i + 1
        if block.height != expected_height:
            problems.append(f"height {block.height}: expected height {expected_height}")
        if block.prev_hash != prev_hash:
            problems.append(f"height {block.height}: prev_hash does not link to parent")
        if verified is None or not verified.get(block.block_hash, False):
            content = _content_problems(block)
            problems.extend(content)
            if verified is not None:
                verified[block.block_hash] = not content
        prev_hash = block.block_hash
    return problems
