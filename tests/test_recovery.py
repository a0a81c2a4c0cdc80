"""Detection and recovery: the measure on exact synthetic series, and Raft's election model.

Raft leader crash, model. Every node draws an election timeout uniform on [a, b]
when its timer is armed and keeps it (it is redrawn only when a node steps down
from candidate or leader, not on every heartbeat). The first election is won by
the node with the smallest draw, so the n - 1 survivors of a leader crash hold
the other n - 1 draws: the first of them to time out holds the second smallest
of n uniforms, T = a + R B with B ~ Beta(2, n - 1), R = b - a, E[T] = a + 2R/(n+1).
(Fresh draws would give E[min of n - 1] = a + R/n; the data reject that.) A
follower times out T after the last heartbeat it received, which arrived A
before the crash, A uniform on [0, heartbeat_s) when the crash time is uniform
over a heartbeat period. The candidate then needs one round trip (2 one-way
delays d, no CPU cost) for its votes, so

    crash -> election started:  T - A,        mean a + 2R/(n+1) - heartbeat_s / 2
    crash -> new leader:        T - A + 2d

Tolerance: over N seeds the mean has standard error sd/sqrt(N), with
sd^2 = R^2 * 2(n-1)/((n+1)^2 (n+2)) + heartbeat_s^2 / 12 (0.0304 s here); we
allow 4 standard errors (about 0.011 s at N = 120). Split votes would only add
delay; they need two other survivors to time out within d = 0.5 ms of the first,
which is negligible. The seeds are fixed, so the check is exact and cannot flake.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sim
from sim.faults.recovery import (
    Baseline,
    baseline,
    recovery_table,
    recovery_time,
    stall_status,
)
from tests.conftest import small_scenario

# --------------------------------------------------------- synthetic series

BASE = Baseline(rate_tps=100.0, ratio=1.0, latency_s=0.0, allowance_tx=10.0, gap_s=0.05, p99_s=0.0)


def _ticks(start_s: float, stop_s: float, step_s: float = 0.01) -> np.ndarray:
    return np.round(np.arange(start_s, stop_s - 1e-9, step_s), 9)


def test_an_outage_recovers_at_the_first_commit_after_it() -> None:
    offered = _ticks(0.0, 30.0)
    decided = np.concatenate([_ticks(0.0, 10.0), np.full(50, 10.5), _ticks(10.51, 30.0)])  # backlog flushed at 10.5
    assert recovery_time(decided, offered, 10.0, BASE, 30.0, 30.0) == pytest.approx(0.5)


def test_a_lost_backlog_still_recovers_when_the_rate_is_back() -> None:
    offered = _ticks(0.0, 30.0)
    decided = np.concatenate([_ticks(0.0, 10.0), _ticks(10.5, 30.0)])  # the 50 of the outage never commit
    assert recovery_time(decided, offered, 10.0, BASE, 30.0, 30.0) == pytest.approx(0.5)


def test_no_impact_counts_from_the_first_commit() -> None:
    offered = _ticks(0.0, 30.0)
    assert recovery_time(offered, offered, 10.0, BASE, 30.0, 30.0) == pytest.approx(0.0)
    # a pause shorter than the allowance and the gap bound is no impact either
    decided = np.concatenate([_ticks(0.0, 10.0), _ticks(10.04, 30.0)])
    assert recovery_time(decided, offered, 10.0, BASE, 30.0, 30.0) == pytest.approx(0.04)


def test_a_partial_slowdown_recovers_when_it_ends() -> None:
    offered = _ticks(0.0, 30.0)
    slow = _ticks(10.0, 15.0, 0.0125)  # 80 tx/s for 5 s: below 90%
    decided = np.concatenate([_ticks(0.0, 10.0), slow, _ticks(15.0, 30.0)])
    # on either side of the peak the shortfall moves by only 10 tx/s: located to a few commits
    assert recovery_time(decided, offered, 10.0, BASE, 30.0, 30.0) == pytest.approx(5.0, abs=0.05)


def test_never_when_commits_stop_or_stay_low_or_the_run_ends_too_soon() -> None:
    offered = _ticks(0.0, 30.0)
    assert math.isnan(recovery_time(_ticks(0.0, 10.0), offered, 10.0, BASE, 30.0, 30.0))
    half = np.concatenate([_ticks(0.0, 10.0), _ticks(10.0, 30.0, 0.02)])
    assert math.isnan(recovery_time(half, offered, 10.0, BASE, 30.0, 30.0))
    late = np.concatenate([_ticks(0.0, 10.0), _ticks(29.99, 30.0)])
    assert math.isnan(recovery_time(late, offered, 10.0, BASE, 30.0, 30.0))


def test_the_baseline_of_a_steady_table() -> None:
    submit = _ticks(0.0, 30.0)
    tx = pd.DataFrame(
        {
            "submit_s": submit,
            "decided_s": submit + 0.1,
            "commit_s": submit + 0.1,
            "latency_s": np.full(len(submit), 0.1),
            "reason": np.full(len(submit), ""),
        }
    )
    base = baseline(tx, 20.0, 1.0, 30.0)
    assert base.rate_tps == pytest.approx(100.0, rel=0.01)
    assert base.ratio == pytest.approx(1.0, abs=0.01)
    assert base.latency_s == pytest.approx(0.1)
    assert base.gap_s == pytest.approx(0.03)  # 3 x the longest pre-fault pause (10 ms)
    lump = 1.0
    assert base.allowance_tx == pytest.approx(lump + 1.0 + 3.0 * math.sqrt(lump + 1.0))


def test_stall_status() -> None:
    tx = pd.DataFrame({"submit_s": [1.0, 2.0, 9.5], "decided_s": [1.1, np.nan, np.nan]})
    assert stall_status(tx, 10.0, 5.0) == {"stalled": True, "last_commit_s": 1.1}
    assert stall_status(tx, 10.0, 9.0)["stalled"] is False
    assert stall_status(tx.iloc[:2], 10.0, 5.0)["stalled"] is False  # nothing offered: not stalled


# ------------------------------------------------------------- real runs


def test_a_follower_crash_needs_no_election_and_has_no_impact() -> None:
    probe = sim.run(small_scenario(network__nodes=5))
    leader = int(probe.consensus.loc[probe.consensus["kind"] == "leader_elected", "node_id"].iloc[0])
    follower = (leader + 1) % 5
    result = sim.run(small_scenario(network__nodes=5, faults=[{"kind": "crash", "nodes": [follower], "at_s": 4.0}]))
    row = result.recovery.iloc[0]
    assert math.isnan(row["detect_s"]) and math.isnan(row["new_leader_s"])
    assert row["recovered"] and row["recover_s"] < 0.2
    assert row["leader_changes"] == 0


def test_a_leader_crash_is_detected_then_replaced_then_recovered() -> None:
    result = sim.run(small_scenario(network__nodes=5, workload__rate_tps=100.0, faults=[{"kind": "crash", "nodes": "leader", "at_s": 4.0}]))
    row = result.recovery.iloc[0]
    assert 0.15 - 0.05 < row["detect_s"] < row["new_leader_s"] < row["recover_s"] < 1.0
    assert row["leader_changes"] == 1
    assert row["txs_dropped"] > 0  # its mempool and the claims forwarded to it in the meantime
    s = result.summary
    assert (s["detect_s"], s["recover_s"]) == (row["detect_s"], row["recover_s"])
    assert s["fault_report"][0]["recover_s"] == row["recover_s"]


def test_raft_leader_crash_matches_the_election_model() -> None:
    n, a, b, heartbeat_s, d = 5, 0.150, 0.300, 0.050, 0.0005
    R = b - a
    rng = np.random.default_rng(2024)  # crash times: uniform over a heartbeat period
    detect, new_leader, timeout = [], [], []
    for seed in range(120):
        crash_s = 1.0 + float(rng.uniform(0.0, heartbeat_s))
        scenario = small_scenario(
            seed=seed,
            duration_s=crash_s + 1.0,
            network__nodes=n,
            network__latency_s=d,
            network__bandwidth_bps=1e15,
            node__sign_s=0.0,
            node__verify_s=0.0,
            node__hash_rate_bps=1e30,
            workload__rate_tps=0.0,
            faults=[{"kind": "crash", "nodes": "leader", "at_s": crash_s}],
        )
        result = sim.run(scenario)
        row = result.recovery.iloc[0]
        detect.append(row["detect_s"])
        new_leader.append(row["new_leader_s"])
        # the last heartbeat reached the followers A before the crash (heartbeats leave the
        # leader every heartbeat_s from its election and take d)
        elected_s = result.consensus.loc[result.consensus["kind"] == "leader_elected", "time_s"].iloc[0]
        age_s = crash_s - (elected_s + math.floor((crash_s - d - elected_s) / heartbeat_s) * heartbeat_s + d)
        timeout.append(row["detect_s"] + age_s)
    detect_a, new_a, timeout_a = np.array(detect), np.array(new_leader), np.array(timeout)

    assert np.allclose(new_a - detect_a, 2 * d, atol=1e-9)  # one round trip for the votes, every time
    expected = a + 2 * R / (n + 1) - heartbeat_s / 2 + 2 * d
    sd = math.sqrt(R**2 * 2 * (n - 1) / ((n + 1) ** 2 * (n + 2)) + heartbeat_s**2 / 12)
    se = sd / math.sqrt(len(new_a))
    assert new_a.std() == pytest.approx(sd, rel=0.15)
    assert abs(new_a.mean() - expected) < 4 * se, (new_a.mean(), expected, se)
    fresh_draws = a + R / n - heartbeat_s / 2 + 2 * d
    assert abs(new_a.mean() - fresh_draws) > 4 * se  # the survivors' timeouts are not fresh draws
    # the timeout that fired: within [a, b] and distributed as the 2nd smallest of n uniforms
    assert timeout_a.min() >= a - 1e-9 and timeout_a.max() <= b + 1e-9
    assert stats.kstest((timeout_a - a) / R, stats.beta(2, n - 1).cdf).pvalue > 0.01


# ------------------------------------------------- detection with rotating leaders


def test_a_routine_rotation_is_not_a_detection_but_a_timeout_is() -> None:
    submit = _ticks(0.0, 30.0)
    nan = np.full(len(submit), np.nan)
    tx = pd.DataFrame(
        {"submit_s": submit, "proposed_s": submit, "decided_s": submit + 0.1, "commit_s": submit + 0.1,
         "latency_s": np.full(len(submit), 0.1), "reason": np.full(len(submit), ""), "dropped_s": nan}
    )  # fmt: skip
    window = SimpleNamespace(fault=0, label="", kind="crash", nodes=[1], start_s=10.0, end_s=20.0, detail="")
    rows = [(9.9, "leader_elected"), (10.1, "leader_elected"), (10.2, "block_committed"), (10.2, "leader_elected")]
    consensus = pd.DataFrame(rows, columns=["time_s", "kind"]).assign(node_id=0)
    row = recovery_table([window], tx, consensus, 1.0, 30.0).iloc[0]
    assert math.isnan(row["detect_s"]) and row["new_leader_s"] == pytest.approx(0.1)
    for kind in ("view_timeout", "timeout_propose", "timeout_prevote", "timeout_precommit", "election_started"):
        timed_out = pd.concat([consensus, pd.DataFrame({"time_s": [11.0], "kind": [kind], "node_id": [2]})], ignore_index=True)
        assert recovery_table([window], tx, timed_out, 1.0, 30.0).iloc[0]["detect_s"] == pytest.approx(1.0), kind


@pytest.mark.parametrize(("protocol", "timeout_kind"), [("hotstuff", "view_timeout"), ("tendermint", "timeout_propose")])
def test_a_bft_leader_crash_is_detected_by_its_timeout(protocol: str, timeout_kind: str) -> None:
    crash_s = 4.0
    result = sim.run(
        small_scenario(
            protocol__name=protocol, workload__rate_tps=100.0, faults=[{"kind": "crash", "nodes": "leader", "at_s": crash_s}]
        )
    )
    c = result.consensus
    first_timeout_s = c.loc[(c["kind"] == timeout_kind) & (c["time_s"] >= crash_s), "time_s"].min() - crash_s
    row = result.recovery.iloc[0]
    assert row["detect_s"] == pytest.approx(first_timeout_s)
    assert 0.0 < row["detect_s"] < row["new_leader_s"]
    # before the fix, the next routine rotation (a leader_elected row) counted as detection
    elected = c.loc[(c["kind"] == "leader_elected") & (c["time_s"] >= crash_s), "time_s"]
    assert row["new_leader_s"] == pytest.approx(elected.min() - crash_s)
