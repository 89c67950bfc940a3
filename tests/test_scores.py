"""Per-figure and pooled scores against hand-computed values, with each qualifier's convention."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.analysis.scores import crps_log, figure_scores, interval_score, point_scores, relative_mae, summarize

#: 101 replicates evenly from 100 to 200 vehicles: mean and median 150, the 50% band [125, 175],
#: the 90% band [105, 195] (numpy's linear quantiles fall on the samples).
SAMPLES = np.linspace(100.0, 200.0, 101)
#: The bands' ends of SAMPLES at plotting positions p (n + 1) (scores.BAND_QUANTILES): 124.5-175.5 (50%), 104.1-195.9 (90%).
L50, U50, L90, U90 = 124.5, 175.5, 104.1, 195.9
INF = math.inf
LOG = math.log


def test_interval_score_of_a_known_band() -> None:
    assert interval_score(1.0, 3.0, 2.0, 2.0, 0.1) == 2.0  # inside: the width
    assert interval_score(1.0, 3.0, 4.0, 4.0, 0.1) == pytest.approx(2.0 + 20.0 * 1.0)  # above by 1
    assert interval_score(1.0, 3.0, 0.5, 0.5, 0.5) == pytest.approx(2.0 + 4.0 * 0.5)  # below by 0.5
    assert interval_score(1.0, 3.0, 3.5, 5.0, 0.1) == pytest.approx(2.0 + 20.0 * 0.5)  # interval above
    assert interval_score(1.0, 3.0, 2.5, 5.0, 0.1) == 2.0  # overlapping
    assert interval_score(1.0, 3.0, 4.0, INF, 0.1) == pytest.approx(22.0)  # '>': short of the bound
    assert interval_score(1.0, 3.0, -INF, 0.0, 0.5) == pytest.approx(2.0 + 4.0)  # '<': above the bound


def test_crps_of_a_two_point_ensemble() -> None:
    # log values {0, 2}: E|X - y| - E|X - X'| / 2 with E|X - X'| = (0 + 2 + 2 + 0) / 4 = 1
    two = np.exp([0.0, 2.0])
    assert crps_log(math.e, two) == pytest.approx(1.0 - 0.5)
    assert crps_log(math.exp(3.0), two) == pytest.approx((3.0 + 1.0) / 2 - 0.5)
    assert crps_log(math.exp(2.0), np.exp([2.0])) == pytest.approx(0.0)


def crps_by_hand(target: float, samples: np.ndarray) -> float:
    x, y = np.log(samples), LOG(target)
    return float(np.mean(np.abs(x - y)) - 0.5 * np.mean(np.abs(x[:, None] - x[None, :])))


def test_scores_of_an_exact_figure() -> None:
    s = figure_scores(150.0, 150.0, 150.0, "=", SAMPLES)
    assert (s["n_samples"], s["forecast"], s["median"]) == (101, pytest.approx(150.0), 150.0)
    assert (s["lower_50"], s["upper_50"], s["lower_90"], s["upper_90"]) == pytest.approx((L50, U50, L90, U90))
    assert (s["error"], s["log_error"], s["covered_50"], s["covered_90"]) == (
        pytest.approx(0.0),
        pytest.approx(0.0),
        1.0,
        1.0,
    )
    assert s["interval_score_50"] == pytest.approx(LOG(U50 / L50))
    assert s["interval_score_90"] == pytest.approx(LOG(U90 / L90))
    assert s["crps"] == pytest.approx(crps_by_hand(150.0, SAMPLES))
    s = figure_scores(180.0, 180.0, 180.0, "=", SAMPLES)
    assert (s["covered_50"], s["covered_90"]) == (0.0, 1.0)
    assert s["error"] == pytest.approx(150 / 180 - 1) and s["log_error"] == pytest.approx(LOG(150 / 180))
    assert s["interval_score_50"] == pytest.approx(LOG(U50 / L50) + 4 * LOG(180 / U50))


def test_approximate_figures_and_ranges_are_covered_when_the_band_overlaps_them() -> None:
    s = figure_scores(190.0, 180.5, 199.5, "~", SAMPLES)
    assert (s["covered_50"], s["covered_90"]) == (0.0, 1.0)
    assert s["interval_score_50"] == pytest.approx(LOG(U50 / L50) + 4 * LOG(180.5 / U50))
    assert s["interval_score_90"] == pytest.approx(LOG(U90 / L90))
    assert s["log_error"] == pytest.approx(LOG(150 / 190))  # against the central value
    assert s["crps"] == pytest.approx(crps_by_hand(190.0, SAMPLES))
    r = figure_scores(230.0, 176.0, 284.0, "range", SAMPLES)
    assert (r["covered_50"], r["covered_90"]) == (0.0, 1.0)
    assert r["log_error"] == pytest.approx(LOG(150 / 230))


def test_lower_bounds_are_covered_when_the_band_reaches_them() -> None:
    s = figure_scores(190.0, 190.0, INF, ">", SAMPLES)
    assert (s["covered_50"], s["covered_90"]) == (0.0, 1.0)
    assert s["interval_score_50"] == pytest.approx(LOG(U50 / L50) + 4 * LOG(190 / U50))
    assert s["log_error"] == pytest.approx(LOG(150 / 190))  # the mean falls short of the bound
    assert s["crps"] == pytest.approx(crps_by_hand(190.0, SAMPLES))  # max(bound, median)
    s = figure_scores(110.0, 110.0, INF, ">", SAMPLES)
    assert (s["covered_50"], s["covered_90"], s["log_error"], s["error"]) == (1.0, 1.0, 0.0, 0.0)
    assert s["interval_score_90"] == pytest.approx(LOG(U90 / L90))
    assert s["crps"] == pytest.approx(crps_by_hand(150.0, SAMPLES))  # the median is allowed


def test_upper_bounds_are_the_mirror_image() -> None:
    s = figure_scores(120.0, -INF, 120.0, "<", SAMPLES)
    assert (s["covered_50"], s["covered_90"]) == (0.0, 1.0)
    assert s["interval_score_50"] == pytest.approx(LOG(U50 / L50) + 4 * LOG(L50 / 120))
    assert s["log_error"] == pytest.approx(LOG(150 / 120))
    assert s["crps"] == pytest.approx(crps_by_hand(120.0, SAMPLES))
    s = figure_scores(300.0, -INF, 300.0, "<", SAMPLES)
    assert (s["covered_50"], s["covered_90"], s["log_error"]) == (1.0, 1.0, 0.0)
    assert s["crps"] == pytest.approx(crps_by_hand(150.0, SAMPLES))


def test_no_samples_give_nan_scores() -> None:
    s = figure_scores(100.0, 100.0, 100.0, "=", [np.nan])
    assert s["n_samples"] == 0 and all(math.isnan(v) for k, v in s.items() if k != "n_samples")


def test_point_scores_follow_the_same_conventions() -> None:
    assert point_scores(100.0, "=", 100.0, 100.0, 110.0) == pytest.approx(
        {"forecast": 110.0, "error": 0.1, "log_error": LOG(1.1), "abs_log_error": LOG(1.1)}
    )
    assert point_scores(100.0, "~", 95.0, 105.0, 104.0)["log_error"] == pytest.approx(LOG(1.04))
    assert point_scores(100.0, ">", 100.0, INF, 130.0)["log_error"] == 0.0
    assert point_scores(100.0, ">", 100.0, INF, 80.0)["log_error"] == pytest.approx(LOG(0.8))
    assert point_scores(100.0, "<", -INF, 100.0, 80.0)["log_error"] == 0.0
    assert point_scores(100.0, "<", -INF, 100.0, 125.0)["error"] == pytest.approx(0.25)
    assert point_scores(100.0, "=", 100.0, 100.0, 0.0)["log_error"] == pytest.approx(
        LOG(1 / 100)
    )  # floored at 1 vehicle
    assert math.isnan(point_scores(100.0, "=", 100.0, 100.0, np.nan)["log_error"])


def test_summarize_pools_and_groups() -> None:
    t = pd.DataFrame({
        "horizon": [1, 1, 2, 2],
        "log_error": [0.1, -0.3, 0.2, np.nan],
        "error": [0.1, -0.2, 0.3, np.nan],
        "covered_50": [1.0, 0.0, 0.0, 1.0],
        "covered_90": [1.0, 1.0, 0.0, 1.0],
        "crps": [0.1, 0.2, 0.3, 9.0],
    })  # fmt: skip
    all_ = summarize(t).iloc[0]
    assert all_["n_figures"] == 3  # the row with no log error is not scored
    assert (all_["coverage_50"], all_["coverage_90"]) == pytest.approx((1 / 3, 2 / 3))
    assert (all_["crps"], all_["mae_log"], all_["median_abs_error"]) == pytest.approx((0.2, 0.2, 0.2))
    assert math.isnan(all_["interval_score_90"])
    by = summarize(t, by="horizon").set_index("horizon")
    assert by.loc[1, "n_figures"] == 2 and by.loc[1, "mae_log"] == pytest.approx(0.2)
    assert by.loc[2, "coverage_90"] == 0.0


def test_relative_mae_compares_the_same_figures_and_counts_the_dropped() -> None:
    model = pd.DataFrame({
        "origin": ["2024-03"] * 4, "line": [1, 2, 3, 5], "entity": ["AITO"] * 4, "horizon": [1, 2, 3, 3],
        "log_error": [0.1, -0.2, 0.3, np.nan],
    })  # fmt: skip
    bench = pd.DataFrame({
        "origin": ["2024-03"] * 6, "line": [1, 2, 4, 1, 2, 5], "entity": ["AITO"] * 6, "horizon": [1, 2, 4, 1, 2, 3],
        "benchmark": ["naive"] * 3 + ["bass"] * 3, "log_error": [0.2, 0.2, 0.5, 0.05, -0.05, 0.4],
    })  # fmt: skip
    r = relative_mae(model, bench).set_index("benchmark")
    # naive: figures 1, 2 in both; 3 (model only), 4 (benchmark only) and 5 (no score at all) dropped
    assert r.loc["naive", ["n_figures", "n_dropped"]].tolist() == [2, 3]
    assert r.loc["naive", ["mae_model", "mae_benchmark", "relative_mae"]].tolist() == pytest.approx([0.15, 0.2, 0.75])
    # bass: 1, 2 in both; 3 has no bass forecast, 5 no model score
    assert r.loc["bass", ["n_figures", "n_dropped", "relative_mae"]].tolist() == pytest.approx([2, 2, 3.0])
    h = relative_mae(model, bench, by="horizon").set_index(["benchmark", "horizon"])
    assert h.loc[("naive", 1), "relative_mae"] == pytest.approx(0.5)
    assert h.loc[("naive", 4), ["n_figures", "n_dropped"]].tolist() == [0, 1]
