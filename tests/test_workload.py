"""The workload end to end: trace replay, per-node rates, senders, conservation across types."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import sim
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.workload.settings import load_trace
from sim.workload.types import TX_TYPES
from tests.conftest import small_scenario

ALL_CLIENT_TYPES = {
    "claim": 0.2, "eligibility": 0.3, "prior_auth_request": 0.03, "consent_grant": 0.08, "consent_revoke": 0.03,
    "record_access": 0.1, "record_register": 0.06, "record_verify": 0.03, "drug_commission": 0.04,
    "drug_transfer": 0.06, "drug_verify": 0.03, "trial_anchor": 0.01,
}  # fmt: skip
EVERYTHING: dict[str, Any] = {
    "network__nodes": 8, "workload__mix": ALL_CLIENT_TYPES, "workload__patients": 3000, "workload__trials": 2,
    "workload__payment_interval_s": 2.0, "workload__prior_auth_categories": ["imaging"],
    "workload__tamper_fraction": 0.2, "workload__counterfeit_fraction": 0.1, "workload__rate_tps": 120.0,
}  # fmt: skip


def test_trace_replay_reproduces_the_arrival_times_exactly() -> None:
    result = sim.run("experiments/trace_replay.toml")
    rows = load_trace("experiments/traces/clinic_morning.csv")
    req = result.requests[result.requests["source"] == "client"].sort_values("request_id")
    assert req["submit_s"].tolist() == [t for t, _, _, _ in rows]  # exactly, not approximately
    assert req["tx_type"].tolist() == [k for _, k, _, _ in rows]
    pinned = [(i, o) for i, (_, _, o, _) in enumerate(rows) if o >= 0]
    assert [req["origin"].iloc[i] for i, _ in pinned] == [o for _, o in pinned]
    sized = result.transactions.set_index("request_id")["size_bytes"]
    for request_id, (_, _, _, size) in zip(req["request_id"], rows, strict=True):
        if size:
            assert sized.loc[request_id] == size


def test_per_node_rates() -> None:
    scenario = small_scenario(duration_s=60.0, workload__node_rate_tps=[10.0, 0.0, 30.0, 0.0])
    req = sim.run(scenario).requests
    counts = req[req["source"] == "client"]["origin"].value_counts()
    assert set(counts.index) == {0, 2}
    assert counts[0] == pytest.approx(600, abs=4 * 600**0.5)
    assert counts[2] == pytest.approx(1800, abs=4 * 1800**0.5)


def test_every_type_is_sent_by_its_role() -> None:
    world = Simulation(small_scenario(duration_s=15.0, **EVERYTHING))
    world.run_until(15.0)
    roles = world.workload.roles
    req = pd.DataFrame([(r.tx_type, r.origin) for r in world.workload.requests], columns=["tx_type", "origin"])
    assert set(req["tx_type"]) == set(TX_TYPES)  # every type, incl. payments, decisions, audits
    for kind, origins in req.groupby("tx_type")["origin"]:
        allowed = {n for role in TX_TYPES[kind].senders for n in roles.nodes_with(role)}
        assert set(origins) <= allowed, kind


def test_conservation_across_all_types_with_crashes_and_loss() -> None:
    scenario = small_scenario(duration_s=20.0, network__loss_rate=0.02, network__nodes=8, **{k: v for k, v in EVERYTHING.items() if k != "network__nodes"})
    world = Simulation(scenario)
    world.run_until(6.0)
    world.nodes[5].crash()
    world.nodes[1].crash()
    world.run_until(12.0)
    world.nodes[5].recover()
    world.run_until(20.0)
    result = collect(world, 0.0)
    s = result.summary
    assert s["conservation_violations"] == 0, s["invariant_notes"]
    assert s["safety_violations"] == 0 and s["consent_violations"] == 0
    tx = result.transactions
    per_type = tx.groupby("tx_type", observed=True)["outcome"].value_counts().unstack(fill_value=0)
    assert (per_type.sum(axis=1) == tx.groupby("tx_type", observed=True).size()).all()
    assert set(per_type.columns) <= {"committed", "invalid", "rejected", "dropped", "pending"}
    assert per_type.get("dropped", pd.Series(dtype=int)).sum() > 0  # the crashes did lose transactions
    # every request ends completed, failed or pending; every query was answered or failed
    req = result.requests
    assert set(req["status"]) <= {"completed", "failed", "pending"}
    queries = result.queries
    assert len(queries) == int(req["tx_type"].map(lambda t: TX_TYPES[t].read_only).sum())
    failed = queries[queries["status"] == "failed"]
    down = failed["reason"] == "node down"
    assert down.sum() > 0 and set(failed.loc[down, "node_id"]) == {1, 5}
    assert set(failed.loc[~down, "reason"]) <= {"record holder unreachable"}  # a verifier fetching from 1 or 5
    # a completed transaction request has at least one committed attempt
    writes = req[(req["status"] == "completed") & ~req["tx_type"].map(lambda t: TX_TYPES[t].read_only)]
    assert len(writes) > 0 and (writes["committed_attempts"] >= 1).all()


def test_insurers_pay_approved_claims_and_decide_authorizations() -> None:
    result = sim.run(small_scenario(duration_s=20.0, **EVERYTHING))
    claims = result.claims
    paid = claims[claims["paid_s"].notna()]
    assert len(paid) > 0 and (paid["decision"] == "approved").all()
    assert (paid["paid_s"] > paid["adjudicated_s"]).all()
    contracts = result.contracts
    decisions = contracts[contracts["tx_type"] == "prior_auth_decision"]
    assert len(decisions) > 0 and set(decisions["outcome"]) <= {"pa_approved", "pa_denied"}
    assert (contracts.loc[contracts["tx_type"] == "claim_payment", "outcome"] == "paid").all()
    s = result.summary
    assert s["claims_paid"] == len(paid) and s["claim_paid_p99_s"] > s["claim_adjudication_p99_s"]
