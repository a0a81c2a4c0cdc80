"""The fault injector: turns a scenario's ``[[faults]]`` into SimPy events on the world.

Faults act only on state outside the protocols: ``Node.crash()`` and
``recover()``, the network's partition groups and link rules, a node's
Byzantine behaviour and its local clock. Every action is one row of the
``faults`` table (time, fault, kind, action, nodes, detail), and every fault's
active window is kept for the recovery analysis (sim/faults/recovery.py).

Overlapping faults compose: a node is down while any fault holds it down;
partitions intersect (two nodes talk only if every active partition puts them
in one group); link degradations add up.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.faults.byzantine import Behaviour, BlockGuard, make_behaviour
from sim.faults.spec import (
    ByzantineFault,
    ChurnFault,
    ClockSkewFault,
    CrashFault,
    DegradeFault,
    IsolateFault,
    PartitionFault,
)
from sim.faults.sync import LedgerSync
from sim.network.network import LinkRule

if TYPE_CHECKING:
    from sim.experiment.simulation import Simulation

__all__ = ["FaultInjector", "FaultWindow", "LocalClock"]

#: how long a fault aimed at "leader" waits for a leader to be known, seconds
LEADER_WAIT_S = 1.0
_LEADER_POLL_S = 0.01


@dataclass
class LocalClock:
    """A node's skewed clock: reads ``t + offset_s + drift * (t - since_s)`` at true time t."""

    offset_s: float
    drift: float
    since_s: float

    def read(self, now_s: float) -> float:
        return now_s + self.offset_s + self.drift * (now_s - self.since_s)

    def real_delay_s(self, local_s: float) -> float:
        """True seconds for ``local_s`` seconds on this clock to pass."""
        return local_s / (1.0 + self.drift)


@dataclass
class FaultWindow:
    """When a fault acted and on whom (for the recovery table)."""

    fault: int
    kind: str
    label: str
    start_s: float
    end_s: float  # NaN while it lasts to the end of the run
    nodes: list[int] = field(default_factory=list)
    detail: str = ""
    search_end_s: float = math.nan  # recovery is searched until then (NaN: 60 s after end_s)


class FaultInjector:
    """Schedules the scenario's faults on a :class:`~sim.experiment.simulation.Simulation`.

    Attributes:
        rows: the ``faults`` table rows, in time order.
        windows: one :class:`FaultWindow` per fault that started.
        byzantine_ever: every node that was Byzantine at some time (not honest for invariants).
        guard: honest nodes' block validity checks (only with Byzantine faults).
    """

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.env = sim.env
        self.specs = list(sim.scenario.faults)
        self.rows: list[dict[str, Any]] = []
        self.windows: dict[int, FaultWindow] = {}
        self.byzantine_ever: set[int] = set()
        self.behaviours: list[Behaviour] = []
        self._down: dict[int, set[str]] = {}
        self._partitions: dict[int, list[int]] = {}
        self._rules: dict[int, LinkRule] = {}
        self._groups: dict[str, set[int]] = {}
        self.guard: BlockGuard | None = None
        if any(isinstance(f, ByzantineFault) for f in self.specs):
            self.guard = sim.block_guard = BlockGuard(sim, lambda action, nodes, detail: self.log(-1, "byzantine", action, nodes, detail))
        self.sync = LedgerSync(sim, lambda action, nodes, detail: self.log(-1, "recovery", action, nodes, detail), self.is_byzantine)
        for fid, spec in enumerate(self.specs):
            self._schedule(fid, spec)

    # ---------------------------------------------------------------- plumbing

    def log(self, fault: int, kind: str, action: str, nodes: Sequence[int], detail: str = "") -> None:
        """Add a row to the faults table."""
        label = self.specs[fault].label if fault >= 0 else ""
        self.rows.append(
            {
                "time_s": float(self.env.now),
                "fault": fault,
                "label": label,
                "kind": kind,
                "action": action,
                "nodes": ",".join(str(n) for n in nodes),
                "detail": detail,
            }
        )

    def _at(self, time_s: float, action: Callable[..., None], *args: Any) -> None:
        self.env.timeout(max(0.0, time_s - self.env.now)).callbacks.append(lambda _e: action(*args))

    def _open(self, fid: int, nodes: Sequence[int], detail: str = "") -> None:
        spec = self.specs[fid]
        self.windows[fid] = FaultWindow(
            fid, spec.kind, spec.label, float(self.env.now),  # type: ignore[attr-defined]
            math.nan if spec.until_s is None else spec.until_s, list(nodes), detail,
        )

    def is_byzantine(self, node_id: int) -> bool:
        """True if ``node_id`` runs a Byzantine behaviour now."""
        return self.sim.nodes[node_id].behaviour is not None

    def held_tx_ids(self) -> set[int]:
        """Transactions inside messages a Byzantine node is withholding (for conservation)."""
        return {t for b in self.behaviours for t, c in b.held.items() if c > 0}

    def honest(self) -> list[int]:
        """Nodes that were never Byzantine."""
        return [i for i in range(self.sim.n) if i not in self.byzantine_ever]

    def current_leader(self) -> int | None:
        """The node most up nodes follow now (ties: one that claims it, then the lowest id)."""
        views = [n.protocol.leader() for n in self.sim.nodes if n.up]
        votes = Counter(v for v in views if v is not None and self.sim.nodes[v].up)
        if not votes:
            return None
        claims = {n.node_id for n in self.sim.nodes if n.up and n.protocol.leader() == n.node_id}
        return min(votes, key=lambda v: (-votes[v], v not in claims, v))

    def _with_targets(self, fid: int, nodes: Any, then: Callable[[list[int]], None], waited_s: float = 0.0) -> None:
        """Resolve ``nodes`` (ids or "leader", waiting up to LEADER_WAIT_S for one) and call ``then``."""
        if nodes != "leader":
            then(list(nodes) if isinstance(nodes, list) else [nodes])
            return
        leader = self.current_leader()
        if leader is not None:
            then([leader])
        elif waited_s + _LEADER_POLL_S <= LEADER_WAIT_S and self.env.now + _LEADER_POLL_S < self.sim.scenario.duration_s:
            self._at(self.env.now + _LEADER_POLL_S, self._with_targets, fid, nodes, then, waited_s + _LEADER_POLL_S)
        else:
            self.log(fid, self.specs[fid].kind, "skipped", [], f"no leader known within {LEADER_WAIT_S} s")  # type: ignore[attr-defined]

    def _schedule(self, fid: int, spec: Any) -> None:
        start = {
            CrashFault: self._crash,
            PartitionFault: self._partition,
            IsolateFault: self._isolate,
            DegradeFault: self._degrade,
            ChurnFault: self._churn,
            ByzantineFault: self._byzantine,
            ClockSkewFault: self._clock_skew,
        }[type(spec)]
        if spec.at_s == 0 and isinstance(spec, ByzantineFault | ClockSkewFault) and spec.nodes != "leader":
            start(fid, spec)  # from the very start: before on_start, so no message escapes
        else:
            self._at(spec.at_s, start, fid, spec)

    # ------------------------------------------------------------ crash, churn

    def take_down(self, node_id: int, cause: str, fid: int, kind: str) -> None:
        causes = self._down.setdefault(node_id, set())
        was_up = not causes and self.sim.nodes[node_id].up
        causes.add(cause)
        if was_up:
            self.sim.nodes[node_id].crash()
            self.log(fid, kind, "crash", [node_id])

    def bring_up(self, node_id: int, cause: str, fid: int, kind: str) -> None:
        causes = self._down.get(node_id, set())
        causes.discard(cause)
        if not causes and not self.sim.nodes[node_id].up:
            self.sim.nodes[node_id].recover()
            self.log(fid, kind, "recover", [node_id])
            self.sync.rejoined(node_id)

    def _crash(self, fid: int, spec: CrashFault) -> None:
        def act(targets: list[int]) -> None:
            self._open(fid, targets, "the leader" if spec.nodes == "leader" else "")
            for node_id in targets:
                self.take_down(node_id, f"crash{fid}", fid, "crash")
            if spec.until_s is not None:
                for node_id in targets:
                    self._at(spec.until_s, self.bring_up, node_id, f"crash{fid}", fid, "crash")

        self._with_targets(fid, spec.nodes, act)

    def _churn(self, fid: int, spec: ChurnFault) -> None:
        rng = self.sim.streams.stream(f"faults/{fid}/churn")
        pool = list(range(self.sim.n)) if spec.nodes == "all" else list(spec.nodes)
        end_s = spec.end_s(self.sim.scenario.duration_s)
        cause = f"churn{fid}"
        down: set[int] = set()
        detail = f"mtbf_s={spec.mtbf_s} mttr_s={spec.mttr_s} max_down={spec.max_down}"

        def fail(node_id: int) -> None:
            if self.env.now >= end_s:
                return
            if spec.max_down is not None and len(down) >= spec.max_down:
                self._at(self.env.now + rng.exponential(spec.mtbf_s), fail, node_id)  # cap reached: stays up
                return
            down.add(node_id)
            if fid not in self.windows:  # a churn's impact is measured from its first crash ...
                self._open(fid, pool, detail)
            elif math.isnan(self.windows[fid].search_end_s):  # ... to its second
                self.windows[fid].search_end_s = float(self.env.now)
            self.take_down(node_id, cause, fid, "churn")
            self._at(min(end_s, self.env.now + rng.exponential(spec.mttr_s)), repair, node_id)

        def repair(node_id: int) -> None:
            if node_id not in down:
                return
            down.discard(node_id)
            self.bring_up(node_id, cause, fid, "churn")
            if self.env.now < end_s:
                self._at(self.env.now + rng.exponential(spec.mtbf_s), fail, node_id)

        for node_id in pool:
            self._at(self.env.now + rng.exponential(spec.mtbf_s), fail, node_id)
        if spec.until_s is not None:
            self._at(end_s, lambda: [repair(i) for i in sorted(down)])

    # ------------------------------------------------------ partitions, links

    def _apply_groups(self) -> None:
        """Network groups = intersection of every active partition's groups."""
        keys = [tuple(labels[i] for labels in self._partitions.values()) for i in range(self.sim.n)]
        ids = {k: j for j, k in enumerate(dict.fromkeys(keys))}
        self.sim.network.group[:] = [ids[k] for k in keys]

    def _cut(self, fid: int, labels: list[int], nodes: list[int], detail: str) -> None:
        self._partitions[fid] = labels
        self._apply_groups()
        self._open(fid, nodes, detail)
        self.log(fid, self.specs[fid].kind, "start", nodes, detail)  # type: ignore[attr-defined]
        if self.specs[fid].until_s is not None:
            self._at(self.specs[fid].until_s, self._heal, fid)  # type: ignore[arg-type]

    def _heal(self, fid: int) -> None:
        labels = self._partitions.pop(fid)
        self._apply_groups()
        self.log(fid, self.specs[fid].kind, "heal", self.windows[fid].nodes)  # type: ignore[attr-defined]
        sizes = Counter(labels)
        (main, size), *rest = sizes.most_common()
        cut_off = [i for i in range(self.sim.n) if labels[i] != main or (rest and rest[0][1] == size)]
        for node_id in cut_off:  # everyone if no group was larger than all others
            self.sync.rejoined(node_id)

    def _partition(self, fid: int, spec: PartitionFault) -> None:
        region = self.sim.topology.region
        labels = [len(spec.groups)] * self.sim.n
        for g, members in enumerate(spec.groups):
            for m in members:
                for i in [m] if isinstance(m, int) else [k for k, r in enumerate(region) if r == m]:
                    labels[i] = g
        parts = [[i for i in range(self.sim.n) if labels[i] == g] for g in sorted(set(labels))]
        self._cut(fid, labels, list(range(self.sim.n)), " | ".join(",".join(map(str, p)) for p in parts))

    def _isolate(self, fid: int, spec: IsolateFault) -> None:
        def act(targets: list[int]) -> None:
            labels = [0] * self.sim.n
            labels[targets[0]] = 1
            self._cut(fid, labels, targets, "cut off from every other node")

        self._with_targets(fid, spec.node, act)

    def _degrade(self, fid: int, spec: DegradeFault) -> None:
        region = self.sim.topology.region
        nodes: frozenset[int] | None = None
        pairs: frozenset[tuple[int, int]] | None = None
        if spec.nodes is not None:
            nodes = frozenset(spec.nodes)
        elif spec.regions is not None:
            nodes = frozenset(i for i, r in enumerate(region) if r in spec.regions)
        elif spec.links is not None:
            pairs = frozenset({(a, b) for a, b in spec.links} | {(b, a) for a, b in spec.links})
        rule = LinkRule(
            extra_delay_s=spec.extra_delay_s,
            jitter_s=spec.jitter_s,
            loss_rate=spec.loss_rate,
            bandwidth_bps=spec.bandwidth_bps or math.inf,
            nodes=nodes,
            pairs=pairs,
            cross_region=spec.wan_only,
            region=tuple(region),
            bandwidth_from=nodes,
        )
        self._rules[fid] = rule
        self.sim.network.link_rules.append(rule)
        effect = ", ".join(
            f"{k}={getattr(spec, k)}" for k in ("extra_delay_s", "jitter_s", "loss_rate", "bandwidth_bps") if getattr(spec, k)
        )
        scope = "wide-area links" if spec.wan_only else "links"
        where = f"{scope} of nodes {sorted(nodes)}" if nodes is not None else f"{scope} {sorted(pairs)}" if pairs else f"all {scope}"
        affected = sorted(nodes) if nodes is not None else sorted({a for a, _ in pairs}) if pairs else []
        self._open(fid, affected, f"{where}: {effect}")
        self.log(fid, "degrade", "start", affected, f"{where}: {effect}")
        if spec.until_s is not None:
            self._at(spec.until_s, self._restore, fid)

    def _restore(self, fid: int) -> None:
        self.sim.network.link_rules.remove(self._rules.pop(fid))
        self.log(fid, "degrade", "end", self.windows[fid].nodes)

    # ------------------------------------------------------- Byzantine, clocks

    def _byzantine(self, fid: int, spec: ByzantineFault) -> None:
        def act(targets: list[int]) -> None:
            busy = [i for i in targets if self.sim.nodes[i].behaviour is not None]
            if busy:
                self.log(fid, "byzantine", "skipped", busy, "already Byzantine")
                targets = [i for i in targets if i not in busy]
            if not targets:
                return
            group = self._groups.setdefault(spec.group, set()) if spec.group else set()
            group.update(targets)
            for node_id in targets:
                colluders = frozenset(group or {node_id})
                behaviour = make_behaviour(self.sim, fid, spec, node_id, colluders)
                self.sim.nodes[node_id].behaviour = behaviour
                self.behaviours.append(behaviour)
                self.byzantine_ever.add(node_id)
                if self.guard is not None:
                    self.guard.colluders[node_id] = colluders
            for b in self.behaviours:  # colluders installed earlier learn of the new members
                if spec.group and b.node_id in group:
                    b.colluders = frozenset(group)
                    if self.guard is not None:
                        self.guard.colluders[b.node_id] = b.colluders
            detail = spec.behaviour + (f" (group {spec.group})" if spec.group else "")
            self._open(fid, targets, detail)
            self.log(fid, "byzantine", "start", targets, detail)
            if spec.until_s is not None:
                self._at(spec.until_s, self._honest_again, fid, targets)

        self._with_targets(fid, spec.nodes, act)

    def _honest_again(self, fid: int, targets: list[int]) -> None:
        for node_id in targets:
            self.sim.nodes[node_id].behaviour = None
            if self.guard is not None:
                self.guard.colluders.pop(node_id, None)
        self.log(fid, "byzantine", "end", targets)

    def _clock_skew(self, fid: int, spec: ClockSkewFault) -> None:
        for node_id in spec.nodes:
            node = self.sim.nodes[node_id]
            node.clock = LocalClock(spec.offset_s, spec.drift, float(self.env.now))
            node.mempool.clock = lambda: float(self.env.now)
        detail = f"offset_s={spec.offset_s} drift={spec.drift}"
        self._open(fid, list(spec.nodes), detail)
        self.log(fid, "clock_skew", "start", spec.nodes, detail)
        if spec.until_s is not None:
            self._at(spec.until_s, self._clock_fixed, fid, list(spec.nodes))

    def _clock_fixed(self, fid: int, nodes: list[int]) -> None:
        for node_id in nodes:
            self.sim.nodes[node_id].clock = None
        self.log(fid, "clock_skew", "end", nodes)
