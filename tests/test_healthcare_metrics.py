"""Healthcare metrics: exact revocation exposure, the consent invariant, summary keys."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.contracts.base import Call
from sim.contracts.consent import AccessCall, ConsentCall
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.metrics.healthcare import consent_violations
from sim.workload.generator import Request
from tests.conftest import small_scenario

PATIENT, HOME, PROVIDER = 4, 1, 2  # patient 4's home is provider node 4 mod 3 = 1


def exact_world() -> Simulation:
    """Solo on 3 nodes, 10 ms links, no CPU or serialization cost, 100 ms batch timeout:
    a transaction submitted at a non-orderer at t reaches the orderer at t + 0.01, is cut
    and applied there at t + 0.11 and applied by the other nodes at t + 0.12."""
    scenario = small_scenario(
        network__nodes=3, network__bandwidth_bps=1e15, protocol__name="solo", protocol__batch_timeout_s=0.1,
        node__sign_s=0.0, node__verify_s=0.0, node__hash_rate_bps=1e30, node__execute_scale=0.0,
        workload__rate_tps=0.0, workload__insurers=[], workload__mix={"consent_grant": 1.0}, duration_s=5.0,
    )  # fmt: skip
    return Simulation(scenario)


def at(world: Simulation, t: float, action: Callable[[], None]) -> None:
    event = world.env.timeout(t)
    event.callbacks.append(lambda _e: action())


def send(world: Simulation, kind: str, origin: int, payload: object) -> None:
    wk = world.workload
    wk.start(Request(wk.next_request_id(), kind, origin, payload, 350, 40e-6))


def test_revocation_exposure_window_and_accesses_inside_it() -> None:
    world = exact_world()
    consent = ConsentCall(PATIENT, PROVIDER, "labs")
    access = AccessCall(PATIENT, PROVIDER, "labs")
    at(world, 1.0, lambda: send(world, "consent_grant", HOME, Call(consent, (HOME, PROVIDER))))
    at(world, 2.0, lambda: send(world, "consent_revoke", HOME, Call(consent, (HOME, PROVIDER))))
    for t in (1.05, 1.5, 2.05, 2.115, 2.2):
        at(world, t, lambda: send(world, "record_access", PROVIDER, access))
    world.run_until(5.0)
    result = collect(world, 0.0)
    q = result.queries
    assert q["outcome"].tolist() == ["access_denied", "access_allowed", "access_allowed", "access_allowed", "access_denied"]
    assert q["answered_s"].tolist() == pytest.approx([1.05, 1.5, 2.05, 2.115, 2.2])
    assert q["staleness_s"].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.005, 0.0])
    rev = result.revocations.iloc[0]
    assert (rev["submit_s"], rev["decided_s"], rev["enforced_all_s"]) == pytest.approx((2.0, 2.11, 2.12))
    assert (rev["nodes_enforced"], bool(rev["censored"]), rev["accesses_in_window"]) == (3, False, 2)
    s = result.summary
    assert s["revocation_exposure_max_s"] == pytest.approx(0.12)
    assert (s["accesses_in_exposure_window"], s["accesses_allowed"], s["accesses_denied"], s["consent_violations"]) == (2, 3, 2, 0)
    audit = result.audit
    assert audit["kind"].tolist() == ["access_denied", "grant", "access_allowed", "access_allowed", "revoke", "access_allowed", "access_denied"]
    audits = result.contracts[result.contracts["tx_type"] == "access_audit"]
    # both allowances inside the window are audited after the revocation in ledger order
    # (2.05 in the revocation's own block, after it; 2.115 in the next block)
    assert audits["reason"].tolist().count("allowed after revocation in ledger order") == 2


def test_a_revocation_a_node_never_applies_is_censored_at_the_end() -> None:
    world = exact_world()
    consent = ConsentCall(PATIENT, PROVIDER, "labs")
    at(world, 1.0, lambda: send(world, "consent_grant", HOME, Call(consent, (HOME, PROVIDER))))
    at(world, 1.9, lambda: world.nodes[2].crash())
    at(world, 2.0, lambda: send(world, "consent_revoke", HOME, Call(consent, (HOME, PROVIDER))))
    world.run_until(5.0)
    rev = collect(world, 0.0).revocations.iloc[0]
    assert (rev["nodes_enforced"], bool(rev["censored"]), math.isnan(rev["enforced_all_s"])) == (2, True, True)
    assert rev["exposure_s"] == pytest.approx(3.0)  # open until the end of the run


def test_the_consent_invariant_check_detects_an_access_without_committed_consent() -> None:
    def contracts(*events: tuple[str, str, int]) -> pd.DataFrame:
        return pd.DataFrame([{"tx_type": t, "outcome": o, "valid": True, "patient": 4, "subject": 2, "category": "labs",
                              "height": h, "index": 1} for t, o, h in events])  # fmt: skip

    access = pd.DataFrame([{"tx_type": "record_access", "outcome": "access_allowed", "patient": 4, "subject": 2,
                            "category": "labs", "height": 5, "node_id": 1, "answered_s": 9.0}])  # fmt: skip
    assert consent_violations(contracts(("consent_grant", "granted", 3)), access)[0] == 0
    assert consent_violations(contracts(("consent_grant", "granted", 6)), access)[0] == 1  # granted later
    revoked = contracts(("consent_grant", "granted", 3), ("consent_revoke", "revoked", 4))
    count, notes = consent_violations(revoked, access)
    assert count == 1 and "without consent of patient 4" in notes[0]
    empty = pd.DataFrame(columns=["tx_type", "outcome", "valid", "patient", "subject", "category", "height", "index"])
    assert consent_violations(empty, access)[0] == 1


HEALTHCARE_KEYS = [
    "claims_submitted", "claims_approved", "claims_denied", "claims_pended", "claims_paid",
    "claim_adjudication_p50_s", "claim_adjudication_p99_s", "claim_paid_p50_s", "claim_paid_p99_s",
    "eligibility_checks", "eligibility_latency_p99_s", "eligibility_staleness_p99_s",
    "consents_granted", "consents_revoked", "accesses_allowed", "accesses_denied",
    "revocation_exposure_max_s", "accesses_in_exposure_window", "consent_violations",
    "records_registered", "tampered_records_detected", "counterfeits_injected", "counterfeits_detected",
    "trial_anchors", "invalid_tx", "mvcc_conflicts", "mvcc_conflict_rate",
    "requests", "requests_completed", "requests_failed", "retries", "timeouts", "duplicate_commits",
]  # fmt: skip


def test_every_run_has_every_healthcare_metric() -> None:
    world = Simulation(small_scenario(duration_s=3.0))
    world.run_until(3.0)
    result = collect(world, 0.0)
    missing = [k for k in HEALTHCARE_KEYS if k not in result.summary]
    assert missing == []
    assert result.summary["claims_submitted"] == len(result.claims) > 0
    assert math.isnan(result.summary["eligibility_latency_p99_s"])  # no eligibility checks in this mix

CONSENT_MIX = {"consent_grant": 0.3, "consent_revoke": 0.2, "record_access": 0.5}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), rate=st.floats(20, 120), jitter=st.sampled_from([0.0, 0.05]),
       protocol=st.sampled_from(["raft", "solo"]), crash=st.booleans())  # fmt: skip
def test_no_access_is_ever_allowed_without_committed_consent(seed: int, rate: float, jitter: float, protocol: str, crash: bool) -> None:
    """Random runs (seeds, rates, link jitter that reorders deliveries, a crash and recovery):
    every allowed access had an active consent in the enforcing node's committed history."""
    scenario = small_scenario(
        seed=seed, duration_s=6.0, protocol__name=protocol, network__jitter_s=jitter, workload__rate_tps=rate,
        workload__mix=CONSENT_MIX, workload__patients=40, workload__insurers=[],
    )  # fmt: skip
    world = Simulation(scenario)
    if crash:
        world.run_until(2.0)
        world.nodes[2].crash()
        world.run_until(3.5)
        world.nodes[2].recover()
    world.run_until(6.0)
    s = collect(world, 0.0).summary
    assert s["consent_violations"] == 0, s["invariant_notes"]
    assert s["conservation_violations"] == 0
    assert s["accesses_allowed"] + s["accesses_denied"] > 0
