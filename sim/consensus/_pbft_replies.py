"""Phase mode of ``pbft``: what replicas send after executing a block (REPLY, CHECKPOINT), with numpy.

In message mode every replica that executes a block sends one REPLY to each origin node
of the block's transactions, and an origin's clients learn their transactions are final
with f + 1 matching replies (its own execution counts as one). At 1,000 replicas and a
few hundred origins per block that is hundreds of thousands of message events per
block. Phase mode computes, when the primary sends the pre-prepare, every replica's
reply arrival at every origin from the replicas' estimated execution times and
schedules one event per origin, at the time its f + 1-th reply is verified.

Each replica's replies leave as in message mode: when it executes the block at
``base_s`` (its CPU has run the block), it signs one reply per origin other than itself,
in the order the origins first appear in the block, ``sign_s`` each, and the uplink sends
them one after the other; a reply to origin o arrives ``size * 8 / bandwidth +
delay[j, o]`` after it leaves. Its own reply counts once it has signed the others.

The estimates use a lower bound of each replica's execution time (its estimated commit
time; execution cost not included). Replicas confirm when they really execute, with
their real ``base_s`` (:meth:`ReplyRound.confirm`), which moves their column later.
An origin woken too early re-checks at the earliest time its quorum could be complete:
confirmed replies at their times, the others no earlier than they could still arrive
(now + their travel time); so it confirms exactly when f + 1 replies have arrived,
whatever the estimates were. Replicas that never execute the block never count.

CHECKPOINTs (every ``checkpoint_interval``-th block) go the same way: each replica
multicasts one once it has executed the block and signed its replies, every replica
needs 2f + 1 (its own included) and is woken once, at the time it has verified them
(:meth:`PbftReplyPhase._checkpoint_phase`), instead of n(n - 1) message events.

Approximations (exact with zero CPU costs and no jitter): the origin's verification of
replies uses :func:`sim.network.phase.quorum_done`'s estimate (its own reply is charged
like the others, at most one verification too many); the uplink is assumed free of
other traffic when the replies leave; link state is read at the pre-prepare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.consensus._pbft_messages import Checkpoint, Reply
from sim.network.phase import LinkSnapshot, broadcast, quorum_done

if TYPE_CHECKING:
    from sim.consensus._pbft_messages import PrePrepare
    from sim.consensus.pbft import Pbft
    from sim.ledger import Block
    from sim.network.network import Network
    from sim.workload.transaction import Transaction

__all__ = ["PbftReplyPhase", "PhaseCheckpoint", "PhaseReply", "ReplyRound"]



class ReplyRound:
    """The replies of one block to its origins (rows) from every replica (columns).

    Args:
        network: delivers the origins' events.
        arrival_s: (r, n) estimated arrival of replica j's reply at origin row o
            (``inf``: never; the origin's own column is when its own reply counts).
        travel_s: (r, n) arrival minus the replica's execution time (>= 0).
        base_s: (n,) the replica execution times the estimates assumed.
        origins: (r,) node id of each row.
        need: replies an origin needs (f + 1, its own included).
    """

    def __init__(
        self,
        network: Network,
        arrival_s: np.ndarray,
        travel_s: np.ndarray,
        base_s: np.ndarray,
        origins: np.ndarray,
        need: int,
    ) -> None:
        self.network = network
        self.arrival_s = arrival_s
        self.travel_s = travel_s
        self.base_s = base_s
        self.row = {int(o): r for r, o in enumerate(origins.tolist())}
        self.need = need
        self.confirmed = np.zeros(arrival_s.shape[1], dtype=bool)
        self._finite = np.isfinite(arrival_s)
        self._have = np.zeros(arrival_s.shape[0], dtype=np.int64)
        self.parked: dict[int, PhaseReply] = {}
        #: the quorum time :meth:`check` last found ready
        self.ready_quorum_s = -np.inf

    def _kth(self, values: np.ndarray) -> float:
        """The ``need``-th smallest of ``values`` (a scratch array: partitioned in place)."""
        if len(values) < self.need:
            return np.inf
        values.partition(self.need - 1)
        return float(values[self.need - 1])

    def confirm(self, replica: int, base_s: float) -> None:
        """``replica`` executed the block at ``base_s``: its replies leave from then on."""
        if self.confirmed[replica]:
            return
        self.confirmed[replica] = True
        shift_s = base_s - self.base_s[replica]  # inf - inf: a replica no estimate expected to execute
        if shift_s != 0.0 and np.isfinite(shift_s):
            self.arrival_s[:, replica] += shift_s
        self._have += self._finite[:, replica]
        if not self.parked:
            return
        now = self.network.env.now
        for row in [r for r in self.parked if self._have[r] >= self.need]:
            msg = self.parked.pop(row)
            self.network.deliver_at(msg.origin, msg.origin, msg, now)

    def check(self, msg: PhaseReply, tolerance_s: float = 1e-9) -> bool:
        """True if ``msg``'s origin holds f + 1 replies now; otherwise re-schedules or parks it."""
        row, now = msg.row, self.network.env.now
        arrival = self.arrival_s[row]
        done_s = self._kth(arrival[self.confirmed])
        if done_s <= now + tolerance_s:
            self.ready_quorum_s = done_s
            return True
        if not np.isfinite(done_s):  # fewer than f + 1 confirmed: wait for more
            if np.count_nonzero(self._finite[row]) >= self.need:
                self.parked[row] = msg
            return False
        # replicas yet to execute could still be faster: their replies leave after now
        bound = np.where(self.confirmed, arrival, np.maximum(arrival, now + self.travel_s[row]))
        at_s = min(done_s, self._kth(bound))
        if at_s <= now:
            # a replica yet to execute could still reply with no travel time at all (its own
            # reply with free signing): look again when the next replica confirms, and at
            # the latest when the confirmed replies complete the quorum
            self.parked[row] = msg
            at_s = done_s
        self.network.deliver_at(msg.origin, msg.origin, msg, at_s)
        return False


@dataclass(frozen=True, slots=True)
class PhaseReply:
    """Phase mode only, never on the wire: origin ``origin`` may hold f + 1 replies for a block."""

    origin: int
    row: int
    view: int
    seq: int
    digest: bytes
    tx_ids: tuple[int, ...]
    round: ReplyRound
    cpu_now_s: float
    cpu_later_s: float
    signatures = 0
    carries_txs = False

    def size_bytes(self) -> int:
        return 0

    def carried_blocks(self) -> tuple[()]:
        """No blocks (what honest nodes check when Byzantine nodes are about)."""
        return ()


@dataclass(frozen=True, slots=True)
class PhaseCheckpoint(PhaseReply):
    """Phase mode only, never on the wire: replica ``origin`` may hold 2f + 1 CHECKPOINTs for ``seq``."""


class PbftReplyPhase:
    """Execution and what follows it, in :class:`~sim.consensus.pbft.Pbft` (a mixin: it uses
    Pbft's state): replies and checkpoints as messages, or as phases in phase mode."""

    def _execute(
        self: Pbft, block: Block, txs: tuple[Transaction, ...] | None, reply_round: Any = None, checkpoint_round: Any = None
    ) -> None:
        """Deliver ``block``; reply to its origins (``txs`` None: came by state transfer;
        ``reply_round``, ``checkpoint_round``: phase mode computed the replies and
        checkpoints, this replica only confirms them)."""
        ctx, me = self.ctx, self.ctx.node_id
        executed_s = ctx.deliver_block(block)
        self.chain.append(block)
        self.backoff = 0
        if self.nudged:
            self.nudged.difference_update(block.tx_ids)
        by_origin = ctx.txs_by_origin(block)
        if reply_round is not None and txs is not None:
            others = len(by_origin) - (me in by_origin)
            if others:
                ctx.cpu(others * ctx.sign_s)  # signing the replies phase mode sends on its behalf
            reply_round.confirm(me, executed_s)
            slot = self.log.get(block.height)
            if slot is not None and slot.reply_round is reply_round:
                slot.reply_round = None  # confirmed: the origins' events hold the round from here
        elif txs is not None:
            for origin, origin_ids in by_origin.items():
                if origin != me:
                    ctx.send(origin, Reply(self.view, block.height, block.block_hash, origin_ids))
        own = tuple(t for t in by_origin.get(me, ()) if t in self.own)  # own transactions have origin me
        if own:
            for t in own:
                del self.own[t]
            self.answered.difference_update(own)
            for t in own:
                self.resent_s.pop(t, None)
            done_s = ctx.cpu(0.0)  # own execution counts once the CPU has executed the block
            vote = (block.height, block.block_hash, own)
            if done_s > ctx.now:
                ctx.set_timer(done_s - ctx.now, "own_reply", vote)
            else:
                self._count_reply(me, *vote)
        if block.height % self.params.checkpoint_interval == 0:
            if checkpoint_round is not None and txs is not None:
                checkpoint_round.confirm(me, ctx.cpu(ctx.sign_s))  # signed; phase mode sends it
            else:
                ctx.broadcast(Checkpoint(block.height, ctx.ledger_head_hash))
            self._add_checkpoint(me, block.height, ctx.ledger_head_hash)
        if self.watch is not None and self.watch in self.executed:
            self._disarm_request_timer()
            self._arm_request_timer()

    def _on_reply(self: Pbft, src: int, msg: Reply) -> None:
        self._stash_future(src, msg, keep=False)  # replies from a later view tell a stale replica
        self._count_reply(src, msg.seq, msg.digest, msg.tx_ids)

    def _count_reply(self: Pbft, src: int, seq: int, digest: bytes, tx_ids: tuple[int, ...]) -> None:
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

    def _reply_phase(self: Pbft, pp: PrePrepare, links: LinkSnapshot, executed_s: np.ndarray) -> ReplyRound | None:
        """Primary: compute the replies of ``pp``'s block, given each replica's execution lower bound."""
        ctx, net, n = self.ctx, self.ctx.network, self.ctx.n
        by_origin = ctx.txs_by_origin(pp.block)
        if not by_origin:
            return None
        origins = np.fromiter(by_origin, dtype=np.int64, count=len(by_origin))
        r = len(origins)
        block = pp.block
        replies = [Reply(pp.view, block.height, block.block_hash, by_origin[o]) for o in origins.tolist()]
        size = np.array([m.size_bytes() for m in replies], dtype=float)
        # replica j signs and sends to the origins other than itself, in block order
        rank_of = np.full(n, r)
        rank_of[origins] = np.arange(r)
        k = np.arange(r)[:, None]
        pos = k - (rank_of[None, :] < k)  # place of row k's reply in column j's sending order
        shifted = np.minimum(k + (k >= rank_of[None, :]), r - 1)  # row sent at place k by column j
        tx_place = np.where(k < r - (rank_of[None, :] < r), size[shifted] * 8.0 / links.bandwidth_bps[None, :], 0.0)
        sent_before = np.cumsum(tx_place, axis=0)
        sent_before -= tx_place
        sign_s = ctx.sign_s
        # leave_k = max over i <= k of (ready_i + serialization of i..k-1), ready_i = (i + 1) sign;
        # in place: (r, n) arrays, the same float operations as out-of-place
        leave_place = (k + 1) * sign_s - sent_before
        np.maximum.accumulate(leave_place, axis=0, out=leave_place)
        leave_place += sent_before
        leave_place += tx_place  # each reply's arrival at the end of the wire
        travel = np.take_along_axis(leave_place, pos, axis=0)  # by row, not place
        travel += links.delay_s[:, origins].T + links.extra_delay_s
        rng = net.links_rng
        if links.jitter_s > 0:
            travel += rng.uniform(0.0, links.jitter_s, size=(r, n))
        executes = np.isfinite(executed_s)  # replicas expected to execute the block (and reply)
        mine = origins[:, None] == np.arange(n)[None, :]
        ok = executes[None, :] & links.up[None, :] & links.up[origins][:, None] & ~mine
        ok &= links.group[None, :] == links.group[origins][:, None]
        retries = None  # copies each replica sends again to each origin (none without loss)
        if links.loss_rate > 0:
            retries = np.where(ok, rng.geometric(1.0 - links.loss_rate, size=(r, n)) - 1, 0)
            travel += retries * self._retransmit_s
        others = r - (rank_of < r)  # replies each replica sends
        travel[np.arange(r), origins] = others[origins] * sign_s  # own reply: once the others are signed
        arrival = np.where(ok | (mine & executes[None, :]), executed_s[None, :] + travel, np.inf)
        votes = ReplyRound(net, arrival, travel, executed_s.copy(), origins, self.f + 1)
        origin_l = origins.tolist()
        for value in np.unique(size):  # one Reply size per number of the origin's transactions
            rows = np.flatnonzero(size == value)
            attempts = (~mine[rows]).sum(axis=0) * executes
            if retries is not None:
                attempts = attempts + retries[rows].sum(axis=0)
            delivered = ok[rows].sum(axis=0)
            received = np.zeros(n, dtype=np.int64)
            received[origins[rows]] = ok[rows].sum(axis=1)
            net.account_bulk("Reply", int(value), attempts, received, attempts - delivered)
            cost_s = ctx.receive_cost_s(replies[rows[0]])
            need = np.full(len(rows), self.f + 1)
            at, done = quorum_done(arrival[rows], need, np.full(len(rows), -np.inf), cost_s)
            at_l, done_l, received_l = at.tolist(), done.tolist(), received.tolist()  # Python floats and ints
            for i, row in enumerate(rows.tolist()):
                if not math.isfinite(at_l[i]):
                    continue
                now_s = done_l[i] - at_l[i]
                origin = origin_l[row]
                later_s = max(0.0, float(received_l[origin]) * cost_s - now_s)
                msg = PhaseReply(origin, row, pp.view, block.height, block.block_hash, by_origin[origin], votes, now_s, later_s)
                net.deliver_at(origin, origin, msg, done_l[i])
        return votes

    def _checkpoint_phase(self: Pbft, pp: PrePrepare, links: LinkSnapshot, executed_s: np.ndarray) -> ReplyRound | None:
        """Primary: compute the CHECKPOINTs of ``pp``'s block (every ``checkpoint_interval``-th).

        Each replica multicasts its checkpoint once it has executed the block and signed
        its replies; its own checkpoint counts when it executes the block (here: when it
        has signed it, at most that CPU time late). Receivers need 2f + 1 (their own included).
        """
        ctx, net, n = self.ctx, self.ctx.network, self.ctx.n
        block = pp.block
        senders = np.flatnonzero(np.isfinite(executed_s))
        if len(senders) == 0:
            return None
        by_origin = ctx.txs_by_origin(block)
        sent_replies = len(by_origin) - np.isin(np.arange(n), np.fromiter(by_origin, dtype=np.int64, count=len(by_origin)))
        ready_s = executed_s[senders] + (sent_replies[senders] + 1) * ctx.sign_s
        checkpoint = Checkpoint(block.height, block.block_hash)
        sent = broadcast(net, links, senders, ready_s, checkpoint.size_bytes(), "Checkpoint", self._retransmit_s)
        arrival = np.full((n, n), np.inf)
        arrival[:, senders] = sent.arrival_s
        arrival[senders, senders] = ready_s  # its own checkpoint, once signed
        base_s = np.full(n, np.inf)
        base_s[senders] = ready_s
        with np.errstate(invalid="ignore"):
            travel = np.where(np.isfinite(arrival), arrival - base_s[None, :], np.inf)
        votes = ReplyRound(net, arrival, travel, base_s, np.arange(n), self.q)
        cost_s = ctx.receive_cost_s(checkpoint)
        at, done = quorum_done(arrival, np.full(n, self.q), np.full(n, -np.inf), cost_s)
        for j in np.flatnonzero(np.isfinite(at)).tolist():
            now_s = float(done[j] - at[j])
            later_s = max(0.0, float(sent.received[j]) * cost_s - now_s)
            msg = PhaseCheckpoint(j, j, pp.view, block.height, block.block_hash, (), votes, now_s, later_s)
            net.deliver_at(j, j, msg, float(done[j]))
        return votes

    def _on_phase_checkpoint(self: Pbft, src: int, msg: PhaseCheckpoint) -> None:
        """A replica may hold 2f + 1 checkpoints: verify them on the CPU, then stabilize."""
        if msg.seq <= self.stable_seq or not msg.round.check(msg):
            return
        if self._verified(msg.round.ready_quorum_s, msg.cpu_now_s, msg.cpu_later_s, "phase_checkpoint", msg):
            self._phase_checkpointed(msg)

    def _phase_checkpointed(self: Pbft, msg: PhaseCheckpoint) -> None:
        if msg.seq <= self.stable_seq:
            return
        votes = msg.round
        holders = np.flatnonzero(votes.confirmed & (votes.arrival_s[msg.row] <= votes.ready_quorum_s)).tolist()
        self._stabilize(msg.seq, msg.digest, len(holders), holders)

    def _on_phase_reply(self: Pbft, src: int, msg: PhaseReply) -> None:
        """An origin may hold f + 1 replies: verify them on the CPU, then tell its clients."""
        if (msg.seq, msg.digest) in self.confirmed or not msg.round.check(msg):
            return
        if msg.view > self.view or (msg.view == self.view and not self.active):
            # replies from a later view tell a stale replica, as in message mode (_on_reply)
            replied = msg.round.arrival_s[msg.row] <= self.ctx.now
            for replica in np.flatnonzero(replied & msg.round.confirmed).tolist():
                self._stash_future(replica, msg, keep=False)
        if self._verified(msg.round.ready_quorum_s, msg.cpu_now_s, msg.cpu_later_s, "phase_reply", msg):
            self._phase_replied(msg)

    def _phase_replied(self: Pbft, msg: PhaseReply) -> None:
        key = (msg.seq, msg.digest)
        if key in self.confirmed:
            return
        self.confirmed.add(key)
        self.replies.pop(key, None)
        self.answered.update(t for t in msg.tx_ids if t in self.own)
        self.ctx.confirm_to_client(msg.tx_ids)
