"""``[[faults]]`` entries: every kind parses, every mistake gets a clear error before the run."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from sim.config import NetworkConfig, parse_scenario
from sim.errors import ScenarioError
from sim.faults.spec import (
    FAULT_KINDS,
    ByzantineFault,
    ChurnFault,
    CrashFault,
    DegradeFault,
    node_regions,
)
from sim.network.topology import TopologyParams, build_topology

ALL_KINDS = """
name = "every_fault"
duration_s = 30.0
[network]
nodes = 6
topology = "regional"
cities = ["Dallas", "London"]
[[faults]]
kind = "crash"
nodes = "leader"
at_s = 5.0
until_s = 8.0
[[faults]]
kind = "partition"
groups = [["London"], [0]]
at_s = 10.0
until_s = 12.0
[[faults]]
kind = "isolate"
node = 3
at_s = 13.0
[[faults]]
kind = "degrade"
regions = ["London"]
wan_only = true
loss_rate = 0.1
bandwidth_bps = 1e6
at_s = 1.0
until_s = 2.0
[[faults]]
kind = "churn"
nodes = [1, 2]
mtbf_s = 100.0
mttr_s = 5.0
max_down = 1
[[faults]]
kind = "byzantine"
nodes = [4, 5]
behaviour = "censor"
censor_origins = [0]
censor_tx_types = ["claim"]
group = "cartel"
[[faults]]
kind = "clock_skew"
nodes = [2]
drift = 0.01
offset_s = -0.5
"""


def _problems(faults: list[dict[str, Any]], **extra: Any) -> list[str]:
    raw = {
        "name": "t",
        "duration_s": 20.0,
        "network": {"nodes": 5, "topology": "regional", "cities": ["Dallas", "London"]},
        "protocol": {"name": "raft"},
        "faults": faults,
        **extra,
    }
    with pytest.raises(ScenarioError) as info:
        parse_scenario(raw)
    return info.value.problems


def test_every_kind_parses_from_toml() -> None:
    scenario = parse_scenario(tomllib.loads(ALL_KINDS))
    kinds = [f.kind for f in scenario.faults]
    assert kinds == ["crash", "partition", "isolate", "degrade", "churn", "byzantine", "clock_skew"]
    crash, _, _, degrade, churn, byz, _ = scenario.faults
    assert isinstance(crash, CrashFault) and crash.nodes == "leader" and crash.until_s == 8.0
    assert isinstance(degrade, DegradeFault) and degrade.bandwidth_bps == 1e6 and degrade.wan_only
    assert isinstance(churn, ChurnFault) and churn.at_s == 0.0 and churn.until_s is None
    assert isinstance(byz, ByzantineFault) and byz.group == "cartel" and byz.corrupt == "merkle_root"
    # the resolved scenario (manifest) round-trips
    assert parse_scenario(scenario.resolved()).faults == scenario.faults


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ([{"kind": "crash", "nodes": [7], "at_s": 3}], "faults[0] (crash): node ids [7] do not exist (nodes are 0..4)"),
        ([{"kind": "crash", "nodes": [1], "at_s": 30}], "faults[0] (crash): at_s = 30.0 is not inside the run (duration_s = 20.0)"),
        ([{"kind": "crash", "nodes": [1], "at_s": 3, "until_s": 25}], "faults[0] (crash): until_s = 25.0 is after the run ends"),
        ([{"kind": "crash", "nodes": [1], "at_s": 3, "until_s": 2}], "faults[0] (crash): until_s = 2.0 must be after at_s = 3.0"),
        ([{"kind": "crash", "nodes": [1], "at_s": 3, "untill_s": 5}], "faults[0] (crash).untill_s: unknown key (did you mean 'until_s'?)"),
        ([{"kind": "crsh", "nodes": [1], "at_s": 3}], "faults[0].kind = 'crsh': unknown fault kind (did you mean 'crash'?)"),
        ([{"nodes": [1], "at_s": 3}], "faults[0].kind: required, but missing; one of crash, partition"),
        ([{"kind": "partition", "groups": [["Paris"]], "at_s": 3}], "faults[0] (partition): unknown regions ['Paris']; this network's regions: Dallas, London"),
        ([{"kind": "partition", "groups": [[0, 1], [1, 2]], "at_s": 3}], "faults[0] (partition): nodes [1] are in more than one group"),
        ([{"kind": "partition", "groups": [[0, 1, 2, 3, 4]], "at_s": 3}], "a partition needs at least two"),
        ([{"kind": "isolate", "node": 9, "at_s": 3}], "faults[0] (isolate): node ids [9] do not exist"),
        ([{"kind": "degrade", "at_s": 3}], "a degrade needs at least one of extra_delay_s"),
        ([{"kind": "degrade", "nodes": [1], "regions": ["Dallas"], "loss_rate": 0.1, "at_s": 3}], "give at most one of nodes, regions, links"),
        ([{"kind": "degrade", "links": [[0, 8]], "loss_rate": 0.1, "at_s": 3}], "node ids [8] do not exist"),
        ([{"kind": "churn", "mtbf_s": 0, "mttr_s": 1}], "mtbf_s = 0: Input should be greater than 0"),
        ([{"kind": "byzantine", "nodes": [1], "behaviour": "delay"}], 'behaviour = "delay" needs delay_s'),
        ([{"kind": "byzantine", "nodes": [1], "behaviour": "silent", "delay_s": 1}], 'delay_s is only for behaviour = "delay"'),
        ([{"kind": "byzantine", "nodes": [1], "behaviour": "censor"}], 'behaviour = "censor" needs censor_origins or censor_tx_types'),
        ([{"kind": "byzantine", "nodes": [1], "behaviour": "silent", "corrupt": "parent"}], 'corrupt is only for behaviour = "invalid"'),
        ([{"kind": "byzantine", "nodes": [1], "behaviour": "censor", "censor_tx_types": ["x"]}], "unknown transaction types ['x']"),
        ([{"kind": "byzantine", "nodes": [1], "behaviour": "censor", "censor_origins": [6]}], "node ids [6] do not exist"),
        ([{"kind": "byzantine", "nodes": [1], "behaviour": "sielnt"}], "behaviour = 'sielnt': Input should be 'silent'"),
        (
            [{"kind": "byzantine", "nodes": [1], "behaviour": "silent"}, {"kind": "byzantine", "nodes": [1], "behaviour": "delay", "delay_s": 1, "at_s": 2}],
            "faults[1] (byzantine): node 1 is already Byzantine in faults[0] at that time",
        ),
        ([{"kind": "clock_skew", "nodes": [1]}], "a clock_skew needs a non-zero offset_s or drift"),
        ([{"kind": "clock_skew", "nodes": [1], "drift": -1.0}], "drift = -1.0: Input should be greater than -1"),
    ],
)
def test_faults_that_cannot_apply_are_rejected_with_a_clear_message(faults: list[dict[str, Any]], expected: str) -> None:
    problems = _problems(faults)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems([{"kind": "crash", "nodes": [7], "at_s": 30}, {"kind": "isolate", "node": 9, "at_s": 1}])
    assert len(problems) == 3


def test_strict_mode_rejects_faults_beyond_tolerance() -> None:
    # raft with 5 nodes tolerates 2 faulty nodes and no Byzantine node
    too_many = [{"kind": "crash", "nodes": [1, 2], "at_s": 3}, {"kind": "partition", "groups": [["Dallas"]], "at_s": 4, "until_s": 6}]
    problems = _problems(too_many, strict_faults=True)
    assert problems == [
        (
            "strict_faults: from t = 4.0 s, up to 3 nodes are faulty at once (faults[0] crash: 2; faults[1] partition: 2), "
            "but raft with 5 nodes tolerates 2"
        )
    ]
    assert _problems([{"kind": "byzantine", "nodes": [1], "behaviour": "silent"}], strict_faults=True) == [
        "strict_faults: from t = 0.0 s, 1 nodes are Byzantine, but raft with 5 nodes tolerates 0"
    ]
    churn = [{"kind": "churn", "mtbf_s": 10, "mttr_s": 1}, {"kind": "crash", "nodes": "leader", "at_s": 1}]
    # an uncapped churn may take every node down
    assert [p.split(",")[1] for p in _problems(churn, strict_faults=True)] == [
        " up to 5 nodes are faulty at once (faults[0] churn: up to 5)",
        " up to 5 nodes are faulty at once (faults[1] crash: 1; faults[0] churn: up to 5)",
    ]


def test_strict_mode_accepts_faults_within_tolerance_and_lenient_mode_accepts_more() -> None:
    base: dict[str, Any] = {"name": "t", "network": {"nodes": 5, "topology": "regional", "cities": ["Dallas", "London"]}}
    within = [
        {"kind": "crash", "nodes": [1, 2], "at_s": 3, "until_s": 5},
        {"kind": "partition", "groups": [["London"]], "at_s": 5, "until_s": 8},  # London = nodes 1, 3
        {"kind": "churn", "nodes": [3, 4], "mtbf_s": 10, "mttr_s": 1, "max_down": 1, "at_s": 9},
        {"kind": "isolate", "node": "leader", "at_s": 9},
        {"kind": "degrade", "loss_rate": 0.5, "at_s": 1},
    ]
    assert len(parse_scenario({**base, "faults": within, "strict_faults": True}).faults) == 5
    beyond = [{"kind": "crash", "nodes": [0, 1, 2, 3], "at_s": 3}]
    assert parse_scenario({**base, "faults": beyond}).faults[0].nodes == [0, 1, 2, 3]


@pytest.mark.parametrize("topology", ["regional", "scale_free", "full_mesh", "random_geometric"])
def test_node_regions_match_the_topology_builders(topology: str) -> None:
    net = NetworkConfig(nodes=11, topology=topology, cities=["Tokyo", "Madrid", "Dallas"])
    built = build_topology(topology, 11, TopologyParams(cities=("Tokyo", "Madrid", "Dallas")), np.random.default_rng(0))
    assert node_regions(net) == built.region


def test_hcsim_list_faults_names_every_kind_and_key() -> None:
    out = CliRunner().invoke(main, ["list", "faults"])
    assert out.exit_code == 0
    for kind, model in FAULT_KINDS.items():
        assert f"\n{kind}: " in out.output
        for key in model.model_fields:
            if key != "kind":
                assert f"    {key} " in out.output


def test_a_bad_fault_fails_the_cli_before_anything_is_written(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('name = "bad"\n[[faults]]\nkind = "crash"\nnodes = [99]\nat_s = 1.0\n', encoding="utf-8")
    out = CliRunner().invoke(main, ["run", str(scenario), "--out", str(tmp_path / "res"), "--quiet"])
    assert out.exit_code == 2
    assert "faults[0] (crash): node ids [99] do not exist (nodes are 0..15)" in out.output
    assert not (tmp_path / "res").exists()


def test_every_shipped_fault_scenario_is_valid() -> None:
    paths = sorted(Path("experiments").glob("faults_*.toml"))
    assert len(paths) >= 8
    for path in paths:
        assert sim.load_scenario(path).faults, path
