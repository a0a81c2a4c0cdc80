"""The protocol's window on the world: everything a protocol may touch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.ledger import Block, tx_digest

if TYPE_CHECKING:
    from sim.consensus.base import Message
    from sim.network.network import Network
    from sim.node.mempool import Mempool
    from sim.node.node import Node
    from sim.workload.transaction import Transaction

__all__ = ["NodeContext", "Timer"]


@dataclass(eq=False)
class Timer:
    """Handle of a pending timer; pass it to ``ctx.cancel_timer``."""

    name: str
    data: Any
    fire_s: float
    epoch: int
    cancelled: bool = field(default=False)


class NodeContext:
    """What one node's protocol sees. Protocols call only these members.

    Attributes:
        node_id: this node's id (0..n-1).
        nodes: every node id in the network.
        peers: this node's overlay neighbours (every other node on a full mesh).
        rng: this node's protocol random stream.
    """

    def __init__(self, node: Node, nodes: Sequence[int], peers: Sequence[int], rng: np.random.Generator) -> None:
        self._node = node
        self.node_id = node.node_id
        # a range stays a range: n contexts holding n-tuples would cost O(n^2) memory
        self.nodes: Sequence[int] = nodes if isinstance(nodes, range) else tuple(nodes)
        self.peers = tuple(peers)
        self._others: tuple[int, ...] | None = None
        self.rng = rng

    @property
    def others(self) -> tuple[int, ...]:
        """Every node but this one (made on first use)."""
        if self._others is None:
            self._others = tuple(i for i in self.nodes if i != self.node_id)
        return self._others

    @property
    def phase_mode(self) -> bool:
        """True if this run resolves all-to-all phases with numpy (see DESIGN.md, two modes)."""
        return self._node.sim.phase_mode

    @property
    def phase_representable(self) -> bool:
        """True if phase-mode kernels can stand for the messages of a phase now.

        False while a link degradation (``degrade`` fault) applies, which the kernels'
        link snapshot does not model, or while some node's sends pass through a Byzantine
        behaviour (sim/faults), which only real messages go through. A protocol then
        moves that phase as messages.
        """
        sim = self._node.sim
        if sim.network.link_rules:
            return False
        return sim.faults is None or all(node.behaviour is None for node in sim.nodes)

    @property
    def network(self) -> Network:
        """The network, for phase-mode kernels (``sim.network.phase``) only: they read its
        delay matrix and up/group state and move messages through its bulk methods."""
        return self._node.sim.network

    def is_plain(self, node_id: int | None = None) -> bool:
        """Phase-mode kernels only: True if node ``node_id`` (default: every node) has no
        Byzantine behaviour and no skewed clock, so its sends and timers can be computed in bulk."""
        nodes = self._node.sim.nodes if node_id is None else (self._node.sim.nodes[node_id],)
        return all(node.behaviour is None and node.clock is None for node in nodes)

    @property
    def n(self) -> int:
        """Number of nodes in the network."""
        return len(self.nodes)

    @property
    def now(self) -> float:
        """Simulated time on this node's clock, seconds (true time unless a clock_skew fault applies)."""
        node = self._node
        if node.clock is None:
            return node.env.now
        return node.clock.read(node.env.now)

    @property
    def mempool(self) -> Mempool:
        """This node's mempool."""
        return self._node.mempool

    @property
    def ledger_height(self) -> int:
        """Height of the last block delivered here."""
        return self._node.ledger.height

    @property
    def ledger_head_hash(self) -> bytes:
        """Hash of the last block delivered here (genesis hash when empty)."""
        return self._node.ledger.head_hash

    def on_ledger(self, tx_id: int) -> bool:
        """True if a block holding ``tx_id`` has been delivered here (is on this node's ledger)."""
        holds = self._node.ledger.holds
        for height, block_hash in self._node.sim.blocks_holding(tx_id):
            if holds(height, block_hash):
                return True
        return False

    def holds_block(self, block: Block) -> bool:
        """True if ``block`` is on this node's ledger."""
        return self._node.ledger.holds(block.height, block.block_hash)

    def txs_by_origin(self, block: Block) -> Mapping[int, tuple[int, ...]]:
        """``block``'s transaction ids by origin node, origins in block order (computed once
        per block by the simulation, shared by every node)."""
        return self._node.sim.block_info(block).by_origin

    def blocks_holding(self, tx_id: int) -> tuple[tuple[int, bytes], ...]:
        """(height, block hash) of every block built in this run (by any node) that holds ``tx_id``."""
        return self._node.sim.blocks_holding(tx_id)

    # --------------------------------------------------------------- messages

    def send(self, dst: int, msg: Message) -> None:
        """Sign ``msg`` on this node's CPU, then send it to ``dst``."""
        self._node.send(dst, msg)

    def broadcast(self, msg: Message, include_self: bool = False) -> None:
        """Sign once, then send a copy to every other node (and to self if asked)."""
        self._node.multicast(self.nodes if include_self else self.others, msg)

    def multicast(self, dsts: Iterable[int], msg: Message) -> None:
        """Sign once, then send a copy to each of ``dsts``."""
        self._node.multicast(dsts, msg)

    def flood(self, msg: Message) -> None:
        """Phase mode: sign once, then flood ``msg`` to every node over the peer graph.

        Equivalent to every node relaying the message once to each peer but its sender
        (see :mod:`sim.network.gossip`); receivers get it through ``on_message`` as usual
        and must not relay it again.
        """
        node = self._node
        if not node.up:
            return
        ready_s = node.cpu.reserve(self.now, node.costs.sign_s)
        # what each relay spends before sending on: the receive-side checks, then a signature
        relay_s = msg.signatures * node.costs.verify_s + msg.size_bytes() * 8.0 / node.costs.hash_rate_bps
        node.sim.network.flood(self.node_id, msg, ready_s, node.sim.topology.peers, relay_s + node.costs.sign_s)

    # ----------------------------------------------------------------- timers

    def set_timer(self, delay_s: float, name: str, data: Any = None) -> Timer:
        """Call the protocol's ``on_timer(name, data)`` after ``delay_s`` seconds."""
        return self._node.set_timer(delay_s, name, data)

    def cancel_timer(self, timer: Timer | None) -> None:
        """Cancel a pending timer (None and already-fired timers are ignored)."""
        if timer is not None:
            timer.cancelled = True

    # -------------------------------------------------------------------- CPU

    def cpu(self, cost_s: float) -> float:
        """Queue ``cost_s`` seconds of work on this node's CPU; return its completion time."""
        return self._node.cpu_work(cost_s)

    def cpu_since(self, start_s: float, cost_s: float) -> float:
        """Queue ``cost_s`` seconds of work that was ready at ``start_s`` (at most now).

        For phase mode, which wakes a replica when its quorum is verified rather than
        when it is complete: the verification is queued as of the earlier time, so an
        idle CPU finishes it now. Work queued in between is not held back by it (at
        most ``cost_s`` of error, stated in :mod:`sim.network.phase`).
        """
        return self._node.cpu.reserve(min(start_s, self.now), cost_s)

    @property
    def sign_s(self) -> float:
        """CPU seconds to sign one message."""
        return self._node.costs.sign_s

    @property
    def verify_s(self) -> float:
        """CPU seconds to verify one signature."""
        return self._node.costs.verify_s

    def receive_cost_s(self, msg: Message) -> float:
        """CPU seconds this node spends verifying and hashing ``msg`` when it arrives."""
        return self._node.receive_cost_s(msg)

    # ---------------------------------------------------- transactions, blocks

    def admit(self, tx: Transaction) -> bool:
        """Put a transaction handed over by a peer into this node's mempool (False if rejected)."""
        return self._node.admit(tx, notify=False)

    def tx_dropped(self, tx_ids: Iterable[int], reason: str) -> None:
        """Tell the recorder that this node gave up these transactions."""
        self._node.sim.recorder.txs_dropped(list(tx_ids), self.node_id, self._node.env.now, reason)

    def make_block(self, height: int, prev_hash: bytes, txs: Sequence[Transaction], round: int = 0) -> Block:
        """Build a block of ``txs`` on ``prev_hash`` proposed by this node now."""
        node = self._node
        if node.behaviour is not None:  # a censoring node leaves transactions out
            txs = node.behaviour.filter_proposal(node, txs)
        block = Block.build(
            height=height,
            prev_hash=prev_hash,
            proposer=self.node_id,
            created_s=node.env.now,
            tx_ids=tuple(tx.tx_id for tx in txs),
            tx_hashes=tuple(tx_digest(tx.tx_id, tx.tx_type, tx.origin, tx.size_bytes) for tx in txs),
            tx_bytes=sum(tx.size_bytes for tx in txs),
            round=round,
        )
        self._node.sim.block_created(block, txs)
        return block

    def deliver_block(self, block: Block) -> float:
        """Commit ``block`` at this node: append to the ledger, execute, apply.

        Returns:
            The simulated time at which execution finishes and the block is applied.
        """
        return self._node.deliver_block(block)

    def confirm_to_client(self, tx_ids: Iterable[int]) -> None:
        """The clients of these transactions (at this origin node) now know they are final.

        Only for protocols with ``confirms_by_replies = True``; sets each transaction's
        ``commit_s`` once.
        """
        self._node.sim.txs_confirmed(list(tx_ids))

    def endorse(self, tx: Transaction) -> tuple[Any, Any, float]:
        """Execute-order-validate endorsement: simulate ``tx``'s contract call on this node's
        committed world state without applying it, charging its execution to this CPU.

        Returns:
            (the contract's Result, the read-write set, the time the simulation finishes).
        """
        done_s = self._node.execute_work(tx.execute_s)
        result, rwset = self._node.sim.executor.simulate(self.node_id, tx, self.now)
        return result, rwset, done_s

    def record(self, kind: str, **fields: Any) -> None:
        """Record a consensus event (election, view change, new leader, round ...)."""
        self._node.sim.recorder.consensus_event(self.node_id, self._node.env.now, kind, fields)
