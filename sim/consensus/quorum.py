"""Quorum arithmetic for Byzantine fault-tolerant protocols.

With n replicas of which at most f are faulty, a quorum of q replicas must

- intersect any other quorum in at least f + 1 replicas (so in an honest one):
  2q - n >= f + 1, i.e. q >= (n + f + 1) / 2;
- be reachable while f replicas are silent: q <= n - f.

Both hold exactly when n >= 3f + 1 (Bracha & Toueg 1985; Castro & Liskov, OSDI 1999,
section 3). For n = 3f + 1 the smallest such quorum is the familiar 2f + 1.
"""

from __future__ import annotations

__all__ = ["bft_quorum", "check_bft", "f_setting_problems", "max_faulty", "resolve_f"]


def max_faulty(n: int) -> int:
    """Most Byzantine replicas ``n`` replicas tolerate: (n - 1) // 3 (0 for n < 4)."""
    return max(0, (n - 1) // 3)


def bft_quorum(n: int, f: int) -> int:
    """Smallest quorum of ``n`` replicas whose pairwise intersections hold f + 1 replicas.

    Returns ceil((n + f + 1) / 2): 2f + 1 when n = 3f + 1, a majority when f = 0.
    """
    return (n + f + 2) // 2


def check_bft(n: int, f: int) -> list[str]:
    """Problems with tolerating ``f`` faults among ``n`` replicas (empty when fine)."""
    if n < 1:
        return [f"n = {n} replicas: need at least 1"]
    if f < 0:
        return [f"f = {f} faults: must be >= 0"]
    if n < 3 * f + 1:
        return [f"f = {f} needs n >= {3 * f + 1} nodes (n >= 3f + 1), got n = {n}; the most n = {n} tolerates is f = {max_faulty(n)}"]
    return []


def resolve_f(f: int | None, n: int) -> int:
    """The configured f, or the most ``n`` replicas tolerate when it is None."""
    return max_faulty(n) if f is None else f


def f_setting_problems(f: int | None, n: int) -> list[str]:
    """Problems with a configured ``f`` (None: derived, always fine) for ``n`` replicas."""
    if f is not None and n < 3 * f + 1:
        return [f"f = {f} is impossible for n = {n} nodes: BFT needs n >= 3f + 1 (at most f = {max_faulty(n)})"]
    return []
