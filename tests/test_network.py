"""Link model: propagation plus FIFO uplink serialization, loss, partitions, accounting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import simpy

from sim.consensus.base import Message
from sim.network.network import Network


@dataclass(frozen=True, slots=True)
class Blob(Message):
    size: int

    def size_bytes(self) -> int:
        return self.size


def _net(loss: float = 0.0) -> tuple[simpy.Environment, Network, list[tuple[float, int, int]]]:
    env = simpy.Environment()
    arrivals: list[tuple[float, int, int]] = []
    delay = np.full((3, 3), 0.05)
    np.fill_diagonal(delay, 0.0)
    net = Network(env, delay, 8e6, 0.0, loss, np.random.default_rng(1),
                  deliver=lambda s, d, m: arrivals.append((env.now, s, d)), on_tx_drop=lambda *a: None)
    return env, net, arrivals


def test_serialization_queues_on_the_sender_uplink() -> None:
    env, net, arrivals = _net()
    net.send(0, 1, Blob(1_000_000))  # 1 MB at 8 Mbit/s: 1 s on the wire
    net.send(0, 2, Blob(1_000_000))  # waits for the first
    env.run()
    assert arrivals == [(pytest.approx(1.05), 0, 1), (pytest.approx(2.05), 0, 2)]
    assert net.totals() == (2, 2_000_000)


def test_partition_and_down_nodes_drop() -> None:
    env, net, arrivals = _net()
    net.group[2] = 1
    net.send(0, 2, Blob(100))
    net.up[1] = False
    net.send(0, 1, Blob(100))
    env.run()
    assert arrivals == []
    assert net.dropped == {(0, "Blob"): 2}


def test_loss_rate_is_respected() -> None:
    env, net, arrivals = _net(loss=0.25)
    for _ in range(4000):
        net.send(0, 1, Blob(10))
    env.run()
    lost = 1 - len(arrivals) / 4000
    assert lost == pytest.approx(0.25, abs=4 * np.sqrt(0.25 * 0.75 / 4000))  # 4 binomial sigmas
