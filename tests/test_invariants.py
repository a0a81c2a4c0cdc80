"""Invariants: consent and durability checks, the invariants table, and property tests.

Property: for random fault schedules that stay within Raft's tolerance (at most two of
five nodes crashed, cut off or churning at once, any link degradation), safety, ledger
integrity, durability and conservation always hold, and commits resume once every
fault has ended. ``strict_faults = true`` makes the scenario checker confirm that each
generated schedule is within tolerance.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.ledger import GENESIS_HASH, Block, Ledger
from sim.metrics.invariants import check_durability, invariants_table
from tests.conftest import small_scenario

# ------------------------------------------------------------------ consent


def test_the_invariants_table_lists_every_invariant_with_consent_from_the_contracts() -> None:
    # the consent check itself (accesses vs each node's committed consent history) is
    # tested with exact cases in tests/test_healthcare_metrics.py
    world = Simulation(small_scenario(duration_s=2.0))
    world.run_until(2.0)
    result = collect(world, 0.0)
    table = result.invariants.set_index("invariant")
    assert list(table.index) == ["safety", "ledger_integrity", "conservation", "durability", "consent"]
    assert table["violations"].sum() == result.summary["invariant_violations"] == 0


# --------------------------------------------------------------- durability


def _chain(ids_per_block: list[tuple[int, ...]]) -> Ledger:
    ledger, prev = Ledger(), GENESIS_HASH
    for height, ids in enumerate(ids_per_block, start=1):
        block = Block.build(height, prev, 0, float(height), ids, [bytes(32)] * len(ids), 100 * len(ids))
        ledger.append(block)
        prev = block.block_hash
    return ledger


def test_committed_transactions_only_a_byzantine_node_holds_are_lost() -> None:
    honest_a, honest_b, byzantine = _chain([(0, 1)]), _chain([(0, 1), (2,)]), _chain([(0, 1), (2,), (3, 4)])
    ledgers = [honest_a, honest_b, byzantine]
    assert check_durability(ledgers, [0, 1], [0, 1, 2]) == (0, [])
    count, notes = check_durability(ledgers, [0, 1], [0, 1, 2, 3, 4])
    assert count == 2 and notes == ["2 committed transactions are in no honest ledger, e.g. ids [3, 4]"]


def test_invariants_table_rows() -> None:
    table = invariants_table({"safety": (2, ["a", "b"]), "consent": (0, [])})
    assert table.to_dict("records") == [
        {"invariant": "safety", "violations": 2, "examples": "a | b"},
        {"invariant": "consent", "violations": 0, "examples": ""},
    ]


# ---------------------------------------------------------- property tests

N = 5
DURATION_S = 7.0
LAST_END_S = 4.5


@st.composite
def _schedules(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-4 faults that keep at most 2 of 5 nodes faulty at any time: they all hit two victims."""
    victims = draw(st.lists(st.integers(0, N - 1), min_size=2, max_size=2, unique=True))
    some_victims = st.lists(st.sampled_from(victims), min_size=1, max_size=2, unique=True)
    faults = []
    for _ in range(draw(st.integers(1, 4))):
        at_s = draw(st.floats(0.3, 3.5))
        until_s = min(LAST_END_S, at_s + draw(st.floats(0.2, 2.0)))
        kind = draw(st.sampled_from(["crash", "isolate", "partition", "degrade", "churn"]))
        if kind == "crash":
            faults.append({"kind": kind, "nodes": draw(some_victims), "at_s": at_s, "until_s": until_s})
        elif kind == "isolate":
            faults.append({"kind": kind, "node": draw(st.sampled_from(victims)), "at_s": at_s, "until_s": until_s})
        elif kind == "partition":
            faults.append({"kind": kind, "groups": [draw(some_victims)], "at_s": at_s, "until_s": until_s})
        elif kind == "churn":
            churn = {"kind": kind, "nodes": victims, "mtbf_s": draw(st.floats(0.5, 3.0)), "mttr_s": draw(st.floats(0.1, 1.0))}
            faults.append({**churn, "max_down": 2, "at_s": at_s, "until_s": until_s})
        else:
            scope = draw(st.sampled_from([{}, {"nodes": draw(some_victims)}, {"links": [victims]}]))
            effect = {
                "extra_delay_s": draw(st.floats(0.0, 0.05)),
                "jitter_s": draw(st.floats(0.0, 0.02)),
                "loss_rate": draw(st.sampled_from([0.0, 0.02, 0.1])),
            }
            if not any(effect.values()):
                effect["extra_delay_s"] = 0.01
            faults.append({"kind": kind, **scope, **effect, "at_s": at_s, "until_s": until_s})
    return faults


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(faults=_schedules(), seed=st.integers(0, 2**31), rate=st.floats(20.0, 120.0))
def test_safety_and_conservation_hold_for_random_schedules_within_tolerance(faults: list[dict[str, Any]], seed: int, rate: float) -> None:
    scenario = small_scenario(
        network__nodes=N,
        duration_s=DURATION_S,
        seed=seed,
        workload__rate_tps=rate,
        metrics__stall_after_s=DURATION_S - LAST_END_S - 1.0,
        faults=faults,
        strict_faults=True,  # the checker agrees the schedule is within tolerance
    )
    result = sim.run(scenario)
    s = result.summary
    keys = ("safety_violations", "ledger_violations", "committed_lost", "conservation_violations")
    assert {k: s[k] for k in keys} == dict.fromkeys(keys, 0), s["invariant_notes"]
    assert s["committed"] + s["rejected"] + s["dropped"] + s["pending"] == s["submitted"]
    assert s["stalled"] is False  # commits resume once every fault has ended
    decided = result.transactions["decided_s"]
    assert (decided > LAST_END_S + 1.0).any()
