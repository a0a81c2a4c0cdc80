"""Execution on delivery: order-execute, execute-order-validate (MVCC), opaque transactions, forks."""

from __future__ import annotations

from typing import Any

from sim.contracts.base import Call, Endorsed, Result
from sim.contracts.claims import ClaimCall, Member, PayerRules, Policy, accumulator_key
from sim.contracts.executor import Executor
from sim.contracts.state import RWSet
from sim.ledger import GENESIS_HASH, Block, tx_digest
from sim.workload.transaction import Transaction

INSURER = 3
GENESIS = {
    ("member", 1): Member(7, True),
    ("member", 2): Member(7, True),
    ("member", 3): Member(8, True),
    ("policy", 7): Policy(INSURER, 1e6, frozenset()),
    ("policy", 8): Policy(INSURER, 1e6, frozenset()),
    ("rules", INSURER): PayerRules(1e6, 100, frozenset()),
}


def claim_tx(tx_id: int, patient: int, payload: Any = None) -> Transaction:
    call = Call(ClaimCall(tx_id, patient, 0, "lab", tx_id, 0, 10.0), (0, INSURER))
    return Transaction(tx_id, "claim", 0, 0.0, 1100, 1e-4, call if payload is None else payload)


def block(height: int, prev: bytes, txs: list[Transaction], proposer: int = 0) -> Block:
    return Block.build(height, prev, proposer, float(height), [t.tx_id for t in txs],
                       [tx_digest(t.tx_id, t.tx_type, t.origin, t.size_bytes) for t in txs], 100)  # fmt: skip


def executor(n: int = 2) -> Executor:
    return Executor(n, GENESIS.get)


def test_order_execute_runs_contracts_in_block_order_once_for_all_nodes() -> None:
    ex = executor()
    txs = [claim_tx(0, 1), claim_tx(1, 2), claim_tx(2, 3)]
    b1 = block(1, GENESIS_HASH, txs)
    ex.block_created(b1, txs)
    executed, first = ex.apply(0, b1, 1.0)
    assert first and [e.result.outcome for e in executed] == ["approved"] * 3
    assert ex.store(0).get(accumulator_key(7)) == (20.0, (1, 2))  # second write, in block order
    again, first_again = ex.apply(1, b1, 1.5)
    assert not first_again and again is executed
    assert ex.first_applied_s == [1.0]


def endorsed(tx_id: int, patient: int, reads: tuple, writes: tuple, required: tuple = (0,), endorsers: tuple = (0,)) -> Transaction:
    call = Call(ClaimCall(tx_id, patient, 0, "lab", tx_id, 0, 10.0), (0,))
    env = Endorsed(call, RWSet(reads, writes), Result("approved", subject=tx_id), endorsers, required)
    return claim_tx(tx_id, patient, env)


def test_mvcc_marks_the_later_of_two_conflicting_transactions_invalid() -> None:
    ex = executor(1)
    key = accumulator_key(7)
    # both endorsed against the genesis state (accumulator absent), both write it
    t0 = endorsed(0, 1, ((key, None),), ((key, 10.0),))
    t1 = endorsed(1, 2, ((key, None),), ((key, 20.0),))
    t2 = endorsed(2, 3, ((accumulator_key(8), None),), ((accumulator_key(8), 5.0),))  # disjoint key
    b1 = block(1, GENESIS_HASH, [t0, t1, t2])
    ex.block_created(b1, [t0, t1, t2])
    executed, _ = ex.apply(0, b1, 1.0)
    assert [(e.valid, e.invalid_reason) for e in executed] == [(True, ""), (False, "mvcc read conflict"), (True, "")]
    assert ex.store(0).value(key) == 10.0  # the invalid write is discarded
    # a transaction endorsed after block 1 reads version (1, 1) and is valid in block 2
    t3 = endorsed(3, 2, ((key, (1, 1)),), ((key, 30.0),))
    t4 = endorsed(4, 2, ((key, None),), ((key, 40.0),))  # stale: endorsed before block 1
    b2 = block(2, b1.block_hash, [t3, t4])
    ex.block_created(b2, [t3, t4])
    executed, _ = ex.apply(0, b2, 2.0)
    assert [e.valid for e in executed] == [True, False]
    assert ex.store(0).get(key) == (30.0, (2, 1))


def test_endorsement_policy_failure_is_invalid() -> None:
    ex = executor(1)
    t0 = endorsed(0, 1, (), (), required=(0, INSURER), endorsers=(0,))
    b1 = block(1, GENESIS_HASH, [t0])
    ex.block_created(b1, [t0])
    executed, _ = ex.apply(0, b1, 1.0)
    assert (executed[0].valid, executed[0].invalid_reason) == (False, "endorsement policy failure")


def test_opaque_transactions_commit_without_a_contract() -> None:
    ex = executor(1)
    t0 = Transaction(0, "claim", 0, 0.0, 1100, 1e-4)
    b1 = block(1, GENESIS_HASH, [t0])
    ex.block_created(b1, [t0])
    executed, _ = ex.apply(0, b1, 1.0)
    assert (executed[0].valid, executed[0].result) == (True, None)


def test_simulate_reads_the_endorsers_committed_height() -> None:
    ex = executor(2)
    txs = [claim_tx(0, 1)]
    b1 = block(1, GENESIS_HASH, txs)
    ex.block_created(b1, txs)
    ex.apply(0, b1, 1.0)
    probe = claim_tx(9, 2)
    ahead = ex.simulate(0, probe, 1.0)[1]
    behind = ex.simulate(1, probe, 1.0)[1]
    assert dict(ahead.reads)[accumulator_key(7)] == (1, 1)
    assert dict(behind.reads)[accumulator_key(7)] is None
    assert ex.store(0).value(accumulator_key(7)) == 10.0  # simulation wrote nothing


def test_a_node_applying_a_different_block_forks_its_own_state() -> None:
    ex = executor(2)
    a = [claim_tx(0, 1)]
    b = [claim_tx(1, 3)]
    block_a = block(1, GENESIS_HASH, a, proposer=0)
    block_b = block(1, GENESIS_HASH, b, proposer=1)
    ex.block_created(block_a, a)
    ex.block_created(block_b, b)
    ex.apply(0, block_a, 1.0)
    _executed, first = ex.apply(1, block_b, 1.0)
    assert first and ex.forks == 1
    assert ex.store(0).value(accumulator_key(7)) == 10.0 and ex.store(0).value(accumulator_key(8)) is None
    assert ex.store(1).value(accumulator_key(8)) == 10.0 and ex.store(1).value(accumulator_key(7)) is None
