"""``hcsim report``: figures (PNG and SVG) and one self-contained HTML page for a results folder.

Works on the three kinds of folder hcsim writes:

- a run (``hcsim run``, or one ``runs/<id>/`` of a sweep): throughput over time with
  fault markers, latency CDF per transaction type, CPU and message load per node, and
  the network map (the topology rebuilt from the manifest's scenario and seed);
- a sweep (``hcsim sweep``): every headline metric against the swept parameter, with
  95% confidence bands, one line per protocol (or per other swept value);
- a capacity search (``hcsim capacity``): the SLO metrics against the varied value.

Figures go to ``<folder>/figures/`` and the page to ``<folder>/report.html``; the page
embeds its images as base64 PNG, so it can be mailed or attached to a CI job alone.
The figures are drawn by :mod:`sim.plots`, the same functions notebooks use.
"""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.errors import HcsimError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sim.experiment.result import RunResult

__all__ = ["folder_kind", "run_figures", "sweep_figures", "write_report"]

#: sweep metrics drawn against the swept parameter, when present
SWEEP_METRICS = ("throughput_tps", "latency_p50_s", "latency_p99_s", "messages_per_tx", "bytes_per_tx", "cpu_utilization_max")

_SUMMARY_KEYS = (
    "submitted", "committed", "rejected", "dropped", "pending", "throughput_tps", "latency_mean_s", "latency_p50_s",
    "latency_p95_s", "latency_p99_s", "blocks", "messages", "bytes", "leader_changes", "safety_violations",
    "ledger_violations", "conservation_violations", "cpu_utilization_max", "sim_time_s", "wall_time_s",
)


def folder_kind(folder: Path) -> str:
    """"run", "sweep" or "capacity".

    Raises:
        HcsimError: the folder holds none of them.
    """
    if (folder / "manifest.json").is_file() and (folder / "summary.json").is_file():
        return "run"
    if (folder / "sweep.json").is_file():
        return "sweep"
    if (folder / "capacity.json").is_file():
        return "capacity"
    raise HcsimError(f"{folder} is not a results folder of hcsim run, sweep or capacity")


def run_figures(result: RunResult) -> dict[str, Figure]:
    """The figures of one run, by file name."""
    import matplotlib.pyplot as plt

    from sim.experiment.simulation import scenario_topology
    from sim.plots import (
        cpu_by_node,
        latency_cdf,
        messages_by_node,
        network_map,
        node_roles,
        throughput_over_time,
    )
    from sim.rng import RandomStreams

    figures: dict[str, Figure] = {}
    fig, ax = plt.subplots(figsize=(8, 4))
    faults = result.tables.get("faults")
    times = faults["time_s"].astype(float).tolist() if faults is not None and len(faults) else []
    throughput_over_time(result.throughput, ax=ax, fault_times_s=times)
    figures["throughput"] = fig

    fig, ax = plt.subplots(figsize=(8, 4))
    latency_cdf(result.transactions, ax=ax, by="tx_type", warmup_s=result.scenario.warmup_s)
    figures["latency_cdf"] = fig

    n = result.scenario.network.nodes
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    cpu_by_node(result.nodes, ax=left)
    messages_by_node(result.messages, ax=right, n_nodes=n)
    fig.tight_layout()
    figures["node_load"] = fig

    topology = scenario_topology(result.scenario, RandomStreams(result.seed))
    fig, ax = plt.subplots(figsize=(8, 6.5))
    up = result.nodes["up"].tolist() if "up" in result.nodes else None
    network_map(topology, ax=ax, roles=node_roles(n, result.blocks), up=up)
    figures["network_map"] = fig
    return figures


def _choose_axes(points: pd.DataFrame, params: list[str]) -> tuple[str, str | None, pd.DataFrame]:
    """The x parameter (numeric preferred: nodes, then rate) and one hue column for the rest."""
    numeric = [p for p in params if pd.api.types.is_numeric_dtype(points[p])]
    order = ["network.nodes", "workload.rate_tps"]
    x = next((p for p in order if p in numeric), numeric[0] if numeric else params[0])
    rest = [p for p in params if p != x]
    if not rest:
        hue = "protocol" if "protocol" in points and points["protocol"].nunique() > 1 else None
        return x, hue, points
    if len(rest) == 1:
        return x, rest[0], points
    points = points.copy()
    points["swept"] = points[rest].astype(str).agg(lambda r: ", ".join(f"{k}={v}" for k, v in zip(rest, r)), axis=1)
    return x, "swept", points


def sweep_figures(points: pd.DataFrame, params: list[str]) -> dict[str, Figure]:
    """One figure per headline metric against the swept parameter, by file name."""
    import matplotlib.pyplot as plt

    from sim.plots import metric_vs_parameter

    if not params:
        raise HcsimError("the sweep has no swept parameters to plot against")
    x, hue, frame = _choose_axes(points, params)
    frame = frame[frame["runs"] > 0]
    figures = {}
    for metric in SWEEP_METRICS:
        if f"{metric}_mean" in frame and frame[f"{metric}_mean"].notna().any():
            fig, ax = plt.subplots(figsize=(7, 4.2))
            metric_vs_parameter(frame, x, metric, hue=hue, ax=ax)
            figures[f"{metric}_vs_{x.replace('.', '_')}"] = fig
    return figures


def _capacity_figures(data: dict[str, Any]) -> dict[str, Figure]:
    import matplotlib.pyplot as plt

    figures = {}
    evaluations = data["evaluations"]
    # the offered load is drawn with throughput (the saturation yardstick), not on its own
    metrics = [m for m in evaluations[0]["metrics"] if m != "offered_tps"] if evaluations else []
    bounds = {s.split("<")[0].split(">")[0]: s for s in data["slos"]}
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for meets, color, label in ((True, "tab:green", "meets"), (False, "tab:red", "fails")):
            rows = [e for e in evaluations if e["meets"] is meets]
            if rows:
                ax.errorbar(
                    [e["value"] for e in rows],
                    [e["metrics"][metric][0] for e in rows],
                    yerr=[0 if e["metrics"][metric][1] is None or math.isnan(e["metrics"][metric][1]) else e["metrics"][metric][1] for e in rows],
                    fmt="o", color=color, capsize=3, label=label,
                )
        offered = [e for e in evaluations if "offered_tps" in e["metrics"]]
        if metric == "throughput_tps" and offered:
            ax.plot(
                [e["value"] for e in offered], [e["metrics"]["offered_tps"][0] for e in offered],
                color="tab:gray", linestyle=":", marker=".", label="offered (submitted in the window)",
            )  # fmt: skip
        if data.get("capacity") is not None:
            ax.axvline(data["capacity"], color="black", linestyle="--", linewidth=1, label=f"capacity {data['capacity']:g}")
        if metric in bounds:
            ax.set_title(f"{metric} vs {data['vary']} (SLO {bounds[metric]})")
        else:
            ax.set_title(f"{metric} vs {data['vary']}")
        ax.set_xlabel(data["vary"])
        ax.set_ylabel(metric)
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        figures[f"capacity_{metric}"] = fig
    return figures


# --------------------------------------------------------------------- page


def _save(figures: dict[str, Figure], folder: Path) -> list[tuple[str, Path]]:
    from sim.plots import save_figure

    saved = []
    for name, fig in figures.items():
        png, _svg = save_figure(fig, folder / "figures" / name, formats=("png", "svg"))
        saved.append((name, png))
    return saved


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="t", na_rep="", float_format=lambda v: f"{v:.4g}")


def _page(title: str, intro: list[tuple[str, str]], images: list[tuple[str, Path]], tables: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in intro)
    figs = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode("ascii")}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, path in images
    )
    sections = "".join(f"<h2>{html.escape(head)}</h2>{body}" for head, body in tables)
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #ddd}"
        "th{text-align:left}figure{margin:1em 0}img{max-width:100%}figcaption{color:#666;font-size:90%}"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><table>{rows}</table><h2>Figures</h2>{figs}{sections}"
        f"<p style='color:#888'>hcsim report, {stamp}</p></body></html>\n"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.6g}"
    return "n/a" if value is None else str(value)


def write_report(results_dir: str | Path) -> Path:
    """Write ``figures/*.png|svg`` and ``report.html`` into ``results_dir``; return the page's path.

    Raises:
        HcsimError: not a results folder, or a sweep without its tables yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    from sim.experiment.store import read_run

    folder = Path(results_dir)
    if not folder.is_dir():
        raise HcsimError(f"{folder} is not a folder")
    kind = folder_kind(folder)
    if kind == "run":
        result = read_run(folder)
        s, m = result.summary, result.manifest
        intro = [("scenario", result.scenario.name), ("protocol", str(s.get("protocol"))), ("nodes", str(s.get("nodes"))),
                 ("seed", str(result.seed)), ("hcsim", f"{m.get('hcsim_version')} ({m.get('git_commit') or 'no git'})"),
                 ("finished", str(m.get("finished_at")))]
        summary = pd.DataFrame([{"metric": k, "value": _fmt(s[k])} for k in _SUMMARY_KEYS if k in s])
        images = _save(run_figures(result), folder)
        page = _page(f"hcsim run: {result.scenario.name}", intro, images, [("Summary", _table(summary))])
    elif kind == "sweep":
        plan = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
        if not (folder / "points.parquet").is_file():
            raise HcsimError(f"{folder} has no points.parquet yet: run the sweep again to finish it (finished runs are kept)")
        points = pd.read_parquet(folder / "points.parquet")
        runs = pd.read_parquet(folder / "runs.parquet")
        params = plan["params"]
        failed = runs[runs["status"] == "failed"] if len(runs) else runs
        intro = [("sweep", plan["name"]), ("parameters", ", ".join(params)), ("points", str(len(plan["points"]))),
                 ("replications", str(plan["sweep"]["replications"])), ("runs planned", str(len(plan["runs"]))),
                 ("runs finished", str(int((runs["status"] == "ok").sum()) if len(runs) else 0)), ("runs failed", str(len(failed))),
                 ("hcsim", f"{plan.get('hcsim_version')} ({plan.get('git_commit') or 'no git'})")]
        images = _save(sweep_figures(points, params), folder) if len(points) else []
        cols = ["point", *params, "runs", "failed"] + [
            c for m in SWEEP_METRICS for c in (f"{m}_mean", f"{m}_ci95") if c in points
        ]
        tables = [("Points (mean and 95% CI half-width over replications)", _table(points[[c for c in cols if c in points]]))]
        if len(failed):
            tables.append(("Failed runs", _table(failed[["run_id", "point", "replication", "seed", *params, "error"]])))
        page = _page(f"hcsim sweep: {plan['name']}", intro, images, tables)
    else:
        data = json.loads((folder / "capacity.json").read_text(encoding="utf-8"))
        intro = [("varied", data["vary"]), ("SLO", ", ".join(data["slos"]) or "(saturation only)"), ("rule", data["rule"]),
                 ("replications", str(data["replications"])), ("capacity", _fmt(data["capacity"])),
                 ("first failing value", _fmt(data["first_failing"])), ("status", data["status"])]
        images = _save(_capacity_figures(data), folder)
        rows = pd.DataFrame([{"value": e["value"], "meets": e["meets"], "runs": e["runs"], "reason": e["reason"]} for e in data["evaluations"]])
        page = _page(f"hcsim capacity: {data['vary']}", intro, images, [("Evaluations", _table(rows))])
    target = folder / "report.html"
    from sim.experiment.store import write_text_atomic

    write_text_atomic(target, page)
    return target
