"""A node: CPU, mempool, ledger and one protocol instance, wired to the network."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.ledger import Block, Ledger, LedgerError
from sim.node.context import NodeContext, Timer
from sim.node.cpu import Cpu
from sim.node.mempool import Mempool

if TYPE_CHECKING:
    from sim.config import NodeConfig
    from sim.consensus.base import Message, Protocol
    from sim.experiment.simulation import Simulation
    from sim.faults.byzantine import Behaviour
    from sim.faults.injector import LocalClock
    from sim.workload.transaction import Transaction

__all__ = ["Node"]


class Node:
    """One hospital, insurer or pharmacy node.

    The node charges CPU for what a protocol does (signing what it sends,
    verifying what it receives, executing what it commits) and forwards events
    to its protocol only while it is up.
    """

    def __init__(
        self,
        node_id: int,
        sim: Simulation,
        costs: NodeConfig,
        peers: Iterable[int],
        protocol_rng: np.random.Generator,
        cpu_rng: np.random.Generator,
    ) -> None:
        self.node_id = node_id
        self.sim = sim
        self.env = sim.env
        self.costs = costs
        self.cpu = Cpu(costs.cores)
        self.mempool = Mempool(costs.mempool_capacity_tx)
        self.ledger = Ledger()
        self.applied_height = 0
        self.verifying: set[int] = set()  # submitted transactions whose signature check is queued
        self.receiving: Counter[int] = Counter()  # transactions in arrived messages waiting for the CPU
        self.up = True
        self.epoch = 0  # bumped on crash: timers and CPU work of an earlier life never fire
        # Set by the fault framework (sim/faults) only: a Byzantine behaviour acting on what
        # this node sends, admits and proposes; a skewed local clock; the height up to which
        # block sync delivered blocks on the protocol's behalf.
        self.behaviour: Behaviour | None = None
        self.clock: LocalClock | None = None
        self.synced_through = 0
        self._cpu_rng = cpu_rng
        self._exponential = costs.cpu_time == "exponential"
        self._bits_per_hash_s = costs.hash_rate_bps
        self.ctx = NodeContext(self, range(sim.n), tuple(peers), protocol_rng)
        self.protocol: Protocol = sim.protocol_cls(self.ctx, sim.scenario.protocol)
        self._confirms_by_replies = sim.protocol_cls.confirms_by_replies

    # ------------------------------------------------------------------- CPU

    def _cost(self, mean_s: float, jobs: int = 1) -> float:
        """A service time of mean ``mean_s`` (sum of ``jobs`` i.i.d. draws if exponential)."""
        if not self._exponential or mean_s <= 0:
            return mean_s
        if jobs <= 1:
            return float(self._cpu_rng.exponential(mean_s))
        return float(self._cpu_rng.gamma(jobs, mean_s / jobs))

    def cpu_work(self, cost_s: float) -> float:
        """Queue ``cost_s`` of work now; return its completion time."""
        return self.cpu.reserve(self.env.now, cost_s)

    def execute_work(self, mean_s: float, extra_s: float = 0.0) -> float:
        """Queue contract work (a query, an endorsement) of mean ``mean_s`` scaled by
        ``execute_scale`` and drawn per ``cpu_time``, plus ``extra_s`` fixed; return its completion time."""
        return self.cpu.reserve(self.env.now, self._cost(mean_s * self.costs.execute_scale) + extra_s)

    def _at(self, when_s: float, action: Any, *args: Any) -> None:
        """Run ``action(*args)`` at ``when_s`` if this node is still in the same life."""
        now = self.env._now
        if when_s <= now:
            action(*args)
            return
        self.env.call_later(when_s - now, self._at_fire, self.epoch, action, args)

    def _at_fire(self, epoch: int, action: Any, args: tuple[Any, ...]) -> None:
        if self.up and self.epoch == epoch:
            action(*args)

    # -------------------------------------------------------------- messages

    def send(self, dst: int, msg: Message) -> None:
        if not self.up:
            return
        ready_s = self.cpu.reserve(self.env.now, self.costs.sign_s)
        if self.behaviour is not None:
            self.behaviour.transmit(self, (dst,), msg, ready_s)
            return
        self.sim.network.send(self.node_id, dst, msg, ready_s)

    def multicast(self, dsts: Iterable[int], msg: Message) -> None:
        if not self.up:
            return
        ready_s = self.cpu.reserve(self.env.now, self.costs.sign_s)
        if self.behaviour is not None:
            self.behaviour.transmit(self, tuple(dsts), msg, ready_s)
            return
        self.sim.network.multicast(self.node_id, dsts, msg, ready_s)

    def receive(self, src: int, msg: Message) -> None:
        """A message arrived: verify its signatures and hash it on the CPU, then hand it over."""
        if not self.up:
            return
        now = self.env._now
        done_s = self.cpu.reserve(now, self.receive_cost_s(msg))
        handler = self.protocol.on_message if self.sim.block_guard is None else self._guarded
        if msg.carries_txs and done_s > now:
            # Arrived, not yet verified: these transactions are held here (conservation).
            ids = msg.tx_ids()
            self.receiving.update(ids)
            self._at(done_s, self._verified, handler, src, msg, ids)
        else:
            self._at(done_s, handler, src, msg)

    def _verified(self, handler: Any, src: int, msg: Message, ids: tuple[int, ...]) -> None:
        self.receiving.subtract(ids)
        handler(src, msg)

    def _guarded(self, src: int, msg: Message) -> None:
        """With Byzantine nodes about: hand over only messages whose blocks are valid."""
        guard = self.sim.block_guard
        if guard is None or guard.accepts(self, src, msg):
            self.protocol.on_message(src, msg)

    def receive_cost_s(self, msg: Message) -> float:
        """CPU seconds to verify ``msg``'s signatures and hash its bytes on receipt."""
        return msg.signatures * self.costs.verify_s + msg.size_bytes() * 8.0 / self._bits_per_hash_s

    # ----------------------------------------------------------------- timers

    def set_timer(self, delay_s: float, name: str, data: Any) -> Timer:
        if self.clock is not None:  # a skewed clock: delay_s is measured on the local clock
            delay_s = self.clock.real_delay_s(delay_s)
        timer = Timer(name, data, self.env._now + delay_s, self.epoch)
        self.env.call_later(max(0.0, delay_s), self._fire, timer)
        return timer

    def _fire(self, timer: Timer) -> None:
        if not timer.cancelled and self.up and timer.epoch == self.epoch:
            timer.cancelled = True
            self.protocol.on_timer(timer.name, timer.data)

    # ----------------------------------------------------------- transactions

    def submit(self, tx: Transaction) -> None:
        """A client hands ``tx`` to this node: verify its signature, then admit it."""
        self.sim.recorder.tx_submitted(tx)
        if not self.up:
            self.sim.recorder.txs_dropped([tx.tx_id], self.node_id, self.env.now, "origin node down")
            return
        done_s = self.cpu.reserve(self.env.now, self.costs.verify_s)
        epoch = self.epoch
        if done_s <= self.env.now:
            self.admit(tx, notify=True)
            return
        self.verifying.add(tx.tx_id)
        self.env.call_later(done_s - self.env.now, self._admit_after_verify, tx, epoch)

    def _admit_after_verify(self, tx: Transaction, epoch: int) -> None:
        self.verifying.discard(tx.tx_id)
        if self.up and self.epoch == epoch:
            self.admit(tx, notify=True)
        else:
            self.sim.recorder.txs_dropped([tx.tx_id], self.node_id, self.env.now, "origin crashed while verifying")

    def admit(self, tx: Transaction, notify: bool) -> bool:
        """Put ``tx`` in the mempool; reject (and record) if full; tell the protocol if ``notify``."""
        if tx.tx_id in self.mempool:
            return True
        if self.behaviour is not None and self.behaviour.refuses(tx):
            self.sim.recorder.txs_dropped([tx.tx_id], self.node_id, self.env.now, self.behaviour.refusal)
            return False
        if not self.mempool.add(tx, self.env.now):
            self.sim.recorder.tx_rejected(tx.tx_id, self.node_id, self.env.now, "mempool full")
            return False
        if notify:
            self.protocol.on_transaction(tx)
        return True

    # ----------------------------------------------------------------- blocks

    def deliver_block(self, block: Block) -> float:
        """Append a decided block, execute its transactions on the CPU, then apply it.

        Returns:
            The time the block is applied (execution done).
        """
        if block.height <= self.synced_through and self.ledger.hash_at(block.height) == block.block_hash:
            return self.env.now  # block sync already delivered it on the protocol's behalf
        try:
            self.ledger.append(block)
        except LedgerError as exc:
            # A protocol that does not tolerate Byzantine nodes can be led to deliver a block
            # that does not extend this ledger; honest code refuses it. Without Byzantine
            # nodes this is a protocol bug and must surface.
            if self.sim.block_guard is None:
                raise
            self.sim.block_guard.refused(self, block, str(exc))
            return self.env.now
        info = self.sim.block_info(block)
        cost_s = self._cost(info.execute_s * self.costs.execute_scale, block.tx_count)
        done_s = self.cpu.reserve(self.env.now, cost_s)
        self._at(done_s, self._apply_through, block.height)
        return done_s

    def _apply_through(self, height: int) -> None:
        while self.applied_height < min(height, self.ledger.height):
            block = self.ledger.block_at(self.applied_height + 1)
            self.applied_height = block.height
            if len(self.mempool):
                self.mempool.remove(block.tx_ids, self.env.now)
            self.sim.block_applied(self.node_id, block)  # contracts run (or validate) here
            self.sim.recorder.block_applied(
                self.node_id, block, self.env.now, self.sim.block_info(block), not self._confirms_by_replies
            )

    # ------------------------------------------------------- crash / recovery

    def crash(self) -> None:
        """Stop: drop queued CPU work, pending timers and the volatile mempool."""
        if not self.up:
            return
        now = self.env.now
        self.up = False
        self.epoch += 1
        self.sim.network.up[self.node_id] = False
        self.cpu.reset(now)
        lost = [tx.tx_id for tx in self.mempool.drain(now)]
        lost += [tx_id for tx_id, count in self.receiving.items() if count > 0]
        self.receiving.clear()
        if lost:
            self.sim.recorder.txs_dropped(lost, self.node_id, now, "node crashed")
        self.protocol.on_crash()

    def recover(self) -> None:
        """Restart with the persisted ledger; apply what was decided but not yet applied."""
        if self.up:
            return
        self.up = True
        self.sim.network.up[self.node_id] = True
        self.sim.network.uplink_free_s[self.node_id] = self.env.now
        self._apply_through(self.ledger.height)
        self.protocol.on_recover()
