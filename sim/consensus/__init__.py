"""Consensus protocols. Importing this package registers every built-in protocol."""

from sim.consensus import raft, solo  # noqa: F401  (registration side effect)
from sim.consensus.base import Message, Protocol, ProtocolParams, get_protocol, protocol_names, register_protocol

__all__ = ["Message", "Protocol", "ProtocolParams", "get_protocol", "protocol_names", "register_protocol"]
