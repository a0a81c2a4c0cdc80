"""The call generator: realistic calls, senders by role, knowledge learned from commits."""

from __future__ import annotations

import numpy as np

from sim.config import WorkloadConfig
from sim.contracts.base import Result
from sim.workload.generator import CallGenerator
from sim.workload.population import Population, Roles


def generator(n: int = 16, **keys: object) -> CallGenerator:
    wl = WorkloadConfig(**keys)  # type: ignore[arg-type]
    return CallGenerator(Population(wl, Roles.build(wl, n), 1), np.random.default_rng(5), range(n))


def test_claims_come_from_providers_and_name_the_patients_insurer() -> None:
    gen = generator()
    for i in range(300):
        req = gen.make(i, "claim", None, 10.0)
        assert req is not None and req.origin in gen.roles.providers
        call = req.payload.args
        assert req.payload.parties == (req.origin, gen.pop.insurer_of(call.patient))
        assert call.claim_id == i and call.amount_usd > 0
    assert gen.make(999, "claim", 15, 0.0) is None  # node 15 is an insurer, not a provider
    assert gen.skipped == {"claim": 1}


def test_hotspot_fraction_sends_that_share_of_claims_to_group_plans() -> None:
    gen = generator(hotspot_fraction=0.3, duplicate_claim_fraction=0.0)
    calls = [gen.make(i, "claim", None, 0.0).payload.args for i in range(4000)]
    hot = sum(c.patient < gen.pop.group_patients for c in calls) / len(calls)
    assert abs(hot - 0.3) < 0.03  # binomial standard deviation 0.007


def test_duplicate_claims_repeat_an_earlier_service_under_a_new_id() -> None:
    gen = generator(duplicate_claim_fraction=0.5)
    calls = [gen.make(i, "claim", 0, 0.0).payload.args for i in range(400)]
    services = [(c.patient, c.procedure, c.service_day, c.amount_usd) for c in calls]
    assert 0.35 < 1 - len(set(services)) / len(services) < 0.6
    assert len({c.claim_id for c in calls}) == 400


def test_revokes_name_only_consents_the_patient_holds() -> None:
    gen = generator()
    assert gen.make(0, "consent_revoke", None, 0.0) is None
    grant = gen.make(1, "consent_grant", None, 0.0)
    args = grant.payload.args
    assert gen.pop.home(args.patient) == grant.origin
    gen.learn("consent_grant", grant.origin, args, Result("granted"))
    revoke = gen.make(2, "consent_revoke", None, 0.0)
    assert revoke.payload.args == args and revoke.origin == grant.origin
    assert gen.make(3, "consent_revoke", None, 0.0) is None  # the patient knows it is revoked


def test_packages_move_only_from_their_holder_to_the_next_stage() -> None:
    gen = generator(counterfeit_fraction=0.0)
    assert gen.make(0, "drug_transfer", None, 0.0) is None
    commission = gen.make(1, "drug_commission", None, 0.0)
    assert commission.origin in gen.roles.manufacturers and commission.truth == "genuine"
    gen.learn("drug_commission", commission.origin, commission.payload.args, Result("commissioned"))
    to_dist = gen.make(2, "drug_transfer", None, 0.0)
    assert to_dist.origin == commission.origin and to_dist.payload.args.to_node in gen.roles.distributors
    gen.learn("drug_transfer", to_dist.origin, to_dist.payload.args, Result("transferred", detail={"stage": "distributor"}))
    to_pharmacy = gen.make(3, "drug_transfer", None, 0.0)
    assert to_pharmacy.origin == to_dist.payload.args.to_node
    assert to_pharmacy.payload.args.to_node in gen.roles.pharmacies


def test_counterfeit_verifications_use_unknown_serials() -> None:
    gen = generator(counterfeit_fraction=1.0)
    req = gen.make(0, "drug_verify", None, 0.0)
    assert req.truth == "counterfeit" and req.origin in gen.roles.pharmacies
    assert req.payload.serial >= 10**12


def test_payment_size_grows_with_the_claims_it_pays() -> None:
    gen = generator()
    assert gen.payment(0, 15, [1, 2, 3]).size_bytes == 200 + 3 * 24
