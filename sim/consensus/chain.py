"""Machinery shared by fork-capable chains (``clique``, ``aura``, ``pow``).

A :class:`ChainProtocol` keeps, per node, a tree of the blocks it has seen
(hash, parent, height, total weight = difficulty or work) and follows the
best tip by the protocol's weight and tie-break. Blocks and transactions move
by flooding over the peer graph (``ctx.peers``): a node relays a new valid
block, and a transaction it has not seen, once to every peer but the one it
came from. In phase mode the producer floods in bulk instead
(``ctx.flood``, shortest paths, :mod:`sim.network.gossip`) and nobody relays.

Finality is by depth: once the best tip is ``confirmations`` blocks above a
block of its chain, that block is final and is delivered to the ledger, in
height order. Only the part above the last final block can be reorganised: a
node never switches to a branch that does not contain its final blocks (so its
ledger never forks; nodes that finalized different blocks show up in the
shared safety check).

Also here: orphan buffering (a block whose parent has not arrived waits and
its parent is requested from the sender, up to ``SYNC_BATCH_BLOCKS`` ancestors
per request), a tip request after recovery, and stale-block accounting: each
block that ends up off the final chain is recorded once (kind
``"stale_block"``) by its producer, when the producer finalizes its height.

Simplifications: transaction validity is not re-checked in received blocks
(honest producers never include a transaction twice on one chain); received
blocks are verified (seal and transaction signatures, hashing) on the CPU but
executed only when final; the block tree and the set of known transaction ids
survive a crash (they stand for the node's database), the orphan buffer does not.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from sim.consensus.base import MESSAGE_HEADER_BYTES, Message, Protocol, ProtocolParams
from sim.consensus.common import ForwardTx
from sim.ledger import GENESIS_HASH, Block
from sim.workload.transaction import Transaction

__all__ = [
    "ChainBlock",
    "ChainParams",
    "ChainProtocol",
    "Entry",
    "GetBlocks",
    "SyncBlocks",
    "TxGossip",
]

#: most blocks sent in reply to one request (geth's downloader fetches in batches of
#: similar size; an assumption that only affects how fast a lagging node catches up)
SYNC_BATCH_BLOCKS = 64
#: most blocks waiting for their parent; more are dropped and fetched again later
ORPHAN_LIMIT = 1024
#: a missing parent is requested again after this long without an answer, seconds
SYNC_RETRY_S = 1.0


class ChainParams(ProtocolParams):
    """Scenario keys shared by the fork-capable chains."""

    confirmations: int = Field(5, ge=0, description="blocks on top of a block before it is final")
    min_block_bytes: int = Field(
        0,
        ge=0,
        description="wire size floor of a block, bytes: padding stands for a background load not "
        "simulated transaction by transaction (e.g. 1 MB Bitcoin blocks); 0 = none",
    )


# ------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class ChainBlock(Message):
    """A block on the wire: header, seal, transactions (and any extra header data)."""

    block: Block
    seal_signatures: int = 1
    extra_bytes: int = 0

    @property  # type: ignore[misc]
    def signatures(self) -> int:  # type: ignore[override]
        """The seal plus one signature per transaction, all verified on receipt."""
        return self.seal_signatures + self.block.tx_count

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.block.size_bytes + self.extra_bytes


@dataclass(frozen=True, slots=True)
class TxGossip(ForwardTx):
    """A copy of a transaction relayed to a peer's mempool (its own type name in the messages table).

    A copy, not a hand-over: the sender keeps the transaction in its own mempool, so a
    lost copy loses nothing (``carries_txs`` is False: no drop is recorded for it).
    """

    carries_txs = False


@dataclass(frozen=True, slots=True)
class GetBlocks(Message):
    """Ask a peer for the chain segment ending at ``want`` (its best tip if empty)."""

    want: bytes
    want_height: int
    above_height: int

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + 48


@dataclass(frozen=True, slots=True)
class SyncBlocks(Message):
    """Reply to :class:`GetBlocks`: consecutive blocks, lowest first."""

    items: tuple[ChainBlock, ...]

    @property  # type: ignore[misc]
    def signatures(self) -> int:  # type: ignore[override]
        return sum(item.signatures for item in self.items)

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + sum(item.size_bytes() - MESSAGE_HEADER_BYTES for item in self.items)


# ----------------------------------------------------------------- block tree


@dataclass(slots=True, eq=False)
class Entry:
    """A block in a node's tree.

    Attributes:
        block: the block (None for the genesis root).
        block_hash: its hash.
        height: its height (0 for genesis).
        weight: total difficulty or work of the chain ending here.
        parent: parent entry (None for genesis and, once final, to free memory).
        received_s: when this node accepted it (created it, for its producer), seconds.
    """

    block: Block | None
    block_hash: bytes
    height: int
    weight: int
    parent: Entry | None
    received_s: float

    @property
    def created_s(self) -> float:
        return self.block.created_s if self.block is not None else 0.0

    @property
    def round(self) -> int:
        return self.block.round if self.block is not None else 0


class ChainProtocol(Protocol):
    """Base of fork-capable chains. Subclasses set ``name``/``Params`` and override
    :meth:`validate`, :meth:`block_weight`, :meth:`tie_break`, :meth:`on_new_tip`
    and the timers that make them produce blocks (calling :meth:`produce`)."""

    Params = ChainParams
    params: ChainParams
    supports_phase_mode = True
    #: signatures in a block's seal (PoA: the signer's; PoW: none, the work is the proof)
    seal_signatures: ClassVar[int] = 1

    # ------------------------------------------------------------ subclass hooks

    def block_weight(self, block: Block) -> int:
        """Difficulty (work) of one block; the best chain has the largest sum."""
        return 1

    def tie_break(self, candidate: Entry, current: Entry) -> bool:
        """True if ``candidate`` beats ``current`` at equal weight (default: first seen wins)."""
        return False

    def validate(self, parent: Entry, block: Block) -> str | None:
        """Why ``block`` (on ``parent``) is invalid, or None if it is valid."""
        return None

    def extra_bytes(self, height: int) -> int:
        """Header data beyond the common header, bytes (e.g. a checkpoint's signer list)."""
        return 0

    def on_new_tip(self, old: Entry) -> None:
        """The best tip changed from ``old`` to ``self.tip``."""

    def on_accepted(self, entry: Entry) -> None:
        """A block entered the tree (received or produced here)."""

    def on_finalized(self, entry: Entry) -> None:
        """A block became final here."""

    def on_chain_start(self) -> None:
        """Start producing (called after the tree is set up)."""

    def on_chain_recover(self) -> None:
        """Restart producing after a crash."""

    # -------------------------------------------------------------------- state

    def on_start(self) -> None:
        genesis = Entry(None, GENESIS_HASH, 0, 0, None, 0.0)
        self.final = genesis
        self.tip = genesis
        self.tree: dict[bytes, Entry] = {GENESIS_HASH: genesis}
        self.final_blocks: list[Block] = []  # index h - 1 holds height h
        self.final_received_s = array("d")  # when each final block was accepted here
        self.orphans: dict[bytes, list[tuple[ChainBlock, int, bool]]] = {}  # by missing parent hash
        self.orphan_by_hash: dict[bytes, ChainBlock] = {}
        self.requested: dict[bytes, float] = {}
        self.dead: set[bytes] = set()  # invalid, or on a branch that lost below the final block
        self.seen_txs: set[int] = set()
        self.chain_txs: set[int] = set()  # in blocks of the best chain above the final block
        self.path: deque[Entry] = deque()  # the best chain above the final block, lowest first
        self._phase = self.ctx.phase_mode  # fixed for the whole run
        self._depth = self.params.confirmations
        self.own: dict[int, list[bytes]] = {}  # this node's non-final blocks, by height
        self.on_chain_start()

    def pending_tx_ids(self) -> list[int]:
        ids = [t for e in self.tree.values() if e is not self.final and e.block for t in e.block.tx_ids]
        ids.extend(t for m in self.orphan_by_hash.values() for t in m.block.tx_ids)
        return ids

    def on_crash(self) -> None:
        self.orphans.clear()
        self.orphan_by_hash.clear()
        self.requested.clear()

    def on_recover(self) -> None:
        peers = self.ctx.peers
        if peers:  # ask one peer for its best chain: this node missed blocks while down
            peer = peers[int(self.ctx.rng.integers(len(peers)))]
            self.ctx.send(peer, GetBlocks(b"", 0, self.final.height))
        self.on_chain_recover()

    # --------------------------------------------------------------- producing

    def produce(self, round: int = 0) -> Entry:
        """Build a block on the best tip from the mempool, adopt it and gossip it."""
        ctx = self.ctx
        parent = self.tip
        block = ctx.make_block(parent.height + 1, parent.block_hash, self._pick_txs(), round)
        msg = self._wrap(block)
        entry = self._add(block, parent)
        self.own.setdefault(block.height, []).append(block.block_hash)
        ctx.record("block_proposed", height=block.height, block=block.short_hash, round=round, txs=block.tx_count)
        self._gossip(msg, None)
        self._consider(entry)
        return entry

    def _pick_txs(self) -> list[Transaction]:
        p = self.params
        skip = self.chain_txs
        picked: list[Transaction] = []
        total = 0
        for tx in self.ctx.mempool:
            if tx.tx_id in skip:
                continue
            if picked and total + tx.size_bytes > p.max_block_bytes:
                break
            picked.append(tx)
            total += tx.size_bytes
            if len(picked) >= p.max_block_tx:
                break
        return picked

    def _wrap(self, block: Block) -> ChainBlock:
        padding = max(0, self.params.min_block_bytes - block.size_bytes)
        return ChainBlock(block, self.seal_signatures, self.extra_bytes(block.height) + padding)

    def _gossip(self, msg: Message, came_from: int | None) -> None:
        """Send to every peer but ``came_from``; in phase mode only the origin floods."""
        ctx = self.ctx
        if self._phase:
            if came_from is None and ctx.peers:
                ctx.flood(msg)
            return
        if not ctx.peers:
            return
        if came_from is None:
            ctx.multicast(ctx.peers, msg)
        else:
            ctx.multicast([p for p in ctx.peers if p != came_from], msg)

    # --------------------------------------------------------------- receiving

    def on_transaction(self, tx: Transaction) -> None:
        self.seen_txs.add(tx.tx_id)
        self._gossip(TxGossip(tx), None)

    def on_message(self, src: int, msg: Message) -> None:
        if type(msg) is ChainBlock:
            entry = self._accept(msg, src, True)
            if entry is not None:
                if self.orphans:
                    self._on_connected([entry])
                else:
                    self._consider(entry)
        elif isinstance(msg, TxGossip):
            tx = msg.tx
            if tx.tx_id not in self.seen_txs:
                self.seen_txs.add(tx.tx_id)
                if self.ctx.admit(tx):
                    self._gossip(msg, src)
        elif isinstance(msg, GetBlocks):
            self._serve(src, msg)
        elif isinstance(msg, SyncBlocks):
            self._on_blocks(msg.items, src, relay=False)

    def _on_blocks(self, items: Iterable[ChainBlock], src: int, relay: bool) -> None:
        new: list[Entry] = []
        for msg in items:
            entry = self._accept(msg, src, relay)
            if entry is not None:
                new.append(entry)
        if new:
            self._on_connected(new)

    def _on_connected(self, new: list[Entry]) -> None:
        """``new`` entered the tree: attach the orphans waiting for them, then choose the tip."""
        stack = list(new)
        while stack and self.orphans:
            for waiting, w_src, w_relay in self.orphans.pop(stack.pop().block_hash, ()):
                del self.orphan_by_hash[waiting.block.block_hash]
                child = self._accept(waiting, w_src, w_relay)
                if child is not None:
                    new.append(child)
                    stack.append(child)
        best = self.tip
        for entry in new:
            if entry.weight > best.weight or (entry.weight == best.weight and self.tie_break(entry, best)):
                best = entry
        if best is not self.tip:
            self._switch(best)

    def _accept(self, msg: ChainBlock, src: int, relay: bool) -> Entry | None:
        """Check ``msg``'s block and add it to the tree; None if known, invalid or orphaned."""
        block = msg.block
        h = block.block_hash
        if h in self.tree or h in self.dead or h in self.orphan_by_hash:
            return None
        if self.requested:
            self.requested.pop(h, None)
        if block.height <= self.final.height:
            if block.height < 1 or self.final_blocks[block.height - 1].block_hash != h:
                self._kill(h)  # lost to a final block: it and its descendants are dead
            return None
        if block.prev_hash in self.dead:
            self._kill(h)
            return None
        parent = self.tree.get(block.prev_hash)
        if parent is None:
            self._buffer(msg, src, relay)
            return None
        problem = "height does not follow its parent" if block.height != parent.height + 1 else None
        problem = problem or self.validate(parent, block)
        if problem is not None:
            self._kill(h)
            self.ctx.record("invalid_block", height=block.height, block=block.short_hash, proposer=block.proposer, src=src, reason=problem)
            return None
        entry = self._add(block, parent)
        if relay and not self._phase:
            self._gossip(msg, src)
        return entry

    def _add(self, block: Block, parent: Entry) -> Entry:
        entry = Entry(block, block.block_hash, block.height, parent.weight + self.block_weight(block), parent, self.ctx.now)
        self.tree[entry.block_hash] = entry
        if block.tx_ids:
            self.seen_txs.update(block.tx_ids)
        self.on_accepted(entry)
        return entry

    def _kill(self, block_hash: bytes) -> None:
        """Mark a block dead, and every orphan waiting on it."""
        stack = [block_hash]
        while stack:
            h = stack.pop()
            self.dead.add(h)
            for waiting, _src, _relay in self.orphans.pop(h, ()):
                child = waiting.block.block_hash
                del self.orphan_by_hash[child]
                stack.append(child)

    def _buffer(self, msg: ChainBlock, src: int, relay: bool) -> None:
        block = msg.block
        if len(self.orphan_by_hash) >= ORPHAN_LIMIT:
            return
        self.orphans.setdefault(block.prev_hash, []).append((msg, src, relay))
        self.orphan_by_hash[block.block_hash] = msg
        # ask for the lowest block missing below the orphans already waiting
        want, want_height = block.prev_hash, block.height - 1
        while want in self.orphan_by_hash:
            lower = self.orphan_by_hash[want].block
            want, want_height = lower.prev_hash, lower.height - 1
        asked = self.requested.get(want)
        if asked is None or self.ctx.now - asked >= SYNC_RETRY_S:
            self.requested[want] = self.ctx.now
            self.ctx.send(src, GetBlocks(want, want_height, self.final.height))

    def _serve(self, src: int, req: GetBlocks) -> None:
        top: Entry | None
        if not req.want:
            top, top_height = self.tip, self.tip.height
        else:
            top = self.tree.get(req.want)
            top_height = top.height if top is not None else req.want_height
            if top is None:
                final_ok = 1 <= top_height <= self.final.height and self.final_blocks[top_height - 1].block_hash == req.want
                if not final_ok:
                    return
        low = max(req.above_height + 1, top_height - SYNC_BATCH_BLOCKS + 1, 1)
        blocks: list[Block] = []
        e = top
        for h in range(top_height, low - 1, -1):
            if e is not None and h > self.final.height:
                assert e.block is not None
                blocks.append(e.block)
                e = e.parent
            else:
                blocks.append(self.final_blocks[h - 1])
        if blocks:
            self.ctx.send(src, SyncBlocks(tuple(self._wrap(b) for b in reversed(blocks))))

    # ---------------------------------------------------- fork choice, finality

    def _consider(self, entry: Entry) -> None:
        """Switch to ``entry`` if it beats the best tip."""
        tip = self.tip
        if entry.weight > tip.weight or (entry.weight == tip.weight and self.tie_break(entry, tip)):
            self._switch(entry)

    def _switch(self, new: Entry) -> None:
        old = self.tip
        if new.parent is old:
            assert new.block is not None
            self.path.append(new)
            if new.block.tx_ids:
                self.chain_txs.update(new.block.tx_ids)
        else:
            a, b = old, new
            while a.height > b.height:
                a = a.parent  # type: ignore[assignment]
            while b.height > a.height:
                b = b.parent  # type: ignore[assignment]
            while a is not b:
                a, b = a.parent, b.parent  # type: ignore[assignment]
            if old.height > a.height:
                self.ctx.record("reorg", depth=old.height - a.height, old_tip=old.block_hash.hex()[:8], new_tip=new.block_hash.hex()[:8])
            path: list[Entry] = []
            e = new
            while e is not self.final:
                path.append(e)
                e = e.parent  # type: ignore[assignment]
            path.reverse()
            self.path = deque(path)
            self.chain_txs = {t for e in path for t in e.block.tx_ids}  # type: ignore[union-attr]
        self.tip = new
        path = self.path
        if len(path) > self._depth:
            while len(path) > self._depth:
                self._deliver(path.popleft())
            if len(self.tree) != len(path) + 1:  # side branches held: drop the dead ones
                self._prune()
        self.on_new_tip(old)

    def _deliver(self, entry: Entry) -> None:
        ctx = self.ctx
        block = entry.block
        assert block is not None
        ctx.deliver_block(block)
        if block.tx_ids:
            if len(ctx.mempool):
                ctx.mempool.remove(block.tx_ids, ctx.now)  # at once: it must not be picked again
            self.chain_txs.difference_update(block.tx_ids)
        self.final_blocks.append(block)
        self.final_received_s.append(entry.received_s)
        if self.own:
            for h in self.own.pop(entry.height, ()):
                if h != entry.block_hash:
                    ctx.record("stale_block", height=entry.height, block=h.hex()[:8], proposer=ctx.node_id)
        del self.tree[self.final.block_hash]
        entry.parent = None
        self.final = entry
        self.on_finalized(entry)

    def _prune(self) -> None:
        """Forget blocks that do not descend from the final block (they can never win)."""
        final = self.final
        keep: dict[bytes, Entry] = {}
        for h, entry in self.tree.items():
            a = entry
            while a.height > final.height:
                a = a.parent  # type: ignore[assignment]
            if a is final:
                keep[h] = entry
            else:
                self.dead.add(h)
        self.tree = keep
        if self.orphan_by_hash:  # orphans that could only attach below the final block
            doomed = [m for m in self.orphan_by_hash.values() if m.block.height <= final.height + 1]
            for msg in doomed:
                h = msg.block.block_hash
                if h not in self.orphan_by_hash:
                    continue  # already dropped as a descendant of another
                siblings = [x for x in self.orphans.pop(msg.block.prev_hash, []) if x[0] is not msg]
                if siblings:
                    self.orphans[msg.block.prev_hash] = siblings
                del self.orphan_by_hash[h]
                self._kill(h)

    # ------------------------------------------------------------------ helpers

    def recent_proposers(self, entry: Entry, count: int) -> list[int]:
        """Proposers of ``entry``'s block and its ancestors, newest first, at most ``count``."""
        out: list[int] = []
        e: Entry | None = entry
        h = entry.height
        while len(out) < count and h >= 1:
            if e is not None and h > self.final.height:
                out.append(e.block.proposer)  # type: ignore[union-attr]
                e = e.parent
            else:
                out.append(self.final_blocks[h - 1].proposer)
            h -= 1
        return out
