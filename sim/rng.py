"""Named random streams derived from one root seed.

Every component draws from its own stream (``"workload"``, ``"links"``,
``"node/3/protocol"`` ...), so changing one component (say, adding a fault)
never shifts the draws of another. Stream keys are derived from the names with
SHA-256, never ``hash()``, so they are identical in every process and on every
machine.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["RandomStreams", "derive_seed"]


def _name_key(name: str) -> tuple[int, ...]:
    """Stable spawn key for a stream name: four 32-bit words of its SHA-256."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def derive_seed(root_seed: int, name: str) -> int:
    """A 63-bit seed derived from ``root_seed`` and ``name`` (used for replications)."""
    seq = np.random.SeedSequence(entropy=root_seed, spawn_key=_name_key(name))
    return int(seq.generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)


class RandomStreams:
    """Factory of independent, named ``numpy.random.Generator`` streams.

    Args:
        root_seed: the run's seed; non-negative integer.
    """

    def __init__(self, root_seed: int) -> None:
        if root_seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {root_seed}")
        self.root_seed = root_seed
        self._streams: dict[str, np.random.Generator] = {}

    def stream(self, name: str) -> np.random.Generator:
        """The generator for ``name``; the same object on every call with that name."""
        gen = self._streams.get(name)
        if gen is None:
            seq = np.random.SeedSequence(entropy=self.root_seed, spawn_key=_name_key(name))
            gen = np.random.Generator(np.random.PCG64(seq))
            self._streams[name] = gen
        return gen

    def names(self) -> list[str]:
        """Names of the streams created so far (sorted)."""
        return sorted(self._streams)
