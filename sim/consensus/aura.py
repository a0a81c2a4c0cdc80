"""``aura``: Authority Round proof of authority (OpenEthereum / Parity Aura engine).

Rules followed (OpenEthereum ``ethcore/src/engines/authority_round``):

- Time is cut into steps (slots) of ``step_s``; slot s covers [s x step_s,
  (s+1) x step_s). Its author is ``validators[s mod N]``. At the start of its
  own slot a validator seals one block on its best chain (empty blocks
  included, as Aura does by default), with the slot in the header (``round``).
- A received block is rejected (and recorded as ``invalid_block``) if its
  author is not the slot's, its slot is not after its parent's, its slot has
  not begun yet, or the author already produced another block for that slot
  (two blocks in one slot: equivocation).
- Fork choice: longest chain, then the lower tip slot (OpenEthereum scores a
  chain by height and then by fewer skipped steps), then the lower hash.
- A crashed validator's slots stay empty and the others carry on: the chain
  grows as long as one validator is up (``crash_tolerance`` = validators - 1).

Finality: OpenEthereum's rolling finality (a block is final once more than half
of the validators built on it) is replaced by a depth rule: final at
``confirmations`` blocks (:mod:`sim.consensus.chain`). Default 5: at least a
majority of 8 validators, and with honest validators forks need a propagation
delay above ``step_s``, so depth-1 reorganisations are the norm. An assumption.

Not modelled: empty-step messages, validator-set contracts and reporting of
misbehaving validators, clock drift (every node's clock is exact).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from sim.consensus.base import ProtocolParams, register_protocol
from sim.consensus.chain import ChainParams, ChainProtocol, Entry
from sim.ledger import Block

__all__ = ["Aura", "AuraParams", "slot_author"]

_TIME_EPS_S = 1e-9


def slot_author(slot: int, validators: tuple[int, ...] | list[int]) -> int:
    """Aura: the validator allowed to seal in ``slot``."""
    return validators[slot % len(validators)]


class AuraParams(ChainParams):
    """Keys of ``[protocol]`` for ``aura``."""

    name: str = "aura"
    # Step durations of a few seconds are common in Aura chains (shared/reference).
    step_s: float = Field(5.0, gt=0, description="slot (step) duration, seconds")
    validators: list[int] | None = Field(None, description="node ids of the validators in order; None = every node")
    confirmations: int = Field(5, ge=0, description="blocks on top of a block before it is final")


@register_protocol
class Aura(ChainProtocol):
    """Authority Round: one author per time slot, round robin."""

    name = "aura"
    Params = AuraParams
    params: AuraParams

    @classmethod
    def _validators(cls, params: AuraParams, n_nodes: int) -> list[int]:
        return list(params.validators) if params.validators is not None else list(range(n_nodes))

    @classmethod
    def check(cls, params: ProtocolParams, n_nodes: int) -> list[str]:
        assert isinstance(params, AuraParams)
        if params.validators is None:
            return []
        problems = []
        if not params.validators:
            problems.append("validators is an empty list; give node ids or leave it out (every node validates)")
        bad = [v for v in params.validators if not 0 <= v < n_nodes]
        if bad:
            problems.append(f"validators has node ids {bad} outside 0..{n_nodes - 1}")
        if len(set(params.validators)) != len(params.validators):
            problems.append(f"validators lists a node twice: {params.validators}")
        return problems

    @classmethod
    def crash_tolerance(cls, params: ProtocolParams, n_nodes: int) -> int:
        assert isinstance(params, AuraParams)
        return len(cls._validators(params, n_nodes)) - 1

    # ------------------------------------------------------------------ state

    def on_chain_start(self) -> None:
        self.validators = tuple(self._validators(self.params, self.ctx.n))
        me = self.ctx.node_id
        self.index = self.validators.index(me) if me in self.validators else None
        self.slot_blocks: dict[int, bytes] = {}  # slot -> first block seen for it (above the final slot)
        self._arm(self.current_slot())

    def on_chain_recover(self) -> None:
        self._arm(self.current_slot())

    def current_slot(self) -> int:
        """The slot the clock is in now."""
        return math.floor(self.ctx.now / self.params.step_s + _TIME_EPS_S)

    def leader(self) -> int | None:
        return slot_author(self.current_slot(), self.validators)

    # ------------------------------------------------------------- chain rules

    def tie_break(self, candidate: Entry, current: Entry) -> bool:
        return (candidate.round, candidate.block_hash) < (current.round, current.block_hash)

    def validate(self, parent: Entry, block: Block) -> str | None:
        slot = block.round
        if slot <= parent.round:
            return f"slot {slot} not after its parent's slot {parent.round}"
        author = slot_author(slot, self.validators)
        if block.proposer != author:
            return f"author {block.proposer} is not slot {slot}'s author {author}"
        if slot * self.params.step_s > self.ctx.now + _TIME_EPS_S:
            return f"slot {slot} has not begun"
        first = self.slot_blocks.get(slot)
        if first is not None and first != block.block_hash:
            return f"second block in slot {slot}"
        return None

    def on_accepted(self, entry: Entry) -> None:
        self.slot_blocks.setdefault(entry.round, entry.block_hash)

    def on_finalized(self, entry: Entry) -> None:
        for slot in [s for s in self.slot_blocks if s <= entry.round]:
            del self.slot_blocks[slot]

    # ---------------------------------------------------------------- sealing

    def _arm(self, after_slot: int) -> None:
        """Set a timer for this validator's first own slot after ``after_slot``."""
        if self.index is None:
            return
        n = len(self.validators)
        slot = after_slot + 1 + (self.index - after_slot - 1) % n
        self.ctx.set_timer(max(0.0, slot * self.params.step_s - self.ctx.now), "step", slot)

    def on_timer(self, name: str, data: Any) -> None:
        if name == "step":
            slot = int(data)
            if self.tip.round < slot:
                self.produce(round=slot)
            self._arm(slot)
