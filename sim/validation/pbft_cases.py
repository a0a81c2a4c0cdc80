"""PBFT normal case against Castro & Liskov: exact message counts and the 5d client latency."""

from __future__ import annotations

from typing import Any

from sim.config import parse_scenario
from sim.experiment.result import RunResult, collect
from sim.experiment.simulation import Simulation
from sim.validation.cases import CaseResult, case

D_S = 0.01  # fixed one-way delay, seconds
_SOURCE = "Castro & Liskov, Practical Byzantine Fault Tolerance (OSDI 1999); shared/reference/README.md"


def one_request(n: int, origin: int, mode: str) -> RunResult:
    """One claim submitted at ``origin`` of an n-replica PBFT network, fixed delays, free CPU."""
    raw: dict[str, Any] = {
        "name": "validate-pbft",
        "duration_s": 2.0,
        "seed": 5,
        "network": {"nodes": n, "topology": "full_mesh", "latency_s": D_S, "bandwidth_bps": 1e30, "mode": mode},
        "node": {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30, "execute_scale": 0.0},
        "protocol": {"name": "pbft", "batch_timeout_s": 0.0, "max_block_tx": 1},
        "workload": {"rate_tps": 0.0},
    }
    world = Simulation(parse_scenario(raw, "<validation>"))
    world.run_until(0.5)
    world.submit_now(origin)
    world.run_until(2.0)
    return collect(world, 0.0)


def _counts(result: RunResult) -> dict[str, int]:
    return {str(k): int(v) for k, v in result.messages.groupby("msg_type")["sent_count"].sum().items()}


def _register(f: int, mode: str) -> None:
    n = 3 * f + 1
    where = f"pbft, n = {n} (f = {f}), {mode} mode, one request at a backup, fixed delays, no CPU cost"
    exact = "exact: a deterministic run, so the count is an integer identity"

    for kind, expected in (("PrePrepare", n - 1), ("Prepare", (n - 1) ** 2), ("Commit", n * (n - 1))):

        @case(
            name=f"pbft_{kind.lower()}_messages_f{f}_{mode}",
            group="pbft messages",
            configured=where,
            reference={"PrePrepare": "pre-prepare n - 1", "Prepare": "prepare (n - 1)^2", "Commit": "commit n (n - 1)"}[kind],
            source=_SOURCE,
            tolerance_why=exact,
        )
        def count_case(quick: bool, kind: str = kind, expected: int = expected) -> CaseResult:
            return CaseResult(float(expected), float(_counts(one_request(n, n - 1, mode)).get(kind, 0)), 0.0, "messages")

    @case(
        name=f"pbft_client_latency_5d_f{f}_{mode}",
        group="pbft latency",
        configured=where + f", d = {D_S * 1e3:g} ms",
        reference="request, pre-prepare, prepare, commit, reply: 5 d to client acceptance",
        source=_SOURCE,
        tolerance_why="exact up to float rounding (1e-12 s)",
    )
    def latency_case(quick: bool) -> CaseResult:
        tx = one_request(n, 1, mode).transactions
        return CaseResult(5 * D_S, float(tx.loc[0, "commit_s"] - tx.loc[0, "submit_s"]), 1e-12, "s")


for _f in (1, 2):
    for _mode in ("message", "phase"):
        _register(_f, _mode)
