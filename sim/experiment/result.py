"""RunResult: the tables and summary of one run, and how they are built from a Simulation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.faults.recovery import RECOVERY_COLUMNS, recovery_table, stall_status
from sim.metrics.healthcare import (
    consent_violations,
    healthcare_summary,
    revocations_table,
)
from sim.metrics.invariants import (
    check_conservation,
    check_durability,
    check_ledgers,
    check_safety,
    invariants_table,
)
from sim.metrics.summary import latency_summary, throughput_series

if TYPE_CHECKING:
    from sim.config import Scenario
    from sim.experiment.simulation import Simulation

__all__ = ["TABLES", "RunResult", "collect"]

#: the tables every run has, in the order they are written
TABLES = (
    "transactions", "blocks", "messages", "nodes", "consensus", "faults", "recovery", "invariants", "throughput",
    "requests", "contracts", "claims", "queries", "audit", "revocations",
)  # fmt: skip


@dataclass
class RunResult:
    """Everything one run produced.

    Attributes:
        scenario: the validated scenario (``scenario.resolved()`` for plain data).
        seed: the root seed used.
        summary: one flat dict of headline numbers (see README, "Results").
        tables: table name -> DataFrame (see :data:`TABLES`).
        manifest: provenance (scenario, seed, version, git commit, times).
    """

    scenario: Scenario
    seed: int
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def transactions(self) -> pd.DataFrame:
        return self.tables["transactions"]

    @property
    def blocks(self) -> pd.DataFrame:
        return self.tables["blocks"]

    @property
    def messages(self) -> pd.DataFrame:
        return self.tables["messages"]

    @property
    def nodes(self) -> pd.DataFrame:
        return self.tables["nodes"]

    @property
    def consensus(self) -> pd.DataFrame:
        return self.tables["consensus"]

    @property
    def faults(self) -> pd.DataFrame:
        return self.tables["faults"]

    @property
    def recovery(self) -> pd.DataFrame:
        return self.tables["recovery"]

    @property
    def invariants(self) -> pd.DataFrame:
        return self.tables["invariants"]

    @property
    def throughput(self) -> pd.DataFrame:
        return self.tables["throughput"]

    @property
    def requests(self) -> pd.DataFrame:
        return self.tables["requests"]

    @property
    def contracts(self) -> pd.DataFrame:
        return self.tables["contracts"]

    @property
    def claims(self) -> pd.DataFrame:
        return self.tables["claims"]

    @property
    def queries(self) -> pd.DataFrame:
        return self.tables["queries"]

    @property
    def audit(self) -> pd.DataFrame:
        return self.tables["audit"]

    @property
    def revocations(self) -> pd.DataFrame:
        return self.tables["revocations"]

    def summary_frame(self) -> pd.DataFrame:
        """The summary as a one-row DataFrame."""
        return pd.DataFrame([self.summary])


def _messages_table(sim: Simulation) -> pd.DataFrame:
    net = sim.network
    keys = sorted(set(net.sent) | set(net.received) | set(net.dropped))
    rows = [
        {
            "node_id": node,
            "msg_type": kind,
            "sent_count": net.sent.get((node, kind), [0, 0])[0],
            "sent_bytes": net.sent.get((node, kind), [0, 0])[1],
            "received_count": net.received.get((node, kind), [0, 0])[0],
            "received_bytes": net.received.get((node, kind), [0, 0])[1],
            "dropped_count": net.dropped.get((node, kind), 0),
        }
        for node, kind in keys
    ]
    cols = ["node_id", "msg_type", "sent_count", "sent_bytes", "received_count", "received_bytes", "dropped_count"]
    return pd.DataFrame(rows, columns=cols)


def _nodes_table(sim: Simulation) -> pd.DataFrame:
    until = sim.env.now
    return pd.DataFrame(
        {
            "node_id": [n.node_id for n in sim.nodes],
            "region": [sim.topology.region[n.node_id] for n in sim.nodes],
            "up": [n.up for n in sim.nodes],
            "cpu_utilization": [n.cpu.utilization(until) for n in sim.nodes],
            "cpu_jobs": [n.cpu.jobs for n in sim.nodes],
            "mempool_mean_tx": [n.mempool.mean_tx(until) for n in sim.nodes],
            "mempool_peak_tx": [n.mempool.peak_tx for n in sim.nodes],
            "mempool_end_tx": [len(n.mempool) for n in sim.nodes],
            "ledger_height": [n.ledger.height for n in sim.nodes],
            "applied_height": [n.applied_height for n in sim.nodes],
        }
    )


_FAULT_COLUMNS = ["time_s", "fault", "label", "kind", "action", "nodes", "detail"]


def _fault_tables(sim: Simulation, transactions: pd.DataFrame, consensus: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``faults`` (what happened when, to whom) and ``recovery`` (one row per fault) tables."""
    injector = sim.faults
    if injector is None:
        return pd.DataFrame(columns=_FAULT_COLUMNS), pd.DataFrame(columns=RECOVERY_COLUMNS)
    faults = pd.DataFrame(injector.rows, columns=_FAULT_COLUMNS)
    details: dict[int, str] = {}
    for b in injector.behaviours:
        if b.counts:
            details[b.fault_id] = "; ".join(x for x in (details.get(b.fault_id, ""), f"node {b.node_id}: {b.summary()}") if x)
    windows = sorted(injector.windows.values(), key=lambda w: (w.start_s, w.fault))
    recovery = recovery_table(windows, transactions, consensus, sim.scenario.warmup_s, sim.env.now, details)
    return faults, recovery


def _fault_summary(sim: Simulation, transactions: pd.DataFrame, recovery: pd.DataFrame) -> dict[str, Any]:
    """Summary keys about faults: counts, first fault's detection and recovery, stall, per-fault report."""
    out: dict[str, Any] = {"faults": len(sim.scenario.faults)}
    out.update(stall_status(transactions, sim.env.now, sim.scenario.metrics.stall_after_s))
    first = recovery.iloc[0] if len(recovery) else None
    out["detect_s"] = float(first["detect_s"]) if first is not None else math.nan
    out["recover_s"] = float(first["recover_s"]) if first is not None else math.nan
    guard = sim.faults.guard if sim.faults is not None else None
    out["invalid_blocks_rejected"] = len(guard.rejected_blocks) if guard else 0
    out["invalid_messages_dropped"] = guard.rejected_messages if guard else 0
    out["fault_report"] = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in recovery.to_dict("records")
    ]
    return out


def collect(sim: Simulation, wall_time_s: float, manifest: dict[str, Any] | None = None) -> RunResult:
    """Build the tables, summary and invariant results of a finished simulation."""
    scenario = sim.scenario
    rec = sim.recorder
    transactions = rec.transactions_table()
    duration_s = sim.env.now
    consensus = rec.consensus_table()
    faults, recovery = _fault_tables(sim, transactions, consensus)
    honest = sim.faults.honest() if sim.faults is not None else list(range(sim.n))
    health = rec.health
    contracts = health.contracts_table()
    queries = health.queries_table()
    ledgers = [n.ledger for n in sim.nodes]
    safety, safety_notes = check_safety(ledgers, honest)
    integrity, integrity_notes = check_ledgers(ledgers, honest)
    submitted = len(sim.txs)
    if rec.enabled:
        conservation, conservation_notes = check_conservation(transactions, submitted, sim.pending_tx_ids())
        committed_ids = transactions.loc[transactions["outcome"] == "committed", "tx_id"].to_numpy()
        lost, lost_notes = check_durability(ledgers, honest, committed_ids.tolist())
    else:
        conservation, conservation_notes = 0, ["not checked: metrics.enabled = false"]
        lost, lost_notes = 0, ["not checked: metrics.enabled = false"]
    consent, consent_notes = consent_violations(contracts, queries)
    checks = {
        "safety": (safety, safety_notes),
        "ledger_integrity": (integrity, integrity_notes),
        "conservation": (conservation, conservation_notes),
        "durability": (lost, lost_notes),
        "consent": (consent, consent_notes),
    }
    tables = {
        "transactions": transactions,
        "blocks": rec.blocks_table(),
        "messages": _messages_table(sim),
        "nodes": _nodes_table(sim),
        "consensus": consensus,
        "faults": faults,
        "recovery": recovery,
        "invariants": invariants_table(checks),
        "throughput": throughput_series(transactions, duration_s, scenario.metrics.throughput_bin_s),
        "requests": sim.workload.requests_table(),
        "contracts": contracts,
        "claims": sim.workload.claims_table(),
        "queries": queries,
        "audit": health.audit_table(),
    }
    submit_s = [r.first_submit_s for r in sim.workload.requests]
    tables["revocations"] = revocations_table(health, submit_s, sim.n, duration_s, queries)
    outcomes = transactions["outcome"].value_counts()
    messages, size_bytes = sim.network.totals()
    committed = int(outcomes.get("committed", 0))
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "protocol": scenario.protocol.name,
        "nodes": sim.n,
        "seed": sim.seed,
        "submitted": submitted,
        "committed": committed,
        "invalid": int(outcomes.get("invalid", 0)),
        "rejected": int(outcomes.get("rejected", 0)),
        "dropped": int(outcomes.get("dropped", 0)),
        "pending": int(outcomes.get("pending", 0)),
    }
    summary.update(latency_summary(transactions, scenario.warmup_s, duration_s))
    summary.update(
        {
            "blocks": int(max(n.ledger.height for n in sim.nodes)),
            "messages": messages,
            "bytes": size_bytes,
            "messages_per_tx": messages / committed if committed else math.nan,
            "bytes_per_tx": size_bytes / committed if committed else math.nan,
            "leader_changes": int((tables["consensus"]["kind"] == "leader_elected").sum()) if len(tables["consensus"]) else 0,
            "safety_violations": safety,
            "ledger_violations": integrity,
            "conservation_violations": conservation,
            "committed_lost": lost,
            "consent_violations": consent,
            "invariant_violations": safety + integrity + conservation + lost + consent,
            "invariant_notes": safety_notes + integrity_notes + conservation_notes + lost_notes + consent_notes,
            "cpu_utilization_max": float(tables["nodes"]["cpu_utilization"].max()),
            "sim_time_s": float(duration_s),
            "wall_time_s": float(wall_time_s),
            "events": int(sim.env.events_scheduled),
            "events_per_wall_s": float(sim.env.events_scheduled / wall_time_s) if wall_time_s > 0 else math.nan,
        }
    )
    summary.update(_fault_summary(sim, transactions, recovery))
    summary.update(healthcare_summary(tables, scenario.warmup_s))
    summary.update(sim.workload.counters())
    return RunResult(scenario=scenario, seed=sim.seed, summary=summary, tables=tables, manifest=manifest or {})
