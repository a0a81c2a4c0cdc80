"""World assembly: topology -> network -> nodes -> clients, in one SimPy environment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import simpy

from sim.config import Scenario
from sim.consensus.base import get_protocol
from sim.ledger import Block
from sim.metrics.records import BlockInfo
from sim.metrics.recorder import NullRecorder, Recorder
from sim.network.network import Network
from sim.network.topology import Topology, TopologyParams, build_topology
from sim.node.node import Node
from sim.rng import RandomStreams
from sim.workload.arrivals import poisson_arrival_times
from sim.workload.client import OpenLoopClient
from sim.workload.transaction import Transaction

__all__ = ["CountingEnvironment", "Simulation"]


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it schedules."""

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.events_scheduled = 0

    def schedule(self, event: simpy.Event, priority: int = 1, delay: float = 0) -> None:  # type: ignore[override]
        self.events_scheduled += 1
        super().schedule(event, priority, delay)


class Simulation:
    """One assembled, runnable world for a scenario and seed.

    Build it, advance it with :meth:`run_until` (tests may crash or recover nodes
    between calls), then hand it to :func:`sim.metrics.summary.collect` for tables.

    Args:
        scenario: validated scenario.
        seed: root seed; defaults to ``scenario.seed``.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.env = CountingEnvironment()
        self.streams = RandomStreams(self.seed)
        net = scenario.network
        self.n = net.nodes
        self.topology: Topology = build_topology(
            net.topology,
            net.nodes,
            TopologyParams(
                latency_s=net.latency_s,
                cities=tuple(net.cities) if net.cities else None,
                intra_city_delay_s=net.intra_city_delay_s,
                degree=net.degree,
            ),
            self.streams.stream("topology"),
        )
        self.recorder: Recorder = Recorder() if scenario.metrics.enabled else NullRecorder()
        self.network = Network(
            self.env,
            self.topology.delay_s,
            bandwidth_bps=net.bandwidth_bps,
            jitter_s=net.jitter_s,
            loss_rate=net.loss_rate,
            rng=self.streams.stream("links"),
            deliver=self._deliver,
            on_tx_drop=lambda ids, node, why: self.recorder.txs_dropped(ids, node, self.env.now, why),
        )
        self.protocol_cls = get_protocol(scenario.protocol.name)
        wants_phase = net.mode == "phase" or (net.mode == "auto" and net.nodes >= net.phase_mode_min_nodes)
        self.phase_mode = wants_phase and self.protocol_cls.supports_phase_mode
        self.txs: list[Transaction] = []
        self._block_info: dict[bytes, BlockInfo] = {}
        self.nodes: list[Node] = [
            Node(
                i,
                self,
                scenario.node,
                self.topology.peers[i],
                protocol_rng=self.streams.stream(f"node/{i}/protocol"),
                cpu_rng=self.streams.stream(f"node/{i}/cpu"),
            )
            for i in range(self.n)
        ]
        wl = scenario.workload
        origins: Sequence[int] = range(self.n) if wl.origins == "all" else wl.origins
        self.client = OpenLoopClient(
            self.env,
            poisson_arrival_times(wl.rate_tps, self.streams.stream("workload/arrivals")),
            wl.mix,
            origins,
            self.streams.stream("workload"),
            submit=self._submit,
            next_id=lambda: len(self.txs),
        )
        start = self.env.timeout(0)
        start.callbacks.append(lambda _e: [node.protocol.on_start() for node in self.nodes])

    # ------------------------------------------------------------- plumbing

    def _deliver(self, src: int, dst: int, msg: Any) -> None:
        self.nodes[dst].receive(src, msg)

    def _submit(self, tx: Transaction) -> None:
        self.txs.append(tx)
        self.nodes[tx.origin].submit(tx)

    def block_created(self, block: Block, txs: Sequence[Transaction]) -> None:
        """A protocol built ``block`` from ``txs``: index it and mark the transactions proposed."""
        if block.block_hash not in self._block_info:
            by_origin: dict[int, list[int]] = {}
            for tx in txs:
                by_origin.setdefault(tx.origin, []).append(tx.tx_id)
            self._block_info[block.block_hash] = BlockInfo(
                execute_s=sum(tx.execute_s for tx in txs),
                by_origin={k: tuple(v) for k, v in by_origin.items()},
            )
        self.recorder.txs_proposed(block.tx_ids, self.env.now)

    def block_info(self, block: Block) -> BlockInfo:
        """Facts about a block built in this simulation."""
        return self._block_info[block.block_hash]

    # ------------------------------------------------------------------ run

    def run_until(self, until_s: float, on_progress: Callable[[float], None] | None = None, steps: int = 100) -> None:
        """Advance simulated time to ``until_s`` seconds (in ``steps`` slices if reporting progress)."""
        if until_s <= self.env.now:
            return
        if on_progress is None:
            self.env.run(until=until_s)
            return
        start = self.env.now
        for k in range(1, steps + 1):
            self.env.run(until=start + (until_s - start) * k / steps)
            on_progress(self.env.now)

    def pending_tx_ids(self) -> set[int]:
        """Transactions still held somewhere: mempools, protocol state, forwarding messages,
        or a CPU checking the signature of a submission or of a forwarding message."""
        held: set[int] = set(self.network.in_flight())
        for node in self.nodes:
            held.update(node.verifying)
            held.update(tx.tx_id for tx in node.mempool)
            held.update(node.protocol.pending_tx_ids())
        return held
