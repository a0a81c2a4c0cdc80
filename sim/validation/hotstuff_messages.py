"""Chained HotStuff sends a linear number of messages per view (Yin et al., PODC 2019).

Variant modelled: *chained* (pipelined) HotStuff, the event-driven Algorithm 3 of the
paper with the views of its Section 5, as in :mod:`sim.consensus.hotstuff`. Each view
is one generic phase: leader(v) broadcasts one proposal carrying the QC of view v - 1
(n - 1 messages) and every replica sends one vote to leader(v + 1), which forms the
next QC. The paper counts n votes; leader(v + 1)'s own vote is local here (no network
message), so n - 1 votes cross the network. A block commits after three such views
(the Three-Chain), so one decision costs 3 x 2(n - 1) messages once the pipeline is
full. *Basic* HotStuff (the paper's Algorithm 2) would instead spend, per decision,
four leader broadcasts (PREPARE, PRE-COMMIT, COMMIT, DECIDE) and three vote rounds
(PREPARE, PRE-COMMIT and COMMIT votes), plus NEW-VIEW messages: also linear, with a
larger constant; we do not model it. NEW-VIEW is sent here only on a view timeout,
which fault-free deterministic runs never reach.

Configuration (exact): full mesh, one-way delay D = 1/64 s (a binary fraction, so sums
are exact), no signing, verification or hashing cost, a bandwidth so large that
serialization vanishes, no workload and ``batch_timeout_s = 0`` (leaders propose empty
blocks at once). View v is proposed at 2D(v - 1); stopping at 2D(K - 1) + 1.5D, every
vote of view K has been sent and nothing of view K + 1 (tests/test_hotstuff.py).

Each case runs in message mode and in phase mode (names ending ``_phase``): phase mode
computes a view's votes with numpy when its leader proposes and must count the same
messages (:mod:`sim.consensus._hotstuff_phase`).
"""

from __future__ import annotations

from functools import lru_cache

from sim.config import parse_scenario
from sim.experiment.result import collect
from sim.experiment.simulation import Simulation
from sim.validation.cases import CaseResult, case

__all__ = ["messages_per_view"]

DELAY_S = 1 / 64
_SOURCE = "Yin, Malkhi, Reiter, Gueta, Abraham, HotStuff: BFT Consensus with Linearity and Responsiveness, PODC 2019, Algorithm 3 and Section 5"
_EXACT_WHY = "exact: fixed delays and no CPU cost make the run deterministic; every view sends the same messages"


@lru_cache(maxsize=8)
def messages_per_view(n: int, views: int, mode: str = "message") -> dict[str, float]:
    """Messages sent per view, by message type (plus ``"all"``), over ``views`` fault-free views.

    ``mode`` is the network mode, "message" or "phase".

    NaN everywhere if the run did not go through exactly views 1..``views`` in order with
    leaders v mod n (a failed view would make the per-view count meaningless).
    """
    scenario = parse_scenario(
        {
            "name": f"hotstuff-messages-n{n}-{mode}",
            "duration_s": 10.0,
            "seed": 1,
            "network": {"nodes": n, "topology": "full_mesh", "latency_s": DELAY_S, "bandwidth_bps": 1e30, "mode": mode},
            "node": {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30, "execute_scale": 0.0},
            "protocol": {"name": "hotstuff", "batch_timeout_s": 0.0},
            "workload": {"rate_tps": 0.0},
        },
        "<validation>",
    )
    world = Simulation(scenario)
    world.run_until(2 * DELAY_S * (views - 1) + 1.5 * DELAY_S)
    result = collect(world, wall_time_s=0.0)
    proposed = result.consensus.query("kind == 'leader_elected'")
    expected_views = list(range(1, views + 1))
    if proposed["view"].tolist() != expected_views or proposed["leader"].tolist() != [v % n for v in expected_views]:
        return {"Proposal": float("nan"), "Vote": float("nan"), "all": float("nan")}
    sent = result.messages.groupby("msg_type")["sent_count"].sum()
    out = {kind: float(sent.get(kind, 0)) / views for kind in ("Proposal", "Vote")}
    out["all"] = float(sent.sum()) / views
    return out


def _views(quick: bool) -> int:
    return 10 if quick else 20


def _register(n: int, mode: str) -> None:
    configured = (
        f"hotstuff, {n} nodes, {mode} mode, full mesh, fixed one-way delay 1/64 s, no CPU cost, no workload, "
        "empty blocks, fault-free views"
    )
    suffix = "" if mode == "message" else f"_{mode}"

    @case(
        name=f"hotstuff_proposals_per_view_n{n}{suffix}",
        group="hotstuff messages",
        configured=configured,
        reference="n - 1 proposal messages per view: leader(v) broadcasts one proposal (chained HotStuff)",
        source=_SOURCE,
        tolerance_why=_EXACT_WHY,
    )
    def proposals(quick: bool) -> CaseResult:
        return CaseResult(n - 1, messages_per_view(n, _views(quick), mode)["Proposal"], 0.0, "messages/view")

    @case(
        name=f"hotstuff_votes_per_view_n{n}{suffix}",
        group="hotstuff messages",
        configured=configured,
        reference="n - 1 vote messages per view: every replica votes to leader(v + 1), whose own vote is local (paper: n votes)",
        source=_SOURCE,
        tolerance_why=_EXACT_WHY,
    )
    def votes(quick: bool) -> CaseResult:
        return CaseResult(n - 1, messages_per_view(n, _views(quick), mode)["Vote"], 0.0, "messages/view")

    @case(
        name=f"hotstuff_all_messages_per_view_n{n}{suffix}",
        group="hotstuff messages",
        configured=configured,
        reference="2(n - 1) messages of any type per view: linear in n (PBFT's normal case is quadratic)",
        source=_SOURCE,
        tolerance_why=_EXACT_WHY + "; counting every type shows no other message is sent",
    )
    def everything(quick: bool) -> CaseResult:
        return CaseResult(2 * (n - 1), messages_per_view(n, _views(quick), mode)["all"], 0.0, "messages/view")


for _n in (4, 16):
    for _mode in ("message", "phase"):
        _register(_n, _mode)
