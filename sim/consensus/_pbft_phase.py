"""Phase mode of ``pbft``: the normal case of one sequence number computed with numpy.

DESIGN.md, "Two ways to move a message, one answer". When the primary sends a
pre-prepare it computes, with :mod:`sim.network.phase`, every replica's pre-prepare
arrival, prepare send time (arrival + CPU to check the pre-prepare + signing), the
receiver-major prepare delay matrix and each replica's prepare quorum time, then the
same for commits, and schedules per replica one event per stage ("pre-prepare",
"prepared", "committed") instead of 2n(n - 1) message events. Every logical message
is still counted with its bytes.

Replicas confirm what the computation assumed: a backup that accepts the pre-prepare
confirms its prepare, a replica that becomes prepared confirms its commit; replicas
changing view, out of window or crashed confirm nothing, and receivers count only
confirmed votes (:class:`sim.network.phase.QuorumRound`). A commit quorum therefore
always consists of replicas that hold a prepared certificate, as in message mode.

Approximations (exact when CPU costs are zero and nothing changes view mid-phase):
- a replica's send times assume its CPU is otherwise idle; the CPU is still charged
  for every message (before acting: the estimate of ``phase.quorum_done``; the rest after);
- link state (crashes, partitions) is read when the primary sends the pre-prepare,
  jitter and loss are drawn in another order than message mode would draw them;
- a backup decides to accept the pre-prepare when it arrives, before its CPU checks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sim.consensus._pbft_messages import PhaseQuorum, Prepare, PrePrepare
from sim.network.phase import LinkSnapshot, PhaseDelivery, QuorumRound, broadcast, quorum_done, quorum_times

if TYPE_CHECKING:
    from sim.consensus.pbft import Pbft

__all__ = ["PbftPhaseMode"]

#: a wake-up scheduled at the verified time ``start + cost`` may come back as ``now``
#: that differs in the last bit; waiting for such a difference would cost an event
_ROUNDING_S = 1e-12


def _split_cost(at_s: np.ndarray, done_s: np.ndarray, total_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stage's CPU seconds per replica: verifying its quorum after the quorum is complete
    (``done - at``: 0 where it never is) and the rest of its ``total_s``, after it acts."""
    with np.errstate(invalid="ignore"):  # inf - inf where a replica never gets there
        now_s = np.where(np.isfinite(at_s), done_s - at_s, 0.0)
    return now_s, total_s - now_s


class PbftPhaseMode:
    """Phase-mode half of :class:`~sim.consensus.pbft.Pbft` (a mixin: it uses Pbft's state)."""

    def _phases_vectorized(self: Pbft, pp: PrePrepare) -> None:
        """Primary: compute the pre-prepare, prepare and commit phases of ``pp`` and schedule them."""
        ctx, me, n = self.ctx, self.ctx.node_id, self.ctx.n
        net = ctx.network
        links = LinkSnapshot.of(net)
        sign_s = ctx.sign_s
        retry_s = self._retransmit_s  # a lost copy is sent again one retransmission period later
        start = broadcast(net, links, np.array([me]), np.array([ctx.cpu(sign_s)]), pp.size_bytes(), "PrePrepare", retry_s)
        arrival = start.arrival_s[:, 0]
        pp_cost_s = ctx.receive_cost_s(pp)
        has_pp = arrival + pp_cost_s
        has_pp[me] = ctx.now
        backups = np.flatnonzero(np.isfinite(arrival))
        vote = Prepare(pp.view, pp.seq, pp.digest)
        size, cost_s = vote.size_bytes(), ctx.receive_cost_s(vote)

        # a backup signs its prepare once it holds the pre-prepare, and every replica its
        # commit once prepared, before it verifies the votes queued behind (FIFO CPU)
        signed_pp = has_pp + sign_s
        signed_pp[me] = ctx.now  # the primary signed its pre-prepare (charged above) and sends no prepare
        prepares = broadcast(net, links, backups, signed_pp[backups], size, "Prepare", retry_s)
        prepare_need = np.full(n, self.q - 1)
        prepare_need[backups] -= 1  # a backup's own prepare counts
        prepare_q = quorum_times(prepares.arrival_s, prepare_need)
        prepare_at, prepared = quorum_done(prepares.arrival_s, prepare_need, signed_pp, cost_s, prepare_q)
        senders = np.flatnonzero(np.isfinite(prepared))
        commits = broadcast(net, links, senders, prepared[senders] + sign_s, size, "Commit", retry_s)
        commit_need = np.full(n, self.q - 1)  # and its own commit
        commit_q = quorum_times(commits.arrival_s, commit_need)
        commit_at, committed = quorum_done(commits.arrival_s, commit_need, prepared + sign_s, cost_s, commit_q)

        prepare_round = QuorumRound(net, prepares.arrival_s, backups, prepare_need, prepare_q)
        commit_round = QuorumRound(net, commits.arrival_s, senders, commit_need, commit_q)
        # CPU seconds each replica spends on a stage's quorum once it is complete (``now``)
        # and on the stage's other copies after it has acted (``later``)
        prepare_now_s, prepare_later_s = _split_cost(prepare_at, prepared, prepares.received * cost_s)
        commit_now_s, commit_later_s = _split_cost(commit_at, committed, commits.received * cost_s)
        # A prepared replica verifies the prepares beyond its quorum before the commits
        # queued behind them (FIFO): its commit quorum is verified no earlier than that
        # backlog plus the quorum's own cost. Waking it then, not at the idle-CPU time,
        # saves the two events (a CPU wait and a timer) of waking early; the time it acts
        # at is the same. With zero CPU cost nothing changes.
        with np.errstate(invalid="ignore"):
            commit_wake_s = np.maximum(commit_at, prepared + prepare_later_s + sign_s) + commit_now_s
        replies = self._reply_phase(pp, links, commit_wake_s)
        checkpoints = None
        if pp.seq % self.params.checkpoint_interval == 0:
            checkpoints = self._checkpoint_phase(pp, links, commit_wake_s)
        slot = self.log[pp.seq]
        slot.reply_round, slot.checkpoint_round = replies, checkpoints
        shared = PhaseQuorum("pre-prepare", pp, prepare_round, commit_round, pp_cost_s, 0.0, replies, checkpoints)
        PhaseDelivery(net).deliver(arrival, lambda j: shared, src=me)
        for stage, votes, wake_s, now_s, later_s in (
            ("prepared", prepare_round, prepared, prepare_now_s, prepare_later_s),
            ("committed", commit_round, commit_wake_s, commit_now_s, commit_later_s),
        ):
            now_l, later_l = now_s.tolist(), later_s.tolist()  # Python floats, as float(now_s[j])
            # woken when the quorum is verified, not when it is complete: one event, not two
            votes.schedule(
                wake_s,
                lambda j, stage=stage, now_l=now_l, later_l=later_l: PhaseQuorum(
                    stage, pp, prepare_round, commit_round, now_l[j], later_l[j]
                ),
            )

    def _on_phase_event(self: Pbft, src: int, msg: PhaseQuorum) -> None:
        """A phase-mode event reached this replica."""
        if self._stash_future(src, msg):
            return
        me, pp = self.ctx.node_id, msg.pp
        in_view = self.active and pp.view == self.view and self._in_window(pp.seq)
        if msg.stage == "pre-prepare":
            slot = self._slot(pp.seq) if in_view and src == self.primary(self.view) else None
            accepted = slot is not None and slot.pp is None
            if accepted:
                slot = self._accept(pp.seq, pp, phased=True)
                slot.reply_round, slot.checkpoint_round = msg.replies, msg.checkpoints
                self._arm_request_timer()
            msg.prepares.decide(me, accepted)
            self.ctx.cpu(msg.cpu_now_s + (self.ctx.sign_s if accepted else 0.0))  # check it, sign the prepare
            return
        slot = self.log.get(pp.seq)
        if not in_view or slot is None or slot.view != self.view or slot.pp is None or slot.pp.digest != pp.digest:
            return
        if msg.stage == "prepared":
            if slot.prepared or msg.prepares.check(me) != "ready":
                return
        elif slot.committed:
            return
        elif not slot.prepared:
            msg.commits.waiting.add(me)  # woken when this replica confirms its own commit
            return
        elif msg.commits.check(me) != "ready":
            return
        votes = msg.prepares if msg.stage == "prepared" else msg.commits
        # this replica is done with the round: its kept message would tie the two rounds'
        # (n, n) arrays into a reference cycle that only the cyclic collector frees
        votes.messages.pop(me, None)
        if self._verified(votes.ready_quorum_s, msg.cpu_now_s, msg.cpu_later_s, "phase", msg):
            self._phase_apply(msg)

    def _verified(self: Pbft, quorum_s: float, now_cost_s: float, later_cost_s: float, timer: str, msg: Any) -> bool:
        """Charge the CPU for a quorum's copies (``now_cost_s`` queued since ``quorum_s``, when
        the quorum was complete, the rest after); True if they are verified now, else the
        ``timer`` timer fires with ``msg`` when they are."""
        ctx = self.ctx
        done_s = ctx.cpu_since(quorum_s, now_cost_s)
        if later_cost_s > 0:
            ctx.cpu(later_cost_s)
        if done_s > ctx.now + _ROUNDING_S:
            ctx.set_timer(done_s - ctx.now, timer, msg)
            return False
        return True

    def _phase_apply(self: Pbft, msg: PhaseQuorum) -> None:
        """The CPU has verified the quorum: become prepared (and confirm the commit) or committed."""
        pp = msg.pp
        slot = self.log.get(pp.seq)
        if not (self.active and pp.view == self.view) or slot is None or slot.view != self.view or slot.pp is None:
            return
        if msg.stage == "prepared" and not slot.prepared:
            self._set_prepared(pp.seq, slot, slot.pp)
            self.ctx.cpu(self.ctx.sign_s)  # signing the commit phase mode sends on its behalf
            msg.commits.decide(self.ctx.node_id, True)
        elif msg.stage == "committed" and slot.prepared and not slot.committed:
            slot.committed = True
            self.max_committed = max(self.max_committed, pp.seq)
            self._execute_ready()
