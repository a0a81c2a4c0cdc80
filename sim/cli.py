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
    ("sim_time_s", "simulated time", "s"),
    ("wall_time_s", "wall time", "s"),
    ("events", "events", ""),
    ("events_per_wall_s", "events per wall second", "/s"),
]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
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
    width = max(len(label) for _, label, _ in _SUMMARY_ROWS)
    for key, label, unit in _SUMMARY_ROWS:
        if key in summary:
            lines.append(f"  {label:<{width}}  {_fmt(summary[key]):>16} {unit}")
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
def main() -> None:
    """hcsim: a performance lab for blockchains shared by hospitals."""


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
    target = out if out is not None else Path("results") / resolved.name
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

        names = [f"{name}\t{TX_TYPES[name].description}" for name in sorted(TX_TYPES)]
    for name in names:
        click.echo(name)


@main.command()
@click.option("--quick", is_flag=True, help="Shorter runs with proportionally wider tolerances.")
@click.option("--case", "cases", multiple=True, metavar="NAME", help="Run only these cases (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the table as CSV here.")
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
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    failed = int((table["verdict"] != "pass").sum())
    click.echo(f"{len(table) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)


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
