"""``pbft``: Practical Byzantine Fault Tolerance (Castro & Liskov, OSDI 1999; TOCS 2002).

n replicas tolerate f faults (n >= 3f + 1); a quorum is q = ceil((n + f + 1) / 2)
replicas (2f + 1 when n = 3f + 1, see :mod:`sim.consensus.quorum`). Every node is a
replica; the primary of view v is replica v mod n.

Normal case: a client's hospital (the origin node) sends its REQUEST to the primary
unless it is the primary. The primary batches requests into one block per sequence
number n (BlockCutter: size or batch timeout) within the watermarks (h, h + L] and
multicasts PRE-PREPARE(v, n, block). A backup that accepts it multicasts
PREPARE(v, n, d) to every other replica (the primary sends none). A replica is
*prepared* with the pre-prepare and q - 1 matching prepares from distinct replicas
(its own included), then multicasts COMMIT; it is *committed-local* with q matching
commits (its own included) and executes blocks in sequence order (height = n). Every
replica then sends one REPLY per origin node of the block's transactions. The origin
confirms them to its client (``ctx.confirm_to_client``) once it holds f + 1 matching
replies, **counting its own execution as one reply without a message** (the origin is
a replica). With a fixed one-way delay d and no CPU cost a request from a backup's
client is confirmed 5d after submission.

Checkpoints: after executing n with n mod K = 0 a replica multicasts CHECKPOINT(n, d)
(d = ledger head hash); q matching ones make it stable: the log below it is dropped
and the low watermark h moves to n. L defaults to 2K ("if checkpoints are taken every
100 requests, k might be 200", OSDI 1999, section 4.3).

View change (OSDI 1999, section 4.4; liveness rules of 4.5.2): a backup waiting for a
request (its own client's, one relayed to it, or one in a pre-prepare it accepted)
runs a timer for the oldest such request. On expiry it multicasts VIEW-CHANGE(v + 1)
with its last stable checkpoint and its prepared certificates. A replica joins a view
change once f + 1 others ask for higher views. The new primary, with q VIEW-CHANGE
messages, multicasts NEW-VIEW re-proposing every sequence number above the highest
stable checkpoint: prepared ones keep their block (highest view wins), gaps get empty
(null) blocks. A replica that has q VIEW-CHANGE messages but no NEW-VIEW within the
timeout moves on to v + 2, and the timeout doubles until a block executes again.

Simplifications, each stated:
- Client retransmission: when its own request is not executed in time, the origin
  node first broadcasts it to every replica (the paper's client retransmission); each
  backup relays it to the primary and starts its timer. Only the next expiry starts a
  view change. Replies are not re-sent for retransmitted requests already executed.
- Requests never vanish: the origin keeps its request until it executes it; on a new
  view every replica puts the transactions of discarded pre-prepares back into its
  mempool and re-sends what it holds to the new primary, whose dedup (requests already
  ordered or executed) stands for the paper's per-client timestamps. A request that
  still ends in two batches is listed in both blocks (executing it twice is a no-op).
- Chain repair: a re-proposed block whose parent was replaced (by a null block) is
  rebuilt on the new parent with the same transactions. No honest replica executed it
  (it would have executed the parent too), so no executed state changes.
- State transfer is simplified: a replica that learns of a stable checkpoint above its
  ledger asks one replica that certified it for the missing blocks and appends them.
- A replica that sees normal-case messages of a higher view from f + 1 replicas (it
  missed a view change, e.g. while crashed) asks that view's primary for its NEW-VIEW.
  Messages of a future view are kept until the replica enters it.
- Only crash faults: signatures are charged on the CPU but all replicas are honest.
  View, log and certificates survive a crash (stable storage); mempool and timers do not.

Phase mode (``ctx.phase_mode``): the prepare and commit phases of each sequence number
are computed with numpy (:mod:`sim.network.phase`), see ``_pbft_phase.PbftPhaseMode``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from sim.consensus._pbft_messages import (
    Checkpoint,
    Commit,
    FetchNewView,
    FetchState,
    NewView,
    PhaseQuorum,
    PrePrepare,
    Prepare,
    PreparedCert,
    Reply,
    Request,
    RequestBatch,
    StateReply,
    ViewChange,
)
from sim.consensus._pbft_phase import PbftPhaseMode
from sim.consensus.base import Message, Protocol, ProtocolParams, register_protocol
from sim.consensus.batching import BlockCutter
from sim.consensus.quorum import bft_quorum, check_bft, max_faulty
from sim.ledger import GENESIS_HASH, Block
from sim.node.context import Timer
from sim.workload.transaction import Transaction

__all__ = ["Pbft", "PbftParams"]

_FUTURE_CAP = 100_000  # most messages of future views kept while catching up


class PbftParams(ProtocolParams):
    """Keys of ``[protocol]`` for ``pbft``."""

    name: str = "pbft"
    f: int | None = Field(None, ge=0, description="faults tolerated; None = (n - 1) // 3, the most n allows")
    view_change_timeout_s: float = Field(
        2.0, gt=0, description="wait for a request to execute before a view change, seconds; doubles on consecutive view changes"
    )
    checkpoint_interval: int = Field(128, ge=1, description="sequence numbers between checkpoints (K)")
    watermark_window: int | None = Field(None, ge=1, description="log size L (h < n <= h + L); None = 2 * checkpoint_interval")


@dataclass(slots=True)
class _Slot:
    """One sequence number's state in one view."""

    view: int
    pp: PrePrepare | None = None
    prepares: dict[bytes, set[int]] = field(default_factory=dict)
    commits: dict[bytes, set[int]] = field(default_factory=dict)
    prepared: bool = False
    committed: bool = False
    since_s: float = 0.0  # when the pre-prepare was accepted
    phased: bool = False  # its prepare and commit phases run in phase mode


@register_protocol
class Pbft(PbftPhaseMode, Protocol):
    """PBFT with checkpoints, view changes and a vectorized normal case in phase mode."""

    name = "pbft"
    Params = PbftParams
    params: PbftParams
    confirms_by_replies = True
    supports_phase_mode = True

    @staticmethod
    def _faults(params: PbftParams, n_nodes: int) -> int:
        return max_faulty(n_nodes) if params.f is None else params.f

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, PbftParams)
        problems = check_bft(n_nodes, cls._faults(params, n_nodes))
        window = params.watermark_window
        if window is not None and window < params.checkpoint_interval:
            problems.append(
                f"watermark_window = {window} is below checkpoint_interval = {params.checkpoint_interval}; "
                "the primary would stall before the first checkpoint"
            )
        return problems

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        assert isinstance(params, PbftParams)
        return cls._faults(params, n_nodes)

    # ------------------------------------------------------------------ state

    def on_start(self) -> None:
        ctx, p = self.ctx, self.params
        self.f = self._faults(p, ctx.n)
        self.q = bft_quorum(ctx.n, self.f)
        self.window = p.watermark_window or 2 * p.checkpoint_interval
        self.view = 0
        self.active = True  # False while changing to ``self.view``
        self.log: dict[int, _Slot] = {}
        self.pcerts: dict[int, PreparedCert] = {}  # seq -> prepared certificate of the highest view
        self.stable_seq, self.stable_digest, self.stable_proof = 0, GENESIS_HASH, 0
        self.checkpoints: dict[int, dict[bytes, set[int]]] = {}
        self.next_seq, self.head_hash = 1, GENESIS_HASH  # the primary's next proposal
        self.backlog: list[list[Transaction]] = []  # batches cut while the window was full
        self.executed: set[int] = set()
        self.ordered: set[int] = set()  # transactions in pre-prepares not yet executed
        self.own: set[int] = set()  # this origin's requests not yet executed here
        self.nudged: set[int] = set()  # requests whose view-change timer expired once
        self.answered: set[int] = set()  # own requests confirmed to the client, not executed here
        self.client_timer: Timer | None = None
        self.max_committed = 0  # highest sequence number committed-local here
        self.lag_timer: Timer | None = None
        self.lag_peer = 0
        self.status_timer: Timer | None = None
        self.replies: dict[tuple[int, bytes], set[int]] = {}
        self.confirmed: set[tuple[int, bytes]] = set()
        self.chain: list[Block] = []  # executed blocks, served to lagging replicas
        self.vc_msgs: dict[int, dict[int, ViewChange]] = {}
        self.backoff = 0  # view changes since a block last executed
        self.last_new_view: NewView | None = None
        self.future: list[tuple[int, Message]] = []
        self.future_senders: dict[int, set[int]] = {}
        self.fetching = 0
        self.request_timer: Timer | None = None
        self.watch: int | None = None
        self.new_view_timer: Timer | None = None
        self.cutter = BlockCutter(ctx, p, self._propose)
        self.cutter.enabled = self.is_primary
        self._handlers = {
            Request: self._on_requests, RequestBatch: self._on_requests, PrePrepare: self._on_pre_prepare,
            Prepare: self._on_prepare, Commit: self._on_commit, Reply: self._on_reply,
            Checkpoint: self._on_checkpoint, ViewChange: self._on_view_change, NewView: self._on_new_view,
            FetchState: self._on_fetch_state, StateReply: self._on_state_reply,
            FetchNewView: self._on_fetch_new_view, PhaseQuorum: self._on_phase_event,
        }  # fmt: skip
        if self.is_primary:
            ctx.record("leader_elected", view=0, leader=ctx.node_id)

    def primary(self, view: int) -> int:
        return view % self.ctx.n

    @property
    def is_primary(self) -> bool:
        return self.primary(self.view) == self.ctx.node_id

    def leader(self) -> int | None:
        return self.primary(self.view)

    def _timeout_s(self) -> float:
        return self.params.view_change_timeout_s * 2 ** max(0, self.backoff - 1)

    def _in_window(self, seq: int) -> bool:
        return self.stable_seq < seq <= self.stable_seq + self.window

    def _slot(self, seq: int) -> _Slot:
        slot = self.log.get(seq)
        if slot is None or slot.view != self.view:
            slot = self.log[seq] = _Slot(self.view)
        return slot

    def pending_tx_ids(self) -> list[int]:
        held = [tx.tx_id for s in self.log.values() if s.pp for tx in s.pp.txs]
        held += [tx.tx_id for c in self.pcerts.values() for tx in c.pp.txs]
        held += [tx.tx_id for batch in self.backlog for tx in batch]
        return [t for t in held if t not in self.executed]

    # --------------------------------------------------------------- requests

    def on_transaction(self, tx: Transaction) -> None:
        self.own.add(tx.tx_id)
        self._arm_client_timer()
        if self.is_primary and self.active:
            self.cutter.poke()
        else:
            if self.active:
                self.ctx.send(self.primary(self.view), Request(tx))
            self._arm_request_timer()

    def _on_requests(self, src: int, msg: Request | RequestBatch) -> None:
        ctx = self.ctx
        txs = (msg.tx,) if isinstance(msg, Request) else msg.txs
        fresh = [tx for tx in txs if tx.tx_id not in self.executed and tx.tx_id not in ctx.mempool and ctx.admit(tx)]
        if self.is_primary and self.active:
            self.cutter.poke()
        elif fresh:
            if self.active and src != self.primary(self.view):
                ctx.send(self.primary(self.view), RequestBatch(tuple(fresh)))
            self._arm_request_timer()

    def _unordered(self, batch: list[Transaction]) -> list[Transaction]:
        return [tx for tx in batch if tx.tx_id not in self.executed and tx.tx_id not in self.ordered]

    def _can_propose(self) -> bool:
        return self.is_primary and self.active and self.next_seq <= self.stable_seq + self.window

    def _readmit(self, txs: list[Transaction]) -> None:
        """Requests of discarded pre-prepares go back to the mempool and on to the primary."""
        ctx = self.ctx
        back = [tx for tx in txs if tx.tx_id not in self.executed and tx.tx_id not in self.ordered]
        back = list({tx.tx_id: tx for tx in back if tx.tx_id not in ctx.mempool and ctx.admit(tx)}.values())
        if not back or not self.active:
            return
        if self.is_primary:
            self.cutter.poke()
        else:
            ctx.send(self.primary(self.view), RequestBatch(tuple(back)))

    def _propose(self, batch: list[Transaction]) -> None:
        txs = self._unordered(batch)
        if not txs:
            return
        if self.backlog or not self._can_propose():  # window full: wait for the next stable checkpoint
            self.backlog.append(txs)
            self.cutter.stop()
            return
        self._pre_prepare(txs)

    def _pre_prepare(self, txs: list[Transaction]) -> None:
        seq, ctx = self.next_seq, self.ctx
        block = ctx.make_block(seq, self.head_hash, txs, round=self.view)
        self.next_seq, self.head_hash = seq + 1, block.block_hash
        pp = PrePrepare(self.view, seq, block, tuple(txs))
        self._accept(seq, pp, phased=ctx.phase_mode)
        if ctx.phase_mode:
            self._phases_vectorized(pp)
        else:
            ctx.broadcast(pp)
            self._check_prepared(seq)

    def _drain_backlog(self) -> None:
        while self.backlog and self._can_propose():
            txs = self._unordered(self.backlog.pop(0))
            if txs:
                self._pre_prepare(txs)
        if not self.backlog:
            self.cutter.start()

    # ------------------------------------------------------------ normal case

    def _accept(self, seq: int, pp: PrePrepare, phased: bool = False) -> _Slot:
        slot = self._slot(seq)
        slot.pp, slot.since_s, slot.phased = pp, self.ctx.now, phased
        self.ordered.update(tx.tx_id for tx in pp.txs if tx.tx_id not in self.executed)
        if not phased and self.status_timer is None:
            self.status_timer = self.ctx.set_timer(self._retransmit_s, "status")
        return slot

    def _stash_future(self, src: int, msg: Any, keep: bool = True) -> bool:
        """Keep a message of a later view (if ``keep``); True if it was one."""
        if msg.view < self.view or (msg.view == self.view and self.active):
            return False
        if keep and len(self.future) < _FUTURE_CAP:
            self.future.append((src, msg))
        senders = self.future_senders.setdefault(msg.view, set())
        if src != self.ctx.node_id and src not in senders:
            senders.add(src)
            if len(senders) == self.f + 1:  # an honest replica is in that view: fetch its NEW-VIEW
                self.ctx.send(self.primary(msg.view), FetchNewView(msg.view))
        return True

    def _normal_ok(self, src: int, msg: Any) -> bool:
        if self._stash_future(src, msg):
            return False
        return self.active and msg.view == self.view and self._in_window(msg.seq)

    def _on_pre_prepare(self, src: int, pp: PrePrepare) -> None:
        if not self._normal_ok(src, pp) or src != self.primary(self.view):
            return
        slot = self._slot(pp.seq)
        if slot.pp is not None:
            return  # one pre-prepare per view and sequence number
        self._accept(pp.seq, pp)
        if not self.ctx.phase_mode:
            self.ctx.broadcast(Prepare(pp.view, pp.seq, pp.digest))
            slot.prepares.setdefault(pp.digest, set()).add(self.ctx.node_id)
            self._check_prepared(pp.seq)
        self._arm_request_timer()

    def _on_prepare(self, src: int, msg: Prepare) -> None:
        if self._normal_ok(src, msg) and src != self.primary(self.view):
            self._slot(msg.seq).prepares.setdefault(msg.digest, set()).add(src)
            self._check_prepared(msg.seq)

    def _check_prepared(self, seq: int) -> None:
        slot = self.log[seq]
        pp = slot.pp
        if slot.prepared or pp is None or len(slot.prepares.get(pp.digest, ())) < self.q - 1:
            return
        self._set_prepared(seq, slot, pp)
        self.ctx.broadcast(Commit(pp.view, seq, pp.digest))
        slot.commits.setdefault(pp.digest, set()).add(self.ctx.node_id)
        self._check_committed(seq)

    def _set_prepared(self, seq: int, slot: _Slot, pp: PrePrepare) -> None:
        slot.prepared = True
        self.pcerts[seq] = PreparedCert(slot.view, pp, self.q - 1)

    def _on_commit(self, src: int, msg: Commit) -> None:
        if self._normal_ok(src, msg):
            self._slot(msg.seq).commits.setdefault(msg.digest, set()).add(src)
            self._check_committed(msg.seq)

    def _check_committed(self, seq: int) -> None:
        slot = self.log[seq]
        if slot.prepared and not slot.committed and slot.pp is not None:
            if len(slot.commits.get(slot.pp.digest, ())) >= self.q:
                slot.committed = True
                self.max_committed = max(self.max_committed, seq)
                self._execute_ready()

    def _execute_ready(self) -> None:
        while True:
            slot = self.log.get(self.ctx.ledger_height + 1)
            if slot is None or not slot.committed or slot.pp is None:
                break
            if slot.pp.block.prev_hash != self.ctx.ledger_head_hash:
                # committed in an old view on a parent that no replica executed: a later
                # view rebuilt this block on the parent that won (see chain repair)
                break
            self._execute(slot.pp.block, slot.pp.txs)
        self._watch_lag()

    # ----------------------------------------------------------- loss repair

    def _watch_lag(self) -> None:
        """A later sequence number committed here but the next one did not: if that lasts,
        fetch the missing blocks (our stand-in for the BFT library's status messages)."""
        if self.lag_timer is None and self.max_committed > self.ctx.ledger_height:
            self.lag_timer = self.ctx.set_timer(self._retransmit_s, "lag", self.ctx.ledger_height)

    def _fetch_from_peer(self) -> None:
        """Ask the next replica in turn (the primary first) for blocks above our ledger."""
        ctx = self.ctx
        peers = [self.primary(self.view)] + [p for p in ctx.others if p != self.primary(self.view)]
        peers = [p for p in peers if p != ctx.node_id]
        if peers:
            ctx.send(peers[self.lag_peer % len(peers)], FetchState(ctx.ledger_height))
            self.lag_peer += 1

    @property
    def _retransmit_s(self) -> float:
        """Period of retransmissions and lag checks: a quarter of the view-change timeout."""
        return self.params.view_change_timeout_s / 4

    def _retransmit(self) -> None:
        """Re-send this replica's messages for sequence numbers stuck for a period.

        Stands in for the BFT library's status messages: the primary re-sends its
        pre-prepare to backups it has no prepare or commit from, a backup its prepare to
        replicas it has no commit from, a prepared replica its commit to all.
        """
        ctx = self.ctx
        if not self.active:  # changing view: re-send our VIEW-CHANGE until the view is entered
            own = self.vc_msgs.get(self.view, {}).get(ctx.node_id)
            if own is not None:
                ctx.broadcast(own)
            self.status_timer = ctx.set_timer(self._retransmit_s, "status")
            return
        pending = False
        for seq in sorted(self.log):
            slot = self.log[seq]
            pp = slot.pp
            if seq <= ctx.ledger_height or pp is None or slot.phased or slot.view != self.view:
                continue
            pending = True
            if ctx.now - slot.since_s < self._retransmit_s:
                continue
            commits = slot.commits.get(pp.digest, set())
            if self.is_primary:
                heard = slot.prepares.get(pp.digest, set()) | commits
                ctx.multicast([j for j in ctx.others if j not in heard], pp)
            elif ctx.node_id in slot.prepares.get(pp.digest, ()):
                ctx.multicast([j for j in ctx.others if j not in commits], Prepare(pp.view, seq, pp.digest))
            if slot.prepared:
                ctx.broadcast(Commit(pp.view, seq, pp.digest))
        if pending:
            self.status_timer = ctx.set_timer(self._retransmit_s, "status")

    def _nudge(self, watch: int) -> None:
        """First expiry of the request timer: ask for blocks this replica may have missed
        (it may only be behind); only the next expiry starts a view change."""
        self.nudged.add(watch)
        self.lag_peer = 0
        self._fetch_from_peer()

    def _arm_client_timer(self) -> None:
        if self.client_timer is None and self.own:
            self.client_timer = self.ctx.set_timer(self.params.view_change_timeout_s, "client")

    def _client_retransmit(self) -> None:
        """The clients of this origin broadcast their requests still unanswered after the
        timeout to every replica (OSDI 1999, section 4.1), whatever this replica's state."""
        self.client_timer = None
        due_s = self.ctx.now - self.params.view_change_timeout_s
        held = list(self.ctx.mempool) + [tx for batch in self.backlog for tx in batch]
        held += [tx for slot in self.log.values() if slot.pp for tx in slot.pp.txs]  # a stale primary's own blocks
        due = {tx.tx_id: tx for tx in held if tx.tx_id in self.own and tx.tx_id not in self.answered and tx.submit_s <= due_s}
        if due:
            self.ctx.broadcast(RequestBatch(tuple(due.values())))
        self._arm_client_timer()

    def _execute(self, block: Block, txs: tuple[Transaction, ...] | None) -> None:
        """Deliver ``block``; reply to its origins (``txs`` None: came by state transfer)."""
        ctx, me = self.ctx, self.ctx.node_id
        ctx.deliver_block(block)
        self.chain.append(block)
        self.backoff = 0
        ids = block.tx_ids
        self.executed.update(ids)
        self.ordered.difference_update(ids)
        self.nudged.difference_update(ids)
        by_origin: dict[int, list[int]] = {}
        for tx in txs or ():
            by_origin.setdefault(tx.origin, []).append(tx.tx_id)
        for origin, origin_ids in by_origin.items():
            if origin != me:
                ctx.send(origin, Reply(self.view, block.height, block.block_hash, tuple(origin_ids)))
        own = tuple(t for t in ids if t in self.own)
        if own:
            self.own.difference_update(own)
            self.answered.difference_update(own)
            done_s = ctx.cpu(0.0)  # own execution counts once the CPU has executed the block
            vote = (block.height, block.block_hash, own)
            if done_s > ctx.now:
                ctx.set_timer(done_s - ctx.now, "own_reply", vote)
            else:
                self._count_reply(me, *vote)
        if block.height % self.params.checkpoint_interval == 0:
            ctx.broadcast(Checkpoint(block.height, ctx.ledger_head_hash))
            self._add_checkpoint(me, block.height, ctx.ledger_head_hash)
        if self.watch is not None and self.watch in self.executed:
            ctx.cancel_timer(self.request_timer)
            self.request_timer = None
            self._arm_request_timer()

    def _on_reply(self, src: int, msg: Reply) -> None:
        self._stash_future(src, msg, keep=False)  # replies from a later view tell a stale replica
        self._count_reply(src, msg.seq, msg.digest, msg.tx_ids)

    def _count_reply(self, src: int, seq: int, digest: bytes, tx_ids: tuple[int, ...]) -> None:
        key = (seq, digest)
        if key in self.confirmed:
            return
        votes = self.replies.setdefault(key, set())
        votes.add(src)
        if len(votes) >= self.f + 1:
            self.confirmed.add(key)
            del self.replies[key]
            self.answered.update(t for t in tx_ids if t in self.own)
            self.ctx.confirm_to_client(tx_ids)

    # ------------------------------------------------------------ checkpoints

    def _on_checkpoint(self, src: int, msg: Checkpoint) -> None:
        self._add_checkpoint(src, msg.seq, msg.digest)

    def _add_checkpoint(self, src: int, seq: int, digest: bytes) -> None:
        if seq <= self.stable_seq:
            return
        votes = self.checkpoints.setdefault(seq, {}).setdefault(digest, set())
        votes.add(src)
        if len(votes) >= self.q:
            self._stabilize(seq, digest, len(votes), sorted(votes))

    def _stabilize(self, seq: int, digest: bytes, proof: int, holders: list[int]) -> None:
        """Checkpoint ``seq`` is stable: move the low watermark, drop the log below it."""
        self.stable_seq, self.stable_digest, self.stable_proof = seq, digest, proof
        dropped = [tx for s, slot in self.log.items() if s <= seq and slot.pp for tx in slot.pp.txs]
        dropped += [tx for s, cert in self.pcerts.items() if s <= seq for tx in cert.pp.txs]
        for table in (self.log, self.pcerts, self.checkpoints):
            for s in [s for s in table if s <= seq]:
                del table[s]
        self.ordered = {tx.tx_id for slot in self.log.values() if slot.pp for tx in slot.pp.txs} - self.executed
        # a superseded pre-prepare may hold requests nobody executed: keep them (blocks still
        # to come by state transfer remove them from the mempool when they are applied)
        self._readmit(dropped)
        if self.ctx.ledger_height < seq:
            self._fetch_state(seq, holders)
        if self.is_primary and self.active:
            self.next_seq = max(self.next_seq, seq + 1)
            self._drain_backlog()

    def _fetch_state(self, target: int, holders: list[int]) -> None:
        others = [h for h in holders if h != self.ctx.node_id]
        if target <= self.fetching or not others:
            return
        self.fetching = target
        self.ctx.send(others[0], FetchState(self.ctx.ledger_height))
        self.ctx.set_timer(self.params.view_change_timeout_s, "fetch", (target, others[1:] + others[:1]))

    def _on_fetch_state(self, src: int, msg: FetchState) -> None:
        if len(self.chain) > msg.height:
            self.ctx.send(src, StateReply(tuple(self.chain[msg.height :])))

    def _on_state_reply(self, src: int, msg: StateReply) -> None:
        for block in msg.blocks:
            if block.height == self.ctx.ledger_height + 1 and block.prev_hash == self.ctx.ledger_head_hash:
                self._execute(block, None)
        if self.ctx.ledger_height >= self.fetching:
            self.fetching = 0
        self._execute_ready()

    # ------------------------------------------------------------ view change

    def _arm_request_timer(self) -> None:
        """Run the view-change timer for the oldest request this backup waits for."""
        if self.request_timer is not None or not self.active or self.is_primary:
            return
        watch = next((tx.tx_id for tx in self.ctx.mempool if tx.tx_id not in self.executed), None)
        if watch is None:
            watch = next((t for s in sorted(self.log) for t in self._slot_txs(s) if t not in self.executed), None)
        self.watch = watch
        if watch is not None:
            self.request_timer = self.ctx.set_timer(self._timeout_s(), "request", watch)

    def _slot_txs(self, seq: int) -> tuple[int, ...]:
        pp = self.log[seq].pp
        return pp.block.tx_ids if pp is not None else ()

    def on_timer(self, name: str, data: Any) -> None:
        if name == "batch_timeout":
            self.cutter.on_timer()
        elif name == "request":
            self.request_timer = None
            if not self.active or self.is_primary or data in self.executed:
                self._arm_request_timer()
            elif data not in self.nudged:
                self._nudge(data)
                self._arm_request_timer()
            else:
                self._start_view_change(self.view + 1, "request timeout")
        elif name == "client":
            self._client_retransmit()
        elif name == "status":
            self.status_timer = None
            self._retransmit()
        elif name == "lag":
            self.lag_timer = None
            if self.ctx.ledger_height == data and self.max_committed > data:
                self._fetch_from_peer()
            self._watch_lag()
        elif name == "new_view" and not self.active and self.view == data:
            self.new_view_timer = None
            self._start_view_change(self.view + 1, "new-view timeout")
        elif name == "own_reply":
            self._count_reply(self.ctx.node_id, *data)
        elif name == "phase":
            self._phase_apply(data)
        elif name == "fetch" and self.ctx.ledger_height < data[0] and data[0] == self.fetching:
            self.fetching = 0
            self._fetch_state(*data)

    def _start_view_change(self, view: int, reason: str) -> None:
        if view <= self.view:
            return
        ctx = self.ctx
        if self.is_primary and self.active:
            self.cutter.stop()
            for batch in self.backlog:
                for tx in batch:
                    ctx.admit(tx)
            self.backlog = []
        self.view, self.active = view, False
        self.backoff += 1
        ctx.cancel_timer(self.request_timer)
        ctx.cancel_timer(self.new_view_timer)
        self.request_timer = self.new_view_timer = None
        certs = tuple(self.pcerts[s] for s in sorted(self.pcerts) if s > self.stable_seq)
        vc = ViewChange(view, ctx.node_id, self.stable_seq, self.stable_digest, self.stable_proof, certs)
        ctx.broadcast(vc)
        self.vc_msgs.setdefault(view, {})[ctx.node_id] = vc
        ctx.record("view_change", view=view, reason=reason)
        ctx.cancel_timer(self.status_timer)
        self.status_timer = ctx.set_timer(self._retransmit_s, "status")
        self._view_change_progress()

    def _on_view_change(self, src: int, vc: ViewChange) -> None:
        if vc.view == self.view and self.active and self.last_new_view and self.last_new_view.view == vc.view:
            self.ctx.send(src, self.last_new_view)  # it missed our NEW-VIEW
        if vc.view < self.view or (vc.view == self.view and self.active):
            return
        self.vc_msgs.setdefault(vc.view, {})[src] = vc
        higher = {s: w for w, msgs in self.vc_msgs.items() if w > self.view for s in msgs if s != self.ctx.node_id}
        if len(higher) >= self.f + 1:  # f + 1 replicas want a later view: join the smallest
            self._start_view_change(min(higher.values()), "f + 1 view changes")
        self._view_change_progress()

    def _view_change_progress(self) -> None:
        votes = self.vc_msgs.get(self.view, {})
        if self.active or len(votes) < self.q:
            return
        if self.is_primary:
            self._send_new_view(votes)
        elif self.new_view_timer is None:
            self.new_view_timer = self.ctx.set_timer(self._timeout_s(), "new_view", self.view)

    def _send_new_view(self, votes: dict[int, ViewChange]) -> None:
        ctx, view = self.ctx, self.view
        chosen = tuple(votes[s] for s in sorted(votes, key=lambda s: (s != ctx.node_id, s))[: self.q])
        base = max(chosen, key=lambda vc: vc.stable_seq)
        best: dict[int, PreparedCert] = {}
        for vc in chosen:
            for cert in vc.certs:
                seq = cert.pp.seq
                if seq > base.stable_seq and (seq not in best or cert.view > best[seq].view):
                    best[seq] = cert
        entries: list[PrePrepare] = []
        prev = base.stable_digest
        for seq in range(base.stable_seq + 1, max(best, default=base.stable_seq) + 1):
            cert = best.get(seq)
            if cert is not None and cert.pp.block.prev_hash == prev:
                block, txs = cert.pp.block, cert.pp.txs
            else:  # a null block for a gap, or a prepared block rebuilt on its replaced parent
                txs = cert.pp.txs if cert is not None else ()
                block = ctx.make_block(seq, prev, txs, round=view)
            entries.append(PrePrepare(view, seq, block, txs))
            prev = block.block_hash
        nv = NewView(view, chosen, tuple(entries))
        ctx.broadcast(nv)
        self.last_new_view = nv
        ctx.record("leader_elected", view=view, leader=ctx.node_id)
        self._enter_view(nv)

    def _on_new_view(self, src: int, nv: NewView) -> None:
        if src == self.primary(nv.view) and (nv.view > self.view or (nv.view == self.view and not self.active)):
            self._enter_view(nv)

    def _on_fetch_new_view(self, src: int, msg: FetchNewView) -> None:
        if self.last_new_view is not None and self.last_new_view.view == msg.view:
            self.ctx.send(src, self.last_new_view)

    def _enter_view(self, nv: NewView) -> None:
        ctx, me = self.ctx, self.ctx.node_id
        kept = {tx.tx_id for pp in nv.entries for tx in pp.txs}
        dropped = [tx for s in self.log.values() if s.pp for tx in s.pp.txs]
        dropped += [tx for c in self.pcerts.values() for tx in c.pp.txs]
        if self.is_primary and self.active:
            self.cutter.stop()
            dropped += [tx for batch in self.backlog for tx in batch]
            self.backlog = []
        # inactive until the view is set up: nothing below may propose or forward yet
        self.view, self.active = nv.view, False
        ctx.cancel_timer(self.new_view_timer)
        ctx.cancel_timer(self.request_timer)
        self.new_view_timer = self.request_timer = None
        self.vc_msgs = {w: m for w, m in self.vc_msgs.items() if w > nv.view}
        self.future_senders = {w: s for w, s in self.future_senders.items() if w > nv.view}
        self.log, self.ordered = {}, set()
        base = max(nv.view_changes, key=lambda vc: vc.stable_seq)
        if base.stable_seq > self.stable_seq:
            holders = sorted(vc.replica for vc in nv.view_changes if vc.stable_seq == base.stable_seq)
            self._stabilize(base.stable_seq, base.stable_digest, base.proof, holders)
        for pp in nv.entries:
            if self._in_window(pp.seq):
                slot = self._accept(pp.seq, pp)
                if not self.is_primary:
                    ctx.broadcast(Prepare(nv.view, pp.seq, pp.digest))
                    slot.prepares.setdefault(pp.digest, set()).add(me)
        self._readmit([tx for tx in dropped if tx.tx_id not in kept])
        self.active = True
        if self.is_primary:
            last = nv.entries[-1].block.block_hash if nv.entries else base.stable_digest
            self.next_seq, self.head_hash = base.stable_seq + len(nv.entries) + 1, last
            self._drain_backlog()
        elif len(ctx.mempool):  # every request this replica holds goes to the new primary
            held = tuple(tx for tx in ctx.mempool if tx.tx_id not in self.executed)
            if held:
                ctx.send(self.primary(nv.view), RequestBatch(held))
        for pp in nv.entries:
            if pp.seq in self.log:
                self._check_prepared(pp.seq)
        self._arm_request_timer()
        stash, self.future = self.future, []
        for src, msg in stash:
            if msg.view >= nv.view:
                self.on_message(src, msg)

    # ------------------------------------------------------------- dispatch

    def on_message(self, src: int, msg: Message) -> None:
        handler = self._handlers.get(type(msg))
        if handler is not None:
            handler(src, msg)

    # ------------------------------------------------------- crash / recovery

    def on_crash(self) -> None:
        self.cutter.stop()
        lost = [tx.tx_id for batch in self.backlog for tx in batch]
        if lost:
            self.ctx.tx_dropped(lost, "node crashed")
        self.backlog = []
        self.own, self.nudged, self.answered, self.replies = set(), set(), set(), {}
        self.lag_timer = self.status_timer = self.client_timer = None
        self.future, self.future_senders = [], {}
        self.request_timer = self.new_view_timer = None
        self.fetching = 0

    def on_recover(self) -> None:
        self.status_timer = self.ctx.set_timer(self._retransmit_s, "status")
        if self.active and self.is_primary:
            self.cutter.start()
        elif not self.active:
            self.new_view_timer = self.ctx.set_timer(self._timeout_s(), "new_view", self.view)
        else:
            self._arm_request_timer()
        self._watch_lag()
