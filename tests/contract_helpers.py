"""A tiny ledger for contract unit tests: one transaction per block, applied at once."""

from __future__ import annotations

from typing import Any

from sim.contracts.base import Result
from sim.contracts.registry import run_contract
from sim.contracts.state import TxMeta, VersionedStore


class ContractChain:
    """Runs contract calls in order on one world state (order-execute, one tx per block).

    Args:
        genesis: the genesis world state as a plain dict.
    """

    def __init__(self, genesis: dict[Any, Any] | None = None) -> None:
        self.store = VersionedStore((genesis or {}).get)
        self.height = 0

    def tx(self, tx_type: str, args: Any, sender: int) -> Result:
        """Execute and commit ``args`` as the next block; return the contract's result."""
        self.height += 1
        result, rwset = run_contract(tx_type, args, self.store, TxMeta(self.height, sender, float(self.height)))
        self.store.apply(rwset.writes, (self.height, 1))
        self.store.end_block(self.height.to_bytes(32, "big"))
        return result

    def query(self, tx_type: str, args: Any, sender: int, at_height: int | None = None) -> Result:
        """Answer a read-only query at ``at_height`` (default: latest)."""
        return run_contract(tx_type, args, self.store, TxMeta(-1, sender, 0.0), at_height)[0]
