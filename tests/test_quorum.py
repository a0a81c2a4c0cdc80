"""Quorum arithmetic: intersection and availability for every n up to 300."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.consensus.quorum import bft_quorum, check_bft, max_faulty


@st.composite
def n_and_f(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, 300))
    f = draw(st.integers(0, max_faulty(n)))
    return n, f


@given(n_and_f(), st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_two_quorums_share_an_honest_replica(nf: tuple[int, int], rnd) -> None:  # type: ignore[no-untyped-def]
    n, f = nf
    q = bft_quorum(n, f)
    # the worst case: two quorums overlapping as little as n allows
    assert 2 * q - n >= f + 1
    # and two arbitrary quorums
    a = set(rnd.sample(range(n), q))
    b = set(rnd.sample(range(n), q))
    assert len(a & b) >= f + 1
    # so they share a replica outside any set of f faulty ones
    faulty = set(rnd.sample(sorted(a & b), f))
    assert (a & b) - faulty


@given(n_and_f(), st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_quorum_reachable_with_f_silent(nf: tuple[int, int], rnd) -> None:  # type: ignore[no-untyped-def]
    n, f = nf
    silent = set(rnd.sample(range(n), f))
    assert n - len(silent) >= bft_quorum(n, f)


def test_quorum_is_2f_plus_1_for_3f_plus_1() -> None:
    for f in range(50):
        assert bft_quorum(3 * f + 1, f) == 2 * f + 1
        assert max_faulty(3 * f + 1) == f


def test_quorum_is_smallest_intersecting_size() -> None:
    for n in range(1, 60):
        for f in range(max_faulty(n) + 1):
            q = bft_quorum(n, f)
            assert 2 * (q - 1) - n < f + 1  # one fewer would not intersect in f + 1


def test_max_faulty() -> None:
    assert [max_faulty(n) for n in range(1, 11)] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]


def test_check_bft_names_n_and_f() -> None:
    assert check_bft(4, 1) == []
    assert check_bft(2, 0) == []
    (problem,) = check_bft(4, 2)
    assert "f = 2" in problem and "n >= 7" in problem and "n = 4" in problem
    assert check_bft(4, -1) and check_bft(0, 0)
