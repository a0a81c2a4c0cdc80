"""PBFT: exact message counts and latency, checkpoints, view change, recovery, config errors.

Deterministic settings throughout unless a test says otherwise: full mesh with one-way
delay d, no jitter, no CPU cost (sign, verify, hash, execution), bandwidth so large that
serialization is below 1e-20 s. Single transactions are injected at chosen nodes.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config import Scenario, parse_scenario
from sim.consensus._pbft_messages import PREPARE_BYTES
from sim.consensus.base import MESSAGE_HEADER_BYTES
from sim.errors import ScenarioError
from sim.experiment.result import RunResult, collect
from sim.experiment.simulation import Simulation
from sim.ledger import HEADER_BYTES
from sim.workload.transaction import Transaction
from sim.workload.types import TX_TYPES
from tests.conftest import small_scenario

D_S = 0.01  # one-way delay


def exact_scenario(n: int, mode: str = "message", **protocol: Any) -> Scenario:
    raw: dict[str, Any] = {
        "name": "pbft_exact",
        "duration_s": 30.0,
        "seed": 5,
        "network": {"nodes": n, "topology": "full_mesh", "latency_s": D_S, "jitter_s": 0.0, "bandwidth_bps": 1e30, "mode": mode},
        "node": {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30, "execute_scale": 0.0},
        "protocol": {"name": "pbft", "batch_timeout_s": 0.0, "max_block_tx": 1, **protocol},
        "workload": {"rate_tps": 0.0},
    }
    return parse_scenario(raw, "<test>")


def inject(world: Simulation, at_s: float, origin: int) -> None:
    """Submit one claim at ``origin`` at ``at_s`` (ids stay consecutive)."""
    kind = TX_TYPES["claim"]

    def submit(_event: object) -> None:
        tx = Transaction(len(world.txs), kind.name, origin, world.env.now, kind.size_bytes, kind.execute_s)
        world.txs.append(tx)
        world.nodes[origin].submit(tx)

    world.env.timeout(at_s).callbacks.append(submit)


def run_one(n: int, origin: int, mode: str = "message", until_s: float = 1.0, **protocol: Any) -> RunResult:
    world = Simulation(exact_scenario(n, mode, **protocol))
    inject(world, 0.5, origin)
    world.run_until(until_s)
    return collect(world, wall_time_s=0.0)


def sent_by_type(result: RunResult) -> dict[str, int]:
    return result.messages.groupby("msg_type")["sent_count"].sum().to_dict()


@pytest.mark.parametrize("mode", ["message", "phase"])
@pytest.mark.parametrize("f", [1, 2, 3])
def test_normal_case_message_counts(f: int, mode: str) -> None:
    n = 3 * f + 1
    result = run_one(n, origin=n - 1, mode=mode)
    # paper: pre-prepare n-1, prepare (n-1)^2 (the primary sends none), commit n(n-1);
    # one request to the primary and one reply from every replica but the origin
    assert sent_by_type(result) == {
        "Request": 1,
        "PrePrepare": n - 1,
        "Prepare": (n - 1) ** 2,
        "Commit": n * (n - 1),
        "Reply": n - 1,
    }
    msgs = result.messages.groupby("msg_type")[["sent_bytes", "received_count", "dropped_count"]].sum()
    assert msgs.loc["Prepare", "sent_bytes"] == (n - 1) ** 2 * PREPARE_BYTES
    assert msgs.loc["Commit", "sent_bytes"] == n * (n - 1) * PREPARE_BYTES
    claim = TX_TYPES["claim"].size_bytes
    assert msgs.loc["PrePrepare", "sent_bytes"] == (n - 1) * (MESSAGE_HEADER_BYTES + 16 + HEADER_BYTES + claim)
    assert msgs.loc["Prepare", "received_count"] == (n - 1) ** 2
    assert msgs["dropped_count"].sum() == 0
    assert result.summary["blocks"] == 1


@pytest.mark.parametrize("mode", ["message", "phase"])
@pytest.mark.parametrize("f", [1, 2, 3])
def test_client_latency_is_five_delays_from_a_backup(f: int, mode: str) -> None:
    # request to primary, pre-prepare, prepare, commit, reply: 5d; the origin's own
    # execution (at 4d) is one of the f + 1 replies
    tx = run_one(3 * f + 1, origin=1, mode=mode).transactions
    assert tx.loc[0, "commit_s"] - tx.loc[0, "submit_s"] == pytest.approx(5 * D_S, abs=1e-12)
    assert tx.loc[0, "decided_s"] - tx.loc[0, "submit_s"] == pytest.approx(4 * D_S, abs=1e-12)


def test_client_latency_is_four_delays_at_the_primary() -> None:
    tx = run_one(4, origin=0).transactions
    assert tx.loc[0, "commit_s"] - tx.loc[0, "submit_s"] == pytest.approx(4 * D_S, abs=1e-12)


def test_f_zero_needs_only_the_origins_own_execution() -> None:
    # n = 4, f = 0: quorum ceil(5/2) = 3, one reply (the origin's own) confirms at 4d
    result = run_one(4, origin=2, f=0)
    tx = result.transactions
    assert tx.loc[0, "commit_s"] - tx.loc[0, "submit_s"] == pytest.approx(4 * D_S, abs=1e-12)
    assert sent_by_type(result)["Commit"] == 12


def test_single_replica_commits_alone() -> None:
    result = run_one(1, origin=0)
    assert result.transactions.loc[0, "latency_s"] == pytest.approx(0.0, abs=1e-12)
    assert result.messages.empty


def test_checkpoints_advance_watermark_and_collect_garbage() -> None:
    n, k = 4, 4
    world = Simulation(exact_scenario(n, checkpoint_interval=k))
    for i in range(10):
        inject(world, 0.5 + 0.1 * i, origin=1 + i % 3)
    world.run_until(3.0)
    result = collect(world, wall_time_s=0.0)
    assert result.summary["blocks"] == 10
    assert sent_by_type(result)["Checkpoint"] == 2 * n * (n - 1)  # at sequence numbers 4 and 8
    for node in world.nodes:
        pbft = node.protocol
        assert pbft.stable_seq == 8  # type: ignore[attr-defined]
        assert min(pbft.log) > 8 and min(pbft.pcerts) > 8  # type: ignore[attr-defined]
    assert result.summary["conservation_violations"] == 0


def test_full_window_holds_batches_without_losing_them() -> None:
    # two of four replicas down: nothing commits, the primary fills its window (L = 2)
    world = Simulation(exact_scenario(4, checkpoint_interval=2, watermark_window=2, view_change_timeout_s=100.0))
    world.run_until(0.1)
    world.nodes[2].crash()
    world.nodes[3].crash()
    for i in range(5):
        inject(world, 0.5 + 0.1 * i, origin=i % 2)
    world.run_until(3.0)
    result = collect(world, wall_time_s=0.0)
    assert sent_by_type(result)["PrePrepare"] == 2 * 3  # sequence numbers 1 and 2, to three backups
    primary = world.nodes[0].protocol
    # the batch cut when the window filled waits in the backlog, later arrivals in the mempool
    assert [[tx.tx_id for tx in b] for b in primary.backlog] == [[2]]  # type: ignore[attr-defined]
    assert [tx.tx_id for tx in world.nodes[0].mempool] == [3, 4]
    assert result.summary["pending"] == 5 and result.summary["conservation_violations"] == 0


@pytest.mark.parametrize("mode", ["message", "phase"])
def test_view_change_after_primary_crash(mode: str) -> None:
    scenario = small_scenario(protocol__name="pbft", duration_s=15.0, workload__rate_tps=20.0, network__mode=mode)
    world = Simulation(scenario)
    world.run_until(1.0)
    world.nodes[0].crash()
    world.run_until(scenario.duration_s)
    result = collect(world, wall_time_s=0.0)
    events = result.consensus
    changes = events[events["kind"] == "view_change"]
    assert len(changes) >= 3 and set(changes["view"]) == {1}
    elected = events[(events["kind"] == "leader_elected") & (events["view"] == 1)]
    assert elected[["node_id", "leader"]].values.tolist() == [[1, 1]]
    assert all(node.protocol.leader() == 1 for node in world.nodes[1:])
    s = result.summary
    assert s["safety_violations"] == 0 and s["ledger_violations"] == 0 and s["conservation_violations"] == 0
    blocks = result.blocks
    assert (blocks["proposer"] == 1).sum() > 10  # commits resume under the new primary
    tx = result.transactions
    alive = tx[(tx["origin"] != 0) & (tx["submit_s"] < scenario.duration_s - 3.0)]
    assert (alive["outcome"] == "committed").all()  # nothing held by the old primary vanished
    assert alive["commit_s"].notna().all()


def test_recovered_replica_catches_up_through_new_view_and_state_transfer() -> None:
    # n = 7, f = 2: backup 6 is down during the view change away from crashed primary 0
    scenario = small_scenario(
        protocol__name="pbft", network__nodes=7, duration_s=20.0, workload__rate_tps=20.0, protocol__checkpoint_interval=8
    )
    world = Simulation(scenario)
    world.run_until(0.5)
    world.nodes[6].crash()
    world.run_until(1.0)
    world.nodes[0].crash()
    world.run_until(10.0)
    assert world.nodes[1].protocol.view == 1  # type: ignore[attr-defined]
    world.nodes[6].recover()
    world.run_until(scenario.duration_s)
    result = collect(world, wall_time_s=0.0)
    rejoined = world.nodes[6]
    assert rejoined.protocol.view == 1 and rejoined.protocol.active  # type: ignore[attr-defined]
    leader_height = world.nodes[1].ledger.height
    assert rejoined.ledger.height >= leader_height - 8  # at most one checkpoint interval behind
    assert result.summary["safety_violations"] == 0 and result.summary["ledger_violations"] == 0
    assert result.summary["conservation_violations"] == 0


def _first_pending_by_scan(pbft: Any) -> int | None:
    """The first request above the ledger in the logged pre-prepares, by the plain window scan."""
    first = pbft.ctx.ledger_height + 1
    top = min(first + pbft.window, max(pbft.log, default=0) + 1)
    for seq in range(first, top):
        slot = pbft.log.get(seq)
        for tx_id in slot.pp.block.tx_ids if slot is not None and slot.pp is not None else ():
            if tx_id not in pbft.executed:
                return tx_id
    return None


def test_request_timer_watches_the_first_logged_request_even_past_gaps() -> None:
    """The request timer's log scan (which finds the highest logged number only past a gap)
    agrees with a plain scan of the window, with blocks in flight, executed, and with gaps."""
    world = Simulation(exact_scenario(4, max_block_tx=1))
    for k in range(8):
        inject(world, 0.5 + 0.004 * k, k % 4)
    checked = 0
    for until_s in (0.505, 0.515, 0.525, 0.535, 0.56, 1.0):
        world.run_until(until_s)
        for node in world.nodes:
            pbft = node.protocol
            assert pbft._first_logged_request() == _first_pending_by_scan(pbft)
            checked += _first_pending_by_scan(pbft) is not None
    assert checked > 0  # some replica had a pending request in its log
    pbft = world.nodes[1].protocol
    assert _first_pending_by_scan(pbft) is None  # all executed at 1 s
    tail = world.nodes[0].protocol.log
    for seq in sorted(tail)[-3:]:  # log holds executed slots: pretend three are not executed yet
        pbft.log[seq] = tail[seq]
    height = pbft.ctx.ledger_height
    world.nodes[1].ledger._blocks = world.nodes[1].ledger._blocks[: height - 3]
    assert pbft._first_logged_request() == _first_pending_by_scan(pbft) is not None
    del pbft.log[height - 2]  # a gap where the scan starts
    want = _first_pending_by_scan(pbft)
    assert want is not None and pbft._first_logged_request() == want
    for seq in [s for s in pbft.log if s > height - 3]:
        del pbft.log[seq]  # nothing logged above the ledger: the scan stops at the first gap
    assert pbft._first_logged_request() is None and _first_pending_by_scan(pbft) is None


def test_f_too_large_is_a_scenario_error_naming_f_and_n() -> None:
    with pytest.raises(ScenarioError) as err:
        small_scenario(protocol__name="pbft", protocol__f=2)
    text = str(err.value)
    assert "f = 2" in text and "n = 4" in text and "n >= 7" in text


def test_window_below_checkpoint_interval_is_rejected() -> None:
    with pytest.raises(ScenarioError, match="watermark_window = 4"):
        small_scenario(protocol__name="pbft", protocol__checkpoint_interval=8, protocol__watermark_window=4)


def test_defaults_and_tolerance() -> None:
    scenario = small_scenario(protocol__name="pbft", network__nodes=10)
    from sim.consensus.pbft import Pbft

    assert Pbft.crash_tolerance(scenario.protocol, 10) == 3
    p = scenario.protocol
    assert (p.f, p.view_change_timeout_s, p.checkpoint_interval, p.watermark_window) == (None, 2.0, 128, None)  # type: ignore[attr-defined]
    assert Pbft.crash_tolerance(small_scenario(protocol__name="pbft", protocol__f=0).protocol, 4) == 0


@st.composite
def fault_schedules(draw: st.DrawFn) -> tuple[int, list[tuple[float, str, Any]]]:
    """A network size and up to 10 faults in the first 10 s: crashes (at most f down at once),
    recoveries and partitions of up to f nodes."""
    n = draw(st.sampled_from([4, 5, 7]))
    f = (n - 1) // 3
    events: list[tuple[float, str, Any]] = []
    down: set[int] = set()
    times = sorted(draw(st.lists(st.floats(0.5, 10.0), max_size=10)))
    for at_s in times:
        kind = draw(st.sampled_from(["crash", "recover", "partition", "heal"]))
        if kind == "crash" and len(down) < f:
            node = draw(st.integers(0, n - 1).filter(lambda i: i not in down))
            down.add(node)
            events.append((at_s, "crash", node))
        elif kind == "recover" and down:
            node = draw(st.sampled_from(sorted(down)))
            down.discard(node)
            events.append((at_s, "recover", node))
        elif kind == "partition":
            events.append((at_s, "partition", draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=f))))
        elif kind == "heal":
            events.append((at_s, "heal", None))
    return n, events


@pytest.mark.parametrize("mode", ["message", "phase"])
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=fault_schedules(), seed=st.integers(0, 2**31), loss=st.sampled_from([0.0, 0.02]))
def test_random_faults_keep_safety_and_recover(mode: str, schedule: tuple[int, list[Any]], seed: int, loss: float) -> None:
    """Crashes, recoveries, partitions (together beyond f at times) and loss: never a safety
    or conservation violation, and once all heals every request submitted in the first
    10 s at a live origin commits."""
    n, events = schedule
    scenario = small_scenario(
        protocol__name="pbft", network__nodes=n, network__mode=mode, network__loss_rate=loss, seed=seed,
        duration_s=25.0, workload__rate_tps=30.0, protocol__view_change_timeout_s=0.5, protocol__checkpoint_interval=16,
    )  # fmt: skip
    world = Simulation(scenario)
    for at_s, kind, arg in events:
        world.run_until(at_s)
        if kind == "crash":
            world.nodes[arg].crash()
        elif kind == "recover":
            world.nodes[arg].recover()
        else:
            world.network.group[:] = [int(i in (arg or ())) for i in range(n)]
    world.run_until(10.0)
    world.network.group[:] = [0] * n
    for node in world.nodes:
        node.recover()
    world.run_until(scenario.duration_s)
    result = collect(world, wall_time_s=0.0)
    s = result.summary
    assert s["safety_violations"] == 0 and s["ledger_violations"] == 0, s["invariant_notes"]
    assert s["conservation_violations"] == 0, s["invariant_notes"]
    tx = result.transactions
    early = tx[(tx["submit_s"] < 10.0) & tx["outcome"].isin(["committed", "pending"])]
    assert (early["outcome"] == "committed").all()
