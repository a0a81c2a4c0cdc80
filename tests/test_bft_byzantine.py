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


def _assert_safe(summary: dict[str, Any]) -> None:
    keys = ("safety_violations", "ledger_violations", "committed_lost", "conservation_violations")
    assert {k: summary[k] for k in keys} == dict.fromkeys(keys, 0), summary["invariant_notes"]


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
    _assert_safe(result.summary)
    _assert_live_after(result, 0)
    c = result.consensus
    assert (c["kind"] == "timeout_prevote").sum() > 0  # the split round did fail
    assert result.recovery.loc[0, "recover_s"] < 2.0
