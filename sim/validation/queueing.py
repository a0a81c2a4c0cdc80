"""`solo` as a single-server queue: M/M/1 and M/D/1 mean time in system."""

from __future__ import annotations

from typing import Any

import sim
from sim.config import Scenario, parse_scenario
from sim.validation.cases import CaseResult, case
from sim.workload.types import TX_TYPES

__all__ = ["queue_scenario"]

SERVICE_S = 0.01  # mean execution time of one transaction: mu = 100/s
_TOLERANCE_WHY = (
    "4 half-widths of the run's own 95% batch-means interval of the mean latency "
    "(consecutive latencies share the queue, so plain standard errors would be too narrow)"
)


def queue_scenario(rate_tps: float, cpu_time: str, duration_s: float, seed: int = 3, **extra: Any) -> Scenario:
    """One orderer that is a FIFO single server: one transaction per block, no signing,
    execution ``SERVICE_S`` (fixed or exponential), all clients at the orderer."""
    raw: dict[str, Any] = {
        "name": f"queue-{cpu_time}-{rate_tps:g}",
        "duration_s": duration_s,
        "warmup_s": duration_s / 20,
        "seed": seed,
        "network": {"nodes": 1, "topology": "full_mesh"},
        "protocol": {"name": "solo", "max_block_tx": 1, "batch_timeout_s": 0.0},
        "node": {
            "sign_s": 0.0,
            "verify_s": 0.0,
            "hash_rate_bps": 1e30,
            "cpu_time": cpu_time,
            "execute_scale": SERVICE_S / TX_TYPES["claim"].execute_s,
        },
        "workload": {"rate_tps": rate_tps},
    }
    raw.update(extra)
    return parse_scenario(raw, "<validation>")


def _measure(rho: float, cpu_time: str, quick: bool) -> tuple[float, float]:
    summary = sim.run(queue_scenario(rho / SERVICE_S, cpu_time, 400.0 if quick else 2000.0)).summary
    return summary["latency_mean_s"], summary["latency_mean_ci95_s"]


def _register(rho: float) -> None:
    mu = 1 / SERVICE_S

    @case(
        name=f"mm1_time_in_system_rho{rho}",
        group="queueing theory",
        configured=f"solo, 1 node, 1 tx/block, exponential execution mean {SERVICE_S * 1e3:g} ms, Poisson arrivals, rho = {rho}",
        reference="M/M/1 mean time in system 1/(mu - lambda)",
        source="Kleinrock, Queueing Systems Vol. 1 (1975); shared/reference/README.md",
        tolerance_why=_TOLERANCE_WHY,
    )
    def mm1(quick: bool) -> CaseResult:
        mean, ci = _measure(rho, "exponential", quick)
        return CaseResult(1 / (mu - rho * mu), mean, 4 * ci, "s")

    @case(
        name=f"md1_time_in_system_rho{rho}",
        group="queueing theory",
        configured=f"solo, 1 node, 1 tx/block, fixed execution {SERVICE_S * 1e3:g} ms, Poisson arrivals, rho = {rho}",
        reference="M/D/1 mean time in system 1/mu + rho/(2 mu (1 - rho))",
        source="Pollaczek-Khinchine formula; shared/reference/README.md",
        tolerance_why=_TOLERANCE_WHY,
    )
    def md1(quick: bool) -> CaseResult:
        mean, ci = _measure(rho, "fixed", quick)
        return CaseResult(1 / mu + rho / (2 * mu * (1 - rho)), mean, 4 * ci, "s")


for _rho in (0.5, 0.8):
    _register(_rho)
