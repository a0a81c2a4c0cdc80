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

__all__ = ["latency_cdf", "overview_figure", "save_figure", "throughput_over_time"]


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
        fig.savefig(target, dpi=120)
        written.append(target)
    plt.close(fig)
    return written
