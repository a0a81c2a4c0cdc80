"""The validation suite passes, and `hcsim validate` reports and fails as it says."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.validation import CASES, CaseResult, ValidationCase, run_validation


def test_every_validation_case_passes() -> None:
    table = run_validation(quick=False)
    assert len(table) == len(CASES) >= 10
    failed = table[table["verdict"] != "pass"]
    assert failed.empty, failed[["case", "reference_value", "simulated_value", "tolerance"]].to_string()
    for column in ("configured", "reference", "source", "tolerance_why"):
        assert table[column].str.len().min() > 10, column


def test_cli_exits_1_on_a_failing_case(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    broken = ValidationCase("always_wrong", "test", "nothing", "1", "none", "exact", lambda quick: CaseResult(1.0, 2.0, 0.0, "x"))
    monkeypatch.setitem(CASES, "always_wrong", broken)
    result = CliRunner().invoke(main, ["validate", "--case", "always_wrong"])
    assert result.exit_code == 1 and "FAIL" in result.output and "0 passed, 1 failed" in result.output


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
