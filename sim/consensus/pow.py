"""``pow``: Nakamoto proof of work (Bitcoin; MedRec 1.0's private Ethereum; fork studies).

Model:

- Block discovery is a Poisson process of total rate ``1 / block_interval_s``
  split by hash share: node i finds blocks at rate ``share_i / block_interval_s``
  (equal shares by default, or ``hash_shares`` weights). Each node draws its
  time to the next block from its own stream (exponential) and builds the block,
  when that time comes, on whatever its best tip is then. The brief suggested
  re-drawing on every tip switch; by memorylessness the residual time is again
  exponential with the same rate, so both give the same process in law, and
  keeping the draw costs one event per block found instead of one per node and
  block.
- Constant difficulty (no retargeting): every block has work 1, the best chain
  is the longest; at equal length the first-seen tip stays (Bitcoin Core).
- Received blocks are verified on the CPU by the node (hashing the block and
  verifying each transaction signature; the proof of work itself is not a
  signature). A block whose timestamp precedes its parent's is rejected.
- Blocks that end up off the final chain are recorded once, by their miner, as
  ``stale_block`` (:mod:`sim.consensus.chain`).

Defaults: ``block_interval_s`` = 600 s (Bitcoin's target). A private Ethereum
(MedRec 1.0's setting) targets about 15 s: set it. ``confirmations`` = 6, the
customary Bitcoin depth (Nakamoto 2008, section 11: an attacker with 10% of the
hash power catches up from 5 blocks behind with probability below 0.1%).
The fork probability per block is about ``1 - exp(-delay / interval)``
(Decker & Wattenhofer 2013 via Croman et al. 2016, shared/reference);
tests/test_pow.py checks the simulator against it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sim.consensus.base import ProtocolParams, register_protocol
from sim.consensus.chain import ChainParams, ChainProtocol, Entry
from sim.ledger import Block

__all__ = ["Pow", "PowParams"]


class PowParams(ChainParams):
    """Keys of ``[protocol]`` for ``pow``."""

    name: str = "pow"
    # Bitcoin's target block interval is 600 s; a private Ethereum is about 15 s.
    block_interval_s: float = Field(600.0, gt=0, description="mean time between blocks over all miners, seconds")
    hash_shares: list[float] | None = Field(None, description="hash power weight per node; None = equal shares")
    # Six confirmations: the customary Bitcoin depth (Nakamoto 2008, section 11).
    confirmations: int = Field(6, ge=0, description="blocks on top of a block before it is final")


@register_protocol
class Pow(ChainProtocol):
    """Nakamoto consensus: longest chain, first seen wins a tie."""

    name = "pow"
    Params = PowParams
    params: PowParams
    seal_signatures = 0

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, PowParams)
        shares = params.hash_shares
        if shares is None:
            return []
        problems = []
        if len(shares) != n_nodes:
            problems.append(f"hash_shares has {len(shares)} weights for {n_nodes} nodes")
        if any(w < 0 for w in shares):
            problems.append(f"hash_shares has negative weights: {shares}")
        if sum(shares) <= 0:
            problems.append("hash_shares needs at least one positive weight")
        return problems

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        # Any miner alone keeps extending the chain (more slowly).
        assert isinstance(params, PowParams)
        shares = params.hash_shares or [1.0] * n_nodes
        return sum(1 for w in shares if w > 0) - 1

    def on_chain_start(self) -> None:
        shares = self.params.hash_shares or [1.0] * self.ctx.n
        #: this node's block rate, blocks per second
        self.rate_per_s = shares[self.ctx.node_id] / sum(shares) / self.params.block_interval_s
        self._arm()

    def on_chain_recover(self) -> None:
        self._arm()

    def _arm(self) -> None:
        if self.rate_per_s > 0:
            self.ctx.set_timer(float(self.ctx.rng.exponential(1.0 / self.rate_per_s)), "mine")

    def on_timer(self, name: str, data: Any) -> None:
        if name == "mine":
            self.produce()
            self._arm()

    def validate(self, parent: Entry, block: Block) -> str | None:
        if block.created_s < parent.created_s:
            return "timestamp before its parent's"
        return None
