"""Organisations that act in reaction to the ledger: insurers and trial sites.

- An insurer learns of the claims it approved when *its own* node applies them,
  and pays them in a remittance batch every ``payment_interval_s`` (insurers are
  staggered over the interval; 0 turns payments off). A batch that fails (its transaction is lost) is
  put back and paid in a later cycle; the contract pays a claim only once.
- An insurer decides each prior authorization request ``pa_review_s`` after its
  node applied the request.
- Each clinical trial's site anchors a data hash every ``trial_anchor_interval_s``,
  starting at a random phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.contracts import priorauth

if TYPE_CHECKING:
    from sim.experiment.simulation import Simulation
    from sim.workload.generator import Request
    from sim.workload.workload import BlockEffects, Workload

__all__ = ["MAX_CLAIMS_PER_PAYMENT", "InsurerAgent", "TrialSites"]

#: claims in one remittance transaction (assumption; keeps a payment under ~50 KB)
MAX_CLAIMS_PER_PAYMENT = 2000


class InsurerAgent:
    """Every insurer's payment cycle and authorization reviews."""

    def __init__(self, sim: Simulation, workload: Workload) -> None:
        self.sim = sim
        self.workload = workload
        self.interval_s = workload.wl.payment_interval_s
        insurers = workload.roles.insurers
        self.payables: dict[int, dict[int, None]] = {i: {} for i in insurers}
        if self.interval_s > 0:
            for k, insurer in enumerate(insurers):
                self._after(self.interval_s * (k + 1) / len(insurers), self._cycle, insurer)

    def _after(self, delay_s: float, action, *args) -> None:  # type: ignore[no-untyped-def]
        event = self.sim.env.timeout(delay_s)
        event.callbacks.append(lambda _e: action(*args))

    def applied(self, node_id: int, fx: BlockEffects) -> None:
        """The insurer ``node_id`` sees the approvals and requests its node applied."""
        payables = self.payables.get(node_id)
        if payables is None:
            return
        if self.interval_s > 0:
            for claim_id, insurer in fx.approved:
                if insurer == node_id:
                    payables[claim_id] = None
        for pa_id, insurer, provider in fx.pa_pending:
            if insurer == node_id:
                self._after(self.workload.wl.pa_review_s, self._decide, node_id, pa_id, provider)

    def _decide(self, insurer: int, pa_id: int, provider: int) -> None:
        wk = self.workload
        parties = (insurer, provider) if provider != insurer else (insurer,)
        request = wk.generator.system(wk.next_request_id(), "prior_auth_decision", insurer, priorauth.DecisionCall(pa_id), parties)
        wk.start(request)

    def _cycle(self, insurer: int) -> None:
        payables = self.payables[insurer]
        if payables and self.sim.nodes[insurer].up:
            batch = list(payables)[:MAX_CLAIMS_PER_PAYMENT]
            for claim_id in batch:
                del payables[claim_id]
            wk = self.workload
            request = wk.generator.payment(wk.next_request_id(), insurer, batch)
            request.timeout_s = 3 * self.interval_s
            request.max_retries = 2
            wk.start(request, on_done=lambda r: self._paid(r, insurer))
        self._after(self.interval_s, self._cycle, insurer)

    def _paid(self, request: Request, insurer: int) -> None:
        if request.status == "failed":  # lost: pay these claims in a later cycle
            for claim_id in request.payload.args.claim_ids:
                self.payables[insurer][claim_id] = None


class TrialSites:
    """Periodic anchoring of every trial's data by its site."""

    def __init__(self, sim: Simulation, workload: Workload) -> None:
        self.sim = sim
        self.workload = workload
        wl = workload.wl
        rng = sim.streams.stream("workload/trials")
        for trial in range(wl.trials):
            phase = float(rng.uniform(0.0, wl.trial_anchor_interval_s))
            self._after(phase, trial)

    def _after(self, delay_s: float, trial: int) -> None:
        event = self.sim.env.timeout(delay_s)
        event.callbacks.append(lambda _e: self._anchor(trial))

    def _anchor(self, trial: int) -> None:
        wk = self.workload
        site, call, _truth, _extra = wk.generator.trial_anchor(trial)
        request = wk.generator.system(wk.next_request_id(), "trial_anchor", site, call.args, call.parties)
        wk.start(request)
        self._after(wk.wl.trial_anchor_interval_s, trial)
