"""Summary statistics of one run: throughput, latency percentiles, confidence intervals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["batch_means_ci95", "latency_summary", "throughput_series"]

#: Student t 0.975 quantiles for the batch-means interval (df = batches - 1).
_T975 = {4: 2.776, 9: 2.262, 19: 2.093}


def batch_means_ci95(values: np.ndarray, batches: int = 10) -> float:
    """Half-width of a 95% confidence interval of the mean by non-overlapping batch means.

    Consecutive latencies are correlated (they share queues), so the plain standard
    error would be too narrow; means of 10 consecutive batches are close to independent.
    Returns NaN with fewer than ``2 * batches`` values.
    """
    if len(values) < 2 * batches:
        return math.nan
    usable = len(values) - len(values) % batches
    means = values[:usable].reshape(batches, -1).mean(axis=1)
    t = _T975.get(batches - 1, 2.0)
    return float(t * means.std(ddof=1) / math.sqrt(batches))


def latency_summary(transactions: pd.DataFrame, warmup_s: float, duration_s: float) -> dict[str, Any]:
    """Throughput and latency over the measured window [warmup_s, duration_s].

    Throughput counts valid transactions decided (first applied anywhere) in the window;
    the offered load counts valid transactions submitted in it (what the ledger was asked
    to carry: read-only queries and invalid transactions are not in it); latency is submit
    to applied at the origin node, for valid transactions submitted in the window.
    """
    window_s = duration_s - warmup_s
    valid = (transactions["outcome"] != "invalid").to_numpy()  # invalid transactions are not throughput
    decided = transactions["decided_s"].to_numpy()
    in_window = (decided >= warmup_s) & (decided <= duration_s) & valid
    submit = transactions["submit_s"].to_numpy()
    submitted_in = (submit >= warmup_s) & valid
    lat = transactions["latency_s"].to_numpy()[submitted_in]
    lat = lat[~np.isnan(lat)]
    out: dict[str, Any] = {
        "throughput_tps": float(in_window.sum() / window_s) if window_s > 0 else math.nan,
        "offered_tps": float((submitted_in & (submit <= duration_s)).sum() / window_s) if window_s > 0 else math.nan,
        "latency_samples": len(lat),
    }
    if len(lat):
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        out.update(
            latency_mean_s=float(lat.mean()),
            latency_mean_ci95_s=batch_means_ci95(lat),
            latency_p50_s=float(p50),
            latency_p95_s=float(p95),
            latency_p99_s=float(p99),
            latency_max_s=float(lat.max()),
        )
    else:
        out.update(
            latency_mean_s=math.nan,
            latency_mean_ci95_s=math.nan,
            latency_p50_s=math.nan,
            latency_p95_s=math.nan,
            latency_p99_s=math.nan,
            latency_max_s=math.nan,
        )
    return out


def throughput_series(transactions: pd.DataFrame, duration_s: float, bin_s: float) -> pd.DataFrame:
    """Committed (decided, valid) transactions per second in bins of ``bin_s`` seconds."""
    edges = np.arange(0.0, duration_s + bin_s, bin_s)
    decided = transactions["decided_s"].to_numpy()
    keep = ~np.isnan(decided) & (transactions["outcome"] != "invalid").to_numpy()
    counts, _ = np.histogram(decided[keep], bins=edges)
    submitted, _ = np.histogram(transactions["submit_s"].to_numpy(), bins=edges)
    return pd.DataFrame(
        {
            "time_s": edges[:-1],
            "committed_tps": counts / bin_s,
            "submitted_tps": submitted / bin_s,
        }
    )
