"""``pbft``: Practical Byzantine Fault Tolerance (Castro & Liskov, OSDI 1999; TOCS 2002).

n replicas tolerate f faults (n >= 3f + 1); a quorum is q = ceil((n + f + 1) / 2)
replicas (2f + 1 when n = 3f + 1, see :mod:`sim.consensus.quorum`). Every node is a
replica; the primary of view v is replica v mod n.

Normal case (section 4.2): a client's hospital (the origin node) sends its REQUEST to
the primary unless it is the primary. The primary batches requests into one block per
sequence number n (BlockCutter: size or batch timeout) within the watermarks
(h, h + L] and multicasts PRE-PREPARE(v, n, block). A backup that accepts it multicasts
PREPARE(v, n, d) to every other replica (the primary sends none). A replica is
*prepared* with the pre-prepare and q - 1 matching prepares from distinct replicas (its
own included), then multicasts COMMIT; it is *committed-local* with q matching commits
(its own included) and executes blocks in sequence order (ledger height = n). Every
replica then sends one REPLY per origin node of the block's transactions. The origin
confirms them to its client (``ctx.confirm_to_client``) once it holds f + 1 matching
replies, **counting its own execution as one reply, without a message** (the origin is
a replica). With a fixed one-way delay d and no CPU cost, a request submitted at a
backup is confirmed 5d after submission (4d at the primary).

The rest lives in mixins, one concern each: checkpoints, state transfer and loss repair
(:mod:`sim.consensus._pbft_repair`), view change (:mod:`sim.consensus._pbft_view_change`),
phase mode (:mod:`sim.consensus._pbft_phase`); messages in :mod:`sim.consensus._pbft_messages`.

Simplifications, each stated (details in the mixins):
- Signatures are charged on the CPU, not computed; Byzantine replicas come from the fault
  framework (sim/faults), which also checks the blocks a pre-prepare carries.
  View, log and certificates survive a crash (stable storage); mempool and timers do not.
- Loss repair (retransmission, block fetch for a replica that fell behind) stands in for
  the BFT library's status messages; replies are not re-sent for requests already executed.
- Blocks are hash-chained, so NEW-VIEW rebuilds a re-proposed block whose parent was
  replaced; a committed block of an old view whose parent lost is never executed.
- A backup's request timer first only nudges (its clients retransmit, it fetches
  blocks it may have missed); the next expiry starts the view change.
- VIEW-CHANGE certificates and NEW-VIEW carry pre-prepares without their requests
  (section 4.4); replicas here already hold them, so fetching them is not modelled.
- State transfer copies whole blocks from one replica that certified the checkpoint.
- A request that ends in two batches is listed in both blocks (executing it again is a
  no-op in the paper, thanks to per-client timestamps).
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
    Prepare,
    PreparedCert,
    PrePrepare,
    Reply,
    Request,
    RequestBatch,
    StateReply,
    ViewChange,
)
from sim.consensus._pbft_phase import PbftPhaseMode
from sim.consensus._pbft_repair import PbftRepair
from sim.consensus._pbft_replies import PbftReplyPhase, PhaseCheckpoint, PhaseReply
from sim.consensus._pbft_txviews import ExecutedTxs, OrderedTxs
from sim.consensus._pbft_view_change import PbftViewChange
from sim.consensus.base import Message, Protocol, ProtocolParams, register_protocol
from sim.consensus.batching import BlockCutter
from sim.consensus.quorum import bft_quorum, check_bft, max_faulty
from sim.ledger import GENESIS_HASH, Block
from sim.node.context import Timer
from sim.workload.transaction import Transaction

__all__ = ["Pbft", "PbftParams"]


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
    touched_s: float = 0.0  # when the pre-prepare was accepted or the last vote arrived
    phased: bool = False  # its prepare and commit phases run in phase mode
    reply_round: Any = None  # phase mode: the block's replies (sim.consensus._pbft_replies.ReplyRound)
    checkpoint_round: Any = None  # phase mode: its checkpoints (every checkpoint_interval-th block)


@register_protocol
class Pbft(PbftViewChange, PbftRepair, PbftPhaseMode, PbftReplyPhase, Protocol):
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

    @classmethod
    def byzantine_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        assert isinstance(params, PbftParams)
        return cls._faults(params, n_nodes)  # n >= 3f + 1 (OSDI 1999, section 3)

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
        self.executed = ExecutedTxs(ctx)  # on this replica's ledger
        self.ordered = OrderedTxs(self)  # in pre-prepares in the log, not yet executed
        self.own: dict[int, float] = {}  # this origin's requests not yet executed here -> submitted at (s)
        self.nudged: set[int] = set()  # requests whose view-change timer expired once
        self.answered: set[int] = set()  # own requests confirmed to the client, not executed here
        self.resent_s: dict[int, tuple[float, float]] = {}  # own request -> (last sent, next wait) of its client
        self.client_timer: Timer | None = None
        self.max_committed = 0  # highest sequence number committed-local here
        self.lag_timer: Timer | None = None
        self.lag_peer = 0
        self.status_timer: Timer | None = None
        self.uplink_quiet_s = 0.0  # when this replica's send queue was last seen to drain
        self.replies: dict[tuple[int, bytes], set[int]] = {}
        self.confirmed: set[tuple[int, bytes]] = set()
        self.chain: list[Block] = []  # executed blocks, served to lagging replicas
        self.vc_msgs: dict[int, dict[int, ViewChange]] = {}
        self.backoff = 0  # view changes since a block last executed
        self.last_new_view: NewView | None = None
        self.new_view_sent_s: dict[int, float] = {}  # replica -> when our NEW-VIEW was last re-sent to it
        self.vc_resend_s = 0.0  # current period of VIEW-CHANGE retransmission
        self.future: list[tuple[int, Message]] = []
        self.future_senders: dict[int, set[int]] = {}
        self.fetching = 0
        self.request_timer: Timer | None = None  # pending wake-up of the request timer
        self.request_due_s: float | None = None  # when the request timer expires (None: disarmed)
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
            PhaseReply: self._on_phase_reply, PhaseCheckpoint: self._on_phase_checkpoint,
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
        on_ledger = self.ctx.holds_block
        held = [tx.tx_id for s in self.log.values() if s.pp and not on_ledger(s.pp.block) for tx in s.pp.txs]
        held += [tx.tx_id for c in self.pcerts.values() if not on_ledger(c.pp.block) for tx in c.pp.txs]
        held += [tx.tx_id for batch in self.backlog for tx in batch]
        return [t for t in held if t not in self.executed]

    # --------------------------------------------------------------- requests

    def on_transaction(self, tx: Transaction) -> None:
        self.own[tx.tx_id] = tx.submit_s
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
        # phase mode cannot stand for Byzantine sends or degraded links: such blocks go as messages
        phased = ctx.phase_mode and ctx.phase_representable
        self._accept(seq, pp, phased=phased)
        if phased:
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
        slot.pp, slot.touched_s, slot.phased = pp, self.ctx.now, phased
        if not phased and self.status_timer is None:
            self.status_timer = self.ctx.set_timer(self._retransmit_s, "status")
        return slot

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
        # a real PRE-PREPARE is always answered with messages: in phase mode the primary
        # sends one only for blocks it could not phase (phased slots are never retransmitted)
        self.ctx.broadcast(Prepare(pp.view, pp.seq, pp.digest))
        slot.prepares.setdefault(pp.digest, set()).add(self.ctx.node_id)
        self._check_prepared(pp.seq)
        self._arm_request_timer()

    def _on_prepare(self, src: int, msg: Prepare) -> None:
        if self._normal_ok(src, msg) and src != self.primary(self.view):
            slot = self._slot(msg.seq)
            slot.prepares.setdefault(msg.digest, set()).add(src)
            slot.touched_s = self.ctx.now
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
            slot = self._slot(msg.seq)
            slot.commits.setdefault(msg.digest, set()).add(src)
            slot.touched_s = self.ctx.now
            self._check_committed(msg.seq)

    def _check_committed(self, seq: int) -> None:
        slot = self.log[seq]
        if (
            slot.prepared
            and not slot.committed
            and slot.pp is not None
            and len(slot.commits.get(slot.pp.digest, ())) >= self.q
        ):
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
            self._execute(slot.pp.block, slot.pp.txs, slot.reply_round, slot.checkpoint_round)
        self._watch_lag()

    # ------------------------------------------------------------------ timers

    def on_timer(self, name: str, data: Any) -> None:
        if name == "batch_timeout":
            self.cutter.on_timer()
        elif name == "request":
            self._on_request_wake()
        elif name == "client":
            self.client_timer = None
            self._client_retransmit(self.params.view_change_timeout_s)
            self._arm_client_timer()
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
        elif name == "phase_reply":
            self._phase_replied(data)
        elif name == "phase_checkpoint":
            self._phase_checkpointed(data)
        elif name == "fetch" and self.ctx.ledger_height < data[0] and data[0] == self.fetching:
            self.fetching = 0
            self._fetch_state(*data)

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
        self.own, self.nudged, self.answered, self.replies, self.resent_s = {}, set(), set(), {}, {}
        self.lag_timer = self.status_timer = self.client_timer = None
        self.future, self.future_senders = [], {}
        self.request_timer = self.new_view_timer = self.request_due_s = None
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
