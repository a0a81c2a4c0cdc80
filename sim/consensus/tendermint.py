"""``tendermint``: heights and rounds, after Buchman, Kwon & Milosevic (2018),
"The latest gossip on BFT consensus", Algorithm 1, with CometBFT's timeouts.

Each height decides one block. A round has a proposer, node (height + round) mod n
(equal voting power); PROPOSE, PREVOTE and PRECOMMIT steps; n - f matching votes
(2f + 1 when n = 3f + 1, i.e. "+2/3") move a replica on. The rules are the paper's,
named by their line numbers in the code: prevote a proposal if unlocked or locked on
it (L22), or if it carries a valid round vr >= lockedRound backed by +2/3 prevotes at
vr (L28); on +2/3 prevotes for v lock on it and precommit (L36); precommit nil on +2/3
nil prevotes (L44); decide on a proposal with +2/3 precommits in any round (L49);
jump to a round seen from f + 1 senders (L55); nil votes when timeouts expire.

Timeouts follow CometBFT's ``config/config.go`` defaults (shared/reference/README.md):
propose 3000 + 500 * round ms, prevote and precommit 1000 + 500 * round ms, commit
1000 ms. ``timeout_commit`` is CometBFT's wait after a decision before the next height
starts (not in Algorithm 1); it sets the block interval of a healthy network.

Modelling choices and simplifications:
- A value is a block; id(v) is its hash. A proposer re-proposes ``validValue`` when set,
  else builds a block of what its mempool holds (empty blocks too: CometBFT's default
  ``create_empty_blocks = true``). Proposals carry the previous height's commit
  (n - f precommit signatures, CometBFT's LastCommit), counted in size and verification.
- A proposal with a valid round carries its proof of lock (POL: who prevoted the value at
  that round, their signatures counted in size and verification), as CometBFT gossips the
  POL prevotes; a receiver counts them for L28. Without it, replicas holding an
  equivocator's other prevote would never accept the value others locked on.
- Gossip is reduced to direct broadcast: every message goes once to every node. Each
  origin broadcasts its transactions to every mempool; transactions stay in mempools
  until committed.
- Catch-up (CometBFT's block sync, simplified): a replica that sees messages two heights
  ahead, or one height ahead for longer than ``timeout_prevote_s``, asks the sender for
  the decided blocks with their commits. It also brings a replica that rejoins after a
  crash or partition up to date (``syncs_ledger``): blocks delivered behind its back
  would leave its height behind its ledger, asking for blocks nobody has decided yet.
- Crashes: state is persistent (CometBFT's write-ahead log); after recovery the timer
  of the current step is re-armed.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sim.consensus._tendermint_messages import (
    CatchUp,
    CatchUpRequest,
    Precommit,
    Prevote,
    Proposal,
    TxGossip,
    Vote,
)
from sim.consensus._tendermint_phase import PhaseEvent, RoundPhase, TendermintPhaseMode
from sim.consensus.base import Message, Protocol, ProtocolParams, register_protocol
from sim.consensus.common import IdBits
from sim.consensus.quorum import f_setting_problems, resolve_f
from sim.ledger import Block
from sim.node.context import Timer
from sim.workload.transaction import Transaction

__all__ = ["CatchUp", "CatchUpRequest", "Precommit", "Prevote", "Proposal", "Tendermint", "TendermintParams", "TxGossip"]

_CATCHUP_MAX_BLOCKS = 32
_MAX_FUTURE_MSGS_PER_NODE = 64  # next-height messages kept per node of the network


class TendermintParams(ProtocolParams):
    """Keys of ``[protocol]`` for ``tendermint`` (timeouts: CometBFT config/config.go defaults)."""

    name: str = "tendermint"
    f: int | None = Field(None, ge=0, description="Byzantine faults tolerated; None = (n - 1) // 3")
    timeout_propose_s: float = Field(3.0, gt=0, description="wait for a proposal in round 0, seconds")
    timeout_propose_delta_s: float = Field(0.5, ge=0, description="added to timeout_propose per round, seconds")
    timeout_prevote_s: float = Field(1.0, gt=0, description="wait after +2/3 mixed prevotes in round 0, seconds")
    timeout_prevote_delta_s: float = Field(0.5, ge=0, description="added to timeout_prevote per round, seconds")
    timeout_precommit_s: float = Field(1.0, gt=0, description="wait after +2/3 mixed precommits in round 0, seconds")
    timeout_precommit_delta_s: float = Field(0.5, ge=0, description="added to timeout_precommit per round, seconds")
    timeout_commit_s: float = Field(1.0, ge=0, description="wait after a decision before the next height, seconds")
    # CometBFT's peer_query_maj23_sleep_duration (2 s): how often peers reconcile missing votes.
    gossip_retry_s: float = Field(2.0, gt=0, description="re-send own messages of a height undecided this long, seconds")


@register_protocol
class Tendermint(TendermintPhaseMode, Protocol):
    """Tendermint consensus (Algorithm 1) with CometBFT timeouts; phase mode in :mod:`._tendermint_phase`."""

    name = "tendermint"
    Params = TendermintParams
    params: TendermintParams
    syncs_ledger = True  # catch-up (CatchUpRequest) brings a rejoining replica up to date
    supports_phase_mode = True

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, TendermintParams)
        return f_setting_problems(params.f, n_nodes)

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        assert isinstance(params, TendermintParams)
        return resolve_f(params.f, n_nodes)

    @classmethod
    def byzantine_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        assert isinstance(params, TendermintParams)
        return resolve_f(params.f, n_nodes)  # n >= 3f + 1 (Buchman et al. 2018, section II)

    # ---------------------------------------------------------------- state

    def on_start(self) -> None:
        self.f = resolve_f(self.params.f, self.ctx.n)
        self.quorum = self.ctx.n - self.f
        self.height = self.ctx.ledger_height + 1
        self.round = 0
        self.step = "propose"  # propose | prevote | precommit | new_height (timeout_commit wait)
        self.decided: list[Block] = []  # by height - 1, served to replicas catching up
        self.committed_ids = IdBits()
        self.future: list[tuple[int, Message]] = []  # messages of the next height
        self.catchup_timer: Timer | None = None
        self.catchup_asked_s = -1e18
        self.last_proposer: int | None = None
        self.seen_height = 0  # height at the last gossip tick
        self._reset_height()
        self._start_round(0)
        self._evaluate()
        self.ctx.set_timer(self.params.gossip_retry_s, "gossip")

    def _reset_height(self) -> None:
        self.locked_value: Block | None = None
        self.locked_round = -1
        self.valid_value: Block | None = None
        self.valid_round = -1
        self.proposals: dict[int, Proposal] = {}
        self.prevotes: dict[int, dict[int, bytes | None]] = {}
        self.precommits: dict[int, dict[int, bytes | None]] = {}
        self.senders: dict[int, set[int]] = {}
        self.pol_votes: dict[tuple[int, bytes], set[int]] = {}  # (round, block) -> prevoters in POLs
        self.done: set[tuple[str, int]] = set()  # "for the first time" rules already run, by round
        self.phases: dict[int, RoundPhase] = {}  # rounds of this height computed in phase mode

    def proposer(self, height: int, round: int) -> int:
        """The proposer of ``round`` at ``height`` (equal voting power: round robin)."""
        return (height + round) % self.ctx.n

    def leader(self) -> int | None:
        return self.proposer(self.height, self.round)

    def pending_tx_ids(self) -> list[int]:
        blocks = [p.block for p in self.proposals.values()]
        blocks += [m.block for _, m in self.future if isinstance(m, Proposal)]
        blocks += [m.proposal.block for _, m in self.future if isinstance(m, PhaseEvent) and m.proposal is not None]
        return [t for b in blocks for t in b.tx_ids]

    def _timeout_s(self, step: str, round: int) -> float:
        p = self.params
        base, delta = {
            "propose": (p.timeout_propose_s, p.timeout_propose_delta_s),
            "prevote": (p.timeout_prevote_s, p.timeout_prevote_delta_s),
            "precommit": (p.timeout_precommit_s, p.timeout_precommit_delta_s),
        }[step]
        return base + round * delta

    # --------------------------------------------------------------- rounds

    def _start_round(self, round: int) -> None:
        """StartRound(round); the caller then runs :meth:`_evaluate`."""
        ctx = self.ctx
        self.round = round
        self.step = "propose"
        proposer = self.proposer(self.height, round)
        ctx.record("round_started", height=self.height, round=round)
        if proposer == ctx.node_id:
            if proposer != self.last_proposer:
                ctx.record("leader_elected", height=self.height, round=round, leader=proposer)
            value = self.valid_value if self.valid_value is not None else self._new_block(round)
            last_commit = self.quorum if self.height > 1 else 0
            pol: tuple[int, ...] = ()
            if self.valid_value is not None:  # the prevotes that made it valid go along (CometBFT's POL)
                pol = tuple(sorted(s for s, h in self.prevotes.get(self.valid_round, {}).items() if h == value.block_hash))
            msg = Proposal(self.height, round, value, self.valid_round, last_commit, pol, value.block_hash if pol else None)
            if self._phase_eligible(msg):
                self._propose_phased(msg)
            else:
                ctx.broadcast(msg)
            self._store(ctx.node_id, msg)
        else:
            ctx.set_timer(self._timeout_s("propose", round), "timeout_propose", (self.height, round))
        self.last_proposer = proposer

    def _new_block(self, round: int) -> Block:
        ctx, p = self.ctx, self.params
        batch: list[Transaction] = []
        size_bytes = 0
        for tx in ctx.mempool:
            if tx.tx_id in self.committed_ids:
                continue
            if len(batch) >= p.max_block_tx or (batch and size_bytes + tx.size_bytes > p.max_block_bytes):
                break
            batch.append(tx)
            size_bytes += tx.size_bytes
        return ctx.make_block(self.height, ctx.ledger_head_hash, batch, round=round)

    def _valid(self, block: Block) -> bool:
        return block.height == self.height and block.prev_hash == self.ctx.ledger_head_hash

    def _store(self, src: int, msg: Message) -> None:
        """Add a message of the current height to the message log (first one per sender)."""
        r = msg.round  # type: ignore[attr-defined]
        if isinstance(msg, Proposal):
            if src != self.proposer(self.height, r) or r in self.proposals:
                return
            self.proposals[r] = msg
            if msg.pol and msg.pol_hash == msg.block.block_hash and msg.valid_round >= 0:
                self.pol_votes.setdefault((msg.valid_round, msg.pol_hash), set()).update(msg.pol)
        else:
            table = self.prevotes if isinstance(msg, Prevote) else self.precommits
            votes = table.setdefault(r, {})
            if src in votes:
                return
            votes[src] = msg.block_hash  # type: ignore[attr-defined]
        self.senders.setdefault(r, set()).add(src)

    def _vote(self, kind: type[Vote], block_hash: bytes | None) -> None:
        msg = kind(self.height, self.round, block_hash)
        self._store(self.ctx.node_id, msg)
        if not self._vote_phased(msg):
            self.ctx.broadcast(msg)

    @staticmethod
    def _count(table: dict[int, dict[int, bytes | None]], round: int, block_hash: bytes | None) -> int:
        return sum(1 for h in table.get(round, {}).values() if h == block_hash)

    def _pol_count(self, round: int, block_hash: bytes) -> int:
        """Prevotes for ``block_hash`` at ``round``: received, or signed ones in a proposal's POL.

        The POL matters when the voters equivocated: a replica may hold a Byzantine node's
        prevote for another block at that round, and without the POL the replicas locked
        on the block could never convince it (liveness after equivocation)."""
        voters = {s for s, h in self.prevotes.get(round, {}).items() if h == block_hash}
        return len(voters | self.pol_votes.get((round, block_hash), set()))

    def _evaluate(self) -> None:
        """Run the upon-rules of Algorithm 1 until none applies."""
        while self.step != "new_height" and self._apply_rules():
            pass

    def _apply_rules(self) -> bool:
        """Apply the first rule that changes the state; False if none does."""
        q, r = self.quorum, self.round
        for rr, prop in self.proposals.items():  # L49: decide, in any round
            if self._count(self.precommits, rr, prop.block.block_hash) >= q and self._valid(prop.block):
                self._decide(prop.block, rr)
                return True
        higher = [rr for rr, s in self.senders.items() if rr > r and len(s) >= self.f + 1]
        if higher:  # L55: f + 1 nodes are in a later round
            self._start_round(max(higher))
            return True
        prop = self.proposals.get(r)
        if self.step == "propose" and prop is not None:
            v, vr = prop.block, prop.valid_round
            if vr == -1:  # L22
                ok = self._valid(v) and (self.locked_round == -1 or self._is_locked_on(v))
            elif 0 <= vr < r and self._pol_count(vr, v.block_hash) >= q:  # L28
                ok = self._valid(v) and (self.locked_round <= vr or self._is_locked_on(v))
            else:
                ok = None
            if ok is not None:
                self._vote(Prevote, v.block_hash if ok else None)
                self.step = "prevote"
                return True
        if self.step == "prevote" and len(self.prevotes.get(r, {})) >= q and ("prevote_timer", r) not in self.done:
            self.done.add(("prevote_timer", r))  # L34
            self.ctx.set_timer(self._timeout_s("prevote", r), "timeout_prevote", (self.height, r))
            return True
        if (
            self.step in ("prevote", "precommit")
            and prop is not None
            and ("lock", r) not in self.done
            and self._count(self.prevotes, r, prop.block.block_hash) >= q
            and self._valid(prop.block)
        ):
            self.done.add(("lock", r))  # L36
            if self.step == "prevote":
                self.locked_value, self.locked_round = prop.block, r
                self._vote(Precommit, prop.block.block_hash)
                self.step = "precommit"
            self.valid_value, self.valid_round = prop.block, r
            return True
        if self.step == "prevote" and self._count(self.prevotes, r, None) >= q:  # L44
            self._vote(Precommit, None)
            self.step = "precommit"
            return True
        if len(self.precommits.get(r, {})) >= q and ("precommit_timer", r) not in self.done:
            self.done.add(("precommit_timer", r))  # L47
            self.ctx.set_timer(self._timeout_s("precommit", r), "timeout_precommit", (self.height, r))
            return True
        return False

    def _is_locked_on(self, block: Block) -> bool:
        return self.locked_value is not None and self.locked_value.block_hash == block.block_hash

    # ------------------------------------------------------------- heights

    def _deliver(self, block: Block, round: int) -> None:
        ctx = self.ctx
        ctx.deliver_block(block)
        self.decided.append(block)
        for tx_id in block.tx_ids:
            self.committed_ids.add(tx_id)
        ctx.mempool.remove(block.tx_ids, ctx.now)
        ctx.record("block_committed", height=block.height, round=round)

    def _enter_height(self) -> None:
        self.height = self.ctx.ledger_height + 1
        self.round = 0
        self._reset_height()
        self.ctx.cancel_timer(self.catchup_timer)
        self.catchup_timer = None
        future, self.future = self.future, []
        for src, msg in future:
            self._route(src, msg)

    def _decide(self, block: Block, round: int) -> None:
        self._deliver(block, round)
        self._enter_height()
        self.step = "new_height"
        self.ctx.set_timer(self.params.timeout_commit_s, "timeout_commit", self.height)

    # ------------------------------------------------------------ catch-up

    def _route(self, src: int, msg: Message) -> None:
        """File a consensus message by height: current (log), next (kept), older (ignored)."""
        height, phased = msg.height, isinstance(msg, PhaseEvent)  # type: ignore[attr-defined]
        if phased:  # a phase event stands for messages of the round's proposer and voters
            src = self.proposer(height, msg.round)  # type: ignore[attr-defined]
        if height == self.height and phased:
            self._on_phase_event(src, msg)  # type: ignore[arg-type]
        elif height == self.height:
            self._dissolve_known(msg.round)  # type: ignore[attr-defined]  # a real message of a phased round
            self._store(src, msg)
        elif height == self.height + 1:
            if len(self.future) < _MAX_FUTURE_MSGS_PER_NODE * self.ctx.n:
                self.future.append((src, msg))
            if self.catchup_timer is None and self.step != "new_height":
                wait_s = self.params.timeout_prevote_s
                self.catchup_timer = self.ctx.set_timer(wait_s, "catchup", (self.height, src))
        elif height > self.height + 1:
            self._ask_catchup(src)

    def _ask_catchup(self, src: int) -> None:
        if self.ctx.now - self.catchup_asked_s >= self.params.timeout_prevote_s:
            self.catchup_asked_s = self.ctx.now
            self.ctx.send(src, CatchUpRequest(self.ctx.ledger_height + 1))

    def _on_catchup(self, msg: CatchUp) -> None:
        ctx = self.ctx
        delivered = False
        for block in msg.blocks:
            if block.height == ctx.ledger_height + 1 and block.prev_hash == ctx.ledger_head_hash:
                self._deliver(block, block.round)
                delivered = True
        if delivered:
            self._enter_height()
            self._start_round(0)

    # ------------------------------------------------------------- handlers

    def on_transaction(self, tx: Transaction) -> None:
        if self.ctx.n > 1:
            self.ctx.broadcast(TxGossip(tx))

    def on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, TxGossip):
            if msg.tx.tx_id not in self.committed_ids:
                self.ctx.admit(msg.tx)
            return
        if isinstance(msg, CatchUpRequest):
            blocks = tuple(self.decided[msg.from_height - 1 : msg.from_height - 1 + _CATCHUP_MAX_BLOCKS])
            if blocks:
                self.ctx.send(src, CatchUp(blocks, self.quorum))
            return
        if isinstance(msg, CatchUp):
            self._on_catchup(msg)
        else:
            self._route(src, msg)
        self._evaluate()

    def _regossip(self) -> None:
        """No decision for ``gossip_retry_s``: send own messages of this height again.

        Stands in for CometBFT's vote gossip, which re-sends to each peer the votes it
        lacks (those of the proposal's POL round included): Algorithm 1 assumes every
        message of a correct node is eventually delivered, and without it lost prevotes
        of a POL round could keep locked and unlocked replicas apart forever.
        """
        if self.height == self.seen_height and self.step != "new_height":
            me = self.ctx.node_id
            self._dissolve_known()
            for r, prop in sorted(self.proposals.items()):
                if self.proposer(self.height, r) == me:
                    self.ctx.broadcast(prop)
            for kind, table in ((Prevote, self.prevotes), (Precommit, self.precommits)):
                for r, votes in sorted(table.items()):
                    if me in votes:
                        self.ctx.broadcast(kind(self.height, r, votes[me]))
        self.seen_height = self.height
        self.ctx.set_timer(self.params.gossip_retry_s, "gossip")

    def on_timer(self, name: str, data: Any) -> None:
        ctx = self.ctx
        if name == "gossip":
            self._regossip()
        elif name == "timeout_commit":
            if data == self.height and self.step == "new_height":
                self._start_round(0)
        elif name == "phase":
            self._phase_consume(*data)
        elif name == "catchup":
            self.catchup_timer = None
            if data[0] == self.height:
                self._ask_catchup(data[1])
        elif data == (self.height, self.round):
            if name == "timeout_propose" and self.step == "propose":
                ctx.record("timeout_propose", height=self.height, round=self.round)
                self._vote(Prevote, None)
                self.step = "prevote"
            elif name == "timeout_prevote" and self.step == "prevote":
                ctx.record("timeout_prevote", height=self.height, round=self.round)
                self._vote(Precommit, None)
                self.step = "precommit"
            elif name == "timeout_precommit" and self.step != "new_height":
                ctx.record("timeout_precommit", height=self.height, round=self.round)
                self._start_round(self.round + 1)
        self._evaluate()

    def on_crash(self) -> None:
        self.future = []
        self.catchup_timer = None

    def on_recover(self) -> None:
        ctx, key = self.ctx, (self.height, self.round)
        ctx.set_timer(self.params.gossip_retry_s, "gossip")
        if self.step == "new_height":
            ctx.set_timer(self.params.timeout_commit_s, "timeout_commit", self.height)
        elif self.step == "propose":
            ctx.set_timer(self._timeout_s("propose", self.round), "timeout_propose", key)
        elif self.step == "prevote":
            ctx.set_timer(self._timeout_s("prevote", self.round), "timeout_prevote", key)
        else:
            ctx.set_timer(self._timeout_s("precommit", self.round), "timeout_precommit", key)
