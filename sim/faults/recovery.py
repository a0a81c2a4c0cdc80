"""Detection and recovery times of faults, computed from a run's tables.

For a fault starting at t0:

- ``detect_s``: time to the first election or view change anywhere (a consensus
  event of a kind in :data:`DETECTION_KINDS`) at or after t0; NaN if none (e.g. a
  follower crash needs no election).
- ``new_leader_s``: time to the first ``leader_elected`` at or after t0.
- ``recover_s``: time to the first commit after which committed throughput stays
  within ``tolerance`` (10%) of its pre-fault level r: for every later time u,
  the commits in (t, u] are at least ``(1 - tolerance) r (u - t)`` minus an
  allowance for noise, ``z sqrt(r (u - t))`` (z = 3 Poisson standard deviations)
  plus one block's worth of transactions (commits come in blocks). Only later
  times within ``horizon_s`` are checked, and the run must go on long enough after
  t for a complete stall to have been visible; otherwise, or if no commit
  qualifies, the fault never recovered (NaN, ``recovered = False``). Outages
  shorter than the noise allowance (about ``(z sqrt(r d) + block) / r`` seconds)
  are not resolved: the first commit after t0 then counts as the recovery.
- r is the committed rate over the 10 s before t0 (after warm-up); when less than
  1 s of history exists, the offered rate of the whole run.
- ``txs_delayed``: transactions submitted from one pre-fault p99 latency before t0
  until the fault's impact ends (its end or its recovery, whichever is later)
  that committed with a latency above the pre-fault p99; ``txs_dropped``: dropped
  or rejected in that span before being put in a block; ``txs_lost``: dropped in
  that span after being put in a block (e.g. uncommitted log entries overwritten);
  ``leader_changes``: leaders elected in that span.

Overlapping faults are not separated: a fault's recovery waits for every fault
that hurts throughput after it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DETECTION_KINDS", "RECOVERY_COLUMNS", "pre_fault_rate", "recovery_table", "recovery_time", "stall_status"]

#: consensus event kinds that show a protocol noticed a fault (elections, view changes)
DETECTION_KINDS = frozenset(
    {"election_started", "leader_elected", "view_change", "view_change_started", "new_view", "round_timeout", "timeout"}
)
#: allowed shortfall of throughput after recovery (10%)
TOLERANCE = 0.10
#: Poisson noise allowance in standard deviations
NOISE_Z = 3.0
#: pre-fault window, seconds
PRE_WINDOW_S = 10.0
#: later times checked after a recovery candidate, seconds
HORIZON_S = 60.0

RECOVERY_COLUMNS = [
    "fault", "label", "kind", "nodes", "start_s", "end_s", "pre_tps", "detect_s", "new_leader_s",
    "recover_s", "recovered", "leader_changes", "txs_delayed", "txs_dropped", "txs_lost", "detail",
]  # fmt: skip


def pre_fault_rate(decided_s: np.ndarray, submit_s: np.ndarray, t0: float, warmup_s: float, duration_s: float) -> tuple[float, float]:
    """(committed tx/s before t0, length of the window used; 0 if the offered rate was used)."""
    window_s = min(PRE_WINDOW_S, t0 - warmup_s)
    if window_s >= 1.0:
        count = int(((decided_s >= t0 - window_s) & (decided_s < t0)).sum())
        if count:
            return count / window_s, window_s
    return (len(submit_s) / duration_s if duration_s > 0 else 0.0), 0.0


def _min_span_s(rate: float, lump: float) -> float:
    """Shortest span over which a complete stall exceeds the noise allowance."""
    keep = 1.0 - TOLERANCE
    x = (NOISE_Z + math.sqrt(NOISE_Z**2 + 4 * keep * (lump + 1.0))) / (2 * keep)
    return x * x / rate


def recovery_time(decided_s: np.ndarray, t0: float, rate: float, lump: float, end_s: float) -> float:
    """Seconds from ``t0`` to recovery (see the module docstring); NaN if never.

    Args:
        decided_s: decision times of committed transactions (any order, NaN ignored).
        t0: fault start, seconds.
        rate: pre-fault committed rate, tx/s (> 0).
        lump: transactions per block decision before the fault (noise allowance).
        end_s: end of the run, seconds.
    """
    times = np.sort(decided_s[~np.isnan(decided_s) & (decided_s >= t0)])
    if rate <= 0 or not len(times):
        return math.nan
    u, counts = np.unique(times, return_counts=True)
    before = np.concatenate(([0], np.cumsum(counts)))  # commits strictly before u[k]
    total = int(before[-1])
    keep = 1.0 - TOLERANCE
    min_span = _min_span_s(rate, lump)
    for i in range(len(u)):
        t = u[i]
        if end_s - t < min_span:
            return math.nan
        after = before[i + 1]  # commits at or before t
        k_hi = int(np.searchsorted(u, t + HORIZON_S, side="right"))
        span = u[i + 1 : k_hi] - t
        got = before[i + 1 : k_hi] - after  # commits in (t, u_k), excluding u_k
        need = keep * rate * span - NOISE_Z * np.sqrt(rate * span) - lump
        if np.any(got < need):
            continue
        if end_s - t <= HORIZON_S:  # the stretch from the last commit to the end counts too
            span_end = end_s - t
            if total - after < keep * rate * span_end - NOISE_Z * math.sqrt(rate * span_end) - lump:
                continue
        return float(t - t0)
    return math.nan


def stall_status(transactions: pd.DataFrame, duration_s: float, stall_after_s: float) -> dict[str, Any]:
    """``stalled``: load offered but nothing committed in the last ``stall_after_s``; ``last_commit_s``."""
    decided = transactions["decided_s"].to_numpy()
    last = float(np.nanmax(decided)) if np.isfinite(decided).any() else math.nan
    since = duration_s - stall_after_s
    offered = bool((transactions["submit_s"].to_numpy() >= since).any())
    committed = bool((decided >= since).any())
    return {"stalled": offered and not committed, "last_commit_s": last}


def _first_after(consensus: pd.DataFrame, kinds: Iterable[str], t0: float) -> float:
    if consensus.empty:
        return math.nan
    rows = consensus[consensus["kind"].isin(list(kinds)) & (consensus["time_s"] >= t0)]
    return float(rows["time_s"].min() - t0) if len(rows) else math.nan


def recovery_table(
    windows: Iterable[Any],
    transactions: pd.DataFrame,
    consensus: pd.DataFrame,
    warmup_s: float,
    duration_s: float,
    details: dict[int, str] | None = None,
) -> pd.DataFrame:
    """One row per fault that started: detection, recovery and impact (see the module docstring)."""
    decided = transactions["decided_s"].to_numpy()
    submit = transactions["submit_s"].to_numpy()
    commit = transactions["commit_s"].to_numpy()
    latency = transactions["latency_s"].to_numpy()
    dropped_s = transactions["dropped_s"].to_numpy()
    proposed = transactions["proposed_s"].to_numpy()
    elected = consensus.loc[consensus["kind"] == "leader_elected", "time_s"].to_numpy() if len(consensus) else np.array([])
    rows = []
    for w in windows:
        t0 = w.start_s
        rate, window_s = pre_fault_rate(decided, submit, t0, warmup_s, duration_s)
        lump = 1.0
        pre = decided[(decided >= t0 - window_s) & (decided < t0)] if window_s else np.array([])
        if len(pre):
            lump = float(np.percentile(np.unique(pre, return_counts=True)[1], 95))
        recover = recovery_time(decided, t0, rate, lump, duration_s)
        end = w.end_s if math.isfinite(w.end_s) else duration_s
        impact_end = max(end, t0 + recover) if math.isfinite(recover) else duration_s
        pre_lat = latency[(commit >= t0 - window_s) & (commit < t0)] if window_s else np.array([])
        p99 = float(np.percentile(pre_lat, 99)) if len(pre_lat) else math.nan
        if math.isfinite(p99):
            span = (submit >= t0 - p99) & (submit <= impact_end)
            delayed = int((span & (latency > p99)).sum())
        else:
            delayed = math.nan  # no pre-fault latencies to compare with
        gone = (dropped_s >= t0) & (dropped_s <= impact_end)
        rows.append(
            {
                "fault": w.fault,
                "label": w.label,
                "kind": w.kind,
                "nodes": ",".join(map(str, w.nodes)),
                "start_s": t0,
                "end_s": w.end_s,
                "pre_tps": rate,
                "detect_s": _first_after(consensus, DETECTION_KINDS, t0),
                "new_leader_s": _first_after(consensus, ["leader_elected"], t0),
                "recover_s": recover,
                "recovered": bool(math.isfinite(recover)),
                "leader_changes": int(((elected >= t0) & (elected <= impact_end)).sum()),
                "txs_delayed": delayed,
                "txs_dropped": int((gone & np.isnan(proposed)).sum()),
                "txs_lost": int((gone & ~np.isnan(proposed)).sum()),
                "detail": "; ".join(x for x in (w.detail, (details or {}).get(w.fault, "")) if x),
            }
        )
    return pd.DataFrame(rows, columns=RECOVERY_COLUMNS)
