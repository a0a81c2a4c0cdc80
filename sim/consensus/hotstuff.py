"""``hotstuff``: chained HotStuff with a round-robin pacemaker (Yin et al., PODC 2019).

Follows the event-driven chained HotStuff of the paper (Algorithm 3) with the view
numbers of chained HotStuff (Section 5). The leader of view v is node v mod n.

- leader(v) proposes a block extending the block of its highQC, carrying that QC
  (``justify``); replicas vote with one message each to leader(v+1) (the linear
  pattern) if v is above the last view they voted in and the block extends their
  locked block (safety rule) or its justify QC is newer than the lock (liveness rule);
- leader(v+1) forms a QC from n - f votes (2f + 1 when n = 3f + 1) and proposes view v+1;
- on every proposal b*: highQC <- b*.justify if newer; lock <- b' (b'' = b*.justify.node,
  b' = b''.justify.node) if newer; b = b'.justify.node commits when b'' <- b' <- b are
  direct parents in consecutive views (the Three-Chain). Committed blocks and their
  uncommitted ancestors are delivered in height order.

Modelling choices and simplifications (each stated, most tested):
- Views instead of heights in the vote, lock and highQC comparisons: a failed view leaves
  a gap that chained HotStuff fills with dummy nodes, so "direct parents" in the paper's
  chain means direct parents in consecutive views here. Algorithm 3's height comparisons
  would stall after a failed view (the next block has the height already voted for).
- Pacemaker: a view times out after ``view_timeout_s``, doubled per consecutive timeout
  (capped at 64x) and reset when a proposal or QC shows progress. On timeout a replica
  sends NEW-VIEW with its highQC to the next leader, which proposes after n - f of them
  (or on its own QC). Votes on any view above the last voted one are accepted whatever
  the local view, as in Algorithm 3, which also re-synchronises lagging replicas.
- Round-robin leaders: a block commits only after four consecutive views with live
  leaders, so some crash patterns stop commits (n = 4 with one crash never commits,
  while staying safe). ``crash_tolerance`` therefore reports min(f, (n - 1) // 4), the
  number of crashes under which commits continue whichever nodes crash.
- A QC is n - f individual 64 B signatures (no threshold signature, as in LibraBFT):
  a proposal's size and its receivers' verification cost grow with n.
- Transactions: the origin keeps each one in its mempool until committed and forwards
  it to the leaders of the next two views (the current leader's proposal is already
  under way; with one target a late or crashed leader costs a view timeout: on
  ``experiments/hotstuff_regional.toml`` p99 latency is 0.38 s with two targets, 1.14 s
  with one). After ``view_timeout_s`` without commit it forwards it again.
  Leaders keep proposed transactions in their mempool too and skip those already in
  the uncommitted chain they extend. A leader with nothing to propose waits up to
  ``batch_timeout_s`` and then proposes an empty block, so that pending chains commit.
- Block sync (not in the paper): a replica missing a block asks the sender for the
  chain up to it (``SyncRequest``); without it lost messages would stall a replica.
  It also brings a replica that rejoins after a crash or partition up to date
  (``syncs_ledger``): blocks delivered behind its back would leave its chain behind
  its ledger, unable to link new proposals.
- Crashes: vheight, lock, highQC and the block tree are persistent; collected votes
  and new-views are volatile.
- Phase mode (``network.mode = "phase"``): a view's votes to the next leader are
  computed with numpy, one event at the next leader instead of n - 1 vote messages
  (:mod:`sim.consensus._hotstuff_phase`). Messages: :mod:`sim.consensus._hotstuff_messages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from sim.consensus._hotstuff_messages import (
    GENESIS_QC,
    QC,
    NewView,
    Proposal,
    SyncRequest,
    SyncResponse,
    TxToLeader,
    Vote,
)
from sim.consensus._hotstuff_phase import HotStuffPhaseMode, VotesArrived
from sim.consensus.base import Message, Protocol, ProtocolParams, register_protocol
from sim.consensus.common import IdBits
from sim.consensus.quorum import f_setting_problems, resolve_f
from sim.ledger import GENESIS_HASH, Block
from sim.node.context import Timer
from sim.workload.transaction import Transaction

__all__ = ["GENESIS_QC", "QC", "HotStuff", "HotStuffParams", "NewView", "Proposal", "TxToLeader", "Vote"]

_MAX_BACKOFF_EXP = 6  # view timeout grows to at most 2**6 = 64 x view_timeout_s
_SYNC_MAX_BLOCKS = 32  # blocks in one SyncResponse
_MAX_BUFFERED = 64  # proposals waiting for their missing ancestors


@dataclass(slots=True)
class _Entry:
    """A block in the local block tree (``block`` is None for genesis)."""

    hash: bytes
    view: int
    height: int
    parent_hash: bytes
    justify: QC
    block: Block | None


class HotStuffParams(ProtocolParams):
    """Keys of ``[protocol]`` for ``hotstuff``."""

    name: str = "hotstuff"
    f: int | None = Field(None, ge=0, description="Byzantine faults tolerated; None = (n - 1) // 3")
    # Assumption: 1 s, ten times a cross-continent round trip; the paper leaves it open.
    view_timeout_s: float = Field(1.0, gt=0, description="base view timeout, seconds; doubles per consecutive timeout")


@register_protocol
class HotStuff(HotStuffPhaseMode, Protocol):
    """Chained HotStuff: one block per view, one vote message per replica per view."""

    name = "hotstuff"
    Params = HotStuffParams
    supports_phase_mode = True  # votes to the next leader (sim.consensus._hotstuff_phase)
    syncs_ledger = True  # block sync (SyncRequest) brings a rejoining replica up to date
    params: HotStuffParams

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, HotStuffParams)
        problems = f_setting_problems(params.f, n_nodes)
        if params.batch_timeout_s >= params.view_timeout_s:
            problems.append(
                f"batch_timeout_s = {params.batch_timeout_s} must be below view_timeout_s = "
                f"{params.view_timeout_s}, or idle leaders make every view time out"
            )
        if n_nodes == 1 and params.batch_timeout_s == 0:
            problems.append("batch_timeout_s = 0 with one node proposes empty blocks forever at one instant")
        return problems

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        assert isinstance(params, HotStuffParams)
        # commits need four consecutive live leaders; see the module docstring
        return min(resolve_f(params.f, n_nodes), (n_nodes - 1) // 4)

    @classmethod
    def byzantine_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        assert isinstance(params, HotStuffParams)
        # f: safe with f Byzantine nodes, live once they behave. While they misbehave the
        # round-robin liveness limit of crash_tolerance applies, and strict_faults counts
        # Byzantine nodes against crash_tolerance too.
        return resolve_f(params.f, n_nodes)

    # ---------------------------------------------------------------- state

    def on_start(self) -> None:
        n = self.ctx.n
        self.f = resolve_f(self.params.f, n)
        self.quorum = n - self.f
        genesis = _Entry(GENESIS_HASH, 0, 0, b"", GENESIS_QC, None)
        self.entries: dict[bytes, _Entry] = {GENESIS_HASH: genesis}  # uncommitted (and genesis)
        self.chain: list[_Entry] = [genesis]  # committed, index = height
        self.high_qc = GENESIS_QC
        self.lock = genesis
        self.last_voted_view = 0
        self.last_proposed_view = 0
        self.cur_view = 0
        self.timeouts_in_row = 0
        self.view_deadline_s = 0.0
        self.view_timer: Timer | None = None
        self.sweep_timer: Timer | None = None
        self.committed_ids = IdBits()
        self.forwarded_s: dict[int, float] = {}  # own pending transactions -> last forward time
        self._reset_volatile()
        self._enter_view(1)
        self._try_propose(1)

    def _reset_volatile(self) -> None:
        self.votes: dict[tuple[int, bytes], set[int]] = {}
        self.new_views: dict[int, set[int]] = {}
        self.ahead: dict[int, int] = {}  # replica -> highest view of its NEW-VIEW messages
        self.buffered: dict[bytes, tuple[int, Proposal]] = {}
        self.pending_qcs: dict[bytes, tuple[QC, int]] = {}  # QCs for unknown blocks, with whom to ask
        self.sync_asked: dict[bytes, float] = {}
        self.batch_timer: Timer | None = None
        self.waiting_view = 0  # view in which this leader waits for transactions
        self.wait_done_view = 0  # view whose batch wait has expired

    def _leader(self, view: int) -> int:
        return view % self.ctx.n

    def leader(self) -> int | None:
        return self._leader(self.cur_view)

    def pending_tx_ids(self) -> list[int]:
        held = [t for e in self.entries.values() if e.block is not None for t in e.block.tx_ids]
        return held + [t for _, m in self.buffered.values() for t in m.block.tx_ids]

    def _lookup(self, block_hash: bytes, height: int) -> _Entry | None:
        entry = self.entries.get(block_hash)
        if entry is None and 0 <= height < len(self.chain) and self.chain[height].hash == block_hash:
            entry = self.chain[height]
        return entry

    def _parent(self, entry: _Entry) -> _Entry | None:
        return self._lookup(entry.parent_hash, entry.height - 1)

    def _send_or_handle(self, dst: int, msg: Message) -> None:
        if dst == self.ctx.node_id:
            self.on_message(dst, msg)
        else:
            self.ctx.send(dst, msg)

    # ------------------------------------------------------------ pacemaker

    def _enter_view(self, view: int) -> None:
        if view <= self.cur_view:
            return
        self.cur_view = view
        timeout_s = self.params.view_timeout_s * 2 ** min(self.timeouts_in_row, _MAX_BACKOFF_EXP)
        self.view_deadline_s = self.ctx.now + timeout_s
        self._arm_view_timer()

    def _arm_view_timer(self) -> None:
        # one pending timer: re-armed when it fires early, replaced when the deadline moves earlier
        timer = self.view_timer
        if timer is None or timer.cancelled or timer.fire_s > self.view_deadline_s:
            self.ctx.cancel_timer(timer)
            self.view_timer = self.ctx.set_timer(self.view_deadline_s - self.ctx.now, "view")

    def _on_view_timer(self) -> None:
        self.view_timer = None
        if self.ctx.now < self.view_deadline_s - 1e-9:
            self._arm_view_timer()
            return
        view = self.cur_view
        self.ctx.record("view_timeout", view=view)
        self.timeouts_in_row += 1
        self._enter_view(view + 1)
        self._send_new_view(view + 1)

    def _send_new_view(self, view: int) -> None:
        """NEW-VIEW to the leader of ``view``; to everyone after repeated timeouts.

        Replicas that timed out at different times sit in different views and, with
        timeouts doubling in step, would never meet; broadcasting once a timeout repeats
        lets them join the view that f + 1 others reached (see ``_on_new_view``).
        """
        msg = NewView(view, self.high_qc)
        if self.timeouts_in_row >= 2 and self.ctx.n > 1:
            self.ctx.broadcast(msg)
            self._on_new_view(self.ctx.node_id, msg)
        else:
            self._send_or_handle(self._leader(view), msg)

    def _progress(self, next_view: int) -> None:
        """A proposal or QC showed that view ``next_view - 1`` worked."""
        if next_view > self.cur_view:
            self.timeouts_in_row = 0
            self._enter_view(next_view)

    # -------------------------------------------------------------- leader

    def _learn_qc(self, qc: QC, src: int) -> None:
        """updateQCHigh; a QC for a block not yet known waits for block sync."""
        if qc.view <= self.high_qc.view:
            return
        if self._lookup(qc.block_hash, qc.height) is None:
            self.pending_qcs[qc.block_hash] = (qc, src)
            self._ask_sync(src, qc.block_hash, qc.height)
        else:
            self.high_qc = qc

    def _on_vote(self, src: int, vote: Vote) -> None:
        if self._leader(vote.view + 1) != self.ctx.node_id or vote.view <= self.high_qc.view:
            return
        voters = self.votes.setdefault((vote.view, vote.block_hash), set())
        if src in voters:
            return
        voters.add(src)
        if len(voters) == self.quorum:
            self._qc_formed(vote, src)

    def _qc_formed(self, vote: Vote, src: int) -> None:
        """A quorum voted ``vote``, the last vote from ``src``: learn the QC, propose the next view."""
        self.ctx.record("qc_formed", view=vote.view, height=vote.height)
        self._learn_qc(QC(vote.view, vote.height, vote.block_hash, self.quorum), src)
        self.votes = {k: v for k, v in self.votes.items() if k[0] > vote.view}
        self._progress(vote.view + 1)
        self._try_propose(vote.view + 1)

    def _on_new_view(self, src: int, msg: NewView) -> None:
        self._learn_qc(msg.qc, src)
        if msg.view > self.cur_view and src != self.ctx.node_id:
            self.ahead[src] = max(self.ahead.get(src, 0), msg.view)
            views = sorted((v for v in self.ahead.values() if v > self.cur_view), reverse=True)
            if len(views) > self.f:  # f + 1 replicas, one of them correct, reached views[f]
                self._enter_view(views[self.f])
                self._send_new_view(views[self.f])
        if self._leader(msg.view) != self.ctx.node_id or msg.view <= self.last_proposed_view:
            return
        senders = self.new_views.setdefault(msg.view, set())
        senders.add(src)
        if len(senders) >= self.quorum:
            self._enter_view(msg.view)
            self._try_propose(msg.view)

    def _try_propose(self, view: int) -> None:
        if (
            self._leader(view) != self.ctx.node_id
            or view <= max(self.last_proposed_view, self.last_voted_view)
            or not (self.high_qc.view == view - 1 or len(self.new_views.get(view, ())) >= self.quorum)
        ):
            return
        self.pending_qcs = {h: p for h, p in self.pending_qcs.items() if p[0].view > self.high_qc.view}
        if self.pending_qcs:  # a higher QC's block is still being fetched
            for qc, src in self.pending_qcs.values():
                self._ask_sync(src, qc.block_hash, qc.height)
            return
        parent = self._lookup(self.high_qc.block_hash, self.high_qc.height)
        assert parent is not None
        txs = self._select_txs(parent)
        if not txs and self.params.batch_timeout_s > 0 and self.wait_done_view != view:
            if self.waiting_view != view:  # wait for transactions, then propose empty
                self.waiting_view = view
                self.batch_timer = self.ctx.set_timer(self.params.batch_timeout_s, "batch", view)
            return
        self._propose(view, parent, txs)

    def _uncommitted_tx_ids(self, tip: _Entry | None) -> set[int]:
        """Transactions in the blocks from ``tip`` down to the last committed block."""
        ids: set[int] = set()
        while tip is not None and tip.height > self.ctx.ledger_height:
            if tip.block is not None:
                ids.update(tip.block.tx_ids)
            tip = self._parent(tip)
        return ids

    def _select_txs(self, parent: _Entry) -> list[Transaction]:
        skip = self._uncommitted_tx_ids(parent)
        max_tx, max_bytes = self.params.max_block_tx, self.params.max_block_bytes
        batch: list[Transaction] = []
        size_bytes = 0
        for tx in self.ctx.mempool:
            if tx.tx_id in skip or tx.tx_id in self.committed_ids:
                continue
            if len(batch) >= max_tx or (batch and size_bytes + tx.size_bytes > max_bytes):
                break
            batch.append(tx)
            size_bytes += tx.size_bytes
        return batch

    def _propose(self, view: int, parent: _Entry, txs: list[Transaction]) -> None:
        ctx = self.ctx
        block = ctx.make_block(parent.height + 1, parent.hash, txs, round=view)
        msg = Proposal(block, self.high_qc)
        self.last_proposed_view = view
        ctx.cancel_timer(self.batch_timer)
        self.batch_timer = None
        self.new_views = {v: s for v, s in self.new_views.items() if v > view}
        ctx.record("leader_elected", view=view, leader=ctx.node_id)
        if ctx.n > 1 and ctx.phase_mode and ctx.phase_representable:
            msg = self._propose_phased(msg)
        elif ctx.n > 1:
            ctx.broadcast(msg)
        self._on_proposal(ctx.node_id, msg)

    # ------------------------------------------------------------- replica

    def _on_proposal(self, src: int, msg: Proposal) -> None:
        block, qc = msg.block, msg.justify
        view = block.round
        if (
            src != self._leader(view)
            or qc.block_hash != block.prev_hash
            or qc.height != block.height - 1
            or qc.view >= view
            or block.block_hash in self.entries
            or block.height <= self.ctx.ledger_height
        ):
            self._cast_vote(msg, None)
            return
        parent = self._lookup(block.prev_hash, block.height - 1)
        if parent is None:  # decides on its vote when handled again, after block sync
            if len(self.buffered) < _MAX_BUFFERED:
                self.buffered[block.block_hash] = (src, msg)
            self._ask_sync(src, block.prev_hash, block.height - 1)
            return
        if parent.view != qc.view:
            self._cast_vote(msg, None)
            return
        entry = _Entry(block.block_hash, view, block.height, block.prev_hash, qc, block)
        self._insert(entry)
        vote = view > self.last_voted_view and (self._extends(entry, self.lock) or qc.view > self.lock.view)
        if vote:
            self.last_voted_view = view
        self._update(entry, src)
        if view >= self.cur_view:
            self._progress(view + 1)
        self._cast_vote(msg, Vote(view, block.height, block.block_hash) if vote else None)

    def _insert(self, entry: _Entry) -> None:
        self.entries[entry.hash] = entry
        pending = self.pending_qcs.pop(entry.hash, None)
        if pending is not None and pending[0].view > self.high_qc.view:
            self.high_qc = pending[0]

    def _extends(self, entry: _Entry | None, ancestor: _Entry) -> bool:
        while entry is not None and entry.height > ancestor.height:
            entry = self._parent(entry)
        return entry is not None and entry.hash == ancestor.hash

    def _update(self, b_star: _Entry, src: int) -> None:
        """Algorithm 3's update: highQC, lock and the Three-Chain commit rule."""
        self._learn_qc(b_star.justify, src)
        b2 = self._lookup(b_star.justify.block_hash, b_star.justify.height)
        b1 = self._lookup(b2.justify.block_hash, b2.justify.height) if b2 is not None else None
        if b1 is None:
            return
        if b1.view > self.lock.view:
            self.lock = b1
        b0 = self._lookup(b1.justify.block_hash, b1.justify.height)
        if (
            b0 is not None
            and b2 is not None
            and b2.parent_hash == b1.hash
            and b1.parent_hash == b0.hash
            and b2.view == b1.view + 1 == b0.view + 2
        ):
            self._commit(b0)

    def _commit(self, target: _Entry) -> None:
        ctx = self.ctx
        if target.height <= ctx.ledger_height:
            return
        path: list[_Entry] = []
        entry: _Entry | None = target
        while entry is not None and entry.height > ctx.ledger_height:
            path.append(entry)
            entry = self._parent(entry)
        if entry is None or entry.hash != ctx.ledger_head_hash:
            raise RuntimeError(f"hotstuff node {ctx.node_id}: block of view {target.view} does not extend the ledger")
        mark, unforward = self.committed_ids.add, self.forwarded_s.pop
        for e in reversed(path):
            assert e.block is not None
            ctx.deliver_block(e.block)
            self.chain.append(e)
            ids = e.block.tx_ids
            for tx_id in ids:
                mark(tx_id)
                unforward(tx_id, None)
            ctx.mempool.remove(ids, ctx.now)
            ctx.record("block_committed", view=e.view, height=e.height)
        height = ctx.ledger_height
        self.entries = {h: e for h, e in self.entries.items() if e.height > height}
        if self.buffered:
            self.buffered = {h: sm for h, sm in self.buffered.items() if sm[1].block.height > height}

    # ----------------------------------------------------------- block sync

    def _ask_sync(self, dst: int, block_hash: bytes, height: int) -> None:
        asked_s = self.sync_asked.get(block_hash)
        if dst == self.ctx.node_id or (asked_s is not None and self.ctx.now - asked_s < self.params.view_timeout_s):
            return
        if len(self.sync_asked) > 1024:
            self.sync_asked.clear()
        self.sync_asked[block_hash] = self.ctx.now
        self.ctx.send(dst, SyncRequest(block_hash, height, self.ctx.ledger_height))

    def _on_sync_request(self, src: int, req: SyncRequest) -> None:
        entry = self._lookup(req.block_hash, req.height)
        path: list[_Entry] = []
        while entry is not None and entry.height > req.have_height:
            path.append(entry)
            entry = self._parent(entry)
        if entry is not None and path:
            path.reverse()
            entries = tuple((e.block, e.justify) for e in path[:_SYNC_MAX_BLOCKS] if e.block is not None)
            self.ctx.send(src, SyncResponse(req.block_hash, req.height, entries))

    def _on_sync_response(self, src: int, resp: SyncResponse) -> None:
        last: Block | None = None
        for block, qc in resp.entries:
            if block.block_hash not in self.entries and block.height > self.ctx.ledger_height:
                if self._lookup(block.prev_hash, block.height - 1) is None or qc.block_hash != block.prev_hash:
                    break
                self._insert(_Entry(block.block_hash, block.round, block.height, block.prev_hash, qc, block))
            last = block
        if last is not None and last.height < resp.height:  # cut short: ask for the rest
            self.sync_asked[resp.block_hash] = self.ctx.now
            self.ctx.send(src, SyncRequest(resp.block_hash, resp.height, last.height))
        for key, (s, m) in sorted(self.buffered.items(), key=lambda kv: kv[1][1].block.round):
            if key in self.buffered and self._lookup(m.block.prev_hash, m.block.height - 1) is not None:
                del self.buffered[key]
                self._on_proposal(s, m)
        self._try_propose(max(self.cur_view, self.waiting_view))

    # --------------------------------------------------------- transactions

    def on_transaction(self, tx: Transaction) -> None:
        self._forward(tx)
        self._poke()

    def _forward(self, tx: Transaction) -> None:
        self.forwarded_s.pop(tx.tx_id, None)  # re-insert: the dict stays in forwarding order
        self.forwarded_s[tx.tx_id] = self.ctx.now
        targets = {self._leader(self.cur_view + 1), self._leader(self.cur_view + 2)} - {self.ctx.node_id}
        if targets:
            self.ctx.multicast(sorted(targets), TxToLeader(tx))
        if self.sweep_timer is None:
            self.sweep_timer = self.ctx.set_timer(self.params.view_timeout_s, "sweep")

    def _poke(self) -> None:
        """Transactions arrived: a leader waiting for them proposes now."""
        if self.waiting_view > self.last_proposed_view:
            self._try_propose(self.waiting_view)

    def _sweep(self) -> None:
        """Forward again own transactions not committed within a view timeout."""
        self.sweep_timer = None
        now, limit_s = self.ctx.now, self.params.view_timeout_s
        held = {tx.tx_id: tx for tx in self.ctx.mempool if tx.tx_id in self.forwarded_s}
        in_pipeline = self._uncommitted_tx_ids(self._lookup(self.high_qc.block_hash, self.high_qc.height))
        for tx_id, sent_s in list(self.forwarded_s.items()):
            if tx_id not in held:
                del self.forwarded_s[tx_id]  # committed or lost with a crash
            elif now - sent_s >= limit_s - 1e-9 and tx_id not in in_pipeline:
                self._forward(held[tx_id])
        self.ctx.cancel_timer(self.sweep_timer)
        self.sweep_timer = None
        if self.forwarded_s:  # next due: the oldest forward (the dict is in forwarding order)
            oldest_s = next(iter(self.forwarded_s.values()))
            self.sweep_timer = self.ctx.set_timer(max(oldest_s + limit_s - now, limit_s / 8), "sweep")

    # ------------------------------------------------------------- handlers

    def on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, Proposal):
            self._on_proposal(src, msg)
        elif isinstance(msg, Vote):
            self._on_vote(src, msg)
        elif isinstance(msg, VotesArrived):
            self._on_votes_arrived(msg)
        elif isinstance(msg, NewView):
            self._on_new_view(src, msg)
        elif isinstance(msg, TxToLeader):
            if msg.tx.tx_id not in self.committed_ids and self.ctx.admit(msg.tx):
                self._poke()
        elif isinstance(msg, SyncRequest):
            self._on_sync_request(src, msg)
        elif isinstance(msg, SyncResponse):
            self._on_sync_response(src, msg)

    def on_timer(self, name: str, data: Any) -> None:
        if name == "view":
            self._on_view_timer()
        elif name == "batch" and data == self.waiting_view:
            self.batch_timer = None
            self.wait_done_view = data
            self._try_propose(data)
        elif name == "sweep":
            self._sweep()
        elif name == "phase":
            self._phase_qc(*data)

    def on_crash(self) -> None:
        self._reset_volatile()
        self.forwarded_s.clear()
        self.view_timer = None
        self.sweep_timer = None

    def on_recover(self) -> None:
        self._up_since_s = self.ctx.network.env.now
        timeout_s = self.params.view_timeout_s * 2 ** min(self.timeouts_in_row, _MAX_BACKOFF_EXP)
        self.view_deadline_s = self.ctx.now + timeout_s
        self._arm_view_timer()
