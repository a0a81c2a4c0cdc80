"""Builds contract calls for each transaction type, as the real senders would.

The generator plays the clients: providers submitting claims and authorization
requests, patients granting and revoking consent, hospitals registering records,
manufacturers and distributors moving drug packages, pharmacies verifying them.
It keeps what those clients *know* (which consents they hold, which packages are
in their hands, which authorizations were approved), learned only when a
transaction of theirs commits at their own node, so later calls refer to real
earlier ones: a revoke names a consent that was granted, a transfer moves a
package its sender holds, a claim for imaging cites an approved authorization.

Assumptions (no published figures in shared/reference): the mix of claim
categories and their amounts (log-normal around the medians below), the share
of duplicate claims, of tampered records and of counterfeits (scenario keys).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.contracts import claims, consent, priorauth, provenance, records, trials
from sim.contracts.base import Call, Result
from sim.workload.population import Population
from sim.workload.types import PAYMENT_PER_CLAIM_BYTES, PAYMENT_PER_CLAIM_S, TX_TYPES

__all__ = ["CATEGORY_MEDIAN_USD", "CATEGORY_WEIGHTS", "CallGenerator", "Request"]

#: Assumption: share of claims per service category (outpatient-heavy).
CATEGORY_WEIGHTS = {"office_visit": 0.45, "lab": 0.25, "imaging": 0.08, "pharmacy": 0.12, "surgery": 0.04, "emergency": 0.06}
#: Assumption: median billed amount per category, USD (log-normal, sigma 1).
CATEGORY_MEDIAN_USD = {"office_visit": 150.0, "lab": 45.0, "imaging": 450.0, "pharmacy": 80.0, "surgery": 9000.0, "emergency": 1300.0}
_CHUNK = 256
#: serials of fake packages start here (no manufacturer ever commissions them)
FAKE_SERIAL_BASE = 10**12


@dataclass(eq=False)
class Request:
    """One logical client request and what became of it.

    A transaction request is submitted as one or more attempts (transactions
    with ``request_id`` set); a query is answered once by its origin's node.

    Attributes:
        request_id: unique per run; also the claim id of a claim.
        tx_type: type name.
        origin: node id of the sender.
        payload: a :class:`~sim.contracts.base.Call` (transactions) or the query's arguments.
        size_bytes: wire size, bytes.
        execute_s: CPU seconds to execute or answer once.
        source: "client" (from the mix, a trace or a closed-loop client) or "system"
            (payments, authorization decisions, access audits, trial anchors).
        truth: ground truth for verifications: "genuine", "counterfeit" or "tampered".
    """

    request_id: int
    tx_type: str
    origin: int
    payload: Any
    size_bytes: int
    execute_s: float
    source: str = "client"
    truth: str = ""
    timeout_s: float = 0.0
    max_retries: int = 0
    attempts: int = 0
    first_submit_s: float = math.nan
    status: str = "pending"  # pending | completed | failed
    completed_s: float = math.nan
    committed_attempts: int = 0
    outcome: str = ""
    reason: str = ""
    tx_ids: list[int] = field(default_factory=list)

    @property
    def read_only(self) -> bool:
        return TX_TYPES[self.tx_type].read_only


class CallGenerator:
    """Makes calls of every type; learns from its clients' committed transactions.

    Args:
        population: patients, policies and roles.
        rng: the ``"workload/calls"`` stream.
        allowed: node ids that may originate client requests (``[workload] origins``).
    """

    def __init__(self, population: Population, rng: np.random.Generator, allowed: Sequence[int]) -> None:
        self.pop = population
        self.wl = population.wl
        self.roles = population.roles
        self.rng = rng
        self.allowed = frozenset(allowed)
        self._next_serial = 0
        self._cat_names = list(CATEGORY_WEIGHTS)
        self._cat_cum = np.cumsum([CATEGORY_WEIGHTS[c] for c in self._cat_names]).tolist()
        self._senders: dict[str, tuple[int, ...]] = {}
        self._any_origin = False
        self._uniform: list[float] = []
        self._normal: list[float] = []
        # what clients know, learned from their own commits
        self.past_claims: dict[int, deque[claims.ClaimCall]] = {}
        self.approved_auths: dict[str, list[int]] = {}  # category -> patients
        self.consents_held: list[tuple[int, int, str]] = []  # every grant ever committed
        self.consents_active: dict[tuple[int, int, str], None] = {}  # patient's view of active grants
        self.records: list[int] = []  # registered record ids known committed
        self.holder_of: dict[int, int] = {}  # record id -> hospital holding it off chain
        self.offchain: dict[int, bytes] = {}  # record id -> content held by the hospital
        self.tampered: set[int] = set()
        self.packages: dict[tuple[str, int], deque[int]] = {}  # (stage, owner) -> serials in hand
        self.serials: list[int] = []
        self.skipped: dict[str, int] = {}

    # -------------------------------------------------------------- helpers

    def senders(self, tx_type: str) -> tuple[int, ...]:
        """Nodes that may originate ``tx_type`` as a client request."""
        nodes = self._senders.get(tx_type)
        if nodes is None:
            roles = TX_TYPES[tx_type].senders
            nodes = tuple(sorted({i for r in roles for i in self.roles.nodes_with(r)} & self.allowed))
            self._senders[tx_type] = nodes
        return nodes

    # Draws come from the stream in chunks (the same sequence on every run), because one
    # numpy call per scalar costs more than the contract it feeds.
    def _u(self) -> float:
        """A uniform draw on [0, 1)."""
        if not self._uniform:
            self._uniform = self.rng.random(_CHUNK).tolist()[::-1]
        return self._uniform.pop()

    def _z(self) -> float:
        """A standard normal draw."""
        if not self._normal:
            self._normal = self.rng.standard_normal(_CHUNK).tolist()[::-1]
        return self._normal.pop()

    def _index(self, n: int) -> int:
        """A uniform index in 0..n-1."""
        return min(int(self._u() * n), n - 1)

    def _origin(self, tx_type: str, origin: int | None) -> int | None:
        nodes = self.senders(tx_type)
        if origin is None:
            return nodes[self._index(len(nodes))] if nodes else None
        return origin if origin in nodes or self._any_origin else None

    def _category(self) -> str:
        return self._cat_names[min(bisect_right(self._cat_cum, self._u() * self._cat_cum[-1]), len(self._cat_names) - 1)]

    def _patient(self) -> int:
        return self._index(self.pop.patients)

    def _record_category(self) -> str:
        return consent.RECORD_CATEGORIES[self._index(len(consent.RECORD_CATEGORIES))]

    # ---------------------------------------------------------------- build

    def make(
        self, request_id: int, tx_type: str, origin: int | None, now_s: float, size_bytes: int = 0, any_origin: bool = False
    ) -> Request | None:
        """A request of ``tx_type`` from ``origin`` (None: the generator picks a sender).

        Returns None (and counts it in ``skipped``) when the type cannot be sent now from
        that origin: e.g. a transfer from a node holding no package, a revoke with no
        active consent known. ``any_origin`` lets a node of any role send it (tests).
        """
        self._any_origin = any_origin
        try:
            built = getattr(self, f"_{tx_type}")(request_id, origin, now_s)
        finally:
            self._any_origin = False
        if built is None:
            self.skipped[tx_type] = self.skipped.get(tx_type, 0) + 1
            return None
        origin, payload, truth, extra_items = built
        kind = TX_TYPES[tx_type]
        size = size_bytes or kind.size_bytes + extra_items * PAYMENT_PER_CLAIM_BYTES
        execute_s = kind.execute_s + extra_items * PAYMENT_PER_CLAIM_S
        return Request(request_id, tx_type, origin, payload, size, execute_s, truth=truth)

    def _claim(self, request_id: int, origin: int | None, now_s: float) -> Any:
        origin = self._origin("claim", origin)
        if origin is None:
            return None
        pop = self.pop
        day = int(now_s // self.wl.day_s)
        past = self.past_claims.setdefault(origin, deque(maxlen=256))
        if past and self._u() < self.wl.duplicate_claim_fraction:
            old = past[self._index(len(past))]
            call = claims.ClaimCall(request_id, old.patient, origin, old.category, old.procedure, old.service_day, old.amount_usd)
        else:
            category = self._category()
            approved = self.approved_auths.get(category)
            if category in pop.rules.auth_categories and approved:
                patient = approved[self._index(len(approved))]
            elif pop.group_patients and self._u() < self.wl.hotspot_fraction:
                patient = pop.group_patient(self._index(pop.group_patients))
            else:  # a household policy: group plans are only reached through the hotspot
                patient = pop.group_patients + self._index(pop.patients - pop.group_patients)
            procedure = claims.CLAIM_CATEGORIES.index(category) * 1000 + self._index(50)
            amount = round(CATEGORY_MEDIAN_USD[category] * math.exp(self._z()), 2)
            call = claims.ClaimCall(request_id, patient, origin, category, procedure, day, amount)
            past.append(call)
        return origin, Call(call, (origin, pop.insurer_of(call.patient))), "", 0

    def _eligibility(self, request_id: int, origin: int | None, now_s: float) -> Any:
        origin = self._origin("eligibility", origin)
        if origin is None:
            return None
        return origin, claims.EligibilityCall(self._patient(), self._category()), "", 0

    def _prior_auth_request(self, request_id: int, origin: int | None, now_s: float) -> Any:
        origin = self._origin("prior_auth_request", origin)
        if origin is None:
            return None
        categories = sorted(self.pop.rules.auth_categories) or ["imaging", "surgery"]
        patient = self._patient()
        call = priorauth.RequestCall(request_id, patient, origin, categories[self._index(len(categories))])
        return origin, Call(call, (origin, self.pop.insurer_of(patient))), "", 0

    def _consent_grant(self, request_id: int, origin: int | None, now_s: float) -> Any:
        origin = self._origin("consent_grant", origin)
        if origin is None:
            return None
        providers = self.roles.providers
        patient = self.pop.patient_at_home(origin, self._index(1 << 30))
        provider = providers[self._index(len(providers))]
        call = consent.ConsentCall(patient, provider, self._record_category())
        return origin, Call(call, tuple(dict.fromkeys((origin, provider)))), "", 0

    def _consent_revoke(self, request_id: int, origin: int | None, now_s: float) -> Any:
        pool = [c for c in self.consents_active if origin is None or self.pop.home(c[0]) == origin]
        if not pool:
            return None
        patient, provider, category = pool[self._index(len(pool))]
        del self.consents_active[(patient, provider, category)]  # the patient knows they revoked it
        home = self.pop.home(patient)
        return home, Call(consent.ConsentCall(patient, provider, category), tuple(dict.fromkeys((home, provider)))), "", 0

    def _record_access(self, request_id: int, origin: int | None, now_s: float) -> Any:
        held = [c for c in self.consents_held if origin is None or c[1] == origin]
        if held and self._u() < self.wl.access_consented_fraction:
            patient, provider, category = held[self._index(len(held))]
        else:
            provider = self._origin("record_access", origin)
            if provider is None:
                return None
            patient, category = self._patient(), self._record_category()
        if provider not in self.senders("record_access"):
            return None
        return provider, consent.AccessCall(patient, provider, category), "", 0

    def _record_register(self, request_id: int, origin: int | None, now_s: float) -> Any:
        origin = self._origin("record_register", origin)
        if origin is None:
            return None
        patient = self._patient()
        content = self.rng.bytes(64)  # stands for the off-chain record (its size is record_size_bytes)
        self.offchain[request_id] = content
        call = records.RegisterCall(request_id, patient, self._record_category(), records.sha256(content), f"ehr://{origin}/{request_id}")
        return origin, Call(call, tuple(dict.fromkeys((origin, self.pop.home(patient))))), "", 0

    def _record_verify(self, request_id: int, origin: int | None, now_s: float) -> Any:
        origin = self._origin("record_verify", origin)
        if origin is None or not self.records:
            return None
        record_id = self.records[self._index(len(self.records))]
        return origin, records.VerifyCall(record_id, b""), "", 0  # content is fetched when the query runs

    def _drug_commission(self, request_id: int, origin: int | None, now_s: float) -> Any:
        origin = self._origin("drug_commission", origin)
        if origin is None:
            return None
        if self.serials and self._u() < self.wl.counterfeit_fraction:
            serial, truth = self.serials[self._index(len(self.serials))], "counterfeit"
        else:
            serial, truth = self._next_serial, "genuine"
            self._next_serial += 1
        call = provenance.CommissionCall(serial, origin * 1000 + self._index(20))
        return origin, Call(call, (origin,)), truth, 0

    def _drug_transfer(self, request_id: int, origin: int | None, now_s: float) -> Any:
        ready = [
            (stage, owner)
            for (stage, owner), q in self.packages.items()
            if q and stage in provenance.NEXT_STAGE and (origin is None or owner == origin) and owner in self.allowed
        ]
        if not ready:
            return None
        stage, owner = ready[self._index(len(ready))]
        targets = self.roles.nodes_with(provenance.NEXT_STAGE[stage])
        to_node = targets[self._index(len(targets))]
        serial = self.packages[(stage, owner)].popleft()
        return owner, Call(provenance.TransferCall(serial, to_node), tuple(dict.fromkeys((owner, to_node)))), "", 0

    def _drug_verify(self, request_id: int, origin: int | None, now_s: float) -> Any:
        if self._u() < self.wl.counterfeit_fraction:
            origin = self._origin("drug_verify", origin)
            if origin is None:
                return None
            return origin, provenance.VerifyCall(FAKE_SERIAL_BASE + request_id, origin), "counterfeit", 0
        ready = [owner for (stage, owner), q in self.packages.items() if stage == "pharmacy" and q and (origin is None or owner == origin)]
        if not ready:
            return None
        owner = ready[self._index(len(ready))]
        serial = self.packages[("pharmacy", owner)].popleft()  # verified, then dispensed
        return owner, provenance.VerifyCall(serial, owner), "genuine", 0

    def _trial_anchor(self, request_id: int, origin: int | None, now_s: float) -> Any:
        trials_here = [t for t in range(self.wl.trials) if origin is None or self.pop.trial_site(t) == origin]
        if not trials_here:
            return None
        return self.trial_anchor(trials_here[self._index(len(trials_here))])

    def trial_anchor(self, trial_id: int) -> tuple[int, Call, str, int]:
        """The next anchor of ``trial_id`` from its site."""
        site = self.pop.trial_site(trial_id)
        assert site is not None
        return site, Call(trials.AnchorCall(trial_id, records.sha256(self.rng.bytes(32))), (site,)), "", 0

    def payment(self, request_id: int, insurer: int, claim_ids: Sequence[int]) -> Request:
        """An insurer's remittance for ``claim_ids``."""
        kind = TX_TYPES["claim_payment"]
        k = len(claim_ids)
        call = Call(claims.PaymentCall(tuple(claim_ids)), (insurer,))
        return Request(request_id, "claim_payment", insurer, call, kind.size_bytes + k * PAYMENT_PER_CLAIM_BYTES,
                       kind.execute_s + k * PAYMENT_PER_CLAIM_S, source="system")

    def system(self, request_id: int, tx_type: str, origin: int, args: Any, parties: tuple[int, ...]) -> Request:
        """A transaction the system sends in reaction to another (decision, audit, anchor)."""
        kind = TX_TYPES[tx_type]
        return Request(request_id, tx_type, origin, Call(args, parties), kind.size_bytes, kind.execute_s, source="system")

    # ---------------------------------------------------------------- learn

    def learn(self, tx_type: str, origin: int, args: Any, result: Result) -> None:
        """A client's transaction from ``origin`` committed at that node with ``result``."""
        if tx_type == "consent_grant" and result.outcome == "granted":
            key = (args.patient, args.provider, args.category)
            if key not in self.consents_active:
                self.consents_active[key] = None
                self.consents_held.append(key)
        elif tx_type == "prior_auth_decision" and result.outcome == "pa_approved":
            self.approved_auths.setdefault(result.detail["category"], []).append(result.patient)
        elif tx_type == "record_register" and result.outcome == "registered":
            self.records.append(args.record_id)
            self.holder_of[args.record_id] = origin
            if self._u() < self.wl.tamper_fraction:
                self.offchain[args.record_id] = self.rng.bytes(64)  # altered off chain after anchoring
                self.tampered.add(args.record_id)
        elif tx_type == "drug_commission" and result.outcome == "commissioned":
            self.serials.append(args.serial)
            self.packages.setdefault(("manufacturer", origin), deque()).append(args.serial)
        elif tx_type == "drug_transfer" and result.outcome == "transferred":
            self.packages.setdefault((result.detail["stage"], args.to_node), deque()).append(args.serial)
