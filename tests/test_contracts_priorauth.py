"""Prior authorization: intake, the insurer's decision, and its use by claims."""

from __future__ import annotations

from sim.contracts.claims import ClaimCall, Member, PayerRules, Policy
from sim.contracts.priorauth import (
    MAX_AUTHS_PER_CATEGORY,
    DecisionCall,
    RequestCall,
    auth_key,
)
from tests.contract_helpers import ContractChain

PROVIDER, INSURER = 0, 3
GENESIS = {
    ("member", 1): Member(7, True),
    ("member", 2): Member(7, False),
    ("policy", 7): Policy(INSURER, 1e6, frozenset({"surgery"})),
    ("rules", INSURER): PayerRules(1e6, 100, frozenset({"imaging"})),
}


def test_request_then_decision_then_claim() -> None:
    chain = ContractChain(GENESIS)
    claim = ClaimCall(50, 1, PROVIDER, "imaging", 2001, 0, 400.0)
    assert chain.tx("claim", claim, PROVIDER).reason == "no prior authorization"
    assert chain.tx("prior_auth_request", RequestCall(10, 1, PROVIDER, "imaging"), PROVIDER).outcome == "pa_pending"
    by_provider = chain.tx("prior_auth_decision", DecisionCall(10), PROVIDER)
    assert (by_provider.outcome, by_provider.reason) == ("decision_rejected", "sender is not the patient's insurer")
    assert chain.tx("prior_auth_decision", DecisionCall(10), INSURER).outcome == "pa_approved"
    assert chain.store.value(auth_key(1, "imaging")) == 10
    assert chain.tx("prior_auth_decision", DecisionCall(10), INSURER).reason == "already decided"
    assert chain.tx("claim", ClaimCall(51, 1, PROVIDER, "imaging", 2001, 0, 400.0), PROVIDER).outcome == "approved"


def test_intake_denials_and_the_authorization_limit() -> None:
    chain = ContractChain(GENESIS)
    assert chain.tx("prior_auth_request", RequestCall(1, 2, PROVIDER, "imaging"), PROVIDER).reason == "not eligible"
    assert chain.tx("prior_auth_request", RequestCall(2, 1, PROVIDER, "surgery"), PROVIDER).reason == "not covered"
    assert chain.tx("prior_auth_decision", DecisionCall(99), INSURER).reason == "unknown request"
    outcomes = []
    for pa_id in range(100, 100 + MAX_AUTHS_PER_CATEGORY + 1):
        chain.tx("prior_auth_request", RequestCall(pa_id, 1, PROVIDER, "imaging"), PROVIDER)
        outcomes.append(chain.tx("prior_auth_decision", DecisionCall(pa_id), INSURER).outcome)
    assert outcomes == ["pa_approved"] * MAX_AUTHS_PER_CATEGORY + ["pa_denied"]
