"""Tendermint decides a height three one-way delays after its proposal (Algorithm 1).

Buchman, Kwon and Milosevic (2018), "The latest gossip on BFT consensus", Algorithm 1:
in a fault-free round 0 with a fixed one-way delay d and no processing cost, the
proposer broadcasts PROPOSAL at t (received at t + d), every process prevotes it on
receipt (line 22; received at t + 2d), precommits on +2/3 prevotes (line 36; received
at t + 3d) and decides on +2/3 precommits (line 49) at t + 3d, all processes at once.
Our model broadcasts every message directly (no gossip relays), so the three steps
are exactly three delays.

Configuration (exact): full mesh with a binary-fraction delay (sums are exact in
floating point), no signing, verification, hashing or execution cost, a bandwidth so
large that serialization vanishes, a light workload (blocks are not empty) and
CometBFT's ``timeout_commit`` of 1 s between heights. The run stops inside the commit
wait after the last height, so no later height is half-way through.
"""

from __future__ import annotations

from sim.config import parse_scenario
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.validation.cases import CaseResult, case

__all__ = ["decision_delays"]

COMMIT_S = 1.0  # CometBFT's timeout_commit default (sim.consensus.tendermint)


def decision_delays(n: int, delay_s: float, heights: int, mode: str = "message") -> list[float]:
    """Commit time minus proposal time, for every (node, height) of a fault-free run in ``mode``.

    Empty if the run did not decide exactly heights 1..``heights``, each in round 0.
    """
    scenario = parse_scenario(
        {
            "name": f"tendermint-latency-n{n}",
            "duration_s": 60.0,
            "seed": 1,
            "network": {"nodes": n, "topology": "full_mesh", "latency_s": delay_s, "bandwidth_bps": 1e30, "mode": mode},
            "node": {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30, "execute_scale": 0.0},
            "protocol": {"name": "tendermint", "max_block_tx": 500, "timeout_commit_s": COMMIT_S},
            "workload": {"rate_tps": 20.0},
        },
        "<validation>",
    )
    world = Simulation(scenario)
    # height h is proposed at (h - 1)(3d + commit wait); stop half-way into the last wait
    world.run_until(heights * (3 * delay_s + COMMIT_S) - COMMIT_S / 2)
    result = collect(world, wall_time_s=0.0)
    blocks = result.blocks
    if blocks["height"].tolist() != list(range(1, heights + 1)) or (blocks["round"] != 0).any():
        return []
    created = dict(zip(blocks["height"], blocks["created_s"], strict=True))
    commits = result.consensus.query("kind == 'block_committed'")
    if len(commits) != heights * n:
        return []
    return [float(t - created[h]) for t, h in zip(commits["time_s"], commits["height"], strict=True)]


def _register(n: int, delay_s: float, mode: str) -> None:
    @case(
        name=f"tendermint_decision_3d_n{n}" + ("_phase" if mode == "phase" else ""),
        group="tendermint latency",
        configured=(
            f"tendermint, {n} nodes, full mesh, fixed one-way delay d = {delay_s:g} s, no CPU cost, "
            f"20 tx/s, timeout_commit 1 s, {mode} mode; every node's commit of every height"
        ),
        reference="decision exactly 3d after the proposal (propose, prevote, precommit), at every node",
        source="Buchman, Kwon, Milosevic, The latest gossip on BFT consensus (2018), Algorithm 1, lines 22, 36, 49",
        tolerance_why="exact: fixed binary-fraction delays and no CPU cost; the simulated value is the worst (node, height)",
    )
    def compute(quick: bool) -> CaseResult:
        delays = decision_delays(n, delay_s, 4 if quick else 8, mode)
        expected = 3 * delay_s
        worst = max(delays, key=lambda x: abs(x - expected)) if delays else float("nan")
        return CaseResult(expected, worst, 0.0, "s")


for _n, _d in ((4, 1 / 16), (7, 1 / 64)):
    for _mode in ("message", "phase"):
        _register(_n, _d, _mode)
