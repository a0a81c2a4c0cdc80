"""Benchmark: Bitcoin-like proof of work on large gossip networks in phase mode.

Cases (targets from the project brief):

- ``1k_day``: 1,000 nodes, 24 simulated hours, 10-minute blocks of 1 MB, scale-free
  overlay (8 peers per node on average, as Bitcoin Core's 8 outbound connections),
  phase mode. Target: under 3 s.
- ``10k_100``: 10,000 nodes, 106 block intervals (63,600 simulated seconds: about
  100 final blocks with 6 confirmations), otherwise the same. Target: under 40 s.

Blocks are padded to 1 MB (``protocol.min_block_bytes``) and no client transactions
are submitted: the benchmark measures block gossip (transmission, validation,
fork choice, finality, ledger delivery at every node). Flooding each transaction
to every mempool costs one event per node and transaction in either mode, so a
realistic transaction load at this scale is a different (and much larger) run.

Reported per case: wall seconds to build the world (of which building the
topology), to run it (of which ``peer_delays_s``: the one-way delays between peers
that the first flood needs, see ``sim.network._path_delays``; the all-pairs matrix
is never built) and to collect the result tables, process CPU seconds (less
sensitive than wall time to other processes on a shared machine), events, and the
final height.

Usage::

    PYTHONPATH=. python benchmarks/bench_gossip.py            # both cases
    PYTHONPATH=. python benchmarks/bench_gossip.py --case 1k_day --profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from typing import Any

from sim.config import parse_scenario
from sim.experiment import simulation as simulation_module
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.network._path_delays import PathDelays

BLOCK_INTERVAL_S = 600.0  # Bitcoin's target
BLOCK_BYTES = 1_000_000  # Bitcoin's 1 MB block size limit before SegWit

CASES: dict[str, dict[str, Any]] = {
    "1k_day": {"nodes": 1_000, "duration_s": 24 * 3600.0, "target_s": 3.0},
    "10k_100": {"nodes": 10_000, "duration_s": 106 * BLOCK_INTERVAL_S, "target_s": 40.0},
}


def scenario(nodes: int, duration_s: float) -> Any:
    """The benchmark scenario for ``nodes`` nodes over ``duration_s`` simulated seconds."""
    return parse_scenario(
        {
            "name": f"bench_gossip_{nodes}",
            "duration_s": duration_s,
            "seed": 1,
            "network": {"nodes": nodes, "topology": "scale_free", "degree": 8, "mode": "phase"},
            "protocol": {"name": "pow", "block_interval_s": BLOCK_INTERVAL_S, "min_block_bytes": BLOCK_BYTES},
            "workload": {"rate_tps": 0.0},
        },
        "<bench_gossip>",
    )


def run_case(name: str, profile: bool = False) -> dict[str, Any]:
    """Build, run and collect one case; return its timings."""
    case = CASES[name]
    sc = scenario(case["nodes"], case["duration_s"])
    topology_s = [0.0]
    build_topology = simulation_module.build_topology

    def timed_build_topology(*args: Any) -> Any:  # measures the topology part of the build
        start = time.perf_counter()
        topo = build_topology(*args)
        topology_s[0] = time.perf_counter() - start
        return topo

    peer_delays_s = [0.0]
    edge_values = PathDelays._edge_values

    def timed_edge_values(self: PathDelays) -> Any:  # measures the peer delays (once per topology)
        start = time.perf_counter()
        out = edge_values(self)
        peer_delays_s[0] += time.perf_counter() - start
        return out

    simulation_module.build_topology = timed_build_topology  # type: ignore[assignment]
    PathDelays._edge_values = timed_edge_values  # type: ignore[method-assign]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        world = Simulation(sc)
    finally:
        simulation_module.build_topology = build_topology  # type: ignore[assignment]
    wall1 = time.perf_counter()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    try:
        world.run_until(sc.duration_s)
    finally:
        PathDelays._edge_values = edge_values  # type: ignore[method-assign]
    if profiler:
        profiler.disable()
    wall2 = time.perf_counter()
    result = collect(world, wall2 - wall0)
    wall3, cpu3 = time.perf_counter(), time.process_time()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    consensus = result.consensus
    return {
        "case": name,
        "nodes": case["nodes"],
        "sim_hours": sc.duration_s / 3600.0,
        "final_height": int(result.summary["blocks"]),
        "stale_blocks": int((consensus["kind"] == "stale_block").sum()) if len(consensus) else 0,
        "events": int(world.env.events_scheduled),
        "build_s": round(wall1 - wall0, 3),
        "topology_s": round(topology_s[0], 3),
        "run_s": round(wall2 - wall1, 3),
        "peer_delays_s": round(peer_delays_s[0], 3),
        "collect_s": round(wall3 - wall2, 3),
        "wall_s": round(wall3 - wall0, 3),
        "cpu_s": round(cpu3 - cpu0, 3),
        "target_s": case["target_s"],
        "safety_violations": int(result.summary["safety_violations"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="run only these cases")
    parser.add_argument("--profile", action="store_true", help="print the top functions of the run phase")
    args = parser.parse_args()
    rows = [run_case(name, args.profile) for name in (args.case or list(CASES))]
    cols = ["case", "nodes", "sim_hours", "final_height", "stale_blocks", "events", "build_s", "topology_s", "run_s", "peer_delays_s", "collect_s", "wall_s", "cpu_s", "target_s"]
    print(" ".join(f"{c:>12}" for c in cols))
    for row in rows:
        print(" ".join(f"{row[c]:>12.3f}" if isinstance(row[c], float) else f"{row[c]:>12}" for c in cols))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
