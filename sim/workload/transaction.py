"""The transaction record that moves through mempools, blocks and ledgers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Transaction"]


@dataclass(frozen=True, slots=True)
class Transaction:
    """One client transaction (one attempt of a client request).

    Attributes:
        tx_id: unique per simulation, counted from 0 in submission order.
        tx_type: workload type name (``hcsim list workloads``).
        origin: node id the client submitted it to (its hospital, insurer, ...).
        submit_s: simulated submission time, seconds.
        size_bytes: wire size, bytes.
        execute_s: CPU time to execute it on one node, seconds.
        payload: contract call data (a ``sim.contracts.Call``, or an ``Endorsed`` envelope
            in execute-order-validate; None for opaque transactions).
        request_id: the client request this attempt belongs to (-1: none).
        attempt: 0 for the first submission, k for the k-th retry.
    """

    tx_id: int
    tx_type: str
    origin: int
    submit_s: float
    size_bytes: int
    execute_s: float
    payload: Any = field(default=None, compare=False)
    request_id: int = -1
    attempt: int = 0
