"""The backtest (sim/analysis/backtest.py, drift.py, decomposition.py): nothing after an origin reaches its
fit, bands that cover what they say on data the model generates, and the command's output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY

from sim.analysis.backtest import Backtest, BacktestPlan
from sim.analysis.backtest_scores import score_benchmarks
from sim.analysis.decomposition import SOURCES, run_decomposition, source_overrides
from sim.analysis.drift import DriftEstimate, estimate_brand_scales, estimate_drift, horizon_variance, level_weight
from sim.analysis.figures import figures_upto
from sim.analysis.reported import FIGURE_COLUMNS, ReportedFigures
from sim.runs.run import execute, make_specs
from sim.scenario.load import load_scenario
from sim.scenario.yamlio import InputError

#: A small market whose plants never bind, three years long, so that origins can roll through it.
MARKET = f"""name: rolling
extends: {TINY}
end: 2026-12
markets:
  - name: CN
    seasonality:
      lunar_new_year: {{"2024": "2024-02-10", "2025": "2025-01-29", "2026": "2026-02-17"}}
products:
  - {{name: A1, capacity: {{max: 100000}}}}
  - {{name: A2, capacity: {{max: 100000}}}}
  - {{name: B1, capacity: {{max: 100000}}}}
"""
SCALE = 50


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("backtest") / "rolling.yaml"
    path.write_text(MARKET)
    return path


def truth_figures(market: Path, seed: int, drift: float) -> ReportedFigures:
    """Each brand's monthly deliveries of one run of the model whose appeals drift from 2024-01 (brand A's
    appeal +0.3, B's -0.2: the fit starts from 0), as reported figures."""
    sc = load_scenario(market, {"uncertainty.start": "2024-01", "uncertainty.brand_drift": drift,
                                "brands.A.appeal": 0.3, "brands.B.appeal": -0.2})  # fmt: skip
    sales = execute(make_specs(sc, 1, seed=seed, scale=SCALE)[0]).sales
    s = sales.groupby(["brand", "month"])["units"].sum().reset_index()
    rows = [{"line": i + 2, "date": r.month, "entity": r.brand, "metric": "monthly deliveries", "raw_value": str(r.units),
             "unit": "vehicles", "raw_unit": "vehicles", "source": "synthetic", "quote": "", "confidence": "high",
             "granularity": "month", "start": r.month, "end": r.month, "measure": "deliveries", "frequency": "monthly",
             "cumulative_of": None, "value": float(r.units), "low": float(r.units), "high": float(r.units),
             "qualifier": "=", "brand": r.brand, "model": None, "basis": "", "market": "CN", "note": ""}
            for i, r in enumerate(s.itertuples())]  # fmt: skip
    unusable = pd.DataFrame(columns=["line", "date", "entity", "metric", "value", "reason"])
    return ReportedFigures(Path("synthetic.csv"), pd.DataFrame(rows, columns=list(FIGURE_COLUMNS)), unusable)


# --------------------------------------------------------------------------- the drift's arithmetic


def test_horizon_variance_and_level_weight():
    assert horizon_variance(np.array([3])) == 3.0  # one month, 3 months after the origin: a walk's variance 3
    assert horizon_variance(np.array([1, 2])) == pytest.approx((1 + 1 + 1 + 2) / 4)  # the mean of two correlated months
    assert horizon_variance(np.array([-2, -1, 0])) == 0.0  # months up to the origin carry no drift
    assert level_weight(np.array([-1, 0, 1, 2])) == pytest.approx(0.25)  # half the months after the origin, squared
    assert level_weight(np.array([1, 2, 3])) == 1.0


def test_the_drift_estimate_recovers_known_scales():
    rng = np.random.default_rng(0)
    n = 4000
    h = rng.integers(1, 13, n).astype(float)
    level = np.where(rng.random(n) < 0.5, "brand", "product")
    is_p = level == "product"
    true = DriftEstimate(brand=0.05, product=0.08, figures=n, log_likelihood=0.0, brand_level=0.1, product_level=0.0)
    var = 0.01 + h * 0.05**2 + 0.1**2 + is_p * h * 0.08**2
    errors = pd.DataFrame({"log_error": rng.normal(0, np.sqrt(var)), "spread": 0.01, "H": h, "L": 1.0, "level": level})
    est = estimate_drift(errors)
    assert est.brand == pytest.approx(true.brand, rel=0.15) and est.brand_level == pytest.approx(true.brand_level, rel=0.15)
    assert est.product == pytest.approx(true.product, rel=0.3)
    assert est.level_df == 0 or est.level_df >= 30  # normal errors: no heavy tails chosen


def test_the_drift_estimate_finds_heavy_tails_and_keeps_the_variance():
    rng = np.random.default_rng(1)
    n = 3000
    # offsets of sd 0.3 with the tails of a Student-t of 4 degrees of freedom
    err = 0.3 * rng.standard_t(4, n) * np.sqrt(2 / 4)
    errors = pd.DataFrame({"log_error": err, "spread": 1e-4, "H": 0.0, "L": 1.0, "level": "brand"})
    est = estimate_drift(errors)
    assert est.level_df in (3.0, 4.0, 6.0)
    assert est.brand_level == pytest.approx(0.3, rel=0.15)


def test_brand_scales_recover_which_brands_were_forecast_closer():
    rng = np.random.default_rng(3)
    n = 600
    drift = DriftEstimate(brand=0.0, product=0.0, figures=0, log_likelihood=0.0, brand_level=0.5)
    brand = np.repeat(["wide", "narrow", "pooled"], n)
    # a util moves every brand's volumes by 0.8 log units; the brands' offsets are 2, 0.5 and 1 times the pooled
    factor = np.repeat([2.0, 0.5, 1.0], n)
    errors = pd.DataFrame({"log_error": rng.normal(0, np.sqrt(0.01 + (0.8 * 0.5 * factor) ** 2)), "spread": 0.01,
                           "H": 0.0, "L": 1.0, "level": "brand", "brand": brand})  # fmt: skip
    scales = estimate_brand_scales(errors, drift, {"wide": 0.64, "narrow": 0.64}, 0.64)
    assert scales["wide"] == pytest.approx(2.0, rel=0.1) and scales["narrow"] == pytest.approx(0.5, rel=0.1)
    assert scales["pooled"] == pytest.approx(1.0, rel=0.1)
    # a brand that moves twice as much per util as the pooled needs half the factor for the same errors
    twice = estimate_brand_scales(errors, drift, {"wide": 4 * 0.64}, 0.64)
    assert twice["wide"] == pytest.approx(1.0, rel=0.1)


# --------------------------------------------------------------------------- leakage


def test_a_fit_at_an_origin_never_reads_a_later_figure(market, tmp_path):
    figs = truth_figures(market, 1, 0.05)
    origin = "2025-06"
    # figures after the origin, absurd on purpose: if any reached the fit or the benchmarks, they would move them
    late = figs.figures[figs.figures["end"] > origin].copy()
    late["value"] = late["low"] = late["high"] = late["value"] * 50
    poisoned = ReportedFigures(figs.path, pd.concat([figures_upto(figs, origin).figures, late], ignore_index=True),
                               figs.unusable)  # fmt: skip
    plan = BacktestPlan(market=str(market), origins=(origin,), warmup=(), through="2026-12", fit_iterations=3,
                        fit_replications=1, fit_scale=SCALE, members=3, scale=SCALE)  # fmt: skip
    a = Backtest(plan, tmp_path / "clean", reported=figs, executor="serial", log=io.StringIO())
    b = Backtest(plan, tmp_path / "poisoned", reported=poisoned, executor="serial", log=io.StringIO())
    text = [bt.fit_origin(origin).read_text() for bt in (a, b)]
    assert text[0] == text[1]
    keep = a.scored_figures(origin)
    assert len(keep) == 24  # two brands' months 2025-07..2026-06
    bench = [score_benchmarks(keep, figures_upto(bt.figures, origin), origin, bt.first, 12) for bt in (a, b)]
    pd.testing.assert_frame_equal(bench[0][["line", "forecaster", "forecast"]], bench[1][["line", "forecaster", "forecast"]])


# --------------------------------------------------------------------------- coverage


@pytest.mark.slow
def test_bands_cover_what_they_say_on_data_the_model_generates(market, tmp_path):
    # Six truths, each the model's own months with brand appeals drifting 0.06 utils a month; the backtest
    # refits at each origin, learns the drift's scale from earlier origins' errors only, and forecasts
    # six months ahead. Pooled, its 90% bands must hold 80-97% of the figures.
    n = covered_90 = covered_50 = 0
    for seed in range(6):
        plan = BacktestPlan(market=str(market), origins=("2025-06", "2025-09", "2025-12", "2026-03"),
                            warmup=("2024-09", "2024-12", "2025-03"), horizon=6, through="2026-12", replications=20,
                            pilot_replications=8, members=8, seed=seed + 100, scale=SCALE, fit_replications=2,
                            fit_scale=SCALE, fit_iterations=6)  # fmt: skip
        s = Backtest(plan, tmp_path / f"s{seed}", reported=truth_figures(market, seed, 0.06), executor="serial",
                     log=io.StringIO()).run()  # fmt: skip
        n += s["n_figures"]
        covered_90 += s["coverage_90"] * s["n_figures"]
        covered_50 += s["coverage_50"] * s["n_figures"]
    assert 0.80 <= covered_90 / n <= 0.97, f"90% bands held {covered_90 / n:.1%} of {n} figures"
    assert 0.35 <= covered_50 / n <= 0.65, f"50% bands held {covered_50 / n:.1%} of {n} figures"


# --------------------------------------------------------------------------- the command


@pytest.mark.slow
def test_backtest_quick_prints_the_documented_json(sim_cli, tmp_path):
    out = tmp_path / "bt"
    proc = sim_cli("backtest", "--quick", "--format", "json", "--out", str(out), "--executor", "serial", timeout=900)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert {"origins", "n_figures", "coverage_50", "coverage_90", "crps", "relative_mae", "by_horizon"} <= set(s)
    assert {"seasonal_naive", "bass", "naive", "drift", "ets"} <= set(s["relative_mae"])
    assert s["origins"] == ["2023-12", "2024-06"] and s["n_figures"] > 50
    scores = pd.read_parquet(out / "scores.parquet")
    assert set(scores["forecaster"]) == {"model", "model_stale", "model_assimilated", "naive", "seasonal_naive", "drift",
                                         "ets", "bass"}  # fmt: skip
    # the previous origin's fit, with and without the figures since, is scored from the second origin on
    later = scores[scores["forecaster"].isin(["model_stale", "model_assimilated"])]
    assert set(later["origin"]) == {"2024-06"} and s["assimilation"]["n_figures"] > 0
    assert (scores["horizon"].between(1, 12)).all()
    # the fit at each origin was made on the figures up to it only, and its overlay says so
    fitted = (out / "origins" / "2023-12" / "fitted.yaml").read_text()
    assert "2024-" not in fitted.split("\nname:")[0]  # the fit's report lists no figure after 2023-12


# --------------------------------------------------------------------------- decomposition


def test_the_decomposition_attributes_the_spread_to_its_sources(market, tmp_path):
    over = {"uncertainty.start": "2024-07", "uncertainty.brand_drift": 0.1, "uncertainty.market_level": 0.1,
            "uncertainty.new_product_appeal": 0.3, "end": "2025-06",
            "targets": [{"name": "A", "brand": "A", "units": 10_000, "start": "2024-07", "by": "2025-06"}]}  # fmt: skip
    d = run_decomposition(market, tmp_path / "dec", seed=3, replications=8, scale=SCALE, overrides=over,
                          executor="serial")  # fmt: skip
    t = d["targets"][0]
    assert set(t["sources"]) == set(SOURCES)
    assert sum(v["share"] for v in t["sources"].values()) == pytest.approx(1.0)
    # sources switched on have a spread; those the scenario does not draw have none
    assert t["sources"]["drift"]["sd"] > 0 and t["sources"]["market"]["sd"] > 0
    assert t["sources"]["parameters"]["sd"] == 0 and t["sources"]["capacities"]["sd"] == 0
    assert t["sd_all"] > t["sd_agents"]
    assert json.loads((tmp_path / "dec" / "decomposition.json").read_text()) == d
    # the same folder asked for another count (or scenario) is refused, not continued with the old runs
    with pytest.raises(InputError, match="another request"):
        run_decomposition(market, tmp_path / "dec", seed=3, replications=9, scale=SCALE, overrides=over,
                          executor="serial")  # fmt: skip


def test_the_decomposition_switches_off_the_appeal_offsets_with_the_drift(market):
    over = {"uncertainty.brand_level": 0.5, "uncertainty.product_level": 0.2, "uncertainty.brand_drift": 0.1,
            "uncertainty.market_level": 0.1}
    sc = load_scenario(market, over)
    u = load_scenario(market, {**over, **source_overrides(sc, ("market",))}).uncertainty  # the market alone
    assert (u.brand_level, u.product_level, u.brand_drift, u.product_drift) == (0, 0, 0, 0)
    assert u.market_level == 0.1
    assert not load_scenario(market, {**over, **source_overrides(sc, ())}).uncertainty.any  # none: the agents' noise alone
