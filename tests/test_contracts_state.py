"""The versioned world state: versions, reads at a height, forks, read-write sets."""

from __future__ import annotations

import pytest

from sim.contracts.state import (
    GENESIS_VERSION,
    RWSet,
    TxContext,
    TxMeta,
    VersionedStore,
)

META = TxMeta(tx_id=1, sender=0, time_s=0.0)


def test_genesis_values_have_version_zero_and_absent_keys_none() -> None:
    store = VersionedStore({("a",): 5}.get)
    assert store.get(("a",)) == (5, GENESIS_VERSION)
    assert store.get(("b",)) == (None, None)
    assert store.version(("b",)) is None


def test_genesis_kinds_shortcut_skips_other_keys() -> None:
    asked: list[object] = []

    def genesis(key: object) -> int:
        asked.append(key)
        return 1

    store = VersionedStore(genesis, frozenset({"member"}))
    assert store.value(("member", 1)) == 1
    assert store.value(("claim", 1)) is None
    assert asked == [("member", 1)]


def test_reads_at_a_height_see_the_state_of_that_height() -> None:
    store = VersionedStore({("k",): "g"}.get)
    store.put(("k",), "v1", (1, 1))
    store.put(("k",), "v3", (3, 2))
    store.put(("k",), None, (5, 1))  # deleted at height 5
    assert store.get(("k",), 0) == ("g", GENESIS_VERSION)
    assert store.get(("k",), 2) == ("v1", (1, 1))
    assert store.get(("k",), 4) == ("v3", (3, 2))
    assert store.get(("k",), 5) == (None, (5, 1))
    assert store.version(("k",), 5) is None
    assert store.get(("k",)) == (None, (5, 1))


def test_versions_must_increase() -> None:
    store = VersionedStore()
    store.put(("k",), 1, (2, 1))
    with pytest.raises(ValueError, match="not newer"):
        store.put(("k",), 2, (2, 1))


def test_fork_keeps_history_up_to_its_height() -> None:
    store = VersionedStore()
    store.put(("k",), "a", (1, 1))
    store.end_block(b"1")
    store.put(("k",), "b", (2, 1))
    store.end_block(b"2")
    copy = store.fork(1)
    assert copy.height == 1 and copy.block_hashes == [b"1"]
    assert copy.value(("k",)) == "a"
    copy.put(("k",), "c", (2, 1))  # a different block 2 on the fork
    assert store.value(("k",)) == "b"
    assert copy.value(("k",)) == "c"


def test_context_records_read_versions_and_buffers_writes() -> None:
    store = VersionedStore({("g",): 1}.get)
    store.put(("x",), 10, (4, 2))
    ctx = TxContext(store, META)
    assert ctx.get(("g",)) == 1
    assert ctx.get(("x",)) == 10
    assert ctx.get(("missing",)) is None
    ctx.put(("x",), 11)
    assert ctx.get(("x",)) == 11  # read your own write
    ctx.put(("new",), "n")
    assert store.value(("x",)) == 10  # nothing applied yet
    assert ctx.rwset() == RWSet(
        reads=((("g",), GENESIS_VERSION), (("x",), (4, 2)), (("missing",), None)),
        writes=((("x",), 11), (("new",), "n")),
    )


def test_context_at_a_height_reads_old_versions() -> None:
    store = VersionedStore()
    store.put(("x",), "old", (1, 1))
    store.put(("x",), "new", (3, 1))
    ctx = TxContext(store, META, at_height=2)
    assert ctx.get(("x",)) == "old"
    assert ctx.rwset().reads == ((("x",), (1, 1)),)
