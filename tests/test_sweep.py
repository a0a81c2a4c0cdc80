"""Sweeps: grid expansion, seeds and run ids, up-front validation, identical results on every
executor (serial, process pool, Dask LocalCluster), resume after SIGKILL and Ctrl-C, failed and
timed-out runs recorded while the rest complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.consensus import base as protocol_base
from sim.consensus.base import Message, Protocol, ProtocolParams
from sim.errors import HcsimError, ScenarioError
from sim.experiment.executors import DaskExecutor, ProcessExecutor, SerialExecutor
from sim.experiment.store import write_run
from sim.experiment.sweep import (
    NONDETERMINISTIC_COLUMNS,
    RunStore,
    plan_sweep,
    replication_seed,
    run_key,
    run_sweep,
)
from sim.rng import derive_seed

ROOT = Path(__file__).resolve().parents[1]


def _sweep_raw(**sweep: Any) -> dict[str, Any]:
    return {
        "name": "tiny",
        "duration_s": 4.0,
        "warmup_s": 1.0,
        "seed": 5,
        "network": {"nodes": 3, "topology": "full_mesh", "latency_s": 0.01},
        "protocol": {"name": "raft", "max_block_tx": 50, "batch_timeout_s": 0.05},
        "workload": {"rate_tps": 40.0},
        "sweep": sweep,
    }


GRID = {"grid": {"protocol.name": ["solo", "raft"], "network.nodes": [3, 4]}, "replications": 2}


def _comparable(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.drop(columns=list(NONDETERMINISTIC_COLUMNS)).reset_index(drop=True)


# ------------------------------------------------------------------ planning


def test_grid_zip_replications_expand_in_order_with_stable_seeds() -> None:
    raw = _sweep_raw(
        grid={"protocol.name": ["solo", "raft"], "network.nodes": [3, 4]},
        zip={"workload.rate_tps": [20.0, 40.0], "metrics.throughput_bin_s": [1.0, 2.0]},
        replications=2,
    )
    plan = plan_sweep(raw)
    assert plan.params == ["protocol.name", "network.nodes", "workload.rate_tps", "metrics.throughput_bin_s"]
    assert len(plan.points) == 8 and len(plan.specs) == 16
    assert plan.points[0] == {"protocol.name": "solo", "network.nodes": 3, "workload.rate_tps": 20.0, "metrics.throughput_bin_s": 1.0}
    assert plan.points[1] == {"protocol.name": "solo", "network.nodes": 3, "workload.rate_tps": 40.0, "metrics.throughput_bin_s": 2.0}
    assert plan.points[7] == {"protocol.name": "raft", "network.nodes": 4, "workload.rate_tps": 40.0, "metrics.throughput_bin_s": 2.0}
    # Common random numbers: replication r has the same seed at every point, derived by name.
    assert {s.seed for s in plan.specs if s.replication == 0} == {derive_seed(5, "replication/0")}
    assert len({s.run_id for s in plan.specs}) == 16
    spec = plan.specs[0]
    assert spec.scenario["seed"] == spec.seed and spec.scenario["sweep"] is None
    # A point that switches protocol gets that protocol's defaults, not raft's keys.
    assert "election_timeout_min_s" not in spec.scenario["protocol"]
    assert "election_timeout_min_s" in plan.specs[-1].scenario["protocol"]


def test_seeds_and_run_keys_are_fixed_numbers_on_every_machine() -> None:
    # SHA-256 based, never hash(): pinned values catch any change of scheme.
    assert replication_seed(1, 0) == derive_seed(1, "replication/0") == 8874684933823451672
    assert run_key({"name": "a", "seed": 3, "network": {"nodes": 4}}) == run_key({"network": {"nodes": 4}, "seed": 3, "name": "b"})
    assert run_key({"seed": 3, "network": {"nodes": 4}}) == "ef0c4c0252f0c578"


def test_toml_dotted_grid_keys_are_flattened(tmp_path: Path) -> None:
    text = (ROOT / "experiments" / "scalability.toml").read_text()
    assert "network.nodes = [" in text  # written unquoted, which TOML nests as tables
    plan = plan_sweep(ROOT / "experiments" / "scalability.toml")
    assert plan.params == ["network.nodes", "protocol"]  # grid keys, then zip keys
    assert len(plan.points) == 15 and len(plan.specs) == 45
    # a zipped whole [protocol] table carries that protocol's own keys only
    assert plan.points[4]["protocol"] == {"name": "clique", "max_block_tx": 500, "batch_timeout_s": 0.1, "period_s": 1.0}
    assert plan.specs[3 * 4].scenario["protocol"]["period_s"] == 1.0 and plan.specs[3 * 4].scenario["network"]["nodes"] == 4


def test_invalid_grid_is_an_error_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as typo:
        plan_sweep(_sweep_raw(grid={"network.nodez": [3, 4]}))
    assert "every point: network.nodez: unknown key (did you mean 'nodes'?)" in str(typo.value)
    with pytest.raises(ScenarioError) as bad:
        plan_sweep(_sweep_raw(grid={"network.nodes": [3, 0]}))
    assert "point {network.nodes=0}: network.nodes = 0" in str(bad.value)
    with pytest.raises(ScenarioError, match="the seed comes from replications"):
        plan_sweep(_sweep_raw(grid={"seed": [1, 2]}))
    with pytest.raises(ScenarioError, match="zip lists must have equal lengths"):
        plan_sweep(_sweep_raw(zip={"network.nodes": [3, 4], "workload.rate_tps": [1.0]}))
    with pytest.raises(ScenarioError, match="are the same scenario"):
        plan_sweep(_sweep_raw(grid={"network.nodes": [3, 3]}))
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "x"\n[protocol]\nname = "solo"\n[sweep.grid]\nnetwork.nodez = [3, 4]\n')
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["sweep", str(scenario), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 2 and "did you mean 'nodes'" in result.output
    assert not out.exists()
    no_sweep = CliRunner().invoke(main, ["sweep", str(ROOT / "experiments" / "quickstart.toml"), "--out", str(out)])
    assert no_sweep.exit_code == 2 and "no [sweep] table" in no_sweep.output and not out.exists()


# ---------------------------------------------------------------- executors


def test_serial_process_pool_and_dask_give_identical_runs(tmp_path: Path) -> None:
    raw = _sweep_raw(**GRID)
    serial = run_sweep(raw, tmp_path / "serial", SerialExecutor())
    with ProcessExecutor(2) as pool:
        pooled = run_sweep(raw, tmp_path / "pool", pool)
    # processes=True: real worker processes, as on a cluster (about 3 s to start here).
    with DaskExecutor(local_workers=2, processes=True) as dask:
        distributed = run_sweep(raw, tmp_path / "dask", dask)
    assert serial.progress.ok == pooled.progress.ok == distributed.progress.ok == 8
    expected = _comparable(serial.runs)
    assert expected["status"].eq("ok").all() and expected["committed"].gt(0).all()
    pd.testing.assert_frame_equal(_comparable(pooled.runs), expected)
    pd.testing.assert_frame_equal(_comparable(distributed.runs), expected)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask" / "runs.parquet").pipe(_comparable), expected)
    run_id = expected["run_id"].iloc[5]
    tx = [pd.read_parquet(tmp_path / d / "runs" / run_id / "transactions.parquet") for d in ("serial", "pool", "dask")]
    pd.testing.assert_frame_equal(tx[0], tx[1])
    pd.testing.assert_frame_equal(tx[0], tx[2])
    points = serial.points
    assert list(points["runs"]) == [2] * 4 and list(points["failed"]) == [0] * 4
    first = expected[expected["point"] == 0]["throughput_tps"]
    assert points.loc[0, "throughput_tps_mean"] == pytest.approx(first.mean())
    # Student t with 1 degree of freedom: 12.706 * sd / sqrt(2)
    assert points.loc[0, "throughput_tps_ci95"] == pytest.approx(12.7062 * first.std(ddof=1) / 2**0.5, rel=1e-4)


def _exit_on_two(item: int) -> int:
    if item == 2:
        os._exit(1)  # a worker process dying mid-run (out of memory, killed)
    return item * 10


def test_a_dead_worker_loses_only_unfinished_items() -> None:
    with ProcessExecutor(1) as pool:
        results = dict(pool.map(_exit_on_two, [1, 2, 3]))
    assert isinstance(results[2], BaseException)
    assert all(v == k * 10 or isinstance(v, BaseException) for k, v in results.items())


# -------------------------------------------------------------------- resume


def _scenario_file(tmp_path: Path, replications: int, duration_s: float) -> Path:
    path = tmp_path / "resume.toml"
    path.write_text(
        f"""name = "resume"
duration_s = {duration_s}
warmup_s = 1.0
seed = 2
[network]
nodes = 4
topology = "full_mesh"
[protocol]
name = "raft"
[workload]
rate_tps = 100.0
[sweep]
replications = {replications}
[sweep.grid]
protocol.name = ["solo", "raft"]
network.nodes = [3, 5]
"""
    )
    return path


def _sweep_process(scenario: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sim.cli", "sweep", str(scenario), "--out", str(out), "--workers", "1", "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finished_summaries(out: Path) -> list[Path]:
    """Summaries of finished runs; a run being written lives in a hidden temporary folder."""
    return [p for p in (out / "runs").glob("*/summary.json") if not p.parent.name.startswith(".")]


def _wait_for_runs(out: Path, count: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(_finished_summaries(out)) >= count:
            return
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    raise AssertionError("the sweep did not finish runs in time")


def test_sigkill_mid_sweep_then_rerun_completes_every_run_once(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path, replications=3, duration_s=6.0)
    out = tmp_path / "sweep"
    proc = _sweep_process(scenario, out)
    _wait_for_runs(out, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in _finished_summaries(out)}
    assert 3 <= len(finished) < 12, "killed too late to test resuming"
    # Nothing half-written is visible: every run folder is complete.
    for folder in (out / "runs").iterdir():
        if not folder.name.startswith("."):
            assert (folder / "summary.json").is_file() and (folder / "transactions.parquet").is_file()
    result = run_sweep(scenario, out, SerialExecutor())
    assert result.progress.skipped == len(finished) and result.progress.ok == 12 - len(finished)
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 12 and runs["run_id"].is_unique and runs["status"].eq("ok").all()
    assert sorted(zip(runs["point"], runs["replication"])) == [(p, r) for p in range(4) for r in range(3)]
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]  # partial writes cleaned
    for run_id, mtime in finished.items():  # finished runs were not redone
        assert (out / "runs" / run_id / "summary.json").stat().st_mtime_ns == mtime
    fresh = run_sweep(scenario, tmp_path / "fresh", SerialExecutor())
    pd.testing.assert_frame_equal(_comparable(fresh.runs), _comparable(runs))


def test_ctrl_c_saves_the_tables_of_what_finished(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path, replications=3, duration_s=6.0)
    out = tmp_path / "sweep"
    proc = _sweep_process(scenario, out)
    _wait_for_runs(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert b"run the same command again to resume" in stderr
    runs = pd.read_parquet(out / "runs.parquet")
    assert 2 <= len(runs) < 12 and runs["status"].eq("ok").all()
    assert len(runs) == len(_finished_summaries(out))


# ------------------------------------------------------------------ failures


class _BoomParams(ProtocolParams):
    name: str = "test_boom"


class _Boom(Protocol):
    """Test-only protocol: raises during the simulation, at the first transaction."""

    name = "test_boom"
    Params = _BoomParams

    def on_transaction(self, tx: Any) -> None:
        raise RuntimeError(f"boom at {self.ctx.now:.3f} s")

    def on_message(self, src: int, msg: Message) -> None:
        pass


class _Stuck(Protocol):
    """Test-only protocol: re-arms a zero-delay timer forever, so simulated time never advances."""

    name = "test_stuck"
    Params = _BoomParams

    def on_start(self) -> None:
        self.ctx.set_timer(0.0, "again")

    def on_timer(self, name: str, data: Any) -> None:
        self.ctx.set_timer(0.0, "again")

    def on_transaction(self, tx: Any) -> None:
        pass

    def on_message(self, src: int, msg: Message) -> None:
        pass


def test_a_run_that_raises_is_recorded_and_the_others_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(protocol_base._REGISTRY, "test_boom", _Boom)
    raw = _sweep_raw(grid={"protocol.name": ["solo", "test_boom"], "network.nodes": [3, 4]}, replications=2)
    raw["protocol"] = {"name": "solo", "max_block_tx": 50}
    result = run_sweep(raw, tmp_path / "s", SerialExecutor())
    assert (result.progress.ok, result.progress.failed) == (4, 4)
    runs = pd.read_parquet(tmp_path / "s" / "runs.parquet")
    failed = runs[runs["protocol.name"] == "test_boom"]
    assert failed["status"].eq("failed").all() and failed["throughput_tps"].isna().all()
    assert failed["error"].str.fullmatch(r"RuntimeError: boom at \d\.\d{3} s").all()
    assert runs[runs["protocol.name"] == "solo"]["status"].eq("ok").all()
    points = pd.read_parquet(tmp_path / "s" / "points.parquet")
    assert list(points["runs"]) == [2, 2, 0, 0] and list(points["failed"]) == [0, 0, 2, 2]
    assert (tmp_path / "s" / "runs" / failed["run_id"].iloc[0] / "error.json").is_file()
    # Re-running skips recorded failures, unless asked to retry them.
    again = run_sweep(raw, tmp_path / "s", SerialExecutor())
    assert (again.progress.skipped, again.progress.failed) == (8, 0)
    retried = run_sweep(raw, tmp_path / "s", SerialExecutor(), retry_failed=True)
    assert (retried.progress.skipped, retried.progress.failed) == (4, 4)
    cli = CliRunner().invoke(main, ["sweep", "--workers", "1", "--quiet", "--out", str(tmp_path / "s"), str(_write_toml(tmp_path, raw))])
    assert cli.exit_code == 1 and "failed: run" in cli.output and "RuntimeError: boom" in cli.output


def _write_toml(tmp_path: Path, raw: dict[str, Any]) -> Path:
    grid = raw["sweep"]["grid"]
    lines = [f'name = "{raw["name"]}"', f"duration_s = {raw['duration_s']}", f"warmup_s = {raw['warmup_s']}", f"seed = {raw['seed']}"]
    lines += ["[network]", 'topology = "full_mesh"', "latency_s = 0.01", "[protocol]", 'name = "solo"', "max_block_tx = 50"]
    lines += ["[workload]", "rate_tps = 40.0", "[sweep]", f"replications = {raw['sweep']['replications']}", "[sweep.grid]"]
    lines += [f'"protocol.name" = {grid["protocol.name"]!r}'.replace("'", '"'), f'"network.nodes" = {grid["network.nodes"]!r}']
    path = tmp_path / "boom.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_stuck_run_times_out_as_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(protocol_base._REGISTRY, "test_stuck", _Stuck)
    raw = _sweep_raw(grid={"protocol.name": ["solo", "test_stuck"]}, replications=1)
    raw["protocol"] = {"name": "solo"}
    result = run_sweep(raw, tmp_path / "s", SerialExecutor(), run_timeout_s=0.5)
    runs = result.runs.set_index("protocol.name")
    assert runs.loc["solo", "status"] == "ok"
    assert runs.loc["test_stuck", "status"] == "failed"
    assert runs.loc["test_stuck", "error"].startswith("RunTimeout: wall-clock limit exceeded at simulated time 0.000000 s")


# ------------------------------------------------------------------- safety


def test_one_writer_per_folder_and_runs_never_replace_a_sweep(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s")
    with store.locked():
        rival = RunStore(tmp_path / "s")  # a second process's store on the same folder
        with pytest.raises(HcsimError, match="another hcsim process"), rival.locked():
            pass
    result = run_sweep(_sweep_raw(grid={"network.nodes": [3]}, replications=1), tmp_path / "s", SerialExecutor())
    one = result.folder / "runs" / result.runs["run_id"].iloc[0]
    from sim.experiment.store import read_run

    with pytest.raises(HcsimError, match="holds a sweep or capacity search"):
        write_run(read_run(one), tmp_path / "s")
    with pytest.raises(HcsimError, match="single run"), RunStore(one).locked():
        pass
    cli = CliRunner().invoke(main, ["run", str(ROOT / "experiments" / "quickstart.toml"), "--out", str(tmp_path / "s"), "--quiet"])
    assert cli.exit_code == 2 and "holds a sweep" in cli.output and (tmp_path / "s" / "runs.parquet").is_file()
