"""BFT protocols with Byzantine nodes: within tolerance safe and live after; beyond it the checker sees harm.

n = 4 tolerates f = 1 Byzantine node (n >= 3f + 1). For PBFT, HotStuff and Tendermint and
each behaviour, one Byzantine node (node 0, a leader at the start, or node 3) misbehaves
from 1 s to 3 s: no honest node may finalize a conflicting block, lose a committed
transaction or break its chain, and every transaction submitted at an honest node once
the fault is over (plus a recovery margin) must commit. Two colluding equivocators (beyond
tolerance) make the two honest nodes finalize different blocks, and the checker counts it.
"""

from __future__ import annotations

from typing import Any

import pytest

import sim
from sim.config import parse_scenario
from sim.consensus.base import get_protocol
from sim.errors import ScenarioError
from tests.conftest import small_scenario

#: short timeouts so a faulty leader costs a fraction of a second
FAST: dict[str, dict[str, Any]] = {
    "pbft": {"protocol__view_change_timeout_s": 0.3},
    "hotstuff": {"protocol__view_timeout_s": 0.2, "protocol__batch_timeout_s": 0.02},
    "tendermint": {
        "protocol__timeout_propose_s": 0.2, "protocol__timeout_propose_delta_s": 0.05,
        "protocol__timeout_prevote_s": 0.1, "protocol__timeout_prevote_delta_s": 0.05,
        "protocol__timeout_precommit_s": 0.1, "protocol__timeout_precommit_delta_s": 0.05,
        "protocol__timeout_commit_s": 0.05, "protocol__gossip_retry_s": 0.3,
    },
}  # fmt: skip
BEHAVIOURS: dict[str, dict[str, Any]] = {
    "silent": {},
    "equivocate": {},
    "delay": {"delay_s": 0.3},
    "censor": {"censor_origins": [2]},
    "invalid": {},
}
FAULT_S = (1.0, 3.0)
RECOVERY_S = 1.0  # after the fault: a view change or a few rounds at the timeouts above
DURATION_S = 6.0


def _scenario(protocol: str, faults: list[dict[str, Any]], **extra: Any) -> sim.Scenario:
    return small_scenario(protocol__name=protocol, duration_s=DURATION_S, faults=faults, **FAST[protocol], **extra)


def _window(nodes: list[int], behaviour: str, **keys: Any) -> dict[str, Any]:
    at_s, until_s = FAULT_S
    return {"kind": "byzantine", "nodes": nodes, "behaviour": behaviour, "at_s": at_s, "until_s": until_s, **BEHAVIOURS[behaviour], **keys}


#: a node that was Byzantine but is honest again may finalize a block a few ms before the
#: others (HotStuff's leader commits on its own proposal); if the run ends in between, the
#: durability check (over never-Byzantine nodes) counts those transactions as lost
END_RACE_S = 0.1


def _assert_safe(result: sim.RunResult) -> None:
    summary = result.summary
    keys = ("safety_violations", "ledger_violations", "conservation_violations")
    assert {k: summary[k] for k in keys} == dict.fromkeys(keys, 0), summary["invariant_notes"]
    tx = result.transactions
    at_the_end = ((tx["outcome"] == "committed") & (tx["decided_s"] > result.scenario.duration_s - END_RACE_S)).sum()
    assert summary["committed_lost"] <= at_the_end, summary["invariant_notes"]


def _assert_live_after(result: sim.RunResult, byzantine: int) -> None:
    tx = result.transactions
    start_s, end_s = FAULT_S[1] + RECOVERY_S, DURATION_S - 1.0
    late = tx[(tx["submit_s"] > start_s) & (tx["submit_s"] < end_s) & (tx["origin"] != byzantine)]
    assert len(late) > 20
    assert (late["outcome"] == "committed").all(), late["outcome"].value_counts()


@pytest.mark.parametrize("protocol", sorted(FAST))
def test_bft_protocols_tolerate_f_of_3f_plus_1(protocol: str) -> None:
    cls = get_protocol(protocol)
    params = cls.Params(name=protocol)
    assert [cls.byzantine_tolerance(params, n) for n in (1, 3, 4, 6, 7, 10)] == [0, 0, 1, 1, 2, 3]
    assert cls.byzantine_tolerance(cls.Params(name=protocol, f=1), 7) == 1  # a configured f wins


def test_a_tendermint_equivocator_does_not_stall_the_height_it_split() -> None:
    """Regression: the equivocator's prevote for the original block kept the replicas that saw
    it from ever prevoting the sibling others locked on; the proof of lock settles it."""
    result = sim.run(_scenario("tendermint", [_window([0], "equivocate")]))
    _assert_safe(result)
    _assert_live_after(result, 0)
    c = result.consensus
    assert (c["kind"] == "timeout_prevote").sum() > 0  # the split round did fail
    assert result.recovery.loc[0, "recover_s"] < 2.0


@pytest.mark.parametrize("mode", ["message", "phase"])  # phase mode goes as messages while a node misbehaves
@pytest.mark.parametrize("byzantine", [0, 3], ids=["node0", "node3"])  # node 0 leads at first (every protocol)
@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
@pytest.mark.parametrize("protocol", sorted(FAST))
def test_one_byzantine_node_of_four_is_safe_and_live_after(protocol: str, behaviour: str, byzantine: int, mode: str) -> None:
    result = sim.run(_scenario(protocol, [_window([byzantine], behaviour)], network__mode=mode))
    _assert_safe(result)
    _assert_live_after(result, byzantine)
    detail = result.recovery.loc[0, "detail"]
    counter = {"silent": "withheld=", "equivocate": "equivocated=", "delay": "delayed=", "invalid": "corrupted="}.get(behaviour)
    if counter is not None and (byzantine == 0 or behaviour != "invalid"):  # a non-leader builds no block to corrupt
        assert counter in detail, detail  # the behaviour really acted


def test_a_byzantine_first_leader_is_detected_by_a_view_change() -> None:
    for protocol, kinds in (("pbft", {"view_change"}), ("hotstuff", {"view_timeout"}), ("tendermint", {"timeout_propose", "timeout_prevote"})):
        result = sim.run(_scenario(protocol, [_window([0], "silent")]))
        c = result.consensus
        seen = set(c.loc[c["time_s"] > FAULT_S[0], "kind"])
        assert kinds & seen, (protocol, seen)
        assert 0 < result.recovery.loc[0, "detect_s"] < 1.0, protocol


# ------------------------------------------------------- beyond tolerance


@pytest.mark.parametrize("protocol", ["pbft", "tendermint"])
def test_two_colluding_equivocators_of_four_make_honest_nodes_fork(protocol: str) -> None:
    """Nodes 0 and 1 (the first leaders) send the original proposal and their votes for it to
    honest node 2 and the sibling and votes for the sibling to node 3: each honest node sees a
    quorum of 3 (two colluders and itself) and finalizes its own block at the same height."""
    result = sim.run(_scenario(protocol, [_window([0, 1], "equivocate", group="cartel")]))
    s = result.summary
    assert s["safety_violations"] >= 1
    (note,) = [n for n in s["invariant_notes"] if "different blocks" in n]
    assert "at nodes [2]" in note and "at nodes [3]" in note
    inv = result.invariants.set_index("invariant")
    assert inv.loc["safety", "violations"] == s["safety_violations"]


def test_a_lone_equivocating_voter_cannot_split_the_honest_nodes() -> None:
    """The same attack by one node: its variant votes name a block nobody proposed, so the
    honest nodes never see a quorum for two blocks (the colluders' sibling is what does it)."""
    result = sim.run(_scenario("pbft", [_window([1], "equivocate")]))
    _assert_safe(result)
    assert "equivocated=" in result.recovery.loc[0, "detail"]


# ------------------------------------------------------------- strict mode


@pytest.mark.parametrize("protocol", sorted(FAST))
def test_strict_mode_rejects_more_byzantine_nodes_than_f(protocol: str) -> None:
    with pytest.raises(ScenarioError, match=rf"2 nodes are Byzantine, but {protocol} with 4 nodes tolerates 1"):
        _scenario(protocol, [_window([0, 1], "equivocate", group="cartel")], strict_faults=True)
    seven = _scenario(protocol, [_window([0, 1], "equivocate", group="cartel")], network__nodes=7)
    assert seven.strict_faults is False
    raw = seven.model_dump()
    raw["strict_faults"] = True
    if protocol != "hotstuff":  # 7 nodes tolerate 2 Byzantine ones; HotStuff's liveness bound is (n - 1) // 4 = 1
        assert parse_scenario(raw, "<test>").strict_faults
    else:
        with pytest.raises(ScenarioError, match="tolerates 1"):
            parse_scenario(raw, "<test>")
