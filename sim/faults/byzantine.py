"""Byzantine behaviours: interceptors on what a node sends, admits and proposes.

A behaviour is installed on a node (``node.behaviour``) for the window of its
fault; the node's protocol runs unchanged and never knows. The node calls
:meth:`Behaviour.transmit` for every message it sends, :meth:`Behaviour.refuses`
for every transaction it would admit and :meth:`Behaviour.filter_proposal` for
every block it builds. Colluders (nodes of one ``group``) are treated honestly.

Honest nodes defend themselves with :class:`BlockGuard`, active in every run that
has Byzantine faults: every block a message carries (``Message.carried_blocks()``) must
have a header hash matching its header, a Merkle root matching its transaction
hashes, transaction hashes matching the submitted transactions, a parent that
exists (some node built it) and, for consecutive blocks in one message, the
block before it as parent. A message with an invalid block is dropped whole and
counted. Whether a valid block extends the receiver's own chain is the
protocol's business; a protocol misled into delivering one that does not is
refused by the node (``block_refused`` rows) in runs with Byzantine faults.

Equivocation needs a conflicting variant of a message: messages that carry this
node's blocks get sibling blocks (same height and parent, other content);
messages without blocks conflict only if their class defines
``Message.equivocal()`` (e.g. a vote for another digest, :func:`other_digest`). A
message with neither goes to everyone unchanged. Colluders equivocate together: when
a vote's variant names another digest in place of a block one of the group sent a
sibling of, the variant names that sibling instead, so the variant half of the honest
nodes sees the group vote for the sibling it received (with n = 4, two colluders and
one honest node then form a quorum on each side: both halves can finalize).

Simplifications: ``invalid`` corrupts the copies of its blocks that others
receive, not its own state, so once the fault ends the node re-sends valid
blocks (a protocol can recover). "Some node built the parent" is checked against
the simulation's index of blocks: it stands for a receiver that would fetch an
unknown parent from its peers and find that none has it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sim.ledger import GENESIS_HASH, Block, merkle_root, tx_digest

if TYPE_CHECKING:
    from sim.consensus.base import Message
    from sim.experiment.simulation import Simulation
    from sim.faults.spec import ByzantineFault
    from sim.node.node import Node
    from sim.workload.transaction import Transaction

__all__ = ["Behaviour", "BlockGuard", "corrupt_block", "make_behaviour", "other_digest", "sibling_block"]


def _digest(tag: bytes, data: bytes) -> bytes:
    return hashlib.sha256(tag + data).digest()


def other_digest(digest: bytes) -> bytes:
    """A digest conflicting with ``digest``, for the equivocal variant of a vote."""
    return _digest(b"equivocal", digest)


def sibling_block(block: Block) -> Block:
    """A valid block conflicting with ``block``: same height and parent, other content."""
    ids, hashes = block.tx_ids[::-1], block.tx_hashes[::-1]
    return dataclasses.replace(
        block,
        created_s=block.created_s + 1e-6,  # differs even for an empty block
        tx_ids=ids,
        tx_hashes=hashes,
        merkle_root=merkle_root(hashes),
    )


def corrupt_block(block: Block, how: str) -> Block:
    """``block`` made invalid: ``merkle_root``, ``tx_hash``, ``parent`` or ``block_hash``."""
    if how == "tx_hash" and block.tx_hashes:
        hashes = (_digest(b"forged", block.tx_hashes[0]), *block.tx_hashes[1:])
        return dataclasses.replace(block, tx_hashes=hashes, merkle_root=merkle_root(hashes))
    if how == "parent":
        return dataclasses.replace(block, prev_hash=_digest(b"forged", block.prev_hash))
    if how == "block_hash":
        bad = dataclasses.replace(block)
        object.__setattr__(bad, "block_hash", _digest(b"forged", block.block_hash))
        return bad
    # merkle_root (and tx_hash of an empty block): the root no longer covers the transactions
    return dataclasses.replace(block, merkle_root=_digest(b"tampered", block.merkle_root))


class Behaviour:
    """Honest pass-through; subclasses change one thing.

    Args:
        sim: the simulation.
        fault_id: index of the fault in the scenario.
        node_id: the Byzantine node.
        colluders: its colluding group (itself included).
    """

    #: reason recorded for transactions this behaviour drops
    refusal = ""

    def __init__(self, sim: Simulation, fault_id: int, node_id: int, colluders: frozenset[int]) -> None:
        self.sim = sim
        self.fault_id = fault_id
        self.node_id = node_id
        self.colluders = colluders | {node_id}
        self.counts: Counter[str] = Counter()
        self.held: Counter[int] = Counter()  # transactions inside withheld messages

    def transmit(self, node: Node, dsts: Sequence[int], msg: Message, ready_s: float) -> None:
        """Send ``msg`` (signed, ready at ``ready_s``) to ``dsts`` the Byzantine way."""
        friends = [d for d in dsts if d in self.colluders]
        others = [d for d in dsts if d not in self.colluders]
        if friends:
            self.sim.network.multicast(node.node_id, friends, msg, ready_s)
        if others:
            self.to_honest(node, others, msg, ready_s)

    def to_honest(self, node: Node, dsts: list[int], msg: Message, ready_s: float) -> None:
        self.sim.network.multicast(node.node_id, dsts, msg, ready_s)

    def refuses(self, tx: Transaction) -> bool:
        """True if this node will not admit ``tx`` to its mempool."""
        return False

    def filter_proposal(self, node: Node, txs: Sequence[Transaction]) -> Sequence[Transaction]:
        """The transactions this node puts in a block it builds from ``txs``."""
        return txs

    def _drop_txs(self, msg: Message, why: str) -> None:
        if msg.carries_txs:
            self.sim.recorder.txs_dropped(list(msg.tx_ids()), self.node_id, self.sim.env.now, why)

    def summary(self) -> str:
        """Counters for the recovery table, e.g. ``withheld=120``."""
        return ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))


class Silent(Behaviour):
    """Sends nothing to honest nodes."""

    def to_honest(self, node: Node, dsts: list[int], msg: Message, ready_s: float) -> None:
        self.counts["withheld"] += len(dsts)
        self._drop_txs(msg, f"withheld by silent Byzantine node {self.node_id}")


class Delay(Behaviour):
    """Withholds every message to honest nodes for ``delay_s``."""

    def __init__(self, *args: Any, delay_s: float) -> None:
        super().__init__(*args)
        self.delay_s = delay_s

    def to_honest(self, node: Node, dsts: list[int], msg: Message, ready_s: float) -> None:
        self.counts["delayed"] += len(dsts)
        ids = msg.tx_ids() if msg.carries_txs else ()
        self.held.update(ids)
        epoch = node.epoch
        release_s = max(ready_s, self.sim.env.now) + self.delay_s

        def release(_event: Any) -> None:
            self.held.subtract(ids)
            if node.up and node.epoch == epoch:
                self.sim.network.multicast(node.node_id, dsts, msg, release_s)
            else:
                self._drop_txs(msg, f"withheld by Byzantine node {self.node_id} when it crashed")

        self.sim.env.timeout(release_s - self.sim.env.now).callbacks.append(release)


class Censor(Behaviour):
    """Drops transactions of some origins or types from its mempool and its blocks."""

    def __init__(self, *args: Any, origins: Sequence[int], tx_types: Sequence[str]) -> None:
        super().__init__(*args)
        self.origins = frozenset(origins)
        self.tx_types = frozenset(tx_types)
        self.refusal = f"censored by Byzantine node {self.node_id}"

    def refuses(self, tx: Transaction) -> bool:
        if tx.origin in self.origins or tx.tx_type in self.tx_types:
            self.counts["censored"] += 1
            return True
        return False

    def filter_proposal(self, node: Node, txs: Sequence[Transaction]) -> Sequence[Transaction]:
        kept: list[Transaction] = []
        dropped: list[int] = []
        for tx in txs:
            if self.refuses(tx):
                dropped.append(tx.tx_id)
            else:
                kept.append(tx)
        if dropped:
            self.sim.recorder.txs_dropped(dropped, self.node_id, self.sim.env.now, self.refusal)
        return kept


class _Rewriter(Behaviour):
    """Replaces this node's own blocks in what it sends (one consistent copy per block)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._copies: dict[bytes, Block] = {}

    def make_copy(self, block: Block) -> Block:
        raise NotImplementedError

    def _rewrite(self, block: Block) -> Block:
        if block.proposer not in self.colluders:
            return block
        copy = self._copies.get(block.block_hash)
        if copy is None:
            copy = self._copies[block.block_hash] = self.make_copy(block)
            self.sim.block_variant(block, copy)
        return copy


class Invalid(_Rewriter):
    """Its proposals reach honest nodes corrupted."""

    def __init__(self, *args: Any, how: str) -> None:
        super().__init__(*args)
        self.how = how

    def make_copy(self, block: Block) -> Block:
        return corrupt_block(block, self.how)

    def to_honest(self, node: Node, dsts: list[int], msg: Message, ready_s: float) -> None:
        bad = msg.map_blocks(self._rewrite)
        if bad is not msg:
            self.counts["corrupted"] += len(dsts)
        self.sim.network.multicast(node.node_id, dsts, bad, ready_s)


class Equivocate(_Rewriter):
    """Sends the original to one half of the honest nodes and a conflicting variant to the other."""

    @property
    def variant_half(self) -> frozenset[int]:
        """Honest nodes that get the variants: the same for every colluder, read when sending
        (a group that grows later changes who is honest)."""
        honest = sorted(set(range(self.sim.n)) - self.colluders)
        return frozenset(honest[len(honest) // 2 :])

    def make_copy(self, block: Block) -> Block:
        return sibling_block(block)

    def _group_sibling(self, digest: bytes) -> bytes | None:
        """Hash of the sibling some colluder sent of the block ``digest`` (None if none)."""
        mine = self._copies.get(digest)
        if mine is not None:
            return mine.block_hash
        behaviours = self.sim.faults.behaviours if self.sim.faults is not None else ()
        for b in behaviours:
            if isinstance(b, Equivocate) and b.node_id in self.colluders and digest in b._copies:
                return b._copies[digest].block_hash
        return None

    def _with_siblings(self, msg: Message, variant: Message) -> Message:
        """``variant`` with each changed digest field naming the group's sibling, if there is one."""
        if not dataclasses.is_dataclass(msg):
            return variant
        changes: dict[str, bytes] = {}
        for f in dataclasses.fields(msg):
            old = getattr(msg, f.name)
            if isinstance(old, bytes) and getattr(variant, f.name) != old:
                sibling = self._group_sibling(old)
                if sibling is not None:
                    changes[f.name] = sibling
        return dataclasses.replace(variant, **changes) if changes else variant  # type: ignore[type-var]

    def to_honest(self, node: Node, dsts: list[int], msg: Message, ready_s: float) -> None:
        variant = msg.equivocal()
        if variant is None:
            variant = msg.map_blocks(self._rewrite)
        else:
            variant = self._with_siblings(msg, variant)
        second = [d for d in dsts if d in self.variant_half]
        if variant is msg or not second:
            self.sim.network.multicast(node.node_id, dsts, msg, ready_s)
            return
        first = [d for d in dsts if d not in self.variant_half]
        if first:
            self.sim.network.multicast(node.node_id, first, msg, ready_s)
        self.counts["equivocated"] += len(second)
        ready2_s = node.cpu.reserve(self.sim.env.now, node.costs.sign_s)  # the variant is signed too
        self.sim.network.multicast(node.node_id, second, variant, max(ready_s, ready2_s))


def make_behaviour(sim: Simulation, fault_id: int, spec: ByzantineFault, node_id: int, colluders: frozenset[int]) -> Behaviour:
    """The behaviour object for one node of a ``byzantine`` fault."""
    args = (sim, fault_id, node_id, colluders)
    if spec.behaviour == "silent":
        return Silent(*args)
    if spec.behaviour == "delay":
        assert spec.delay_s is not None
        return Delay(*args, delay_s=spec.delay_s)
    if spec.behaviour == "censor":
        return Censor(*args, origins=spec.censor_origins, tx_types=spec.censor_tx_types)
    if spec.behaviour == "invalid":
        return Invalid(*args, how=spec.corrupt)
    return Equivocate(*args)


class BlockGuard:
    """Block validity checks of honest receivers, and the record of what they refused.

    Args:
        sim: the simulation.
        log: ``log(action, nodes, detail)`` writes a row of the faults table.
    """

    def __init__(self, sim: Simulation, log: Any) -> None:
        self.sim = sim
        self._log = log
        self._content: dict[bytes, str] = {}  # block hash -> content problem ("" if valid)
        self.colluders: dict[int, frozenset[int]] = {}  # node -> its colluding group, while Byzantine
        self.rejected_blocks: set[tuple[int, bytes]] = set()
        self.rejected_messages = 0
        self.refused_blocks = 0
        self._logged: set[tuple[int, int, str]] = set()

    def content_problem(self, block: Block) -> str:
        """What is wrong with a block on its own ("" if nothing); cached per block."""
        problem = self._content.get(block.block_hash)
        if problem is not None:
            return problem
        problem = ""
        if block.header_hash() != block.block_hash:
            problem = "header hash does not match the header"
        elif merkle_root(block.tx_hashes) != block.merkle_root or len(block.tx_ids) != len(block.tx_hashes):
            problem = "Merkle root does not match the transactions"
        elif block.prev_hash != GENESIS_HASH and not self.sim.has_block(block.prev_hash):
            problem = "its parent is no block anyone built (forged parent hash)"
        else:
            txs = self.sim.txs
            for tx_id, h in zip(block.tx_ids, block.tx_hashes):
                tx = txs[tx_id] if 0 <= tx_id < len(txs) else None
                if tx is None or tx_digest(tx.tx_id, tx.tx_type, tx.origin, tx.size_bytes) != h:
                    problem = f"transaction {tx_id} does not match what its client signed"
                    break
        self._content[block.block_hash] = problem
        return problem

    def _problem(self, blocks: Sequence[Block]) -> str:
        before: Block | None = None
        for block in blocks:
            problem = self.content_problem(block)
            if problem:
                return f"height {block.height}: {problem}"
            if before is not None and block.height == before.height + 1 and block.prev_hash != before.block_hash:
                return f"height {block.height}: parent is not the block before it in the message"
            before = block
        return ""

    def accepts(self, node: Node, src: int, msg: Message) -> bool:
        """True if ``node`` hands ``msg`` to its protocol; False: dropped as invalid and counted."""
        blocks = msg.carried_blocks()
        if not blocks or src in self.colluders.get(node.node_id, ()):
            return True
        problem = self._problem(blocks)
        if not problem:
            return True
        self.rejected_messages += 1
        self.rejected_blocks.update((node.node_id, b.block_hash) for b in blocks)
        key = (node.node_id, src, problem.split(":", 1)[-1])
        if key not in self._logged:  # one row per receiver, sender and kind of problem
            self._logged.add(key)
            self._log("invalid_block_rejected", [node.node_id], f"{type(msg).__name__} from node {src}: {problem}")
        return False

    def refused(self, node: Node, block: Block, why: str) -> None:
        """``node``'s protocol tried to deliver a block that does not extend its ledger."""
        self.refused_blocks += 1
        if self.refused_blocks <= 20:
            self._log("block_refused", [node.node_id], why)
