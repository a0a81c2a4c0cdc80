"""The validation table as Markdown, for the committed copy the README links to."""

from __future__ import annotations

import pandas as pd

__all__ = ["validation_markdown"]


def _cell(text: object) -> str:
    """One table cell: pipes escaped, line breaks folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def validation_markdown(table: pd.DataFrame, heading: str) -> str:
    """``table`` (from :func:`sim.validation.run_validation`) as a Markdown document.

    One row per case: what is configured, the reference with its source, the simulated
    value, the tolerance and why, and the verdict; a count of passes at the top.
    """
    passed = int((table["verdict"] == "pass").sum())
    lines = [
        f"# {heading}",
        "",
        f"{passed} of {len(table)} cases pass. Regenerate with `hcsim validate --out results/validation/validation.md`.",
        "",
        "| case | configured | reference (source) | reference value | simulated | tolerance (why) | verdict |",
        "| --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    for row in table.itertuples():
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{row.case}`",
                    _cell(row.configured),
                    _cell(f"{row.reference} ({row.source})"),
                    f"{row.reference_value:.5g} {_cell(row.unit)}",
                    f"{row.simulated_value:.5g}",
                    _cell(f"{row.tolerance:.3g} ({row.tolerance_why})"),
                    "pass" if row.verdict == "pass" else "**FAIL**",
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"
