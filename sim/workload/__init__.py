"""Workloads: transaction types, population and roles, arrival processes, clients, generator."""

from sim.workload.arrivals import (
    diurnal_arrival_times,
    mmpp_arrival_times,
    poisson_arrival_times,
    trace_arrival_times,
)
from sim.workload.client import (
    ClosedLoopClient,
    OpenLoopClient,
    TraceClient,
    TypePicker,
)
from sim.workload.generator import CallGenerator, Request
from sim.workload.population import Population, Roles
from sim.workload.settings import WorkloadKeys, load_trace
from sim.workload.transaction import Transaction
from sim.workload.types import TX_TYPES, TxType, tx_type_names

__all__ = [
    "TX_TYPES",
    "CallGenerator",
    "ClosedLoopClient",
    "OpenLoopClient",
    "Population",
    "Request",
    "Roles",
    "TraceClient",
    "Transaction",
    "TxType",
    "TypePicker",
    "WorkloadKeys",
    "diurnal_arrival_times",
    "load_trace",
    "mmpp_arrival_times",
    "poisson_arrival_times",
    "trace_arrival_times",
    "tx_type_names",
]
