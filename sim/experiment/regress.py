"""The regression gate: re-run reference scenarios and compare with committed baselines.

``experiments/reference/<name>.toml`` are small scenarios, one per protocol family;
``results/baselines/<name>.json`` holds, for each, the headline metrics of its run at
its own seed, and for every metric the direction that counts as worse, a relative
tolerance and the reason for that tolerance.

Why tolerances can be tight: a scenario and seed give bit-identical tables on every
run and executor, so on an unchanged tree every metric matches its baseline exactly.
A tolerance therefore does not absorb noise; it sets how large a deliberate change
must be before someone has to look at it and run ``hcsim regress --update``. Changes
that only reorder simultaneous events or shift one random draw move metrics by less
than the tolerances below; a slower protocol, a lost transaction or an extra message
per block does not.

Adding a protocol family is adding its scenario file and running ``--update``.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import HcsimError
from sim.experiment.store import git_commit, write_json_atomic

__all__ = ["DEFAULT_RULES", "MetricRule", "compare", "format_table", "parse_tolerance", "run_references", "update_baselines"]

REFERENCE_DIR = Path("experiments/reference")
BASELINE_DIR = Path("results/baselines")


@dataclass(frozen=True)
class MetricRule:
    """How one metric is judged.

    Attributes:
        direction: "higher_is_better" (fails on a drop), "lower_is_better" (fails on a
            rise), "both" (fails on a change either way) or "exact" (must be equal).
        tolerance_rel: allowed relative change, e.g. 0.01 for 1%.
        why: the reason for this tolerance, stored with the baseline.
    """

    direction: str
    tolerance_rel: float
    why: str


_TAIL = "tail percentiles rest on the slowest 1-5% of a few thousand transactions, so one reordered event moves them more than the median"
DEFAULT_RULES: dict[str, MetricRule] = {
    "throughput_tps": MetricRule(
        "higher_is_better", 0.01,
        "reference loads are below capacity, so throughput equals the offered load; a 1% drop means transactions are lost, rejected or stuck",
    ),
    "committed": MetricRule("higher_is_better", 0.01, "as throughput: every offered transaction commits at reference loads"),
    "latency_mean_s": MetricRule("lower_is_better", 0.03, "the mean over thousands of transactions moves by 3% only if a stage got slower"),
    "latency_p50_s": MetricRule("lower_is_better", 0.03, "the median over thousands of transactions moves by 3% only if a stage got slower"),
    "latency_p95_s": MetricRule("lower_is_better", 0.05, _TAIL),
    "latency_p99_s": MetricRule("lower_is_better", 0.05, _TAIL),
    "messages": MetricRule("both", 0.02, "message counts follow from the protocol's message pattern; a 2% change either way means it sends differently"),
    "bytes": MetricRule("both", 0.02, "bytes follow from message counts and sizes; a 2% change either way means the wire format or pattern changed"),
    "blocks": MetricRule("both", 0.02, "block count follows from the batch size and timeout at a fixed load"),
    "safety_violations": MetricRule("exact", 0.0, "any violation is a bug"),
    "ledger_violations": MetricRule("exact", 0.0, "any violation is a bug"),
    "conservation_violations": MetricRule("exact", 0.0, "any violation is a bug"),
}


def parse_tolerance(text: str) -> float:
    """``"5%"`` or ``"0.05"`` -> 0.05."""
    try:
        value = float(text.strip().rstrip("%")) / (100 if text.strip().endswith("%") else 1)
    except ValueError:
        raise HcsimError(f"tolerance {text!r}: give a percentage like 5% or a fraction like 0.05") from None
    if not 0 <= value < 10:
        raise HcsimError(f"tolerance {text!r} is out of range")
    return value


def _scenario_digest(path: Path) -> str:
    """Hash of the reference file's settings (comments and formatting do not count)."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def reference_files(reference_dir: Path = REFERENCE_DIR, only: list[str] | None = None) -> list[Path]:
    files = sorted(Path(reference_dir).glob("*.toml"))
    if only:
        unknown = set(only) - {f.stem for f in files}
        if unknown:
            raise HcsimError(f"no reference scenario {sorted(unknown)} in {reference_dir}; known: {', '.join(f.stem for f in files)}")
        files = [f for f in files if f.stem in only]
    if not files:
        raise HcsimError(f"no reference scenarios (*.toml) in {reference_dir}")
    return files


def run_references(files: list[Path]) -> dict[str, dict[str, Any]]:
    """Run every reference scenario at its own seed: name -> summary."""
    from sim.experiment.runner import run

    return {path.stem: run(path).summary for path in files}


def update_baselines(files: list[Path], baseline_dir: Path = BASELINE_DIR) -> list[Path]:
    """Run the references and (re)write their baselines; hand-edited tolerances are kept."""
    from sim import __version__

    baseline_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, summary in run_references(files).items():
        path = baseline_dir / f"{name}.json"
        old = json.loads(path.read_text(encoding="utf-8"))["metrics"] if path.is_file() else {}
        metrics = {}
        for metric, rule in DEFAULT_RULES.items():
            if metric not in summary:
                continue
            kept = old.get(metric, {})
            metrics[metric] = {
                "value": summary[metric],
                "direction": kept.get("direction", rule.direction),
                "tolerance_rel": kept.get("tolerance_rel", rule.tolerance_rel),
                "why": kept.get("why", rule.why),
            }
        source = next(f for f in files if f.stem == name)
        write_json_atomic(
            path,
            {
                "scenario": name,
                "scenario_file": str(source),
                "scenario_digest": _scenario_digest(source),
                "seed": summary["seed"],
                "hcsim_version": __version__,
                "git_commit": git_commit(),
                "updated_at": datetime.now(UTC).isoformat(),
                "metrics": metrics,
            },
        )
        written.append(path)
    return written


def _judge(base: float | None, now: float | None, direction: str, tol: float) -> tuple[float, str]:
    """(relative change, status) with status ok / improved / REGRESSED / CHANGED."""
    b = math.nan if base is None else float(base)
    c = math.nan if now is None else float(now)
    if math.isnan(b) or math.isnan(c):
        return math.nan, "ok" if math.isnan(b) and math.isnan(c) else "CHANGED"
    change = (c - b) / abs(b) if b != 0 else (0.0 if c == b else math.copysign(math.inf, c - b))
    if direction == "exact":
        return change, "ok" if c == b else "CHANGED"
    if direction == "both":
        return change, "CHANGED" if abs(change) > tol else "ok"
    worse = -change if direction == "higher_is_better" else change
    if worse > tol:
        return change, "REGRESSED"
    return change, "improved" if -worse > tol else "ok"


def compare(files: list[Path], baseline_dir: Path = BASELINE_DIR, tolerance: float | None = None) -> pd.DataFrame:
    """Run the references and compare with their baselines, one row per metric.

    A reference without a baseline, or edited since its baseline, gives one row with
    status MISSING or STALE (both fail the gate).

    Args:
        tolerance: replaces every non-exact metric's stored tolerance.
    """
    rows: list[dict[str, Any]] = []
    current = run_references(files)
    for path in files:
        name = path.stem
        base_path = Path(baseline_dir) / f"{name}.json"
        if not base_path.is_file():
            rows.append({"scenario": name, "metric": "-", "status": "MISSING", "note": f"no {base_path}: run hcsim regress --update"})
            continue
        baseline = json.loads(base_path.read_text(encoding="utf-8"))
        if baseline.get("scenario_digest") != _scenario_digest(path):
            rows.append({"scenario": name, "metric": "-", "status": "STALE", "note": f"{path} changed since its baseline: run hcsim regress --update"})
            continue
        for metric, entry in baseline["metrics"].items():
            direction = entry["direction"]
            tol = entry["tolerance_rel"] if tolerance is None or direction == "exact" else tolerance
            change, status = _judge(entry["value"], current[name].get(metric), direction, tol)
            rows.append(
                {
                    "scenario": name,
                    "metric": metric,
                    "baseline": entry["value"],
                    "current": current[name].get(metric),
                    "change": change,
                    "direction": direction,
                    "tolerance_rel": tol,
                    "status": status,
                    "note": "",
                }
            )
    return pd.DataFrame(rows)


def failed(table: pd.DataFrame) -> bool:
    """True if any row fails the gate."""
    return bool(table["status"].isin(["REGRESSED", "CHANGED", "MISSING", "STALE"]).any())


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    value = float(value)
    return f"{value:.6g}"


def format_table(table: pd.DataFrame) -> str:
    """Aligned text: scenario, metric, baseline, current, change, what is allowed, status."""
    allowed = {"higher_is_better": "drop <= {}", "lower_is_better": "rise <= {}", "both": "change <= {}", "exact": "equal"}
    head = f"{'scenario':<12} {'metric':<24} {'baseline':>12} {'current':>12} {'change':>9}  {'allowed':<16} status"
    lines = [head, "-" * len(head)]
    for row in table.to_dict("records"):
        if row["metric"] == "-":
            lines.append(f"{row['scenario']:<12} {'-':<24} {'':>12} {'':>12} {'':>9}  {'':<16} {row['status']}: {row['note']}")
            continue
        change = row["change"]
        change_text = "n/a" if change is None or math.isnan(change) else f"{change:+.2%}"
        rule = allowed[row["direction"]].format(f"{row['tolerance_rel']:.0%}" if row["tolerance_rel"] >= 0.01 else f"{row['tolerance_rel']:.1%}")
        lines.append(
            f"{row['scenario']:<12} {row['metric']:<24} {_num(row['baseline']):>12} {_num(row['current']):>12} {change_text:>9}  {rule:<16} {row['status']}"
        )
    return "\n".join(lines)
