"""Phase mode of ``hotstuff``: one view's votes computed with numpy.

DESIGN.md, "Two ways to move a message, one answer". When leader(v) proposes in phase
mode it computes, with :mod:`sim.network.phase`, the proposal broadcast (n - 1 copies,
still one delivery per replica, which runs the ordinary ``_on_proposal``) and the vote
phase: every replica holding the proposal sends one Vote to leader(v + 1), arriving at

    proposal arrival + CPU check of the proposal + signing + uplink + delay (+ jitter)

(:func:`sim.network.phase.gather`; leader(v)'s vote leaves after its proposal copies,
leader(v + 1)'s own vote counts, without a message, once it has checked the proposal).
leader(v + 1) then gets ONE event at the n - f-th vote arrival (an order statistic)
instead of n - 1 vote events, verifies the votes on its CPU and forms the QC exactly as
in message mode. Every vote is counted with its bytes when the leader proposes.

Replicas confirm what the computation assumed (:class:`VoteRound`, a one-receiver
:class:`~sim.network.phase.QuorumRound`): each replica's ``_on_proposal`` decides whether
it votes, and leader(v + 1) counts only cast votes. A replica that refuses (it voted in
a later view, the block breaks its lock, it is malformed) is taken off the message
counts again; one that votes later than assumed (busy CPU, a proposal buffered until its
ancestors arrive by block sync) has its vote arrive that much later; one that never
gets the proposal (crashed, cut off) never votes. If too few votes remain, no QC forms
and the view times out, as in message mode.

Fallback: a view is proposed and voted with messages when phase mode cannot represent
the network (``ctx.phase_representable``): while a link degradation applies or some node
runs a Byzantine behaviour (silent, delaying or equivocating voters and leaders act only
on real messages). The choice is made per view, when its leader proposes.

Approximations (exact with zero CPU cost and no jitter, tests/test_hotstuff_phase.py):
- send times assume idle CPUs (the signing of a vote is still charged on the voter's
  CPU and a later vote shifted); leader(v + 1)'s verification of the quorum is computed
  for an idle CPU from the arrival times (FIFO) and charged when the quorum is in, the
  other votes' after it has proposed the next view;
- link state (crashes, partitions) is read when the leader proposes; jitter and loss are
  drawn in another order than message mode draws them; a vote whose sender crashes while
  it is in flight still counts (message mode drops it);
- a replica that crashes after the leader proposed and before it gets the proposal
  stays counted as sending its vote (replicas already down or cut off are not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.consensus._hotstuff_messages import Proposal, Vote
from sim.consensus.base import Message
from sim.network.phase import LinkSnapshot, PhaseDelivery, broadcast, gather

if TYPE_CHECKING:
    from sim.consensus.hotstuff import HotStuff
    from sim.network.network import Network

__all__ = ["HotStuffPhaseMode", "PhasedProposal", "VoteRound", "VotesArrived"]

_TOLERANCE_S = 1e-9


class VoteRound:
    """The votes of one view on their way to leader(v + 1), which collects them (phase mode).

    Args:
        network: delivers the collector's event.
        collector: leader(v + 1).
        vote: the vote every voter casts (view, height, block hash).
        voters: (s,) node ids that may vote.
        ready_s: (s,) when each voter's vote is assumed signed and ready (the collector:
            when its own vote counts), seconds.
        arrival_s: (s,) when each vote reaches the collector if cast on time, seconds;
            ``inf`` where it never does.
        quorum: votes a QC needs.
        uplink_s: (s,) when each voter's uplink was assumed free, seconds (default: idle).
    """

    def __init__(
        self,
        network: Network,
        collector: int,
        vote: Vote,
        voters: np.ndarray,
        ready_s: np.ndarray,
        arrival_s: np.ndarray,
        quorum: int,
        uplink_s: np.ndarray | None = None,
    ) -> None:
        self.network = network
        self.collector = collector
        self.vote = vote
        self.voters = np.asarray(voters, dtype=np.int64)
        self.column = {int(v): c for c, v in enumerate(self.voters.tolist())}
        self.ready_s = np.asarray(ready_s, dtype=float)
        self.arrival_s = np.array(arrival_s, dtype=float)
        self.uplink_s = np.full(len(self.voters), -math.inf) if uplink_s is None else np.asarray(uplink_s, dtype=float)
        self.quorum = quorum
        self.cast = np.zeros(len(self.voters), dtype=bool)
        self.undecided = np.ones(len(self.voters), dtype=bool)
        self.after_s = -math.inf  # the collector counts votes arriving after this time
        self.next_s = math.inf  # when the collector's current event fires (inf: none)
        self.token = 0  # the collector acts on the event carrying the latest token only
        self.done = False  # the collector has formed (or is verifying) the QC

    def quorum_time(self, mask: np.ndarray, after_s: float) -> tuple[float, int]:
        """The quorum-th arrival among columns in ``mask`` arriving after ``after_s``,
        and the voter whose vote completes it (-1 if none)."""
        arrival = np.where(mask & (self.arrival_s > after_s), self.arrival_s, np.inf)
        k = self.quorum
        if k > len(arrival):
            return math.inf, -1
        c = int(np.argpartition(arrival, k - 1)[k - 1])
        return float(arrival[c]), int(self.voters[c])

    def schedule(self) -> None:
        """Deliver the collector's event at its quorum time, assuming every voter votes on time."""
        at_s, _ = self.quorum_time(np.ones(len(self.voters), dtype=bool), -math.inf)
        if math.isfinite(at_s):
            self._deliver(at_s)

    def _deliver(self, at_s: float) -> None:
        """(Re-)schedule the collector's event at ``at_s``; earlier events become stale."""
        self.token += 1
        self.next_s = at_s
        self.network.deliver_at(self.collector, self.collector, VotesArrived(self, self.token), at_s)

    def decide(self, voter: int, ready_s: float | None) -> None:
        """``voter`` votes, its vote ready at ``ready_s`` (None: it does not vote).

        Only the first decision of a voter counts. A refused vote is taken off the
        message counts; a late one arrives that much later. When the cast votes make a
        quorum before the collector's next event, the event moves there.
        """
        c = self.column.get(voter)
        if c is None or not self.undecided[c]:
            return
        self.undecided[c] = False
        if ready_s is None:
            if voter != self.collector:  # its vote was counted as sent: it never was
                delivered = bool(np.isfinite(self.arrival_s[c]))
                sent, received, dropped = (np.zeros(self.network.n, dtype=np.int64) for _ in range(3))
                sent[voter] = -1
                if delivered:
                    received[self.collector] = -1
                else:
                    dropped[voter] = -1
                self.network.account_bulk("Vote", self.vote.size_bytes(), sent, received, dropped)
            return
        self.cast[c] = True
        uplink_s = self.uplink_s[c]  # the vote leaves when signed and its uplink is free
        self.arrival_s[c] += max(0.0, max(ready_s, uplink_s) - max(self.ready_s[c], uplink_s))
        if not self.done:
            at_s, _ = self.quorum_time(self.cast, self.after_s)
            if at_s < self.next_s - _TOLERANCE_S:
                self._deliver(max(self.network.env.now, at_s))

    def check(self, after_s: float) -> tuple[str, int]:
        """Whether the collector holds a quorum of cast votes arriving after ``after_s``.

        Returns ("ready", the voter completing the quorum); otherwise re-schedules the
        event ("later"), waits until more voters decide ("waiting": ``decide`` schedules
        it) or gives up ("never").
        """
        self.after_s, self.next_s = after_s, math.inf
        at_s, last = self.quorum_time(self.cast, after_s)
        if at_s <= self.network.env.now + _TOLERANCE_S:
            return "ready", last
        if math.isfinite(at_s):
            self._deliver(at_s)
            return "later", last
        possible = np.isfinite(self.arrival_s[(self.cast | self.undecided) & (self.arrival_s > after_s)])
        return ("waiting" if int(possible.sum()) >= self.quorum else "never"), -1

    def verified_s(self, now_s: float, after_s: float, cost_s: float) -> float:
        """When an idle CPU verifying each arriving vote (``cost_s``, FIFO) has the quorum."""
        if cost_s <= 0:
            return now_s
        counted = self.cast & (self.arrival_s > after_s) & np.isfinite(self.arrival_s)
        network_votes = counted & (self.voters != self.collector)
        finish = -math.inf
        times = []
        for a in np.sort(self.arrival_s[network_votes]).tolist():
            finish = max(finish, a) + cost_s
            times.append(finish)
        times += self.arrival_s[counted & (self.voters == self.collector)].tolist()
        times.sort()
        return max(now_s, times[self.quorum - 1])


@dataclass(frozen=True, slots=True)
class PhasedProposal(Proposal):
    """Phase mode: a proposal whose votes are computed (``votes``); same size and checks."""

    votes: VoteRound = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class VotesArrived(Message):
    """Phase mode only, never on the wire: a view's votes have reached the collector."""

    votes: Any = field(repr=False, compare=False)  # the VoteRound
    token: int
    signatures = 0  # type: ignore[misc]  # the votes' CPU cost is charged by the handler

    def size_bytes(self) -> int:
        return 0


class HotStuffPhaseMode:
    """Phase-mode half of :class:`~sim.consensus.hotstuff.HotStuff` (a mixin: it uses its state)."""

    _up_since_s: float = -math.inf  # votes reaching this node before it last recovered are lost

    def _propose_phased(self: HotStuff, msg: Proposal) -> PhasedProposal:
        """Leader: send ``msg`` and compute its votes; returns the proposal to handle locally."""
        ctx, me = self.ctx, self.ctx.node_id
        net = ctx.network
        links = LinkSnapshot.of(net)
        view = msg.block.round
        collector = self._leader(view + 1)
        sign_s = ctx.sign_s
        proposal_ready_s = ctx.cpu(sign_s)
        sent = broadcast(net, links, np.array([me]), np.array([proposal_ready_s]), msg.size_bytes(), "Proposal")
        arrival = sent.arrival_s[:, 0]
        has_proposal_s = arrival + ctx.receive_cost_s(msg)  # each replica has checked it
        has_proposal_s[me] = proposal_ready_s  # the leader signs its vote after the proposal
        voters = np.flatnonzero(np.isfinite(has_proposal_s))
        vote = Vote(view, msg.block.height, msg.block.block_hash)
        ready_s = has_proposal_s[voters] + sign_s
        at_collector_s = np.empty(len(voters))
        own = voters == collector
        ready_s[own] = has_proposal_s[collector]  # its own vote: no signing, no message
        at_collector_s[own] = has_proposal_s[collector]
        uplink_s = np.where(own, -math.inf, links.uplink_free_s[voters])  # before gather moves it
        at_collector_s[~own] = gather(net, links, voters[~own], ready_s[~own], collector, vote.size_bytes(), "Vote")
        votes = VoteRound(net, collector, vote, voters, ready_s, at_collector_s, self.quorum, uplink_s)
        votes.schedule()
        phased = PhasedProposal(msg.block, msg.justify, votes)
        PhaseDelivery(net).deliver(arrival, lambda _j: phased, src=me)
        return phased

    def _cast_vote(self: HotStuff, msg: Proposal, vote: Vote | None) -> None:
        """This replica votes ``vote`` on ``msg`` (None: it does not vote)."""
        if not isinstance(msg, PhasedProposal):
            if vote is not None:
                self._send_or_handle(self._leader(vote.view + 1), vote)
            return
        votes, me = msg.votes, self.ctx.node_id
        if vote is None:
            votes.decide(me, None)
        elif me == votes.collector:
            votes.decide(me, self.ctx.network.env.now)
        else:
            votes.decide(me, self.ctx.cpu(self.ctx.sign_s))

    def _on_votes_arrived(self: HotStuff, msg: VotesArrived) -> None:
        """Collector: a quorum of votes should be here; verify them, then form the QC."""
        votes: VoteRound = msg.votes
        if msg.token != votes.token or votes.done or votes.vote.view <= self.high_qc.view:
            return
        status, last = votes.check(self._up_since_s)
        if status != "ready":
            return
        votes.done = True
        ctx = self.ctx
        now_s = ctx.network.env.now
        cost_s = ctx.receive_cost_s(votes.vote)
        verified_s = votes.verified_s(now_s, self._up_since_s, cost_s)
        received = int((np.isfinite(votes.arrival_s) & (votes.voters != votes.collector)).sum())
        done_s = ctx.cpu(verified_s - now_s)
        later_s = max(0.0, received * cost_s - (verified_s - now_s))
        if done_s > now_s + _TOLERANCE_S:
            ctx.set_timer(done_s - now_s, "phase", (votes, last, later_s))
        else:
            self._phase_qc(votes, last, later_s)

    def _phase_qc(self: HotStuff, votes: VoteRound, last: int, later_s: float) -> None:
        """Collector: the quorum is verified; form the QC as ``_on_vote`` would, then spend
        ``later_s`` CPU seconds on the other votes (after the next proposal is signed:
        in message mode most arrived before the quorum, or arrive after it)."""
        vote = votes.vote
        if vote.view > self.high_qc.view and self._leader(vote.view + 1) == self.ctx.node_id:
            self._qc_formed(vote, last)
        self.ctx.cpu(later_s)
