"""Phase mode of ``tendermint``: one round's proposal, prevotes and precommits computed with numpy.

DESIGN.md, "Two ways to move a message, one answer". When the proposer of round r
proposes a fresh value (valid round -1), it computes with :mod:`sim.network.phase` the
proposal broadcast, the prevote phase (every validator that gets the proposal prevotes
for it once it has verified it) and the precommit phase (every validator that sees a
polka, 2f + 1 prevotes for the block, precommits), each validator's quorum time by
order statistic, and schedules per validator one event per stage ("proposal",
"prevote" quorum, "precommit" quorum) instead of 2n(n - 1) vote messages. Every
logical message is still counted with its bytes.

Validators confirm what the computation assumed (:class:`VoteRound`): a validator
that really votes for the block confirms its vote with its real send time (a later
send, e.g. it entered the round after the proposal arrived or its CPU was busy, moves
its column of arrival times, and receivers wait for it); receivers count only
confirmed votes. A validator that votes otherwise (nil: locked, timed out, crashed
before, ...), that is Byzantine or has a skewed clock, that is behind in rounds when
the proposal arrives, or that receives a real vote of the round, *dissolves* the round:
the votes already confirmed are handed over as ordinary messages at their computed
arrival times, the copies of unconfirmed votes are uncounted, and the rest of the round
runs in message mode. Rounds whose proposal carries a proof of lock (valid round >= 0),
runs with link degradations or with any Byzantine or clock-skewed node never start in
phase mode. Correctness over speed: outside the happy path the round is message mode.

Approximations (exact with zero CPU costs and negligible serialization, see
tests/test_tendermint_phase.py):
- CPU: a quorum event charges the verification of the votes it stands for as
  ``phase.quorum_done`` estimates (before acting) and the rest right after;
- a late sender's copies keep the uplink slots computed for its estimated send time;
- link state (crashes, partitions) is read when the round is computed; jitter and loss
  are drawn in another order than message mode would draw them;
- a receiver that hands its quorum over to the rules ignores the round's later copies
  (they matter only if the round then fails, which dissolves it first when a real vote
  follows; its own vote completes a quorum it waited for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.consensus._tendermint_messages import Precommit, Prevote, Proposal, Vote
from sim.consensus.base import Message
from sim.network.phase import LinkSnapshot, PhaseDelivery, QuorumRound, broadcast, quorum_done, quorum_times

if TYPE_CHECKING:
    from sim.consensus.tendermint import Tendermint
    from sim.network.network import Network

__all__ = ["PhaseEvent", "RoundPhase", "TendermintPhaseMode", "VoteRound"]

_TOL_S = 1e-9


class VoteRound(QuorumRound):
    """A :class:`QuorumRound` whose senders confirm with their real send time.

    A sender later than computed shifts its column of arrival times; receivers whose
    event was moved later are moved back when an on-time vote makes their quorum earlier.
    ``consumed_s[j]`` is when receiver j handed its votes to the rules (-inf: not yet).
    """

    def __init__(
        self, network: Network, arrival_s: np.ndarray, senders: np.ndarray, need: np.ndarray, ready_s: np.ndarray,
        kind: type[Vote], size_bytes: int, quorum_s: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        super().__init__(network, arrival_s, senders, np.array(need, dtype=np.int64), quorum_s)
        self.senders = np.asarray(senders, dtype=np.int64)
        self.ready_s = np.array(ready_s, dtype=float)
        self.kind = kind
        self.size_bytes = size_bytes
        n = arrival_s.shape[0]
        self.at_s = np.full(n, np.inf)  # each receiver's pending event
        self.moved = np.zeros(n, dtype=bool)  # pending event later than computed (or parked)
        self.consumed_s = np.full(n, -np.inf)

    def schedule(self, at_s: np.ndarray, make_msg: Any) -> None:
        super().schedule(at_s, make_msg)
        self.at_s = np.array(at_s, dtype=float)

    def check(self, receiver: int, tolerance_s: float = _TOL_S) -> str:
        state = super().check(receiver, tolerance_s)
        if state != "ready":
            self.moved[receiver] = True
            self.at_s[receiver] = self.quorum_time(receiver) if state == "later" else np.inf
        return state

    def confirm(self, sender: int, ready_s: float) -> None:
        """``sender`` sends its vote, ready at ``ready_s`` (not earlier than computed)."""
        c = self.column[sender]
        shift_s = ready_s - self.ready_s[c]
        if shift_s > _TOL_S:
            self.shift_sender(c, shift_s)
            self.ready_s[c] = ready_s
        waiting = set(self.waiting)
        self.decide(sender, True)
        for j in waiting - self.waiting:  # woken by decide
            self.at_s[j] = max(self.network.env.now, self.quorum_time(j))
        now = self.network.env.now
        earlier = self.moved & (self.arrival_s[:, c] < self.at_s) & np.isinf(self.consumed_s)
        for j in np.flatnonzero(earlier).tolist():
            at = self.quorum_time(j)
            if at < self.at_s[j]:
                self.at_s[j] = max(now, at)
                self.network.deliver_at(j, j, self.messages[j], self.at_s[j])

    def arrived(self, receiver: int) -> np.ndarray:
        """Senders whose confirmed vote has reached ``receiver`` by now."""
        row = self.arrival_s[receiver]
        return self.senders[self.sent & (row <= self.network.env.now + _TOL_S)]

    def dissolve(self, height: int, round: int, block_hash: bytes) -> None:
        """Hand confirmed votes not yet consumed over as messages; uncount unconfirmed ones."""
        net, now = self.network, self.network.env.now
        vote = self.kind(height, round, block_hash)
        arrival = np.where(self.arrival_s > self.consumed_s[:, None], self.arrival_s, np.inf)
        for c in np.flatnonzero(self.sent).tolist():
            src = int(self.senders[c])
            for j in np.flatnonzero(np.isfinite(arrival[:, c])).tolist():
                net.deliver_at(src, j, vote, max(now, float(arrival[j, c])))
        gone = ~self.sent
        if gone.any():
            n = self.arrival_s.shape[0]
            sent, received, dropped = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
            ok = np.isfinite(self.arrival_s[:, gone])
            sent[self.senders[gone]] = -(n - 1)
            dropped[self.senders[gone]] = -((n - 1) - ok.sum(axis=0))
            received -= ok.sum(axis=1)
            net.account_bulk(self.kind.__name__, self.size_bytes, sent, received, dropped)
        self.waiting.clear()


@dataclass(eq=False)
class RoundPhase:
    """One round computed in phase mode, shared by every validator's events."""

    height: int
    round: int
    block_hash: bytes
    prevotes: VoteRound
    precommits: VoteRound
    dissolved: bool = False

    def votes(self, kind: type[Vote]) -> VoteRound:
        return self.prevotes if kind is Prevote else self.precommits

    def dissolve(self) -> None:
        """Fall back to message mode for the rest of this round."""
        if not self.dissolved:
            self.dissolved = True
            for votes in (self.prevotes, self.precommits):
                votes.dissolve(self.height, self.round, self.block_hash)


@dataclass(frozen=True, slots=True, eq=False)
class PhaseEvent(Message):
    """Phase mode only, never on the wire: one stage of a phased round at one validator.

    "proposal": the proposal arrived (costs what the proposal costs to verify);
    "prevote"/"precommit": the validator's quorum of votes arrived; it spends
    ``cpu_now_s`` verifying before it acts and ``cpu_later_s`` on the later votes.
    """

    stage: str
    phase: RoundPhase = field(repr=False)
    proposal: Proposal | None = None
    cpu_now_s: float = 0.0
    cpu_later_s: float = 0.0

    @property
    def height(self) -> int:
        return self.phase.height

    @property
    def round(self) -> int:
        return self.phase.round

    @property
    def signatures(self) -> int:  # type: ignore[override]
        return self.proposal.signatures if self.proposal is not None else 0

    def size_bytes(self) -> int:
        return self.proposal.size_bytes() if self.proposal is not None else 0


def _quorum_event(stage: str, phase: RoundPhase, now_s: np.ndarray, later_s: np.ndarray, j: int) -> PhaseEvent:
    """Validator ``j``'s ``stage`` quorum event (CPU seconds to spend before and after acting)."""
    return PhaseEvent(stage, phase, None, float(now_s[j]), float(later_s[j]))


class TendermintPhaseMode:
    """Phase-mode half of :class:`~sim.consensus.tendermint.Tendermint` (a mixin using its state)."""

    def _phase_eligible(self: Tendermint, prop: Proposal) -> bool:
        ctx = self.ctx
        return ctx.phase_mode and ctx.n >= 2 and prop.valid_round == -1 and not ctx.network.link_rules and ctx.is_plain()

    def _propose_phased(self: Tendermint, prop: Proposal) -> None:
        """Proposer: compute round ``prop.round``'s three stages and schedule their events."""
        ctx, me, n, q = self.ctx, self.ctx.node_id, self.ctx.n, self.quorum
        net, sign_s = ctx.network, ctx.sign_s
        links = LinkSnapshot.of(net)
        ready_s = ctx.cpu(sign_s)
        sent = broadcast(net, links, np.array([me]), np.array([ready_s]), prop.size_bytes(), "Proposal")
        arrival = sent.arrival_s[:, 0]
        has_prop = arrival + ctx.receive_cost_s(prop)  # when each validator decides its prevote
        has_prop[me] = ctx.now
        prevoters = np.flatnonzero(np.isfinite(has_prop))
        pv_ready = has_prop[prevoters] + sign_s
        pv_ready[prevoters == me] = ready_s + sign_s
        vote = Prevote(self.height, prop.round, prop.block.block_hash)
        size, cost_s = vote.size_bytes(), ctx.receive_cost_s(vote)
        pv = broadcast(net, links, prevoters, pv_ready, size, "Prevote")
        pv_need = np.full(n, q)
        pv_need[prevoters] -= 1  # a validator's own prevote counts
        pv_q = quorum_times(pv.arrival_s, pv_need)
        polka_at, polka_done = quorum_done(pv.arrival_s, pv_need, has_prop, cost_s, pv_q)
        committers = np.flatnonzero(np.isfinite(polka_done))
        pc = broadcast(net, links, committers, polka_done[committers] + sign_s, size, "Precommit")
        pc_need = np.full(n, q)
        pc_need[committers] -= 1
        own_s = np.where(np.isfinite(polka_done), polka_done, has_prop)
        pc_q = quorum_times(pc.arrival_s, pc_need)
        commit_at, commit_done = quorum_done(pc.arrival_s, pc_need, own_s, cost_s, pc_q)
        phase = RoundPhase(
            self.height, prop.round, prop.block.block_hash,
            VoteRound(net, pv.arrival_s, prevoters, pv_need, pv_ready, Prevote, size, pv_q),
            VoteRound(net, pc.arrival_s, committers, pc_need, polka_done[committers] + sign_s, Precommit, size, pc_q),
        )  # fmt: skip
        self.phases[prop.round] = phase
        PhaseDelivery(net).deliver(arrival, lambda j: PhaseEvent("proposal", phase, prop), src=me)
        for stage, votes, at, done, received in (
            ("prevote", phase.prevotes, polka_at, polka_done, pv.received),
            ("precommit", phase.precommits, commit_at, commit_done, pc.received),
        ):
            with np.errstate(invalid="ignore"):  # inf - inf where a validator never gets there
                now_s = np.where(np.isfinite(at), done - at, 0.0)
            later_s = np.maximum(received * cost_s - now_s, 0.0)
            votes.schedule(at, partial(_quorum_event, stage, phase, now_s, later_s))

    def _vote_phased(self: Tendermint, msg: Vote) -> bool:
        """True if ``msg`` is this validator's confirmed vote in a phased round (nothing to send)."""
        phase = self.phases.get(msg.round)
        if phase is None or phase.dissolved:
            return False
        ctx, me = self.ctx, self.ctx.node_id
        votes = phase.votes(type(msg))
        c = votes.column.get(me)
        if msg.block_hash != phase.block_hash or c is None or not votes.undecided[c] or not ctx.is_plain(me):
            phase.dissolve()
            return False
        votes.confirm(me, ctx.cpu(ctx.sign_s))
        # its quorum event came before its own vote (stored by the caller) and waited for one more
        waited = votes.need[me] >= self.quorum and me in votes.messages and np.isinf(votes.consumed_s[me])
        if waited and self._phase_ready(phase, type(msg)):
            event = votes.messages[me]
            ctx.cpu(event.cpu_now_s + event.cpu_later_s)
            self._phase_consume(phase, type(msg))
        return True

    def _on_phase_event(self: Tendermint, src: int, msg: PhaseEvent) -> None:
        """A phase event of the current height reached this validator (see :meth:`_route`)."""
        phase, r = msg.phase, msg.phase.round
        self.phases.setdefault(r, phase)
        if msg.stage == "proposal":
            if self.round < r and not phase.dissolved:  # behind in rounds: votes of r matter early (L55)
                phase.dissolve()
            assert msg.proposal is not None
            self._store(src, msg.proposal)
            return
        kind = Prevote if msg.stage == "prevote" else Precommit
        if not self._phase_ready(phase, kind):
            return
        ctx = self.ctx
        done_s = ctx.cpu(msg.cpu_now_s)
        if msg.cpu_later_s > 0:
            ctx.cpu(msg.cpu_later_s)
        if done_s > ctx.now:
            ctx.set_timer(done_s - ctx.now, "phase", (phase, kind))
        else:
            self._phase_consume(phase, kind)

    def _phase_ready(self: Tendermint, phase: RoundPhase, kind: type[Vote]) -> bool:
        """True if this validator now holds its quorum of confirmed ``kind`` votes of ``phase``.

        It needs q votes, its own included: q - 1 of others once it has voted itself."""
        me = self.ctx.node_id
        votes = phase.votes(kind)
        if phase.dissolved or phase.height != self.height or not np.isinf(votes.consumed_s[me]):
            return False
        table = self.prevotes if kind is Prevote else self.precommits
        own = table.get(phase.round, {}).get(me, 0) == phase.block_hash
        votes.need[me] = self.quorum - int(own)
        return votes.check(me) == "ready"

    def _phase_consume(self: Tendermint, phase: RoundPhase, kind: type[Vote]) -> None:
        """Put the confirmed ``kind`` votes that reached this validator into its vote log."""
        me = self.ctx.node_id
        votes = phase.votes(kind)
        if phase.dissolved or phase.height != self.height or not np.isinf(votes.consumed_s[me]):
            return
        votes.consumed_s[me] = self.ctx.now
        table = self.prevotes if kind is Prevote else self.precommits
        got = table.setdefault(phase.round, {})
        for s in votes.arrived(me).tolist():
            got.setdefault(s, phase.block_hash)
        self.senders.setdefault(phase.round, set()).update(got)

    def _dissolve_known(self: Tendermint, round: int | None = None) -> None:
        """Fall back to message mode for the phased rounds (or ``round``) this validator knows."""
        for r, phase in self.phases.items():
            if round is None or r == round:
                phase.dissolve()
