"""The tidy tables of a sweep: ``runs`` (one row per run) and ``points`` (replications aggregated)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from sim.experiment.store import RunStore
    from sim.experiment.sweep import RunSpec

__all__ = ["ID_COLUMNS", "ci95_halfwidth", "points_table", "runs_table"]

#: bookkeeping columns of ``runs`` that come before the parameters
ID_COLUMNS = ("run_id", "point", "replication", "seed", "status", "error", "host", "wall_time_s")

#: numeric columns that identify a run rather than measure it (not aggregated)
_NOT_METRICS = {"point", "replication", "seed", "nodes"}


def ci95_halfwidth(values: Sequence[float] | np.ndarray) -> float:
    """Half-width of the Student-t 95% confidence interval of the mean (NaN for fewer than 2 values)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def _flat(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return str(value)
    return value


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing types (a grid of 4 and "auto") become strings, which Parquet takes."""
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(kinds) > 1:
                frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame


def runs_table(specs: Sequence[RunSpec], store: RunStore) -> pd.DataFrame:
    """One row per finished run of ``specs``, in plan order: ids, parameters, summary metrics."""
    rows = []
    for spec in specs:
        found = store.read(spec.run_id)
        if found is None:
            continue
        status, body, manifest = found
        about = manifest.get("sweep_run", {})
        row: dict[str, Any] = {
            "run_id": spec.run_id,
            "point": spec.point,
            "replication": spec.replication,
            "seed": spec.seed,
            "status": status,
            "error": body.get("error") if status == "failed" else None,
            "host": about.get("host"),
            "wall_time_s": manifest.get("wall_time_s"),
        }
        row.update(spec.params)
        if status == "ok":
            row.update({k: _flat(v) for k, v in body.items() if k not in ("seed",)})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        params = list(specs[0].params) if specs else []
        return pd.DataFrame(columns=[*ID_COLUMNS, *params])
    return _parquet_safe(frame)


def points_table(runs: pd.DataFrame, params: Sequence[str], n_points: int | None = None) -> pd.DataFrame:
    """One row per point: parameters, ``runs`` and ``failed`` counts, then for every numeric
    metric ``<metric>_mean`` and ``<metric>_ci95`` (Student-t half-width over replications)."""
    if runs.empty:
        return pd.DataFrame(columns=["point", *params, "runs", "failed"])
    ok = runs[runs["status"] == "ok"]
    metrics = [
        c
        for c in runs.columns
        if c not in params and c not in _NOT_METRICS and c not in ID_COLUMNS[:3] and pd.api.types.is_numeric_dtype(runs[c])
    ]
    if "wall_time_s" in runs.columns and "wall_time_s" not in metrics:
        metrics.append("wall_time_s")
    labels = [c for c in ("scenario", "protocol", "nodes") if c in runs.columns and c not in params]
    rows = []
    for point, group in runs.groupby("point", sort=True):
        good = ok[ok["point"] == point]
        row: dict[str, Any] = {"point": int(point)}
        row.update({p: group[p].iloc[0] for p in params})
        for label in labels:
            values = good[label].dropna()
            row[label] = values.iloc[0] if len(values) else None
        row["runs"] = len(good)
        row["failed"] = int((group["status"] == "failed").sum())
        for metric in metrics:
            values = pd.to_numeric(good[metric], errors="coerce").to_numpy(dtype=float)
            finite = values[~np.isnan(values)]
            row[f"{metric}_mean"] = float(finite.mean()) if len(finite) else math.nan
            row[f"{metric}_ci95"] = ci95_halfwidth(finite)
        rows.append(row)
    return _parquet_safe(pd.DataFrame(rows))
