"""The healthcare keys of ``[workload]``: load shape, clients, population and behaviour.

``sim.config.WorkloadConfig`` inherits these fields, so they are written flat in
the ``[workload]`` table of a scenario. Checks that need the number of nodes are
in :func:`workload_problems`, called by the scenario's cross-checks.

Every default that is not from shared/reference/README.md is marked as an
assumption: the reference has no published denial rates, claim amounts or
diurnal profile, so those are scenario parameters, not facts.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sim.schema import StrictModel

__all__ = ["DEFAULT_DIURNAL", "WorkloadKeys", "load_trace", "workload_problems"]

#: Assumption (no published peak-to-average ratio, shared/reference): an office-hours shape,
#: low at night, peaks mid-morning and mid-afternoon. Normalized to mean 1 at use.
DEFAULT_DIURNAL = [
    0.20, 0.15, 0.12, 0.10, 0.10, 0.15, 0.35, 0.80, 1.40, 1.80, 1.90, 1.80,
    1.50, 1.70, 1.80, 1.70, 1.50, 1.20, 0.90, 0.70, 0.55, 0.45, 0.35, 0.25,
]  # fmt: skip


def load_trace(path: str | Path) -> list[tuple[float, str, int, int]]:
    """Read a CSV trace into ``(time_s, type, origin or -1, size_bytes or 0)`` rows.

    Format: header ``time_s,type,origin,size_bytes``; ``#`` lines are comments.

    ``origin`` empty means "the workload picks a sender"; ``size_bytes`` empty means the
    type's default size. Rows must be in non-decreasing time order.

    Raises:
        ValueError: with the line number, for a malformed row.
    """
    from sim.workload.types import TX_TYPES

    rows: list[tuple[float, str, int, int]] = []
    text = Path(path).read_text(encoding="utf-8").splitlines()
    lines = [(i + 1, line) for i, line in enumerate(text) if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"trace {path} is empty")
    header = [h.strip() for h in lines[0][1].split(",")]
    if header != ["time_s", "type", "origin", "size_bytes"]:
        raise ValueError(f"trace {path} line {lines[0][0]}: header must be time_s,type,origin,size_bytes, got {','.join(header)}")
    last = 0.0
    for lineno, fields in zip((n for n, _ in lines[1:]), csv.reader(line for _, line in lines[1:]), strict=True):
        if len(fields) != 4:
            raise ValueError(f"trace {path} line {lineno}: expected 4 fields, got {len(fields)}")
        time_text, kind, origin_text, size_text = (f.strip() for f in fields)
        try:
            time_s = float(time_text)
            origin = int(origin_text) if origin_text else -1
            size = int(size_text) if size_text else 0
        except ValueError as exc:
            raise ValueError(f"trace {path} line {lineno}: {exc}") from None
        if kind not in TX_TYPES:
            raise ValueError(f"trace {path} line {lineno}: unknown type {kind!r}")
        if TX_TYPES[kind].generated:
            raise ValueError(f"trace {path} line {lineno}: {kind!r} is sent by the system, not by clients")
        if time_s < last or time_s < 0:
            raise ValueError(f"trace {path} line {lineno}: time {time_s} is before the previous row ({last})")
        if size < 0:
            raise ValueError(f"trace {path} line {lineno}: negative size")
        last = time_s
        rows.append((time_s, kind, origin, size))
    return rows


RoleSpec = int | list[int]


class WorkloadKeys(StrictModel):
    """Healthcare keys of ``[workload]`` (see README, "Healthcare workloads")."""

    # ----------------------------------------------------------------- load
    node_rate_tps: list[float] | None = Field(
        None, description="per-node arrival rate, one entry per node (overrides rate_tps and origins)"
    )
    diurnal_multipliers: list[float] = Field(
        default_factory=lambda: list(DEFAULT_DIURNAL),
        description="arrival = diurnal: 24 hourly rate multipliers (normalized to mean 1)",
    )
    day_s: float = Field(86_400.0, gt=0, description="length of one simulated day, seconds (compress a day for short runs)")
    start_hour: float = Field(0.0, ge=0, lt=24, description="hour of day at time 0")
    burst_factor: float = Field(5.0, ge=1, description="arrival = bursty: rate multiplier in the burst state")
    burst_mean_s: float = Field(10.0, gt=0, description="arrival = bursty: mean time in the burst state, seconds")
    calm_mean_s: float = Field(50.0, gt=0, description="arrival = bursty: mean time in the calm state, seconds")
    trace: str | None = Field(None, description="arrival = trace: CSV file (time_s,type,origin,size_bytes)")
    # -------------------------------------------------------------- clients
    clients: Literal["open", "closed"] = Field("open", description="open loop (arrivals) or closed loop (think time)")
    closed_clients: int = Field(64, ge=1, description="clients = closed: number of clients, spread over the origins")
    think_s: float = Field(1.0, ge=0, description="clients = closed: mean think time between requests, seconds")
    timeout_s: float = Field(0.0, ge=0, description="client gives up on an attempt after this long (0 = never)")
    max_retries: int = Field(0, ge=0, description="resubmissions after a timeout or an invalid result")
    retry_invalid: bool = Field(True, description="retry a transaction invalidated by MVCC validation")
    # ----------------------------------------------------------- population
    patients: int = Field(100_000, ge=1, description="patients covered by the network")
    # Assumption: a family policy covers ~2.5 people.
    policies: int = Field(40_000, ge=1, description="insurance policies (households and group plans)")
    hotspot_fraction: float = Field(
        0.0, ge=0, le=1, description="share of claims against the group policies (contention); the rest hit household policies"
    )
    hotspot_policies: int = Field(1, ge=1, description="with hotspot_fraction > 0: group (employer) policies claims concentrate on")
    group_policy_members: int = Field(5_000, ge=1, description="with hotspot_fraction > 0: members of each group policy")
    annual_limit_usd: float = Field(100_000.0, gt=0, description="annual benefit limit per member (group: x members)")
    active_member_fraction: float = Field(0.97, ge=0, le=1, description="members with active coverage (assumption)")
    excluded_category_fraction: float = Field(0.05, ge=0, le=1, description="chance a policy excludes a category (assumption)")
    insurers: RoleSpec = Field(0, description="insurer nodes: a count (highest ids; 0 = n/8, at least 1) or a list of ids ([] = none)")
    manufacturers: RoleSpec = Field(0, description="manufacturer nodes: a count (lowest ids; 0 = n/8) or a list")
    distributors: RoleSpec = Field(0, description="distributor nodes: a count (after manufacturers; 0 = n/8) or a list")
    pharmacies: RoleSpec = Field(0, description="pharmacy nodes: a count (after distributors; 0 = n/4) or a list")
    # ------------------------------------------------------------ behaviour
    duplicate_claim_fraction: float = Field(0.01, ge=0, le=1, description="claims resubmitting an earlier service (assumption)")
    fraud_amount_usd: float = Field(25_000.0, gt=0, description="payer rule: claims above this are pended")
    max_claims_per_patient_day: int = Field(4, ge=1, description="payer rule: more claims per patient and day are pended")
    prior_auth_categories: list[str] = Field(
        default_factory=list, description="claim categories needing an approved prior authorization, e.g. ['imaging', 'surgery']"
    )
    payment_interval_s: float = Field(
        0.0, ge=0, description="insurer remittance cycle: pays approved claims this often (0 = no payments on chain)"
    )
    pa_review_s: float = Field(2.0, ge=0, description="insurer review time before a prior authorization decision")
    access_consented_fraction: float = Field(
        0.8, ge=0, le=1, description="share of record accesses aimed at consents the provider has held"
    )
    record_size_bytes: int = Field(200_000, ge=1, description="size of an off-chain record fetched to verify (assumption)")
    tamper_fraction: float = Field(0.0, ge=0, le=1, description="share of off-chain records altered after registration")
    counterfeit_fraction: float = Field(
        0.0, ge=0, le=1, description="share of drug verifications and commissions that are counterfeit"
    )
    trials: int = Field(0, ge=0, description="clinical trials anchoring data periodically")
    trial_anchor_interval_s: float = Field(60.0, gt=0, description="each trial anchors a data hash this often")

    @field_validator("diurnal_multipliers")
    @classmethod
    def _hourly(cls, values: list[float]) -> list[float]:
        if len(values) != 24 or min(values) < 0 or sum(values) <= 0:
            raise ValueError("needs 24 non-negative hourly multipliers with a positive sum")
        return values

    @field_validator("prior_auth_categories")
    @classmethod
    def _categories(cls, values: list[str]) -> list[str]:
        from sim.contracts.claims import CLAIM_CATEGORIES

        bad = [v for v in values if v not in CLAIM_CATEGORIES]
        if bad:
            raise ValueError(f"unknown categories {bad}; known: {', '.join(CLAIM_CATEGORIES)}")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadKeys:
        if self.trace is not None:
            path = Path(self.trace)
            if not path.is_file():
                raise ValueError(f"trace file {self.trace!r} does not exist (paths are relative to the working directory)")
            load_trace(path)
        if self.clients == "closed" and self.timeout_s <= 0:
            raise ValueError("clients = 'closed' needs timeout_s > 0, or a lost transaction stalls its client forever")
        if self.hotspot_fraction > 0:
            if self.hotspot_policies >= self.policies:
                raise ValueError(f"hotspot_policies = {self.hotspot_policies} must be below policies = {self.policies}")
            if self.hotspot_policies * self.group_policy_members >= self.patients:
                raise ValueError("hotspot_policies x group_policy_members must be below patients (the rest hold household policies)")
        return self


def workload_problems(wl: WorkloadKeys, n_nodes: int) -> list[str]:
    """Problems of ``[workload]`` that depend on the number of nodes."""
    problems: list[str] = []
    for role in ("insurers", "manufacturers", "distributors", "pharmacies"):
        spec = getattr(wl, role)
        if isinstance(spec, list):
            bad = [i for i in spec if not 0 <= i < n_nodes]
            if bad:
                problems.append(f"workload.{role} = {spec}: needs node ids in 0..{n_nodes - 1}")
        elif spec < 0 or spec > n_nodes:
            problems.append(f"workload.{role} = {spec}: a count must be in 0..{n_nodes}")
    if wl.node_rate_tps is not None:
        if len(wl.node_rate_tps) != n_nodes:
            problems.append(f"workload.node_rate_tps has {len(wl.node_rate_tps)} entries for {n_nodes} nodes")
        elif min(wl.node_rate_tps) < 0:
            problems.append("workload.node_rate_tps has a negative rate")
    mix = {name: weight for name, weight in getattr(wl, "mix", {}).items() if weight > 0}
    if "trial_anchor" in mix and wl.trials == 0:
        problems.append("workload.mix has trial_anchor but workload.trials = 0: set the number of trials")
    from sim.workload.population import Roles
    from sim.workload.types import TX_TYPES

    roles = Roles.build(wl, n_nodes)
    needs_insurer = {"claim", "eligibility", "prior_auth_request"} & set(mix)
    if needs_insurer and not roles.insurers:
        problems.append(f"workload.mix has {sorted(needs_insurer)} but there is no insurer (workload.insurers = [])")
    origins = getattr(wl, "origins", "all")
    allowed = set(range(n_nodes)) if origins == "all" else set(origins)
    for name in sorted(mix):
        players = {i for r in TX_TYPES[name].senders for i in roles.nodes_with(r)}
        if not players:
            problems.append(f"workload.mix has {name} but no node plays {' or '.join(TX_TYPES[name].senders)}")
        elif not players & allowed:
            problems.append(
                f"workload.origins = {origins}: none of these nodes may send {name} "
                f"(sent by {' or '.join(TX_TYPES[name].senders)}: nodes {sorted(players)[:10]})"
            )
    if wl.trace is not None and Path(wl.trace).is_file():
        bad_origins = sorted({o for _, _, o, _ in load_trace(wl.trace) if o >= n_nodes})
        if bad_origins:
            problems.append(f"workload.trace has origins {bad_origins[:5]} outside 0..{n_nodes - 1}")
    return problems
