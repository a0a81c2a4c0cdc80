"""Record registration and integrity, MedRec style: pointers and hashes on chain, data off chain.

A hospital registers a record pointer and the SHA-256 hash of the off-chain
record; health data itself never goes on chain. Registration also maintains
MedRec's other two contracts: the patient-provider *relationship* (the pointers
a provider holds for a patient) and the patient's *summary* (the providers the
patient has relationships with). A verifier fetches the off-chain record from
its holder, hashes it and compares with the anchored hash: a mismatch means the
off-chain copy was altered after registration.

Simplifications: pointers are opaque strings; the registrar (identity to
address) is the genesis organisation table.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from sim.contracts.base import Result, org_key
from sim.contracts.state import TxContext

__all__ = ["RecordEntry", "RegisterCall", "VerifyCall", "record_key", "register", "sha256", "verify"]


class RegisterCall(NamedTuple):
    record_id: int
    patient: int
    category: str
    digest: bytes  # SHA-256 of the off-chain record
    pointer: str


class VerifyCall(NamedTuple):
    """Check an off-chain record against its anchor; ``content`` is what the holder returned."""

    record_id: int
    content: bytes


class RecordEntry(NamedTuple):
    patient: int
    holder: int
    category: str
    digest: bytes
    pointer: str


def sha256(content: bytes) -> bytes:
    """SHA-256 digest of an off-chain record."""
    return hashlib.sha256(content).digest()


def record_key(record_id: int) -> tuple[str, int]:
    return ("record", record_id)


def register(ctx: TxContext, call: RegisterCall) -> Result:
    """Anchor a record; update the relationship and the patient's summary."""
    holder = ctx.meta.sender
    org = ctx.get(org_key(holder))
    if org is None or "provider" not in org.roles:
        return Result("register_rejected", "sender is not a provider", call.patient, call.record_id)
    if ctx.get(record_key(call.record_id)) is not None:
        return Result("register_rejected", "record id already registered", call.patient, call.record_id)
    ctx.put(record_key(call.record_id), RecordEntry(call.patient, holder, call.category, call.digest, call.pointer))
    rel = ("rel", call.patient, holder)
    ctx.put(rel, (ctx.get(rel) or ()) + (call.record_id,))
    index = ("index", call.patient, call.category)
    ctx.put(index, (ctx.get(index) or ()) + (call.record_id,))
    summary = ("summary", call.patient)
    providers = ctx.get(summary) or frozenset()
    if holder not in providers:
        ctx.put(summary, providers | {holder})
    return Result("registered", "", call.patient, call.record_id)


def verify(ctx: TxContext, call: VerifyCall) -> Result:
    """Read-only: does the off-chain content still match its anchored hash?"""
    entry: RecordEntry | None = ctx.get(record_key(call.record_id))
    if entry is None:
        return Result("unknown_record", "no anchor for this record", subject=call.record_id)
    if sha256(call.content) != entry.digest:
        return Result("tampered", "off-chain record does not match its anchored hash", entry.patient, call.record_id)
    return Result("verified", "", entry.patient, call.record_id)
