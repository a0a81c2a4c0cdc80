"""Claims adjudication and payment: exact outcomes for each edit."""

from __future__ import annotations

import pytest

from sim.contracts.claims import (
    ClaimCall,
    EligibilityCall,
    Member,
    PayerRules,
    PaymentCall,
    Policy,
    accumulator_key,
    claim_key,
)
from sim.contracts.priorauth import auth_key
from tests.contract_helpers import ContractChain

PROVIDER, INSURER, OTHER_INSURER = 0, 3, 2
GENESIS = {
    ("member", 1): Member(policy=7, active=True),
    ("member", 2): Member(policy=7, active=True),
    ("member", 3): Member(policy=8, active=False),
    ("policy", 7): Policy(insurer=INSURER, annual_limit_usd=1000.0, excluded=frozenset({"surgery"})),
    ("policy", 8): Policy(insurer=INSURER, annual_limit_usd=1000.0, excluded=frozenset()),
    ("rules", INSURER): PayerRules(fraud_amount_usd=900.0, max_claims_per_patient_day=2, auth_categories=frozenset({"imaging"})),
}


def claim(claim_id: int, patient: int = 1, amount: float = 100.0, category: str = "office_visit", procedure: int = 1, day: int = 0) -> ClaimCall:
    return ClaimCall(claim_id, patient, PROVIDER, category, procedure, day, amount)


@pytest.fixture
def chain() -> ContractChain:
    return ContractChain(dict(GENESIS))


def test_approve_adds_the_amount_to_the_policy_accumulator(chain: ContractChain) -> None:
    result = chain.tx("claim", claim(1, amount=250.0), PROVIDER)
    assert (result.outcome, result.reason, result.subject, result.amount_usd) == ("approved", "", 1, 250.0)
    assert chain.store.value(accumulator_key(7)) == 250.0
    assert chain.store.value(claim_key(1)).status == "approved"


def test_deny_when_the_annual_limit_would_be_exceeded(chain: ContractChain) -> None:
    assert chain.tx("claim", claim(1, patient=1, amount=600.0, procedure=1), PROVIDER).outcome == "approved"
    denied = chain.tx("claim", claim(2, patient=2, amount=500.0, procedure=2), PROVIDER)
    assert (denied.outcome, denied.reason) == ("denied", "annual limit exceeded")
    assert chain.store.value(accumulator_key(7)) == 600.0  # unchanged by the denial
    # exactly up to the limit is still approved
    assert chain.tx("claim", claim(3, patient=2, amount=400.0, procedure=3), PROVIDER).outcome == "approved"
    assert chain.store.value(accumulator_key(7)) == 1000.0


def test_duplicate_claim_id_is_denied_without_any_write(chain: ContractChain) -> None:
    chain.tx("claim", claim(1), PROVIDER)
    before = chain.store.value(claim_key(1))
    again = chain.tx("claim", claim(1, amount=999.0, procedure=9), PROVIDER)
    assert (again.outcome, again.reason) == ("denied", "duplicate claim id")
    assert chain.store.value(claim_key(1)) == before
    assert chain.store.value(accumulator_key(7)) == 100.0


def test_duplicate_service_under_a_new_claim_id_is_denied(chain: ContractChain) -> None:
    chain.tx("claim", claim(1, procedure=42, day=3), PROVIDER)
    dup = chain.tx("claim", claim(2, procedure=42, day=3), PROVIDER)
    assert (dup.outcome, dup.reason) == ("denied", "duplicate service")
    assert chain.store.value(claim_key(2)).status == "denied"
    # another day is another service
    assert chain.tx("claim", claim(3, procedure=42, day=4), PROVIDER).outcome == "approved"


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (claim(1, patient=3), "not eligible"),  # inactive member
        (claim(1, patient=99), "not eligible"),  # unknown patient
        (claim(1, category="surgery"), "not covered"),
        (claim(1, category="imaging"), "no prior authorization"),
    ],
)
def test_denials(chain: ContractChain, call: ClaimCall, reason: str) -> None:
    result = chain.tx("claim", call, PROVIDER)
    assert (result.outcome, result.reason) == ("denied", reason)
    assert chain.store.value(accumulator_key(7)) is None


def test_imaging_with_an_approved_authorization_is_approved(chain: ContractChain) -> None:
    chain.store.put(auth_key(1, "imaging"), 5, (0, 1))
    assert chain.tx("claim", claim(1, category="imaging"), PROVIDER).outcome == "approved"


def test_fraud_flags_pend(chain: ContractChain) -> None:
    big = chain.tx("claim", claim(1, amount=901.0), PROVIDER)
    assert (big.outcome, big.reason) == ("pended", "amount above review threshold")
    assert chain.tx("claim", claim(2, procedure=2), PROVIDER).outcome == "approved"  # 2nd claim today
    third = chain.tx("claim", claim(3, procedure=3), PROVIDER)
    assert (third.outcome, third.reason) == ("pended", "too many claims for the patient today")
    assert chain.store.value(accumulator_key(7)) == 100.0


def test_payment_pays_only_approved_unpaid_claims_of_the_sender(chain: ContractChain) -> None:
    chain.tx("claim", claim(1, amount=100.0, procedure=1), PROVIDER)
    chain.tx("claim", claim(2, amount=200.0, procedure=2), PROVIDER)
    chain.tx("claim", claim(3, category="surgery"), PROVIDER)  # denied
    wrong = chain.tx("claim_payment", PaymentCall((1, 2)), OTHER_INSURER)
    assert wrong.outcome == "payment_rejected"
    paid = chain.tx("claim_payment", PaymentCall((1, 2, 3, 77)), INSURER)
    assert (paid.outcome, paid.amount_usd, paid.detail["paid"]) == ("paid", 300.0, (1, 2))
    assert chain.store.value(claim_key(1)).status == "paid"
    again = chain.tx("claim_payment", PaymentCall((1, 2)), INSURER)
    assert again.outcome == "payment_rejected"  # never paid twice


def test_eligibility_is_read_only_and_reports_remaining_benefit(chain: ContractChain) -> None:
    chain.tx("claim", claim(1, amount=250.0), PROVIDER)
    ok = chain.query("eligibility", EligibilityCall(1, "lab"), PROVIDER)
    assert (ok.outcome, ok.amount_usd) == ("eligible", 750.0)
    assert chain.query("eligibility", EligibilityCall(1, "surgery"), PROVIDER).reason == "category not covered"
    assert chain.query("eligibility", EligibilityCall(3, "lab"), PROVIDER).outcome == "ineligible"
    # at height 0 nothing was claimed yet
    assert chain.query("eligibility", EligibilityCall(1, "lab"), PROVIDER, at_height=0).amount_usd == 1000.0


def test_a_denied_service_may_be_resubmitted(chain: ContractChain) -> None:
    assert chain.tx("claim", claim(1, category="imaging", procedure=5), PROVIDER).reason == "no prior authorization"
    chain.store.put(auth_key(1, "imaging"), 9, (chain.height, 2))
    assert chain.tx("claim", claim(2, category="imaging", procedure=5), PROVIDER).outcome == "approved"
