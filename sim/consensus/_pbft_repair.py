"""Checkpoints, state transfer and loss repair of ``pbft``.

Checkpoints (OSDI 1999, section 4.3): after executing n with n mod K = 0 a replica
multicasts CHECKPOINT(n, d), d the ledger head hash; q matching ones make it stable:
the log at and below n is dropped and the low watermark moves to n. A replica that
learns of a stable checkpoint above its ledger fetches the missing blocks from one
replica that certified it (simplified state transfer: whole blocks, no partition tree).

Loss repair stands in for the BFT library's status messages and retransmissions,
which the paper assumes but does not specify (our design, each rule stated):
- every retransmission period (a quarter of the view-change timeout) a replica re-sends
  its messages for sequence numbers it has not executed and that had no news (no vote
  arrived, and its own send queue drained) for a period: the primary its pre-prepare to
  backups it heard nothing from, a backup its prepare to replicas it has no commit
  from, a prepared replica its commit;
- a replica that committed a later sequence number but not the next one fetches the
  missing blocks from a peer if the gap lasts a period;
- clients (at their origin node, whatever that replica's state) broadcast requests
  still unanswered after the view-change timeout to every replica (section 4.1), again
  with exponential backoff capped at 8 timeouts; a backup's first request-timer expiry
  also makes its clients retransmit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.consensus._pbft_messages import Checkpoint, Commit, FetchState, Prepare, RequestBatch, StateReply

if TYPE_CHECKING:
    from sim.consensus.pbft import Pbft
    from sim.workload.transaction import Transaction

__all__ = ["PbftRepair"]


class PbftRepair:
    """Checkpoint and repair half of :class:`~sim.consensus.pbft.Pbft` (a mixin)."""

    def _on_checkpoint(self: Pbft, src: int, msg: Checkpoint) -> None:
        self._add_checkpoint(src, msg.seq, msg.digest)

    def _add_checkpoint(self: Pbft, src: int, seq: int, digest: bytes) -> None:
        if seq <= self.stable_seq:
            return
        votes = self.checkpoints.setdefault(seq, {}).setdefault(digest, set())
        votes.add(src)
        if len(votes) >= self.q:
            self._stabilize(seq, digest, len(votes), sorted(votes))

    def _stabilize(self: Pbft, seq: int, digest: bytes, proof: int, holders: list[int]) -> None:
        """Checkpoint ``seq`` is stable: move the low watermark, drop the log below it."""
        self.stable_seq, self.stable_digest, self.stable_proof = seq, digest, proof
        on_ledger = self.ctx.holds_block  # every transaction of a block on the ledger is executed
        dropped = [
            tx for s, slot in self.log.items() if s <= seq and slot.pp and not on_ledger(slot.pp.block) for tx in slot.pp.txs
        ]
        dropped += [tx for s, cert in self.pcerts.items() if s <= seq and not on_ledger(cert.pp.block) for tx in cert.pp.txs]
        for table in (self.log, self.pcerts, self.checkpoints):
            for s in [s for s in table if s <= seq]:
                del table[s]
        # a superseded pre-prepare may hold requests nobody executed: keep them (blocks still
        # to come by state transfer remove them from the mempool when they are applied)
        self._readmit(dropped)
        if self.ctx.ledger_height < seq:
            self._fetch_state(seq, holders)
        if self.is_primary and self.active:
            self.next_seq = max(self.next_seq, seq + 1)
            self._drain_backlog()

    def _fetch_state(self: Pbft, target: int, holders: list[int]) -> None:
        others = [h for h in holders if h != self.ctx.node_id]
        if target <= self.fetching or not others:
            return
        self.fetching = target
        self.ctx.send(others[0], FetchState(self.ctx.ledger_height))
        self.ctx.set_timer(self.params.view_change_timeout_s, "fetch", (target, others[1:] + others[:1]))

    def _on_fetch_state(self: Pbft, src: int, msg: FetchState) -> None:
        if len(self.chain) > msg.height:
            self.ctx.send(src, StateReply(tuple(self.chain[msg.height :])))

    def _on_state_reply(self: Pbft, src: int, msg: StateReply) -> None:
        for block in msg.blocks:
            if block.height == self.ctx.ledger_height + 1 and block.prev_hash == self.ctx.ledger_head_hash:
                self._execute(block, None)
        if self.ctx.ledger_height >= self.fetching:
            self.fetching = 0
        self._execute_ready()

    @property
    def _retransmit_s(self: Pbft) -> float:
        """Period of retransmissions and lag checks: a quarter of the view-change timeout."""
        return self.params.view_change_timeout_s / 4

    def _retransmit(self: Pbft) -> None:
        """Re-send this replica's messages for sequence numbers stuck for a period.

        Stands in for the BFT library's status messages: the primary re-sends its
        pre-prepare to backups it has no prepare or commit from, a backup its prepare to
        replicas it has no commit from, a prepared replica its commit to all. A sequence
        number is stuck when no vote arrived for a period and a period has passed since this
        replica last saw its own send queue drain (read from ``ctx.network``).
        """
        ctx = self.ctx
        if not self.active:  # changing view: re-send our VIEW-CHANGE until the view is entered,
            votes = self.vc_msgs.get(self.view, {})  # to the new primary and replicas not heard from,
            own = votes.get(ctx.node_id)  # backing off (each carries certificates that cost CPU)
            if own is not None:
                silent = [j for j in ctx.others if j not in votes or j == self.primary(self.view)]
                ctx.multicast(silent, own)
            self.vc_resend_s = max(self._retransmit_s, 2 * self.vc_resend_s)
            self.status_timer = ctx.set_timer(self.vc_resend_s, "status")
            return
        # Our own send queue: while it holds copies not yet sent, wait for it to drain and a
        # full period more before calling anything stuck (retransmitting into a full uplink
        # snowballs).
        queued_until_s = ctx.network.uplink_free_s[ctx.node_id]
        if queued_until_s > ctx.now:
            self.uplink_quiet_s = queued_until_s
        pending = False
        for seq in sorted(self.log):
            slot = self.log[seq]
            pp = slot.pp
            if seq <= ctx.ledger_height or pp is None or slot.phased or slot.view != self.view:
                continue
            pending = True
            if ctx.now - max(slot.touched_s, self.uplink_quiet_s) < self._retransmit_s:  # still moving
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

    def _watch_lag(self: Pbft) -> None:
        """A later sequence number committed here but the next one did not: if that lasts,
        fetch the missing blocks (our stand-in for the BFT library's status messages)."""
        if self.lag_timer is None and self.max_committed > self.ctx.ledger_height:
            self.lag_timer = self.ctx.set_timer(self._retransmit_s, "lag", self.ctx.ledger_height)

    def _fetch_from_peer(self: Pbft) -> None:
        """Ask the next replica in turn (the primary first) for blocks above our ledger."""
        ctx = self.ctx
        peers = [self.primary(self.view)] + [p for p in ctx.others if p != self.primary(self.view)]
        peers = [p for p in peers if p != ctx.node_id]
        if peers:
            ctx.send(peers[self.lag_peer % len(peers)], FetchState(ctx.ledger_height))
            self.lag_peer += 1

    def _arm_client_timer(self: Pbft) -> None:
        if self.client_timer is None and self.own:
            self.client_timer = self.ctx.set_timer(self.params.view_change_timeout_s / 2, "client")

    def _client_retransmit(self: Pbft, wait_s: float) -> None:
        """The clients of this origin broadcast to every replica their requests without
        f + 1 replies (OSDI 1999, section 4.1), whatever this replica's own state: first
        ``wait_s`` after submission, then with exponential backoff (each wait doubles, up to
        8 view-change timeouts), so an open-loop backlog is not re-sent in full every period."""
        now = self.ctx.now
        overdue: dict[int, float] = {}  # request -> the wait it has now waited out
        for tx_id, submit_s in self.own.items():
            if tx_id not in self.answered:
                last_s, gap_s = self.resent_s.get(tx_id, (submit_s, wait_s))
                if now - last_s >= gap_s:
                    overdue[tx_id] = gap_s
        if not overdue:  # the usual case: look no further (the log can hold many blocks)
            return
        held = list(self.ctx.mempool) + [tx for batch in self.backlog for tx in batch]
        held += [tx for slot in self.log.values() if slot.pp for tx in slot.pp.txs]  # a stale primary's own blocks
        due: dict[int, Transaction] = {}
        for tx in held:
            if tx.tx_id in overdue and tx.tx_id not in due:
                due[tx.tx_id] = tx
                self.resent_s[tx.tx_id] = (now, min(2 * overdue[tx.tx_id], 8 * self.params.view_change_timeout_s))
        if due:
            self.ctx.broadcast(RequestBatch(tuple(due.values())))
