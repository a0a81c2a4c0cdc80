"""Results on disk: one folder per run, written atomically.

A run folder holds ``summary.json``, ``manifest.json`` and one Parquet file per
table. It is written into a hidden temporary sibling folder and renamed into
place, so a reader never sees half a run, and an interrupted write leaves the
previous results untouched. A sweep run that raised gets a folder too, with
``manifest.json`` and ``error.json`` instead of tables.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.errors import HcsimError
from sim.experiment.result import TABLES, RunResult

if TYPE_CHECKING:
    from sim.experiment.sweep import RunOutcome, RunSpec

__all__ = ["RunStore", "git_commit", "read_run", "write_failure", "write_json_atomic", "write_parquet_atomic", "write_run", "write_text_atomic"]


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


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` via a temporary file and a rename."""
    write_text_atomic(path, json.dumps(_clean(data), indent=2, default=_json_default) + "\n")


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` as Parquet via a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def _write_folder(out_dir: str | Path, fill: Any) -> Path:
    """Build a folder with ``fill(tmp_path)`` in a hidden sibling, then rename it to ``out_dir``."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
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


def write_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write ``result`` to ``out_dir`` atomically (replacing an earlier run there).

    Raises:
        HcsimError: ``out_dir`` holds a sweep or capacity search (a ``runs/`` folder), which
            a single run must not replace.
    """
    if (Path(out_dir) / "runs").is_dir():
        raise HcsimError(f"{out_dir} holds a sweep or capacity search; write this run to another folder")

    def fill(tmp: Path) -> None:
        for name in TABLES:
            result.tables[name].to_parquet(tmp / f"{name}.parquet", index=False)
        write_json_atomic(tmp / "summary.json", result.summary)
        write_json_atomic(tmp / "manifest.json", result.manifest)

    return _write_folder(out_dir, fill)


def write_failure(out_dir: str | Path, manifest: dict[str, Any], error: dict[str, Any]) -> Path:
    """Record a run that raised: ``manifest.json`` and ``error.json`` in ``out_dir``, atomically."""

    def fill(tmp: Path) -> None:
        write_json_atomic(tmp / "error.json", error)
        write_json_atomic(tmp / "manifest.json", manifest)

    return _write_folder(out_dir, fill)


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


class RunStore:
    """The ``runs/`` folder of a sweep (or capacity search): one folder per finished run."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.runs_dir = self.folder / "runs"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the folder (two sweeps must not write one folder)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if (self.folder / "manifest.json").is_file():
            raise HcsimError(f"{self.folder} holds a single run's results; give the sweep another --out folder")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; trust the user
            yield
            return
        with open(self.folder / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HcsimError(f"another hcsim process is writing to {self.folder}") from None
            self._remove_partial_writes()
            yield

    def _remove_partial_writes(self) -> None:
        # Hidden siblings left by a write that was killed midway (never a finished run).
        if self.runs_dir.is_dir():
            for leftover in self.runs_dir.glob(".*"):
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)

    def status(self, run_id: str) -> str | None:
        """"ok", "failed", or None (not finished)."""
        folder = self.runs_dir / run_id
        if (folder / "summary.json").is_file():
            return "ok"
        if (folder / "error.json").is_file():
            return "failed"
        return None

    def save(self, spec: RunSpec, outcome: RunOutcome) -> None:
        """Write a finished run's folder atomically."""
        from sim import __version__

        about = {"run_id": spec.run_id, "point": spec.point, "replication": spec.replication, "params": spec.params, "host": outcome.host}
        if outcome.result is not None:
            outcome.result.manifest["sweep_run"] = about
            write_run(outcome.result, self.runs_dir / spec.run_id)
            return
        manifest = {
            "scenario": spec.scenario,
            "seed": spec.seed,
            "hcsim_version": __version__,
            "git_commit": git_commit(),
            "finished_at": datetime.now(UTC).isoformat(),
            "wall_time_s": outcome.wall_time_s,
            "sweep_run": about,
        }
        write_failure(self.runs_dir / spec.run_id, manifest, {"error": outcome.error, "traceback": outcome.traceback})

    def read(self, run_id: str) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """(status, summary or error, manifest) of a finished run, or None."""
        status = self.status(run_id)
        if status is None:
            return None
        folder = self.runs_dir / run_id
        body = json.loads((folder / ("summary.json" if status == "ok" else "error.json")).read_text(encoding="utf-8"))
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return status, body, manifest
