"""Fabric execute-order-validate: endorsement, ordering by Raft, delivery, MVCC conflicts."""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.consensus.base import get_protocol
from sim.consensus.fabric import ENDORSEMENT_BYTES, READ_BYTES, WRITE_BYTES
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from tests.conftest import small_scenario

#: every claim against one group policy's accumulator, nothing else limiting
HOT = {"workload__hotspot_fraction": 1.0, "workload__group_policy_members": 50_000, "workload__patients": 100_000,
       "workload__annual_limit_usd": 1e12, "workload__max_claims_per_patient_day": 10**9,
       "workload__duplicate_claim_fraction": 0.0, "workload__active_member_fraction": 1.0}  # fmt: skip
#: claims spread over so many patients and policies that no two share a key
DISJOINT = {"workload__patients": 10**9, "workload__policies": 10**8, "workload__duplicate_claim_fraction": 0.0}


def fabric(**keys: Any) -> sim.Scenario:
    base = {"protocol__name": "fabric", "protocol__max_block_tx": 50, "protocol__batch_timeout_s": 0.05,
            "network__latency_s": 0.01, "duration_s": 10.0}  # fmt: skip
    return small_scenario(**{**base, **keys})


def test_each_claim_is_endorsed_by_provider_and_insurer_then_ordered() -> None:
    world = Simulation(fabric(**DISJOINT))
    world.run_until(10.0)
    result = collect(world, 0.0)
    s = result.summary
    assert s["conservation_violations"] == 0 and s["safety_violations"] == 0 and s["invalid_tx"] == 0
    sent = result.messages.groupby("msg_type")["sent_count"].sum()
    # insurer = node 3 is never the provider: one proposal and one endorsement per claim
    assert sent["Proposal"] == sent["ProposalResponse"] == s["submitted"]
    ordered = [t for b in world.nodes[3].ledger.blocks for t in world.executor.block_transactions(b)]
    approved = [t for t in ordered if t.payload.result.outcome == "approved"]
    assert len(approved) > 400 and all(t.payload.endorsers == (t.origin, 3) for t in approved)
    # claim, reads (claim id, member, policy, dedup, rules, day counter, accumulator), writes
    # (day counter, accumulator, claim, dedup), two endorsements
    assert {t.size_bytes for t in approved} == {1100 + 7 * READ_BYTES + 4 * WRITE_BYTES + 2 * ENDORSEMENT_BYTES}
    # every peer, the non-orderer node 3 included, keeps up (a block may be in flight at the end)
    heights = result.nodes["applied_height"]
    assert heights.min() > 100 and heights.max() - heights.min() <= 1


def hot_run(rate_tps: float, batch_timeout_s: float, max_block_tx: int = 500) -> dict[str, Any]:
    scenario = fabric(workload__rate_tps=rate_tps, protocol__batch_timeout_s=batch_timeout_s,
                      protocol__max_block_tx=max_block_tx, duration_s=12.0, **HOT)  # fmt: skip
    result = sim.run(scenario)
    s = result.summary
    assert s["conservation_violations"] == 0
    approved = result.contracts[result.contracts["outcome"] == "approved"]
    # at most one claim per block can pass validation: each writes the accumulator that
    # every other claim of the block read at an older version
    assert approved.groupby("height").size().max() == 1
    return s


def test_one_hot_key_conflicts_more_with_rate_and_block_size() -> None:
    slow_small = hot_run(10.0, 0.05)
    fast_small = hot_run(40.0, 0.05)
    fast_big = hot_run(40.0, 0.5)
    rates = [r["mvcc_conflict_rate"] for r in (slow_small, fast_small, fast_big)]
    assert rates[0] < rates[1] < rates[2]
    assert fast_big["mvcc_conflict_rate"] > 0.8  # ~20 claims per block, one survives
    assert slow_small["invalid_tx"] > 0


def test_disjoint_keys_never_conflict() -> None:
    s = sim.run(fabric(workload__rate_tps=80.0, protocol__batch_timeout_s=0.5, **DISJOINT)).summary
    assert (s["invalid_tx"], s["mvcc_conflicts"], s["mvcc_conflict_rate"]) == (0, 0, 0.0)
    assert s["committed"] > 600


def test_invalid_transactions_are_retried_and_counted() -> None:
    s = sim.run(fabric(workload__rate_tps=20.0, workload__max_retries=20, **HOT)).summary
    assert s["invalid_tx"] > 0 and s["retries"] >= s["invalid_tx"]
    assert s["requests_completed"] + s["requests_failed"] <= s["requests"]
    assert s["committed"] + s["invalid"] + s["rejected"] + s["dropped"] + s["pending"] == s["submitted"]


def test_a_crashed_insurer_blocks_its_endorsements_until_the_client_gives_up() -> None:
    world = Simulation(fabric(**DISJOINT))
    world.run_until(3.0)
    world.nodes[3].crash()  # the only insurer
    world.run_until(10.0)
    result = collect(world, 0.0)
    tx = result.transactions
    late = tx[tx["submit_s"] > 3.5]
    assert (late[late["submit_s"] < 6.0]["reason"] == "endorsement timeout").all()
    assert result.summary["conservation_violations"] == 0


def test_a_peer_switches_to_another_orderer_when_its_own_crashes() -> None:
    world = Simulation(fabric(protocol__endorsement_policy="sender", duration_s=12.0, workload__insurers=[1], **DISJOINT))
    world.run_until(3.0)
    world.nodes[0].crash()  # node 3 subscribes to orderer 0 (3 mod 3)
    world.run_until(12.0)
    result = collect(world, 0.0)
    heights = result.nodes.set_index("node_id")["applied_height"]
    assert heights[3] >= heights[1] - 1 and heights[3] > world.nodes[0].ledger.height + 10
    tx = result.transactions
    from_peer = tx[(tx["origin"] == 3) & (tx["submit_s"] > 5.0) & (tx["submit_s"] < 9.0)]
    assert len(from_peer) > 0 and (from_peer["outcome"] == "committed").all()


@pytest.mark.parametrize(("policy", "tolerance"), [("parties", 0), ("sender", 1), ("majority", 1)])
def test_crash_tolerance_depends_on_the_endorsement_policy(policy: str, tolerance: int) -> None:
    scenario = fabric(protocol__endorsement_policy=policy)
    assert get_protocol("fabric").crash_tolerance(scenario.protocol, 4) == tolerance
