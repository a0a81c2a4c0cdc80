"""The healthcare presets: each runs with its own protocol and yields healthcare metrics.

Their workloads are also exercised on Raft, so that each [workload] table is known to be
valid and productive apart from its protocol.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from sim.config import parse_scenario
from sim.workload.types import TX_TYPES

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
PRESETS = ["medrec", "medibloc", "patientory", "fabric_food_trust", "fabric_claims", "trace_replay"]


def raw_preset(name: str) -> dict:
    return tomllib.loads((EXPERIMENTS / f"{name}.toml").read_text(encoding="utf-8"))


def check_metrics(result: sim.RunResult, mix: dict[str, float]) -> None:
    s = result.summary
    assert s["safety_violations"] == 0 and s["conservation_violations"] == 0, s["invariant_notes"]
    assert s["consent_violations"] == 0
    assert s["committed"] > 0 and s["requests_completed"] > 0
    if "claim" in mix:
        assert math.isfinite(s["claim_adjudication_p99_s"]) and s["claims_submitted"] > 0
    if "eligibility" in mix:
        assert math.isfinite(s["eligibility_latency_p99_s"]) and math.isfinite(s["eligibility_staleness_p99_s"])
    if "consent_revoke" in mix:
        assert s["consents_revoked"] > 0 and math.isfinite(s["revocation_exposure_max_s"])
    if "record_access" in mix:
        assert s["accesses_allowed"] + s["accesses_denied"] > 0
    if "record_register" in mix:
        assert s["records_registered"] > 0
    if "drug_verify" in mix:
        assert s["packages_verified"] > 0 and s["counterfeits_detected"] == s["counterfeits_injected"]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_runs_with_its_protocol(name: str) -> None:
    raw = raw_preset(name)
    assert raw["protocol"]["name"] in sim.protocol_names()
    # each preset runs as written: proof-of-authority finality takes several block periods
    result = sim.run(parse_scenario(raw, name))
    check_metrics(result, raw["workload"]["mix"] if raw["workload"].get("arrival") != "trace" else {})


@pytest.mark.parametrize("name", PRESETS)
def test_preset_workload_runs_on_raft(name: str) -> None:
    raw = raw_preset(name)
    common = {"max_block_tx", "max_block_bytes", "batch_timeout_s"}
    raw["protocol"] = {"name": "raft", **{k: v for k, v in raw["protocol"].items() if k in common}}
    raw["protocol"]["batch_timeout_s"] = min(raw["protocol"].get("batch_timeout_s", 0.1), 0.1)
    raw["duration_s"] = 30.0
    raw["warmup_s"] = 5.0
    result = sim.run(parse_scenario(raw, name))
    check_metrics(result, raw["workload"]["mix"] if raw["workload"].get("arrival") != "trace" else {})


def test_cli_lists_every_workload_type() -> None:
    out = CliRunner().invoke(main, ["list", "workloads"]).output
    listed = [line.split("\t")[0] for line in out.splitlines()]
    assert listed == list(TX_TYPES) and listed[0] == "claim"
    assert all("\t" in line and len(line.split("\t")[1]) > 20 for line in out.splitlines())


def test_cli_run_prints_the_healthcare_summary(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["run", str(EXPERIMENTS / "trace_replay.toml"), "--out", str(tmp_path / "r"), "--no-figure", "-q"])
    assert out.exit_code == 0, out.output
    for label in ("claim adjudication p99", "eligibility staleness p99", "revocation exposure max", "MVCC conflict rate"):
        assert label in out.output
    written = sim.read_run(tmp_path / "r")
    assert {"contracts", "claims", "queries", "audit", "revocations", "requests"} <= set(written.tables)
