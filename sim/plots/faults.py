"""Figures of faults: markers, downtime, recovery times, heatmaps of result tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes


from sim.plots.common import _axes

# --------------------------------------------------------------------- faults

#: colour of each fault action in :func:`fault_markers` (others are grey)
FAULT_ACTION_COLORS = {
    "crash": "tab:red",
    "recover": "tab:green",
    "start": "black",
    "heal": "tab:purple",
    "end": "tab:purple",
}


def fault_markers(faults: pd.DataFrame, ax: Axes, legend: bool = True) -> Axes:
    """Mark the faults' own actions (crash, recover, partition start, heal, ...) on a time axis.

    Args:
        faults: the ``faults`` table; catch-up rows (``fault`` < 0) are left out.
        ax: axes whose x axis is simulated time in seconds.
        legend: redraw the legend with one entry per action ("crash", "partition start", ...).
    """
    rows = faults[faults["fault"] >= 0] if "fault" in faults.columns else faults
    kinds = rows["kind"] if "kind" in rows.columns else [""] * len(rows)
    seen: set[str] = set()
    dense = len(rows) > 20  # a churn: thin lines
    for time_s, action, kind in zip(rows["time_s"], rows["action"], kinds):
        text = action if action in ("crash", "recover") or not kind else f"{kind} {action}"
        label = text if text not in seen else "_nolegend_"
        seen.add(text)
        ax.axvline(time_s, color=FAULT_ACTION_COLORS.get(action, "grey"), linestyle="--",
                   linewidth=0.6 if dense else 1.2, alpha=0.6 if dense else 0.9, label=label)
    if legend and seen:
        ax.legend(loc="lower right", fontsize="small")
    return ax


def down_intervals(faults: pd.DataFrame, duration_s: float) -> dict[int, list[tuple[float, float]]]:
    """Per node, the (start, end) seconds it was crashed, from the crash and recover rows."""
    down: dict[int, list[tuple[float, float]]] = {}
    since: dict[int, float] = {}
    rows = faults[faults["action"].isin(["crash", "recover"])].sort_values("time_s", kind="stable")
    for time_s, action, nodes in zip(rows["time_s"], rows["action"], rows["nodes"]):
        for node in (int(x) for x in str(nodes).split(",") if x != ""):
            if action == "crash":
                since.setdefault(node, float(time_s))
            elif node in since:
                down.setdefault(node, []).append((since.pop(node), float(time_s)))
    for node, start_s in since.items():
        down.setdefault(node, []).append((start_s, duration_s))
    return down


def node_downtime(faults: pd.DataFrame, n_nodes: int, duration_s: float, ax: Axes | None = None) -> Axes:
    """When each node was down (crash to recover, or to the end of the run), one row per node."""
    ax = _axes(ax)
    for node, spans in sorted(down_intervals(faults, duration_s).items()):
        ax.broken_barh([(a, b - a) for a, b in spans], (node - 0.4, 0.8), color="tab:red")
    ax.set_yticks(range(n_nodes))
    ax.set_ylim(-0.6, n_nodes - 0.4)
    ax.set_xlim(0, duration_s)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("node")
    ax.set_title("Nodes down")
    ax.grid(axis="x", alpha=0.3)
    return ax


def throughput_by_group(
    transactions: pd.DataFrame,
    groups: dict[str, Sequence[int]],
    bin_s: float = 1.0,
    ax: Axes | None = None,
    duration_s: float | None = None,
) -> Axes:
    """Transactions per second committed at their origin, one line per group of origin nodes.

    A transaction counts at its ``commit_s`` (when its own hospital applied it), so the
    lines show which side of a partition keeps serving its clients.

    Args:
        groups: label -> origin node ids, e.g. ``{"London": [2, 5, 8], "North America": [...]}``.
        bin_s: width of the time bins, seconds.
        duration_s: end of the time axis (default: the last submission).
    """
    ax = _axes(ax)
    end_s = float(duration_s if duration_s is not None else transactions["submit_s"].max())
    edges = np.arange(0.0, end_s + bin_s, bin_s)
    for label, nodes in groups.items():
        mine = transactions[transactions["origin"].isin(list(nodes))]
        counts, _ = np.histogram(mine["commit_s"].dropna(), bins=edges)
        ax.step(edges[:-1], counts / bin_s, where="post", label=label)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("committed at origin (tx/s)")
    ax.set_title("Throughput by origin")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def recovery_times(
    runs: pd.DataFrame,
    by: str = "protocol",
    metrics: Sequence[str] = ("detect_s", "recover_s"),
    ax: Axes | None = None,
) -> Axes:
    """Distribution of fault times per group: a box and every run as a point, per metric.

    Runs where a metric is NaN (never detected, never recovered) are not drawn; their
    count is written above the group as ``never: k``.

    Args:
        runs: one row per run, with a ``by`` column and the ``metrics`` columns (seconds).
        by: the grouping column (categories in order of appearance).
    """
    import matplotlib as mpl

    ax = _axes(ax)
    groups = list(dict.fromkeys(runs[by].tolist()))
    cmap = mpl.colormaps["tab10"]
    width = 0.8 / max(1, len(metrics))
    for m, metric in enumerate(metrics):
        offset = (m - (len(metrics) - 1) / 2) * width
        color = cmap(m % 10)
        for g, name in enumerate(groups):
            values = runs.loc[runs[by] == name, metric].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            x = g + offset
            if len(finite):
                ax.boxplot([finite], positions=[x], widths=width * 0.7, showfliers=False, manage_ticks=False,
                           medianprops={"color": color}, boxprops={"color": color},
                           whiskerprops={"color": color}, capprops={"color": color})
                spread = np.linspace(-width * 0.25, width * 0.25, len(finite)) if len(finite) > 1 else np.zeros(1)
                ax.scatter(x + spread, finite, s=12, color=color, alpha=0.7, zorder=3,
                           label=metric if g == 0 else "_nolegend_")
            missing = int(len(values) - len(finite))
            if missing:
                ax.annotate(f"never: {missing}", (x, 0.98), xycoords=("data", "axes fraction"),
                            ha="center", va="top", fontsize="small", color=color)
    finite_all = runs[list(metrics)].to_numpy(dtype=float)
    finite_all = finite_all[np.isfinite(finite_all) & (finite_all > 0)]
    if len(finite_all) and finite_all.max() / finite_all.min() > 30:
        ax.set_yscale("log")
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel("seconds after the fault")
    ax.set_title("Detection and recovery times")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return ax


def table_heatmap(
    table: pd.DataFrame,
    ax: Axes | None = None,
    fmt: str = "{:.2f}",
    cmap: str = "RdYlGn",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str = "",
) -> Axes:
    """A numeric table (rows x columns) as coloured cells with each value written in; NaN cells blank."""
    ax = _axes(ax)
    values = table.to_numpy(dtype=float)
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize="small")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(r) for r in table.index])
    ax.set_xlabel(str(table.columns.name or ""))
    ax.set_ylabel(str(table.index.name or ""))
    ax.set_title(title)
    return ax
