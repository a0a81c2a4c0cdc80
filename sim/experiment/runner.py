"""Run one scenario: the public entry point for the CLI and notebooks."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sim.config import Scenario, apply_overrides, load_scenario, parse_scenario
from sim.experiment.result import RunResult, collect
from sim.experiment.simulation import Simulation
from sim.experiment.store import git_commit

__all__ = ["resolve_scenario", "run"]


def resolve_scenario(
    scenario: Scenario | str | Path | Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any] = (),
    seed: int | None = None,
) -> Scenario:
    """A validated Scenario from a path, a mapping or a Scenario, with overrides and seed applied."""
    if isinstance(scenario, str | Path):
        return load_scenario(scenario, overrides, seed)
    raw = scenario.resolved() if isinstance(scenario, Scenario) else dict(scenario)
    raw = apply_overrides(raw, overrides)
    if seed is not None:
        raw["seed"] = seed
    if isinstance(scenario, Scenario) and not overrides and seed is None:
        return scenario
    return parse_scenario(raw, "<scenario>" if not isinstance(scenario, Scenario) else scenario.name)


def run(
    scenario: Scenario | str | Path | Mapping[str, Any],
    seed: int | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    progress: bool = False,
    wall_limit_s: float | None = None,
) -> RunResult:
    """Run a scenario once and return its tables and summary.

    Args:
        scenario: a Scenario, a path to a TOML file, or a mapping of scenario keys.
        seed: root seed (overrides the scenario's ``seed``).
        overrides: dotted-key overrides, e.g. ``{"network.nodes": 32}`` or ``["network.nodes=32"]``.
        progress: show a tqdm progress bar over simulated time.
        wall_limit_s: stop with :class:`~sim.experiment.simulation.RunTimeout` after this many
            wall-clock seconds (None: no limit); sweeps use it so one stuck run cannot stall them.

    Raises:
        ScenarioError: the scenario is invalid (nothing has run).
        RunTimeout: ``wall_limit_s`` was exceeded.
    """
    resolved = resolve_scenario(scenario, overrides, seed)
    started = datetime.now(UTC)
    wall0 = time.perf_counter()
    simulation = Simulation(resolved)
    if wall_limit_s is not None:
        simulation.env.deadline = wall0 + wall_limit_s
    duration_s = resolved.duration_s
    if progress:
        from tqdm.auto import tqdm

        with tqdm(total=round(duration_s, 3), unit="sim s", desc=resolved.name, leave=False) as bar:
            simulation.run_until(duration_s, on_progress=lambda t: bar.update(round(t, 3) - bar.n))
    else:
        simulation.run_until(duration_s)
    wall_s = time.perf_counter() - wall0
    from sim import __version__

    manifest = {
        "scenario": resolved.resolved(),
        "seed": simulation.seed,
        "hcsim_version": __version__,
        "git_commit": git_commit(),
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "wall_time_s": wall_s,
    }
    return collect(simulation, wall_s, manifest)
