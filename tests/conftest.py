"""Shared fixtures: small scenarios that run in well under a second."""

from __future__ import annotations

from typing import Any

import pytest

from sim.config import Scenario, parse_scenario


def small_scenario(**overrides: Any) -> Scenario:
    """A 4-node full-mesh scenario; keyword overrides use dotted keys with '__' for '.'."""
    raw: dict[str, Any] = {
        "name": "small",
        "duration_s": 10.0,
        "warmup_s": 1.0,
        "seed": 7,
        "network": {"nodes": 4, "topology": "full_mesh", "latency_s": 0.01},
        "protocol": {"name": "raft", "max_block_tx": 50, "batch_timeout_s": 0.05},
        "workload": {"rate_tps": 50.0},
    }
    for key, value in overrides.items():
        table = raw
        parts = key.split("__")
        for part in parts[:-1]:
            table = table.setdefault(part, {})
        table[parts[-1]] = value
    return parse_scenario(raw, "<test>")


@pytest.fixture
def small() -> Scenario:
    return small_scenario()
