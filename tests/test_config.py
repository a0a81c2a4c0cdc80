"""Scenario validation: every bad input gets one clear message naming field, value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.config import apply_overrides, load_scenario, parse_scenario
from sim.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "experiments" / "quickstart.toml"


def _problems(raw: dict) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"name": "t", **raw}, "<test>")
    return str(info.value)


def test_quickstart_loads_with_defaults_filled() -> None:
    s = load_scenario(QUICKSTART)
    resolved = s.resolved()
    assert resolved["network"]["nodes"] == 16
    assert resolved["protocol"]["election_timeout_min_s"] == 0.150  # raft default, resolved
    assert resolved["node"]["verify_s"] == 69e-6


def test_unknown_key_suggests_the_right_one() -> None:
    message = _problems({"network": {"nodez": 3}})
    assert "network.nodez" in message and "did you mean 'nodes'" in message


def test_unknown_protocol_key_is_checked_against_that_protocol() -> None:
    message = _problems({"protocol": {"name": "raft", "heartbeat": 0.1}})
    assert "protocol.heartbeat" in message and "heartbeat_s" in message


def test_wrong_type_names_field_and_value() -> None:
    message = _problems({"network": {"nodes": "many"}})
    assert "network.nodes = 'many'" in message


def test_negative_rate() -> None:
    message = _problems({"workload": {"rate_tps": -5}})
    assert "workload.rate_tps = -5" in message and "greater than or equal to 0" in message


def test_unknown_protocol_lists_known() -> None:
    message = _problems({"protocol": {"name": "rafty"}})
    assert "unknown protocol 'rafty'" in message and "did you mean 'raft'" in message and "solo" in message


def test_unknown_topology_and_city() -> None:
    assert "unknown topology 'mesh'" in _problems({"network": {"topology": "mesh"}})
    assert "Atlantis" in _problems({"network": {"cities": ["Dallas", "Atlantis"]}})


def test_warmup_not_below_duration() -> None:
    assert "warmup_s = 10.0 must be less than duration_s = 10.0" in _problems({"duration_s": 10.0, "warmup_s": 10.0})


def test_several_problems_reported_together() -> None:
    message = _problems({"network": {"nodez": 3}, "workload": {"rate_tps": -1}})
    assert "network.nodez" in message and "workload.rate_tps" in message


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(ROOT / "experiments" / "nope.toml")


def test_toml_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ScenarioError, match="TOML syntax error"):
        load_scenario(bad)


def test_overrides_parse_values_and_create_tables() -> None:
    raw = apply_overrides({"name": "x"}, ["network.nodes=32", "protocol.name=solo", "network.cities=['Dallas']"])
    assert raw == {"name": "x", "network": {"nodes": 32, "cities": ["Dallas"]}, "protocol": {"name": "solo"}}
    s = load_scenario(QUICKSTART, ["network.nodes=32", "protocol.name=solo"])
    assert s.network.nodes == 32 and s.protocol.name == "solo"


def test_malformed_override() -> None:
    with pytest.raises(ScenarioError, match="dotted.key=value"):
        apply_overrides({}, ["network.nodes"])
    with pytest.raises(ScenarioError, match="is a value, not a table"):
        apply_overrides({"name": "x"}, ["name.first=1"])


def test_origins_outside_network() -> None:
    assert "outside 0..3" in _problems({"network": {"nodes": 4}, "workload": {"origins": [1, 9]}})
