"""Faults as data: the ``[[faults]]`` entries of a scenario.

Each entry is a table whose ``kind`` selects its model; every time is simulated
seconds from the start of the run (``at_s`` when the fault starts, ``until_s``
when it ends). :func:`check_faults` cross-checks the entries against the rest of
the scenario (node ids, regions, times inside the run, overlapping Byzantine
roles) and, with ``strict_faults = true``, against what the protocol tolerates.
Every problem is reported before anything runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, NonNegativeInt, model_validator

from sim.schema import StrictModel

if TYPE_CHECKING:
    from sim.config import NetworkConfig, Scenario

__all__ = [
    "BEHAVIOURS",
    "FAULT_KINDS",
    "ByzantineFault",
    "ChurnFault",
    "ClockSkewFault",
    "CrashFault",
    "DegradeFault",
    "FaultSpec",
    "IsolateFault",
    "PartitionFault",
    "check_faults",
    "node_regions",
]

#: Byzantine behaviours (``behaviour`` key of a ``byzantine`` fault)
BEHAVIOURS = ("silent", "equivocate", "delay", "censor", "invalid")

Target = list[NonNegativeInt] | Literal["leader"]


class _Fault(StrictModel):
    label: str = Field("", description="optional name shown in the faults and recovery tables")
    at_s: float = Field(..., ge=0, description="start time, simulated seconds")
    until_s: float | None = Field(None, description="end time, simulated seconds (None: lasts to the end of the run)")

    @model_validator(mode="after")
    def _ordered(self) -> _Fault:
        if self.until_s is not None and self.until_s <= self.at_s:
            raise ValueError(f"until_s = {self.until_s} must be after at_s = {self.at_s}")
        return self

    def end_s(self, duration_s: float) -> float:
        """When the fault stops acting (the run's end if it never does)."""
        return duration_s if self.until_s is None else self.until_s


class CrashFault(_Fault):
    """Crash nodes (or the current leader) at ``at_s``; recover them at ``until_s``.

    A recovered node keeps its ledger (disk) and loses its mempool and volatile
    protocol state; it catches up from its peers (the protocol's own sync, or block
    sync by the framework) and a ``caught_up`` row records blocks and bytes.
    """

    kind: Literal["crash"]
    nodes: Target = Field(..., description='node ids, or "leader": the node the others follow at at_s')
    until_s: float | None = Field(None, description="recovery time, seconds (None: stays down)")


class PartitionFault(_Fault):
    """Split the network into groups from ``at_s``; heal at ``until_s``.

    Messages never cross groups (in flight ones are lost). Nodes not listed form one
    more group together.
    """

    kind: Literal["partition"]
    groups: list[list[NonNegativeInt | str]] = Field(
        ..., min_length=1, description="groups of node ids or region names (cities); the rest is one more group"
    )
    until_s: float | None = Field(None, description="heal time, seconds (None: never heals)")


class IsolateFault(_Fault):
    """Cut one node (or the current leader) off from every other node."""

    kind: Literal["isolate"]
    node: NonNegativeInt | Literal["leader"] = Field(..., description='node id, or "leader"')
    until_s: float | None = Field(None, description="reconnect time, seconds (None: never)")


class DegradeFault(_Fault):
    """Degrade links for a window: added delay, jitter, loss, bandwidth cap.

    Scope: ``nodes`` (links with an end at these nodes), ``regions`` (links with an
    end in these regions), ``links`` (these node pairs, both directions), or none of
    them for every link; ``wan_only`` keeps only links between different regions.
    The bandwidth cap slows the uplinks of the nodes in scope (every node if global;
    the listed pairs for ``links``).
    """

    kind: Literal["degrade"]
    nodes: list[NonNegativeInt] | None = Field(None, description="degrade links touching these nodes")
    regions: list[str] | None = Field(None, description="degrade links touching these regions (cities)")
    links: list[tuple[NonNegativeInt, NonNegativeInt]] | None = Field(None, description="degrade these node pairs")
    wan_only: bool = Field(False, description="only links between different regions")
    extra_delay_s: float = Field(0.0, ge=0, description="added one-way delay, seconds")
    jitter_s: float = Field(0.0, ge=0, description="added delay uniform on [0, jitter_s], seconds")
    loss_rate: float = Field(0.0, ge=0, le=1, description="probability a message on these links is lost")
    bandwidth_bps: float | None = Field(None, gt=0, description="bandwidth cap, bits/s")

    @model_validator(mode="after")
    def _scope_and_effect(self) -> DegradeFault:
        scopes = [k for k in ("nodes", "regions", "links") if getattr(self, k) is not None]
        if len(scopes) > 1:
            raise ValueError(f"give at most one of nodes, regions, links (got {', '.join(scopes)})")
        if not (self.extra_delay_s or self.jitter_s or self.loss_rate or self.bandwidth_bps):
            raise ValueError("a degrade needs at least one of extra_delay_s, jitter_s, loss_rate, bandwidth_bps")
        return self


class ChurnFault(_Fault):
    """Random crashes and recoveries: each node fails after Exp(mtbf_s) up, is repaired after Exp(mttr_s)."""

    kind: Literal["churn"]
    at_s: float = Field(0.0, ge=0, description="churn starts, seconds")
    until_s: float | None = Field(None, description="churn stops and every node it crashed recovers (None: end of run)")
    nodes: list[NonNegativeInt] | Literal["all"] = Field("all", description="nodes that churn")
    mtbf_s: float = Field(..., gt=0, description="mean time between failures of one node, seconds")
    mttr_s: float = Field(..., gt=0, description="mean time to repair, seconds")
    max_down: int | None = Field(None, ge=1, description="most nodes down at once from this churn (None: no cap)")


class ByzantineFault(_Fault):
    """Nodes that misbehave from ``at_s`` to ``until_s`` (honest again afterwards).

    - ``silent``: sends nothing.
    - ``equivocate``: sends conflicting versions of its proposals (and of votes whose
      protocol defines a conflicting version) to the two halves of the honest nodes.
    - ``delay``: withholds every message for ``delay_s``.
    - ``censor``: drops transactions of ``censor_origins`` / ``censor_tx_types`` from its
      mempool and its proposals.
    - ``invalid``: the blocks it proposes reach others corrupted (``corrupt``).

    Nodes sharing a ``group`` collude: they behave honestly among themselves, accept
    each other's blocks and equivocate to the same halves of the honest nodes.
    """

    kind: Literal["byzantine"]
    at_s: float = Field(0.0, ge=0, description="start time, seconds")
    nodes: list[NonNegativeInt] | Literal["leader"] = Field(..., description='node ids, or "leader" at at_s')
    behaviour: Literal["silent", "equivocate", "delay", "censor", "invalid"] = Field(
        ..., description="silent | equivocate | delay | censor | invalid"
    )
    group: str | None = Field(None, description="name of a colluding group (shared by colluding entries)")
    delay_s: float | None = Field(None, gt=0, description="delay: how long each message is withheld, seconds")
    censor_origins: list[NonNegativeInt] = Field(default_factory=list, description="censor: origin nodes whose transactions are dropped")
    censor_tx_types: list[str] = Field(default_factory=list, description="censor: transaction types dropped")
    corrupt: Literal["merkle_root", "tx_hash", "parent", "block_hash"] = Field(
        "merkle_root", description="invalid: what is wrong with its blocks: merkle_root | tx_hash | parent | block_hash"
    )

    @model_validator(mode="after")
    def _behaviour_keys(self) -> ByzantineFault:
        b = self.behaviour
        if b == "delay" and self.delay_s is None:
            raise ValueError("behaviour = \"delay\" needs delay_s")
        if b != "delay" and self.delay_s is not None:
            raise ValueError(f"delay_s is only for behaviour = \"delay\", not {b!r}")
        if b == "censor" and not (self.censor_origins or self.censor_tx_types):
            raise ValueError("behaviour = \"censor\" needs censor_origins or censor_tx_types")
        if b != "censor" and (self.censor_origins or self.censor_tx_types):
            raise ValueError(f"censor_origins and censor_tx_types are only for behaviour = \"censor\", not {b!r}")
        if b != "invalid" and self.corrupt != "merkle_root":
            raise ValueError(f"corrupt is only for behaviour = \"invalid\", not {b!r}")
        return self


class ClockSkewFault(_Fault):
    """Nodes whose clock is off: ahead by ``offset_s`` and running ``drift`` fast.

    The protocol of a skewed node reads ``ctx.now`` from its own clock and its timers
    run on it (a timer of d local seconds fires after d / (1 + drift) true seconds).
    Tables stay in true time.
    """

    kind: Literal["clock_skew"]
    at_s: float = Field(0.0, ge=0, description="start time, seconds")
    nodes: list[NonNegativeInt] = Field(..., min_length=1, description="node ids")
    offset_s: float = Field(0.0, description="the local clock reads true time plus this, seconds")
    drift: float = Field(0.0, gt=-1, description="clock rate minus 1 (0.01: 1% fast, timers fire 1% early)")

    @model_validator(mode="after")
    def _some_skew(self) -> ClockSkewFault:
        if self.offset_s == 0 and self.drift == 0:
            raise ValueError("a clock_skew needs a non-zero offset_s or drift")
        return self


FaultSpec = Annotated[
    CrashFault | PartitionFault | IsolateFault | DegradeFault | ChurnFault | ByzantineFault | ClockSkewFault,
    Field(discriminator="kind"),
]

#: kind -> model, in the order ``hcsim list faults`` shows them
FAULT_KINDS: dict[str, type[_Fault]] = {
    "crash": CrashFault,
    "partition": PartitionFault,
    "isolate": IsolateFault,
    "degrade": DegradeFault,
    "churn": ChurnFault,
    "byzantine": ByzantineFault,
    "clock_skew": ClockSkewFault,
}


# ------------------------------------------------------------------ checks


def node_regions(network: NetworkConfig) -> tuple[str, ...]:
    """Region name of every node, as the topology builders assign them (no graph built).

    ``regional`` and ``scale_free`` put nodes in cities round-robin; ``full_mesh`` is
    one region "mesh" and ``random_geometric`` one region "geo".
    """
    n = network.nodes
    if network.topology in ("regional", "scale_free"):
        from sim.network.topology import load_city_rtt_ms

        cities = tuple(network.cities) if network.cities else load_city_rtt_ms()[0]
        return tuple(cities[i % len(cities)] for i in range(n))
    return ("mesh" if network.topology == "full_mesh" else "geo",) * n


def _node_ids(fault: _Fault) -> list[int]:
    """Explicit node ids a fault names (not "leader")."""
    ids: list[int] = []
    for key in ("nodes", "node", "censor_origins"):
        value = getattr(fault, key, None)
        if isinstance(value, int):
            ids.append(value)
        elif isinstance(value, list):
            ids.extend(v for v in value if isinstance(v, int))
    if isinstance(fault, PartitionFault):
        ids += [m for g in fault.groups for m in g if isinstance(m, int)]
    if isinstance(fault, DegradeFault) and fault.links:
        ids += [i for pair in fault.links for i in pair]
    return ids


def _partition_members(fault: PartitionFault, regions: tuple[str, ...]) -> list[set[int]]:
    """Node sets of the groups, with the unlisted nodes as a last group."""
    groups = [
        {i for m in g for i in ([m] if isinstance(m, int) else [k for k, r in enumerate(regions) if r == m])}
        for g in fault.groups
    ]
    listed = set().union(*groups)
    rest = set(range(len(regions))) - listed
    return groups + ([rest] if rest else [])


def _check_one(i: int, fault: _Fault, scenario: Scenario, regions: tuple[str, ...]) -> list[str]:
    from sim.workload.types import TX_TYPES

    n, duration_s = scenario.network.nodes, scenario.duration_s
    where = f"faults[{i}] ({fault.kind})"  # type: ignore[attr-defined]
    problems: list[str] = []
    bad = sorted({v for v in _node_ids(fault) if v >= n})
    if bad:
        problems.append(f"{where}: node ids {bad} do not exist (nodes are 0..{n - 1})")
    if fault.at_s >= duration_s:
        problems.append(f"{where}: at_s = {fault.at_s} is not inside the run (duration_s = {duration_s})")
    if fault.until_s is not None and fault.until_s > duration_s:
        problems.append(
            f"{where}: until_s = {fault.until_s} is after the run ends (duration_s = {duration_s}); omit it to last to the end"
        )
    known = sorted(set(regions))
    names = list(getattr(fault, "regions", None) or [])
    if isinstance(fault, PartitionFault):
        names += [m for g in fault.groups for m in g if isinstance(m, str)]
    unknown = sorted({r for r in names if r not in regions})
    if unknown:
        problems.append(f"{where}: unknown regions {unknown}; this network's regions: {', '.join(known)}")
    if isinstance(fault, PartitionFault) and not unknown:
        groups = _partition_members(fault, regions)
        seen: set[int] = set()
        for g in groups:
            if g & seen:
                problems.append(f"{where}: nodes {sorted(g & seen)} are in more than one group")
            seen |= g
        if len(groups) < 2:
            problems.append(f"{where}: the groups cover a single group of nodes; a partition needs at least two")
    if isinstance(fault, ByzantineFault):
        bad_types = [t for t in fault.censor_tx_types if t not in TX_TYPES]
        if bad_types:
            problems.append(f"{where}: unknown transaction types {bad_types}; known: {', '.join(sorted(TX_TYPES))}")
    if isinstance(fault, ChurnFault) and fault.nodes != "all" and not fault.nodes:
        problems.append(f"{where}: nodes is empty; give node ids or \"all\"")
    return problems


def _byzantine_overlaps(faults: list[_Fault], duration_s: float) -> list[str]:
    problems = []
    spans: dict[int, list[tuple[float, float, int]]] = {}
    for i, f in enumerate(faults):
        if isinstance(f, ByzantineFault) and isinstance(f.nodes, list):
            for node in f.nodes:
                for a, b, j in spans.get(node, []):
                    if f.at_s < b and a < f.end_s(duration_s):
                        problems.append(f"faults[{i}] (byzantine): node {node} is already Byzantine in faults[{j}] at that time")
                spans.setdefault(node, []).append((f.at_s, f.end_s(duration_s), i))
    return problems


def _faulty_at(t: float, faults: list[_Fault], scenario: Scenario, regions: tuple[str, ...]) -> tuple[set[str], set[str], list[str]]:
    """(faulty node keys, Byzantine node keys, who) at time ``t``, counting worst cases."""
    faulty: set[str] = set()
    byzantine: set[str] = set()
    who: list[str] = []
    churns: list[tuple[int, set[str], int | None]] = []
    n = scenario.network.nodes
    for i, f in enumerate(faults):
        if not f.at_s <= t < f.end_s(scenario.duration_s):
            continue
        keys: set[str]
        if isinstance(f, CrashFault):
            keys = {f"leader@{i}"} if f.nodes == "leader" else {str(v) for v in f.nodes}
        elif isinstance(f, IsolateFault):
            keys = {f"leader@{i}" if f.node == "leader" else str(f.node)}
        elif isinstance(f, PartitionFault):
            groups = _partition_members(f, regions)
            largest = max(groups, key=len)
            keys = {str(v) for v in range(n) if v not in largest}
        elif isinstance(f, ChurnFault):
            churns.append((i, {str(v) for v in (range(n) if f.nodes == "all" else f.nodes)}, f.max_down))
            continue
        elif isinstance(f, ByzantineFault):
            keys = {f"leader@{i}"} if f.nodes == "leader" else {str(v) for v in f.nodes}
            byzantine |= keys
        else:
            continue
        faulty |= keys
        who.append(f"faults[{i}] {f.kind}: {len(keys)}")  # type: ignore[attr-defined]
    for i, pool, max_down in churns:  # worst case: it takes down nodes nothing else holds
        spare = sorted(pool - faulty)
        extra = spare[: len(pool) if max_down is None else max_down]
        faulty |= set(extra)
        who.append(f"faults[{i}] churn: up to {len(pool) if max_down is None else min(max_down, len(pool))}")
    return faulty, byzantine, who


def _strict_problems(faults: list[_Fault], scenario: Scenario, regions: tuple[str, ...]) -> list[str]:
    from sim.consensus.base import get_protocol

    protocol = get_protocol(scenario.protocol.name)
    n = scenario.network.nodes
    crash_ok = protocol.crash_tolerance(scenario.protocol, n)
    byz_ok = protocol.byzantine_tolerance(scenario.protocol, n)
    problems: list[str] = []
    for t in sorted({f.at_s for f in faults}):
        faulty, byzantine, who = _faulty_at(t, faults, scenario, regions)
        worst = min(len(faulty), n)  # placeholders ("leader", churn) may stand for the same node
        if worst > crash_ok:
            problems.append(
                f"strict_faults: from t = {t} s, up to {worst} nodes are faulty at once ({'; '.join(who)}), "
                f"but {protocol.name} with {n} nodes tolerates {crash_ok}"
            )
        if len(byzantine) > byz_ok:
            problems.append(
                f"strict_faults: from t = {t} s, {len(byzantine)} nodes are Byzantine, "
                f"but {protocol.name} with {n} nodes tolerates {byz_ok}"
            )
    return problems


def check_faults(scenario: Scenario) -> list[str]:
    """Problems with the scenario's faults (empty when every fault can apply)."""
    faults: list[_Fault] = list(scenario.faults)
    if not faults:
        return []
    regions = node_regions(scenario.network)
    problems: list[str] = []
    for i, fault in enumerate(faults):
        problems += _check_one(i, fault, scenario, regions)
    problems += _byzantine_overlaps(faults, scenario.duration_s)
    if scenario.strict_faults and not problems:
        problems += _strict_problems(faults, scenario, regions)
    return problems
