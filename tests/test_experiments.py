"""Every scenario shipped in experiments/ loads, and runs its first simulated seconds cleanly.

These files are what users run first (``hcsim run experiments/<name>.toml``); the long ones
are cut to a few simulated seconds here (their full runs are in the notebooks, the reference
baselines and the benchmarks).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sim

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
SCENARIOS = sorted(EXPERIMENTS.glob("*.toml")) + sorted((EXPERIMENTS / "reference").glob("*.toml"))
#: simulated seconds each scenario is cut to (the slowest, pbft_1000, takes a few wall seconds)
SMOKE_S = 6.0
#: fault scenarios up to this long run in full (their faults are scheduled inside the run)
FULL_FAULT_RUN_S = 60.0
#: scenarios that exist to show an invariant broken (their header says so), and which one
SHOWS_HARM = {"faults_byzantine_equivocate.toml": "safety_violations"}


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) > 20


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_scenario_loads_and_runs_its_first_seconds(path: Path) -> None:
    scenario = sim.load_scenario(path)
    assert scenario.name and scenario.duration_s > 0
    keep_whole = bool(scenario.faults) and scenario.duration_s <= FULL_FAULT_RUN_S
    duration_s = scenario.duration_s if keep_whole else min(scenario.duration_s, SMOKE_S)
    short = {
        "duration_s": duration_s,
        "warmup_s": min(scenario.warmup_s, duration_s / 2),
    }
    summary = sim.run(sim.load_scenario(path, short)).summary
    harm = SHOWS_HARM.get(path.name)
    if harm is not None:  # e.g. Raft does not tolerate an equivocating leader: the run shows it
        assert summary[harm] > 0
        summary = {**summary, harm: 0, "invariant_notes": []}
    assert summary["safety_violations"] == 0 and summary["conservation_violations"] == 0, summary["invariant_notes"]
    assert summary["ledger_violations"] == 0 and summary["consent_violations"] == 0, summary["invariant_notes"]
    assert summary["submitted"] > 0 and summary["sim_time_s"] == pytest.approx(duration_s)
