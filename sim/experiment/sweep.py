"""Sweeps: a scenario's ``[sweep]`` grid times replications, run anywhere, resumable.

A sweep folder (``results/<name>-sweep/`` by default) holds:

- ``sweep.json``: the plan (base scenario, sweep table, every run's id, point,
  replication and seed), rewritten at every start;
- ``runs/<run_id>/``: one folder per finished run, written atomically by
  :func:`~sim.experiment.store.write_run` (tables, ``summary.json``,
  ``manifest.json``); a run that raised gets ``manifest.json`` and ``error.json``;
- ``runs.parquet``: one row per finished run (ids, seed, every swept parameter,
  every summary metric, wall time, status, error text);
- ``points.parquet``: one row per point, replications aggregated (mean and the
  half-width of a Student-t 95% confidence interval).

A run's id is a hash of its resolved scenario (every default filled in, the
run's seed in it; ``name`` and ``description`` left out since they do not change
what is simulated). A run folder exists only once the run has finished, so
re-running a sweep skips every run whose folder exists, whatever stopped the
previous attempt. The two tables are rebuilt from the run folders at the end of
every attempt, including an interrupted one.

Seeds: replication ``r`` uses ``derive_seed(root seed, "replication/r")`` at every
point (common random numbers: points are compared on the same arrival streams).
"""

from __future__ import annotations

import functools
import hashlib
import json
import socket
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from sim.config import (
    Scenario,
    apply_overrides,
    parse_scenario,
    read_toml,
    sweep_point_raw,
)
from sim.errors import ScenarioError
from sim.experiment.executors import Executor, ProcessExecutor
from sim.experiment.result import RunResult
from sim.experiment.store import (
    RunStore,
    git_commit,
    write_json_atomic,
    write_parquet_atomic,
)
from sim.experiment.tables import points_table, runs_table
from sim.rng import derive_seed

__all__ = [
    "NONDETERMINISTIC_COLUMNS",
    "RunOutcome",
    "RunSpec",
    "RunStore",
    "SweepPlan",
    "SweepResult",
    "execute_run",
    "execute_specs",
    "make_spec",
    "plan_sweep",
    "read_raw",
    "replication_seed",
    "run_key",
    "run_sweep",
]

#: runs.parquet columns that differ between identical runs (where and how fast they ran)
NONDETERMINISTIC_COLUMNS = ("wall_time_s", "events_per_wall_s", "host")

#: resolved-scenario keys that do not change what is simulated (left out of run ids)
_LABEL_KEYS = ("name", "description", "sweep")


def replication_seed(root_seed: int, replication: int) -> int:
    """The seed of replication ``replication`` (0-based), the same at every point and on every machine."""
    return derive_seed(root_seed, f"replication/{replication}")


def run_key(resolved: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-256 over the resolved scenario (with its seed), labels left out."""
    content = {k: v for k, v in resolved.items() if k not in _LABEL_KEYS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: what to simulate and where it belongs.

    Attributes:
        run_id: :func:`run_key` of ``scenario``.
        point: index of the point in the plan.
        replication: 0-based replication number.
        seed: the run's root seed.
        params: the point's dotted keys and values.
        scenario: the resolved scenario (plain data) to run.
    """

    run_id: str
    point: int
    replication: int
    seed: int
    params: dict[str, Any]
    scenario: dict[str, Any]


def make_spec(base_raw: Mapping[str, Any], params: Mapping[str, Any], point: int, replication: int, root_seed: int) -> RunSpec:
    """The run of ``params`` (dotted keys over ``base_raw``) for one replication.

    Raises:
        ScenarioError: the point's scenario is invalid.
    """
    seed = replication_seed(root_seed, replication)
    raw = sweep_point_raw(base_raw, params)
    raw["seed"] = seed
    resolved = parse_scenario(raw, f"<point {dict(params)}>").resolved()
    return RunSpec(run_key(resolved), point, replication, seed, dict(params), resolved)


@dataclass
class SweepPlan:
    """Every run of a sweep, in order (point-major, then replication)."""

    name: str
    root_seed: int
    base: dict[str, Any]
    sweep: dict[str, Any]
    params: list[str]
    points: list[dict[str, Any]]
    specs: list[RunSpec]

    def manifest(self) -> dict[str, Any]:
        from sim import __version__

        return {
            "name": self.name,
            "root_seed": self.root_seed,
            "scenario": self.base,
            "sweep": self.sweep,
            "params": self.params,
            "points": self.points,
            "runs": [{"run_id": s.run_id, "point": s.point, "replication": s.replication, "seed": s.seed} for s in self.specs],
            "hcsim_version": __version__,
            "git_commit": git_commit(),
            "planned_at": datetime.now(UTC).isoformat(),
        }


def read_raw(
    scenario: Scenario | str | Path | Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] = ()
) -> tuple[dict[str, Any], Scenario]:
    """The scenario as written (with overrides applied) and its validated form.

    A Scenario object gives back the keys that were set explicitly when it was built.
    """
    if isinstance(scenario, str | Path):
        path = Path(scenario)
        raw = read_toml(path)
        source = str(path)
    elif isinstance(scenario, Scenario):
        raw, source = scenario.model_dump(mode="json", exclude_unset=True), scenario.name
    else:
        raw, source = dict(scenario), "<scenario>"
    raw = apply_overrides(raw, overrides)
    return raw, parse_scenario(raw, source)


def plan_sweep(scenario: Scenario | str | Path | Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] = ()) -> SweepPlan:
    """Expand a scenario's ``[sweep]`` into runs; validates every point before anything runs.

    Raises:
        ScenarioError: invalid scenario or point, no ``[sweep]`` table, or two points that
            are the same scenario.
    """
    raw, validated = read_raw(scenario, overrides)
    if validated.sweep is None:
        raise ScenarioError(
            ["no [sweep] table: add one (see README, 'Sweeps and clusters') or pass --set sweep.replications=N"], validated.name
        )
    base = {k: v for k, v in raw.items() if k != "sweep"}
    points = validated.sweep.points()
    specs = [
        make_spec(base, point, i, r, validated.seed) for i, point in enumerate(points) for r in range(validated.sweep.replications)
    ]
    seen: dict[str, RunSpec] = {}
    for spec in specs:
        if spec.run_id in seen:
            raise ScenarioError(
                [f"sweep points {seen[spec.run_id].params} and {spec.params} are the same scenario"], validated.name
            )
        seen[spec.run_id] = spec
    sweep = validated.sweep.model_dump(mode="json")
    params = list(sweep["grid"]) + list(sweep["zip"])
    return SweepPlan(validated.name, validated.seed, base, sweep, params, points, specs)


# ------------------------------------------------------------------ one run


@dataclass
class RunOutcome:
    """What a worker sends back: the run's result, or the error it raised."""

    run_id: str
    status: str  # "ok" or "failed"
    result: RunResult | None
    error: str | None
    traceback: str | None
    wall_time_s: float
    host: str


def execute_run(spec: RunSpec, wall_limit_s: float | None = None) -> RunOutcome:
    """Run one spec (in any process); an exception becomes a failed outcome, never escapes.

    Args:
        wall_limit_s: record the run as failed (``RunTimeout``) after this many wall seconds.
    """
    from sim.experiment.runner import run

    wall0 = time.perf_counter()
    host = socket.gethostname()
    try:
        result = run(parse_scenario(spec.scenario, f"<run {spec.run_id}>"), wall_limit_s=wall_limit_s)
    except Exception as exc:  # noqa: BLE001 - any error in a run, a bug included, is that run's failure
        return RunOutcome(spec.run_id, "failed", None, f"{type(exc).__name__}: {exc}", traceback.format_exc(), time.perf_counter() - wall0, host)
    return RunOutcome(spec.run_id, "ok", result, None, None, time.perf_counter() - wall0, host)


@dataclass
class Progress:
    """Counts of one attempt at running a list of specs."""

    planned: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    lost: list[tuple[str, str]] = field(default_factory=list)  # (run_id, why)


def execute_specs(
    specs: Sequence[RunSpec],
    store: RunStore,
    executor: Executor,
    retry_failed: bool = False,
    progress: bool = False,
    desc: str = "runs",
    run_timeout_s: float | None = None,
) -> Progress:
    """Run every spec not finished in ``store`` and save each as it completes.

    Call inside ``store.locked()``. A run lost by the executor (dead worker) is counted
    in ``lost`` and not saved, so the next attempt runs it again.
    """
    from tqdm.auto import tqdm

    counts = Progress(planned=len(specs))
    todo = []
    for spec in specs:
        status = store.status(spec.run_id)
        if status is None or (status == "failed" and retry_failed):
            todo.append(spec)
        else:
            counts.skipped += 1
    if not todo:
        return counts
    with tqdm(total=len(todo), desc=desc, unit="run", disable=not progress, dynamic_ncols=True) as bar:
        for spec, outcome in executor.map(functools.partial(execute_run, wall_limit_s=run_timeout_s), todo):
            if isinstance(outcome, BaseException):
                counts.lost.append((spec.run_id, f"{type(outcome).__name__}: {outcome}"))
            else:
                store.save(spec, outcome)
                if outcome.status == "ok":
                    counts.ok += 1
                else:
                    counts.failed += 1
            bar.set_postfix(failed=counts.failed, lost=len(counts.lost), refresh=False)
            bar.update(1)
    return counts


# -------------------------------------------------------------------- sweep


@dataclass
class SweepResult:
    """A sweep attempt: its folder, tables and counts (``progress`` counts this attempt only)."""

    folder: Path
    plan: SweepPlan
    runs: pd.DataFrame
    points: pd.DataFrame
    progress: Progress
    wall_time_s: float
    executor: str

    @property
    def complete(self) -> bool:
        """True when every planned run is recorded (finished or failed)."""
        return len(self.runs) == len(self.plan.specs)


def run_sweep(
    scenario: Scenario | str | Path | Mapping[str, Any],
    out: str | Path | None = None,
    executor: Executor | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    retry_failed: bool = False,
    progress: bool = False,
    run_timeout_s: float | None = None,
) -> SweepResult:
    """Run (or resume) the sweep of ``scenario`` and write its folder.

    Args:
        scenario: TOML path, mapping or Scenario with a ``[sweep]`` table.
        out: the sweep folder; default ``results/<name>-sweep``.
        executor: where runs execute; default a local process pool (closed at the end;
            an executor passed in is left open).
        overrides: dotted-key overrides of the scenario (``sweep.*`` keys included).
        retry_failed: run again the runs recorded as failed.
        progress: show a progress bar (runs done, failed, time left).
        run_timeout_s: a run still going after this many wall seconds is recorded as
            failed (``RunTimeout``) and the sweep goes on; None: no limit.

    Raises:
        ScenarioError: invalid scenario or point (nothing has run or been written).
        KeyboardInterrupt: after saving the tables of what finished.
    """
    plan = plan_sweep(scenario, overrides)
    folder = Path(out) if out is not None else Path("results") / f"{plan.name}-sweep"
    store = RunStore(folder)
    wall0 = time.perf_counter()
    counts = Progress(planned=len(plan.specs))
    with store.locked():
        write_json_atomic(folder / "sweep.json", plan.manifest())
        ex = ProcessExecutor() if executor is None else executor
        try:
            counts = execute_specs(plan.specs, store, ex, retry_failed, progress, plan.name, run_timeout_s)
        finally:
            if executor is None:
                ex.close()
            runs = runs_table(plan.specs, store)
            points = points_table(runs, plan.params, len(plan.points))
            write_parquet_atomic(runs, folder / "runs.parquet")
            write_parquet_atomic(points, folder / "points.parquet")
    return SweepResult(folder, plan, runs, points, counts, time.perf_counter() - wall0, ex.description)
