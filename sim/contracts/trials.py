"""Clinical trial anchoring: a trial site periodically anchors the hash of its data.

Each anchor appends the SHA-256 of a batch of trial data under the next
sequence number of the trial, so a regulator can later prove that the data
reported at the end of the trial is the data collected during it. Only the
trial's site may anchor. The trial's head (last sequence number) is one key,
so two anchors of one trial in flight at once contend in execute-order-validate.
"""

from __future__ import annotations

from typing import NamedTuple

from sim.contracts.base import Result
from sim.contracts.state import TxContext

__all__ = ["AnchorCall", "anchor", "head_key", "site_key"]


class AnchorCall(NamedTuple):
    trial_id: int
    digest: bytes


def head_key(trial_id: int) -> tuple[str, int]:
    """Last anchored sequence number of a trial."""
    return ("trial_head", trial_id)


def site_key(trial_id: int) -> tuple[str, int]:
    """Node id of the site running a trial (genesis)."""
    return ("trial_site", trial_id)


def anchor(ctx: TxContext, call: AnchorCall) -> Result:
    """Append ``call.digest`` as the trial's next anchor."""
    site = ctx.get(site_key(call.trial_id))
    if site != ctx.meta.sender:
        return Result("anchor_rejected", "sender is not the trial's site", subject=call.trial_id)
    seq = (ctx.get(head_key(call.trial_id)) or 0) + 1
    ctx.put(head_key(call.trial_id), seq)
    ctx.put(("trial", call.trial_id, seq), call.digest)
    return Result("anchored", "", subject=call.trial_id, detail={"seq": seq})
