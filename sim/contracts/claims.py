"""Claims adjudication and payment.

A provider submits a claim (an X12 837P with about four service lines, ~1.1 KB);
the adjudication contract of the patient's insurer decides it in the order a
real claims engine applies its edits:

1. a claim id seen before is a resubmission (a client retry): denied, nothing written;
2. the same patient, provider, procedure and service day as an earlier claim that was
   approved or pended: denied as a duplicate service (a denied claim may be corrected
   and resubmitted);
3. the patient is not an active member: denied, not eligible;
4. the service category is excluded by the policy: denied, not covered;
5. a category that needs prior authorization without an approved one: denied;
6. simple fraud flags (amount above the payer's threshold, more claims for the
   patient that day than the payer allows): pended for manual review;
7. the policy's annual limit would be exceeded: denied;
8. otherwise approved, and the amount is added to the policy's annual accumulator.

Every decision except (1) writes the claim record; approvals write the policy's
accumulator, which is the contended key when many claims hit one policy.
An approved claim is later paid by the insurer in a remittance batch (an X12 835
references many claims): the payment contract marks approved, unpaid claims of
the sender's own policies paid.

Simplifications: one benefit year (the accumulator never resets); pended claims
stay pended (manual review happens off chain); the payment amount equals the
approved amount (no patient share).
"""

from __future__ import annotations

from typing import NamedTuple

from sim.contracts.base import Result
from sim.contracts.priorauth import auth_key
from sim.contracts.state import TxContext

__all__ = [
    "CLAIM_CATEGORIES",
    "ClaimCall",
    "ClaimRecord",
    "EligibilityCall",
    "Member",
    "PayerRules",
    "PaymentCall",
    "Policy",
    "accumulator_key",
    "adjudicate",
    "check_eligibility",
    "claim_key",
    "member_key",
    "pay",
    "policy_key",
    "rules_key",
]

#: service categories of claims (and of prior authorizations)
CLAIM_CATEGORIES = ("office_visit", "lab", "imaging", "pharmacy", "surgery", "emergency")


class Member(NamedTuple):
    """A patient's coverage: the policy and whether it is active."""

    policy: int
    active: bool


class Policy(NamedTuple):
    """A health plan policy (a household's plan).

    Attributes:
        insurer: node id of the insurer that adjudicates and pays.
        annual_limit_usd: aggregate benefit limit of the policy per year.
        excluded: service categories the policy does not cover.
    """

    insurer: int
    annual_limit_usd: float
    excluded: frozenset[str]


class PayerRules(NamedTuple):
    """An insurer's adjudication edits.

    Attributes:
        fraud_amount_usd: claims above this amount are pended for review.
        max_claims_per_patient_day: claims beyond this count for one patient and day are pended.
        auth_categories: categories that require an approved prior authorization.
    """

    fraud_amount_usd: float
    max_claims_per_patient_day: int
    auth_categories: frozenset[str]


class ClaimCall(NamedTuple):
    """A claim as submitted by a provider."""

    claim_id: int
    patient: int
    provider: int
    category: str
    procedure: int
    service_day: int
    amount_usd: float


class ClaimRecord(NamedTuple):
    """A claim's adjudicated state in the ledger."""

    patient: int
    provider: int
    policy: int
    insurer: int
    amount_usd: float
    status: str  # approved | denied | pended | paid
    reason: str


class EligibilityCall(NamedTuple):
    """An eligibility and benefit inquiry (X12 270): is the patient covered for this category?"""

    patient: int
    category: str


class PaymentCall(NamedTuple):
    """A remittance: the insurer pays these claims."""

    claim_ids: tuple[int, ...]


def member_key(patient: int) -> tuple[str, int]:
    return ("member", patient)


def policy_key(policy: int) -> tuple[str, int]:
    return ("policy", policy)


def rules_key(insurer: int) -> tuple[str, int]:
    return ("rules", insurer)


def claim_key(claim_id: int) -> tuple[str, int]:
    return ("claim", claim_id)


def accumulator_key(policy: int) -> tuple[str, int]:
    """The policy's used-benefit accumulator: the contended key of claims."""
    return ("accum", policy)


def _dedup_key(call: ClaimCall) -> tuple[str, int, int, int, int]:
    return ("claim_dedup", call.patient, call.provider, call.procedure, call.service_day)


def _decided(ctx: TxContext, call: ClaimCall, record: ClaimRecord) -> Result:
    ctx.put(claim_key(call.claim_id), record)
    if record.status != "denied":  # a denied service may be corrected and resubmitted
        ctx.put(_dedup_key(call), call.claim_id)
    return Result(record.status, record.reason, call.patient, call.claim_id, call.amount_usd)


def adjudicate(ctx: TxContext, call: ClaimCall) -> Result:
    """Adjudicate a claim (see the module docstring for the order of the edits)."""
    if ctx.get(claim_key(call.claim_id)) is not None:
        return Result("denied", "duplicate claim id", call.patient, call.claim_id, call.amount_usd)
    member = ctx.get(member_key(call.patient))
    policy_id = member.policy if member is not None else -1
    policy = ctx.get(policy_key(policy_id)) if member is not None else None
    insurer = policy.insurer if policy is not None else -1
    record = ClaimRecord(call.patient, call.provider, policy_id, insurer, call.amount_usd, "denied", "")
    if ctx.get(_dedup_key(call)) is not None:
        return _decided(ctx, call, record._replace(reason="duplicate service"))
    if member is None or policy is None or not member.active:
        return _decided(ctx, call, record._replace(reason="not eligible"))
    if call.category in policy.excluded:
        return _decided(ctx, call, record._replace(reason="not covered"))
    rules: PayerRules = ctx.get(rules_key(insurer))
    if call.category in rules.auth_categories and ctx.get(auth_key(call.patient, call.category)) is None:
        return _decided(ctx, call, record._replace(reason="no prior authorization"))
    velocity = ("claims_day", call.patient, call.service_day)
    count = (ctx.get(velocity) or 0) + 1
    ctx.put(velocity, count)
    if call.amount_usd > rules.fraud_amount_usd:
        return _decided(ctx, call, record._replace(status="pended", reason="amount above review threshold"))
    if count > rules.max_claims_per_patient_day:
        return _decided(ctx, call, record._replace(status="pended", reason="too many claims for the patient today"))
    used = ctx.get(accumulator_key(policy_id)) or 0.0
    if used + call.amount_usd > policy.annual_limit_usd:
        return _decided(ctx, call, record._replace(reason="annual limit exceeded"))
    ctx.put(accumulator_key(policy_id), used + call.amount_usd)
    return _decided(ctx, call, record._replace(status="approved"))


def pay(ctx: TxContext, call: PaymentCall) -> Result:
    """Pay the approved, unpaid claims of the sender's policies among ``call.claim_ids``."""
    paid: list[int] = []
    total = 0.0
    for claim_id in call.claim_ids:
        record: ClaimRecord | None = ctx.get(claim_key(claim_id))
        if record is None or record.status != "approved" or record.insurer != ctx.meta.sender:
            continue
        ctx.put(claim_key(claim_id), record._replace(status="paid"))
        paid.append(claim_id)
        total += record.amount_usd
    if not paid:
        return Result("payment_rejected", "no approved unpaid claim of this insurer", detail={"paid": ()})
    return Result("paid", "", amount_usd=total, detail={"paid": tuple(paid)})


def check_eligibility(ctx: TxContext, call: EligibilityCall) -> Result:
    """Read-only: the answer a 271 response gives (eligible, or why not), with benefit left."""
    member = ctx.get(member_key(call.patient))
    policy = ctx.get(policy_key(member.policy)) if member is not None else None
    if member is None or policy is None or not member.active:
        return Result("ineligible", "not an active member", call.patient)
    if call.category in policy.excluded:
        return Result("ineligible", "category not covered", call.patient)
    used = ctx.get(accumulator_key(member.policy)) or 0.0
    remaining = max(0.0, policy.annual_limit_usd - used)
    return Result("eligible", "", call.patient, member.policy, remaining)
