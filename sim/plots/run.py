"""Figures of one run: throughput, latency, load per node, the network map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sim.experiment.result import RunResult

from sim.plots.common import _axes


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
        for node in counts.index:
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
