"""``fabric``: Hyperledger Fabric's execute-order-validate architecture, ordered by Raft.

Follows the Fabric paper (Androulaki et al., EuroSys 2018) and the v2 docs:

1. **Execute (endorse).** The client's node sends a proposal to the endorsing
   peers its endorsement policy requires; each simulates the contract on its
   own committed world state (charging the execution to its CPU) and returns
   the read-write set it produced, signed. When every required endorsement is
   in and all read-write sets and results agree, the node wraps the call, the
   read-write set and the endorsements into an envelope; disagreeing
   endorsements (peers at different heights read different versions) or a
   missing one (timeout) fail the transaction before ordering, as the Fabric
   SDK does.
2. **Order.** Envelopes go to an ordering service node; orderers (nodes
   ``0 .. orderers-1``) run Raft (this package's ``raft``, by composition, over
   the orderers only) and cut blocks by BatchTimeout, MaxMessageCount and
   PreferredMaxBytes (fabric-samples ``configtx.yaml``: 2 s, 10, 512 KB).
3. **Validate.** Orderers deliver blocks to peers (each peer subscribes to one
   orderer and switches to the next if it stops answering); every peer checks
   each transaction's endorsement policy and MVCC read versions at apply time
   (``sim.contracts.executor``). Conflicting transactions stay in the block,
   are marked invalid and counted; their writes are discarded.

Endorsement policies: ``parties`` (every organisation the call involves, e.g.
the provider and the patient's insurer for a claim: Fabric's AND of both orgs),
``sender`` (the submitting org only) and ``majority`` (any majority of all
orgs: proposals go to every peer and the first replies count, like the SDK's
discovery service choosing available peers).

Simplifications: one peer per organisation, co-located with that org's node
(an orderer node is also a peer); endorsement signatures are checked by cost,
not by real cryptography; a peer that switches orderers re-subscribes from its
ledger height (no gaps), and an orderer serves missing blocks from its Raft log.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import Field

from sim.consensus.base import (
    MESSAGE_HEADER_BYTES,
    Message,
    Protocol,
    ProtocolParams,
    register_protocol,
)
from sim.consensus.common import BlockMsg, ForwardTx
from sim.consensus.raft import Raft, RaftParams
from sim.contracts.base import Call, Endorsed, Result
from sim.contracts.state import RWSet
from sim.ledger import Block
from sim.node.context import NodeContext
from sim.workload.transaction import Transaction

__all__ = ["ENDORSEMENT_BYTES", "Fabric", "FabricParams"]

#: Assumption: an endorsement carries the endorser's X.509 certificate (~0.7 KB) and a
#: signature. An approved claim's envelope is then 1.1 KB + 2 endorsements + its read-write
#: set (7 reads, 4 writes) = 3.6 KB, the order of the typical 2.9 KB transaction of the
#: FastFabric benchmarks (shared/reference).
ENDORSEMENT_BYTES = 750
#: Assumption: serialized size of one read (key and version) and one write (key and value).
READ_BYTES = 48
WRITE_BYTES = 160
#: Assumption: CPU to compare one read version with the state database during validation.
MVCC_CHECK_S = 2e-6
#: Most blocks an orderer sends in answer to one deliver request.
DELIVER_BATCH = 64


@dataclass(frozen=True, slots=True)
class Proposal(Message):
    """A transaction proposal sent to an endorsing peer (signed by the client)."""

    tx: Transaction

    def size_bytes(self) -> int:
        return MESSAGE_HEADER_BYTES + self.tx.size_bytes


@dataclass(frozen=True, slots=True)
class ProposalResponse(Message):
    """An endorsement: the simulated result and read-write set, signed by the endorser."""

    tx_id: int
    endorser: int
    result: Result
    rwset: RWSet

    def size_bytes(self) -> int:
        rw = len(self.rwset.reads) * READ_BYTES + len(self.rwset.writes) * WRITE_BYTES
        return MESSAGE_HEADER_BYTES + ENDORSEMENT_BYTES + rw


@dataclass(frozen=True, slots=True)
class Broadcast(ForwardTx):
    """An endorsed envelope submitted to an ordering node (its own name in the messages table)."""


@dataclass(frozen=True, slots=True)
class DeliverBlock(BlockMsg):
    """A committed block pushed by an orderer to a subscribed peer (its own name in the messages table)."""


@dataclass(frozen=True, slots=True)
class DeliverRequest(Message):
    """A peer (re)subscribes to an orderer from ``from_height``."""

    from_height: int


@dataclass(frozen=True, slots=True)
class DeliverStatus(Message):
    """An orderer's answer when it has no block at or above the requested height."""

    height: int


class FabricParams(RaftParams):
    """Keys of ``[protocol]`` for ``fabric`` (Raft's keys apply to the ordering service)."""

    name: str = "fabric"
    # fabric-samples configtx.yaml (shared/reference): MaxMessageCount 10, BatchTimeout 2 s.
    max_block_tx: int = Field(10, ge=1, description="MaxMessageCount: most transactions in one block")
    batch_timeout_s: float = Field(2.0, ge=0, description="BatchTimeout: longest wait to fill a block, seconds")
    orderers: int = Field(3, ge=0, description="nodes 0..orderers-1 run the Raft ordering service (0 = every node)")
    endorsement_policy: Literal["parties", "sender", "majority"] = Field(
        "parties", description="parties: every org the call involves; sender: the submitting org; majority: any majority"
    )
    endorse_timeout_s: float = Field(3.0, gt=0, description="client gives up collecting endorsements after this long")
    deliver_timeout_s: float = Field(1.0, gt=0, description="a peer that heard nothing for this long polls its orderer")


@dataclass
class _Pending:
    """A transaction collecting endorsements at its origin."""

    tx: Transaction
    call: Call
    needed: int
    required: tuple[int, ...]
    replies: dict[int, ProposalResponse] = field(default_factory=dict)


class _OrderersContext:
    """The node's context as seen by the Raft instance: the cluster is the orderers only."""

    def __init__(self, ctx: NodeContext, orderers: tuple[int, ...], on_deliver: Any) -> None:
        self._ctx = ctx
        self.nodes = orderers
        self.others = tuple(o for o in orderers if o != ctx.node_id)
        self.n = len(orderers)
        self._on_deliver = on_deliver

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def broadcast(self, msg: Message, include_self: bool = False) -> None:
        self._ctx.multicast(self.nodes if include_self else self.others, msg)

    def deliver_block(self, block: Block) -> float:
        done_s = self._ctx.deliver_block(block)
        self._on_deliver(block)
        return done_s


@register_protocol
class Fabric(Protocol):
    """Execute-order-validate with a Raft ordering service."""

    name = "fabric"
    Params = FabricParams
    params: FabricParams

    @staticmethod
    def _orderer_count(params: FabricParams, n_nodes: int) -> int:
        return n_nodes if params.orderers == 0 else min(params.orderers, n_nodes)

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, FabricParams)
        problems = Raft.check(params, n_nodes)
        if params.orderers > n_nodes:
            problems.append(f"orderers = {params.orderers} exceeds the {n_nodes} nodes")
        return problems

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        assert isinstance(params, FabricParams)
        if params.endorsement_policy == "parties":
            return 0  # a crashed counterparty blocks every transaction that needs its endorsement
        ordering = (cls._orderer_count(params, n_nodes) - 1) // 2
        if params.endorsement_policy == "majority":
            return min(ordering, n_nodes - (n_nodes // 2 + 1))
        return ordering

    # ---------------------------------------------------------------- state

    def on_start(self) -> None:
        ctx = self.ctx
        k = self._orderer_count(self.params, ctx.n)
        self.orderers = tuple(range(k))
        self.raft: Raft | None = None
        self.subscribers: set[int] = set()
        if ctx.node_id < k:
            self.raft = Raft(_OrderersContext(ctx, self.orderers, self._ordered), self.params)  # type: ignore[arg-type]
            self.raft.on_start()
            self.subscribers = {p for p in range(k, ctx.n) if p % k == ctx.node_id}
        self.source = self.orderers[ctx.node_id % k]  # the orderer this peer submits to and hears from
        self.endorsing: dict[int, _Pending] = {}
        self.waiting: dict[int, Block] = {}
        self.heard = True
        self.polled = False
        if self.raft is None:
            ctx.set_timer(self.params.deliver_timeout_s, "deliver_check")

    def leader(self) -> int | None:
        return self.raft.leader() if self.raft is not None else None

    def pending_tx_ids(self) -> list[int]:
        held = list(self.endorsing)
        held += [t for b in self.waiting.values() for t in b.tx_ids]
        if self.raft is not None:
            held += self.raft.pending_tx_ids()
        return held

    # ------------------------------------------------------------ endorsement

    def _endorsers(self, call: Call) -> tuple[tuple[int, ...], int]:
        """(peers to ask, endorsements needed) under the policy; the origin is always first."""
        me = self.ctx.node_id
        policy = self.params.endorsement_policy
        if policy == "sender":
            return (me,), 1
        if policy == "majority":
            return (me, *self.ctx.others), self.ctx.n // 2 + 1
        parties = tuple(dict.fromkeys((me, *call.parties)))
        return parties, len(parties)

    def on_transaction(self, tx: Transaction) -> None:
        ctx = self.ctx
        ctx.mempool.remove((tx.tx_id,), ctx.now)
        if not isinstance(tx.payload, Call):  # no contract: nothing to endorse
            self._submit(tx)
            return
        targets, needed = self._endorsers(tx.payload)
        pending = _Pending(tx, tx.payload, needed, targets if self.params.endorsement_policy != "majority" else ())
        self.endorsing[tx.tx_id] = pending
        self._endorse_locally(tx, ctx.node_id)
        others = [t for t in targets if t != ctx.node_id]
        if others:
            ctx.multicast(others, Proposal(tx))
        ctx.set_timer(self.params.endorse_timeout_s, "endorse_timeout", tx.tx_id)

    def _endorse_locally(self, tx: Transaction, reply_to: int) -> None:
        result, rwset, done_s = self.ctx.endorse(tx)
        response = ProposalResponse(tx.tx_id, self.ctx.node_id, result, rwset)
        self.ctx.set_timer(max(0.0, done_s - self.ctx.now), "endorsed", (reply_to, response))

    def _on_response(self, response: ProposalResponse) -> None:
        pending = self.endorsing.get(response.tx_id)
        if pending is None:
            return  # already complete, failed or timed out
        pending.replies[response.endorser] = response
        if len(pending.replies) < pending.needed:
            return
        del self.endorsing[response.tx_id]
        replies = list(pending.replies.values())
        first = replies[0]
        if any(r.rwset != first.rwset or r.result != first.result for r in replies[1:]):
            self.ctx.tx_dropped([response.tx_id], "endorsement mismatch: endorsers read different versions")
            return
        endorsers = tuple(pending.replies)
        rw = len(first.rwset.reads) * READ_BYTES + len(first.rwset.writes) * WRITE_BYTES
        envelope = replace(
            pending.tx,
            payload=Endorsed(pending.call, first.rwset, first.result, endorsers, pending.required),
            size_bytes=pending.tx.size_bytes + rw + len(endorsers) * ENDORSEMENT_BYTES,
            # validation: the creator's and every endorser's signature, one MVCC check per read
            execute_s=(len(endorsers) + 1) * self.ctx.verify_s + len(first.rwset.reads) * MVCC_CHECK_S,
        )
        self._submit(envelope)

    def _submit(self, tx: Transaction) -> None:
        if self.raft is not None:
            if self.ctx.admit(tx):
                self.raft.on_transaction(tx)
        else:
            self.ctx.send(self.source, Broadcast(tx))

    # ---------------------------------------------------------------- deliver

    def _ordered(self, block: Block) -> None:
        """This orderer committed ``block``: push it to its subscribed peers."""
        if self.subscribers:
            self.ctx.multicast(sorted(self.subscribers), DeliverBlock(block))

    def _on_block(self, block: Block) -> None:
        self.heard = True
        if block.height > self.ctx.ledger_height:
            self.waiting[block.height] = block
        while self.ctx.ledger_height + 1 in self.waiting:
            self.ctx.deliver_block(self.waiting.pop(self.ctx.ledger_height + 1))

    def _on_deliver_request(self, src: int, msg: DeliverRequest) -> None:
        assert self.raft is not None
        self.subscribers.add(src)
        log, committed = self.raft.log, self.raft.commit_index
        if msg.from_height > committed:
            self.ctx.send(src, DeliverStatus(committed))
            return
        for index in range(msg.from_height, min(committed, msg.from_height + DELIVER_BATCH - 1) + 1):
            self.ctx.send(src, DeliverBlock(log[index - 1].block))

    def _deliver_check(self) -> None:
        if not self.heard and self.polled:  # the orderer did not answer our poll: switch
            k = len(self.orderers)
            self.source = self.orderers[(self.orderers.index(self.source) + 1) % k]
            self.polled = False
        if not self.heard:
            self.ctx.send(self.source, DeliverRequest(self.ctx.ledger_height + 1))
            self.polled = True
        else:
            self.polled = False
        self.heard = False
        self.ctx.set_timer(self.params.deliver_timeout_s, "deliver_check")

    # --------------------------------------------------------------- handlers

    def on_timer(self, name: str, data: Any) -> None:
        if name == "endorsed":
            reply_to, response = data
            if reply_to == self.ctx.node_id:
                self._on_response(response)
            else:
                self.ctx.send(reply_to, response)
        elif name == "endorse_timeout":
            if self.endorsing.pop(data, None) is not None:
                self.ctx.tx_dropped([data], "endorsement timeout")
        elif name == "deliver_check":
            self._deliver_check()
        elif self.raft is not None:
            self.raft.on_timer(name, data)

    def on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, Proposal):
            self._endorse_locally(msg.tx, src)
        elif isinstance(msg, ProposalResponse):
            self._on_response(msg)
        elif isinstance(msg, Broadcast):
            if self.raft is not None and self.ctx.admit(msg.tx):
                self.raft.on_transaction(msg.tx)
        elif isinstance(msg, DeliverBlock):
            self._on_block(msg.block)
        elif isinstance(msg, DeliverStatus):
            self.heard = True
        elif isinstance(msg, DeliverRequest):
            if self.raft is not None:
                self._on_deliver_request(src, msg)
        elif self.raft is not None:
            self.raft.on_message(src, msg)

    # ------------------------------------------------------- crash / recovery

    def on_crash(self) -> None:
        lost = list(self.endorsing)
        if lost:
            self.ctx.tx_dropped(lost, "origin crashed while collecting endorsements")
        self.endorsing.clear()
        self.waiting.clear()
        if self.raft is not None:
            self.raft.on_crash()

    def on_recover(self) -> None:
        if self.raft is not None:
            self.raft.on_recover()
        else:
            self.heard = False
            self.polled = False
            self.ctx.set_timer(self.params.deliver_timeout_s, "deliver_check")
