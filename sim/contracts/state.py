"""The versioned key-value world state that contracts read and write.

A key's version is ``(block height, index of the transaction in the block)`` of
the write that produced its value, as in Hyperledger Fabric's state database;
values from the genesis state have version ``(0, 0)`` and absent keys have no
version (``None``). Contracts run inside a :class:`TxContext` that records the
version of every key they read and buffers their writes: that read-write set is
what execute-order-validate endorses and later checks (MVCC).

Replicas. Every node applies the same blocks in the same order and execution is
deterministic, so every node's world state is a function of its applied height.
We therefore keep one :class:`VersionedStore` per *distinct chain* (normally
one) holding every version of every key, and a node's world state is that store
read at the node's applied height. This is exactly equivalent to one full copy
per node while the chains agree, costs one execution per block instead of one
per node, and still lets each node answer queries from *its own* (possibly
stale) committed state. If a node ever applies a different block at some height
(a safety violation), the store is forked and that node continues on its own
copy (see :class:`sim.contracts.executor.Executor`).

Simplification: genesis values are computed on demand by a pure function of
the key (the population of patients, policies and organisations), so a network
of a million patients costs nothing until a patient is touched.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

__all__ = ["GENESIS_VERSION", "Key", "RWSet", "TxContext", "TxMeta", "Version", "VersionedStore"]

Key = Hashable
Version = tuple[int, int]
#: version of every value that comes from the genesis state
GENESIS_VERSION: Version = (0, 0)
_NO_ENTRY: tuple[Any, Version | None] = (None, None)



class VersionedStore:
    """Every version of every key of one chain, readable at any applied height.

    Args:
        genesis: ``genesis(key)`` is the genesis value of ``key`` or None if absent.
        genesis_kinds: if given, only keys whose first item is one of these can have a
            genesis value (a shortcut: other keys are not looked up).
    """

    def __init__(self, genesis: Callable[[Key], Any] | None = None, genesis_kinds: frozenset[str] | None = None) -> None:
        self._genesis = genesis or (lambda _key: None)
        # keys are tuples whose first item is their kind; only these kinds have genesis values
        self._genesis_kinds = genesis_kinds
        self._genesis_cache: dict[Key, tuple[Any, Version | None]] = {}
        # key -> increasing versions and their values (None = deleted)
        self._versions: dict[Key, list[Version]] = {}
        self._values: dict[Key, list[Any]] = {}
        self.block_hashes: list[bytes] = []  # hash of the block executed at each height (index h-1)

    @property
    def height(self) -> int:
        """Height of the last block executed on this store."""
        return len(self.block_hashes)

    def _genesis_entry(self, key: Key) -> tuple[Any, Version | None]:
        if self._genesis_kinds is not None and key[0] not in self._genesis_kinds:  # type: ignore[index]
            return _NO_ENTRY
        entry = self._genesis_cache.get(key)
        if entry is None:
            value = self._genesis(key)
            entry = (value, GENESIS_VERSION) if value is not None else (None, None)
            self._genesis_cache[key] = entry
        return entry

    def get(self, key: Key, at_height: int | None = None) -> tuple[Any, Version | None]:
        """``(value, version)`` of ``key`` as of ``at_height`` (default: latest).

        Returns ``(None, None)`` for a key that is absent at that height.
        """
        versions = self._versions.get(key)
        if versions is None:
            kinds = self._genesis_kinds
            if kinds is not None and key[0] not in kinds:  # type: ignore[index]
                return _NO_ENTRY
            return self._genesis_entry(key)
        if at_height is None or versions[-1][0] <= at_height:
            i = len(versions) - 1
        else:
            i = bisect_right(versions, (at_height, 1 << 62)) - 1
            if i < 0:
                return self._genesis_entry(key)
        value = self._values[key][i]
        return (value, versions[i]) if value is not None else (None, versions[i])

    def value(self, key: Key, at_height: int | None = None) -> Any:
        """The value of ``key`` as of ``at_height`` (None if absent)."""
        return self.get(key, at_height)[0]

    def version(self, key: Key, at_height: int | None = None) -> Version | None:
        """The version of ``key`` as of ``at_height`` (None if absent and never deleted)."""
        value, version = self.get(key, at_height)
        return version if value is not None else None

    def put(self, key: Key, value: Any, version: Version) -> None:
        """Write ``value`` (None deletes) at ``version``, which must be newer than the last."""
        versions = self._versions.get(key)
        if versions is None:
            self._versions[key] = [version]
            self._values[key] = [value]
            return
        if version <= versions[-1]:
            raise ValueError(f"version {version} of {key!r} is not newer than {versions[-1]}")
        versions.append(version)
        self._values[key].append(value)

    def apply(self, writes: tuple[tuple[Key, Any], ...], version: Version) -> None:
        """Apply a write set at ``version``."""
        for key, value in writes:
            self.put(key, value, version)

    def end_block(self, block_hash: bytes) -> None:
        """Mark the block of the next height as executed on this store."""
        self.block_hashes.append(block_hash)

    def fork(self, height: int) -> VersionedStore:
        """A copy holding only what was written up to ``height`` (for a diverging chain)."""
        copy = VersionedStore(self._genesis, self._genesis_kinds)
        copy._genesis_cache = self._genesis_cache  # genesis is the same for every chain
        for key, versions in self._versions.items():
            n = bisect_right(versions, (height, 1 << 62))
            if n:
                copy._versions[key] = versions[:n]
                copy._values[key] = self._values[key][:n]
        copy.block_hashes = self.block_hashes[:height]
        return copy


class RWSet(NamedTuple):
    """What one execution read (with versions) and wrote.

    Attributes:
        reads: ``(key, version)`` pairs; version None for a key read while absent.
        writes: ``(key, value)`` pairs; value None deletes.
    """

    reads: tuple[tuple[Key, Version | None], ...]
    writes: tuple[tuple[Key, Any], ...]


class TxMeta(NamedTuple):
    """Facts a contract may use besides its call: who sent it and when it was ordered.

    Attributes:
        tx_id: transaction id.
        sender: node id of the organisation that signed it.
        time_s: block creation time, seconds (deterministic for every replica).
    """

    tx_id: int
    sender: int
    time_s: float


class TxContext:
    """A contract's view of the world state during one execution.

    Reads come from ``store`` at ``at_height`` (None: latest, i.e. including the
    transactions executed earlier in the same block); each read records the
    key's version. Writes are buffered and returned by :meth:`rwset`; a read of
    a key written earlier in the same execution returns the written value.
    """

    __slots__ = ("_at", "_reads", "_store", "_writes", "meta")

    def __init__(self, store: VersionedStore, meta: TxMeta, at_height: int | None = None) -> None:
        self._store = store
        self._at = at_height
        self._reads: dict[Key, Version | None] = {}
        self._writes: dict[Key, Any] = {}
        self.meta = meta

    def get(self, key: Key) -> Any:
        """The value of ``key`` (None if absent), recording its version."""
        if key in self._writes:
            return self._writes[key]
        value, version = self._store.get(key, self._at)
        if key not in self._reads:
            self._reads[key] = version if value is not None else None
        return value

    def put(self, key: Key, value: Any) -> None:
        """Write ``value`` to ``key`` (None deletes) when the transaction commits."""
        self._writes[key] = value

    def rwset(self) -> RWSet:
        """The read and write sets of this execution."""
        return RWSet(tuple(self._reads.items()), tuple(self._writes.items()))
