"""Execution on delivery: run (or validate) a block's transactions when a node applies it.

Two architectures, told apart by what a transaction carries:

- **order-execute** (Ethereum-like; every protocol by default): the payload is a
  :class:`~sim.contracts.base.Call`; each transaction runs its contract against
  the world state in block order and its writes are applied at version
  ``(height, index)``. A contract's decision (deny, pend ...) is a *result*,
  not a failure: the transaction is committed either way.
- **execute-order-validate** (Hyperledger Fabric): the payload is an
  :class:`~sim.contracts.base.Endorsed` envelope whose read-write set endorsers
  computed before ordering. Validation checks the endorsement policy and that
  every read version still equals the committed version (MVCC, including the
  writes of valid transactions earlier in the same block); a transaction that
  fails is *invalid*: it stays in the block but its writes are discarded.

Transactions without a payload (opaque ones, built by tests of the consensus
layer) are committed without contract execution.

Replication: see :mod:`sim.contracts.state`. One chain of executed blocks is
shared by every node whose ledger agrees with it, and a node's world state is
that chain read at the node's applied height. A node that applies a different
block at a height it already has forks a private chain from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sim.contracts.base import Call, Endorsed, Result
from sim.contracts.registry import CONTRACTS, run_contract
from sim.contracts.state import Key, RWSet, TxMeta, VersionedStore

if TYPE_CHECKING:
    from sim.ledger import Block
    from sim.workload.transaction import Transaction

__all__ = ["Executed", "Executor"]


class Executed(NamedTuple):
    """One transaction of an applied block.

    Attributes:
        tx: the transaction as ordered (an endorsed envelope in execute-order-validate).
        result: the contract's decision (None for opaque or invalid transactions).
        valid: False if validation marked it invalid.
        invalid_reason: why it is invalid ("" if valid).
    """

    tx: Transaction
    result: Result | None
    valid: bool = True
    invalid_reason: str = ""


class _Chain:
    """A world state and the executed results of the blocks applied to it."""

    __slots__ = ("executed", "store")

    def __init__(self, store: VersionedStore) -> None:
        self.store = store
        self.executed: list[tuple[Executed, ...]] = []  # by height - 1


class Executor:
    """Runs contracts for every node of one simulation.

    Args:
        n: number of nodes.
        genesis: ``genesis(key)`` gives the initial world state (see ``Population.genesis``).
        genesis_kinds: key kinds that have genesis values (None: ask for every key).
    """

    def __init__(self, n: int, genesis: Callable[[Key], Any], genesis_kinds: frozenset[str] | None = None) -> None:
        root = _Chain(VersionedStore(genesis, genesis_kinds))
        self._chains = [root] * n
        self.heights = [0] * n
        self._block_txs: dict[bytes, tuple[Transaction, ...]] = {}
        #: first time any node applied each height (index height - 1), seconds
        self.first_applied_s: list[float] = []
        self.forks = 0

    # ------------------------------------------------------------ plumbing

    def block_created(self, block: Block, txs: Sequence[Transaction]) -> None:
        """Remember the exact transactions (payloads included) a block was built from."""
        self._block_txs.setdefault(block.block_hash, tuple(txs))

    def block_transactions(self, block: Block) -> tuple[Transaction, ...]:
        """The transactions ``block`` was built from, as ordered (envelopes in execute-order-validate)."""
        return self._block_txs[block.block_hash]

    def store(self, node_id: int) -> VersionedStore:
        """The world state ``node_id`` reads (at ``heights[node_id]``)."""
        return self._chains[node_id].store

    # ---------------------------------------------------------------- apply

    def apply(self, node_id: int, block: Block, now_s: float) -> tuple[tuple[Executed, ...], bool]:
        """``node_id`` applies ``block`` (the next height of its ledger).

        Returns:
            (the block's executed transactions, True if this is the first execution of
            the block on this chain, i.e. its results are new).
        """
        chain = self._chains[node_id]
        h = block.height
        if h != self.heights[node_id] + 1:
            raise RuntimeError(f"node {node_id} applies height {h} after {self.heights[node_id]}")
        store = chain.store
        first = False
        if store.height >= h and store.block_hashes[h - 1] != block.block_hash:
            old = chain
            chain = _Chain(store.fork(h - 1))
            chain.executed = old.executed[: h - 1]
            self._chains[node_id] = chain
            self.forks += 1
        if chain.store.height < h:
            chain.executed.append(self._execute(chain.store, block))
            first = True
        self.heights[node_id] = h
        if len(self.first_applied_s) < h:
            self.first_applied_s.append(now_s)
        return chain.executed[h - 1], first

    def _execute(self, store: VersionedStore, block: Block) -> tuple[Executed, ...]:
        txs = self.block_transactions(block)
        h = block.height
        out: list[Executed] = []
        for index, tx in enumerate(txs, start=1):
            payload = tx.payload
            if isinstance(payload, Endorsed):
                problem = _validate(store, payload)
                if problem:
                    out.append(Executed(tx, None, False, problem))
                    continue
                store.apply(payload.rwset.writes, (h, index))
                out.append(Executed(tx, payload.result))
            elif isinstance(payload, Call):
                result, rwset = run_contract(tx.tx_type, payload.args, store, TxMeta(tx.tx_id, tx.origin, block.created_s))
                store.apply(rwset.writes, (h, index))
                out.append(Executed(tx, result))
            else:
                out.append(Executed(tx, None))
        store.end_block(block.block_hash)
        return tuple(out)

    # ---------------------------------------------------- reads at one node

    def simulate(self, node_id: int, tx: Transaction, now_s: float) -> tuple[Result, RWSet]:
        """Endorse: run ``tx``'s call on ``node_id``'s committed state without applying it."""
        if not isinstance(tx.payload, Call):
            raise TypeError(f"transaction {tx.tx_id} has no contract call to simulate")
        meta = TxMeta(tx.tx_id, tx.origin, now_s)
        return run_contract(tx.tx_type, tx.payload.args, self.store(node_id), meta, self.heights[node_id])

    def query(self, node_id: int, tx_type: str, args: Any, now_s: float) -> Result:
        """Answer a read-only query from ``node_id``'s committed state."""
        if not CONTRACTS[tx_type].read_only:
            raise ValueError(f"{tx_type!r} is not a query")
        meta = TxMeta(-1, node_id, now_s)
        return run_contract(tx_type, args, self.store(node_id), meta, self.heights[node_id])[0]

    def staleness(self, node_id: int, now_s: float) -> tuple[float, int]:
        """How stale ``node_id``'s committed state is at ``now_s``.

        Returns:
            (seconds since the network first applied a block this node has not,
            0 if it is up to date; number of such blocks).
        """
        h = self.heights[node_id]
        behind = len(self.first_applied_s) - h
        if behind <= 0:
            return 0.0, 0
        return now_s - self.first_applied_s[h], behind


def _validate(store: VersionedStore, env: Endorsed) -> str:
    """Why an endorsed transaction is invalid at the current state ("" if valid)."""
    if not set(env.required) <= set(env.endorsers):
        return "endorsement policy failure"
    for key, version in env.rwset.reads:
        if store.version(key) != version:
            return "mvcc read conflict"
    return ""
