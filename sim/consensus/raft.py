"""``raft``: leader election and log replication (Ongaro & Ousterhout, ATC 2014).

Each log entry is one block of transactions. Followers forward their clients'
transactions to the leader; the leader cuts blocks (size or batch timeout),
appends them to its log and replicates them with AppendEntries; an entry of
the leader's term is committed once a majority (leader included) stores it,
and every node delivers committed entries to its ledger in order.

Modelling choices (each changes numbers, each is tested):
- A new leader appends an empty block (a no-op entry) so that entries of earlier
  terms commit promptly, as etcd and the thesis (section 6.4) do.
- Replication is pipelined: the leader sends new entries without waiting for
  earlier acknowledgements; a heartbeat every ``heartbeat_s`` repairs gaps.
- With ``notify_commit`` (default) the leader tells followers right away when its
  commit index advances, instead of waiting for the next heartbeat.
- Election timeouts are uniform on [election_timeout_min_s, election_timeout_max_s]
  (150-300 ms in the Raft paper, shared/reference/README.md). A follower's timer
  is not re-armed on every message: it checks, when it fires, how long ago it
  last heard from a leader, which yields the same elections with fewer events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from sim.consensus.base import (
    MESSAGE_HEADER_BYTES,
    Message,
    Protocol,
    ProtocolParams,
    register_protocol,
)
from sim.consensus.batching import BlockCutter
from sim.consensus.common import ForwardTx
from sim.ledger import GENESIS_HASH, Block
from sim.node.context import Timer
from sim.workload.transaction import Transaction

__all__ = ["Raft", "RaftParams"]

_INDEX_BYTES = 32  # term, index, previous index and term, commit index


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry: a block and the term its leader created it in."""

    term: int
    block: Block


@dataclass(frozen=True, slots=True)
class RequestVote(Message):
    term: int
    last_index: int
    last_term: int


@dataclass(frozen=True, slots=True)
class VoteReply(Message):
    term: int
    granted: bool


@dataclass(frozen=True, slots=True)
class AppendEntries(Message):
    term: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    leader_commit: int

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + _INDEX_BYTES + sum(e.block.size_bytes for e in self.entries)


@dataclass(frozen=True, slots=True)
class AppendReply(Message):
    term: int
    success: bool
    match_index: int  # on success: last index stored; on failure: a hint where to retry from


class RaftParams(ProtocolParams):
    """Keys of ``[protocol]`` for ``raft``."""

    name: str = "raft"
    # Raft paper: randomized election timeouts in 150-300 ms.
    election_timeout_min_s: float = Field(0.150, gt=0, description="shortest election timeout, seconds")
    election_timeout_max_s: float = Field(0.300, gt=0, description="longest election timeout, seconds")
    heartbeat_s: float = Field(0.050, gt=0, description="leader heartbeat interval, seconds")
    max_entries_per_append: int = Field(64, ge=1, description="most blocks in one AppendEntries")
    notify_commit: bool = Field(True, description="tell followers at once when the commit index advances")
    # Flow control in the spirit of etcd raft's MaxInflightMsgs: a leader stops cutting
    # blocks while this many are appended but uncommitted, so overload backs up into
    # its bounded mempool instead of an unbounded log.
    max_uncommitted_blocks: int = Field(64, ge=1, description="leader pauses cutting at this many uncommitted blocks")


@register_protocol
class Raft(Protocol):
    """Raft consensus with one block per log entry."""

    name = "raft"
    Params = RaftParams
    params: RaftParams
    syncs_ledger = True  # AppendEntries brings a rejoining follower up to date

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, RaftParams)
        problems = []
        if params.election_timeout_max_s < params.election_timeout_min_s:
            problems.append(
                f"election_timeout_max_s = {params.election_timeout_max_s} is below "
                f"election_timeout_min_s = {params.election_timeout_min_s}"
            )
        if params.heartbeat_s >= params.election_timeout_min_s:
            problems.append(
                f"heartbeat_s = {params.heartbeat_s} must be shorter than election_timeout_min_s = "
                f"{params.election_timeout_min_s}, or followers time out while the leader is alive"
            )
        return problems

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        return (n_nodes - 1) // 2

    # ---------------------------------------------------------------- state

    def on_start(self) -> None:
        ctx = self.ctx
        self.term = 0
        self.voted_for: int | None = None
        self.role = "follower"
        self.leader_id: int | None = None
        self.log: list[Entry] = []
        self.commit_index = 0
        self.votes: set[int] = set()
        self.next_index: dict[int, int] = {}
        self.match_index: dict[int, int] = {}
        self.majority = ctx.n // 2 + 1
        self.cutter = BlockCutter(ctx, self.params, self._propose)
        self.cutter.enabled = False
        self.last_heard_s = ctx.now
        self.election_timer: Timer | None = None
        self.heartbeat_timer: Timer | None = None
        if ctx.n == 1:
            self._start_election()
        else:
            self._arm_election_timer()

    def leader(self) -> int | None:
        return self.leader_id

    @property
    def last_index(self) -> int:
        return len(self.log)

    def _term_at(self, index: int) -> int:
        return self.log[index - 1].term if index > 0 else 0

    def _hash_at(self, index: int) -> bytes:
        return self.log[index - 1].block.block_hash if index > 0 else GENESIS_HASH

    def pending_tx_ids(self) -> list[int]:
        return [t for e in self.log[self.commit_index :] for t in e.block.tx_ids]

    # -------------------------------------------------------------- elections

    def _timeout_s(self) -> float:
        p = self.params
        return float(self.ctx.rng.uniform(p.election_timeout_min_s, p.election_timeout_max_s))

    def _arm_election_timer(self) -> None:
        self.ctx.cancel_timer(self.election_timer)
        self.election_timeout_s = self._timeout_s()
        self.election_timer = self.ctx.set_timer(self.election_timeout_s, "election")

    def _start_election(self) -> None:
        ctx = self.ctx
        self.term += 1
        self.role = "candidate"
        self.leader_id = None
        self.voted_for = ctx.node_id
        self.votes = {ctx.node_id}
        ctx.record("election_started", term=self.term)
        if len(self.votes) >= self.majority:
            self._become_leader()
            return
        ctx.broadcast(RequestVote(self.term, self.last_index, self._term_at(self.last_index)))
        self._arm_election_timer()

    def _become_leader(self) -> None:
        ctx = self.ctx
        self.role = "leader"
        self.leader_id = ctx.node_id
        ctx.cancel_timer(self.election_timer)
        self.next_index = {p: self.last_index + 1 for p in ctx.others}
        self.match_index = {p: 0 for p in ctx.others}
        ctx.record("leader_elected", term=self.term, leader=ctx.node_id)
        self._append(ctx.make_block(self.last_index + 1, self._hash_at(self.last_index), [], round=self.term))
        self._heartbeat()
        self.cutter.start()

    def _step_down(self, term: int) -> None:
        if term > self.term:
            self.term = term
            self.voted_for = None
        if self.role == "leader":
            self.cutter.stop()
            self.ctx.cancel_timer(self.heartbeat_timer)
            self.ctx.record("stepped_down", term=self.term)
        if self.role != "follower":
            self.role = "follower"
            self._arm_election_timer()

    def on_timer(self, name: str, data: Any) -> None:
        if name == "election" and self.role != "leader":
            remaining_s = self.election_timeout_s - (self.ctx.now - self.last_heard_s)
            # A remainder within rounding of zero would re-fire at this same instant forever
            # (now + 1e-16 == now): treat it as expired.
            if self.role == "follower" and remaining_s > 1e-9:
                self.election_timer = self.ctx.set_timer(remaining_s, "election")
            else:
                self._start_election()
        elif name == "heartbeat" and self.role == "leader":
            self._heartbeat()
        elif name == "batch_timeout" and self.role == "leader":
            self.cutter.on_timer()

    # ---------------------------------------------------------- replication

    def _append(self, block: Block) -> None:
        self.log.append(Entry(self.term, block))
        for peer in self.ctx.others:
            if self.next_index[peer] == self.last_index:  # peer is up to date: pipeline the new entry
                self._send_append(peer)
        self._advance_leader_commit()

    def _propose(self, batch: list[Transaction]) -> None:
        self._append(self.ctx.make_block(self.last_index + 1, self._hash_at(self.last_index), batch, round=self.term))
        if self.last_index - self.commit_index >= self.params.max_uncommitted_blocks:
            self.cutter.stop()

    def _send_append(self, peer: int) -> None:
        start = self.next_index[peer]
        entries = tuple(self.log[start - 1 : start - 1 + self.params.max_entries_per_append])
        prev = start - 1
        self.ctx.send(peer, AppendEntries(self.term, prev, self._term_at(prev), entries, self.commit_index))
        self.next_index[peer] = start + len(entries)

    def _heartbeat(self) -> None:
        for peer in self.ctx.others:
            self._send_append(peer)
        self.heartbeat_timer = self.ctx.set_timer(self.params.heartbeat_s, "heartbeat")

    def _advance_leader_commit(self) -> None:
        matches = sorted([self.last_index, *self.match_index.values()], reverse=True)
        candidate = matches[self.majority - 1]
        if candidate > self.commit_index and self._term_at(candidate) == self.term:
            self._commit_through(candidate)
            if self.params.notify_commit:
                for peer in self.ctx.others:
                    if self.next_index[peer] > self.last_index:  # nothing new to send: a bare commit notice
                        self._send_append(peer)

    def _commit_through(self, index: int) -> None:
        if index <= self.commit_index:  # a late, short AppendEntries: the commit index never goes back
            return
        for i in range(self.commit_index + 1, index + 1):
            self.ctx.deliver_block(self.log[i - 1].block)
        self.commit_index = index
        room = self.last_index - self.commit_index < self.params.max_uncommitted_blocks
        if self.role == "leader" and not self.cutter.enabled and room:
            self.cutter.start()

    # ---------------------------------------------------------------- handlers

    def on_transaction(self, tx: Transaction) -> None:
        if self.role == "leader":
            self.cutter.poke()
        elif self.leader_id is not None:
            self.ctx.mempool.remove((tx.tx_id,), self.ctx.now)
            self.ctx.send(self.leader_id, ForwardTx(tx))
        # no known leader: the transaction waits in the mempool until one is known

    def _forward_waiting(self) -> None:
        if self.leader_id is None or self.leader_id == self.ctx.node_id or not len(self.ctx.mempool):
            return
        for tx in self.ctx.mempool.drain(self.ctx.now):
            self.ctx.send(self.leader_id, ForwardTx(tx))

    def on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, ForwardTx):
            if self.role == "leader":
                if self.ctx.admit(msg.tx):
                    self.cutter.poke()
            elif self.ctx.admit(msg.tx):
                self._forward_waiting()
            return
        term = msg.term  # type: ignore[attr-defined]
        if term > self.term:
            self._step_down(term)
        if isinstance(msg, AppendEntries):
            self._on_append(src, msg)
        elif isinstance(msg, AppendReply):
            self._on_append_reply(src, msg)
        elif isinstance(msg, RequestVote):
            self._on_request_vote(src, msg)
        elif isinstance(msg, VoteReply):
            self._on_vote_reply(src, msg)

    def _on_request_vote(self, src: int, msg: RequestVote) -> None:
        my_last_term = self._term_at(self.last_index)
        up_to_date = (msg.last_term, msg.last_index) >= (my_last_term, self.last_index)
        grant = msg.term == self.term and self.voted_for in (None, src) and up_to_date
        if grant:
            self.voted_for = src
            self.last_heard_s = self.ctx.now
        self.ctx.send(src, VoteReply(self.term, grant))

    def _on_vote_reply(self, src: int, msg: VoteReply) -> None:
        if self.role == "candidate" and msg.term == self.term and msg.granted:
            self.votes.add(src)
            if len(self.votes) >= self.majority:
                self._become_leader()

    def _on_append(self, src: int, msg: AppendEntries) -> None:
        ctx = self.ctx
        if msg.term < self.term:
            ctx.send(src, AppendReply(self.term, False, self.last_index))
            return
        if self.role != "follower":
            self._step_down(msg.term)
        self.last_heard_s = ctx.now
        if self.leader_id != src:
            self.leader_id = src
            self._forward_waiting()
        if msg.prev_index > self.last_index or self._term_at(msg.prev_index) != msg.prev_term:
            if msg.prev_index > self.last_index:
                hint = self.last_index
            else:
                # Skip the whole conflicting term (Raft paper, section 5.3): backing off one entry
                # per round trip never converged, as heartbeats kept resetting the probe.
                conflict_term = self._term_at(msg.prev_index)
                hint = msg.prev_index - 1
                while hint > self.commit_index and self._term_at(hint) == conflict_term:
                    hint -= 1
            ctx.send(src, AppendReply(self.term, False, max(hint, self.commit_index)))
            return
        index = msg.prev_index
        for entry in msg.entries:
            index += 1
            if index <= self.last_index:
                if self.log[index - 1].term == entry.term:
                    continue
                lost = [t for e in self.log[index - 1 :] for t in e.block.tx_ids]
                del self.log[index - 1 :]
                if lost:
                    ctx.tx_dropped(lost, f"uncommitted entries overwritten by leader of term {msg.term}")
            self.log.append(entry)
        last_new = msg.prev_index + len(msg.entries)
        if msg.leader_commit > self.commit_index:
            self._commit_through(min(msg.leader_commit, last_new))
        ctx.send(src, AppendReply(self.term, True, last_new))

    def _on_append_reply(self, src: int, msg: AppendReply) -> None:
        if self.role != "leader" or msg.term != self.term:
            return
        if msg.success:
            if msg.match_index > self.match_index[src]:
                self.match_index[src] = msg.match_index
                self._advance_leader_commit()
            self.next_index[src] = max(self.next_index[src], msg.match_index + 1)
            if self.next_index[src] <= self.last_index and msg.match_index + 1 == self.next_index[src]:
                self._send_append(src)  # catch up a lagging follower
        else:
            self.next_index[src] = max(msg.match_index + 1, self.match_index[src] + 1)
            self._send_append(src)

    # ------------------------------------------------------- crash / recovery

    def on_crash(self) -> None:
        if self.role == "leader":
            self.cutter.stop()
        self.role = "follower"
        self.leader_id = None
        self.votes = set()

    def on_recover(self) -> None:
        # term, vote and log are persistent; the commit index is what the ledger holds
        self.commit_index = min(self.commit_index, self.last_index)
        self.last_heard_s = self.ctx.now
        self._arm_election_timer()
