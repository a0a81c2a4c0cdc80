"""The validation suite passes, and `hcsim validate` reports and fails as it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.validation import CASES, CaseResult, ValidationCase, run_validation
from sim.validation.markdown import validation_markdown

#: the committed table the README links to
COMMITTED = Path(__file__).resolve().parents[1] / "results" / "validation" / "validation.md"


def committed_rows(text: str) -> dict[str, list[str]]:
    """Case name -> its cells, from a Markdown table written by ``validation_markdown``."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_validation_case_passes_and_the_committed_table_is_current() -> None:
    table = run_validation(quick=False)
    assert len(table) == len(CASES) >= 10
    failed = table[table["verdict"] != "pass"]
    assert failed.empty, failed[["case", "reference_value", "simulated_value", "tolerance"]].to_string()
    for column in ("configured", "reference", "source", "tolerance_why"):
        assert table[column].str.len().min() > 10, column
    # runs are deterministic: the committed table shows exactly what the code gives now
    committed = committed_rows(COMMITTED.read_text(encoding="utf-8"))
    fresh = committed_rows(validation_markdown(table, "now"))
    assert committed.keys() == fresh.keys(), "cases changed: hcsim validate --out results/validation/validation.md"
    stale = {case: (committed[case][4], cells[4]) for case, cells in fresh.items() if committed[case][3:] != cells[3:]}
    assert not stale, f"results/validation/validation.md is stale (committed, now): {stale}; regenerate it with hcsim validate --out"


def test_markdown_table_has_one_row_per_case_and_marks_failures() -> None:
    import pandas as pd

    row = {"configured": "a | b", "reference": "r", "source": "s", "reference_value": 1.0, "unit": "s",
           "tolerance": 0.1, "tolerance_why": "why"}  # fmt: skip
    table = pd.DataFrame([{**row, "case": "good", "simulated_value": 1.05, "verdict": "pass"},
                          {**row, "case": "bad", "simulated_value": 2.0, "verdict": "FAIL"}])  # fmt: skip
    text = validation_markdown(table, "title")
    rows = committed_rows(text)
    assert text.startswith("# title") and "1 of 2 cases pass" in text
    assert rows["good"][-1] == "pass" and rows["bad"][-1] == "**FAIL**"
    assert rows["good"][1] == "a \\| b" and rows["bad"][4] == "2"


def test_cli_exits_1_on_a_failing_case(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    broken = ValidationCase("always_wrong", "test", "nothing", "1", "none", "exact", lambda quick: CaseResult(1.0, 2.0, 0.0, "x"))
    monkeypatch.setitem(CASES, "always_wrong", broken)
    result = CliRunner().invoke(main, ["validate", "--case", "always_wrong"])
    assert result.exit_code == 1 and "FAIL" in result.output and "0 passed, 1 failed" in result.output


def test_cli_out_writes_markdown_or_csv(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exact = ValidationCase("exact_one", "test", "one", "1", "none", "exact", lambda quick: CaseResult(1.0, 1.0, 0.0, "x"))
    monkeypatch.setitem(CASES, "exact_one", exact)
    for name in ("table.md", "table.csv"):
        result = CliRunner().invoke(main, ["validate", "--case", "exact_one", "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert committed_rows((tmp_path / "table.md").read_text())["exact_one"][-1] == "pass"
    assert (tmp_path / "table.csv").read_text().startswith("case,group,configured")


def test_cli_unknown_case_is_bad_input() -> None:
    result = CliRunner().invoke(main, ["validate", "--case", "nope"])
    assert result.exit_code == 2 and "unknown validation cases" in result.output


def test_validation_chart_marks_failures_red() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from sim.plots import validation_chart

    table = pd.DataFrame(
        {"case": ["a", "b", "c"], "reference_value": [1.0, 0.0, 2.0], "simulated_value": [1.05, 0.0, 3.0],
         "tolerance": [0.1, 0.0, 0.1], "verdict": ["pass", "pass", "FAIL"]}
    )
    ax = validation_chart(table)
    widths = [p.get_width() for p in ax.patches]
    assert widths == [pytest.approx(0.5), 0.0, pytest.approx(10.0)]
    assert ax.patches[2].get_facecolor()[:3] == matplotlib.colors.to_rgb("tab:red")
