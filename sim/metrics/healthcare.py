"""Healthcare records, tables and summary metrics.

Tables (all one row per thing, tidy):

- ``contracts``: every executed transaction with its contract outcome (approved,
  denied, pended, paid, granted, revoked, registered, commissioned, transferred,
  counterfeit, anchored, ...; ``invalid`` when validation rejected it);
- ``queries``: every read-only query (eligibility, record access, record and drug
  verification) with its latency, the answering node's height and staleness;
- ``audit``: the consent and access trail: grants and revocations as they take
  effect in the ledger, access decisions as each node enforces them;
- ``revocations``: each effective revocation, when every node enforced it, its
  exposure window and the accesses allowed inside it;
- ``claims`` and ``requests`` come from the workload (``sim.workload.workload``).

Definitions used by the summary:

- revocation exposure: from the patient's revoke (first submission) to the time
  the last node applied the block that holds it; if some node never did by the
  end of the run the window is *censored* and counted up to the end;
- access inside the window: an access allowed by a node, after the revoke was
  submitted, while that node's applied height was below the revoke's height;
- consent violation: an access allowed by a node whose committed history (as
  reconstructed from the ``contracts`` table at the node's applied height) had
  no active consent. It is an invariant and must be 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim.contracts.base import call_args

if TYPE_CHECKING:
    from sim.contracts.base import Result
    from sim.contracts.executor import Executed
    from sim.ledger import Block
    from sim.workload.generator import Request

__all__ = ["HealthRecorder", "NullHealthRecorder", "consent_violations", "healthcare_summary", "revocations_table"]

CONTRACT_COLS = ["tx_id", "tx_type", "origin", "request_id", "height", "index", "decided_s", "valid", "outcome",
                 "reason", "patient", "subject", "amount_usd", "category"]  # fmt: skip
QUERY_COLS = ["request_id", "tx_type", "node_id", "submit_s", "answered_s", "latency_s", "staleness_s",
              "blocks_behind", "height", "status", "outcome", "reason", "patient", "subject", "category", "truth"]  # fmt: skip
AUDIT_COLS = ["time_s", "node_id", "kind", "patient", "provider", "category", "tx_id", "height"]
REVOCATION_COLS = ["tx_id", "request_id", "patient", "provider", "category", "submit_s", "height", "decided_s",
                   "enforced_all_s", "nodes_enforced", "censored", "exposure_s", "accesses_in_window"]  # fmt: skip


class HealthRecorder:
    """Collects contract outcomes, queries, the audit trail and revocation enforcement."""

    enabled = True

    def __init__(self) -> None:
        self.contract_rows: list[tuple[Any, ...]] = []
        self.query_rows: list[tuple[Any, ...]] = []
        self.audit_rows: list[tuple[Any, ...]] = []
        # revoke tx id -> [request id, patient, provider, category, height, decided_s, {node: enforced_s}]
        self.revocations: dict[int, list[Any]] = {}

    def executed(self, block: Block, executed: Sequence[Executed], now_s: float) -> None:
        """A block's transactions ran (or were validated) for the first time."""
        for index, ex in enumerate(executed, start=1):
            tx, r = ex.tx, ex.result
            args = call_args(tx)
            category = getattr(args, "category", "") if args is not None else ""
            if not ex.valid:
                outcome, reason, patient, subject, amount = "invalid", ex.invalid_reason, -1, -1, 0.0
            elif r is None:
                outcome, reason, patient, subject, amount = "committed", "", -1, -1, 0.0
            else:
                outcome, reason, patient, subject, amount = r.outcome, r.reason, r.patient, r.subject, r.amount_usd
            self.contract_rows.append((tx.tx_id, tx.tx_type, tx.origin, tx.request_id, block.height, index, now_s,
                                       ex.valid, outcome, reason, patient, subject, amount, category))  # fmt: skip
            if ex.valid and r is not None and tx.tx_type in ("consent_grant", "consent_revoke") and r.detail.get("changed"):
                kind = "grant" if tx.tx_type == "consent_grant" else "revoke"
                self.audit_rows.append((now_s, -1, kind, args.patient, args.provider, category, tx.tx_id, block.height))
                if kind == "revoke":
                    self.revocations[tx.tx_id] = [tx.request_id, args.patient, args.provider, category, block.height, now_s, {}]

    def applied(self, node_id: int, revokes: Sequence[Executed], now_s: float) -> None:
        """``node_id`` applied a block holding ``revokes``: from now on it enforces them."""
        for ex in revokes:
            entry = self.revocations.get(ex.tx.tx_id)
            if entry is not None:
                entry[6].setdefault(node_id, now_s)

    def query(self, request: Request, node_id: int, now_s: float, result: Result, stale_s: float, behind: int, height: int) -> None:
        """``node_id`` answered a query from its committed state at ``height``."""
        args = request.payload
        category = getattr(args, "category", "")
        self.query_rows.append((request.request_id, request.tx_type, node_id, request.first_submit_s, now_s,
                                now_s - request.first_submit_s, stale_s, behind, height, "answered", result.outcome,
                                result.reason, result.patient, result.subject, category, request.truth))  # fmt: skip
        if request.tx_type == "record_access":
            self.audit_rows.append((now_s, node_id, result.outcome, args.patient, args.provider, category, -1, height))

    def query_failed(self, request: Request, node_id: int, now_s: float, reason: str) -> None:
        args = request.payload
        self.query_rows.append((request.request_id, request.tx_type, node_id, request.first_submit_s, now_s, math.nan,
                                math.nan, -1, -1, "failed", "", reason, getattr(args, "patient", -1), -1,
                                getattr(args, "category", ""), request.truth))  # fmt: skip

    # ---------------------------------------------------------------- tables

    def contracts_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.contract_rows, columns=CONTRACT_COLS)

    def queries_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.query_rows, columns=QUERY_COLS)

    def audit_table(self) -> pd.DataFrame:
        df = pd.DataFrame(self.audit_rows, columns=AUDIT_COLS)
        return df.sort_values("time_s", kind="stable").reset_index(drop=True)


class NullHealthRecorder(HealthRecorder):
    """Records nothing (``metrics.enabled = false``)."""

    enabled = False

    def executed(self, block: Block, executed: Sequence[Executed], now_s: float) -> None:
        pass

    def applied(self, node_id: int, revokes: Sequence[Executed], now_s: float) -> None:
        pass

    def query(self, request: Request, node_id: int, now_s: float, result: Result, stale_s: float, behind: int, height: int) -> None:
        pass

    def query_failed(self, request: Request, node_id: int, now_s: float, reason: str) -> None:
        pass


# --------------------------------------------------------------------- derived


def revocations_table(health: HealthRecorder, submit_s: Sequence[float], n_nodes: int, end_s: float, queries: pd.DataFrame) -> pd.DataFrame:
    """One row per effective revocation with its exposure window.

    Args:
        health: the recorder.
        submit_s: first submission time of every request, by request id.
        n_nodes: nodes that must enforce a revocation.
        end_s: end of the run (closes censored windows).
        queries: the ``queries`` table (for accesses inside each window).
    """
    allowed = queries[(queries["tx_type"] == "record_access") & (queries["outcome"] == "access_allowed")]
    access_by_key: dict[tuple[int, int, str], pd.DataFrame] = {}
    if len(allowed):
        for key, group in allowed.groupby(["patient", "subject", "category"], sort=False):
            access_by_key[key] = group  # type: ignore[index]
    rows = []
    for tx_id, (request_id, patient, provider, category, height, decided_s, enforced) in health.revocations.items():
        start = submit_s[request_id] if 0 <= request_id < len(submit_s) else decided_s
        censored = len(enforced) < n_nodes
        enforced_all = math.nan if censored else max(enforced.values())
        exposure = (end_s if censored else enforced_all) - start
        inside = 0
        group = access_by_key.get((patient, provider, category))
        if group is not None:
            mask = (group["answered_s"].to_numpy() >= start) & (group["height"].to_numpy() < height)
            inside = int(mask.sum())
        rows.append((tx_id, request_id, patient, provider, category, start, height, decided_s, enforced_all,
                     len(enforced), censored, exposure, inside))  # fmt: skip
    return pd.DataFrame(rows, columns=REVOCATION_COLS)


def consent_violations(contracts: pd.DataFrame, queries: pd.DataFrame) -> tuple[int, list[str]]:
    """Accesses allowed without an active consent in the enforcing node's committed history.

    The consent history is rebuilt from the ``contracts`` table (effective grants and
    revocations in ledger order), independently of the world state that decided.
    """
    allowed = queries[(queries["tx_type"] == "record_access") & (queries["outcome"] == "access_allowed")]
    if allowed.empty:
        return 0, []
    events = contracts[
        contracts["valid"]
        & (
            ((contracts["tx_type"] == "consent_grant") & (contracts["outcome"] == "granted"))
            | ((contracts["tx_type"] == "consent_revoke") & (contracts["outcome"] == "revoked"))
        )
    ].sort_values(["height", "index"])
    history: dict[tuple[int, int, str], tuple[np.ndarray, np.ndarray]] = {}
    for key, group in events.groupby(["patient", "subject", "category"], sort=False):
        positions = group["height"].to_numpy()
        active = (group["tx_type"] == "consent_grant").to_numpy()
        history[key] = (positions, active)  # type: ignore[index]
    violations = 0
    notes: list[str] = []
    for row in allowed.itertuples(index=False):
        entry = history.get((row.patient, row.subject, row.category))
        ok = False
        if entry is not None:
            i = int(np.searchsorted(entry[0], row.height, side="right")) - 1
            ok = i >= 0 and bool(entry[1][i])
        if not ok:
            violations += 1
            if len(notes) < 5:
                notes.append(f"access allowed at node {row.node_id}, t={row.answered_s:.3f}, height {row.height} "
                             f"without consent of patient {row.patient} for provider {row.subject} ({row.category})")  # fmt: skip
    return violations, notes


def _pct(values: np.ndarray, q: float) -> float:
    values = values[~np.isnan(values)]
    return float(np.percentile(values, q)) if len(values) else math.nan


def healthcare_summary(tables: dict[str, pd.DataFrame], warmup_s: float) -> dict[str, Any]:
    """Healthcare headline numbers (every key present; NaN or 0 when not applicable)."""
    claims, queries, contracts = tables["claims"], tables["queries"], tables["contracts"]
    revocations, requests, tx = tables["revocations"], tables["requests"], tables["transactions"]
    out: dict[str, Any] = {}
    measured = claims[claims["submit_s"] >= warmup_s]
    decision = claims["decision"]
    out.update(
        claims_submitted=len(claims),
        claims_approved=int((decision == "approved").sum()),
        claims_denied=int((decision == "denied").sum()),
        claims_pended=int((decision == "pended").sum()),
        claims_paid=int(claims["paid_s"].notna().sum()),
        claim_adjudication_p50_s=_pct(measured["adjudication_latency_s"].to_numpy(float), 50),
        claim_adjudication_p99_s=_pct(measured["adjudication_latency_s"].to_numpy(float), 99),
        claim_paid_p50_s=_pct(measured["paid_latency_s"].to_numpy(float), 50),
        claim_paid_p99_s=_pct(measured["paid_latency_s"].to_numpy(float), 99),
    )
    elig = queries[(queries["tx_type"] == "eligibility") & (queries["submit_s"] >= warmup_s)]
    out.update(
        eligibility_checks=int((queries["tx_type"] == "eligibility").sum()),
        eligibility_latency_p50_s=_pct(elig["latency_s"].to_numpy(float), 50),
        eligibility_latency_p99_s=_pct(elig["latency_s"].to_numpy(float), 99),
        eligibility_staleness_p99_s=_pct(elig["staleness_s"].to_numpy(float), 99),
        eligibility_staleness_max_s=float(elig["staleness_s"].max()) if elig["staleness_s"].notna().any() else math.nan,
        queries_failed=int((queries["status"] == "failed").sum()),
    )
    access = queries[queries["tx_type"] == "record_access"]
    out.update(
        consents_granted=int(((contracts["tx_type"] == "consent_grant") & (contracts["outcome"] == "granted")).sum()),
        consents_revoked=len(revocations),
        accesses_allowed=int((access["outcome"] == "access_allowed").sum()),
        accesses_denied=int((access["outcome"] == "access_denied").sum()),
        revocation_exposure_max_s=float(revocations["exposure_s"].max()) if len(revocations) else math.nan,
        revocation_exposure_mean_s=float(revocations["exposure_s"].mean()) if len(revocations) else math.nan,
        revocations_censored=int(revocations["censored"].sum()) if len(revocations) else 0,
        accesses_in_exposure_window=int(revocations["accesses_in_window"].sum()) if len(revocations) else 0,
    )
    verify = queries[queries["tx_type"] == "record_verify"]
    drug_q = queries[(queries["tx_type"] == "drug_verify") & (queries["status"] == "answered")]
    commissions = requests[requests["tx_type"] == "drug_commission"]
    fake = (drug_q["truth"] == "counterfeit").to_numpy()
    flagged = (drug_q["outcome"] == "counterfeit").to_numpy()
    clone_flags = int(((contracts["tx_type"] == "drug_commission") & (contracts["outcome"] == "counterfeit")).sum())
    out.update(
        records_registered=int(((contracts["tx_type"] == "record_register") & (contracts["outcome"] == "registered")).sum()),
        tampered_records_detected=int((verify["outcome"] == "tampered").sum()),
        tampered_records_missed=int(((verify["truth"] == "tampered") & (verify["outcome"] != "tampered") & (verify["status"] == "answered")).sum()),
        counterfeits_injected=int(fake.sum() + (commissions["truth"] == "counterfeit").sum()),
        counterfeits_detected=int((fake & flagged).sum() + clone_flags),
        counterfeit_false_alarms=int((~fake & flagged).sum()),
        packages_verified=int((drug_q["outcome"] == "verified").sum()),
        trial_anchors=int(((contracts["tx_type"] == "trial_anchor") & (contracts["outcome"] == "anchored")).sum()),
    )
    invalid = int((tx["outcome"] == "invalid").sum())
    committed = int((tx["outcome"] == "committed").sum())
    mvcc = int((contracts["reason"] == "mvcc read conflict").sum())
    out.update(
        invalid_tx=invalid,
        mvcc_conflicts=mvcc,
        mvcc_conflict_rate=mvcc / (committed + invalid) if committed + invalid else math.nan,
        requests=len(requests),
        requests_completed=int((requests["status"] == "completed").sum()),
        requests_failed=int((requests["status"] == "failed").sum()),
        retries=int((requests["attempts"] - 1).clip(lower=0).sum()) if len(requests) else 0,
        duplicate_commits=int((requests["committed_attempts"] - 1).clip(lower=0).sum()) if len(requests) else 0,
    )
    return out
