"""Workloads: transaction types, arrival processes and clients."""

from sim.workload.arrivals import poisson_arrival_times
from sim.workload.client import OpenLoopClient
from sim.workload.transaction import Transaction
from sim.workload.types import TX_TYPES, TxType, tx_type_names

__all__ = ["OpenLoopClient", "TX_TYPES", "Transaction", "TxType", "poisson_arrival_times", "tx_type_names"]
