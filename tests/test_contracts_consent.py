"""Consent, record access and the audit trail; enforcement at each node's committed height."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.contracts.base import Call
from sim.contracts.consent import (
    AccessAuditCall,
    AccessCall,
    AuditEntry,
    ConsentCall,
    consent_key,
)
from sim.contracts.executor import Executor
from sim.ledger import GENESIS_HASH, Block, tx_digest
from sim.workload.transaction import Transaction
from tests.contract_helpers import ContractChain

PATIENT, HOSPITAL, OTHER = 5, 1, 2


def test_denied_without_consent_allowed_after_grant_denied_after_revoke() -> None:
    chain = ContractChain()
    access = AccessCall(PATIENT, HOSPITAL, "labs")
    denied = chain.query("record_access", access, HOSPITAL)
    assert (denied.outcome, denied.reason) == ("access_denied", "no committed consent")
    assert chain.tx("consent_grant", ConsentCall(PATIENT, HOSPITAL, "labs"), 0).outcome == "granted"
    assert chain.query("record_access", access, HOSPITAL).outcome == "access_allowed"
    # consent is per provider and per category
    assert chain.query("record_access", AccessCall(PATIENT, OTHER, "labs"), OTHER).outcome == "access_denied"
    assert chain.query("record_access", AccessCall(PATIENT, HOSPITAL, "imaging"), HOSPITAL).outcome == "access_denied"
    assert chain.tx("consent_revoke", ConsentCall(PATIENT, HOSPITAL, "labs"), 0).outcome == "revoked"
    assert chain.query("record_access", access, HOSPITAL).outcome == "access_denied"
    # as of the height before the revocation, access was allowed
    assert chain.query("record_access", access, HOSPITAL, at_height=1).outcome == "access_allowed"


def test_grant_is_idempotent_and_revoke_of_nothing_is_a_noop() -> None:
    chain = ContractChain()
    call = ConsentCall(PATIENT, HOSPITAL, "labs")
    assert chain.tx("consent_revoke", call, 0).outcome == "revoke_noop"
    first = chain.tx("consent_grant", call, 0)
    second = chain.tx("consent_grant", call, 0)
    assert (first.detail["changed"], second.detail["changed"], second.reason) == (True, False, "already active")
    assert chain.store.value(consent_key(PATIENT, HOSPITAL, "labs")) is True


def test_every_grant_revoke_and_access_decision_is_audited() -> None:
    chain = ContractChain()
    chain.tx("consent_grant", ConsentCall(PATIENT, HOSPITAL, "labs"), 0)  # tx 1
    chain.tx("consent_revoke", ConsentCall(PATIENT, HOSPITAL, "labs"), 0)  # tx 2
    late = chain.tx("access_audit", AccessAuditCall(PATIENT, HOSPITAL, "labs", True, HOSPITAL, 1.5), HOSPITAL)  # tx 3
    assert (late.outcome, late.detail["after_revocation"]) == ("audited", True)
    assert chain.store.value(("audit", PATIENT, 1)) == AuditEntry("grant", HOSPITAL, "labs", 1)
    assert chain.store.value(("audit", PATIENT, 2)) == AuditEntry("revoke", HOSPITAL, "labs", 2)
    assert chain.store.value(("audit", PATIENT, 3)) == AuditEntry("access_allowed", HOSPITAL, "labs", 3)


# ----------------------------------------------------- enforcement per node


def _block(height: int, prev: bytes, calls: list[tuple[str, ConsentCall]], first_id: int) -> tuple[Block, list[Transaction]]:
    txs = [Transaction(first_id + i, kind, 0, 0.0, 350, 0.0, Call(args, (0,))) for i, (kind, args) in enumerate(calls)]
    block = Block.build(height, prev, 0, float(height), [t.tx_id for t in txs],
                        [tx_digest(t.tx_id, t.tx_type, t.origin, t.size_bytes) for t in txs], 350 * len(txs))  # fmt: skip
    return block, txs


def test_a_node_enforces_a_revocation_only_once_it_applied_it() -> None:
    ex = Executor(2, lambda _key: None)
    grant, txs1 = _block(1, GENESIS_HASH, [("consent_grant", ConsentCall(PATIENT, HOSPITAL, "labs"))], 0)
    revoke, txs2 = _block(2, grant.block_hash, [("consent_revoke", ConsentCall(PATIENT, HOSPITAL, "labs"))], 1)
    ex.block_created(grant, txs1)
    ex.block_created(revoke, txs2)
    access = AccessCall(PATIENT, HOSPITAL, "labs")
    for node in (0, 1):
        ex.apply(node, grant, 1.0)
    ex.apply(0, revoke, 2.0)
    assert ex.query(0, "record_access", access, 2.1).outcome == "access_denied"
    assert ex.query(1, "record_access", access, 2.1).outcome == "access_allowed"  # exposure: not applied yet
    assert ex.staleness(1, 2.5) == (0.5, 1)
    ex.apply(1, revoke, 3.0)
    assert ex.query(1, "record_access", access, 3.1).outcome == "access_denied"


KEYS = [(p, q) for p in (0, 1) for q in (0, 1)]
op = st.one_of(
    st.tuples(st.just("block"), st.lists(st.tuples(st.sampled_from(["consent_grant", "consent_revoke"]), st.sampled_from(KEYS)), min_size=1, max_size=3)),
    st.tuples(st.just("apply"), st.integers(0, 2)),
    st.tuples(st.just("access"), st.integers(0, 2), st.sampled_from(KEYS)),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(op, max_size=40))
def test_access_is_allowed_exactly_under_the_nodes_committed_consent(ops: list[tuple]) -> None:
    """Random interleavings of blocks, per-node application and access checks: a node allows
    an access if and only if the consent is active in the prefix of blocks it applied."""
    ex = Executor(3, lambda _key: None)
    blocks: list[Block] = []
    contents: list[list[tuple[str, tuple[int, int]]]] = []
    applied = [0, 0, 0]
    next_id = 0
    for item in ops:
        if item[0] == "block":
            calls = [(kind, ConsentCall(p, q, "labs")) for kind, (p, q) in item[1]]
            block, txs = _block(len(blocks) + 1, blocks[-1].block_hash if blocks else GENESIS_HASH, calls, next_id)
            next_id += len(txs)
            ex.block_created(block, txs)
            blocks.append(block)
            contents.append(item[1])
        elif item[0] == "apply":
            node = item[1]
            if applied[node] < len(blocks):
                ex.apply(node, blocks[applied[node]], 0.0)
                applied[node] += 1
        else:
            node, (p, q) = item[1], item[2]
            active: set[tuple[int, int]] = set()
            for block_ops in contents[: applied[node]]:
                for kind, key in block_ops:
                    (active.add if kind == "consent_grant" else active.discard)(key)
            allowed = ex.query(node, "record_access", AccessCall(p, q, "labs"), 0.0).outcome == "access_allowed"
            assert allowed == ((p, q) in active)
