"""Drug provenance: hand-offs, chain of custody, counterfeit detection."""

from __future__ import annotations

from sim.contracts.base import Org
from sim.contracts.provenance import CommissionCall, Package, TransferCall, VerifyCall
from tests.contract_helpers import ContractChain

MAKER, DIST, PHARM, PHARM2 = 0, 1, 2, 3
GENESIS = {
    ("org", MAKER): Org(MAKER, frozenset({"manufacturer"})),
    ("org", DIST): Org(DIST, frozenset({"distributor"})),
    ("org", PHARM): Org(PHARM, frozenset({"pharmacy"})),
    ("org", PHARM2): Org(PHARM2, frozenset({"pharmacy"})),
}


def shipped(serial: int = 7) -> ContractChain:
    chain = ContractChain(GENESIS)
    assert chain.tx("drug_commission", CommissionCall(serial, 100), MAKER).outcome == "commissioned"
    assert chain.tx("drug_transfer", TransferCall(serial, DIST), MAKER).outcome == "transferred"
    assert chain.tx("drug_transfer", TransferCall(serial, PHARM), DIST).outcome == "transferred"
    return chain


def test_full_chain_of_custody_verifies_at_the_holding_pharmacy() -> None:
    chain = shipped()
    assert chain.store.value(("pkg", 7)) == Package(100, PHARM, "pharmacy", (MAKER, DIST, PHARM), False)
    ok = chain.query("drug_verify", VerifyCall(7, PHARM), PHARM)
    assert (ok.outcome, ok.detail["custody"]) == ("verified", (MAKER, DIST, PHARM))
    other = chain.query("drug_verify", VerifyCall(7, PHARM2), PHARM2)
    assert (other.outcome, other.reason) == ("suspect", "custody chain does not end at the verifier")


def test_unknown_serial_is_a_counterfeit() -> None:
    chain = shipped()
    fake = chain.query("drug_verify", VerifyCall(999, PHARM), PHARM)
    assert (fake.outcome, fake.reason) == ("counterfeit", "unknown serial")
    assert chain.tx("drug_transfer", TransferCall(999, PHARM), DIST).outcome == "counterfeit"


def test_cloned_serial_flags_both_copies() -> None:
    chain = shipped()
    clone = chain.tx("drug_commission", CommissionCall(7, 100), MAKER)
    assert (clone.outcome, clone.reason) == ("counterfeit", "serial already commissioned")
    assert chain.store.value(("pkg", 7)).flagged is True
    assert chain.query("drug_verify", VerifyCall(7, PHARM), PHARM).reason == "serial flagged as cloned"


def test_custody_violations() -> None:
    chain = ContractChain(GENESIS)
    chain.tx("drug_commission", CommissionCall(1, 100), MAKER)
    not_owner = chain.tx("drug_transfer", TransferCall(1, PHARM), DIST)
    assert (not_owner.outcome, not_owner.reason) == ("custody_violation", "sender does not hold the package")
    skip_stage = chain.tx("drug_transfer", TransferCall(1, PHARM), MAKER)
    assert (skip_stage.outcome, skip_stage.reason) == ("custody_violation", "recipient is not a distributor")
    by_pharmacy = chain.tx("drug_commission", CommissionCall(2, 100), PHARM)
    assert by_pharmacy.reason == "sender is not a manufacturer"
    assert chain.store.value(("pkg", 1)).owner == MAKER
