"""The hcsim command: exit codes, outputs, and nothing written on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "experiments" / "quickstart.toml")
FAST = ["--set", "duration_s=4", "--set", "warmup_s=1", "--set", "network.nodes=4"]


def test_run_writes_results_and_figure(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    result = CliRunner().invoke(main, ["run", QUICKSTART, *FAST, "--seed", "3", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "throughput" in result.output and "latency p99" in result.output
    summary = json.loads((out / "summary.json").read_text())
    for key in ("submitted", "committed", "throughput_tps", "latency_mean_s", "latency_p50_s", "latency_p95_s",
                "latency_p99_s", "safety_violations", "messages", "bytes", "sim_time_s", "wall_time_s", "events"):
        assert key in summary, key
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["scenario"]["network"]["nodes"] == 4
    assert manifest["scenario"]["protocol"]["heartbeat_s"] == 0.05  # resolved defaults
    for table in ("transactions", "blocks", "messages", "nodes", "faults"):
        assert isinstance(pd.read_parquet(out / f"{table}.parquet"), pd.DataFrame)
    assert (out / "figures" / "overview.png").stat().st_size > 10_000


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["run", QUICKSTART, "--set", "network.nodez=3", "--out", str(out)])
    assert result.exit_code == 2
    assert "network.nodez" in result.output and "did you mean 'nodes'" in result.output
    assert not out.exists()
    missing = CliRunner().invoke(main, ["run", str(tmp_path / "missing.toml"), "--out", str(out)])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert not out.exists()


def test_list() -> None:
    runner = CliRunner()
    protocols = runner.invoke(main, ["list", "protocols"]).output.split()
    assert {"raft", "solo"} <= set(protocols)
    assert "regional" in runner.invoke(main, ["list", "topologies"]).output
    assert runner.invoke(main, ["list", "workloads"]).output.startswith("claim")


def test_plugin_registers_a_users_protocol(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    from sim.consensus import base

    monkeypatch.syspath_prepend(str(ROOT / "docs" / "examples"))
    try:
        result = CliRunner().invoke(main, ["--plugin", "primary_backup", "list", "protocols"])
        assert result.exit_code == 0 and "primary_backup" in result.output.split()
    finally:
        base._REGISTRY.pop("primary_backup", None)
        sys.modules.pop("primary_backup", None)
    missing = CliRunner().invoke(main, ["--plugin", "no_such_module", "list", "protocols"])
    assert missing.exit_code == 2 and "cannot import" in missing.output
