"""The contract registry: which contract function serves each transaction type.

A *transaction* contract runs when its block is applied (order-execute) or when
endorsers simulate it (execute-order-validate) and may write; a *query*
contract is answered by one peer from its committed state and never writes.
Names match :data:`sim.workload.types.TX_TYPES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sim.contracts import claims, consent, priorauth, provenance, records, trials
from sim.contracts.base import Result
from sim.contracts.state import RWSet, TxContext, TxMeta, VersionedStore

__all__ = ["CONTRACTS", "Contract", "run_contract"]


@dataclass(frozen=True)
class Contract:
    """One contract entry point.

    Attributes:
        name: transaction type name.
        run: ``run(ctx, args) -> Result``.
        read_only: True for queries answered without consensus.
    """

    name: str
    run: Callable[[TxContext, Any], Result]
    read_only: bool = False


def _table(*entries: Contract) -> Mapping[str, Contract]:
    return MappingProxyType({c.name: c for c in entries})


CONTRACTS: Mapping[str, Contract] = _table(
    Contract("claim", claims.adjudicate),
    Contract("claim_payment", claims.pay),
    Contract("eligibility", claims.check_eligibility, read_only=True),
    Contract("prior_auth_request", priorauth.request),
    Contract("prior_auth_decision", priorauth.decide),
    Contract("consent_grant", consent.grant),
    Contract("consent_revoke", consent.revoke),
    Contract("record_access", consent.check_access, read_only=True),
    Contract("access_audit", consent.audit_access),
    Contract("record_register", records.register),
    Contract("record_verify", records.verify, read_only=True),
    Contract("drug_commission", provenance.commission),
    Contract("drug_transfer", provenance.transfer),
    Contract("drug_verify", provenance.verify, read_only=True),
    Contract("trial_anchor", trials.anchor),
)


def run_contract(
    tx_type: str, args: Any, store: VersionedStore, meta: TxMeta, at_height: int | None = None
) -> tuple[Result, RWSet]:
    """Execute one call against ``store`` as of ``at_height`` (None: latest) without applying it.

    Raises:
        KeyError: ``tx_type`` has no contract.
        RuntimeError: a read-only contract tried to write.
    """
    contract = CONTRACTS[tx_type]
    ctx = TxContext(store, meta, at_height)
    result = contract.run(ctx, args)
    rwset = ctx.rwset()
    if contract.read_only and rwset.writes:
        raise RuntimeError(f"read-only contract {tx_type!r} wrote {[k for k, _ in rwset.writes]}")
    return result, rwset
