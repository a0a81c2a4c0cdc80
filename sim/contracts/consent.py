"""Consent and record access, with an audit trail.

A patient (through the app of their home hospital's node) grants or revokes one
provider's access to one category of their records. A provider asking to read a
record pointer is answered by its own node from that node's *committed* state
(as MedRec's off-chain database manager enforces on-chain permissions): allowed
only under a committed, unrevoked consent. Every grant, revocation and access
decision is written to the audit trail (grants and revocations by their own
transactions, access decisions by an ``access_audit`` transaction the enforcing
node submits).

Because a node enforces what *it* has committed, a revocation takes effect at
each node only when that node applies the block that holds it: from the
patient's revoke until the last node applies it, an access may still be allowed
(the revocation exposure window, measured in ``sim.metrics.healthcare``). The
audit transaction re-checks the consent in ledger order and flags an allowed
access that the ledger had already revoked (``after_revocation``).

Audit entries use one key per transaction (a composite key, as Fabric
applications do for logs), so audit writes never conflict with each other.
"""

from __future__ import annotations

from typing import NamedTuple

from sim.contracts.base import Result
from sim.contracts.state import TxContext

__all__ = [
    "RECORD_CATEGORIES",
    "AccessAuditCall",
    "AccessCall",
    "AuditEntry",
    "ConsentCall",
    "audit_access",
    "check_access",
    "consent_key",
    "grant",
    "revoke",
]

#: categories of records a consent covers
RECORD_CATEGORIES = ("labs", "imaging", "notes", "medications")


class ConsentCall(NamedTuple):
    """Grant or revoke: ``patient`` lets ``provider`` read ``category``."""

    patient: int
    provider: int
    category: str


class AccessCall(NamedTuple):
    """A provider asks to read the pointers to a patient's records of a category."""

    patient: int
    provider: int
    category: str


class AccessAuditCall(NamedTuple):
    """The enforcing node's record of an access decision."""

    patient: int
    provider: int
    category: str
    allowed: bool
    node: int
    decided_s: float


class AuditEntry(NamedTuple):
    kind: str  # grant | revoke | access_allowed | access_denied
    provider: int
    category: str
    tx_id: int


def consent_key(patient: int, provider: int, category: str) -> tuple[str, int, int, str]:
    """Present (True) while ``provider`` may read ``patient``'s ``category`` records."""
    return ("consent", patient, provider, category)


def _audit(ctx: TxContext, patient: int, kind: str, provider: int, category: str) -> None:
    ctx.put(("audit", patient, ctx.meta.tx_id), AuditEntry(kind, provider, category, ctx.meta.tx_id))


def grant(ctx: TxContext, call: ConsentCall) -> Result:
    """Grant (idempotent: granting an active consent writes nothing)."""
    key = consent_key(call.patient, call.provider, call.category)
    if ctx.get(key):
        return Result("granted", "already active", call.patient, call.provider, detail={"changed": False})
    ctx.put(key, True)
    _audit(ctx, call.patient, "grant", call.provider, call.category)
    return Result("granted", "", call.patient, call.provider, detail={"changed": True})


def revoke(ctx: TxContext, call: ConsentCall) -> Result:
    """Revoke an active consent (a revoke of nothing is recorded as ``revoke_noop``)."""
    key = consent_key(call.patient, call.provider, call.category)
    if not ctx.get(key):
        return Result("revoke_noop", "no active consent", call.patient, call.provider, detail={"changed": False})
    ctx.put(key, None)
    _audit(ctx, call.patient, "revoke", call.provider, call.category)
    return Result("revoked", "", call.patient, call.provider, detail={"changed": True})


def check_access(ctx: TxContext, call: AccessCall) -> Result:
    """Read-only: may ``provider`` read the pointers? Returns how many records it would see."""
    if not ctx.get(consent_key(call.patient, call.provider, call.category)):
        return Result("access_denied", "no committed consent", call.patient, call.provider)
    pointers = ctx.get(("index", call.patient, call.category)) or ()
    return Result("access_allowed", "", call.patient, call.provider, detail={"records": len(pointers)})


def audit_access(ctx: TxContext, call: AccessAuditCall) -> Result:
    """Write an access decision to the audit trail; flag an allowance the ledger had revoked."""
    kind = "access_allowed" if call.allowed else "access_denied"
    _audit(ctx, call.patient, kind, call.provider, call.category)
    active = bool(ctx.get(consent_key(call.patient, call.provider, call.category)))
    late = call.allowed and not active
    return Result(
        "audited", "allowed after revocation in ledger order" if late else "", call.patient, call.provider,
        detail={"after_revocation": late},
    )
