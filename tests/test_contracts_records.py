"""Record registration (MedRec registry, relationship, summary) and integrity checks."""

from __future__ import annotations

from sim.contracts.base import Org
from sim.contracts.records import RecordEntry, RegisterCall, VerifyCall, sha256
from tests.contract_helpers import ContractChain

HOSPITAL, OTHER, INSURER = 0, 1, 3
GENESIS = {("org", HOSPITAL): Org(HOSPITAL, frozenset({"provider"})), ("org", OTHER): Org(OTHER, frozenset({"provider"})),
           ("org", INSURER): Org(INSURER, frozenset({"insurer"}))}  # fmt: skip
CONTENT = b"discharge summary, patient 9"


def register(record_id: int, patient: int = 9, category: str = "notes", content: bytes = CONTENT) -> RegisterCall:
    return RegisterCall(record_id, patient, category, sha256(content), f"ehr://x/{record_id}")


def test_registration_anchors_the_hash_and_updates_relationship_and_summary() -> None:
    chain = ContractChain(GENESIS)
    assert chain.tx("record_register", register(1), HOSPITAL).outcome == "registered"
    assert chain.tx("record_register", register(2, category="labs"), HOSPITAL).outcome == "registered"
    assert chain.tx("record_register", register(3), OTHER).outcome == "registered"
    assert chain.store.value(("record", 1)) == RecordEntry(9, HOSPITAL, "notes", sha256(CONTENT), "ehr://x/1")
    assert chain.store.value(("rel", 9, HOSPITAL)) == (1, 2)
    assert chain.store.value(("rel", 9, OTHER)) == (3,)
    assert chain.store.value(("summary", 9)) == frozenset({HOSPITAL, OTHER})
    assert chain.store.value(("index", 9, "notes")) == (1, 3)


def test_registration_is_rejected_for_a_reused_id_or_a_non_provider() -> None:
    chain = ContractChain(GENESIS)
    chain.tx("record_register", register(1), HOSPITAL)
    again = chain.tx("record_register", register(1, content=b"other"), OTHER)
    assert (again.outcome, again.reason) == ("register_rejected", "record id already registered")
    assert chain.store.value(("record", 1)).digest == sha256(CONTENT)
    by_insurer = chain.tx("record_register", register(2), INSURER)
    assert (by_insurer.outcome, by_insurer.reason) == ("register_rejected", "sender is not a provider")


def test_verification_detects_an_altered_off_chain_record() -> None:
    chain = ContractChain(GENESIS)
    chain.tx("record_register", register(1), HOSPITAL)
    assert chain.query("record_verify", VerifyCall(1, CONTENT), OTHER).outcome == "verified"
    tampered = chain.query("record_verify", VerifyCall(1, CONTENT + b" (edited)"), OTHER)
    assert (tampered.outcome, tampered.patient) == ("tampered", 9)
    assert chain.query("record_verify", VerifyCall(2, CONTENT), OTHER).outcome == "unknown_record"
