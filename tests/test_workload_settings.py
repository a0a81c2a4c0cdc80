"""The [workload] keys: validation errors name the field and the problem; the trace format."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.workload.settings import load_trace
from tests.conftest import small_scenario


def errors_of(**keys: object) -> str:
    with pytest.raises(ScenarioError) as info:
        small_scenario(**keys)
    return str(info.value)


def test_generated_types_cannot_be_in_the_mix() -> None:
    assert "sent by the system" in errors_of(workload__mix={"claim_payment": 1.0})


def test_closed_loop_needs_a_timeout() -> None:
    assert "needs timeout_s > 0" in errors_of(workload__clients="closed")


def test_trace_settings_must_go_together(tmp_path: Path) -> None:
    assert "arrival = 'trace'" in errors_of(workload__arrival="trace")
    assert "does not exist" in errors_of(workload__arrival="trace", workload__trace=str(tmp_path / "none.csv"))


def test_trace_origins_must_be_nodes(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("time_s,type,origin,size_bytes\n0.5,claim,9,\n")
    assert "origins [9] outside 0..3" in errors_of(workload__arrival="trace", workload__trace=str(trace))


def test_roles_and_mix_are_checked_against_the_network() -> None:
    assert "no insurer" in errors_of(workload__insurers=[])
    assert "needs node ids in 0..3" in errors_of(workload__insurers=[7])
    assert "trials = 0" in errors_of(workload__mix={"trial_anchor": 1.0})
    assert "has 2 entries for 4 nodes" in errors_of(workload__node_rate_tps=[1.0, 2.0])
    assert "prior_auth_categories" in errors_of(workload__prior_auth_categories=["dentistry"])


def test_load_trace_reads_rows_and_reports_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("# comment\ntime_s,type,origin,size_bytes\n0.25,claim,1,1500\n0.25,eligibility,,\n\n1.5,consent_grant,2,\n")
    assert load_trace(good) == [(0.25, "claim", 1, 1500), (0.25, "eligibility", -1, 0), (1.5, "consent_grant", 2, 0)]
    cases = {
        "time_s,type,origin\n": "header must be",
        "time_s,type,origin,size_bytes\n1.0,claim,0,\n0.5,claim,0,\n": "line 3: time 0.5 is before",
        "time_s,type,origin,size_bytes\n1.0,clam,0,\n": "unknown type 'clam'",
        "time_s,type,origin,size_bytes\n1.0,claim_payment,0,\n": "sent by the system",
        "time_s,type,origin,size_bytes\nsoon,claim,0,\n": "line 2",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_trace(bad)
