"""Same scenario and seed: identical tables, in this process and in another one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pandas.testing as pdt

import sim
from tests.conftest import small_scenario

ROOT = Path(__file__).resolve().parents[1]


def _tables(seed: int) -> sim.RunResult:
    return sim.run(small_scenario(seed=seed, network__jitter_s=0.005, network__topology="regional", network__nodes=6))


def test_same_seed_identical_tables() -> None:
    a, b = _tables(11), _tables(11)
    for name in ("transactions", "blocks", "messages", "nodes", "consensus", "throughput"):
        pdt.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True)


def test_different_seed_different_transactions() -> None:
    a, b = _tables(11), _tables(12)
    assert not a.transactions["submit_s"].equals(b.transactions["submit_s"])


def test_identical_in_another_process(tmp_path: Path) -> None:
    here = _tables(5).transactions
    out = tmp_path / "tx.parquet"
    code = (
        "import sim; from tests.conftest import small_scenario; "
        "r = sim.run(small_scenario(seed=5, network__jitter_s=0.005, network__topology='regional', network__nodes=6)); "
        f"r.transactions.to_parquet({str(out)!r})"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    pdt.assert_frame_equal(here, pd.read_parquet(out), check_exact=True, check_categorical=False)


def test_recording_off_changes_no_random_draw() -> None:
    on = sim.Simulation(small_scenario(seed=3, network__jitter_s=0.005))
    off = sim.Simulation(small_scenario(seed=3, network__jitter_s=0.005, metrics__enabled=False))
    on.run_until(10.0)
    off.run_until(10.0)
    assert on.env.events_scheduled == off.env.events_scheduled
    assert [n.ledger.head_hash for n in on.nodes] == [n.ledger.head_hash for n in off.nodes]
    assert len(on.txs) == len(off.txs) and off.recorder.transactions_table().empty


def test_named_streams_are_independent() -> None:
    streams_a = sim.rng.RandomStreams(9)
    streams_b = sim.rng.RandomStreams(9)
    streams_b.stream("faults").random(1000)  # drawing from one stream...
    assert streams_a.stream("workload").random() == streams_b.stream("workload").random()  # ...leaves others alone
    assert streams_a.stream("workload").random() != streams_a.stream("links").random()
    assert sim.rng.derive_seed(1, "rep/0") == sim.rng.derive_seed(1, "rep/0") != sim.rng.derive_seed(1, "rep/1")
