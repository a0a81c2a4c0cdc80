"""Drug provenance: serialized packages handed from manufacturer to distributor to pharmacy.

Modelled on the US DSCSA flow as run on IBM Food Trust style Fabric networks:
a manufacturer *commissions* a serialized package (GTIN + serial); each hand-off
is a *transfer* signed by the current owner to an organisation of the next
stage; a pharmacy *verifies* a package before dispensing (read-only). The
contract detects counterfeits: a commission of a serial that already exists (a
cloned serial: both copies are flagged), a transfer or verification of an
unknown serial, a transfer by someone who does not hold the package.

Simplifications: one package per serial (no aggregation into cases and pallets);
returns and decommissioning are not modelled.
"""

from __future__ import annotations

from typing import NamedTuple

from sim.contracts.base import Result, org_key
from sim.contracts.state import TxContext

__all__ = [
    "NEXT_STAGE",
    "CommissionCall",
    "Package",
    "TransferCall",
    "VerifyCall",
    "commission",
    "package_key",
    "transfer",
    "verify",
]

#: the role a package's holder must hand it to next
NEXT_STAGE = {"manufacturer": "distributor", "distributor": "pharmacy"}


class CommissionCall(NamedTuple):
    serial: int
    gtin: int


class TransferCall(NamedTuple):
    serial: int
    to_node: int


class VerifyCall(NamedTuple):
    """A pharmacy (``verifier``) checks a package it holds in hand."""

    serial: int
    verifier: int


class Package(NamedTuple):
    gtin: int
    owner: int
    stage: str  # role of the owner: manufacturer | distributor | pharmacy
    custody: tuple[int, ...]
    flagged: bool


def package_key(serial: int) -> tuple[str, int]:
    return ("pkg", serial)


def _has_role(ctx: TxContext, node: int, role: str) -> bool:
    org = ctx.get(org_key(node))
    return org is not None and role in org.roles


def commission(ctx: TxContext, call: CommissionCall) -> Result:
    """Register a new serialized package; a serial seen before is a clone."""
    sender = ctx.meta.sender
    if not _has_role(ctx, sender, "manufacturer"):
        return Result("custody_violation", "sender is not a manufacturer", subject=call.serial)
    existing: Package | None = ctx.get(package_key(call.serial))
    if existing is not None:
        if not existing.flagged:
            ctx.put(package_key(call.serial), existing._replace(flagged=True))
        return Result("counterfeit", "serial already commissioned", subject=call.serial)
    ctx.put(package_key(call.serial), Package(call.gtin, sender, "manufacturer", (sender,), False))
    return Result("commissioned", "", subject=call.serial)


def transfer(ctx: TxContext, call: TransferCall) -> Result:
    """Hand a package from its owner to an organisation of the next stage."""
    pkg: Package | None = ctx.get(package_key(call.serial))
    if pkg is None:
        return Result("counterfeit", "unknown serial", subject=call.serial)
    if pkg.flagged:
        return Result("counterfeit", "serial flagged as cloned", subject=call.serial)
    if pkg.owner != ctx.meta.sender:
        return Result("custody_violation", "sender does not hold the package", subject=call.serial)
    stage = NEXT_STAGE.get(pkg.stage)
    if stage is None or not _has_role(ctx, call.to_node, stage):
        return Result("custody_violation", f"recipient is not a {stage or 'valid next holder'}", subject=call.serial)
    ctx.put(package_key(call.serial), pkg._replace(owner=call.to_node, stage=stage, custody=pkg.custody + (call.to_node,)))
    return Result("transferred", "", subject=call.serial, detail={"stage": stage})


def verify(ctx: TxContext, call: VerifyCall) -> Result:
    """Read-only: is this a genuine package whose custody chain ends at the verifier?"""
    pkg: Package | None = ctx.get(package_key(call.serial))
    if pkg is None:
        return Result("counterfeit", "unknown serial", subject=call.serial)
    if pkg.flagged:
        return Result("counterfeit", "serial flagged as cloned", subject=call.serial)
    if pkg.owner != call.verifier or pkg.stage != "pharmacy" or len(pkg.custody) != 3:
        return Result("suspect", "custody chain does not end at the verifier", subject=call.serial)
    return Result("verified", "", subject=call.serial, detail={"custody": pkg.custody})
