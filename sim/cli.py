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


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:  # e.g. a query answered in 40 us
            return f"{value:.2e}"
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as an aligned two-column text table."""
    lines = [f"{summary.get('scenario', '')}: {summary.get('protocol', '')}, {summary.get('nodes', '')} nodes, seed {summary.get('seed', '')}"]
    rows: list[tuple[str, str, str]] = []
    for row in _SUMMARY_ROWS:
        rows.extend(_health_rows(summary) if row[0] == "__health__" else [row])
    width = max(len(label) for _, label, _ in rows)
    for key, label, unit in rows:
        if key in summary:
            lines.append(f"  {label:<{width}}  {_fmt(summary[key]):>16} {unit}")
    return "\n".join(lines)


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
@click.argument("what", type=click.Choice(["protocols", "topologies", "workloads"]))
def list_(what: str) -> None:
    """List registered protocols, topologies or workload transaction types."""
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


if __name__ == "__main__":
    main()
