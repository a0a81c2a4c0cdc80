"""Transaction types: what each costs on the wire and on a CPU.

The registry is how workloads name their types (``[workload] mix``); the
healthcare contracts attach behaviour to these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["TxType", "TX_TYPES", "tx_type_names"]


@dataclass(frozen=True)
class TxType:
    """A kind of transaction.

    Attributes:
        name: key used in scenario files.
        size_bytes: typical wire size, bytes.
        execute_s: CPU time to execute it once, seconds.
        description: one line for ``hcsim list workloads``; says where the size comes from.
    """

    name: str
    size_bytes: int
    execute_s: float
    description: str


TX_TYPES: Mapping[str, TxType] = MappingProxyType(
    {
        "claim": TxType(
            name="claim",
            # X12 837P professional claim with 4 service lines, with envelope: ~1.1 KB
            # (shared/reference/README.md).
            size_bytes=1100,
            # Assumption: a rules-based adjudication contract reads a policy and a few
            # counters; 100 us of CPU per execution (no published figure).
            execute_s=100e-6,
            description="insurance claim submitted by a provider, 1.1 KB (X12 837P, 4 lines)",
        ),
    }
)


def tx_type_names() -> list[str]:
    """Known transaction type names, sorted."""
    return sorted(TX_TYPES)
