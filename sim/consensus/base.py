"""The protocol plug-in interface and the registry of protocols.

A protocol is one file: a ``Params`` model (its scenario keys) and a
``Protocol`` subclass registered with :func:`register_protocol`. It sees the
world only through its :class:`~sim.node.context.NodeContext` (``self.ctx``):
``now``, ``node_id``, ``nodes``, ``peers``, ``send``, ``broadcast``,
``set_timer``, ``cancel_timer``, ``rng``, ``cpu``, ``mempool``,
``deliver_block``. The node does the rest (network, CPU, ledger, metrics).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from sim.ledger import Block
from sim.schema import StrictModel

if TYPE_CHECKING:
    from sim.node.context import NodeContext
    from sim.workload.transaction import Transaction

__all__ = [
    "MESSAGE_HEADER_BYTES",
    "Message",
    "Protocol",
    "ProtocolParams",
    "get_protocol",
    "protocol_names",
    "register_protocol",
]

#: Envelope of every protocol message: sender, type, view/term, a 64-byte
#: signature and framing. An assumption, stated: real stacks add 50-150 B.
MESSAGE_HEADER_BYTES = 128


class Message:
    """Base of all protocol messages (subclasses are frozen slotted dataclasses).

    Subclasses override :meth:`size_bytes` when they carry payload; the type
    name used in the ``messages`` table is the class name.
    """

    __slots__ = ()
    #: signatures a receiver verifies before handling the message
    signatures: ClassVar[int] = 1
    #: True for messages that hand transactions from one node to another
    #: (forwarding); the network then tracks them in flight for conservation.
    carries_txs: ClassVar[bool] = False

    def size_bytes(self) -> int:
        """Wire size in bytes (header only unless overridden)."""
        return MESSAGE_HEADER_BYTES

    def tx_ids(self) -> tuple[int, ...]:
        """Transactions this message hands over (only for ``carries_txs`` types)."""
        return ()

    # Hooks for the fault framework (sim/faults). The defaults find blocks in a
    # message's dataclass fields, so a protocol's messages need no code for honest
    # nodes to validate the blocks they carry or for a Byzantine node to tamper with them.

    def carried_blocks(self) -> tuple[Block, ...]:
        """Blocks this message carries (proposals, log entries, sync batches).

        The default looks at the dataclass fields: a ``Block``, or a tuple or list of
        ``Block`` or of records with a ``block`` attribute (like Raft's log entries).
        Override if a message keeps its blocks elsewhere. (Not named ``blocks``:
        dataclass messages often have a field of that name.)
        """
        return tuple(block for _, _, block in _block_slots(self))

    def map_blocks(self, fn: Callable[[Block], Block]) -> Message:
        """A copy with every carried block replaced by ``fn(block)`` (``self`` if none changes)."""
        changes: dict[str, Any] = {}
        for name, index, block in _block_slots(self):
            new = fn(block)
            if new is block:
                continue
            if index is None:
                changes[name] = new
                continue
            items = list(changes.get(name, getattr(self, name)))
            item = items[index]
            items[index] = new if isinstance(item, Block) else dataclasses.replace(item, block=new)
            changes[name] = type(getattr(self, name))(items)
        return dataclasses.replace(self, **changes) if changes else self  # type: ignore[type-var]

    def equivocal(self) -> Message | None:
        """A conflicting variant of this message, sent by an equivocating node; None if none.

        Messages that carry blocks need nothing here: an equivocating node sends them with
        conflicting sibling blocks. Override for messages that conflict without carrying a
        block, e.g. a vote: return the same vote for another block digest.
        """
        return None


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _block_slots(msg: Message) -> Iterator[tuple[str, int | None, Block]]:
    """(field name, index in the field or None, block) for every block a message carries."""
    cls = type(msg)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else ()
        _FIELD_NAMES[cls] = names
    for name in names:
        value = getattr(msg, name)
        if isinstance(value, Block):
            yield name, None, value
        elif isinstance(value, tuple | list):
            for i, item in enumerate(value):
                block = item if isinstance(item, Block) else getattr(item, "block", None)
                if isinstance(block, Block):
                    yield name, i, block


class ProtocolParams(StrictModel):
    """Scenario keys shared by every protocol (the ``[protocol]`` table).

    A protocol adds its own keys by subclassing this model.
    """

    name: str = Field("raft", description="registered protocol name (hcsim list protocols)")
    max_block_tx: int = Field(500, ge=1, description="most transactions in one block")
    # Fabric's PreferredMaxBytes is 512 KB (fabric-samples configtx.yaml).
    max_block_bytes: int = Field(512 * 1024, ge=1, description="largest block payload, bytes")
    # Fabric's BatchTimeout is 2 s; a lower default keeps quickstart latency readable.
    batch_timeout_s: float = Field(0.1, ge=0, description="longest wait to fill a block, seconds")


class Protocol(ABC):
    """A consensus protocol running on one node.

    Handlers are plain callbacks (not generators): they run at the simulated time
    of the event and schedule what comes next through ``self.ctx``.
    """

    name: ClassVar[str]
    Params: ClassVar[type[ProtocolParams]] = ProtocolParams
    #: False (default): a client learns its transaction is final when its origin node
    #: applies the block. True: the protocol decides, calling ``ctx.confirm_to_client``
    #: (e.g. PBFT, where the client waits for f + 1 matching replies).
    confirms_by_replies: ClassVar[bool] = False
    #: True if the protocol computes its all-to-all phases (or gossip) in phase mode
    #: when ``ctx.phase_mode`` is True; False: it always moves every message as an event.
    supports_phase_mode: ClassVar[bool] = False
    #: True if the protocol itself brings a node that rejoins (after a crash or a
    #: partition) up to date, like Raft's AppendEntries; False: the fault framework
    #: transfers the missing blocks from a peer (sim/faults/sync.py).
    syncs_ledger: ClassVar[bool] = False

    def __init__(self, ctx: NodeContext, params: ProtocolParams) -> None:
        self.ctx = ctx
        self.params = params

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        """Problems with ``params`` for a network of ``n_nodes`` (empty when fine)."""
        return []

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        """How many crashed nodes the protocol keeps committing through (0 if none)."""
        return 0

    @classmethod
    def byzantine_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        """How many Byzantine nodes the protocol stays safe and live with (0 if none)."""
        return 0

    def on_start(self) -> None:
        """Called once at time 0."""

    @abstractmethod
    def on_message(self, src: int, msg: Message) -> None:
        """A message from node ``src`` arrived and its signatures were verified."""

    def on_timer(self, name: str, data: Any) -> None:
        """A timer set with ``ctx.set_timer(delay_s, name, data)`` fired."""

    @abstractmethod
    def on_transaction(self, tx: Transaction) -> None:
        """A transaction was admitted to this node's mempool."""

    def leader(self) -> int | None:
        """The node this one believes leads now (None if unknown or leaderless)."""
        return None

    def pending_tx_ids(self) -> Iterable[int]:
        """Transactions held by protocol state (proposed blocks, logs) but not yet delivered."""
        return ()

    def on_crash(self) -> None:
        """The node crashed: volatile protocol state is lost from here on."""

    def on_recover(self) -> None:
        """The node came back after a crash."""


_REGISTRY: dict[str, type[Protocol]] = {}


def register_protocol(cls: type[Protocol]) -> type[Protocol]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name or not isinstance(name, str):
        raise TypeError(f"{cls.__qualname__} needs a class attribute 'name'")
    existing = _REGISTRY.get(name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"protocol name {name!r} is already registered by {existing.__qualname__}")
    _REGISTRY[name] = cls
    return cls


def get_protocol(name: str) -> type[Protocol]:
    """The protocol class registered as ``name``.

    Raises:
        KeyError: with the known names, if ``name`` is not registered.
    """
    import sim.consensus  # noqa: F401  (registers the built-in protocols)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(protocol_names())}") from None


def protocol_names() -> list[str]:
    """Registered protocol names, sorted."""
    import sim.consensus  # noqa: F401

    return sorted(_REGISTRY)
