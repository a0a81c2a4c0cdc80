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
    return parse_scenario(with_overrides(raw, overrides), "<test>")


def with_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply keyword overrides to a raw scenario dict in place ('__' separates tables)."""
    for key, value in overrides.items():
        table = raw
        parts = key.split("__")
        for part in parts[:-1]:
            table = table.setdefault(part, {})
        table[parts[-1]] = value
    return raw


#: four cities with unequal delays, so the order statistics of phase mode matter
MODE_CITIES = ["Dallas", "Toronto", "London", "Tokyo"]
#: no CPU cost: phase mode is exact against message mode
ZERO_COST_NODE = {"sign_s": 0.0, "verify_s": 0.0, "hash_rate_bps": 1e30, "execute_scale": 0.0}


def modes_scenario(mode: str, n: int, protocol: dict[str, Any], **overrides: Any) -> Scenario:
    """The regional, zero-CPU-cost scenario the message-vs-phase mode tests compare
    (``overrides`` set ``duration_s``, ``workload__rate_tps`` and anything else)."""
    raw: dict[str, Any] = {
        "name": f"{protocol['name']}_modes",
        "seed": 21,
        "network": {"nodes": n, "topology": "regional", "cities": MODE_CITIES, "mode": mode},
        "node": dict(ZERO_COST_NODE),
        "protocol": dict(protocol),
        "workload": {},
    }
    return parse_scenario(with_overrides(raw, overrides), "<test>")


@pytest.fixture
def small() -> Scenario:
    return small_scenario()
