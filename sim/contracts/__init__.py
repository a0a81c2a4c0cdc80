"""Healthcare contracts over a versioned key-value world state.

``state`` (versions, read-write sets), one module per contract (``claims``,
``priorauth``, ``consent``, ``records``, ``provenance``, ``trials``), the
``registry`` of contracts by transaction type, and the ``executor`` that runs
them when nodes apply blocks (order-execute) or validates endorsed read-write
sets (execute-order-validate).
"""

from sim.contracts.base import Call, Endorsed, Org, Result
from sim.contracts.registry import CONTRACTS, Contract, run_contract
from sim.contracts.state import RWSet, TxContext, TxMeta, VersionedStore

__all__ = [
    "CONTRACTS",
    "Call",
    "Contract",
    "Endorsed",
    "Org",
    "RWSet",
    "Result",
    "TxContext",
    "TxMeta",
    "VersionedStore",
    "run_contract",
]
