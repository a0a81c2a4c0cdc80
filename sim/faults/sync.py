"""Catch-up of a node that rejoins (after a crash or a partition): block sync and its cost.

Every rejoin of a node that is behind is tracked until its ledger reaches the
height the network had when it came back; a ``caught_up`` row then records the
blocks and bytes it took (or ``catch_up_interrupted`` if it went down again).

Protocols that bring rejoining nodes up to date themselves (``syncs_ledger``,
e.g. Raft's AppendEntries) are only measured. For the others the framework
runs block sync: the node asks the most advanced peer it can reach for the
blocks above its ledger (``SyncRequest``) and receives them in batches
(``SyncBlocks``); both are real messages (signed, serialized on the uplink,
verified and hashed on the receiver's CPU, counted in the messages table), and
the node delivers the blocks to its ledger on its protocol's behalf. A Byzantine
peer is never chosen as the source: state transfer in a BFT system is checked
against a quorum certificate, which we model by not letting a liar serve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.consensus.base import MESSAGE_HEADER_BYTES, Message
from sim.ledger import Block

if TYPE_CHECKING:
    from sim.experiment.simulation import Simulation

__all__ = ["LedgerSync", "SyncBlocks", "SyncRequest"]

#: how often a catching-up node's height is checked, seconds (the resolution of ``took_s``)
POLL_S = 0.01
#: most blocks in one SyncBlocks message
BATCH_BLOCKS = 64


@dataclass(frozen=True, slots=True)
class SyncRequest(Message):
    """Ask a peer for its blocks from ``from_height`` up."""

    from_height: int

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + 8


@dataclass(frozen=True, slots=True)
class SyncBlocks(Message):
    """A batch of consecutive blocks; ``more`` if the sender holds further ones."""

    blocks: tuple[Block, ...]
    more: bool

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + sum(b.size_bytes for b in self.blocks)


class LedgerSync:
    """Measures every catch-up and, for protocols without their own, performs block sync.

    Args:
        sim: the simulation.
        log: ``log(action, nodes, detail)`` writes a row of the faults table.
        is_byzantine: ``is_byzantine(node_id)`` now.
    """

    def __init__(self, sim: Simulation, log: Any, is_byzantine: Any) -> None:
        self.sim = sim
        self._log = log
        self._is_byzantine = is_byzantine
        self.transfers = not sim.protocol_cls.syncs_ledger
        self._tracking: set[int] = set()
        if self.transfers:
            sim.services[SyncRequest] = self._on_request
            sim.services[SyncBlocks] = self._on_blocks

    def _honest_top(self, exclude: int) -> int:
        heights = [n.ledger.height for n in self.sim.nodes if n.up and n.node_id != exclude and not self._is_byzantine(n.node_id)]
        return max(heights, default=0)

    def rejoined(self, node_id: int) -> None:
        """``node_id`` is up and connected again: track (and, if needed, run) its catch-up."""
        node = self.sim.nodes[node_id]
        target = self._honest_top(node_id)
        if not node.up or node.ledger.height >= target or node_id in self._tracking:
            return
        self._tracking.add(node_id)
        start_s = self.sim.env.now
        start_height = node.ledger.height
        start_bytes = self._received_bytes(node_id)
        epoch = node.epoch
        self._log("catch_up_started", [node_id], f"ledger at height {start_height}, network at {target}")

        def poll(_event: Any = None) -> None:
            if not node.up or node.epoch != epoch:
                self._tracking.discard(node_id)
                self._log("catch_up_interrupted", [node_id], f"went down at height {node.ledger.height}")
                return
            if node.ledger.height >= target:
                self._tracking.discard(node_id)
                fetched = [node.ledger.block_at(h) for h in range(start_height + 1, target + 1)]
                self._log(
                    "caught_up",
                    [node_id],
                    f"blocks={len(fetched)} block_bytes={sum(b.size_bytes for b in fetched)} "
                    f"received_bytes={self._received_bytes(node_id) - start_bytes} took_s={self.sim.env.now - start_s:.3f}",
                )
                return
            self.sim.env.timeout(POLL_S).callbacks.append(poll)

        poll()
        if self.transfers:
            self._request(node_id)

    def _received_bytes(self, node_id: int) -> int:
        return sum(v[1] for (dst, _), v in self.sim.network.received.items() if dst == node_id)

    # ------------------------------------------------------------ block sync

    def _request(self, node_id: int) -> None:
        node = self.sim.nodes[node_id]
        net = self.sim.network
        sources = [
            n
            for n in self.sim.nodes
            if n.node_id != node_id and n.up and net.reachable(node_id, n.node_id) and not self._is_byzantine(n.node_id)
        ]
        best = max(sources, key=lambda n: (n.ledger.height, -n.node_id), default=None)
        if best is not None and best.ledger.height > node.ledger.height:
            node.send(best.node_id, SyncRequest(node.ledger.height + 1))

    def _on_request(self, src: int, dst: int, msg: SyncRequest) -> None:
        source = self.sim.nodes[dst]
        if not source.up:
            return
        source.cpu_work(source.costs.verify_s)
        first = msg.from_height
        last = min(source.ledger.height, first + BATCH_BLOCKS - 1)
        if last >= first:
            blocks = tuple(source.ledger.block_at(h) for h in range(first, last + 1))
            source.send(src, SyncBlocks(blocks, more=source.ledger.height > last))

    def _on_blocks(self, src: int, dst: int, msg: SyncBlocks) -> None:
        node = self.sim.nodes[dst]
        if not node.up:
            return
        cost_s = node.costs.verify_s + msg.size_bytes() * 8.0 / node.costs.hash_rate_bps
        done_s = node.cpu_work(cost_s)
        epoch = node.epoch

        def apply(_event: Any) -> None:
            if not node.up or node.epoch != epoch:
                return
            for block in msg.blocks:
                if block.height == node.ledger.height + 1 and block.prev_hash == node.ledger.head_hash:
                    node.deliver_block(block)
                    node.synced_through = block.height
            if msg.more:
                self._request(dst)

        self.sim.env.timeout(max(0.0, done_s - self.sim.env.now)).callbacks.append(apply)
