"""The Recorder: one sink for everything a run observes.

Per-transaction facts are kept column-wise in lists indexed by transaction id
(ids are counted from 0 per simulation), so a run with a million transactions
costs a few lists, not a million objects. Recording never draws a random
number: a disabled recorder leaves the simulated trajectory unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.ledger import Block
from sim.metrics.healthcare import HealthRecorder, NullHealthRecorder
from sim.metrics.records import OUTCOMES, BlockInfo, ConsensusRecord, DropRecord
from sim.workload.transaction import Transaction

__all__ = ["NullRecorder", "Recorder"]

_NAN = math.nan


class Recorder:
    """Collects transaction, block and consensus records of one run."""

    enabled = True

    def __init__(self) -> None:
        self.tx_type: list[str] = []
        self.origin: list[int] = []
        self.submit_s: list[float] = []
        self.size_bytes: list[int] = []
        self.proposed_s: list[float] = []
        self.decided_s: list[float] = []
        self.commit_s: list[float] = []
        self.height: list[int] = []
        self.request_id: list[int] = []
        self.attempt: list[int] = []
        self.invalid: dict[int, str] = {}  # tx id -> why validation rejected it
        self.rejected: dict[int, DropRecord] = {}
        self.dropped: dict[int, DropRecord] = {}
        self.blocks: dict[bytes, dict[str, object]] = {}
        self.consensus: list[ConsensusRecord] = []
        self.health = HealthRecorder()

    # ------------------------------------------------------------- transactions

    def tx_submitted(self, tx: Transaction) -> None:
        if tx.tx_id != len(self.submit_s):
            raise ValueError(f"transaction ids must be consecutive; got {tx.tx_id}, expected {len(self.submit_s)}")
        self.tx_type.append(tx.tx_type)
        self.origin.append(tx.origin)
        self.submit_s.append(tx.submit_s)
        self.size_bytes.append(tx.size_bytes)
        self.proposed_s.append(_NAN)
        self.decided_s.append(_NAN)
        self.commit_s.append(_NAN)
        self.height.append(-1)
        self.request_id.append(tx.request_id)
        self.attempt.append(tx.attempt)

    def tx_rejected(self, tx_id: int, node_id: int, time_s: float, reason: str) -> None:
        self.rejected.setdefault(tx_id, DropRecord(tx_id, node_id, time_s, reason))

    def txs_dropped(self, tx_ids: Sequence[int], node_id: int, time_s: float, reason: str) -> None:
        for tx_id in tx_ids:
            self.dropped.setdefault(tx_id, DropRecord(tx_id, node_id, time_s, reason))

    def txs_invalid(self, invalid: Sequence[tuple[int, str]]) -> None:
        """Transactions ordered in a block but marked invalid by validation, with the reason."""
        for tx_id, reason in invalid:
            self.invalid.setdefault(tx_id, reason)

    def txs_proposed(self, tx_ids: Sequence[int], time_s: float) -> None:
        proposed = self.proposed_s
        for tx_id in tx_ids:
            if proposed[tx_id] != proposed[tx_id]:  # NaN: first proposal
                proposed[tx_id] = time_s

    # ------------------------------------------------------------------ blocks

    def block_applied(
        self, node_id: int, block: Block, time_s: float, info: BlockInfo, confirm_origin: bool = True
    ) -> None:
        row = self.blocks.get(block.block_hash)
        if row is None:
            self.blocks[block.block_hash] = row = {
                "height": block.height,
                "block_hash": block.block_hash.hex(),
                "proposer": block.proposer,
                "round": block.round,
                "created_s": block.created_s,
                "decided_s": time_s,
                "tx_count": block.tx_count,
                "size_bytes": block.size_bytes,
                "applied_nodes": 0,
            }
            decided, height = self.decided_s, self.height
            for tx_id in block.tx_ids:
                if decided[tx_id] != decided[tx_id]:
                    decided[tx_id] = time_s
                    height[tx_id] = block.height
        row["applied_nodes"] = int(row["applied_nodes"]) + 1  # type: ignore[call-overload]
        own = info.by_origin.get(node_id) if confirm_origin else None
        if own:
            commit = self.commit_s
            for tx_id in own:
                if commit[tx_id] != commit[tx_id]:
                    commit[tx_id] = time_s

    def txs_confirmed(self, tx_ids: Sequence[int], time_s: float) -> None:
        commit = self.commit_s
        for tx_id in tx_ids:
            if commit[tx_id] != commit[tx_id]:
                commit[tx_id] = time_s

    def consensus_event(self, node_id: int, time_s: float, kind: str, fields: dict[str, object]) -> None:
        self.consensus.append(ConsensusRecord(node_id, time_s, kind, dict(fields)))

    # ------------------------------------------------------------------ tables

    def transactions_table(self) -> pd.DataFrame:
        """One row per transaction (the ``transactions`` table)."""
        submit = np.asarray(self.submit_s, dtype=float)
        proposed = np.asarray(self.proposed_s, dtype=float)
        decided = np.asarray(self.decided_s, dtype=float)
        commit = np.asarray(self.commit_s, dtype=float)
        n = len(submit)
        outcome = np.full(n, "pending", dtype=object)
        reason = np.full(n, "", dtype=object)
        dropped_s = np.full(n, np.nan)
        for records, label in ((self.dropped, "dropped"), (self.rejected, "rejected")):
            for tx_id, rec in records.items():
                outcome[tx_id] = label
                reason[tx_id] = rec.reason
                dropped_s[tx_id] = rec.time_s
        committed = ~np.isnan(decided)
        outcome[committed] = "committed"
        reason[committed] = ""
        dropped_s[committed] = np.nan
        for tx_id, why in self.invalid.items():
            outcome[tx_id] = "invalid"
            reason[tx_id] = why
        return pd.DataFrame(
            {
                "tx_id": np.arange(n, dtype=np.int64),
                "tx_type": pd.Categorical(self.tx_type),
                "origin": np.asarray(self.origin, dtype=np.int32),
                "size_bytes": np.asarray(self.size_bytes, dtype=np.int32),
                "submit_s": submit,
                "proposed_s": proposed,
                "decided_s": decided,
                "commit_s": commit,
                "latency_s": commit - submit,
                "mempool_wait_s": proposed - submit,
                "consensus_s": decided - proposed,
                "origin_apply_s": commit - decided,
                "height": np.asarray(self.height, dtype=np.int64),
                "request_id": np.asarray(self.request_id, dtype=np.int64),
                "attempt": np.asarray(self.attempt, dtype=np.int32),
                "outcome": pd.Categorical(outcome, categories=list(OUTCOMES)),
                "reason": reason.astype(str),
                "dropped_s": dropped_s,
            }
        )

    def blocks_table(self) -> pd.DataFrame:
        """One row per decided block (the ``blocks`` table), by height then decision time."""
        cols = ["height", "block_hash", "proposer", "round", "created_s", "decided_s", "tx_count", "size_bytes", "applied_nodes"]
        df = pd.DataFrame(list(self.blocks.values()), columns=cols)
        return df.sort_values(["height", "decided_s"], kind="stable").reset_index(drop=True)

    def consensus_table(self) -> pd.DataFrame:
        """One row per consensus event (the ``consensus`` table)."""
        rows = [{"time_s": r.time_s, "node_id": r.node_id, "kind": r.kind, **r.fields} for r in self.consensus]
        df = pd.DataFrame(rows)
        if df.empty:
            df = pd.DataFrame(columns=["time_s", "node_id", "kind"])
        return df


class NullRecorder(Recorder):
    """Records nothing (for benchmarks of the engine itself); draws nothing either."""

    enabled = False

    def __init__(self) -> None:
        super().__init__()
        self.submitted = 0
        self.health = NullHealthRecorder()

    def txs_invalid(self, invalid: Sequence[tuple[int, str]]) -> None:
        pass

    def tx_submitted(self, tx: Transaction) -> None:
        self.submitted += 1

    def tx_rejected(self, tx_id: int, node_id: int, time_s: float, reason: str) -> None:
        pass

    def txs_dropped(self, tx_ids: Sequence[int], node_id: int, time_s: float, reason: str) -> None:
        pass

    def txs_proposed(self, tx_ids: Sequence[int], time_s: float) -> None:
        pass

    def block_applied(
        self, node_id: int, block: Block, time_s: float, info: BlockInfo, confirm_origin: bool = True
    ) -> None:
        pass

    def txs_confirmed(self, tx_ids: Sequence[int], time_s: float) -> None:
        pass

    def consensus_event(self, node_id: int, time_s: float, kind: str, fields: dict[str, object]) -> None:
        pass

    def transactions_table(self) -> pd.DataFrame:
        return Recorder().transactions_table()
