"""Invariant checks run at the end of every run: they count violations, never hide them.

Each check returns (violations, descriptions of the first few); :func:`invariants_table`
gathers them into the ``invariants`` table. "Honest" nodes are the ones that were never
Byzantine (a fault may make a node Byzantine for a while; see sim/faults).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from sim.ledger import Ledger, verify_chain

__all__ = [
    "check_conservation",
    "check_durability",
    "check_ledgers",
    "check_safety",
    "invariants_table",
]


def check_safety(ledgers: Sequence[Ledger], honest: Collection[int]) -> tuple[int, list[str]]:
    """Heights at which two honest nodes finalized different blocks.

    Returns:
        (number of conflicting heights, descriptions of the first few).
    """
    honest_ids = sorted(honest)
    top = max((ledgers[i].height for i in honest_ids), default=0)
    violations = 0
    described: list[str] = []
    for height in range(1, top + 1):
        seen: dict[bytes, list[int]] = {}
        for i in honest_ids:
            if ledgers[i].height >= height:
                seen.setdefault(ledgers[i].hash_at(height), []).append(i)
        if len(seen) > 1:
            violations += 1
            if len(described) < 5:
                parts = "; ".join(f"{h.hex()[:8]} at nodes {ids[:6]}" for h, ids in seen.items())
                described.append(f"height {height}: {len(seen)} different blocks ({parts})")
    return violations, described


def check_ledgers(ledgers: Sequence[Ledger], honest: Collection[int]) -> tuple[int, list[str]]:
    """Honest nodes whose hash chain does not verify.

    Returns:
        (number of broken ledgers, descriptions of the first few problems).
    """
    cache: dict[bytes, bool] = {}
    broken = 0
    described: list[str] = []
    for i in sorted(honest):
        problems = verify_chain(ledgers[i].blocks, cache)
        if problems:
            broken += 1
            described.extend(f"node {i}: {p}" for p in problems[: max(0, 5 - len(described))])
    return broken, described


def check_conservation(transactions: pd.DataFrame, submitted: int, pending_held: Collection[int]) -> tuple[int, list[str]]:
    """Transactions that vanished: neither committed, rejected, dropped, nor held anywhere.

    Args:
        transactions: the ``transactions`` table.
        submitted: number of transactions clients submitted.
        pending_held: ids held in mempools, protocol state or in-flight forwarding messages.

    Returns:
        (number of vanished transactions, descriptions of the first few).
    """
    problems: list[str] = []
    if len(transactions) != submitted:
        return abs(submitted - len(transactions)), [f"{submitted} submitted but {len(transactions)} rows recorded"]
    pending = transactions.loc[transactions["outcome"] == "pending", "tx_id"].to_numpy()
    held = set(pending_held)
    vanished = [int(t) for t in pending if int(t) not in held]
    if vanished:
        problems.append(f"{len(vanished)} pending transactions are held nowhere, e.g. ids {vanished[:5]}")
    return len(vanished), problems


def check_durability(ledgers: Sequence[Ledger], honest: Collection[int], committed_tx_ids: Iterable[int]) -> tuple[int, list[str]]:
    """Committed transactions that no honest node's ledger holds (lost after commit).

    A transaction counts as committed once any node applied a block with it; if only
    Byzantine nodes hold that block, the commit was not durable.

    Returns:
        (number of lost transactions, descriptions of the first few).
    """
    blocks = {}
    for i in honest:
        for block in ledgers[i].blocks:
            blocks[block.block_hash] = block
    held = {tx for block in blocks.values() for tx in block.tx_ids}
    lost = sorted(set(committed_tx_ids) - held)
    if not lost:
        return 0, []
    return len(lost), [f"{len(lost)} committed transactions are in no honest ledger, e.g. ids {lost[:5]}"]


def invariants_table(results: Mapping[str, tuple[int, list[str]]]) -> pd.DataFrame:
    """The ``invariants`` table: one row per invariant with its count and first examples."""
    rows: list[dict[str, Any]] = [
        {"invariant": name, "violations": int(count), "examples": " | ".join(notes)} for name, (count, notes) in results.items()
    ]
    return pd.DataFrame(rows, columns=["invariant", "violations", "examples"])
