"""``hcsim bench --quick``: the table and the JSON have every column, rates are positive.

No timing assertions: wall-clock rates depend on the machine and its load.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sim.cli import main
from sim.experiment.bench import BenchRow, format_table, kernel_rate, run_mode

KEYS = {
    "n", "message_instances", "message_wall_s", "message_inst_per_s", "message_events_per_s",
    "message_peak_mem_mb", "message_skipped_est_s", "phase_instances", "phase_wall_s",
    "phase_inst_per_s", "phase_events_per_s", "phase_peak_mem_mb", "speedup",
    "kernel_inst_per_s", "kernel_over_phase",
}  # fmt: skip


def test_bench_quick_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--quick", "--sizes", "4,16", "--json", str(out)])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.strip().startswith("n "))
    for title in ["msg inst/s", "msg ev/s", "msg MB", "phase inst/s", "phase ev/s", "phase MB",
                  "phase/msg", "kernel inst/s", "kernel/phase"]:  # fmt: skip
        assert title in header
    data = json.loads(out.read_text())
    assert set(data["machine"]) == {"nproc", "cpu_model", "loadavg"}
    assert [row["n"] for row in data["rows"]] == [4, 16]
    for row in data["rows"]:
        assert set(row) == KEYS
        # --quick runs 4 instances per mode and every one is decided at every replica
        assert row["message_instances"] == 4 and row["phase_instances"] == 4
        for key in ["message_inst_per_s", "phase_inst_per_s", "speedup", "kernel_inst_per_s",
                    "kernel_over_phase", "message_events_per_s", "phase_events_per_s"]:  # fmt: skip
            assert row[key] > 0, key
        assert row["message_peak_mem_mb"] >= 0 and row["phase_peak_mem_mb"] >= 0


def test_modes_decide_the_same_instances_with_the_same_messages() -> None:
    # the two modes do the same logical work: every instance decided everywhere
    message, phase = run_mode(7, "message", 3), run_mode(7, "phase", 3)
    assert message["decided"] == phase["decided"] == 3
    # phase mode: O(n) events per instance instead of O(n^2)
    assert phase["events"] < message["events"]


def test_skipped_message_mode_is_shown_with_its_estimate() -> None:
    row = BenchRow(1024, None, None, None, None, None, 123.4, 5, 1.0, 5.0, 1e4, 10.0, None, 100.0, 20.0)
    table = format_table([row])
    assert "skipped (est. 123 s)" in table
    assert kernel_rate(16, min_time_s=0.01) > 0


def test_bad_sizes_are_rejected() -> None:
    result = CliRunner().invoke(main, ["bench", "--sizes", "2,16"])
    assert result.exit_code == 2


def test_pbft_1000_scenario_is_valid_and_as_specified() -> None:
    from sim.config import load_scenario

    sc = load_scenario(Path(__file__).resolve().parent.parent / "experiments" / "pbft_1000.toml")
    assert (sc.network.nodes, sc.network.mode, sc.duration_s) == (1000, "phase", 3600.0)
    assert sc.protocol.name == "pbft" and sc.workload.rate_tps == 200.0


def test_pbft_1000_benchmark_reports_time_memory_and_what_it_simulated() -> None:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_pbft_1000.py"
    spec = importlib.util.spec_from_file_location("bench_pbft_1000", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = bench.run(duration_s=4.0)
    assert row["nodes"] == 1000 and row["sim_s"] == 4.0 and row["target_s"] is None
    assert row["wall_s"] >= row["run_s"] > 0 and row["peak_rss_mb"] > 0 and row["events"] > 1000
    assert row["committed"] > 0 and row["blocks"] >= 1 and row["invariant_violations"] == 0
