"""Population and roles: deterministic genesis, role layout, group plans."""

from __future__ import annotations

from sim.config import WorkloadConfig
from sim.contracts.claims import CLAIM_CATEGORIES
from sim.workload.population import Population, Roles


def population(n: int = 16, seed: int = 1, **keys: object) -> Population:
    wl = WorkloadConfig(**keys)  # type: ignore[arg-type]
    return Population(wl, Roles.build(wl, n), seed)


def test_default_roles_for_sixteen_nodes() -> None:
    roles = population().roles
    assert roles.insurers == (14, 15)
    assert roles.providers == tuple(range(14))
    assert (roles.manufacturers, roles.distributors, roles.pharmacies) == ((0, 1), (2, 3), (4, 5, 6, 7))
    assert roles.of(15) == frozenset({"insurer"})
    assert roles.of(4) == frozenset({"provider", "pharmacy"})


def test_explicit_roles_and_a_single_node() -> None:
    roles = population(n=6, insurers=[0], pharmacies=[4, 5]).roles
    assert (roles.insurers, roles.providers, roles.pharmacies) == ((0,), (1, 2, 3, 4, 5), (4, 5))
    solo = population(n=1).roles
    assert solo.insurers == solo.providers == (0,)


def test_genesis_is_a_pure_function_of_seed_and_id() -> None:
    a, b, c = population(seed=1), population(seed=1), population(seed=2)
    ids = [5, 77, 12345, 99_999]
    first = [a.genesis(("member", i)) for i in ids]
    assert [b.genesis(("member", i)) for i in reversed(ids)] == first[::-1]  # order of reads is irrelevant
    members_a = [a.member(i).active for i in range(2000)]
    members_c = [c.member(i).active for i in range(2000)]
    assert members_a != members_c  # another seed, another population
    assert abs(sum(members_a) / 2000 - 0.97) < 0.015
    assert a.genesis(("member", 100_000)) is None and a.genesis(("claim", 1)) is None


def test_policies_and_exclusions() -> None:
    pop = population(excluded_category_fraction=0.25)
    excluded = [len(pop.policy(p).excluded) for p in range(4000)]
    # each category excluded with probability 0.25 (resolved to 1/1024)
    assert abs(sum(excluded) / (4000 * len(CLAIM_CATEGORIES)) - 0.25) < 0.02
    assert pop.policy(3).insurer in pop.roles.insurers
    assert pop.genesis(("rules", 15)).max_claims_per_patient_day == 4
    assert pop.genesis(("rules", 3)) is None  # not an insurer


def test_group_plans_exist_only_with_a_hotspot() -> None:
    plain = population(patients=10_000, policies=4_000)
    assert plain.group_patients == 0 and plain.policy_of(0) == 0 and plain.policy_of(4000) == 0
    hot = population(patients=10_000, policies=4_000, hotspot_fraction=0.5, hotspot_policies=2, group_policy_members=100)
    assert hot.group_patients == 200
    assert [hot.policy_of(p) for p in (0, 99, 100, 199, 200)] == [0, 0, 1, 1, 2]
    assert hot.policy(1).annual_limit_usd == 100 * 100_000.0 and hot.policy(1).excluded == frozenset()


def test_patients_at_home() -> None:
    pop = population()
    for k in range(50):
        assert pop.home(pop.patient_at_home(3, k)) == 3
