"""``primary_backup``: a fixed primary orders blocks; a majority must store a block before it commits.

The example protocol of ``docs/write_your_own_protocol.md``. Primary-backup
replication (Alsberg & Day, ICSE 1976; Budhiraja, Marzullo, Schneider & Toueg,
"The primary-backup approach", 1993) with the commit rule of quorum systems:

- Every node forwards its clients' transactions to the primary. The primary cuts
  blocks (by size or batch timeout), appends each to its log and sends it to the
  backups (``Replicate``).
- A backup stores a block that extends its log and acknowledges the height it
  stores (``Ack``).
- Once the primary and ``acks`` backups (default: a majority of all nodes with
  the primary) store a block, the primary delivers it and tells the backups
  (``Commit``), which deliver it too.
- Every ``heartbeat_s`` the primary sends each backup what it has not sent it yet
  and the commit height; a backup that finds a gap (a lost message, or it was
  down) says so and the primary resends from the height the backup stores.

Simplifications (each one changes what the protocol tolerates):

- The primary is fixed (``primary``): there is no failover. While it is down
  nothing commits; when it recovers, commits resume. (Real deployments hand
  failover to a configuration service such as ZooKeeper; ``sim/consensus/raft.py``
  shows an election.) So ``crash_tolerance`` is 0, although any minority of
  *backups* may crash without stopping commits.
- Logs survive a crash (written to disk, as Raft's); the primary's table of
  what each backup stores is volatile and rebuilt from the next acknowledgements.
- No Byzantine tolerance: a lying primary or a backup acknowledging blocks it
  does not store breaks the guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from sim.consensus.base import MESSAGE_HEADER_BYTES, Message, Protocol, ProtocolParams, register_protocol
from sim.consensus.batching import BlockCutter
from sim.consensus.common import ForwardTx
from sim.ledger import GENESIS_HASH, Block
from sim.workload.transaction import Transaction

__all__ = ["Ack", "Commit", "PrimaryBackup", "PrimaryBackupParams", "Replicate"]

_HEIGHT_BYTES = 8  # one block height on the wire
#: most blocks in one Replicate (a catching-up backup gets several messages); as Raft's default
_MAX_BLOCKS_PER_MESSAGE = 64


class PrimaryBackupParams(ProtocolParams):
    """Keys of ``[protocol]`` for ``primary_backup`` (besides the shared block-cutting keys)."""

    name: str = "primary_backup"
    primary: int = Field(0, ge=0, description="node id of the primary")
    acks: int | None = Field(
        None, ge=0, description="backup acknowledgements a block needs to commit; None = n // 2 (a majority with the primary)"
    )
    heartbeat_s: float = Field(0.05, gt=0, description="interval of the primary's heartbeats (resends, commit height), seconds")


@dataclass(frozen=True, slots=True)
class Replicate(Message):
    """Primary -> backup: consecutive blocks following ``prev_height`` (none for a heartbeat)."""

    prev_height: int  # the height the primary believes the backup stores
    blocks: tuple[Block, ...]
    commit_height: int

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + 2 * _HEIGHT_BYTES + sum(b.size_bytes for b in self.blocks)


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """Backup -> primary: I store every block up to ``stored_height``; ``gap``: I missed some."""

    stored_height: int
    gap: bool

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _HEIGHT_BYTES + 1


@dataclass(frozen=True, slots=True)
class Commit(Message):
    """Primary -> backups: every block up to ``height`` is committed."""

    height: int

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _HEIGHT_BYTES


@register_protocol
class PrimaryBackup(Protocol):
    """Primary-backup replication; a block commits once a majority stores it."""

    name = "primary_backup"
    Params = PrimaryBackupParams
    params: PrimaryBackupParams
    syncs_ledger = True  # heartbeats resend whatever a rejoining backup missed

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, PrimaryBackupParams)
        problems = []
        if params.primary >= n_nodes:
            problems.append(f"primary = {params.primary} is not a node id (0..{n_nodes - 1})")
        if params.acks is not None and params.acks > n_nodes - 1:
            problems.append(f"acks = {params.acks} is more than the {n_nodes - 1} backups: nothing would commit")
        return problems

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        return 0  # the primary is a single point of failure (see the module docstring)

    # ---------------------------------------------------------------- state

    def on_start(self) -> None:
        ctx = self.ctx
        self.primary = self.params.primary
        self.is_primary = ctx.node_id == self.primary
        self.needed_acks = self.params.acks if self.params.acks is not None else ctx.n // 2
        self.log: list[Block] = []  # log[h - 1] is the block at height h; survives crashes
        if self.is_primary:
            self.cutter = BlockCutter(ctx, self.params, self._propose)
            self._reset_backups()
            self._heartbeat()

    def _reset_backups(self) -> None:
        # What each backup stores (from its acks) and the last height sent to it (optimistic:
        # a backup that lacks blocks reports a gap and the primary rewinds).
        self.stored = {b: 0 for b in self.ctx.others}
        self.sent = {b: len(self.log) for b in self.ctx.others}

    def leader(self) -> int | None:
        return self.primary

    def pending_tx_ids(self) -> list[int]:
        # blocks stored here but not delivered yet: their transactions are held by this node
        return [t for block in self.log[self.ctx.ledger_height :] for t in block.tx_ids]

    # --------------------------------------------------------------- primary

    def on_transaction(self, tx: Transaction) -> None:
        if self.is_primary:
            self.cutter.poke()
        else:
            self.ctx.mempool.remove((tx.tx_id,), self.ctx.now)
            self.ctx.send(self.primary, ForwardTx(tx))

    def _propose(self, batch: list[Transaction]) -> None:
        ctx = self.ctx
        prev_hash = self.log[-1].block_hash if self.log else GENESIS_HASH
        block = ctx.make_block(len(self.log) + 1, prev_hash, batch)
        self.log.append(block)
        ctx.record("block_proposed", height=block.height, txs=block.tx_count)
        # Backups that have everything before this block get it now, in one signed multicast;
        # the others are being caught up and get it in turn.
        ready = [b for b in ctx.others if self.sent[b] == block.height - 1]
        if ready:
            ctx.multicast(ready, Replicate(block.height - 1, (block,), ctx.ledger_height))
            for b in ready:
                self.sent[b] = block.height
        self._commit_stored()

    def _send_from(self, backup: int, prev_height: int) -> None:
        blocks = tuple(self.log[prev_height : prev_height + _MAX_BLOCKS_PER_MESSAGE])
        self.ctx.send(backup, Replicate(prev_height, blocks, self.ctx.ledger_height))
        self.sent[backup] = prev_height + len(blocks)

    def _heartbeat(self) -> None:
        for backup in self.ctx.others:
            self._send_from(backup, self.sent[backup])
        self.ctx.set_timer(self.params.heartbeat_s, "heartbeat")

    def _on_ack(self, src: int, msg: Ack) -> None:
        if msg.stored_height > self.stored[src]:
            self.stored[src] = msg.stored_height
            self._commit_stored()
        if msg.gap:  # the backup lacks blocks after stored_height: resend from there
            self._send_from(src, msg.stored_height)

    def _commit_stored(self) -> None:
        """Deliver every block that the primary and ``needed_acks`` backups store."""
        ctx = self.ctx
        if self.needed_acks == 0:
            quorum_height = len(self.log)
        else:
            quorum_height = sorted(self.stored.values(), reverse=True)[self.needed_acks - 1]
        if quorum_height <= ctx.ledger_height:
            return
        while ctx.ledger_height < quorum_height:
            block = self.log[ctx.ledger_height]
            ctx.deliver_block(block)
            ctx.record("block_committed", height=block.height, quorum_s=ctx.now - block.created_s)
        if ctx.n > 1:
            ctx.broadcast(Commit(quorum_height))

    # --------------------------------------------------------------- backups

    def _on_replicate(self, msg: Replicate) -> None:
        gap = msg.prev_height > len(self.log)
        if not gap:
            for block in msg.blocks:
                head = self.log[-1].block_hash if self.log else GENESIS_HASH
                if block.height == len(self.log) + 1 and block.prev_hash == head:
                    self.log.append(block)
        self._deliver_through(msg.commit_height)
        self.ctx.send(self.primary, Ack(len(self.log), gap))

    def _deliver_through(self, height: int) -> None:
        # blocks are delivered in height order, each on its parent: the log is a hash chain
        ctx = self.ctx
        while ctx.ledger_height < min(height, len(self.log)):
            ctx.deliver_block(self.log[ctx.ledger_height])

    # -------------------------------------------------------------- handlers

    def on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, ForwardTx):  # only the primary is sent transactions
            if self.ctx.admit(msg.tx):
                self.cutter.poke()
        elif isinstance(msg, Ack):
            self._on_ack(src, msg)
        elif isinstance(msg, Replicate):
            self._on_replicate(msg)
        elif isinstance(msg, Commit):
            self._deliver_through(msg.height)

    def on_timer(self, name: str, data: Any) -> None:
        if name == "heartbeat":
            self._heartbeat()
        elif name == "batch_timeout":  # the BlockCutter's timer
            self.cutter.on_timer()

    def on_crash(self) -> None:
        if self.is_primary:
            self.cutter.stop()  # the node also drops its mempool, timers and queued CPU work

    def on_recover(self) -> None:
        if self.is_primary:
            self._reset_backups()
            self._heartbeat()
            self.cutter.start()
