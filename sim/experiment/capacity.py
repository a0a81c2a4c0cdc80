"""Capacity search: the largest load (or network size) that still meets a service-level objective.

A value *meets the SLO* when, over its replications,

1. every SLO (``latency_p99_s<=2``) holds for the mean of the metric (``rule="mean"``),
   or for the unfavourable end of its 95% confidence interval (``rule="upper"``,
   conservative: mean + half-width for ``<=``, mean - half-width for ``>=``);
2. the system is not saturated: mean ``throughput_tps`` is at least
   ``saturation_fraction`` (default 0.95) of the offered load (``offered_tps``: valid
   transactions the runs submitted in the measured window; the nominal
   ``workload.rate_tps`` for summaries without it). Past
   saturation a queue grows without bound, so a finite run's latency understates it;
   this catches that even with no latency SLO. With fraction f, a system that serves
   at most mu tx/s passes up to an offered rate of mu / f: latency SLOs are what pin
   the knee below that;
3. no replication failed.

The search assumes that meeting the SLO is monotone in the varied value (more load
or more nodes never helps). It brackets the knee by doubling (or halving) from the
scenario's own value, then bisects until the bracket ``[meets, fails)`` is narrower
than ``rel_tol`` of the value (a width of 1 for integer keys such as network.nodes).
Every evaluation runs its replications through a sweep executor and a
:class:`~sim.experiment.sweep.RunStore`, so a search is resumable and parallel.
"""

from __future__ import annotations

import math
import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.config import Scenario
from sim.errors import HcsimError, ScenarioError
from sim.experiment.executors import Executor, SerialExecutor
from sim.experiment.store import RunStore, write_json_atomic, write_parquet_atomic
from sim.experiment.sweep import execute_specs, make_spec, read_raw
from sim.experiment.tables import ci95_halfwidth

__all__ = ["CapacityResult", "Evaluation", "Slo", "bisect_capacity", "conservative_capacity", "find_capacity"]

#: keys the search can vary, and whether they are integers
VARIABLE_KEYS = {"workload.rate_tps": False, "network.nodes": True}

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class Slo:
    """One objective on a summary metric, e.g. ``Slo("latency_p99_s", "<=", 2.0)``."""

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Slo:
        """Parse ``"metric<=bound"`` (operators ``<=``, ``<``, ``>=``, ``>``)."""
        match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*", text)
        if not match:
            raise HcsimError(f"SLO {text!r} must look like metric<=bound, e.g. latency_p99_s<=2")
        return cls(match.group(1), match.group(2), float(match.group(3)))

    def holds(self, value: float) -> bool:
        return not math.isnan(value) and _OPS[self.op](value, self.bound)

    def worst(self, mean: float, ci95: float) -> float:
        """The unfavourable end of the interval (what ``rule="upper"`` checks)."""
        half = 0.0 if math.isnan(ci95) else ci95
        return mean + half if self.op in ("<=", "<") else mean - half

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


@dataclass
class Evaluation:
    """The replications at one value and the verdict.

    Attributes:
        metrics: metric -> (mean, 95% half-width) for the SLO metrics and throughput.
        individually: replications that meet every SLO on their own.
        reason: why the value does not meet the SLO ("" when it does).
    """

    value: float
    meets: bool
    runs: int
    failed: int
    individually: int
    metrics: dict[str, tuple[float, float]]
    reason: str = ""
    saturated: bool = False
    meets_upper: bool = False  # the verdict under rule "upper" (every SLO met by its CI bound)


@dataclass
class CapacityResult:
    """Outcome of a search.

    Attributes:
        capacity: largest evaluated value that meets the SLO (None if none did).
        first_failing: smallest evaluated value above it that does not (None if none did).
        status: "found", "above_max" (still meets at the upper limit) or "below_min".
        conservative: largest evaluated value that, like every evaluated value below it,
            meets the SLO by the unfavourable end of each metric's 95% CI: a capacity the
            replications support with confidence (equal to ``capacity`` under rule "upper").
    """

    vary: str
    slos: list[str]
    rule: str
    replications: int
    capacity: float | None
    first_failing: float | None
    status: str
    evaluations: list[Evaluation] = field(default_factory=list)
    folder: Path | None = None
    wall_time_s: float = 0.0
    conservative: float | None = None

    def at(self, value: float | None) -> Evaluation | None:
        """The evaluation of ``value``."""
        return next((e for e in self.evaluations if e.value == value), None)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("evaluations", "folder")}
        out["evaluations"] = [asdict(e) for e in sorted(self.evaluations, key=lambda e: e.value)]
        return out


def bisect_capacity(
    evaluate: Callable[[float], Evaluation],
    start: float,
    integer: bool,
    rel_tol: float = 0.02,
    lower: float | None = None,
    upper: float | None = None,
    minimum: float = 0.0,
    maximum: float = math.inf,
) -> tuple[float | None, float | None, str]:
    """Bracket and bisect the knee of a monotone pass/fail function.

    Args:
        evaluate: value -> Evaluation (``meets`` must be True below the knee, False above).
        start: first value tried (when no bracket is given).
        integer: values are integers; the search stops at a bracket of width 1.
        rel_tol: stop when ``fail - meets <= rel_tol * meets`` (real values).
        lower, upper: a known bracket to start from (each still evaluated).
        minimum, maximum: never evaluate outside these.

    Returns:
        (largest value meeting, smallest value failing, status).
    """
    seen: dict[float, bool] = {}

    def meets(value: float) -> bool:
        value = float(round(value)) if integer else value
        if value not in seen:
            seen[value] = evaluate(value).meets
        return seen[value]

    lo: float | None = None
    hi: float | None = None
    if upper is not None:
        if meets(upper):
            return upper, None, "above_max"
        hi = float(upper)
    if lower is not None:
        if not meets(lower):
            return None, float(lower), "below_min"
        lo = float(lower)
    if lo is None and hi is None:
        first = float(round(start)) if integer else float(start)
        if meets(first):
            lo = first
        else:
            hi = first
    while hi is None:  # grow until a value fails
        assert lo is not None
        nxt = lo * 2
        if nxt > maximum:
            return lo, None, "above_max"
        if meets(nxt):
            lo = nxt
        else:
            hi = nxt
    while lo is None:  # shrink until a value meets
        nxt = float(math.floor(hi / 2)) if integer else hi / 2
        if nxt < minimum or nxt <= 0:
            return None, hi, "below_min"
        if meets(nxt):
            lo = nxt
        else:
            hi = nxt
    while (hi - lo > 1) if integer else (hi - lo > rel_tol * lo):
        mid = float((lo + hi) // 2) if integer else (lo + hi) / 2
        if meets(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi, "found"


def find_capacity(
    scenario: Scenario | str | Path | Mapping[str, Any],
    vary: str,
    slos: Sequence[Slo | str],
    replications: int = 3,
    rule: str = "mean",
    saturation_fraction: float = 0.95,
    rel_tol: float = 0.02,
    lower: float | None = None,
    upper: float | None = None,
    maximum: float | None = None,
    out: str | Path | None = None,
    executor: Executor | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    progress: bool = False,
    run_timeout_s: float | None = None,
    on_evaluation: Callable[[Evaluation], None] | None = None,
) -> CapacityResult:
    """Find the largest value of ``vary`` that meets every SLO (see the module docstring).

    Args:
        scenario: TOML path, mapping or Scenario (its ``[sweep]`` table is ignored).
        vary: ``workload.rate_tps`` or ``network.nodes``.
        slos: objectives, as :class:`Slo` or ``"metric<=bound"`` strings.
        replications: runs per value (seeds as in sweeps: the same at every value).
        rule: "mean" or "upper" (see the module docstring).
        out: folder for the runs and ``capacity.json``; default ``results/<name>-capacity-<rate_tps or nodes>``.
        executor: where the replications run; default in this process.
        on_evaluation: called after each value is evaluated (the CLI prints a line).

    Raises:
        ScenarioError: invalid scenario or value; HcsimError: bad options or an SLO on an
            unknown metric.
    """
    if vary not in VARIABLE_KEYS:
        raise HcsimError(f"--vary {vary!r}: can vary {', '.join(VARIABLE_KEYS)}")
    if rule not in ("mean", "upper"):
        raise HcsimError(f"rule {rule!r}: use 'mean' or 'upper'")
    if not 0 < saturation_fraction <= 1:
        raise HcsimError(f"saturation fraction {saturation_fraction} must be in (0, 1]")
    parsed = [s if isinstance(s, Slo) else Slo.parse(s) for s in slos]
    raw, base = read_raw(scenario, overrides)
    raw.pop("sweep", None)
    integer = VARIABLE_KEYS[vary]
    start = float(base.network.nodes if integer else base.workload.rate_tps)
    if start <= 0:
        raise ScenarioError([f"{vary} = {start:g}: the search starts from the scenario's value, which must be > 0"], base.name)
    folder = Path(out) if out is not None else Path("results") / f"{base.name}-capacity-{vary.rsplit('.', 1)[-1]}"
    store = RunStore(folder)
    ex = executor or SerialExecutor()
    evaluations: list[Evaluation] = []
    wall0 = time.perf_counter()

    def evaluate(value: float) -> Evaluation:
        params = {vary: int(value) if integer else value}
        specs = [make_spec(raw, params, len(evaluations), r, base.seed) for r in range(replications)]
        execute_specs(specs, store, ex, progress=progress, desc=f"{vary}={value:g}", run_timeout_s=run_timeout_s)
        evaluation = _judge(value, specs, store, parsed, rule, saturation_fraction)
        evaluations.append(evaluation)
        if on_evaluation is not None:
            on_evaluation(evaluation)
        return evaluation

    with store.locked():
        lo, hi, status = bisect_capacity(
            evaluate,
            start,
            integer,
            rel_tol,
            lower,
            upper,
            minimum=1.0 if integer else start / 2**12,
            maximum=maximum if maximum is not None else (4096.0 if integer else start * 2**12),
        )
        result = CapacityResult(
            vary, [str(s) for s in parsed], rule, replications, lo, hi, status, evaluations, folder,
            time.perf_counter() - wall0, conservative_capacity(evaluations),
        )
        write_json_atomic(folder / "capacity.json", result.to_json())
        rows = [{"value": e.value, "meets": e.meets, "runs": e.runs, "failed": e.failed, "reason": e.reason,
                 **{f"{m}_mean": v[0] for m, v in e.metrics.items()}, **{f"{m}_ci95": v[1] for m, v in e.metrics.items()}}
                for e in evaluations]
        import pandas as pd

        write_parquet_atomic(pd.DataFrame(rows).sort_values("value"), folder / "evaluations.parquet")
    if executor is None:
        ex.close()
    return result


def _judge(
    value: float,
    specs: Sequence[Any],
    store: RunStore,
    slos: Sequence[Slo],
    rule: str,
    saturation_fraction: float,
) -> Evaluation:
    summaries, failed = [], 0
    for spec in specs:
        found = store.read(spec.run_id)
        if found is None or found[0] != "ok":
            failed += 1
        else:
            summaries.append(found[1])
    # saturation is judged against what the runs actually submitted to the ledger (Poisson
    # noise and read-only queries make the nominal rate_tps the wrong yardstick), falling
    # back to the nominal rate for summaries that predate offered_tps
    offered = float(specs[0].scenario["workload"]["rate_tps"])
    submitted = [float(s["offered_tps"]) for s in summaries if s.get("offered_tps") is not None]
    if submitted and all(math.isfinite(v) for v in submitted):
        offered = sum(submitted) / len(submitted)
    names = ["throughput_tps", *[s.metric for s in slos if s.metric != "throughput_tps"]]
    if summaries and "offered_tps" in summaries[0] and "offered_tps" not in names:
        names.insert(1, "offered_tps")
    metrics: dict[str, tuple[float, float]] = {}
    for name in names:
        if summaries and name not in summaries[0]:
            raise HcsimError(f"SLO metric {name!r} is not in the run summary; known: {', '.join(sorted(summaries[0]))}")
        values = [float("nan") if s.get(name) is None else float(s[name]) for s in summaries]
        finite = [v for v in values if not math.isnan(v)]
        metrics[name] = (sum(finite) / len(finite) if finite else math.nan, ci95_halfwidth(finite))
    reasons = []
    if failed:
        reasons.append(f"{failed} of {len(specs)} runs failed")
    for slo in slos:
        mean, half = metrics[slo.metric]
        checked = mean if rule == "mean" else slo.worst(mean, half)
        if not slo.holds(checked):
            reasons.append(f"{slo.metric} = {checked:.4g} ({'mean' if rule == 'mean' else 'CI bound'}) breaks {slo}")
    throughput = metrics["throughput_tps"][0]
    saturated = not throughput >= saturation_fraction * offered
    if saturated:
        reasons.append(f"saturated: throughput {throughput:.4g} < {saturation_fraction:g} x offered {offered:.4g} tx/s")
    individually = sum(
        all(s.holds(float("nan") if summary.get(s.metric) is None else float(summary[s.metric])) for s in slos)
        for summary in summaries
    )
    meets_upper = not failed and not saturated and all(s.holds(s.worst(*metrics[s.metric])) for s in slos)
    return Evaluation(value, not reasons, len(summaries), failed, individually, metrics, "; ".join(reasons), saturated, meets_upper)


def conservative_capacity(evaluations: Sequence[Evaluation]) -> float | None:
    """Largest evaluated value meeting the SLO by its CI bound, with every smaller evaluated value too."""
    best = None
    for e in sorted(evaluations, key=lambda e: e.value):
        if not e.meets_upper:
            break
        best = e.value
    return best
