"""The workload of one simulation: clients, requests, attempts, timeouts, retries, reactions.

``Workload`` is built by the simulation from ``[workload]``. Clients (open loop,
closed loop, trace replay) pick types; the :class:`CallGenerator` builds calls;
this module submits each transaction request as attempts (retrying after a
timeout or an MVCC-invalid result, up to ``max_retries``), sends each query to
the :class:`~sim.workload.queries.QueryService`, and learns from blocks as
nodes apply them: a client hears of its transaction when its own node applies
it (or, for protocols that confirm by replies, when the protocol confirms it).

Counting: a request is *completed* once, by the first valid commit of any of
its attempts; later commits of other attempts are counted in
``committed_attempts`` (a claim's second copy is denied by the contract as a
duplicate), never as a second completion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.contracts.base import call_args
from sim.contracts.executor import Executed
from sim.workload.agents import InsurerAgent, TrialSites
from sim.workload.arrivals import (
    diurnal_arrival_times,
    mmpp_arrival_times,
    poisson_arrival_times,
)
from sim.workload.client import (
    ClosedLoopClient,
    OpenLoopClient,
    TraceClient,
    TypePicker,
)
from sim.workload.generator import CallGenerator, Request
from sim.workload.population import Population, Roles
from sim.workload.queries import QueryService
from sim.workload.settings import load_trace
from sim.workload.transaction import Transaction

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

    from sim.experiment.simulation import Simulation
    from sim.ledger import Block

__all__ = ["BlockEffects", "Workload"]


class BlockEffects:
    """What a block means to the workload, computed once per block.

    Attributes:
        by_origin: origin node -> its executed transactions in the block.
        approved: (claim id, insurer) of claims approved in the block.
        pa_pending: (authorization id, insurer, provider) of requests awaiting a decision.
        paid_by_provider: provider node -> claim ids paid in the block.
        revokes: consent revocations that took effect in the block.
    """

    __slots__ = ("approved", "by_origin", "pa_pending", "paid_by_provider", "revokes")

    def __init__(self) -> None:
        self.by_origin: dict[int, list[Executed]] = {}
        self.approved: list[tuple[int, int]] = []
        self.pa_pending: list[tuple[int, int, int]] = []
        self.paid_by_provider: dict[int, list[int]] = {}
        self.revokes: list[Executed] = []


class Workload:
    """Clients, requests and reactions of one simulation."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.env = sim.env
        wl = sim.scenario.workload
        self.wl = wl
        self.roles = Roles.build(wl, sim.n)
        self.population = Population(wl, self.roles, sim.seed)
        allowed = range(sim.n) if wl.origins == "all" else wl.origins
        self.generator = CallGenerator(self.population, sim.streams.stream("workload/calls"), allowed)
        self.requests: list[Request] = []
        self._by_tx: dict[int, Request] = {}
        self._on_done: dict[int, Callable[[Request], None]] = {}
        self._effects: dict[bytes, BlockEffects] = {}
        self._executed_of: dict[int, Executed] = {}  # for protocols that confirm by replies
        self._remember_executed = sim.protocol_cls.confirms_by_replies
        self.claim_paid_s: dict[int, float] = {}
        self.timeouts = 0
        self.queries = QueryService(sim, self)
        self.insurers = InsurerAgent(sim, self)
        self.trials = TrialSites(sim, self)
        self.clients: list[Any] = []
        self._build_clients()

    # -------------------------------------------------------------- clients

    def _arrivals(self, rate_tps: float, rng: np.random.Generator) -> Iterator[float]:
        wl = self.wl
        if wl.arrival == "diurnal":
            return diurnal_arrival_times(rate_tps, wl.diurnal_multipliers, wl.day_s, rng, wl.start_hour)
        if wl.arrival == "bursty":
            return mmpp_arrival_times(rate_tps, wl.burst_factor, wl.burst_mean_s, wl.calm_mean_s, rng)
        return poisson_arrival_times(rate_tps, rng)

    def node_mix(self, node_id: int) -> dict[str, float]:
        """The mix restricted to the types ``node_id`` may send."""
        return {t: w for t, w in self.wl.mix.items() if w > 0 and node_id in self.generator.senders(t)}

    def _build_clients(self) -> None:
        wl, sim = self.wl, self.sim
        streams = sim.streams
        if wl.arrival == "trace":
            assert wl.trace is not None
            self.clients.append(TraceClient(self.env, self, load_trace(wl.trace)))
        elif wl.clients == "closed":
            nodes = [i for i in range(sim.n) if self.node_mix(i)]
            if not nodes:
                raise ValueError("no node may send any type of the mix (check origins and roles)")
            think = streams.stream("workload/think")
            pickers = {i: TypePicker(self.node_mix(i), streams.stream("workload")) for i in nodes}
            for k in range(wl.closed_clients):
                node = nodes[k % len(nodes)]
                self.clients.append(ClosedLoopClient(self.env, self, node, pickers[node], wl.think_s, think))
        elif wl.node_rate_tps is not None:
            for i, rate in enumerate(wl.node_rate_tps):
                if rate <= 0:
                    continue
                mix = self.node_mix(i)
                if not mix:
                    raise ValueError(f"node {i} has a rate but may send no type of the mix (roles: {sorted(self.roles.of(i))})")
                arrivals = self._arrivals(rate, streams.stream(f"workload/arrivals/{i}"))
                picker = TypePicker(mix, streams.stream("workload"))
                self.clients.append(OpenLoopClient(self.env, self, arrivals, picker, origin=i))
        else:
            arrivals = self._arrivals(wl.rate_tps, streams.stream("workload/arrivals"))
            self.clients.append(OpenLoopClient(self.env, self, arrivals, TypePicker(wl.mix, streams.stream("workload"))))

    # ------------------------------------------------------------- requests

    def issue(
        self,
        tx_type: str,
        origin: int | None = None,
        size_bytes: int = 0,
        on_done: Callable[[Request], None] | None = None,
        any_origin: bool = False,
    ) -> Request | None:
        """A client request of ``tx_type`` (None if it cannot be made now, see CallGenerator.make)."""
        request = self.generator.make(len(self.requests), tx_type, origin, self.env.now, size_bytes, any_origin)
        if request is None:
            return None
        request.timeout_s = self.wl.timeout_s
        request.max_retries = self.wl.max_retries
        self.start(request, on_done)
        return request

    def next_request_id(self) -> int:
        return len(self.requests)

    def start(self, request: Request, on_done: Callable[[Request], None] | None = None) -> None:
        """Register ``request`` (its id must be :meth:`next_request_id`) and send it."""
        if request.request_id != len(self.requests):
            raise ValueError(f"request id {request.request_id} is not the next id {len(self.requests)}")
        self.requests.append(request)
        request.first_submit_s = self.env.now
        if on_done is not None:
            self._on_done[request.request_id] = on_done
        if request.read_only:
            self.queries.ask(request)
        else:
            self._attempt(request)

    def _attempt(self, request: Request) -> None:
        tx = Transaction(
            tx_id=len(self.sim.txs),
            tx_type=request.tx_type,
            origin=request.origin,
            submit_s=self.env.now,
            size_bytes=request.size_bytes,
            execute_s=request.execute_s,
            payload=request.payload,
            request_id=request.request_id,
            attempt=request.attempts,
        )
        request.attempts += 1
        request.tx_ids.append(tx.tx_id)
        self._by_tx[tx.tx_id] = request
        self.sim.submit_tx(tx)
        if request.timeout_s > 0:
            attempt = request.attempts
            event = self.env.timeout(request.timeout_s)
            event.callbacks.append(lambda _e: self._timed_out(request, attempt))

    def _timed_out(self, request: Request, attempt: int) -> None:
        if request.status != "pending" or request.attempts != attempt:
            return
        self.timeouts += 1
        if request.attempts <= request.max_retries:
            self._attempt(request)
        else:
            self._resolve(request, "failed", "", "timed out")

    def _resolve(self, request: Request, status: str, outcome: str, reason: str) -> None:
        request.status = status
        request.outcome = outcome
        request.reason = reason
        if status == "completed":
            request.completed_s = self.env.now
        callback = self._on_done.pop(request.request_id, None)
        if callback is not None:
            callback(request)

    def _committed(self, ex: Executed) -> None:
        request = self._by_tx.get(ex.tx.tx_id)
        if request is None:
            return
        if not ex.valid:
            if request.status == "pending" and ex.tx.tx_id == request.tx_ids[-1]:
                if self.wl.retry_invalid and request.attempts <= request.max_retries:
                    self._attempt(request)
                else:
                    self._resolve(request, "failed", "invalid", ex.invalid_reason)
            return
        request.committed_attempts += 1
        if request.status == "completed":
            return  # another attempt already completed it: not counted twice
        result = ex.result
        if result is not None:
            self.generator.learn(request.tx_type, request.origin, call_args(ex.tx), result)
        self._resolve(request, "completed", result.outcome if result else "committed", result.reason if result else "")

    def answered(self, request: Request, status: str, outcome: str, reason: str) -> None:
        """The query service answered (or failed) a query."""
        self._resolve(request, status, outcome, reason)

    # ---------------------------------------------------------------- blocks

    def effects(self, block: Block, executed: Sequence[Executed]) -> BlockEffects:
        """The workload meaning of an applied block (computed at its first application)."""
        cached = self._effects.get(block.block_hash)
        if cached is not None:
            return cached
        fx = BlockEffects()
        population = self.population
        by_origin = fx.by_origin
        remember = self._remember_executed
        for ex in executed:
            origin = ex.tx.origin
            if origin in by_origin:
                by_origin[origin].append(ex)
            else:
                by_origin[origin] = [ex]
            if remember:
                self._executed_of[ex.tx.tx_id] = ex
            result = ex.result
            if result is None or not ex.valid:
                continue
            kind = ex.tx.tx_type
            if kind == "claim" and result.outcome == "approved":
                fx.approved.append((result.subject, population.insurer_of(result.patient)))
            elif kind == "prior_auth_request" and result.outcome == "pa_pending":
                fx.pa_pending.append((result.subject, result.detail["insurer"], call_args(ex.tx).provider))
            elif kind == "claim_payment" and result.outcome == "paid":
                for claim_id in result.detail["paid"]:
                    if claim_id < len(self.requests) and self.requests[claim_id].tx_type == "claim":
                        fx.paid_by_provider.setdefault(self.requests[claim_id].origin, []).append(claim_id)
            elif kind == "consent_revoke" and result.outcome == "revoked":
                fx.revokes.append(ex)
        self._effects[block.block_hash] = fx
        return fx

    def applied(self, node_id: int, fx: BlockEffects, notify_clients: bool) -> None:
        """``node_id`` applied a block with effects ``fx``."""
        now = self.env.now
        if notify_clients:
            for ex in fx.by_origin.get(node_id, ()):
                self._committed(ex)
        for claim_id in fx.paid_by_provider.get(node_id, ()):
            self.claim_paid_s.setdefault(claim_id, now)
        self.insurers.applied(node_id, fx)

    def confirmed(self, tx_ids: Sequence[int]) -> None:
        """A protocol that confirms by replies told the clients of ``tx_ids``."""
        for tx_id in tx_ids:
            ex = self._executed_of.get(tx_id)
            if ex is not None:
                self._committed(ex)

    # ---------------------------------------------------------------- tables

    def requests_table(self) -> pd.DataFrame:
        """One row per logical request (the ``requests`` table)."""
        rows = [
            (r.request_id, r.tx_type, r.origin, r.source, r.first_submit_s, r.attempts, r.status, r.completed_s,
             r.completed_s - r.first_submit_s, r.committed_attempts, r.outcome, r.reason, r.truth)
            for r in self.requests
        ]  # fmt: skip
        cols = ["request_id", "tx_type", "origin", "source", "submit_s", "attempts", "status", "completed_s",
                "latency_s", "committed_attempts", "outcome", "reason", "truth"]  # fmt: skip
        return pd.DataFrame(rows, columns=cols)

    def claims_table(self) -> pd.DataFrame:
        """One row per claim: its stages (submitted, adjudicated at the provider, paid)."""
        rows = []
        for r in self.requests:
            if r.tx_type != "claim":
                continue
            call = r.payload.args
            paid_s = self.claim_paid_s.get(r.request_id, math.nan)
            adjudicated_s = r.completed_s if r.status == "completed" else math.nan
            rows.append(
                (r.request_id, r.origin, call.patient, self.population.insurer_of(call.patient), call.category,
                 call.amount_usd, r.first_submit_s, r.attempts, r.outcome if r.status == "completed" else r.status,
                 r.reason, adjudicated_s, adjudicated_s - r.first_submit_s, paid_s, paid_s - r.first_submit_s)
            )  # fmt: skip
        cols = ["claim_id", "provider", "patient", "insurer", "category", "amount_usd", "submit_s", "attempts",
                "decision", "reason", "adjudicated_s", "adjudication_latency_s", "paid_s", "paid_latency_s"]  # fmt: skip
        return pd.DataFrame(rows, columns=cols)

    def counters(self) -> dict[str, int]:
        """Client-side counts for the summary."""
        skipped = sum(self.generator.skipped.values())
        return {"timeouts": self.timeouts, "arrivals_skipped": skipped}
