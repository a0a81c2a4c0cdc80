"""The guide docs/write_your_own_protocol.md and its example protocol (docs/examples/primary_backup.py).

The example is not a built-in: it is imported by the ``example`` fixture, never at
collection, because tests/test_protocol_suite.py parametrizes over ``sim.protocol_names()``
when pytest collects it (after this file, alphabetically) and must see the built-ins only.
The fixture's finalizer unregisters it, so later tests in this process see no trace of it.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import sim
from sim.consensus.base import _REGISTRY
from sim.experiment.result import collect
from tests import test_protocol_suite as suite
from tests.test_protocol_suite import _assert_invariants, _assert_live

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
GUIDE = ROOT / "docs" / "write_your_own_protocol.md"
SCENARIO = EXAMPLES / "primary_backup.toml"
NAME = "primary_backup"

D = 0.0055  # the example scenario's one-way delay, seconds
HEARTBEAT_S = 0.05  # the protocol's default heartbeat_s
#: fixed delays and free CPU: every latency follows from the message pattern
EXACT = {
    "node.sign_s": 0.0,
    "node.verify_s": 0.0,
    "node.hash_rate_bps": 1e30,
    "node.execute_scale": 0.0,
    "network.bandwidth_bps": 1e30,
    "protocol.max_block_tx": 1,
}
#: the command the guide gives for running the shared suite on a protocol of one's own
SUITE_COMMAND = "PYTHONPATH=.:docs/examples pytest -p primary_backup tests/test_protocol_suite.py -k primary_backup"


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """The example module, imported (which registers its protocol) and unregistered afterwards."""
    assert NAME not in _REGISTRY, "the example was registered before its fixture ran"
    sys.path.insert(0, str(EXAMPLES))
    try:
        module = importlib.import_module(NAME)
        assert NAME in sim.protocol_names()
        yield module
    finally:
        _REGISTRY.pop(NAME, None)
        sys.modules.pop(NAME, None)
        sys.path.remove(str(EXAMPLES))


def _exact_world(**extra: object) -> sim.Simulation:
    """The example scenario with fixed delays, free CPU and no client load (tests submit)."""
    overrides = {**EXACT, "workload.rate_tps": 0.0, **extra}
    return sim.Simulation(sim.load_scenario(SCENARIO, overrides=overrides))


def _row(result: sim.RunResult, tx_id: int) -> dict[str, object]:
    return result.transactions.set_index("tx_id").loc[tx_id].to_dict()


# --------------------------------------------------------------- the example protocol


def test_example_scenario_is_safe_conserving_and_live(example: ModuleType) -> None:
    scenario = sim.load_scenario(SCENARIO)
    result = sim.run(scenario)
    _assert_invariants(result.summary)
    _assert_live(result, scenario.duration_s)
    assert result.summary["throughput_tps"] == pytest.approx(scenario.workload.rate_tps, rel=0.05)
    # one block_committed row per delivered block (the ctx.record calls of the guide)
    committed = result.consensus[result.consensus["kind"] == "block_committed"]
    assert len(committed) == result.summary["blocks"] > 0
    assert committed["height"].tolist() == list(range(1, result.summary["blocks"] + 1))


def test_shared_suite_passes(example: ModuleType) -> None:
    suite.test_safety_conservation_liveness(NAME)
    suite.test_invariants_hold_for_random_runs(name=NAME)
    # a fixed primary tolerates no crash of *any* node, so the suite's crash test skips it
    assert example.PrimaryBackup.crash_tolerance(example.PrimaryBackupParams(), 5) == 0
    with pytest.raises(pytest.skip.Exception, match="tolerates no crashed node"):
        suite.test_liveness_with_tolerated_crashes(NAME)


def test_exact_commit_latency(example: ModuleType) -> None:
    """Guide, section 4: 2d at the primary, 4d at a backup (d = 5.5 ms): 11 ms and 22 ms."""
    result = sim.run(SCENARIO, overrides=EXACT)
    _assert_invariants(result.summary)
    tx = result.transactions
    done = tx[tx["outcome"] == "committed"]
    assert len(done) > 2000 and len(done) == len(tx) - result.summary["pending"]
    primary = done[done["origin"] == 0]
    backup = done[done["origin"] != 0]
    assert len(primary) > 0 and len(backup) > 0
    assert (primary["latency_s"] - 2 * D).abs().max() < 1e-9  # replicate (d) + ack (d)
    assert (primary["proposed_s"] - primary["submit_s"]).abs().max() < 1e-9  # cut at once
    assert (backup["proposed_s"] - backup["submit_s"] - D).abs().max() < 1e-9  # forwarded
    assert (backup["decided_s"] - backup["submit_s"] - 3 * D).abs().max() < 1e-9
    assert (backup["latency_s"] - 4 * D).abs().max() < 1e-9  # + commit notice (d)
    assert result.summary["latency_p50_s"] == pytest.approx(4 * D, abs=1e-9)
    measured = tx[(tx["submit_s"] >= result.scenario.warmup_s) & tx["latency_s"].notna()]  # as latency_summary
    share = (measured["origin"] == 0).mean()
    assert result.summary["latency_mean_s"] == pytest.approx(share * 2 * D + (1 - share) * 4 * D, abs=1e-9)


def test_commits_need_a_majority_of_backups(example: ModuleType) -> None:
    world = _exact_world()
    world.run_until(0.5)
    for b in (3, 4):  # a minority of 5: the primary and backups 1 and 2 are a majority
        world.nodes[b].crash()
    world.run_until(1.0)
    first = world.submit_now(0)
    world.run_until(1.5)
    world.nodes[2].crash()  # now the primary and backup 1 are 2 of 5
    second = world.submit_now(0)
    world.run_until(2.5)
    assert world.nodes[0].ledger.height == 1  # the second block waits for a majority
    world.nodes[3].recover()
    world.run_until(4.0)
    result = collect(world, 0.0)
    _assert_invariants(result.summary)
    assert _row(result, first.tx_id)["latency_s"] == pytest.approx(2 * D, abs=1e-9)
    # Backup 3 missed both blocks. The primary's first heartbeat after the recovery finds the
    # gap (d there, d back), resends (d) and backup 3 acknowledges (d): decided 4d after it.
    heartbeat_s = 0.0
    while heartbeat_s < 2.5:  # heartbeats run every HEARTBEAT_S from time 0, as timers add up
        heartbeat_s += HEARTBEAT_S
    assert _row(result, second.tx_id)["decided_s"] == pytest.approx(heartbeat_s + 4 * D, abs=1e-9)
    assert world.nodes[3].ledger.height == 2  # caught up by the protocol (syncs_ledger)


@pytest.mark.parametrize(
    ("crash_after_s", "round_trips"),
    [
        (1.5 * D, 1),  # the backups stored the block; their acks are lost: the recovery heartbeat collects them
        (0.5 * D, 2),  # the block was still on the wire (lost with its sender): a gap, then a resend
    ],
)
def test_primary_crash_stops_commits_until_it_recovers(example: ModuleType, crash_after_s: float, round_trips: int) -> None:
    world = _exact_world()
    world.run_until(1.0)
    in_flight = world.submit_now(0)  # cut and sent to the backups at once
    world.run_until(1.0 + crash_after_s)
    world.nodes[0].crash()
    world.run_until(1.5)
    lost_forward = world.submit_now(1)  # forwarded to a crashed primary
    world.run_until(2.0)
    world.nodes[0].recover()  # its log survived; on_recover sends a heartbeat at once
    world.run_until(2.5)
    after = world.submit_now(1)
    world.run_until(3.0)
    result = collect(world, 0.0)
    _assert_invariants(result.summary)
    row = _row(result, in_flight.tx_id)
    assert row["outcome"] == "committed"
    assert row["decided_s"] == pytest.approx(2.0 + round_trips * 2 * D, abs=1e-9)
    assert row["latency_s"] == pytest.approx(1.0 + round_trips * 2 * D, abs=1e-9)
    assert _row(result, lost_forward.tx_id)["outcome"] == "dropped"
    assert _row(result, after.tx_id)["latency_s"] == pytest.approx(4 * D, abs=1e-9)
    quorum = result.consensus[result.consensus["kind"] == "block_committed"]
    assert quorum["quorum_s"].tolist() == pytest.approx([1.0 + round_trips * 2 * D, 2 * D], abs=1e-9)


def test_check_rejects_bad_params(example: ModuleType) -> None:
    with pytest.raises(sim.ScenarioError, match=r"primary = 7 is not a node id \(0\.\.4\)"):
        sim.load_scenario(SCENARIO, overrides={"protocol.primary": 7})
    with pytest.raises(sim.ScenarioError, match="acks = 5 is more than the 4 backups"):
        sim.load_scenario(SCENARIO, overrides={"protocol.acks": 5})
    with pytest.raises(sim.ScenarioError, match="did you mean 'heartbeat_s'"):
        sim.load_scenario(SCENARIO, overrides={"protocol.heartbeat": 0.1})


# ------------------------------------------------------------------------- the guide

_BLOCK = re.compile(r"(?:<!-- (?P<mark>[a-z]+) -->\n)?```python\n(?P<code>.*?)```", re.DOTALL)


def _python_blocks() -> list[tuple[str | None, str]]:
    return [(m["mark"], m["code"]) for m in _BLOCK.finditer(GUIDE.read_text())]


def test_every_python_block_is_marked() -> None:
    marks = [mark for mark, _ in _python_blocks()]
    assert set(marks) <= {"runnable", "excerpt", "illustration"}, marks
    assert marks.count("runnable") >= 6 and marks.count("excerpt") >= 8


def test_excerpts_match_the_example_file() -> None:
    source = (EXAMPLES / "primary_backup.py").read_text()
    for mark, code in _python_blocks():
        if mark == "excerpt":
            dedented = textwrap.dedent(code)
            assert any(textwrap.indent(dedented, " " * k) in source for k in (0, 4)), f"not in the example:\n{code}"


def test_runnable_blocks_run(example: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every runnable block, in order, in one namespace, from a copy of the repository's docs/."""
    shutil.copytree(EXAMPLES, tmp_path / "docs" / "examples")
    monkeypatch.chdir(tmp_path)  # relative paths resolve as from the repository root
    monkeypatch.setattr(sys, "path", list(sys.path))  # the guide adds docs/examples
    namespace: dict[str, object] = {"__name__": "__guide__"}
    blocks = [code for mark, code in _python_blocks() if mark == "runnable"]
    for i, code in enumerate(blocks):
        exec(compile(code, f"{GUIDE.name}, runnable block {i + 1}", "exec"), namespace)  # noqa: S102
    assert namespace["primary_backup"] is example  # the guide's import found the registered module


def test_documented_suite_command_runs() -> None:
    """The guide's command puts the example into the shared suite; only the crash test skips."""
    assert SUITE_COMMAND in GUIDE.read_text()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLES)])}
    args = SUITE_COMMAND.split()[2:]  # after "PYTHONPATH=... pytest"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the assertion below shows the output
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 1 skipped" in done.stdout, done.stdout
    assert "primary_backup tolerates no crashed node" in done.stdout
