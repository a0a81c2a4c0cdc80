"""View change of ``pbft`` (Castro & Liskov, OSDI 1999, sections 4.4 and 4.5.2).

A backup runs a timer for the oldest request it waits for (its own client's, one
relayed to it, or one in a pre-prepare it accepted). The first expiry only asks a peer
for blocks this replica may have missed; the next starts a view change: multicast
VIEW-CHANGE(v + 1) with the last stable checkpoint and the prepared certificates. A
replica joins once f + 1 others ask for later views. The new primary, with q
VIEW-CHANGE messages, multicasts NEW-VIEW re-proposing every sequence number above
the highest stable checkpoint: prepared ones keep their block (highest view wins),
gaps get empty (null) blocks. A replica with q VIEW-CHANGE messages and no NEW-VIEW
within the timeout moves on to the next view; the timeout doubles until a block
executes. Until the view is entered a replica re-sends its VIEW-CHANGE to the new
primary and to replicas it has none from, backing off from one retransmission period;
the new primary re-sends NEW-VIEW to a replica still asking (at most once a timeout).

Chain repair (our addition, because blocks are hash-chained): a re-proposed block whose
parent was replaced by a null block is rebuilt on the new parent with the same
requests. No replica executed the old one (it would have executed its parent too).

Requests never vanish: requests of discarded pre-prepares go back to a mempool, and
every backup re-sends what it holds to the new primary, whose dedup (requests already
ordered or executed) stands for the paper's per-client timestamps.

A replica that sees messages of a later view from f + 1 replicas (it missed a view
change, e.g. while crashed) asks that view's primary for its NEW-VIEW; messages of a
later view are kept until the replica enters it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.consensus._pbft_messages import (
    FetchNewView,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    RequestBatch,
    ViewChange,
)

if TYPE_CHECKING:
    from sim.consensus.pbft import Pbft

__all__ = ["PbftViewChange"]

_FUTURE_CAP = 100_000  # most messages of later views kept while catching up


class PbftViewChange:
    """View-change half of :class:`~sim.consensus.pbft.Pbft` (a mixin: it uses Pbft's state)."""

    def _arm_request_timer(self: Pbft) -> None:
        """Run the view-change timer for the oldest request this backup waits for.

        The timer is re-armed at every executed block; to spare a SimPy event each time
        it is a deadline (``request_due_s``) served by at most one pending node timer: a
        wake-up that comes before the deadline only schedules the next one
        (:meth:`_on_request_wake`), so it still expires exactly ``_timeout_s()`` after
        it was last armed.
        """
        if self.request_due_s is not None or not self.active or self.is_primary:
            return
        executed, watch = self.executed, None
        for tx in self.ctx.mempool:
            if tx.tx_id not in executed:
                watch = tx.tx_id
                break
        else:
            watch = self._first_logged_request()
        self.watch = watch
        if watch is None:
            return
        timeout_s = self._timeout_s()
        self.request_due_s = self.ctx.now + timeout_s
        if self.request_timer is not None and self.request_timer.fire_s > self.request_due_s:
            self.ctx.cancel_timer(self.request_timer)
            self.request_timer = None
        if self.request_timer is None:
            self.request_timer = self.ctx.set_timer(timeout_s, "request", None)

    def _first_logged_request(self: Pbft) -> int | None:
        """The first request in a pre-prepare above what this replica executed (None: none)."""
        log, executed = self.log, self.executed
        if not log:
            return None
        first = self.ctx.ledger_height + 1
        # scan the window only up to the highest logged sequence number: the log is usually
        # far shorter than the window, and this runs at every replica for every block; that
        # number (O(log) to find) is needed only past a gap, usually never
        highest: int | None = None
        for seq in range(first, first + self.window):
            slot = log.get(seq)
            if slot is None:
                if highest is None:
                    highest = max(log)
                if seq > highest:
                    return None
            elif slot.pp is not None:
                for tx_id in slot.pp.block.tx_ids:
                    if tx_id not in executed:
                        return tx_id
        return None

    def _disarm_request_timer(self: Pbft) -> None:
        """Stop the view-change timer; a pending wake-up stays and finds it disarmed."""
        self.request_due_s = None

    def _stop_request_timer(self: Pbft) -> None:
        """Stop the view-change timer and drop its pending wake-up."""
        self.ctx.cancel_timer(self.request_timer)
        self.request_timer = self.request_due_s = None

    def _on_request_wake(self: Pbft) -> None:
        """The request timer's node timer fired: expire, or sleep on to the deadline."""
        self.request_timer = None
        due = self.request_due_s
        if due is None:
            return
        if due > self.ctx.now:
            self.request_timer = self.ctx.set_timer(due - self.ctx.now, "request", None)
            return
        self.request_due_s = None
        watch = self.watch
        if not self.active or self.is_primary or watch in self.executed:
            self._arm_request_timer()
        elif watch not in self.nudged:
            self._nudge(watch)
            self._arm_request_timer()
        else:
            self._start_view_change(self.view + 1, "request timeout")

    def _nudge(self: Pbft, watch: int) -> None:
        """First expiry of the request timer: this origin's clients retransmit what waited
        that long, and the replica asks for blocks it may have missed (it may only be
        behind); only the next expiry starts a view change."""
        self.nudged.add(watch)
        self._client_retransmit(self.params.view_change_timeout_s / 2)
        self.lag_peer = 0
        self._fetch_from_peer()

    def _stash_future(self: Pbft, src: int, msg: Any, keep: bool = True) -> bool:
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

    def _start_view_change(self: Pbft, view: int, reason: str) -> None:
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
        self._stop_request_timer()
        ctx.cancel_timer(self.new_view_timer)
        self.new_view_timer = None
        certs = tuple(self.pcerts[s] for s in sorted(self.pcerts) if s > self.stable_seq)
        vc = ViewChange(view, ctx.node_id, self.stable_seq, self.stable_digest, self.stable_proof, certs)
        ctx.broadcast(vc)
        self.vc_msgs.setdefault(view, {})[ctx.node_id] = vc
        ctx.record("view_change", view=view, reason=reason)
        ctx.cancel_timer(self.status_timer)
        self.vc_resend_s = self._retransmit_s
        self.status_timer = ctx.set_timer(self.vc_resend_s, "status")
        self._view_change_progress()

    def _on_view_change(self: Pbft, src: int, vc: ViewChange) -> None:
        if (
            vc.view == self.view
            and self.active
            and self.last_new_view
            and self.last_new_view.view == vc.view
            and self.ctx.now - self.new_view_sent_s.get(src, -1.0) >= self.params.view_change_timeout_s
        ):
            self.new_view_sent_s[src] = self.ctx.now
            self.ctx.send(src, self.last_new_view)  # it missed our NEW-VIEW
        if vc.view < self.view or (vc.view == self.view and self.active):
            return
        self.vc_msgs.setdefault(vc.view, {})[src] = vc
        higher = {s: w for w, msgs in self.vc_msgs.items() if w > self.view for s in msgs if s != self.ctx.node_id}
        if len(higher) >= self.f + 1:  # f + 1 replicas want a later view: join the smallest
            self._start_view_change(min(higher.values()), "f + 1 view changes")
        self._view_change_progress()

    def _view_change_progress(self: Pbft) -> None:
        votes = self.vc_msgs.get(self.view, {})
        if self.active or len(votes) < self.q:
            return
        if self.is_primary:
            self._send_new_view(votes)
        elif self.new_view_timer is None:
            self.new_view_timer = self.ctx.set_timer(self._timeout_s(), "new_view", self.view)

    def _send_new_view(self: Pbft, votes: dict[int, ViewChange]) -> None:
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
        self.last_new_view, self.new_view_sent_s = nv, {}
        ctx.record("leader_elected", view=view, leader=ctx.node_id)
        self._enter_view(nv)

    def _on_new_view(self: Pbft, src: int, nv: NewView) -> None:
        if src == self.primary(nv.view) and (nv.view > self.view or (nv.view == self.view and not self.active)):
            self._enter_view(nv)

    def _on_fetch_new_view(self: Pbft, src: int, msg: FetchNewView) -> None:
        if self.last_new_view is not None and self.last_new_view.view == msg.view:
            self.ctx.send(src, self.last_new_view)

    def _enter_view(self: Pbft, nv: NewView) -> None:
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
        self._stop_request_timer()
        self.new_view_timer = None
        self.vc_msgs = {w: m for w, m in self.vc_msgs.items() if w > nv.view}
        self.future_senders = {w: s for w, s in self.future_senders.items() if w > nv.view}
        self.log = {}
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
