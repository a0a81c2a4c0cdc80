"""World assembly: topology -> network -> nodes -> clients, in one SimPy environment."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL

from sim.config import Scenario
from sim.consensus.base import Message, get_protocol
from sim.contracts.executor import Executor
from sim.errors import HcsimError
from sim.faults.injector import FaultInjector
from sim.ledger import Block
from sim.metrics.recorder import NullRecorder, Recorder
from sim.metrics.records import BlockInfo
from sim.network.network import Network
from sim.network.topology import Topology, TopologyParams, build_topology
from sim.node.node import Node
from sim.rng import RandomStreams
from sim.workload.population import GENESIS_KINDS
from sim.workload.transaction import Transaction
from sim.workload.workload import Workload

__all__ = ["CountingEnvironment", "RunTimeout", "Simulation", "scenario_topology"]

#: allocations (net of frees) between young-generation garbage collections while a run
#: advances (CPython's default is 700); see :func:`_run_gc`
RUN_GC_THRESHOLD = 100_000


class RunTimeout(HcsimError):
    """A run used more wall-clock time than it was allowed (see ``CountingEnvironment.deadline``)."""


def scenario_topology(scenario: Scenario, streams: RandomStreams) -> Topology:
    """The topology a run of ``scenario`` builds, drawn from the ``"topology"`` stream of ``streams``.

    ``hcsim report`` calls it with ``RandomStreams(seed)`` to redraw a finished run's
    network map: streams are keyed by name, so it gets the very same draws.
    """
    net = scenario.network
    return build_topology(
        net.topology,
        net.nodes,
        TopologyParams(
            latency_s=net.latency_s,
            cities=tuple(net.cities) if net.cities else None,
            intra_city_delay_s=net.intra_city_delay_s,
            degree=net.degree,
        ),
        streams.stream("topology"),
    )


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it schedules.

    It also takes plain calls (:meth:`call_later`): a call is one event in the same heap,
    ordered like any other by (time, priority, insertion counter), without an Event
    object, a callbacks list or a closure around it.
    """

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.events_scheduled = 0
        #: ``time.perf_counter()`` value after which scheduling raises :class:`RunTimeout`
        #: (None: no limit). Checked every 65,536 events, so it also stops a run stuck
        #: at one simulated instant, which ``run(until=...)`` alone never would.
        self.deadline: float | None = None

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise RunTimeout(
                f"wall-clock limit exceeded at simulated time {self.now:.6f} s after {self.events_scheduled:,} events"
            )

    def schedule(self, event: simpy.Event, priority: int = 1, delay: float = 0) -> None:  # type: ignore[override]
        self.events_scheduled += 1
        if not self.events_scheduled & 0xFFFF:
            self._check_deadline()
        heappush(self._queue, (self._now + delay, priority, next(self._eid), event))

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` ``delay_s`` seconds from now: one event, as ``timeout(delay_s)``
        with that call as its only callback would be (same time, same place in the order)."""
        if delay_s < 0:
            raise ValueError(f"negative delay {delay_s}")
        self.events_scheduled += 1
        if not self.events_scheduled & 0xFFFF:
            self._check_deadline()
        heappush(self._queue, (self._now + delay_s, NORMAL, next(self._eid), (fn, args)))

    def step(self) -> None:
        """Process the next event (a plain call from :meth:`call_later`, or a SimPy event)."""
        try:
            self._now, _, _, event = heappop(self._queue)
        except IndexError:
            raise EmptySchedule from None
        if type(event) is tuple:
            event[0](*event[1])
            return
        # simpy.Environment.step from here on
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:
            event.callbacks = callbacks[callbacks.index(callback) + 1 :]
            self.schedule(event, -1)
            raise
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc


@contextmanager
def _run_gc() -> Iterator[None]:
    """Collect cyclic garbage less often while simulated time advances (restored after).

    Most objects of a run live for a few simulated seconds (pending events, messages,
    per-block rounds): with CPython's default threshold they survive two young
    collections and reach the oldest generation, whose full collections (a few hundred
    milliseconds at 1,000 nodes) then made up a third of a large run's wall time. A
    larger young generation lets them die young. Only when garbage is collected
    changes: no simulated result depends on it.
    """
    old = gc.get_threshold()
    if old[0] >= RUN_GC_THRESHOLD:
        yield
        return
    gc.set_threshold(RUN_GC_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        if gc.get_threshold()[0] == RUN_GC_THRESHOLD:  # not changed meanwhile
            gc.set_threshold(*old)


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
        self.topology: Topology = scenario_topology(scenario, self.streams)
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
        # transaction id -> (height, hash) of every block built with it: lets a node tell
        # whether a transaction is on its ledger without a set of every id it executed
        self._tx_blocks: dict[int, tuple[tuple[int, bytes], ...]] = {}
        # Fault framework hooks (sim/faults): message types handled by a framework service
        # instead of the protocol (block sync); the block validity guard of honest nodes,
        # set only when Byzantine faults are configured.
        self.services: dict[type, Callable[[int, int, Any], None]] = {}
        self.block_guard: Any = None
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
        self.workload = Workload(self)
        self.executor = Executor(self.n, self.workload.population.genesis, GENESIS_KINDS)
        start = self.env.timeout(0)
        start.callbacks.append(lambda _e: [node.protocol.on_start() for node in self.nodes])
        # Built after the start event so that faults at time 0 act after on_start.
        self.faults: FaultInjector | None = FaultInjector(self) if scenario.faults else None

    # ------------------------------------------------------------- plumbing

    def _deliver(self, src: int, dst: int, msg: Message) -> None:
        if self.services:
            service = self.services.get(type(msg))
            if service is not None:
                service(src, dst, msg)
                return
        self.nodes[dst].receive(src, msg)

    def submit_tx(self, tx: Transaction) -> None:
        """A client submits ``tx`` (whose id must be ``len(self.txs)``) to its origin node."""
        if tx.tx_id != len(self.txs):
            raise ValueError(f"transaction id {tx.tx_id} is not the next id {len(self.txs)}")
        self.txs.append(tx)
        self.nodes[tx.origin].submit(tx)

    def submit_now(self, origin: int, tx_type: str = "claim") -> Transaction:
        """A client at ``origin`` submits one ``tx_type`` transaction now (for tests and notebooks).

        The contract call is generated like any workload request of that type, as if
        ``origin`` played the role that sends it (protocol tests pick nodes by position).

        Raises:
            ValueError: ``tx_type`` is read-only (no transaction) or cannot be made now.
        """
        before = len(self.txs)
        request = self.workload.issue(tx_type, origin, any_origin=True)
        if request is None or len(self.txs) == before:
            raise ValueError(f"no {tx_type!r} transaction can be submitted at node {origin} now")
        return self.txs[before]

    def block_applied(self, node_id: int, block: Block) -> None:
        """``node_id`` applies ``block``: run its contracts, record outcomes, tell the workload."""
        now = self.env.now
        executed, first = self.executor.apply(node_id, block, now)
        effects = self.workload.effects(block, executed)
        if first:
            self.recorder.health.executed(block, executed, now)
            invalid = [(ex.tx.tx_id, ex.invalid_reason) for ex in executed if not ex.valid]
            if invalid:
                self.recorder.txs_invalid(invalid)
        self.recorder.health.applied(node_id, effects.revokes, now)
        self.workload.applied(node_id, effects, notify_clients=not self.protocol_cls.confirms_by_replies)

    def txs_confirmed(self, tx_ids: Sequence[int]) -> None:
        """A protocol confirmed ``tx_ids`` to their clients (``confirms_by_replies`` protocols)."""
        self.recorder.txs_confirmed(tx_ids, self.env.now)
        self.workload.confirmed(tx_ids)

    def block_created(self, block: Block, txs: Sequence[Transaction]) -> None:
        """A protocol built ``block`` from ``txs``: index it and mark the transactions proposed."""
        self.executor.block_created(block, txs)
        if block.block_hash not in self._block_info:
            by_origin: dict[int, list[int]] = {}
            for tx in txs:
                by_origin.setdefault(tx.origin, []).append(tx.tx_id)
            self._block_info[block.block_hash] = BlockInfo(
                execute_s=sum(tx.execute_s for tx in txs),
                by_origin={k: tuple(v) for k, v in by_origin.items()},
            )
            self._index_txs(block)
        self.recorder.txs_proposed(block.tx_ids, self.env.now)

    def _index_txs(self, block: Block) -> None:
        place = ((block.height, block.block_hash),)
        index = self._tx_blocks
        for tx_id in block.tx_ids:
            index[tx_id] = index.get(tx_id, ()) + place

    def blocks_holding(self, tx_id: int) -> tuple[tuple[int, bytes], ...]:
        """(height, block hash) of every block built in this run that holds ``tx_id``."""
        return self._tx_blocks.get(tx_id, ())

    def block_info(self, block: Block) -> BlockInfo:
        """Facts about a block built in this simulation."""
        return self._block_info[block.block_hash]

    def has_block(self, block_hash: bytes) -> bool:
        """True if some node built (or a Byzantine node forged) a block with this hash."""
        return block_hash in self._block_info

    def block_variant(self, original: Block, variant: Block) -> None:
        """Index ``variant`` (a Byzantine copy of ``original`` with the same transactions,
        possibly reordered) so nodes that accept it can execute it."""
        if variant.block_hash not in self._block_info:
            self._block_info[variant.block_hash] = self._block_info[original.block_hash]
            self._index_txs(variant)
        by_id = {tx.tx_id: tx for tx in self.executor.block_transactions(original)}
        self.executor.block_created(variant, [by_id[i] for i in variant.tx_ids if i in by_id])

    # ------------------------------------------------------------------ run

    def run_until(self, until_s: float, on_progress: Callable[[float], None] | None = None, steps: int = 100) -> None:
        """Advance simulated time to ``until_s`` seconds (in ``steps`` slices if reporting progress)."""
        if until_s <= self.env.now:
            return
        with _run_gc():
            if on_progress is None:
                self.env.run(until=until_s)
                return
            start = self.env.now
            for k in range(1, steps + 1):
                self.env.run(until=start + (until_s - start) * k / steps)
                on_progress(self.env.now)

    def pending_tx_ids(self) -> set[int]:
        """Transactions still held somewhere: signature checks at the origin, mempools,
        protocol state, forwarding messages on the wire or waiting for the receiver's CPU,
        or blocks delivered to a ledger whose execution has not finished."""
        held: set[int] = set(self.network.in_flight())
        for node in self.nodes:
            held.update(node.verifying)
            held.update(tx.tx_id for tx in node.mempool)
            held.update(tx_id for tx_id, count in node.receiving.items() if count > 0)
            held.update(node.protocol.pending_tx_ids())
            for height in range(node.applied_height + 1, node.ledger.height + 1):
                held.update(node.ledger.block_at(height).tx_ids)
        if self.faults is not None:
            held.update(self.faults.held_tx_ids())
        return held
