"""Consensus protocols. Importing this package registers every built-in protocol.

Each protocol is one module in this package; every module here is imported at
start-up, so a new protocol file needs no edit anywhere else.
"""

import importlib
import pkgutil

from sim.consensus.base import (
    Message,
    Protocol,
    ProtocolParams,
    get_protocol,
    protocol_names,
    register_protocol,
)

_INFRASTRUCTURE = {"base", "batching", "chain", "common", "quorum"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Message", "Protocol", "ProtocolParams", "get_protocol", "protocol_names", "register_protocol"]
