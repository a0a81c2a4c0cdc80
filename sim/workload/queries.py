"""Read-only queries: answered by one node from its committed state, without consensus.

A query waits for the node's CPU (it competes with consensus and execution
work), then reads the node's world state at the node's applied height. Its
*latency* is submit to answer; its *staleness* is how long the network had
already applied a block this node had not (0 when the node is up to date).
A record verification first fetches the off-chain record from the hospital
holding it (a round trip plus the record's transfer at the holder's uplink
bandwidth) and hashes it on the verifier's CPU. An access decision is enforced
at once and then written to the audit trail by an ``access_audit`` transaction
from the enforcing node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.contracts import consent

if TYPE_CHECKING:
    from sim.experiment.simulation import Simulation
    from sim.workload.generator import Request
    from sim.workload.workload import Workload

__all__ = ["QueryService"]


class QueryService:
    """Answers queries at their origin nodes and records them."""

    def __init__(self, sim: Simulation, workload: Workload) -> None:
        self.sim = sim
        self.workload = workload

    def _later(self, delay_s: float, action, *args) -> None:  # type: ignore[no-untyped-def]
        event = self.sim.env.timeout(max(0.0, delay_s))
        event.callbacks.append(lambda _e: action(*args))

    def ask(self, request: Request) -> None:
        """Start answering ``request`` at its origin node."""
        sim = self.sim
        node = sim.nodes[request.origin]
        if not node.up:
            self._fail(request, "node down")
            return
        fetch_s = 0.0
        hash_s = 0.0
        if request.tx_type == "record_verify":
            holder = self.workload.generator.holder_of[request.payload.record_id]
            if holder != request.origin:
                if not sim.network.reachable(request.origin, holder):
                    self._fail(request, "record holder unreachable")
                    return
                size_bits = self.workload.wl.record_size_bytes * 8.0
                fetch_s = 2 * sim.network.delay_s[request.origin][holder] + size_bits / sim.network.bandwidth_bps[holder]
            hash_s = self.workload.wl.record_size_bytes * 8.0 / node.costs.hash_rate_bps
        self._later(fetch_s, self._compute, request, node.epoch, hash_s)

    def _compute(self, request: Request, epoch: int, hash_s: float) -> None:
        node = self.sim.nodes[request.origin]
        if not node.up or node.epoch != epoch:
            self._fail(request, "node crashed")
            return
        done_s = node.execute_work(request.execute_s, extra_s=hash_s)
        self._later(done_s - self.sim.env.now, self._answer, request, epoch)

    def _answer(self, request: Request, epoch: int) -> None:
        sim, wk = self.sim, self.workload
        node_id = request.origin
        node = sim.nodes[node_id]
        if not node.up or node.epoch != epoch:
            self._fail(request, "node crashed")
            return
        now = sim.env.now
        args = request.payload
        if request.tx_type == "record_verify":
            args = args._replace(content=wk.generator.offchain[args.record_id])
            request.truth = "tampered" if args.record_id in wk.generator.tampered else "genuine"
        result = sim.executor.query(node_id, request.tx_type, args, now)
        stale_s, behind = sim.executor.staleness(node_id, now)
        sim.recorder.health.query(request, node_id, now, result, stale_s, behind, sim.executor.heights[node_id])
        wk.answered(request, "completed", result.outcome, result.reason)
        if request.tx_type == "record_access":
            audit = consent.AccessAuditCall(args.patient, args.provider, args.category, result.outcome == "access_allowed", node_id, now)
            wk.start(wk.generator.system(wk.next_request_id(), "access_audit", node_id, audit, (node_id,)))

    def _fail(self, request: Request, reason: str) -> None:
        sim = self.sim
        sim.recorder.health.query_failed(request, request.origin, sim.env.now, reason)
        self.workload.answered(request, "failed", "", reason)
