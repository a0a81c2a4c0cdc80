"""The README documents what a run writes: every key of ``summary.json`` is named in it."""

from __future__ import annotations

import re
from pathlib import Path

import sim
from tests.conftest import small_scenario

README = Path(__file__).resolve().parents[1] / "README.md"


def documented_names(text: str) -> set[str]:
    """Every `name` in backticks, with pairs written once (`claim_paid_p50_s`/`p99_s`) expanded."""
    names = set(re.findall(r"`(\w+)`", text))
    for first, second in re.findall(r"`(\w+)`/`(\w+)`", text):
        kept = first.split("_")[: -len(second.split("_"))]
        names.add("_".join([*kept, second]))
    return names


def test_pairs_written_once_expand() -> None:
    names = documented_names("`claim_paid_p50_s`/`p99_s` and `eligibility_staleness_p99_s`/`max_s`")
    assert {"claim_paid_p99_s", "eligibility_staleness_max_s", "claim_paid_p50_s"} <= names
    assert "claim_paid_max_s" not in names


def test_every_summary_key_is_documented_in_the_readme() -> None:
    summary = sim.run(small_scenario(duration_s=3.0)).summary
    missing = sorted(set(summary) - documented_names(README.read_text(encoding="utf-8")))
    assert not missing, f"summary keys not in README.md: {missing}"
