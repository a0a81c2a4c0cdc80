"""Flat records and the per-block facts the recorder needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OUTCOMES", "BlockInfo", "ConsensusRecord", "DropRecord"]

#: every transaction ends in exactly one of these ("invalid": ordered in a block but rejected by
#: execute-order-validate validation, e.g. an MVCC read conflict; its writes are discarded)
OUTCOMES = ("committed", "invalid", "rejected", "dropped", "pending")


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """Facts about a block computed once, shared by every node that applies it.

    Attributes:
        execute_s: CPU seconds to execute all its transactions once.
        by_origin: origin node id -> ids of its transactions in the block.
    """

    execute_s: float
    by_origin: dict[int, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class DropRecord:
    """A transaction given up somewhere (rejected, lost, crashed with its holder)."""

    tx_id: int
    node_id: int
    time_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class ConsensusRecord:
    """Something a protocol did: an election, a view change, a new leader, a round."""

    node_id: int
    time_s: float
    kind: str
    fields: dict[str, Any]
