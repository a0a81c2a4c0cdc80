"""The regression gate: passes on true baselines, fails (exit 1, readable table) beyond tolerance."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.experiment.regress import DEFAULT_RULES, _judge, parse_tolerance

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def gate(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of two real reference scenarios (solo, raft), shortened to 12 s, and a baseline
    folder for them: the gate's mechanism, tested on the two fastest families."""
    reference = tmp_path / "reference"
    reference.mkdir()
    for path in [ROOT / "experiments" / "reference" / f"{name}.toml" for name in ("raft", "solo")]:
        (reference / path.name).write_text(path.read_text().replace("duration_s = 30.0", "duration_s = 12.0"))
    baselines = tmp_path / "baselines"
    result = CliRunner().invoke(main, ["regress", "--update", "--reference", str(reference), "--baseline", str(baselines)])
    assert result.exit_code == 0, result.output
    return reference, baselines


def _regress(reference: Path, baselines: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["regress", "--reference", str(reference), "--baseline", str(baselines), *extra])
    return result.exit_code, result.output


def _edit(baselines: Path, name: str, metric: str, factor: float) -> None:
    path = baselines / f"{name}.json"
    data = json.loads(path.read_text())
    data["metrics"][metric]["value"] *= factor
    path.write_text(json.dumps(data))


def test_every_reference_family_has_a_committed_baseline() -> None:
    references = {p.stem for p in (ROOT / "experiments" / "reference").glob("*.toml")}
    baselines = {p.stem for p in (ROOT / "results" / "baselines").glob("*.json")}
    assert {"solo", "raft"} <= references and references == baselines
    for name in references:
        data = json.loads((ROOT / "results" / "baselines" / f"{name}.json").read_text())
        for metric, entry in data["metrics"].items():
            assert entry["why"] and entry["direction"] in {"higher_is_better", "lower_is_better", "both", "exact"}, metric


def test_passes_on_the_true_baseline(gate: tuple[Path, Path]) -> None:
    reference, baselines = gate
    code, output = _regress(reference, baselines)
    assert code == 0, output
    assert "regress: ok: 24 checks over 2 reference scenarios" in output
    assert output.count(" ok\n") == 24 and "+0.00%" in output


def test_fails_beyond_tolerance_with_a_readable_table(gate: tuple[Path, Path]) -> None:
    reference, baselines = gate
    _edit(baselines, "raft", "throughput_tps", 1.05)  # now 4.8% below the baseline: a drop beyond 1%
    _edit(baselines, "solo", "latency_p99_s", 0.9)  # now 11% above: a rise beyond 5%
    _edit(baselines, "solo", "messages", 1.03)  # now 2.9% fewer: a change beyond 2%
    _edit(baselines, "solo", "latency_p50_s", 1.02)  # now 2% better: within 3%, passes
    code, output = _regress(reference, baselines)
    assert code == 1
    lines = {tuple(line.split()[:2]): line for line in output.splitlines() if line.startswith(("raft", "solo"))}
    assert lines[("raft", "throughput_tps")].endswith("-4.76%  drop <= 1%       REGRESSED")
    assert lines[("solo", "latency_p99_s")].endswith("+11.11%  rise <= 5%       REGRESSED")
    assert lines[("solo", "messages")].endswith("change <= 2%     CHANGED")
    assert lines[("solo", "latency_p50_s")].endswith(" ok")
    assert "regress: FAIL: 3 of 24 checks failed" in output
    # A global tolerance replaces the stored ones (not the exact invariants).
    code, output = _regress(reference, baselines, "--tolerance", "12%")
    assert code == 0, output


def test_missing_or_stale_baselines_fail(gate: tuple[Path, Path], tmp_path: Path) -> None:
    reference, baselines = gate
    shutil.copy(reference / "solo.toml", reference / "newfamily.toml")
    code, output = _regress(reference, baselines)
    assert code == 1 and "MISSING: no " in output and "newfamily.json: run hcsim regress --update" in output
    (reference / "newfamily.toml").unlink()
    (reference / "raft.toml").write_text((reference / "raft.toml").read_text().replace("rate_tps = 150.0", "rate_tps = 140.0"))
    code, output = _regress(reference, baselines, "--only", "raft")
    assert code == 1 and "STALE" in output
    code, output = _regress(reference, baselines, "--only", "nosuch")
    assert code == 2 and "no reference scenario ['nosuch']" in output


def test_update_keeps_hand_edited_tolerances(gate: tuple[Path, Path]) -> None:
    reference, baselines = gate
    path = baselines / "solo.json"
    data = json.loads(path.read_text())
    data["metrics"]["latency_p99_s"].update(tolerance_rel=0.2, why="this site accepts more tail variation")
    path.write_text(json.dumps(data))
    CliRunner().invoke(main, ["regress", "--update", "--reference", str(reference), "--baseline", str(baselines), "--only", "solo"])
    kept = json.loads(path.read_text())["metrics"]["latency_p99_s"]
    assert kept["tolerance_rel"] == 0.2 and kept["why"] == "this site accepts more tail variation"


def test_judging_rules() -> None:
    assert _judge(100.0, 98.0, "higher_is_better", 0.01) == (pytest.approx(-0.02), "REGRESSED")
    assert _judge(100.0, 102.0, "higher_is_better", 0.01) == (pytest.approx(0.02), "improved")
    assert _judge(1.0, 1.04, "lower_is_better", 0.05)[1] == "ok"
    assert _judge(1.0, 1.06, "lower_is_better", 0.05)[1] == "REGRESSED"
    assert _judge(100.0, 97.0, "both", 0.02)[1] == "CHANGED"
    assert _judge(0, 0, "exact", 0.0) == (0.0, "ok") and _judge(0, 1, "exact", 0.0)[1] == "CHANGED"
    assert _judge(None, None, "lower_is_better", 0.05)[1] == "ok" and _judge(1.0, None, "lower_is_better", 0.05)[1] == "CHANGED"
    assert math.isinf(_judge(0.0, 2.0, "both", 0.02)[0])
    assert parse_tolerance("5%") == pytest.approx(0.05) and parse_tolerance("0.02") == 0.02
    assert set(DEFAULT_RULES) >= {"throughput_tps", "latency_p50_s", "latency_p99_s", "messages"}
