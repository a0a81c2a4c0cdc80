"""``clique``: proof of authority as specified by EIP-225 (geth's Clique), used by MedRec 2.0.

Rules followed (EIP-225, "Clique proof-of-authority consensus protocol"):

- Signers are a sorted list (all nodes, or ``signers``); the signer of block
  number b is *in turn* iff ``b mod N == its index`` and then seals with
  difficulty 2 (``DIFF_INTURN``), otherwise with difficulty 1 (``DIFF_NOTURN``).
- A block's timestamp is at least its parent's plus ``period_s`` (``BLOCK_PERIOD``,
  15 s suggested). The in-turn signer seals at that time; an out-of-turn signer
  waits a further random delay uniform in [0, N x ``wiggle_s``] (``wiggleTime`` =
  500 ms; EIP-225 says ``rand(SIGNER_COUNT * 500ms)``, geth uses
  ``(N/2 + 1) x 500 ms``), and abandons its attempt if a new head arrives.
- Signer limit: a signer may sign at most one of any ``floor(N/2) + 1``
  consecutive blocks. Checked before sealing (a recently signed signer waits) and
  on every received block (a violating block is rejected and recorded as
  ``invalid_block``), as are unknown signers, a wrong difficulty and an early
  timestamp.
- Fork choice: most total difficulty; equal difficulty -> lower block hash
  (deterministic; geth picks at random there).
- ``epoch`` (30000): every epoch-th block is a checkpoint whose header carries
  the signer list (20 bytes per signer on the wire). Nothing else: signer
  voting, which checkpoints reset, is not modelled (the signer set is fixed).

Finality: Clique has none of its own; a block is final ``confirmations`` blocks
deep (see :mod:`sim.consensus.chain`). Default 5: forks come from out-of-turn
races, which the next in-turn block (difficulty 2 against 1) settles, so honest
reorganisations are 1-2 blocks deep; 5 leaves a margin at 75 s to finality with
15 s blocks. An assumption, not a published figure.

Block timestamps are real-valued creation times (EIP-225's are whole seconds).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sim.consensus.base import ProtocolParams, register_protocol
from sim.consensus.chain import ChainParams, ChainProtocol, Entry
from sim.ledger import Block
from sim.node.context import Timer

__all__ = ["DIFF_INTURN", "DIFF_NOTURN", "Clique", "CliqueParams", "in_turn", "signer_limit"]

DIFF_INTURN = 2  # EIP-225: difficulty of a block signed in turn
DIFF_NOTURN = 1  # EIP-225: difficulty of a block signed out of turn
_ADDRESS_BYTES = 20  # one signer address in a checkpoint header
_TIME_EPS_S = 1e-9


def in_turn(number: int, signer_index: int, n_signers: int) -> bool:
    """EIP-225: the signer at ``signer_index`` (sorted list) is in turn for block ``number``."""
    return number % n_signers == signer_index


def signer_limit(n_signers: int) -> int:
    """EIP-225: a signer signs at most one of any ``floor(N/2) + 1`` consecutive blocks."""
    return n_signers // 2 + 1


class CliqueParams(ChainParams):
    """Keys of ``[protocol]`` for ``clique``."""

    name: str = "clique"
    # EIP-225 suggests 15 s (BLOCK_PERIOD); MedRec 2.0 runs Clique with period 15.
    period_s: float = Field(15.0, gt=0, description="minimum time between blocks, seconds")
    # EIP-225 suggests 30000 (EPOCH_LENGTH): checkpoints carry the signer list.
    epoch: int = Field(30000, ge=1, description="blocks between checkpoints (signer list in header)")
    # EIP-225 / geth wiggleTime = 500 ms per signer.
    wiggle_s: float = Field(0.5, ge=0, description="out-of-turn delay unit: uniform in [0, N x wiggle_s]")
    signers: list[int] | None = Field(None, description="node ids of the signers; None = every node")
    confirmations: int = Field(5, ge=0, description="blocks on top of a block before it is final")


@register_protocol
class Clique(ChainProtocol):
    """EIP-225 Clique proof of authority."""

    name = "clique"
    Params = CliqueParams
    params: CliqueParams

    @classmethod
    def _signers(cls, params: CliqueParams, n_nodes: int) -> list[int]:
        return sorted(params.signers) if params.signers is not None else list(range(n_nodes))

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, CliqueParams)
        if params.signers is None:
            return []
        problems = []
        if not params.signers:
            problems.append("signers is an empty list; give node ids or leave it out (every node signs)")
        bad = [s for s in params.signers if not 0 <= s < n_nodes]
        if bad:
            problems.append(f"signers has node ids {bad} outside 0..{n_nodes - 1}")
        if len(set(params.signers)) != len(params.signers):
            problems.append(f"signers lists a node twice: {params.signers}")
        return problems

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        # Blocks need an eligible live signer: at most limit - 1 signers signed the last
        # limit - 1 blocks, so limit live signers always leave one. With fewer, the chain stops.
        assert isinstance(params, CliqueParams)
        n_signers = len(cls._signers(params, n_nodes))
        return n_signers - signer_limit(n_signers)

    # ------------------------------------------------------------------ state

    def on_chain_start(self) -> None:
        self.signers = tuple(self._signers(self.params, self.ctx.n))
        self.signer_set = frozenset(self.signers)
        self.index = self.signers.index(self.ctx.node_id) if self.ctx.node_id in self.signer_set else None
        self.limit = signer_limit(len(self.signers))
        self.seal_timer: Timer | None = None
        self._schedule_seal()

    def on_chain_recover(self) -> None:
        self._schedule_seal()

    def leader(self) -> int | None:
        return self.signers[(self.tip.height + 1) % len(self.signers)]

    def recently_signed(self, parent: Entry, signer: int) -> bool:
        """True if ``signer`` may not sign the child of ``parent`` (signer limit)."""
        return signer in self.recent_proposers(parent, self.limit - 1)

    # ------------------------------------------------------------- chain rules

    def block_weight(self, block: Block) -> int:
        return block.round  # the header's difficulty

    def tie_break(self, candidate: Entry, current: Entry) -> bool:
        return candidate.block_hash < current.block_hash

    def extra_bytes(self, height: int) -> int:
        return _ADDRESS_BYTES * len(self.signers) if height % self.params.epoch == 0 else 0

    def validate(self, parent: Entry, block: Block) -> str | None:
        signer = block.proposer
        if signer not in self.signer_set:
            return f"unauthorized signer {signer}"
        expected = DIFF_INTURN if in_turn(block.height, self.signers.index(signer), len(self.signers)) else DIFF_NOTURN
        if block.round != expected:
            return f"difficulty {block.round}, expected {expected}"
        if block.created_s + _TIME_EPS_S < parent.created_s + self.params.period_s:
            return "timestamp earlier than parent's plus period"
        if self.recently_signed(parent, signer):
            return f"signer {signer} signed recently (limit one in {self.limit})"
        return None

    # ---------------------------------------------------------------- sealing

    def on_new_tip(self, old: Entry) -> None:
        self._schedule_seal()

    def _schedule_seal(self) -> None:
        ctx = self.ctx
        ctx.cancel_timer(self.seal_timer)
        self.seal_timer = None
        if self.index is None or self.recently_signed(self.tip, ctx.node_id):
            return  # not a signer, or must wait for others to sign
        tip = self.tip
        delay_s = max(0.0, tip.created_s + self.params.period_s - ctx.now)
        if not in_turn(tip.height + 1, self.index, len(self.signers)):
            delay_s += float(ctx.rng.uniform(0.0, len(self.signers) * self.params.wiggle_s))
        self.seal_timer = ctx.set_timer(delay_s, "seal", tip.block_hash)

    def on_timer(self, name: str, data: Any) -> None:
        if name == "seal" and data == self.tip.block_hash:
            self.seal_timer = None
            assert self.index is not None
            turn = in_turn(self.tip.height + 1, self.index, len(self.signers))
            self.produce(round=DIFF_INTURN if turn else DIFF_NOTURN)
