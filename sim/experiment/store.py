"""Results on disk: one folder per run, written atomically.

A run folder holds ``summary.json``, ``manifest.json`` and one Parquet file per
table. It is written into a hidden temporary sibling folder and renamed into
place, so a reader never sees half a run, and an interrupted write leaves the
previous results untouched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from sim.experiment.result import TABLES, RunResult

__all__ = ["git_commit", "read_run", "write_json_atomic", "write_run"]


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _clean(value: Any) -> Any:
    """NaN and infinities become null so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` via a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def git_commit(start: Path | None = None) -> str | None:
    """The git commit of the checkout holding ``start`` (the package by default), if any."""
    where = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write ``result`` to ``out_dir`` atomically (replacing an earlier run there)."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name in TABLES:
            result.tables[name].to_parquet(tmp / f"{name}.parquet", index=False)
        write_json_atomic(tmp / "summary.json", result.summary)
        write_json_atomic(tmp / "manifest.json", result.manifest)
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_run(run_dir: str | Path) -> RunResult:
    """Load a run folder written by :func:`write_run`."""
    from sim.config import parse_scenario

    folder = Path(run_dir)
    if not (folder / "manifest.json").is_file():
        raise FileNotFoundError(f"{folder} is not a run folder (no manifest.json)")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES if (folder / f"{name}.parquet").is_file()}
    scenario = parse_scenario(manifest["scenario"], str(folder / "manifest.json"))
    return RunResult(scenario=scenario, seed=int(manifest["seed"]), summary=summary, tables=tables, manifest=manifest)
