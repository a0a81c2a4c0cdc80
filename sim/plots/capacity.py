"""Figures of load over time and of capacity searches."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes


from sim.plots.common import _axes

# ------------------------------------------------------------------- capacity


def latency_by_period(transactions: pd.DataFrame, period_s: float, quantile: float = 0.99) -> pd.DataFrame:
    """Latency quantile of the committed transactions submitted in each period (e.g. each hour of a day).

    Args:
        transactions: the ``transactions`` table (``submit_s``, ``latency_s``).
        period_s: period length, seconds; period ``k`` is ``[k * period_s, (k + 1) * period_s)``.
        quantile: in [0, 1] (0.99 for the p99).

    Returns:
        One row per period that had a submission: ``period``, ``start_s``, ``submitted``,
        ``committed`` and ``latency_q_s`` (NaN when nothing submitted in it committed).
    """
    tx = transactions
    period = np.floor(tx["submit_s"].to_numpy(dtype=float) / period_s).astype(int)
    frame = pd.DataFrame({"period": period, "latency_s": tx["latency_s"].to_numpy(dtype=float)})
    grouped = frame.groupby("period")["latency_s"]
    out = pd.DataFrame({
        "submitted": grouped.size(),
        "committed": grouped.count(),
        "latency_q_s": grouped.quantile(quantile),
    }).reset_index()
    out.insert(1, "start_s", out["period"] * period_s)
    return out


def latency_quantile_by_period(
    transactions: pd.DataFrame,
    period_s: float,
    quantile: float = 0.99,
    slo_s: float | None = None,
    ax: Axes | None = None,
    label: str | None = None,
) -> Axes:
    """The latency quantile per period (:func:`latency_by_period`) as a line, with the SLO bound dashed.

    Periods where nothing committed are left out (a gap in the line).
    """
    ax = _axes(ax)
    table = latency_by_period(transactions, period_s, quantile)
    ax.plot(table["period"], table["latency_q_s"], marker="o", markersize=3, label=label or f"p{100 * quantile:g}")
    if slo_s is not None:
        ax.axhline(slo_s, color="tab:red", linestyle="--", linewidth=1, label=f"SLO {slo_s:g} s")
    ax.set_xlabel(f"period ({period_s:g} s each)")
    ax.set_ylabel("latency (s)")
    ax.set_title(f"p{100 * quantile:g} latency per period")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def capacity_search(
    result: object,
    metric: str = "latency_p99_s",
    bound: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Each value a capacity search evaluated: ``metric`` (mean, 95% CI), green if it met the SLO, red if not.

    Args:
        result: a :class:`~sim.experiment.capacity.CapacityResult`.
        metric: one of the metrics its evaluations recorded (the SLO metrics and ``throughput_tps``).
        bound: draw the SLO bound as a horizontal dashed line.
    """
    ax = _axes(ax)
    evaluations = sorted(result.evaluations, key=lambda e: e.value)  # type: ignore[attr-defined]
    for meets, color, text in ((True, "tab:green", "meets the SLO"), (False, "tab:red", "fails")):
        rows = [e for e in evaluations if e.meets is meets and metric in e.metrics]
        if rows:
            ax.errorbar(
                [e.value for e in rows],
                [e.metrics[metric][0] for e in rows],
                yerr=[float(np.nan_to_num(e.metrics[metric][1], nan=0.0)) for e in rows],
                fmt="o", color=color, capsize=3, label=text,
            )
    capacity = result.capacity  # type: ignore[attr-defined]
    if capacity is not None:
        ax.axvline(capacity, color="black", linestyle=":", linewidth=1, label=f"capacity {capacity:g}")
    if bound is not None:
        ax.axhline(bound, color="tab:red", linestyle="--", linewidth=1, label=f"SLO {bound:g}")
    values = [e.value for e in evaluations]
    if values and min(values) > 0 and max(values) / min(values) >= 8:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(result.vary)  # type: ignore[attr-defined]
    ax.set_ylabel(metric)
    ax.set_title(f"Capacity search: {metric} vs {result.vary}")  # type: ignore[attr-defined]
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax
