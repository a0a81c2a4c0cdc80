"""``hcsim bench``: PBFT consensus instances per wall second, message mode vs phase mode.

For each network size n the benchmark runs PBFT (:mod:`sim.consensus.pbft`) for a
fixed number of consensus instances (one block each) in message mode (one SimPy
event per message) and in phase mode (:mod:`sim.consensus._pbft_phase`: all-to-all
phases computed with numpy), and times a *bare kernel* of the same size: the numpy
work phase mode cannot avoid, two quorum phases per instance on an n x n delay
matrix (arrival = send time + delay, then the q-th order statistic per receiver with
``np.partition``, :func:`sim.network.phase.quorum_times`). The kernel rate is the
limit phase mode approaches when the Python around it costs nothing, so
``phase / kernel`` says how far the simulator is from it.

Setup of every run (fixed, so sizes compare): full mesh with a 20 ms one-way delay,
no jitter, 1 Gbps uplinks, the default CPU costs (signing, verification, hashing),
f = (n - 1) // 3. Instance k is one claim submitted at ``k * spacing_s`` by origin
``k mod n``, cut into its own block at once (``max_block_tx = 1``). The run lasts
until every block is decided (executed at every replica), so each instance includes
the pre-prepare, the prepare and commit phases, execution at n replicas and the
replies to the origin. Instances per wall second = instances decided at every
replica / wall seconds of ``run_until`` (building the world is not counted, and
neither are the result tables).

Each (n, mode) runs in a forked child process, so one run's memory and garbage do
not weigh on the next: peak memory is the child's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) minus its resident size when it
started (``/proc/self/statm``), i.e. the memory the run itself added.

Message mode at large n is skipped when its estimated time, scaled from the
largest size measured so far as n^2 (events per instance grow as 2 n (n - 1)),
exceeds ``max_message_s``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sim.config import Scenario, parse_scenario
from sim.consensus.quorum import bft_quorum, max_faulty
from sim.network.phase import quorum_times

__all__ = ["BenchRow", "bench_rows", "format_table", "kernel_rate", "run_mode", "scenario"]

DELAY_S = 0.02  # one-way delay of the full mesh
SPACING_S = 0.05  # one instance submitted every 50 ms (several in flight at once)


def scenario(n: int, mode: str, instances: int) -> Scenario:
    """The PBFT scenario of ``instances`` single-claim blocks on ``n`` nodes."""
    raw: dict[str, Any] = {
        "name": f"bench_pbft_{n}_{mode}",
        "duration_s": instances * SPACING_S + 5.0,
        "seed": 1,
        "network": {"nodes": n, "topology": "full_mesh", "latency_s": DELAY_S, "jitter_s": 0.0,
                    "bandwidth_bps": 1e9, "mode": mode},
        "protocol": {"name": "pbft", "batch_timeout_s": 0.0, "max_block_tx": 1},
        "workload": {"rate_tps": 0.0},
    }  # fmt: skip
    return parse_scenario(raw, "<bench>")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _run_child(n: int, mode: str, instances: int) -> dict[str, Any]:
    """Build and run one world (in the calling process); returns its measurements."""
    from sim.experiment.simulation import Simulation
    from sim.workload.transaction import Transaction
    from sim.workload.types import TX_TYPES

    rss0 = _rss_bytes()
    world = Simulation(scenario(n, mode, instances))
    kind = TX_TYPES["claim"]

    def submit(origin: int) -> None:
        tx = Transaction(len(world.txs), kind.name, origin, world.env.now, kind.size_bytes, kind.execute_s)
        world.txs.append(tx)
        world.nodes[origin].submit(tx)

    for k in range(instances):
        world.env.timeout(k * SPACING_S).callbacks.append(lambda _e, o=k % n: submit(o))
    events0 = world.env.events_scheduled
    wall0 = time.perf_counter()
    world.run_until(world.scenario.duration_s)
    wall_s = time.perf_counter() - wall0
    decided = min(node.ledger.height for node in world.nodes)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    return {
        "wall_s": wall_s,
        "decided": decided,
        "events": world.env.events_scheduled - events0,
        "peak_mem_bytes": max(0, peak - rss0),
    }


def _child_main(conn: Any, n: int, mode: str, instances: int) -> None:
    try:
        conn.send(_run_child(n, mode, instances))
    except BaseException as exc:  # noqa: BLE001 - report anything (even Ctrl-C): else the parent gets only EOFError
        conn.send({"error": repr(exc)})
    finally:
        conn.close()


def run_mode(n: int, mode: str, instances: int) -> dict[str, Any]:
    """Run one (n, mode) in a forked child process; returns wall_s, decided, events, peak_mem_bytes."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child, n, mode, instances))
    proc.start()
    child.close()
    out = parent.recv()
    proc.join()
    if "error" in out:
        raise RuntimeError(f"bench run n={n} mode={mode} failed: {out['error']}")
    return out


def kernel_rate(n: int, min_time_s: float = 0.2) -> float:
    """Instances per second of the bare phase-mode kernel at size ``n``.

    One instance = two quorum phases (prepare, commit), each: arrival times of every
    sender's copy at every receiver (send time + n x n delay matrix) and each
    receiver's q-th arrival (``np.partition``, via :func:`quorum_times`).
    """
    rng = np.random.default_rng(0)
    delay = rng.uniform(0.001, 0.1, size=(n, n))
    np.fill_diagonal(delay, np.inf)
    need = bft_quorum(n, max_faulty(n)) - 1
    ready = np.zeros(n)
    count, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            prepared = quorum_times(ready[None, :] + delay.T, need)
            quorum_times(prepared[None, :] + delay.T, need)
        count += 10
        elapsed = time.perf_counter() - start
        if elapsed >= min_time_s:
            return count / elapsed


@dataclass
class BenchRow:
    """One size's results; message-mode fields are None when skipped."""

    n: int
    message_instances: int | None
    message_wall_s: float | None
    message_inst_per_s: float | None
    message_events_per_s: float | None
    message_peak_mem_mb: float | None
    message_skipped_est_s: float | None
    phase_instances: int
    phase_wall_s: float
    phase_inst_per_s: float
    phase_events_per_s: float
    phase_peak_mem_mb: float
    speedup: float | None  # phase / message instances per second
    kernel_inst_per_s: float
    kernel_over_phase: float  # how many times faster the bare kernel is than phase mode


def bench_rows(
    sizes: list[int],
    instances: int = 20,
    message_instances_large: int = 3,
    max_message_s: float = 60.0,
    log: Any = None,
) -> list[BenchRow]:
    """Measure every size (see the module docstring).

    Args:
        instances: instances per phase-mode run, and per message-mode run up to n = 64.
        message_instances_large: instances per message-mode run above n = 64.
        max_message_s: skip a message-mode run whose estimated wall time exceeds this.
        log: callable taking one line of progress text, or None.
    """
    rows = []
    per_inst_n2: float | None = None  # message-mode wall seconds per instance / n^2
    for n in sizes:
        m_inst = instances if n <= 64 else message_instances_large
        msg: dict[str, Any] | None = None
        est_s = per_inst_n2 * n * n * m_inst if per_inst_n2 is not None else 0.0
        if est_s <= max_message_s:
            msg = run_mode(n, "message", m_inst)
            per_inst_n2 = msg["wall_s"] / max(1, msg["decided"]) / (n * n)
        elif log:
            log(f"n={n}: message mode skipped (est. {est_s:.0f} s)")
        ph = run_mode(n, "phase", instances)
        kern = kernel_rate(n)
        ph_rate = ph["decided"] / ph["wall_s"]
        m_rate = msg["decided"] / msg["wall_s"] if msg else None
        rows.append(BenchRow(
            n=n,
            message_instances=msg["decided"] if msg else None,
            message_wall_s=msg["wall_s"] if msg else None,
            message_inst_per_s=m_rate,
            message_events_per_s=msg["events"] / msg["wall_s"] if msg else None,
            message_peak_mem_mb=msg["peak_mem_bytes"] / 2**20 if msg else None,
            message_skipped_est_s=None if msg else est_s,
            phase_instances=ph["decided"],
            phase_wall_s=ph["wall_s"],
            phase_inst_per_s=ph_rate,
            phase_events_per_s=ph["events"] / ph["wall_s"],
            phase_peak_mem_mb=ph["peak_mem_bytes"] / 2**20,
            speedup=ph_rate / m_rate if m_rate else None,
            kernel_inst_per_s=kern,
            kernel_over_phase=kern / ph_rate,
        ))  # fmt: skip
        if log:
            log(f"n={n}: done")
    return rows


_COLUMNS = [
    ("n", "n", "{:d}"),
    ("msg inst/s", "message_inst_per_s", "{:.2f}"),
    ("msg ev/s", "message_events_per_s", "{:,.0f}"),
    ("msg MB", "message_peak_mem_mb", "{:.1f}"),
    ("phase inst/s", "phase_inst_per_s", "{:.2f}"),
    ("phase ev/s", "phase_events_per_s", "{:,.0f}"),
    ("phase MB", "phase_peak_mem_mb", "{:.1f}"),
    ("phase/msg", "speedup", "{:.1f}"),
    ("kernel inst/s", "kernel_inst_per_s", "{:,.0f}"),
    ("kernel/phase", "kernel_over_phase", "{:.1f}"),
]


def format_table(rows: list[BenchRow]) -> str:
    """The rows as a fixed-width text table (``skipped (est. X s)`` for skipped message runs)."""
    cells = [[title for title, _, _ in _COLUMNS]]
    for row in rows:
        line = []
        for _title, key, fmt in _COLUMNS:
            value = getattr(row, key)
            if value is None:
                line.append(f"skipped (est. {row.message_skipped_est_s:.0f} s)" if key == "message_inst_per_s" else "-")
            else:
                line.append(fmt.format(value))
        cells.append(line)
    widths = [max(len(r[c]) for r in cells) for c in range(len(_COLUMNS))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in cells)


def to_json(rows: list[BenchRow], machine: dict[str, Any]) -> str:
    """Rows and machine facts as JSON."""
    return json.dumps({"machine": machine, "rows": [asdict(r) for r in rows]}, indent=2)


def machine_info() -> dict[str, Any]:
    """CPU count, model and load average of this machine."""
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "loadavg": list(os.getloadavg())}
