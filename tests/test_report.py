"""Reports: figures and one self-contained HTML page for a run, a sweep and a capacity search;
the network map is the run's own topology, rebuilt from the manifest's scenario and seed."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from sim.experiment.capacity import find_capacity
from sim.experiment.executors import SerialExecutor
from sim.experiment.simulation import Simulation, scenario_topology
from sim.experiment.store import write_run
from sim.experiment.sweep import run_sweep
from sim.plots import metric_vs_parameter, node_roles
from sim.rng import RandomStreams
from tests.conftest import small_scenario

IMG = re.compile(r'<img alt="([a-z_0-9]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _self_contained(page: str) -> list[str]:
    """Names of the embedded images; fails on any reference to an outside file or URL."""
    assert not re.search(r'(src|href)="(?!data:)', page)
    images = IMG.findall(page)
    assert all(len(data) > 2000 for _, data in images)
    return [name for name, _ in images]


def test_run_report(tmp_path: Path) -> None:
    scenario = small_scenario(duration_s=6.0, network__nodes=5, network__topology="regional",
                              network__cities=["Dallas", "London"], protocol__name="raft")
    folder = write_run(sim.run(scenario), tmp_path / "run")
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    page = (folder / "report.html").read_text()
    assert _self_contained(page) == ["throughput", "latency_cdf", "node_load", "network_map"]
    for name in ("throughput", "latency_cdf", "node_load", "network_map"):
        assert (folder / "figures" / f"{name}.png").stat().st_size > 5000
        assert (folder / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    assert "throughput_tps" in page and "safety_violations" in page


def test_network_map_redraws_the_runs_own_random_topology() -> None:
    scenario = small_scenario(network__nodes=12, network__topology="scale_free", network__degree=4, seed=9)
    built = Simulation(scenario).topology
    again = scenario_topology(scenario, RandomStreams(9))
    assert sorted(again.graph.edges) == sorted(built.graph.edges)
    np.testing.assert_array_equal(again.delay_s, built.delay_s)
    other = scenario_topology(scenario, RandomStreams(10))
    assert sorted(other.graph.edges) != sorted(built.graph.edges)  # the seed matters, so reusing it matters


def test_node_roles_from_the_blocks_table() -> None:
    blocks = pd.DataFrame({"proposer": [2, 2, 2, 0, 2]})
    assert node_roles(4, blocks) == ["proposer", "replica", "leader", "replica"]
    assert node_roles(2, None) == ["replica", "replica"]


def test_metric_vs_parameter_draws_a_line_and_band_per_protocol() -> None:
    points = pd.DataFrame({
        "network.nodes": [4, 8, 4, 8], "protocol.name": ["solo", "solo", "raft", "raft"],
        "latency_p99_s_mean": [0.1, 0.2, 0.3, 0.4], "latency_p99_s_ci95": [0.01, 0.02, np.nan, 0.04],
    })
    ax = metric_vs_parameter(points, "network.nodes", "latency_p99_s", hue="protocol.name")
    assert [line.get_label() for line in ax.lines] == ["solo", "raft"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.3, 0.4])
    assert len(ax.collections) == 2  # one confidence band per protocol
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.09) and band.max() == pytest.approx(0.22)
    plt.close(ax.figure)
    bars = metric_vs_parameter(points, "protocol.name", "latency_p99_s", hue="network.nodes")
    assert len(bars.patches) == 4
    plt.close(bars.figure)


def test_sweep_and_capacity_reports(tmp_path: Path) -> None:
    raw = {
        "name": "rep", "duration_s": 4.0, "warmup_s": 1.0, "seed": 2,
        "network": {"nodes": 3, "topology": "full_mesh", "latency_s": 0.01},
        "protocol": {"name": "raft"}, "workload": {"rate_tps": 30.0},
        "sweep": {"grid": {"protocol.name": ["solo", "raft"], "network.nodes": [3, 5]}, "replications": 2},
    }
    sweep = run_sweep(raw, tmp_path / "sweep", SerialExecutor())
    result = CliRunner().invoke(main, ["report", str(sweep.folder)])
    assert result.exit_code == 0, result.output
    page = (sweep.folder / "report.html").read_text()
    names = _self_contained(page)
    assert "throughput_tps_vs_network_nodes" in names and "latency_p99_s_vs_network_nodes" in names
    assert (sweep.folder / "figures" / "latency_p99_s_vs_network_nodes.svg").is_file()
    assert "Points (mean and 95% CI" in page and page.count("<tr>") >= 4

    capacity = find_capacity(
        {**{k: v for k, v in raw.items() if k != "sweep"}, "protocol": {"name": "solo", "max_block_tx": 1, "batch_timeout_s": 0.0},
         "network": {"nodes": 1, "topology": "full_mesh"}, "node": {"execute_scale": 100.0}},
        "workload.rate_tps", ["latency_p99_s<=0.5"], replications=1, rel_tol=0.2, out=tmp_path / "cap",
    )
    assert capacity.status == "found"
    result = CliRunner().invoke(main, ["report", str(tmp_path / "cap")])
    assert result.exit_code == 0, result.output
    assert _self_contained((tmp_path / "cap" / "report.html").read_text()) == ["capacity_throughput_tps", "capacity_latency_p99_s"]


def test_report_on_a_folder_that_is_not_results(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "is not a results folder" in result.output
