"""Clients: closed loop obeys the response-time law; timeouts and retries are counted once."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim
from tests.conftest import small_scenario


def test_closed_loop_clients_have_one_request_outstanding_and_obey_littles_law() -> None:
    clients, think_s = 40, 0.5
    scenario = small_scenario(
        duration_s=100.0, warmup_s=5.0,
        workload__clients="closed", workload__closed_clients=clients, workload__think_s=think_s,
        workload__timeout_s=30.0, workload__mix={"claim": 1.0, "eligibility": 1.0},
    )  # fmt: skip
    result = sim.run(scenario)
    req = result.requests
    req = req[req["source"] == "client"].sort_values("submit_s")
    # one outstanding request per client: at any time at most `clients` are open
    events = sorted([(t, 1) for t in req["submit_s"]] + [(t, -1) for t in req["completed_s"].dropna()])
    open_now, peak = 0, 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    assert peak <= clients
    # interactive response-time law: N = X (R + Z), measured after warm-up
    done = req[(req["submit_s"] >= 5.0) & (req["status"] == "completed")]
    x = len(done) / (result.summary["sim_time_s"] - 5.0)
    r = done["latency_s"].mean()
    # ~7000 requests: the mean think time and the throughput each have ~1.2% relative
    # standard error, so allow 6% (about 3.5 combined standard errors)
    assert x * (r + think_s) == pytest.approx(clients, rel=0.06)


def test_open_loop_keeps_submitting_without_waiting() -> None:
    result = sim.run(small_scenario(workload__rate_tps=80.0, duration_s=10.0))
    assert result.summary["requests"] == pytest.approx(800, rel=0.1)


TRACE = """time_s,type,origin,size_bytes
1.0,claim,0,
3.0,claim,0,
5.0,claim,0,
"""


def test_a_retried_claim_is_counted_once_and_its_copy_is_denied(tmp_path: Path) -> None:
    """Solo on one node, batch timeout 0.5 s, client timeout 0.3 s: every claim is retried
    once at +0.3 s; both copies land in the block cut at +0.5 s; the first is approved, the
    copy is denied as a duplicate claim id, and the request completes exactly once."""
    trace = tmp_path / "claims.csv"
    trace.write_text(TRACE)
    scenario = small_scenario(
        network__nodes=1, protocol__name="solo", protocol__batch_timeout_s=0.5,
        node__sign_s=0.0, node__verify_s=0.0, node__hash_rate_bps=1e30, node__execute_scale=0.0,
        workload__arrival="trace", workload__trace=str(trace), workload__timeout_s=0.3, workload__max_retries=2,
    )  # fmt: skip
    result = sim.run(scenario)
    s = result.summary
    assert (s["requests"], s["requests_completed"], s["retries"], s["timeouts"], s["duplicate_commits"]) == (3, 3, 3, 3, 3)
    assert (s["submitted"], s["committed"], s["claims_submitted"], s["claims_approved"]) == (6, 6, 3, 3)
    tx = result.transactions
    assert tx["submit_s"].tolist() == pytest.approx([1.0, 1.3, 3.0, 3.3, 5.0, 5.3])
    assert tx["attempt"].tolist() == [0, 1, 0, 1, 0, 1]
    assert tx["request_id"].tolist() == [0, 0, 1, 1, 2, 2]
    outcomes = result.contracts.sort_values("tx_id")[["outcome", "reason"]].values.tolist()
    assert outcomes == [["approved", ""], ["denied", "duplicate claim id"]] * 3
    claims = result.claims
    assert claims["decision"].tolist() == ["approved"] * 3
    assert claims["adjudication_latency_s"].tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_without_retries_a_timed_out_request_fails_but_a_late_commit_still_completes_it(tmp_path: Path) -> None:
    trace = tmp_path / "claims.csv"
    trace.write_text(TRACE)
    scenario = small_scenario(
        network__nodes=1, protocol__name="solo", protocol__batch_timeout_s=0.5,
        node__sign_s=0.0, node__verify_s=0.0, node__hash_rate_bps=1e30, node__execute_scale=0.0,
        workload__arrival="trace", workload__trace=str(trace), workload__timeout_s=0.3,
    )  # fmt: skip
    s = sim.run(scenario).summary
    assert (s["requests"], s["timeouts"], s["retries"], s["submitted"]) == (3, 3, 0, 3)
    assert (s["requests_completed"], s["requests_failed"]) == (3, 0)  # committed at 0.5 s, after the client gave up
