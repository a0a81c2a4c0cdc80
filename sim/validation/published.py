"""Published results: Raft's leader-crash experiment (Ongaro & Ousterhout, ATC 2014, section 9.3).

What the paper did (section 9.3, Figure 16; text checked, numbers quoted only from it):
a five-server cluster whose leader was crashed repeatedly, measuring the time to detect
the crash and elect a new leader. The leader was crashed uniformly at random within its
heartbeat interval, which was half of the minimum election timeout in every test, so
the smallest possible downtime was about half the minimum timeout. Broadcast time was
roughly 15 ms. To make it a worst case, servers had logs of different lengths (some
candidates could not win) and the leader sent a synchronized heartbeat before dying.
Reported: with no randomness (150-150 ms) "leader election consistently took longer
than 10 seconds" (100 trials) because of repeated split votes; 150-155 ms gave a median
downtime of 287 ms; with 50 ms of randomness the worst of 1000 trials was 513 ms;
12-24 ms timeouts gave a 35 ms mean (longest 152 ms). The paper recommends 150-300 ms.

What we reproduce:

1. ``raft_paper_no_randomness_no_leader_10s`` (shape, exact): the 150-150 ms result.
   Same cluster size, heartbeat (75 ms) and crash timing; one-way delay 7.5 ms (half the
   15 ms broadcast time) with 1 ms jitter. To have a first leader at all without
   randomness, node 0's clock runs 20% fast (a clock_skew fault), so it times out first
   and wins; it is the leader that crashes, so the four survivors are symmetric. As in the
   paper (synchronized heartbeat before the kill), the crash comes after the leader's last
   heartbeat has reached every follower: uniformly within the rest of its heartbeat
   interval (62.5 ms in true time on its fast clock). Without that, a crash while a
   heartbeat is in flight splits the survivors into two groups 62.5 ms apart and the
   first group wins with the second group's votes (1 of 100 trials did). The survivors'
   timers start within the 1 ms jitter of each other and restart at their own election
   start, so every candidate times out before any other candidate's RequestVote (7.5 ms)
   arrives: every election splits, for ever. Reference: no trial elects a leader within
   10 s, as in all 100 of the paper's trials.
2. ``raft_paper_leader_crash_mean_s5`` (value): the paper's text gives no number for its
   recommended 150-300 ms, and its 150-155 ms and 12-24 ms numbers depend on what we do
   not model (the disk writes inside its 15 ms broadcast time, unequal logs; our Raft
   also keeps a follower's timeout draw across heartbeats, where LogCabin redraws). We
   found no single one-way delay that gives both: 287 ms median at 150-155 ms needs
   about 3 ms, 35 ms mean at 12-24 ms about 4.5 ms. So, as a value, we reproduce the
   analytic mean downtime of our own election model (derived and checked over 120 seeds
   in tests/test_recovery.py) in the paper's setup: 5 servers, 150-300 ms, heartbeat
   75 ms, crash uniform within a heartbeat interval, LAN one-way delay 0.5 ms. The
   survivors hold the 2nd..5th smallest of 5 uniform draws (the smallest won the first
   election), so the first to time out waits T = a + R B, B ~ Beta(2, 4), E[T] = a +
   2R/(n+1), after the last heartbeat, which arrived A ~ U[0, h) before the crash; one
   round trip 2d then elects it: E[downtime] = a + 2R/(n+1) - h/2 + 2d = 163.5 ms.
   Split votes need two survivors within 0.5 ms of each other (about 2%) and shifted
   the mean by under one standard error over 2000 seeds.

Crash times are a deterministic grid over the heartbeat interval (phase (k + 0.5)/N for
trial k), which is uniform and has less variance than random phases.
"""

from __future__ import annotations

import math

import numpy as np

from sim.config import parse_scenario
from sim.experiment.simulation import Simulation
from sim.validation.cases import CaseResult, case

__all__ = ["leader_crash_downtime"]

SERVERS = 5
_FAST_DRIFT = 0.2  # node 0's clock in the no-randomness case: 20% fast, so it wins the first election
_SOURCE = "Ongaro & Ousterhout, In Search of an Understandable Consensus Algorithm, USENIX ATC 2014, section 9.3 and Figure 16"


def leader_crash_downtime(
    seed: int,
    phase: float,
    timeout_min_s: float,
    timeout_max_s: float,
    delay_s: float,
    jitter_s: float = 0.0,
    fast_node_0: bool = False,
    settle: bool = False,
    horizon_s: float = 2.0,
) -> float:
    """Seconds from a leader crash to the next ``leader_elected``, inf if none within ``horizon_s``.

    The heartbeat is half the minimum timeout (the paper's setting); the leader crashes
    ``phase`` (0..1) into a heartbeat interval, the one after its second heartbeat. With
    ``settle`` the crash comes only once that heartbeat has reached every follower (the
    paper's synchronized heartbeat before the kill): the interval starts delay + jitter
    after the send. With ``fast_node_0`` node 0's clock runs 20% fast, and so do its
    heartbeats. NaN if no first leader was elected (or, with ``fast_node_0``, not node 0).
    """
    heartbeat_s = timeout_min_s / 2
    period_s = heartbeat_s / (1 + _FAST_DRIFT) if fast_node_0 else heartbeat_s
    settle_s = delay_s + jitter_s if settle else 0.0
    raw: dict = {
        "name": "raft-leader-crash",
        "duration_s": 100.0,
        "seed": seed,
        "network": {"nodes": SERVERS, "topology": "full_mesh", "latency_s": delay_s, "jitter_s": jitter_s, "bandwidth_bps": 1e15},
        "node": {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30},
        "protocol": {
            "name": "raft",
            "election_timeout_min_s": timeout_min_s,
            "election_timeout_max_s": timeout_max_s,
            "heartbeat_s": heartbeat_s,
        },
        "workload": {"rate_tps": 0.0},
    }
    if fast_node_0:
        raw["faults"] = [{"kind": "clock_skew", "nodes": [0], "drift": _FAST_DRIFT}]
    world = Simulation(parse_scenario(raw, "<validation>"))
    world.run_until(timeout_max_s + 2 * delay_s + jitter_s + 1e-6)
    elected = [r for r in world.recorder.consensus if r.kind == "leader_elected"]
    if len(elected) != 1 or (fast_node_0 and elected[0].node_id != 0):
        return float("nan")
    crash_s = elected[0].time_s + period_s + settle_s + phase * (period_s - settle_s)
    world.run_until(crash_s)
    world.nodes[elected[0].node_id].crash()
    world.run_until(crash_s + horizon_s)
    after = [r.time_s for r in world.recorder.consensus if r.kind == "leader_elected" and r.time_s >= crash_s]
    return after[0] - crash_s if after else math.inf


@case(
    name="raft_paper_no_randomness_no_leader_10s",
    group="published",
    configured=(
        "raft, 5 servers, timeouts 150-150 ms (no randomness), heartbeat 75 ms, one-way delay 7.5 ms + jitter "
        "U[0, 1 ms], node 0's clock 20% fast so it is the first leader; it crashes uniformly within a heartbeat "
        "interval once that heartbeat has reached every follower; 100 trials (quick 30)"
    ),
    reference="share of trials with a new leader within 10 s = 0 (paper: election 'consistently took longer than 10 seconds', 100 trials)",
    source=_SOURCE,
    tolerance_why="exact: symmetric survivors time out within the 1 ms jitter of each other, under one delay, so every election splits",
)
def no_randomness(quick: bool) -> CaseResult:
    trials = 30 if quick else 100
    downtimes = np.array(
        [
            leader_crash_downtime(k, (k + 0.5) / trials, 0.150, 0.150, 0.0075, jitter_s=0.001, fast_node_0=True, settle=True, horizon_s=10.0)
            for k in range(trials)
        ]
    )
    share = float(np.mean(downtimes <= 10.0)) if not np.isnan(downtimes).any() else float("nan")
    return CaseResult(0.0, share, 0.0, "share of trials")


@case(
    name="raft_paper_leader_crash_mean_s5",
    group="published",
    configured=(
        "raft, 5 servers, timeouts 150-300 ms (the paper's recommendation), heartbeat 75 ms (half the minimum "
        "timeout, as the paper), leader crashed uniformly within a heartbeat interval, one-way delay 0.5 ms; "
        "400 trials (quick 200)"
    ),
    reference=(
        "mean crash-to-new-leader time a + 2R/(n+1) - h/2 + 2d = 163.5 ms: our election model in the paper's setup "
        "(the paper's text gives no 150-300 ms number; see sim/validation/published.py)"
    ),
    source=_SOURCE + " (setup); model derived in tests/test_recovery.py",
    tolerance_why="4 standard errors sd/sqrt(N), sd^2 = R^2 2(n-1)/((n+1)^2 (n+2)) + h^2/12 (random crash phases; our grid has less)",
)
def leader_crash_mean(quick: bool) -> CaseResult:
    a, b, d = 0.150, 0.300, 0.0005
    r, h, n = b - a, a / 2, SERVERS
    trials = 200 if quick else 400
    downtimes = np.array([leader_crash_downtime(k, (k + 0.5) / trials, a, b, d) for k in range(trials)])
    expected = a + 2 * r / (n + 1) - h / 2 + 2 * d
    sd = math.sqrt(r**2 * 2 * (n - 1) / ((n + 1) ** 2 * (n + 2)) + h**2 / 12)
    return CaseResult(expected, float(np.mean(downtimes)), 4 * sd / math.sqrt(trials), "s")
