"""Prior authorization: a provider requests, the patient's insurer decides.

Request (an X12 278 request): denied at once if the patient is not an active
member or the category is excluded by the policy; otherwise recorded as pending
for the insurer. Decision (the 278 response), sent by the insurer after review:
only the patient's insurer may decide, once; it approves unless the patient
already holds the payer's maximum of approvals in that category. An approval is
written under :func:`auth_key`, which the claims contract checks for categories
that need authorization.

Simplification: the review rule is a count limit; clinical criteria are off chain.
"""

from __future__ import annotations

from typing import NamedTuple

from sim.contracts.base import Result
from sim.contracts.state import TxContext

__all__ = [
    "MAX_AUTHS_PER_CATEGORY",
    "AuthRecord",
    "DecisionCall",
    "RequestCall",
    "auth_key",
    "decide",
    "pa_key",
    "request",
]

#: approvals a patient may hold per category before further requests are denied (assumption)
MAX_AUTHS_PER_CATEGORY = 3


class RequestCall(NamedTuple):
    pa_id: int
    patient: int
    provider: int
    category: str


class DecisionCall(NamedTuple):
    pa_id: int


class AuthRecord(NamedTuple):
    patient: int
    provider: int
    category: str
    insurer: int
    status: str  # pending | approved | denied
    reason: str


def pa_key(pa_id: int) -> tuple[str, int]:
    return ("pa", pa_id)


def auth_key(patient: int, category: str) -> tuple[str, int, str]:
    """Present when the patient holds an approved authorization in ``category``."""
    return ("pa_auth", patient, category)


def request(ctx: TxContext, call: RequestCall) -> Result:
    """Record a prior authorization request (or deny it at intake)."""
    from sim.contracts.claims import member_key, policy_key

    if ctx.get(pa_key(call.pa_id)) is not None:
        return Result("denied", "duplicate request id", call.patient, call.pa_id)
    member = ctx.get(member_key(call.patient))
    policy = ctx.get(policy_key(member.policy)) if member is not None else None
    record = AuthRecord(call.patient, call.provider, call.category, policy.insurer if policy else -1, "denied", "")
    if member is None or policy is None or not member.active:
        record = record._replace(reason="not eligible")
    elif call.category in policy.excluded:
        record = record._replace(reason="not covered")
    else:
        record = record._replace(status="pending")
    ctx.put(pa_key(call.pa_id), record)
    outcome = "pa_pending" if record.status == "pending" else "denied"
    return Result(outcome, record.reason, call.patient, call.pa_id, detail={"insurer": record.insurer})


def decide(ctx: TxContext, call: DecisionCall) -> Result:
    """The insurer's decision on a pending request."""
    record: AuthRecord | None = ctx.get(pa_key(call.pa_id))
    if record is None:
        return Result("decision_rejected", "unknown request", subject=call.pa_id)
    if record.insurer != ctx.meta.sender:
        return Result("decision_rejected", "sender is not the patient's insurer", record.patient, call.pa_id)
    if record.status != "pending":
        return Result("decision_rejected", "already decided", record.patient, call.pa_id)
    count_key = ("pa_count", record.patient, record.category)
    count = ctx.get(count_key) or 0
    if count >= MAX_AUTHS_PER_CATEGORY:
        ctx.put(pa_key(call.pa_id), record._replace(status="denied", reason="authorization limit reached"))
        return Result("pa_denied", "authorization limit reached", record.patient, call.pa_id)
    ctx.put(count_key, count + 1)
    ctx.put(pa_key(call.pa_id), record._replace(status="approved"))
    ctx.put(auth_key(record.patient, record.category), call.pa_id)
    return Result("pa_approved", "", record.patient, call.pa_id, detail={"category": record.category})
