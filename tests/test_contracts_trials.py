"""Clinical trial anchoring: sequence numbers and the site's authority."""

from __future__ import annotations

from sim.contracts.records import sha256
from sim.contracts.trials import AnchorCall, head_key
from tests.contract_helpers import ContractChain

SITE = 2


def test_anchors_get_consecutive_sequence_numbers_and_only_the_site_may_anchor() -> None:
    chain = ContractChain({("trial_site", 4): SITE})
    seqs = [chain.tx("trial_anchor", AnchorCall(4, sha256(bytes([i]))), SITE).detail["seq"] for i in range(3)]
    assert seqs == [1, 2, 3]
    assert chain.store.value(("trial", 4, 2)) == sha256(bytes([1]))
    assert chain.store.value(head_key(4)) == 3
    assert chain.tx("trial_anchor", AnchorCall(4, b"x"), 1).outcome == "anchor_rejected"
    assert chain.tx("trial_anchor", AnchorCall(5, b"x"), SITE).reason == "sender is not the trial's site"
