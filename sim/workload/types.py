"""Transaction types: who sends each, what it costs on the wire and on a CPU.

The registry is how workloads name their types (``[workload] mix``); the
healthcare contracts (``sim.contracts.registry``) attach behaviour to the same
names. *Queries* are read-only: the sender's own node answers them from its
committed state, without consensus, so they never become transactions.

Sources: the claim size is from shared/reference/README.md (X12 837P with four
service lines and envelope, ~1.1 KB). No published figure was found for the
other sizes and CPU costs: each is an assumption stated next to it, sized from
the message it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["ROLES", "TX_TYPES", "TxType", "tx_type_names"]

#: organisation roles a node can play (``[workload]`` insurers, manufacturers, ...)
ROLES = ("provider", "insurer", "manufacturer", "distributor", "pharmacy")


@dataclass(frozen=True)
class TxType:
    """A kind of transaction or query.

    Attributes:
        name: key used in scenario files.
        size_bytes: typical wire size, bytes (a claim payment adds ``PAYMENT_PER_CLAIM_BYTES`` per claim).
        execute_s: CPU time to execute (or answer) it once, seconds.
        description: one line for ``hcsim list workloads``; says where the size comes from.
        senders: roles of the organisations that send it.
        read_only: True for queries answered by one node from committed state.
        generated: True for types the system sends in reaction to others (payments,
            authorization decisions, access audits); they may also appear in a mix.
    """

    name: str
    size_bytes: int
    execute_s: float
    description: str
    senders: tuple[str, ...] = ("provider",)
    read_only: bool = False
    generated: bool = False


#: on-chain bytes a remittance adds per paid claim: claim id and amount (the X12 835 stays off chain)
PAYMENT_PER_CLAIM_BYTES = 24
#: CPU seconds a remittance adds per paid claim (assumption: one read and one write)
PAYMENT_PER_CLAIM_S = 10e-6


def _types(*entries: TxType) -> Mapping[str, TxType]:
    return MappingProxyType({t.name: t for t in entries})


TX_TYPES: Mapping[str, TxType] = _types(
    # X12 837P professional claim with 4 service lines, with envelope: ~1.1 KB (shared/reference).
    # Assumption: rules-based adjudication reads a policy, rules and a few counters: 100 us.
    TxType("claim", 1100, 100e-6, "provider submits a claim; adjudicated approve/deny/pend (1.1 KB, X12 837P, 4 lines)"),
    # Assumption: the on-chain remittance carries claim ids and amounts (24 B each) over a 200 B envelope.
    TxType("claim_payment", 200, 20e-6, "insurer pays approved claims in a remittance batch (200 B + 24 B per claim)",
           senders=("insurer",), generated=True),
    # Assumption: an X12 270 inquiry is a few hundred bytes; answering is two reads: 40 us.
    TxType("eligibility", 300, 40e-6, "eligibility inquiry answered by the provider's peer, no consensus (300 B, X12 270)",
           read_only=True),
    # Assumption: an X12 278 request with one service line, ~0.9 KB; 80 us.
    TxType("prior_auth_request", 900, 80e-6, "provider requests prior authorization (0.9 KB, X12 278 request)"),
    # Assumption: a 278 response, ~0.6 KB; 60 us.
    TxType("prior_auth_decision", 600, 60e-6, "insurer approves or denies a prior authorization (0.6 KB, X12 278 response)",
           senders=("insurer",), generated=True),
    # Assumption: patient id, provider id, category and the patient's signature, ~350 B; 40 us.
    TxType("consent_grant", 350, 40e-6, "patient grants a provider access to a record category (350 B)"),
    TxType("consent_revoke", 350, 40e-6, "patient revokes a provider's access to a record category (350 B)"),
    # Assumption: a pointer request ~250 B; the check is one or two reads: 30 us.
    TxType("record_access", 250, 30e-6, "provider asks its peer for record pointers; allowed only under committed consent",
           read_only=True),
    # Assumption: ~300 B audit entry; one write: 30 us.
    TxType("access_audit", 300, 30e-6, "the enforcing peer writes an access decision to the audit trail (300 B)",
           generated=True),
    # Assumption: pointer URI, SHA-256 and metadata ~400 B; four writes (MedRec registry, relationship, summary): 60 us.
    TxType("record_register", 400, 60e-6, "hospital anchors a record pointer and its SHA-256; data stays off chain (400 B)"),
    # Assumption: a request ~100 B; the off-chain fetch and SHA-256 of the record are added per record size.
    TxType("record_verify", 100, 30e-6, "verifier re-hashes an off-chain record and compares with its anchor (read-only)",
           read_only=True),
    # Assumption: one EPCIS commissioning/shipping event in compact JSON, ~0.8 KB; 50 us.
    TxType("drug_commission", 800, 50e-6, "manufacturer commissions a serialized drug package (0.8 KB EPCIS event)",
           senders=("manufacturer",)),
    TxType("drug_transfer", 800, 50e-6, "holder hands a package to the next stage: distributor, then pharmacy (0.8 KB)",
           senders=("manufacturer", "distributor")),
    TxType("drug_verify", 200, 30e-6, "pharmacy verifies a package's chain of custody; detects counterfeits (read-only)",
           senders=("pharmacy",), read_only=True),
    # Assumption: trial id, sequence, SHA-256 and a site signature, ~300 B; 30 us.
    TxType("trial_anchor", 300, 30e-6, "trial site anchors the SHA-256 of a batch of trial data (300 B)"),
)


def tx_type_names() -> list[str]:
    """Known transaction type names, sorted."""
    return sorted(TX_TYPES)
