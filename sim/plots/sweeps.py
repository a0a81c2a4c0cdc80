"""Figures of many runs: a metric versus a parameter, scaling, and the validation table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


from sim.plots.common import _axes

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
