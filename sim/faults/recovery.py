"""Detection and recovery times of faults, computed from a run's tables.

For a fault starting at t0:

- ``detect_s``: time to the first election, view change or consensus timeout
  anywhere (a consensus event of a kind in :data:`DETECTION_KINDS`) at or after t0;
  NaN if none (e.g. a follower crash needs no election). A routine leader rotation
  is not a detection.
- ``new_leader_s``: time to the first ``leader_elected`` at or after t0.
- ``recover_s``: time to the first commit after which committed throughput is
  back within 10% of its pre-fault level. The level is the load offered at nodes
  that are up (a crashed hospital's clients cannot submit, so their claims are
  not expected), times the pre-fault ratio of committed to offered, shifted by
  the pre-fault median latency L: the expected commits by time u are
  E(u) = ratio * (offered in [t0 - L, u - L)). The shortfall
  S(u) = 0.9 E(u) - (commits in [t0, u)) grows during the fault's impact and
  shrinks by at least 10% of the rate once throughput is back, so recovery is the
  commit at which S peaks (searched until 60 s after the fault ends). The peak is
  an impact if it exceeds the noise allowance (one block of transactions plus the
  commits that the pre-fault latency spread p5..p95 can shift across a boundary,
  plus 3 standard deviations of their count) or if commits stopped for longer than
  3 times the longest pre-fault gap between commits; otherwise the fault had no
  measurable impact and the first commit after t0 counts. If S peaks at the end
  of the search, or the run ends before a stall of that size could show, the
  fault never recovered (NaN, ``recovered = False``).
- Pre-fault figures come from the 10 s before t0 (longer at low rates: long
  enough for 100 offered transactions; never before warm-up), or from the whole
  run when less than 1 s of history exists.
- ``txs_delayed``: transactions submitted from one pre-fault p99 latency before t0
  until the fault's impact ends (its end or its recovery, whichever is later)
  that committed with a latency above 1.5 times the pre-fault p99 (the margin
  keeps the ordinary tail out when latencies cluster tightly); ``txs_dropped``:
  dropped or rejected in that span before being put in a block; ``txs_lost``:
  dropped in that span after being put in a block (e.g. uncommitted log entries
  overwritten); ``leader_changes``: leaders elected in that span.

Overlapping faults are not separated: a fault's recovery waits for every fault
that hurts throughput after it. A churn is measured from its first crash to its
second (its later crashes would otherwise count against the first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DETECTION_KINDS",
    "RECOVERY_COLUMNS",
    "Baseline",
    "baseline",
    "recovery_table",
    "recovery_time",
    "stall_status",
]

#: consensus event kinds that show a protocol noticed a fault: elections, view changes and
#: the timeouts of rotating-leader protocols (HotStuff's pacemaker, Tendermint's round steps).
#: Not ``leader_elected``: HotStuff and Tendermint record it at every routine rotation, and
#: Raft records ``election_started`` before it.
DETECTION_KINDS = frozenset(
    {
        "election_started", "view_change", "view_change_started", "new_view", "round_timeout", "timeout",
        "view_timeout", "timeout_propose", "timeout_prevote", "timeout_precommit",
    }
)  # fmt: skip
#: allowed shortfall of throughput after recovery (10%)
TOLERANCE = 0.10
#: noise allowance in standard deviations
NOISE_Z = 3.0
#: pre-fault window: at least this long, seconds ...
PRE_WINDOW_S = 10.0
#: ... and long enough for this many offered transactions
PRE_WINDOW_TX = 100.0
#: how long after a fault ends its recovery is searched for, seconds
HORIZON_S = 60.0
#: a pause in commits this many times the longest pre-fault pause is an outage
GAP_FACTOR = 3.0
#: a transaction is delayed by a fault if its latency exceeds this many pre-fault p99 latencies
DELAY_FACTOR = 1.5
#: drop reason of a transaction submitted at a node that is down (not offered load)
ORIGIN_DOWN = "origin node down"

RECOVERY_COLUMNS = [
    "fault", "label", "kind", "nodes", "start_s", "end_s", "pre_tps", "detect_s", "new_leader_s",
    "recover_s", "recovered", "leader_changes", "txs_delayed", "txs_dropped", "txs_lost", "detail",
]  # fmt: skip


@dataclass(frozen=True)
class Baseline:
    """Pre-fault behaviour a fault's impact is measured against.

    Attributes:
        rate_tps: committed transactions per second.
        ratio: committed / offered (1 for an unsaturated system).
        latency_s: median latency L (offered at s commits at about s + L).
        allowance_tx: shortfall within noise, transactions.
        gap_s: a pause in commits longer than this is an outage, seconds.
        p99_s: 99th percentile latency (NaN if unknown).
    """

    rate_tps: float
    ratio: float
    latency_s: float
    allowance_tx: float
    gap_s: float
    p99_s: float


def baseline(transactions: pd.DataFrame, t0: float, warmup_s: float, duration_s: float) -> Baseline:
    """The :class:`Baseline` of the 10 s before ``t0`` (the whole run without 1 s of history)."""
    decided = transactions["decided_s"].to_numpy()
    commit = transactions["commit_s"].to_numpy()
    offered = transactions["submit_s"].to_numpy()[transactions["reason"].to_numpy() != ORIGIN_DOWN]
    rate_offered = len(offered) / duration_s if duration_s > 0 else 0.0
    window_s = min(max(PRE_WINDOW_S, PRE_WINDOW_TX / rate_offered if rate_offered else 0.0), t0 - warmup_s)
    lo, hi = (t0 - window_s, t0) if window_s >= 1.0 else (warmup_s, duration_s)
    span_s = max(hi - lo, 1e-9)
    done = decided[(decided >= lo) & (decided < hi)]
    latency = transactions["latency_s"].to_numpy()[(commit >= lo) & (commit < hi)]
    latency = latency[np.isfinite(latency)]
    if not len(done) or not len(latency):
        return Baseline(0.0, 1.0, 0.0, math.inf, math.inf, math.nan)
    median = float(np.median(latency))
    p5, p95, p99 = np.percentile(latency, [5, 95, 99])
    sent = int(((offered >= lo - median) & (offered < hi - median)).sum())
    ratio = min(1.0, len(done) / sent) if sent else 1.0
    rate = len(done) / span_s
    times, lumps = np.unique(done, return_counts=True)
    lump = float(np.percentile(lumps, 95))
    shift = lump + rate * float(p95 - p5) + 1.0
    gaps = np.diff(times)
    gap = GAP_FACTOR * float(gaps.max()) if len(gaps) else math.inf
    return Baseline(rate, ratio, median, shift + NOISE_Z * math.sqrt(shift), gap, float(p99))


def recovery_time(decided_s: np.ndarray, offered_s: np.ndarray, t0: float, base: Baseline, search_end_s: float, run_end_s: float) -> float:
    """Seconds from ``t0`` to recovery (see the module docstring); NaN if never.

    Args:
        decided_s: decision times of committed transactions (any order, NaN ignored).
        offered_s: submission times of the offered load (origins that were up).
        t0: fault start, seconds.
        base: the pre-fault baseline.
        search_end_s: last time the shortfall's peak is searched for, seconds.
        run_end_s: end of the run, seconds.
    """
    if base.rate_tps <= 0:
        return math.nan
    times = decided_s[np.isfinite(decided_s) & (decided_s >= t0) & (decided_s <= search_end_s)]
    if not len(times):
        return math.nan
    u, counts = np.unique(times, return_counts=True)
    points = np.append(u, search_end_s)
    committed = np.concatenate(([0], np.cumsum(counts)))  # commits in [t0, point)
    due = np.sort(offered_s[offered_s >= t0 - base.latency_s]) + base.latency_s
    expected = base.ratio * np.searchsorted(due, points, side="left")
    shortfall = (1.0 - TOLERANCE) * expected - committed
    peak = int(np.argmax(shortfall))
    longest_pause = float(np.max(np.diff(np.concatenate(([t0], u[: peak + 1]))))) if peak < len(u) else math.inf
    if shortfall[peak] <= base.allowance_tx and longest_pause <= base.gap_s:
        return float(u[0] - t0)  # no measurable impact
    stall_needs_s = base.allowance_tx / ((1.0 - TOLERANCE) * base.ratio * base.rate_tps)
    if peak == len(u) or run_end_s - u[peak] < max(stall_needs_s, base.gap_s):
        return math.nan
    return float(u[peak] - t0)


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
    offered = submit[transactions["reason"].to_numpy() != ORIGIN_DOWN]
    latency = transactions["latency_s"].to_numpy()
    dropped_s = transactions["dropped_s"].to_numpy()
    proposed = transactions["proposed_s"].to_numpy()
    elected = consensus.loc[consensus["kind"] == "leader_elected", "time_s"].to_numpy() if len(consensus) else np.array([])
    rows = []
    for w in windows:
        t0 = w.start_s
        base = baseline(transactions, t0, warmup_s, duration_s)
        end = w.end_s if math.isfinite(w.end_s) else duration_s
        search_end = getattr(w, "search_end_s", math.nan)
        search_end = min(duration_s, end + HORIZON_S) if math.isnan(search_end) else search_end
        recover = recovery_time(decided, offered, t0, base, search_end, duration_s)
        impact_end = max(end, t0 + recover) if math.isfinite(recover) else duration_s
        if math.isfinite(base.p99_s):
            span = (submit >= t0 - base.p99_s) & (submit <= impact_end)
            delayed: float = int((span & (latency > DELAY_FACTOR * base.p99_s)).sum())
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
                "pre_tps": base.rate_tps,
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
