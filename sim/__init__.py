"""hcsim: a discrete-event performance lab for blockchains shared by hospitals.

Quick use from a notebook::

    import sim
    result = sim.run("experiments/quickstart.toml", seed=1)
    result.summary["throughput_tps"], result.transactions.head()
"""

from sim import plots
from sim.config import Scenario, load_scenario
from sim.consensus.base import (
    Protocol,
    ProtocolParams,
    get_protocol,
    protocol_names,
    register_protocol,
)
from sim.errors import HcsimError, ScenarioError
from sim.experiment.result import RunResult
from sim.experiment.runner import run
from sim.experiment.simulation import Simulation
from sim.experiment.store import read_run, write_run
from sim.experiment.sweep import run_sweep

__version__ = "0.1.0"

__all__ = [
    "HcsimError",
    "Protocol",
    "ProtocolParams",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "__version__",
    "get_protocol",
    "load_scenario",
    "plots",
    "protocol_names",
    "read_run",
    "register_protocol",
    "run",
    "run_sweep",
    "write_run",
]
