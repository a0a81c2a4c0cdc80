"""Who is in the network: organisations' roles, patients, policies, trials.

The population is also the genesis world state: members, policies, payer rules,
organisations and trial sites are pure functions of their id and the run's seed
(a SplitMix64 hash, not a random stream), so they are materialized only when a
contract first reads them and never depend on the order of reads.

Layout (all from ``[workload]``):
- insurers take the highest node ids, manufacturers the lowest, then distributors,
  then pharmacies; providers (hospitals) are every node that is not an insurer
  (or every node, in a one-node network). Roles may overlap on small networks.
- with ``hotspot_fraction > 0``, the first ``hotspot_policies`` policies are employer
  group plans of ``group_policy_members`` members each (patients 0 .. hotspot_policies
  x members - 1); every other patient is on one of the remaining household policies.
- a patient's home node (where their app submits consents) is a provider chosen by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.contracts.base import Org
from sim.contracts.claims import CLAIM_CATEGORIES, Member, PayerRules, Policy
from sim.rng import derive_seed

if TYPE_CHECKING:
    from sim.workload.settings import WorkloadKeys

__all__ = ["GENESIS_KINDS", "Population", "Roles", "unit_hash"]

#: key kinds that have genesis values (see Population.genesis)
GENESIS_KINDS = frozenset({"member", "policy", "rules", "org", "trial_site"})

_MASK = (1 << 64) - 1


def _mix64(x: int) -> int:
    """SplitMix64 finalizer: a fast, well-mixed 64-bit hash of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def unit_hash(salt: int, *parts: int) -> float:
    """A number in [0, 1) that depends only on ``salt`` and the integer ``parts``."""
    h = salt
    for part in parts:
        h = _mix64(h ^ (part & _MASK))
    return (h >> 11) / float(1 << 53)


def _pick(spec: int | list[int], count_default: int, pool: list[int]) -> tuple[int, ...]:
    if isinstance(spec, list):
        return tuple(sorted(set(spec)))
    count = spec or count_default
    return tuple(pool[:count]) if count <= len(pool) else tuple(pool)


@dataclass(frozen=True)
class Roles:
    """Node ids playing each role."""

    providers: tuple[int, ...]
    insurers: tuple[int, ...]
    manufacturers: tuple[int, ...]
    distributors: tuple[int, ...]
    pharmacies: tuple[int, ...]

    @classmethod
    def build(cls, wl: WorkloadKeys, n: int) -> Roles:
        """Assign roles for ``n`` nodes from the ``[workload]`` keys."""
        ids = list(range(n))
        eighth = max(1, n // 8)
        insurers = _pick(wl.insurers, eighth, ids[::-1])
        manufacturers = _pick(wl.manufacturers, eighth, ids)
        taken = len(manufacturers) if not isinstance(wl.manufacturers, list) else 0
        distributors = _pick(wl.distributors, eighth, ids[taken:] or ids)
        taken += len(distributors) if not isinstance(wl.distributors, list) else 0
        pharmacies = _pick(wl.pharmacies, max(1, n // 4), ids[taken:] or ids)
        providers = tuple(i for i in ids if i not in insurers) or tuple(ids)
        return cls(providers, tuple(sorted(insurers)), manufacturers, distributors, pharmacies)

    def of(self, node_id: int) -> frozenset[str]:
        """Roles of one node."""
        return frozenset(
            role
            for role, members in (
                ("provider", self.providers),
                ("insurer", self.insurers),
                ("manufacturer", self.manufacturers),
                ("distributor", self.distributors),
                ("pharmacy", self.pharmacies),
            )
            if node_id in members
        )

    def nodes_with(self, role: str) -> tuple[int, ...]:
        """Node ids playing ``role`` (one of sim.workload.types.ROLES)."""
        return {
            "provider": self.providers,
            "insurer": self.insurers,
            "manufacturer": self.manufacturers,
            "distributor": self.distributors,
            "pharmacy": self.pharmacies,
        }[role]


class Population:
    """Patients, policies, organisations and trials of one run; also the genesis state.

    Args:
        wl: the ``[workload]`` settings.
        roles: role assignment.
        seed: the run's root seed (salts every attribute hash).
    """

    def __init__(self, wl: WorkloadKeys, roles: Roles, seed: int) -> None:
        self.wl = wl
        self.roles = roles
        self.patients = wl.patients
        self.policies = wl.policies
        # group plans exist only when claims may concentrate on them
        self.group_policies = wl.hotspot_policies if wl.hotspot_fraction > 0 else 0
        self.group_patients = self.group_policies * wl.group_policy_members
        self._salt = derive_seed(seed, "population")
        self.rules = PayerRules(
            fraud_amount_usd=wl.fraud_amount_usd,
            max_claims_per_patient_day=wl.max_claims_per_patient_day,
            auth_categories=frozenset(wl.prior_auth_categories),
        )

    # ------------------------------------------------------------ patients

    def policy_of(self, patient: int) -> int:
        """The policy covering ``patient``."""
        if patient < self.group_patients:
            return patient // self.wl.group_policy_members
        households = self.policies - self.group_policies
        return self.group_policies + (patient - self.group_patients) % households

    def insurer_of_policy(self, policy: int) -> int:
        return self.roles.insurers[policy % len(self.roles.insurers)]

    def insurer_of(self, patient: int) -> int:
        """Node id of the insurer of ``patient``'s policy."""
        return self.insurer_of_policy(self.policy_of(patient))

    def home(self, patient: int) -> int:
        """The provider node where ``patient``'s app submits consents."""
        return self.roles.providers[patient % len(self.roles.providers)]

    def patient_at_home(self, node_id: int, k: int) -> int:
        """The ``k``-th patient (modulo) whose home is ``node_id`` (a provider)."""
        providers = self.roles.providers
        index = providers.index(node_id)
        per_home = max(1, (self.patients - index + len(providers) - 1) // len(providers))
        return index + (k % per_home) * len(providers)

    def group_patient(self, k: int) -> int:
        """The ``k``-th (modulo) member of the group policies."""
        return k % self.group_patients

    # ------------------------------------------------------------- genesis

    def member(self, patient: int) -> Member | None:
        if not 0 <= patient < self.patients:
            return None
        active = unit_hash(self._salt, 1, patient) < self.wl.active_member_fraction
        return Member(self.policy_of(patient), active)

    def policy(self, policy: int) -> Policy | None:
        if not 0 <= policy < self.policies:
            return None
        # one 64-bit hash, ten bits per category: exclusion probability resolved to 1/1024
        h = _mix64(_mix64(self._salt ^ 2) ^ policy)
        threshold = self.wl.excluded_category_fraction * 1024
        excluded = frozenset(c for i, c in enumerate(CLAIM_CATEGORIES) if ((h >> (10 * i)) & 1023) < threshold)
        group = policy < self.group_policies
        limit = self.wl.annual_limit_usd * (self.wl.group_policy_members if group else 1)
        # group plans cover every category: an employer plan is the hotspot of interest, not its exclusions
        return Policy(self.insurer_of_policy(policy), limit, frozenset() if group else excluded)

    def trial_site(self, trial_id: int) -> int | None:
        if not 0 <= trial_id < self.wl.trials:
            return None
        return self.roles.providers[trial_id % len(self.roles.providers)]

    def genesis(self, key: Any) -> Any:
        """Genesis value of a world-state key (None if the key starts absent)."""
        kind = key[0]
        if kind == "member":
            return self.member(key[1])
        if kind == "policy":
            return self.policy(key[1])
        if kind == "rules":
            return self.rules if key[1] in self.roles.insurers else None
        if kind == "org":
            roles = self.roles.of(key[1])
            return Org(key[1], roles) if roles else None
        if kind == "trial_site":
            return self.trial_site(key[1])
        return None
