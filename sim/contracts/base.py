"""What every contract shares: the call wrapper, results and the organisation record."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from sim.contracts.state import RWSet

__all__ = ["Call", "Endorsed", "Org", "Result", "call_args", "org_key"]


_NO_DETAIL: Mapping[str, Any] = MappingProxyType({})


class Call(NamedTuple):
    """A contract call carried as a transaction's payload.

    Attributes:
        args: the contract's argument record (e.g. :class:`~sim.contracts.claims.ClaimCall`).
        parties: node ids of the organisations whose data the call touches, sender first
            (a claim: provider, then the patient's insurer). Execute-order-validate asks
            them for endorsements under the ``parties`` policy.
    """

    args: Any
    parties: tuple[int, ...]


class Result(NamedTuple):
    """What a contract decided.

    Attributes:
        outcome: contract-level outcome (approved, denied, pended, paid, granted, revoked,
            access_allowed, access_denied, registered, counterfeit, ...).
        reason: why, for denials and failures ("" when there is nothing to explain).
        patient: the patient concerned, or -1.
        subject: the claim, authorization, record, serial or trial id, or -1.
        amount_usd: money involved (claims, payments), or 0.
        detail: extra facts for tests and tables (e.g. the claim ids a payment paid).
    """

    outcome: str
    reason: str = ""
    patient: int = -1
    subject: int = -1
    amount_usd: float = 0.0
    detail: Mapping[str, Any] = _NO_DETAIL


class Endorsed(NamedTuple):
    """An execute-order-validate transaction: a call with its endorsed simulation result.

    Attributes:
        call: the original call.
        rwset: read versions and writes every endorser agreed on.
        result: the contract's decision as simulated by the endorsers.
        endorsers: node ids that endorsed.
        required: node ids the endorsement policy requires.
    """

    call: Call
    rwset: RWSet
    result: Result
    endorsers: tuple[int, ...]
    required: tuple[int, ...]


class Org(NamedTuple):
    """An organisation (a node) and the roles it plays: provider, insurer, manufacturer,
    distributor, pharmacy. Held in the genesis state under :func:`org_key`."""

    node_id: int
    roles: frozenset[str]


def org_key(node_id: int) -> tuple[str, int]:
    """World-state key of a node's organisation record."""
    return ("org", node_id)


def call_args(tx: Any) -> Any:
    """The contract arguments a transaction carries (through an endorsement envelope if any)."""
    payload = tx.payload
    if isinstance(payload, Endorsed):
        return payload.call.args
    if isinstance(payload, Call):
        return payload.args
    return None
