"""The figures shared by notebooks and ``hcsim report``/``hcsim run``.

Every function takes tidy tables (never a Simulation), draws on a given
``Axes`` (or a new one) and returns it, so notebooks can compose them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sim.experiment.result import RunResult

__all__ = [
    "FAULT_ACTION_COLORS",
    "capacity_search",
    "cpu_by_node",
    "down_intervals",
    "fault_markers",
    "first_crossing",
    "latency_by_period",
    "latency_cdf",
    "latency_quantile_by_period",
    "messages_by_node",
    "metric_vs_parameter",
    "network_map",
    "node_downtime",
    "node_roles",
    "overview_figure",
    "recovery_times",
    "save_figure",
    "scaling_exponent",
    "scaling_figure",
    "table_heatmap",
    "throughput_by_group",
    "validation_chart",
    "throughput_over_time",
]


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(6, 4)).add_subplot()


def throughput_over_time(
    throughput: pd.DataFrame,
    ax: Axes | None = None,
    fault_times_s: Sequence[float] = (),
    label: str | None = None,
    show_offered: bool = True,
) -> Axes:
    """Committed (and offered) transactions per second over simulated time.

    Args:
        throughput: the ``throughput`` table (time_s, committed_tps, submitted_tps).
        fault_times_s: times to mark with vertical lines (fault injections).
    """
    ax = _axes(ax)
    ax.step(throughput["time_s"], throughput["committed_tps"], where="post", label=label or "committed")
    if show_offered and "submitted_tps" in throughput:
        ax.step(throughput["time_s"], throughput["submitted_tps"], where="post", alpha=0.5, linestyle=":", label="offered")
    for t in fault_times_s:
        ax.axvline(t, color="tab:red", linestyle="--", linewidth=1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("transactions per second")
    ax.set_title("Throughput over time")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return ax


def latency_cdf(
    transactions: pd.DataFrame,
    ax: Axes | None = None,
    by: str | None = "tx_type",
    label: str | None = None,
    warmup_s: float = 0.0,
) -> Axes:
    """Empirical CDF of submit-to-commit latency, one curve per value of ``by``."""
    ax = _axes(ax)
    done = transactions[(transactions["submit_s"] >= warmup_s) & transactions["latency_s"].notna()]
    groups = [(label or "all", done)] if by is None else [(f"{label + ' ' if label else ''}{k}", g) for k, g in done.groupby(by, observed=True)]
    for name, group in groups:
        lat = np.sort(group["latency_s"].to_numpy())
        if len(lat):
            ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=str(name))
    for q, style in ((0.5, ":"), (0.99, "--")):
        ax.axhline(q, color="grey", linestyle=style, linewidth=0.8)
    ax.set_xlabel("latency, submit to commit at origin (s)")
    ax.set_ylabel("fraction of transactions")
    ax.set_title("Latency CDF")
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return ax


def overview_figure(result: RunResult) -> Figure:
    """Two panels for one run: throughput over time and the latency CDF."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    faults = result.tables.get("faults")
    if faults is not None and "fault" in faults.columns:  # the faults' own actions, not catch-up rows
        faults = faults[faults["fault"] >= 0]
    times = faults["time_s"].tolist() if faults is not None and len(faults) else []
    throughput_over_time(result.throughput, ax=left, fault_times_s=times)
    latency_cdf(result.transactions, ax=right, warmup_s=result.scenario.warmup_s)
    s = result.summary
    fig.suptitle(
        f"{result.scenario.name}: {s['protocol']}, {s['nodes']} nodes, "
        f"{s['throughput_tps']:.1f} tx/s, p99 {s['latency_p99_s']:.3f} s"
    )
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats``; close it; return the paths."""
    import matplotlib.pyplot as plt

    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = base.with_suffix(f".{fmt}")
        fig.savefig(target, dpi=120, bbox_inches="tight")
        written.append(target)
    plt.close(fig)
    return written


# ----------------------------------------------------------- one run: load and map


def cpu_by_node(nodes: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Time-weighted CPU utilization of every node (the ``nodes`` table), as bars coloured by region."""
    ax = _axes(ax)
    colors = _region_colors(nodes["region"].tolist())
    ax.bar(nodes["node_id"], nodes["cpu_utilization"] * 100, color=[colors[r] for r in nodes["region"]])
    ax.set_xlabel("node")
    ax.set_ylabel("CPU utilization (%)")
    ax.set_title("CPU load per node")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    _region_legend(ax, colors)
    return ax


def messages_by_node(messages: pd.DataFrame, ax: Axes | None = None, n_nodes: int | None = None) -> Axes:
    """Messages sent and received per node (the ``messages`` table), summed over message types."""
    ax = _axes(ax)
    per_node = messages.groupby("node_id")[["sent_count", "received_count"]].sum()
    if n_nodes is not None:
        per_node = per_node.reindex(range(n_nodes), fill_value=0)
    x = per_node.index.to_numpy()
    ax.bar(x - 0.2, per_node["sent_count"], width=0.4, label="sent")
    ax.bar(x + 0.2, per_node["received_count"], width=0.4, label="received")
    ax.set_xlabel("node")
    ax.set_ylabel("messages")
    ax.set_title("Message load per node")
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return ax


def _region_colors(regions: Sequence[str]) -> dict[str, object]:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10"]
    return {r: cmap(i % 10) for i, r in enumerate(dict.fromkeys(regions))}


def _region_legend(ax: Axes, colors: dict[str, object]) -> None:
    from matplotlib.patches import Patch

    if len(colors) > 1:
        ax.legend(handles=[Patch(color=c, label=r) for r, c in colors.items()], loc="upper right", fontsize="small")


def node_roles(n_nodes: int, blocks: pd.DataFrame | None) -> list[str]:
    """Each node's role from the ``blocks`` table: "leader" (proposed the most blocks),
    "proposer" (proposed some) or "replica"."""
    roles = ["replica"] * n_nodes
    if blocks is not None and len(blocks) and "proposer" in blocks:
        counts = blocks["proposer"].value_counts()
        for node, _count in counts.items():
            if 0 <= int(node) < n_nodes:
                roles[int(node)] = "proposer"
        roles[int(counts.idxmax())] = "leader"
    return roles


def _layout(graph: object, regions: Sequence[str]) -> dict[int, tuple[float, float]]:
    """Positions: given ``pos`` attributes, else nodes grouped around one circle per region."""
    import networkx as nx

    assert isinstance(graph, nx.Graph)
    if all("pos" in graph.nodes[i] for i in graph.nodes):
        return {i: graph.nodes[i]["pos"] for i in graph.nodes}
    groups: dict[str, list[int]] = {}
    for node, region in enumerate(regions):
        groups.setdefault(region, []).append(node)
    if len(groups) == 1:
        return nx.circular_layout(graph)
    pos = {}
    k = len(groups)
    for g, members in enumerate(groups.values()):
        cx, cy = np.cos(2 * np.pi * g / k), np.sin(2 * np.pi * g / k)
        radius = 0.12 + 0.25 * min(1.0, len(members) / 30)
        for j, node in enumerate(members):
            angle = 2 * np.pi * j / max(1, len(members))
            pos[node] = (cx + radius * np.cos(angle), cy + radius * np.sin(angle))
    return pos


def network_map(
    topology: object,
    ax: Axes | None = None,
    roles: Sequence[str] | None = None,
    up: Sequence[bool] | None = None,
    max_edges: int = 20_000,
) -> Axes:
    """The overlay drawn with networkx: nodes coloured by region, shaped by role.

    Args:
        topology: a :class:`sim.network.topology.Topology` (rebuild a finished run's with
            :func:`sim.experiment.simulation.scenario_topology`).
        roles: per node "leader" (star), "proposer" (diamond) or "replica" (circle).
        up: per node; nodes down at the end get a red outline.
        max_edges: above this many links only nodes are drawn (a 1,000-node mesh has 500k).
    """
    import networkx as nx
    from matplotlib.lines import Line2D

    ax = _axes(ax)
    graph = topology.graph  # type: ignore[attr-defined]
    regions = list(topology.region)  # type: ignore[attr-defined]
    n = len(regions)
    roles = list(roles) if roles is not None else ["replica"] * n
    pos = _layout(graph, regions)
    colors = _region_colors(regions)
    edges = graph.number_of_edges()
    if 0 < edges <= max_edges:
        nx.draw_networkx_edges(graph, pos, ax=ax, alpha=max(0.03, min(0.5, 30 / edges)), width=0.6)
    size = 300 if n <= 32 else max(20, 9600 // n)
    for role, marker in (("replica", "o"), ("proposer", "D"), ("leader", "*")):
        members = [i for i in range(n) if roles[i] == role]
        if members:
            nx.draw_networkx_nodes(
                graph, pos, nodelist=members, ax=ax, node_shape=marker,
                node_size=size * (2.2 if role == "leader" else 1), node_color=[colors[regions[i]] for i in members],
                edgecolors=["tab:red" if up is not None and not up[i] else "black" for i in members],
                linewidths=[2.5 if up is not None and not up[i] else 0.5 for i in members],
            )
    if n <= 40:
        nx.draw_networkx_labels(graph, pos, ax=ax, font_size=7)
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=r, markersize=8) for r, c in colors.items()]
    handles += [Line2D([], [], marker=m, linestyle="", color="grey", label=role, markersize=9)
                for role, m in (("leader", "*"), ("proposer", "D")) if role in roles]
    if up is not None and not all(up):
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="tab:red", label="down at end"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    title = f"Network: {topology.name}, {n} nodes, {edges} links"  # type: ignore[attr-defined]
    ax.set_title(title if edges <= max_edges else title + " (links not drawn)")
    ax.set_axis_off()
    return ax


# --------------------------------------------------------------------- sweeps


def metric_vs_parameter(
    points: pd.DataFrame,
    x: str,
    metric: str,
    hue: str | None = None,
    ax: Axes | None = None,
    label: str | None = None,
) -> Axes:
    """Mean of ``metric`` against parameter ``x`` with a 95% confidence band, one line per ``hue``.

    Args:
        points: the sweep's ``points`` table (``<metric>_mean`` and ``<metric>_ci95`` columns).
        x: a parameter column (numeric: lines and bands; otherwise bars with error bars).
        hue: a column to split by (e.g. ``"protocol.name"``), or None.
    """
    ax = _axes(ax)
    mean, half = f"{metric}_mean", f"{metric}_ci95"
    groups = [(None, points)] if hue is None else list(points.groupby(hue, sort=False))
    numeric = pd.api.types.is_numeric_dtype(points[x])
    width = 0.8 / max(1, len(groups))
    categories = list(dict.fromkeys(points[x].tolist()))
    for k, (name, group) in enumerate(groups):
        group = group.sort_values(x) if numeric else group
        y = group[mean].to_numpy(dtype=float)
        err = np.nan_to_num(group[half].to_numpy(dtype=float), nan=0.0)
        text = str(name) if name is not None else (label or metric)
        if numeric:
            xs = group[x].to_numpy(dtype=float)
            line = ax.plot(xs, y, marker="o", label=text)[0]
            ax.fill_between(xs, y - err, y + err, alpha=0.2, color=line.get_color(), linewidth=0)
        else:
            xs = np.array([categories.index(v) for v in group[x]]) + (k - (len(groups) - 1) / 2) * width
            ax.bar(xs, y, width=width, yerr=err, capsize=3, label=text)
    if not numeric:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
    if numeric and points[x].min() > 0 and points[x].max() / points[x].min() >= 8:
        ax.set_xscale("log", base=2)
        ticks = sorted(points[x].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {x} (mean, 95% CI)")
    if hue is not None or label:
        ax.legend(title=hue, fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def scaling_figure(
    points: pd.DataFrame,
    x: str,
    metrics: Sequence[str],
    hue: str | None = None,
    logy: Sequence[str] = (),
    ncols: int = 2,
    titles: dict[str, str] | None = None,
) -> Figure:
    """One :func:`metric_vs_parameter` panel per metric (mean and 95% band), in a grid.

    Args:
        points: the sweep's ``points`` table.
        metrics: metric names (``<metric>_mean``/``<metric>_ci95`` columns).
        logy: the metrics drawn on a log y axis (e.g. messages per transaction).
        titles: metric -> panel title (default the metric name).
    """
    import matplotlib.pyplot as plt

    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 3.8 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, metric in zip(flat, metrics):
        metric_vs_parameter(points, x, metric, hue=hue, ax=ax)
        if metric in logy:
            ax.set_yscale("log")
        ax.set_title((titles or {}).get(metric, metric), fontsize="medium")
        if ax is not flat[0] and ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in flat[len(metrics):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def scaling_exponent(
    points: pd.DataFrame, x: str, metric: str, hue: str | None = None, min_x: float | None = None
) -> pd.Series:
    """Least-squares slope b of log(mean metric) against log(x), per ``hue``: metric ~ x^b.

    Points with a non-positive or NaN mean, or with ``x`` below ``min_x``, are left out;
    a group with fewer than two points left gets NaN.
    """
    groups = [(metric, points)] if hue is None else list(points.groupby(hue, sort=False))
    slopes = {}
    for name, group in groups:
        xs = group[x].to_numpy(dtype=float)
        ys = group[f"{metric}_mean"].to_numpy(dtype=float)
        keep = np.isfinite(ys) & (ys > 0) & (xs > 0) & (xs >= (min_x if min_x is not None else -np.inf))
        slopes[name] = float(np.polyfit(np.log(xs[keep]), np.log(ys[keep]), 1)[0]) if keep.sum() >= 2 else np.nan
    return pd.Series(slopes, name=f"{metric} exponent", dtype=float)


def first_crossing(
    points: pd.DataFrame,
    x: str,
    metric: str,
    hue: str | None = None,
    above: float | None = None,
    below: float | None = None,
) -> pd.Series:
    """Per ``hue``, the smallest ``x`` whose mean ``metric`` is above ``above`` (or below ``below``).

    NaN where no point crosses. Exactly one of ``above`` and ``below`` must be given.
    Used to locate knees, e.g. the first size whose throughput falls below 95% of the load.
    """
    if (above is None) == (below is None):
        raise ValueError("give exactly one of above and below")
    groups = [(metric, points)] if hue is None else list(points.groupby(hue, sort=False))
    found = {}
    for name, group in groups:
        means = group[f"{metric}_mean"].to_numpy(dtype=float)
        crossed = means > above if above is not None else means < below
        xs = group[x].to_numpy(dtype=float)[crossed]
        found[name] = float(xs.min()) if len(xs) else np.nan
    return pd.Series(found, name=x, dtype=float)


def validation_chart(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Each validation case's error as a fraction of its tolerance (pass: bar within +-1).

    Args:
        table: the table of :func:`sim.validation.run_validation`.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.figure(figsize=(8, 0.35 * len(table) + 1.5)).add_subplot()
    tol = table["tolerance"].to_numpy(dtype=float)
    err = (table["simulated_value"] - table["reference_value"]).to_numpy(dtype=float)
    # exact cases (tolerance 0) show 0 when equal and a full bar when not
    scaled = np.where(tol > 0, err / np.where(tol > 0, tol, 1.0), np.where(np.abs(err) <= 1e-12, 0.0, np.sign(err) * 1.5))
    colors = ["tab:green" if v == "pass" else "tab:red" for v in table["verdict"]]
    y = np.arange(len(table))
    ax.barh(y, scaled, color=colors)
    ax.axvline(-1, color="grey", linestyle="--", linewidth=0.8)
    ax.axvline(1, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(y, table["case"])
    ax.invert_yaxis()
    ax.set_xlim(-1.6, 1.6)
    ax.set_xlabel("(simulated - reference) / tolerance")
    ax.set_title("Validation: every bar inside the dashed lines passes")
    ax.grid(alpha=0.3, axis="x")
    return ax


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
