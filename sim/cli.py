"""``hcsim``: the command line of the lab."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click

from sim.errors import HcsimError

__all__ = ["main"]

#: exit code for invalid input (scenario, overrides, missing file)
EXIT_BAD_INPUT = 2

_SUMMARY_ROWS = [
    ("submitted", "submitted", "tx"),
    ("committed", "committed", "tx"),
    ("invalid", "invalid (MVCC, policy)", "tx"),
    ("rejected", "rejected", "tx"),
    ("dropped", "dropped", "tx"),
    ("pending", "pending at end", "tx"),
    ("throughput_tps", "throughput", "tx/s"),
    ("latency_mean_s", "latency mean", "s"),
    ("latency_p50_s", "latency p50", "s"),
    ("latency_p95_s", "latency p95", "s"),
    ("latency_p99_s", "latency p99", "s"),
    ("blocks", "blocks", ""),
    ("messages", "messages", ""),
    ("bytes", "bytes", "B"),
    ("leader_changes", "leader changes", ""),
    ("safety_violations", "safety violations", ""),
    ("ledger_violations", "ledger violations", ""),
    ("conservation_violations", "conservation violations", ""),
    ("committed_lost", "committed then lost", "tx"),
    ("consent_violations", "consent violations", ""),
    ("invalid_blocks_rejected", "invalid blocks rejected", ""),
    ("faults", "faults", ""),
    ("detect_s", "first fault detected after", "s"),
    ("recover_s", "first fault recovered after", "s"),
    ("stalled", "stalled at the end", ""),
    ("invalid_tx", "invalid transactions", ""),
    ("mvcc_conflict_rate", "MVCC conflict rate", ""),
    ("requests", "client requests", ""),
    ("retries", "retries", ""),
    ("timeouts", "timeouts", ""),
    ("__health__", "", ""),
    ("sim_time_s", "simulated time", "s"),
    ("wall_time_s", "wall time", "s"),
    ("events", "events", ""),
    ("events_per_wall_s", "events per wall second", "/s"),
]


#: healthcare rows, printed per group when the run has that activity (trigger key > 0)
_HEALTH_GROUPS = [
    ("claims_submitted", [
        ("claims_submitted", "claims submitted", ""),
        ("claims_approved", "claims approved", ""),
        ("claims_denied", "claims denied", ""),
        ("claims_pended", "claims pended", ""),
        ("claims_paid", "claims paid", ""),
        ("claim_adjudication_p99_s", "claim adjudication p99", "s"),
        ("claim_paid_p99_s", "claim submit to paid p99", "s"),
    ]),
    ("eligibility_checks", [
        ("eligibility_checks", "eligibility checks", ""),
        ("eligibility_latency_p99_s", "eligibility latency p99", "s"),
        ("eligibility_staleness_p99_s", "eligibility staleness p99", "s"),
    ]),
    ("consent_activity", [
        ("consents_granted", "consents granted", ""),
        ("consents_revoked", "consents revoked", ""),
        ("accesses_allowed", "accesses allowed", ""),
        ("accesses_denied", "accesses denied", ""),
        ("revocation_exposure_max_s", "revocation exposure max", "s"),
        ("accesses_in_exposure_window", "accesses in exposure window", ""),
        ("consent_violations", "consent violations", ""),
    ]),
    ("records_registered", [
        ("records_registered", "records registered", ""),
        ("tampered_records_detected", "tampered records detected", ""),
    ]),
    ("provenance_activity", [
        ("packages_verified", "packages verified", ""),
        ("counterfeits_injected", "counterfeits injected", ""),
        ("counterfeits_detected", "counterfeits detected", ""),
        ("counterfeit_false_alarms", "counterfeit false alarms", ""),
    ]),
    ("trial_anchors", [("trial_anchors", "trial anchors", "")]),
]  # fmt: skip


def _health_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    activity = {
        "consent_activity": summary.get("consents_granted", 0) + summary.get("accesses_allowed", 0) + summary.get("accesses_denied", 0),
        "provenance_activity": summary.get("packages_verified", 0) + summary.get("counterfeits_detected", 0),
    }
    rows: list[tuple[str, str, str]] = []
    for trigger, group in _HEALTH_GROUPS:
        if (activity[trigger] if trigger in activity else summary.get(trigger, 0)) > 0:
            rows.extend(group)
    return rows


_ABSENT = object()


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:  # e.g. a query answered in 40 us
            return f"{value:.2e}"
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _after(value: Any, never: str = "never") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return never
    return f"+{value:.3f} s"


def format_fault_report(summary: dict[str, Any]) -> str:
    """One line per fault: who, when, detection, recovery and impact (empty without faults)."""
    lines = []
    for f in summary.get("fault_report", []):
        name = f"#{f['fault']} {f['kind']}" + (f" '{f['label']}'" if f.get("label") else "")
        who = f" nodes {f['nodes']}" if f.get("nodes") else ""
        end = f.get("end_s")
        until = "" if end is None or (isinstance(end, float) and math.isnan(end)) else f" to {end:g} s"
        delayed = f.get("txs_delayed")
        delayed_text = "n/a" if delayed is None or (isinstance(delayed, float) and math.isnan(delayed)) else f"{int(delayed)}"
        lines.append(
            f"  {name}{who} at {f['start_s']:g} s{until}: detected {_after(f.get('detect_s'), 'no election')}, "
            f"new leader {_after(f.get('new_leader_s'), 'none')}, recovered {_after(f.get('recover_s'))}; "
            f"leader changes {f['leader_changes']}, txs delayed {delayed_text}, dropped {f['txs_dropped']}, lost {f['txs_lost']}"
            + (f" ({f['detail']})" if f.get("detail") else "")
        )
    return "faults:\n" + "\n".join(lines) if lines else ""


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as an aligned two-column text table, then the fault report and invariant notes."""
    lines = [f"{summary.get('scenario', '')}: {summary.get('protocol', '')}, {summary.get('nodes', '')} nodes, seed {summary.get('seed', '')}"]
    rows: list[tuple[str, str, str]] = []
    for row in _SUMMARY_ROWS:
        rows.extend(_health_rows(summary) if row[0] == "__health__" else [row])
    width = max(len(label) for _, label, _ in rows)
    quiet = {"faults", "detect_s", "recover_s", "stalled"} if not summary.get("faults") else set()
    for key, label, unit in rows:
        value = summary.get(key, _ABSENT)
        if value is _ABSENT or key in quiet:
            continue
        if key.endswith("_s") and _fmt(value) == "n/a" and key not in {"latency_p99_s", "latency_p50_s"}:
            continue  # e.g. no claim was paid in this run: say nothing rather than "n/a"
        lines.append(f"  {label:<{width}}  {_fmt(value):>16} {unit}")
    report = format_fault_report(summary)
    if report:
        lines.append(report)
    notes = [n for n in summary.get("invariant_notes", []) if not n.startswith("not checked")]
    if notes:
        lines.append("invariant violations:")
        lines.extend(f"  {n}" for n in notes)
    return "\n".join(lines)


def format_fault_kinds() -> str:
    """Every fault kind with its keys, units and meaning (``hcsim list faults``)."""
    from sim.faults.spec import FAULT_KINDS

    out = ['Write each fault as a [[faults]] table with kind = "<kind>"; times are simulated seconds.']
    for kind, model in FAULT_KINDS.items():
        doc = (model.__doc__ or "").strip().splitlines()[0].replace("``", "")
        out.append(f"\n{kind}: {doc}")
        common = ["at_s", "until_s", "label"]
        for name in [n for n in model.model_fields if n not in common and n != "kind"] + common:
            field = model.model_fields[name]
            default = "required" if field.is_required() else f"default {field.get_default(call_default_factory=True)!r}"
            out.append(f"    {name:<16} {field.description or ''} ({default})")
    return "\n".join(out)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hcsim")
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE first (e.g. your own protocol; it registers itself). Repeatable; "
    "the current directory is on the import path.",
)
def main(plugins: tuple[str, ...]) -> None:
    """hcsim: a performance lab for blockchains shared by hospitals."""
    import importlib

    if plugins and "" not in sys.path:
        sys.path.insert(0, "")
    for module in plugins:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            _fail(f"--plugin {module}: cannot import it ({exc}); is its folder on PYTHONPATH?")


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a scenario key, e.g. --set network.nodes=32.")
@click.option("--seed", type=int, default=None, help="Root seed (overrides the scenario's seed).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Results folder [default: results/<scenario name>].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, print only the summary.")
@click.option("--no-figure", is_flag=True, help="Do not draw the overview figure.")
def run(scenario: Path, overrides: tuple[str, ...], seed: int | None, out: Path | None, quiet: bool, no_figure: bool) -> None:
    """Run one SCENARIO (a TOML file) and write its results folder."""
    from sim.experiment.runner import resolve_scenario
    from sim.experiment.runner import run as run_scenario
    from sim.experiment.store import write_run

    try:
        resolved = resolve_scenario(scenario, overrides, seed)
    except HcsimError as exc:
        _fail(str(exc))
        return
    if resolved.sweep is not None:
        click.echo("note: this scenario has a [sweep] table; hcsim run runs its base scenario once (hcsim sweep runs the grid)", err=True)
    target = out if out is not None else Path("results") / resolved.name
    if (target / "runs").is_dir():
        _fail(f"{target} holds a sweep or capacity search; give this run another --out folder")
        return
    progress = not quiet and sys.stderr.isatty()
    result = run_scenario(resolved, progress=progress)
    write_run(result, target)
    click.echo(format_summary(result.summary))
    if not no_figure:
        import matplotlib

        matplotlib.use("Agg")
        from sim.plots import overview_figure, save_figure

        paths = save_figure(overview_figure(result), target / "figures" / "overview")
        click.echo(f"figure: {paths[0]}")
    click.echo(f"results: {target}/")


def _executor_options(func: Any) -> Any:
    """--workers, --scheduler, --dask-local: where runs execute."""
    func = click.option("--dask-local", type=click.IntRange(min=1), default=None, metavar="N",
                        help="Start a Dask LocalCluster with N worker processes and run there.")(func)
    func = click.option("--scheduler", default=None, metavar="ADDRESS",
                        help="Run on an existing Dask cluster, e.g. tcp://host:8786.")(func)
    func = click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
                        help="Local worker processes [default: one per CPU]; 1 runs in this process.")(func)
    return func


def _pm(mean: Any, half: Any) -> str:
    """``mean ± half`` with 4 significant digits (2 for the half-width)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    text = f"{mean:.4g}"
    if half is not None and not (isinstance(half, float) and math.isnan(half)):
        text += f" ± {half:.2g}"
    return text


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a scenario key (sweep.* too).")
@_executor_options
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Sweep folder [default: results/<name>-sweep].")
@click.option("--retry-failed", is_flag=True, help="Run again the runs recorded as failed.")
@click.option("--run-timeout", type=float, default=None, metavar="SECONDS", help="Record a run still going after this many wall seconds as failed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sweep(
    scenario: Path, overrides: tuple[str, ...], workers: int | None, scheduler: str | None, dask_local: int | None,
    out: Path | None, retry_failed: bool, run_timeout: float | None, quiet: bool,
) -> None:
    """Run every point of SCENARIO's [sweep] table, each replication once; resumable."""
    from sim.experiment.executors import make_executor
    from sim.experiment.sweep import plan_sweep, run_sweep

    try:
        plan = plan_sweep(scenario, overrides)
        executor = make_executor(workers, scheduler, dask_local)
    except HcsimError as exc:
        _fail(str(exc))
        return
    folder = out if out is not None else Path("results") / f"{plan.name}-sweep"
    click.echo(
        f"{plan.name}: {len(plan.points)} points x {plan.sweep['replications']} replications = {len(plan.specs)} runs "
        f"on {executor.description} -> {folder}/"
    )
    try:
        with executor:
            result = run_sweep(scenario, folder, executor, overrides, retry_failed, not quiet, run_timeout)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished runs are saved in {folder}/runs/; run the same command again to resume", err=True)
        sys.exit(130)
    except HcsimError as exc:
        _fail(str(exc))
        return
    p = result.progress
    click.echo(
        f"{p.skipped} already done, ran {p.ok + p.failed} in {result.wall_time_s:.1f} s: {p.ok} ok, {p.failed} failed"
        + (f", {len(p.lost)} lost" if p.lost else "")
    )
    points = result.points
    cols = [*plan.params, "runs"]
    header = "  ".join(f"{c:>16}" for c in [*cols, "throughput_tps", "latency_p50_s", "latency_p99_s"])
    click.echo(header)
    for row in points.to_dict("records"):
        cells = [f"{_fmt(row[c]):>16}" for c in cols]
        cells += [f"{_pm(row.get(m + '_mean'), row.get(m + '_ci95')):>16}" for m in ("throughput_tps", "latency_p50_s", "latency_p99_s")]
        click.echo("  ".join(cells))
    click.echo("(mean ± 95% CI half-width over replications)")
    failed_runs = result.runs[result.runs["status"] == "failed"] if len(result.runs) else result.runs
    for row in failed_runs.head(10).to_dict("records"):
        params = ", ".join(f"{k}={row[k]}" for k in plan.params)
        click.echo(f"failed: run {row['run_id']} ({params}, seed {row['seed']}): {row['error']}")
    for run_id, why in p.lost[:10]:
        click.echo(f"lost: run {run_id}: {why} (run the command again to retry it)")
    click.echo(f"results: {folder}/runs.parquet, {folder}/points.parquet; figures: hcsim report {folder}")
    if len(failed_runs) or p.lost:
        sys.exit(1)


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--vary", required=True, type=click.Choice(["workload.rate_tps", "network.nodes"]), help="The key to push up.")
@click.option("--slo", "slos", multiple=True, metavar="METRIC<=BOUND", help="Objective on a summary metric (repeatable), e.g. latency_p99_s<=2.")
@click.option("--replications", type=click.IntRange(min=1), default=3, show_default=True, help="Runs per value.")
@click.option("--rule", type=click.Choice(["mean", "upper"]), default="mean", show_default=True,
              help="SLO checked on the mean over replications, or on the unfavourable end of its 95% CI.")
@click.option("--saturation", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True,
              help="Saturated (fails) when throughput < this fraction of the offered rate.")
@click.option("--rel-tol", type=click.FloatRange(0, 1, min_open=True), default=0.02, show_default=True,
              help="Stop when the bracket is this narrow relative to the value.")
@click.option("--lo", "lower", type=float, default=None, help="A value known to meet the SLO (skips bracketing).")
@click.option("--hi", "upper", type=float, default=None, help="A value known to fail (skips bracketing).")
@click.option("--max", "maximum", type=float, default=None, help="Never try more than this.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a scenario key.")
@_executor_options
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder [default: results/<name>-capacity-<rate_tps or nodes>].")
@click.option("--run-timeout", type=float, default=None, metavar="SECONDS", help="Record a run still going after this many wall seconds as failed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def capacity(
    scenario: Path, vary: str, slos: tuple[str, ...], replications: int, rule: str, saturation: float, rel_tol: float,
    lower: float | None, upper: float | None, maximum: float | None, overrides: tuple[str, ...], workers: int | None,
    scheduler: str | None, dask_local: int | None, out: Path | None, run_timeout: float | None, quiet: bool,
) -> None:
    """Find the largest --vary value of SCENARIO that meets every --slo (bracketing, then bisection)."""
    from sim.experiment.capacity import Evaluation, Slo, find_capacity
    from sim.experiment.executors import make_executor
    from sim.experiment.sweep import read_raw

    try:
        parsed = [Slo.parse(s) for s in slos]
        _raw, base = read_raw(scenario, overrides)
        executor = make_executor(workers if workers is not None else min(replications, 4), scheduler, dask_local)
    except HcsimError as exc:
        _fail(str(exc))
        return
    folder = out if out is not None else Path("results") / f"{base.name}-capacity-{vary.rsplit('.', 1)[-1]}"
    slo_text = ", ".join(map(str, parsed)) or "none (saturation only)"
    click.echo(f"{base.name}: vary {vary}, SLO {slo_text}, not saturated (throughput >= {saturation:g} x offered), "
               f"rule {rule}, {replications} replications per value, on {executor.description}")

    def show(e: Evaluation) -> None:
        cells = "   ".join(f"{m} {_pm(mean, half)}" for m, (mean, half) in e.metrics.items())
        verdict = "meets" if e.meets else "fails"
        click.echo(f"  {vary} = {e.value:<10g} {verdict}   {cells}   {e.individually}/{e.runs + e.failed} meet alone"
                   + (f"   ({e.reason})" if e.reason else ""))

    try:
        with executor:
            result = find_capacity(
                scenario, vary, parsed, replications, rule, saturation, rel_tol, lower, upper, maximum, folder,
                executor, overrides, progress=not quiet and sys.stderr.isatty(), run_timeout_s=run_timeout, on_evaluation=show,
            )
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished runs are saved in {folder}/runs/; run the same command again to resume", err=True)
        sys.exit(130)
    except HcsimError as exc:
        _fail(str(exc))
        return
    lo, hi = result.capacity, result.first_failing
    if result.status == "below_min":
        click.echo(f"no value meets the SLO: even {vary} = {hi:g} fails")
    elif result.status == "above_max":
        click.echo(f"capacity: {vary} >= {lo:g} (the SLO is still met at the largest value tried; raise --max)")
    else:
        assert lo is not None and hi is not None
        width = "1 node" if vary == "network.nodes" else f"{(hi - lo) / lo:.1%} of the value"
        click.echo(f"capacity: {vary} = {lo:g} meets the SLO, {hi:g} does not: the knee lies in [{lo:g}, {hi:g}) "
                   f"(bracket {width})")
    if result.status == "found" and replications > 1:
        cons = result.conservative
        click.echo("  with 95% confidence (each SLO met by the CI bound at every value tried up to it): "
                   + (f"{vary} >= {cons:g}" if cons is not None else "no value tried qualifies; add replications"))
    for label, value in (("at capacity", lo), ("first failing", hi)):
        e = result.at(value)
        if e is not None:
            cells = ", ".join(f"{m} = {_pm(mean, half)}" for m, (mean, half) in e.metrics.items())
            click.echo(f"  {label} ({e.value:g}): {cells} (mean ± 95% CI over {e.runs} runs); "
                       f"{e.individually}/{e.runs + e.failed} replications meet the SLO on their own" + (f"; {e.reason}" if e.reason else ""))
    click.echo(f"results: {folder}/capacity.json, {folder}/evaluations.parquet; figures: hcsim report {folder}")
    if result.status == "below_min":
        sys.exit(1)


@main.command()
@click.option("--baseline", "baseline_dir", type=click.Path(path_type=Path), default=Path("results/baselines"), show_default=True,
              help="Folder of baseline JSON files.")
@click.option("--reference", "reference_dir", type=click.Path(path_type=Path), default=Path("experiments/reference"), show_default=True,
              help="Folder of reference scenarios.")
@click.option("--tolerance", default=None, metavar="PERCENT", help="Use this tolerance (e.g. 5%) for every metric instead of the stored ones.")
@click.option("--only", multiple=True, metavar="NAME", help="Only this reference scenario (repeatable).")
@click.option("--update", is_flag=True, help="Rewrite the baselines from this tree (deliberately).")
def regress(baseline_dir: Path, reference_dir: Path, tolerance: str | None, only: tuple[str, ...], update: bool) -> None:
    """Re-run the reference scenarios; exit 1 if a metric moved beyond its tolerance."""
    from sim.experiment import regress as gate

    try:
        files = gate.reference_files(reference_dir, list(only) or None)
        tol = gate.parse_tolerance(tolerance) if tolerance is not None else None
        if update:
            for path in gate.update_baselines(files, baseline_dir):
                click.echo(f"wrote {path}")
            return
        table = gate.compare(files, baseline_dir, tol)
    except HcsimError as exc:
        _fail(str(exc))
        return
    click.echo(gate.format_table(table))
    bad = table[table["status"].isin(["REGRESSED", "CHANGED", "MISSING", "STALE"])]
    better = int((table["status"] == "improved").sum())
    if len(bad):
        click.echo(f"regress: FAIL: {len(bad)} of {len(table)} checks failed" + (f"; {better} improved" if better else ""))
        sys.exit(1)
    click.echo(f"regress: ok: {len(table)} checks over {len(files)} reference scenarios"
               + (f"; {better} improved beyond tolerance (hcsim regress --update to adopt)" if better else ""))


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
def report(results_dir: Path) -> None:
    """Write figures (PNG, SVG) and a self-contained report.html for a run, sweep or capacity folder."""
    from sim.report import write_report

    try:
        page = write_report(results_dir)
    except HcsimError as exc:
        _fail(str(exc))
        return
    figures = sorted((results_dir / "figures").glob("*.png"))
    click.echo(f"figures: {len(figures)} in {results_dir / 'figures'}/ (PNG and SVG)")
    click.echo(f"report: {page}")


@main.command(name="list")
@click.argument("what", type=click.Choice(["protocols", "topologies", "workloads", "faults"]))
def list_(what: str) -> None:
    """List registered protocols, topologies, workload transaction types or fault kinds."""
    if what == "faults":
        click.echo(format_fault_kinds())
        return
    if what == "protocols":
        from sim.consensus.base import protocol_names

        names = protocol_names()
    elif what == "topologies":
        from sim.network.topology import TOPOLOGIES

        names = sorted(TOPOLOGIES)
    else:
        from sim.workload.types import TX_TYPES

        names = [f"{name}\t{kind.description}" for name, kind in TX_TYPES.items()]  # grouped by domain
    for name in names:
        click.echo(name)


@main.command()
@click.option("--quick", is_flag=True, help="Shorter runs with proportionally wider tolerances.")
@click.option("--case", "cases", multiple=True, metavar="NAME", help="Run only these cases (repeatable).")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None,
    help="Also write the table here: Markdown if the name ends in .md, else CSV.",
)  # fmt: skip
def validate(quick: bool, cases: tuple[str, ...], out: Path | None) -> None:
    """Check the simulator against theory and published results; exit 1 on any failure."""
    from sim.validation import run_validation

    try:
        table = run_validation(quick=quick, names=list(cases) or None)
    except KeyError as exc:
        _fail(str(exc.args[0]))
        return
    click.echo(format_validation(table))
    if out is not None:
        from sim import __version__
        from sim.experiment.store import write_text_atomic
        from sim.validation.markdown import validation_markdown

        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".md":
            mode = "quick mode, " if quick else ""
            heading = f"hcsim validate ({mode}hcsim {__version__})"
            write_text_atomic(out, validation_markdown(table, heading))
        else:
            table.to_csv(out, index=False)
    failed = int((table["verdict"] != "pass").sum())
    click.echo(f"{len(table) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@main.command()
@click.option("--sizes", default="16,64,256,1024", show_default=True, help="Comma-separated network sizes.")
@click.option("--instances", type=click.IntRange(min=1), default=None, help="Consensus instances per run [default: 20, --quick: 4].")
@click.option("--max-message-s", type=float, default=60.0, show_default=True, help="Skip message mode where its estimated wall time exceeds this.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Also write the results as JSON here.")
@click.option("--quick", is_flag=True, help="Few instances and a short message-mode budget (a smoke test, not a measurement).")
def bench(sizes: str, instances: int | None, max_message_s: float, json_path: Path | None, quick: bool) -> None:
    """PBFT instances per wall second in message and phase mode, against the bare numpy kernel."""
    from sim.experiment.bench import bench_rows, format_table, machine_info, to_json

    try:
        ns = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        _fail(f"--sizes must be comma-separated integers, got {sizes!r}")
        return
    if not ns or min(ns) < 4:
        _fail("--sizes: PBFT needs at least 4 nodes per size")
        return
    count = instances or (4 if quick else 20)
    machine = machine_info()
    rows = bench_rows(
        ns, instances=count, message_instances_large=min(count, 3),
        max_message_s=10.0 if quick else max_message_s, log=lambda line: click.echo(line, err=True),
    )  # fmt: skip
    click.echo(f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}, load {machine['loadavg'][0]:.2f}")
    click.echo(format_table(rows))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(to_json(rows, machine))
    click.echo(to_json(rows, machine))


def format_validation(table: Any) -> str:
    """The validation table as aligned text: case, reference, simulated, tolerance, verdict."""
    lines = [f"{'case':<34} {'reference':>12} {'simulated':>12} {'tolerance':>11}  {'unit':<16} verdict"]
    for row in table.itertuples():
        lines.append(
            f"{row.case:<34} {row.reference_value:>12.5g} {row.simulated_value:>12.5g} {row.tolerance:>11.3g}  "
            f"{row.unit:<16} {row.verdict}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
