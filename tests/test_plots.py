"""Fault figures of sim.plots: what each draws, checked on the artists of small exact tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from sim.experiment.capacity import CapacityResult, Evaluation
from sim.plots import (
    FAULT_ACTION_COLORS,
    capacity_search,
    down_intervals,
    fault_markers,
    first_crossing,
    latency_by_period,
    latency_quantile_by_period,
    node_downtime,
    recovery_times,
    scaling_exponent,
    scaling_figure,
    table_heatmap,
    throughput_by_group,
)


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


FAULTS = pd.DataFrame(
    {
        "time_s": [5.0, 8.0, 9.0, 9.0, 12.0, 14.0, 16.0],
        "fault": [0, 0, 0, -1, 1, 2, 2],
        "kind": ["churn", "churn", "churn", "recovery", "crash", "partition", "partition"],
        "action": ["crash", "crash", "recover", "catch_up_started", "crash", "start", "heal"],
        "nodes": ["1", "3", "1", "1", "0,2", "0,1,2,3", "0,1,2,3"],
    }
)


def test_fault_markers_mark_the_faults_own_actions_with_one_legend_entry_each() -> None:
    ax = plt.figure().add_subplot()
    fault_markers(FAULTS, ax)
    assert [line.get_xdata()[0] for line in ax.lines] == [5.0, 8.0, 9.0, 12.0, 14.0, 16.0]  # no catch-up row
    assert [to_rgba(line.get_color()) for line in ax.lines] == [
        to_rgba(FAULT_ACTION_COLORS[a]) for a in ("crash", "crash", "recover", "crash", "start", "heal")
    ]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["crash", "recover", "partition start", "partition heal"]


def test_down_intervals_pair_crashes_with_recoveries_and_run_to_the_end() -> None:
    assert down_intervals(FAULTS, 20.0) == {1: [(5.0, 9.0)], 3: [(8.0, 20.0)], 0: [(12.0, 20.0)], 2: [(12.0, 20.0)]}
    ax = node_downtime(FAULTS, 4, 20.0)
    assert len(ax.collections) == 4  # one bar row per node that went down
    assert ax.get_xlim() == (0.0, 20.0)
    # node 1's bar: from 5 s, 4 s long, centred on row 1
    verts = ax.collections[1].get_paths()[0].vertices
    assert (verts[:, 0].min(), verts[:, 0].max()) == (5.0, 9.0)
    assert (verts[:, 1].min(), verts[:, 1].max()) == pytest.approx((0.6, 1.4))


def test_throughput_by_group_counts_commits_at_origin_per_bin() -> None:
    tx = pd.DataFrame(
        {
            "origin": [0, 0, 1, 2, 2, 2],
            "submit_s": [0.1, 0.2, 0.3, 0.4, 2.5, 3.5],
            "commit_s": [0.5, 1.5, 1.6, 1.7, np.nan, 3.9],
        }
    )
    ax = throughput_by_group(tx, {"A": [0, 1], "B": [2]}, bin_s=1.0, duration_s=4.0)
    assert [line.get_label() for line in ax.lines] == ["A", "B"]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [1, 2, 0, 0])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0, 1, 0, 1])  # the uncommitted one is not counted
    half = throughput_by_group(tx, {"A": [0, 1]}, bin_s=2.0, duration_s=4.0)
    np.testing.assert_array_equal(half.lines[0].get_ydata(), [1.5, 0.0])  # per second


def test_recovery_times_draw_each_finite_run_and_count_the_others() -> None:
    runs = pd.DataFrame(
        {
            "protocol": ["a", "a", "a", "b", "b"],
            "detect_s": [0.1, 0.2, 0.3, 1.0, np.nan],
            "recover_s": [0.5, 0.6, 0.7, 2.0, np.nan],
        }
    )
    ax = recovery_times(runs)
    points = [c for c in ax.collections if c.get_offsets().shape[0]]
    drawn = sorted(float(y) for c in points for y in c.get_offsets()[:, 1])
    assert drawn == sorted([0.1, 0.2, 0.3, 1.0, 0.5, 0.6, 0.7, 2.0])
    assert sorted(t.get_text() for t in ax.texts) == ["never: 1", "never: 1"]  # b, per metric
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["detect_s", "recover_s"]
    assert ax.get_yscale() == "linear"  # 0.1 to 2 s: no log scale needed
    wide = runs.assign(recover_s=[0.5, 0.6, 0.7, 20.0, np.nan])
    assert recovery_times(wide).get_yscale() == "log"


def test_table_heatmap_writes_every_finite_value() -> None:
    table = pd.DataFrame({"x": [1.0, np.nan], "y": [0.25, 0.5]}, index=pd.Index(["r1", "r2"], name="row"))
    ax = table_heatmap(table, fmt="{:.0%}")
    assert sorted(t.get_text() for t in ax.texts) == ["100%", "25%", "50%"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r1", "r2"]
    assert ax.get_ylabel() == "row"


# ---------------------------------------------------------------- scaling


SCALING = pd.DataFrame(
    {
        "protocol": ["a", "a", "a", "b", "b", "b"],
        "n": [4, 8, 16, 4, 8, 16],
        "messages_mean": [4.0, 8.0, 16.0, 16.0, 64.0, 256.0],  # a ~ n, b ~ n^2
        "messages_ci95": [0.0] * 6,
        "tps_mean": [100.0, 99.0, 80.0, 100.0, 100.0, 100.0],
        "tps_ci95": [1.0] * 6,
    }
)


def test_scaling_exponent_is_the_log_log_slope_per_group() -> None:
    slopes = scaling_exponent(SCALING, "n", "messages", hue="protocol")
    assert slopes.to_dict() == pytest.approx({"a": 1.0, "b": 2.0})
    # from 8 up only two points remain in each group; below that a group gets NaN
    assert scaling_exponent(SCALING, "n", "messages", hue="protocol", min_x=8)["b"] == pytest.approx(2.0)
    assert np.isnan(scaling_exponent(SCALING, "n", "messages", hue="protocol", min_x=16)["a"])


def test_first_crossing_finds_the_smallest_size_past_a_threshold() -> None:
    below = first_crossing(SCALING, "n", "tps", hue="protocol", below=95.0)
    assert below["a"] == 16.0 and np.isnan(below["b"])
    assert first_crossing(SCALING, "n", "messages", hue="protocol", above=10.0).to_dict() == {"a": 16.0, "b": 4.0}
    with pytest.raises(ValueError):
        first_crossing(SCALING, "n", "tps", above=1.0, below=2.0)


def test_scaling_figure_draws_one_panel_per_metric_with_log_axes_where_asked() -> None:
    fig = scaling_figure(SCALING, "n", ["messages", "tps", "messages"], hue="protocol", logy=["messages"], ncols=2,
                         titles={"tps": "throughput"})
    axes = fig.axes
    assert len(axes) == 4 and not axes[3].axison  # 3 panels, the 4th blank
    assert [ax.get_yscale() for ax in axes[:3]] == ["log", "linear", "log"]
    assert axes[1].get_title() == "throughput" and axes[0].get_title() == "messages"
    assert [line.get_label() for line in axes[0].lines] == ["a", "b"]
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), [16.0, 64.0, 256.0])
    assert axes[0].get_legend() is not None and axes[1].get_legend() is None


TX = pd.DataFrame(
    {
        "submit_s": [0.0, 1.0, 2.0, 9.9, 10.0, 10.5, 25.0],
        "latency_s": [1.0, 3.0, 2.0, 4.0, 0.5, np.nan, np.nan],
    }
)


def test_latency_by_period_groups_by_submit_time_and_counts_uncommitted() -> None:
    table = latency_by_period(TX, period_s=10.0, quantile=0.5)
    assert table["period"].tolist() == [0, 1, 2]
    assert table["start_s"].tolist() == [0.0, 10.0, 20.0]
    assert table["submitted"].tolist() == [4, 2, 1]
    assert table["committed"].tolist() == [4, 1, 0]
    # median of 1, 3, 2, 4 (linear interpolation) = 2.5; of 0.5 alone = 0.5; none committed: NaN
    assert table["latency_q_s"].iloc[0] == pytest.approx(2.5)
    assert table["latency_q_s"].iloc[1] == pytest.approx(0.5)
    assert np.isnan(table["latency_q_s"].iloc[2])
    assert latency_by_period(TX, 10.0, 1.0)["latency_q_s"].iloc[0] == pytest.approx(4.0)


def test_latency_quantile_by_period_draws_the_quantiles_and_the_slo() -> None:
    ax = latency_quantile_by_period(TX, period_s=10.0, quantile=1.0, slo_s=2.0)
    line = ax.lines[0]
    assert list(line.get_xdata()) == [0, 1, 2]
    assert list(line.get_ydata())[:2] == [4.0, 0.5]
    assert ax.lines[1].get_ydata()[0] == 2.0  # the SLO bound


def test_capacity_search_colours_evaluations_by_verdict_and_marks_the_knee() -> None:
    def ev(value: float, meets: bool, p99: float) -> Evaluation:
        return Evaluation(value, meets, 2, 0, 2 if meets else 0, {"latency_p99_s": (p99, 0.1), "throughput_tps": (value, 0.0)})

    result = CapacityResult("workload.rate_tps", ["latency_p99_s<=2"], "mean", 2, 200.0, 400.0, "found",
                            [ev(400.0, False, 3.0), ev(100.0, True, 0.5), ev(200.0, True, 1.5)])
    ax = capacity_search(result, "latency_p99_s", bound=2.0)
    meets, fails = ax.containers  # one errorbar container per verdict, meets first
    assert list(meets.lines[0].get_xdata()) == [100.0, 200.0]
    assert list(meets.lines[0].get_ydata()) == [0.5, 1.5]
    assert list(fails.lines[0].get_xdata()) == [400.0]
    vertical = [line for line in ax.lines if list(line.get_xdata()) == [200.0, 200.0]]
    horizontal = [line for line in ax.lines if list(line.get_ydata()) == [2.0, 2.0]]
    assert len(vertical) == 1 and len(horizontal) == 1
