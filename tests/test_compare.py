"""Comparison with reported figures, target arithmetic, paired scenarios and ``sim compare``.

The results folders here are synthetic, written with the store's own functions, so that every
simulated sum has a known value: AITO M9 delivers ``100 * month + replicate`` vehicles in month
1..12 of 2024, AITO new M7 50 a month from March, Tesla Model Y 1,000 a month.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import sales_table_of

from sim.analysis.compare import compare, target_summary
from sim.analysis.figure_comparison import CONFIDENCE_WEIGHTS, FIGURE_COLUMNS, all_figures
from sim.analysis.metrics import coverage, mape, mase, naive_scale, paired_summary
from sim.analysis.pair_comparison import compare_pair
from sim.cli import main
from sim.runs import store
from sim.runs.run import RUNS_COLUMNS
from sim.scenario.months import parse_month
from sim.scenario.yamlio import InputError

DATA = Path(__file__).resolve().parent / "data"
FIGURES_CSV = DATA / "compare" / "figures.csv"
REPS = 20
MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]
PRODUCTS = {"AITO M9": "AITO", "AITO new M7": "AITO", "Tesla Model Y": "Tesla"}
LAUNCH = {"AITO M9": "2024-01", "AITO new M7": "2024-03", "Tesla Model Y": "2020-01", "AITO M8": "2024-07"}
TARGET = {"name": "AITO 8,400", "brand": "AITO", "units": 8400, "start": "2024-01", "by": "2024-12"}

UnitsFn = Callable[[int, int, str], int | None]


def base_units(r: int, m: int, product: str) -> int | None:
    """Deliveries of ``product`` in month ``m`` (1..12) of replicate ``r``; None: not offered."""
    if product == "AITO M9":
        return 100 * m + r
    if product == "AITO new M7":
        return 50 if m >= 3 else None
    if product == "Tesla Model Y":
        return 1000
    return None


def write_results(
    path: Path, units: UnitsFn = base_units, *, seed: int = 7, products: dict[str, str] = PRODUCTS, reps: int = REPS
) -> Path:
    """A results folder in the layout of ``sim run``, with the units given by ``units``."""
    out = store.prepare_output(path)
    rows: list[dict] = []
    for r in range(reps):
        for m, month in enumerate(MONTHS, start=1):
            for product, brand in products.items():
                u = units(r, m, product)
                if u is None:
                    continue
                rows.append({"run_id": r, "scenario": "syn", "replicate": r, "month": month, "market": "CN", "brand": brand,
                             "model": product, "segment": "300k+", "powertrain": "BEV", "units": u, "orders": u,
                             "backlog": 0, "cancellations": 0, "list_price": 4e5, "transaction_price": 4e5,
                             "paid_price": 4e5, "wait_months": 0.0})  # fmt: skip
    runs = pd.DataFrame(
        [{"run_id": r, "scenario": "syn", "replicate": r, "seed_entropy": str(seed), "spawn_key": str(r),
          "status": "ok", "error": "", "seconds": 0.1, "buyer_decisions": 1, "scale": 1.0} for r in range(reps)],
        columns=list(RUNS_COLUMNS),
    )  # fmt: skip
    store.write_part(out, "sales", "00000000", sales_table_of(rows))
    store.write_part(out, "runs", "00000000", runs)
    scenario = {
        "name": "syn", "start": "2024-01", "end": "2024-12",
        "products": [{"name": p, "brand": b, "launch": LAUNCH[p]} for p, b in products.items()],
        "targets": [TARGET],
    }  # fmt: skip
    store.write_manifest(out, {"kind": "run", "scenario_name": "syn", "scenario": scenario, "seed": seed,
                               "replications": reps, "status": "complete"})  # fmt: skip
    return out


def figure(line: int, brand: str, model: str | None, frequency: str, start: str, end: str, value: float, *,
           measure: str = "deliveries", qualifier: str = "=", confidence: str = "high", basis: str = "",
           market: str | None = "CN", low: float | None = None, high: float | None = None,
           cumulative_of: str | None = None) -> dict:  # fmt: skip
    """One row of a reported-figures table (the columns of ``sim.analysis.reported.load_reported``)."""
    if low is None:
        low = value
    if high is None:
        high = math.inf if qualifier == ">" else value
    return {"line": line, "date": start, "entity": model or brand, "metric": "m", "raw_value": str(value),
            "unit": "vehicles", "source": f"https://example.org/{line}", "quote": "", "confidence": confidence,
            "granularity": "month", "start": start, "end": end, "measure": measure, "frequency": frequency,
            "cumulative_of": cumulative_of, "value": float(value), "low": float(low), "high": float(high),
            "qualifier": qualifier, "brand": brand, "model": model, "basis": basis, "market": market, "note": ""}  # fmt: skip


def strict_json(text: str) -> dict:
    """Parse JSON refusing NaN and Infinity, which are not JSON."""

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def figures(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def q(values: np.ndarray, p: float) -> float:
    return float(np.quantile(values, p))


R = np.arange(REPS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_results(tmp_path_factory.mktemp("a") / "res")


def by_id(table: pd.DataFrame, figure_id: int) -> pd.Series:
    rows = table[table["figure_id"] == figure_id]
    assert len(rows) == 1
    return rows.iloc[0]


# --------------------------------------------------------------------------- pure metrics


def test_mape_of_a_constant_ten_percent_overshoot_is_ten() -> None:
    actual = np.array([100.0, 250.0, 40.0, 1234.0])
    assert mape(actual, 1.1 * actual) == pytest.approx(10.0)
    assert mape(actual, 0.9 * actual) == pytest.approx(10.0)
    assert mape([100.0, 0.0, np.nan], [110.0, 5.0, 1.0]) == pytest.approx(10.0)  # zero and NaN dropped
    assert mape([100.0, 100.0], [110.0, 130.0], weights=[3.0, 1.0]) == pytest.approx(15.0)
    assert math.isnan(mape([], []))


def test_mase_of_the_seasonal_naive_forecast_itself_is_one() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(parse_month("2021-01"), parse_month("2023-12") + 1)
    history = pd.Series(rng.uniform(1000, 5000, t.size), index=t)
    later = t[t - 12 >= t[0]]
    assert mase(history[later], history[later - 12].to_numpy(), history, 12) == pytest.approx(1.0)
    # half the naive error: MASE one half
    half = (history[later].to_numpy() + history[later - 12].to_numpy()) / 2
    assert mase(history[later], half, history, 12) == pytest.approx(0.5)


def test_naive_scale_matches_dates_not_positions() -> None:
    # months 0, 1, 2, 12, 15, 24: the pairs 12 months apart are (12, 0) and (24, 12) only
    history = pd.Series([10.0, 99.0, 7.0, 16.0, 55.0, 13.0], index=[0, 1, 2, 12, 15, 24])
    scale, pairs = naive_scale(history, 12)
    assert pairs == 2
    assert scale == pytest.approx((abs(16 - 10) + abs(13 - 16)) / 2)
    assert naive_scale(history, 1) == (pytest.approx((89 + 92) / 2), 2)  # (1, 0) and (2, 1)
    assert math.isnan(naive_scale(history, 5)[0])
    assert math.isnan(mase([1.0], [2.0], pd.Series([1.0], index=[0]), 12))


def test_coverage_counts_values_inside_the_band() -> None:
    assert coverage([1, 5, 10], [0, 0, 0], [4, 6, 8]) == pytest.approx(2 / 3)
    assert coverage([1, 5, 10], [0, 0, 0], [4, 6, 8], weights=[1, 1, 2]) == pytest.approx(0.5)
    assert coverage([1, 5], [np.nan, 0], [np.nan, 6]) == 1.0  # no band: not counted
    # intervals: >9 meets [0, 10]; [11, 12] does not
    assert coverage([9, 11], [0, 0], [10, 10], actual_high=[np.inf, 12]) == 0.5
    assert math.isnan(coverage([], [], []))


def test_paired_summary_of_a_known_difference() -> None:
    a = np.arange(30.0) * 7
    s = paired_summary(a, a + 120)
    assert s["mean_diff"] == 120 and s["diff_p5"] == 120 and s["diff_p95"] == 120
    assert (s["ci_low"], s["ci_high"]) == (120, 120)
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 10, 30)
    s = paired_summary(a, a + 120 + noise)
    half = 2.045229642132703 * noise.std(ddof=1) / math.sqrt(30)  # t(0.975, 29)
    assert s["ci_low"] == pytest.approx(120 + noise.mean() - half)
    assert s["ci_high"] == pytest.approx(120 + noise.mean() + half)
    u = paired_summary([0.0, 2.0], [10.0, 12.0, 14.0], paired=False)
    assert u["mean_diff"] == pytest.approx(11.0) and u["ci_low"] < 11 < u["ci_high"]
    assert u["diff_p5"] >= 8 and u["diff_p95"] <= 14


# --------------------------------------------------------------------------- figures


def test_monthly_results_against_monthly_quarterly_annual_and_cumulative_figures(folder: Path) -> None:
    rep = figures(
        figure(10, "AITO", "AITO M9", "monthly", "2024-05", "2024-05", 510),
        figure(11, "AITO", "AITO M9", "quarterly", "2024-04", "2024-06", 1500),
        figure(12, "AITO", None, "annual", "2024-01", "2024-12", 8000, qualifier=">"),
        figure(13, "AITO", None, "annual", "2024-01", "2024-12", 9000, qualifier=">"),
        figure(14, "AITO", None, "cumulative", "2024-01", "2024-07", 3100, measure="cumulative"),
        figure(15, "AITO", "AITO new M7", "point", "2024-06", "2024-06", 200, measure="cumulative"),
        figure(16, "Tesla", None, "point", "2024-06", "2024-06", 500000, measure="cumulative"),
        figure(17, "Tesla", None, "annual", "2024-01", "2024-12", 12500, qualifier="~", low=11875, high=13125),
    )
    table = compare(folder, rep).figures
    assert list(table.columns[: len(FIGURE_COLUMNS)]) == list(FIGURE_COLUMNS)

    m = by_id(table, 10)  # May: 500 + r
    assert m["sim_mean"] == pytest.approx(509.5)
    assert (m["sim_p5"], m["sim_p95"]) == (pytest.approx(q(500 + R, 0.05)), pytest.approx(q(500 + R, 0.95)))
    assert m["error"] == pytest.approx(-0.5) and m["pct_error"] == pytest.approx(-0.5 / 510 * 100)
    assert m["inside_band"] and m["used"]

    qt = by_id(table, 11)  # April-June: 1500 + 3r
    assert qt["sim_mean"] == pytest.approx(1528.5) and qt["sim_p5"] == pytest.approx(q(1500 + 3 * R, 0.05))
    assert not qt["inside_band"]  # 1500 is below the 5th percentile

    year = 7800 + 12 * R + 500  # M9 plus ten months of M7
    assert by_id(table, 12)["sim_mean"] == pytest.approx(year.mean())
    assert by_id(table, 12)["inside_band"]  # p95 >= 8000
    assert not by_id(table, 13)["inside_band"]  # p95 < 9000
    assert "coverage only" in by_id(table, 12)["note"]

    cum = by_id(table, 14)  # Jan-Jul: M9 2800 + 7r, M7 Mar-Jul 250
    assert cum["sim_mean"] == pytest.approx((3050 + 7 * R).mean())

    since = by_id(table, 15)  # M7 since its launch in March, through June
    assert since["sim_mean"] == 200 and since["start"] == "2024-03" and since["inside_band"]
    assert "since" in since["note"]

    tesla = by_id(table, 16)  # launched 2020: the results cannot give its cumulative total
    assert math.isnan(tesla["sim_mean"]) and not tesla["used"]
    assert "before the results start" in tesla["note"]

    approx = by_id(table, 17)  # ~12,500 is 11,875-13,125; sim is exactly 12,000
    assert approx["inside_band"] and approx["sim_mean"] == 12000


def test_figures_outside_the_results_and_of_other_bases(folder: Path) -> None:
    rep = figures(
        figure(20, "AITO", None, "monthly", "2025-03", "2025-03", 900),
        figure(21, "AITO", None, "monthly", "2023-12", "2023-12", 900),
        figure(22, "AITO", None, "monthly", "2024-06", "2024-06", 2000, basis="disputed"),
        figure(23, "AITO", None, "monthly", "2024-06", "2024-06", 700, measure="production"),
        figure(24, "AITO", None, "monthly", "2024-06", "2024-06", 700, market=None),
        figure(25, "AITO", "AITO M5", "monthly", "2024-06", "2024-06", 700),
        figure(26, "Porsche", None, "monthly", "2024-06", "2024-06", 700),
        figure(27, "AITO", None, "point", "2024-06", "2024-06", 1000, measure="cumulative", cumulative_of="production"),
    )
    table = compare(folder, rep).figures
    for fid in (20, 21):
        row = by_id(table, fid)
        assert math.isnan(row["sim_mean"]) and not row["used"] and "outside the results" in row["note"]
    for fid, words in ((22, "disputed"), (23, "different measure"), (24, "exports"), (27, "different measure")):
        row = by_id(table, fid)
        assert not math.isnan(row["sim_mean"]) and not row["used"] and words in row["note"]
    assert "AITO M5 not in the results" in by_id(table, 25)["note"]
    assert "Porsche not in the results" in by_id(table, 26)["note"]
    everything = compare(folder, rep, figures_filter=all_figures).figures
    assert everything[everything["figure_id"].isin([22, 23, 24, 27])]["used"].all()


def test_series_metrics_mape_mase_coverage_and_conflicting_sources(folder: Path) -> None:
    means = {m: 100 * m + 9.5 for m in range(1, 13)}  # mean deliveries of AITO M9 per month
    rows = [figure(100 + m, "AITO", "AITO M9", "monthly", f"2024-{m:02d}", f"2024-{m:02d}", means[m] / 1.1)
            for m in range(1, 13)]  # fmt: skip
    res = compare(folder, figures(*rows))
    s = res.series.set_index(["brand", "frequency"]).loc[("AITO", "monthly")]
    assert s["model"] == "AITO M9" and s["n"] == 12
    assert s["mape"] == pytest.approx(10.0)  # the simulation overshoots by 10% every month
    assert s["bias_pct"] == pytest.approx(10.0)
    # a year of reports only: no seasonal pair, so the naive forecast (previous month) scales
    assert "naive, previous period" in s["mase_basis"]
    reported = np.array([means[m] / 1.1 for m in range(1, 13)])
    assert s["mase"] == pytest.approx(np.mean(0.1 * reported) / np.mean(np.abs(np.diff(reported))))
    assert s["coverage"] == pytest.approx(np.mean([by_id(res.figures, 100 + m)["inside_band"] for m in range(1, 13)]))

    # a year earlier, 120 fewer each month (outside the results): the seasonal naive scale is 120
    earlier = [figure(200 + m, "AITO", "AITO M9", "monthly", f"2023-{m:02d}", f"2023-{m:02d}", means[m] / 1.1 - 120)
               for m in range(1, 13)]  # fmt: skip
    s = compare(folder, figures(*rows, *earlier)).series.set_index(["brand", "frequency"]).loc[("AITO", "monthly")]
    assert "seasonal naive" in s["mase_basis"] and "12 pair" in s["mase_basis"]
    assert s["mase"] == pytest.approx(np.mean(0.1 * reported) / 120)
    assert s["n"] == 12  # 2023 is history for the scale, not compared

    # two sources for one month: both shown, the period counts once, split by confidence
    conflict = figures(
        figure(300, "AITO", "AITO M9", "monthly", "2024-05", "2024-05", 509.5, confidence="high"),
        figure(301, "AITO", "AITO M9", "monthly", "2024-05", "2024-05", 509.5 * 2, confidence="low"),
    )
    res = compare(folder, conflict)
    assert len(res.figures) == 2
    s = res.series.set_index(["brand", "frequency"]).loc[("AITO", "monthly")]
    w_high, w_low = CONFIDENCE_WEIGHTS["high"] / 2, CONFIDENCE_WEIGHTS["low"] / 2
    assert s["weight"] == pytest.approx(w_high + w_low) and s["periods"] == 1
    assert s["mape"] == pytest.approx(100 * (w_low * 0.5) / (w_high + w_low))
    assert math.isnan(s["mase"])  # one period: nothing to scale by


def test_quarterly_and_annual_series_and_totals(folder: Path) -> None:
    rep = figures(
        figure(1, "AITO", "AITO M9", "quarterly", "2024-01", "2024-03", 600),
        figure(2, "AITO", "AITO M9", "quarterly", "2024-04", "2024-06", 1500),
        figure(3, "AITO", "AITO M9", "quarterly", "2023-04", "2023-06", 1400),
        figure(4, "Tesla", None, "annual", "2024-01", "2024-12", 10000),
        figure(5, "Tesla", None, "annual", "2023-01", "2023-12", 11000),
    )
    series = compare(folder, rep).series
    quarterly = series[(series["brand"] == "AITO") & (series["frequency"] == "quarterly")].iloc[0]
    # one pair a year apart (Q2) is fewer than two: the naive forecast (Q1 -> Q2 2024) scales
    assert quarterly["n"] == 2 and "naive, previous period" in quarterly["mase_basis"]
    mae = np.mean([abs((600 + 3 * R).mean() - 600), abs((1500 + 3 * R).mean() - 1500)])
    assert quarterly["mase"] == pytest.approx(mae / 900)
    # without Q1 there is no pair a quarter apart: the one seasonal pair it is
    only_q2 = compare(folder, rep[rep["line"] != 1]).series
    quarterly = only_q2[(only_q2["brand"] == "AITO") & (only_q2["frequency"] == "quarterly")].iloc[0]
    assert "seasonal naive" in quarterly["mase_basis"] and "1 pair" in quarterly["mase_basis"]
    assert quarterly["mase"] == pytest.approx(abs((1500 + 3 * R).mean() - 1500) / 100)
    annual = series[(series["brand"] == "Tesla") & (series["frequency"] == "annual")].iloc[0]
    assert annual["mape"] == pytest.approx(20.0) and annual["mase"] == pytest.approx(2000 / 1000)
    total = series[(series["brand"] == "(all)") & (series["frequency"] == "(all)")].iloc[0]
    assert total["n"] == 3


# --------------------------------------------------------------------------- targets


def test_replicates_of_one_particle_count_as_fewer_runs_in_the_probabilitys_interval() -> None:
    from sim.analysis.targets import effective_runs, summarize, wilson_interval

    rng = np.random.default_rng(0)
    # 400 replicates of 20 particles, each particle's replicates all reaching or all missing: worth 20 runs
    particle = np.repeat(np.arange(20), 20)
    reached = np.repeat(rng.random(20) < 0.6, 20)
    assert effective_runs(reached, particle) == pytest.approx(19)  # C - 1: the cluster-robust correction C / (C - 1)
    # independent outcomes within particles: worth about all of them
    mixed = rng.random(400) < 0.6
    assert 250 < effective_runs(mixed, particle) <= 400
    outcomes = pd.DataFrame({"run_id": np.arange(400), "reached": reached, "delivered": 0.0, "month_reached": None,
                             "shortfall": 0.0})  # fmt: skip
    clustered = summarize(outcomes, 1.0, pd.Series(particle, index=np.arange(400)))
    plain = summarize(outcomes, 1.0)
    k = int(reached.sum())
    assert (plain["probability_low"], plain["probability_high"]) == pytest.approx(wilson_interval(k, 400))
    assert clustered["probability"] == plain["probability"] and clustered["runs_effective"] == pytest.approx(20, abs=1.5)
    assert clustered["probability_high"] - clustered["probability_low"] > 3 * (plain["probability_high"] - plain["probability_low"])
    # every run agreeing: the count of particles
    assert effective_runs(np.ones(400, bool), particle) == 20


def test_target_arithmetic_on_a_hand_built_table() -> None:
    months = ["2026-01", "2026-02", "2026-03", "2026-04"]
    per_month = {0: 50, 1: 25, 2: 40, 3: 10}  # reaches 100 in Feb, Apr, Mar, never
    sales = pd.DataFrame(
        [{"run_id": r, "month": m, "brand": "AITO", "units": u} for r, u in per_month.items() for m in months]
        + [{"run_id": 0, "month": "2026-02", "brand": "Tesla", "units": 999}]
    )
    target = {"name": "hundred", "brand": "AITO", "units": 100, "start": "2026-01", "by": "2026-04"}
    s = target_summary(sales, target, ("2026-01", "2026-04"))
    assert s["name"] == "hundred" and s["runs"] == 4
    assert s["probability"] == 0.75
    assert s["probability_low"] < 0.75 < s["probability_high"]
    assert s["month_reached_p5"] == "2026-02"
    assert s["month_reached_median"] == "2026-03"
    assert s["month_reached_p95"] is None  # the run that never reaches it
    assert s["delivered_mean"] == pytest.approx((200 + 100 + 160 + 40) / 4)
    assert s["shortfall_mean"] == pytest.approx(15.0)
    assert s["shortfall_p50"] == 0.0
    assert s["shortfall_p95"] == pytest.approx(np.quantile([0, 0, 0, 60], 0.95))
    assert s["note"] == ""
    assert "not inside the results" in target_summary(sales, target, ("2026-01", "2026-03"))["note"]


def test_targets_of_a_folder(folder: Path) -> None:
    (t,) = compare(folder, figures()).targets
    assert t["name"] == "AITO 8,400" and t["units"] == 8400
    assert t["probability"] == pytest.approx(np.mean(8300 + 12 * R >= 8400))  # r >= 9
    assert t["delivered_mean"] == pytest.approx((8300 + 12 * R).mean())


# --------------------------------------------------------------------------- two folders


def plus_ten(r: int, m: int, product: str) -> int | None:
    u = base_units(r, m, product)
    return u + 10 if product == "AITO M9" and u is not None else u


def with_m8(r: int, m: int, product: str) -> int | None:
    """B launches AITO M8 in July: 60 a month, 30 taken from Tesla, 20 from M9, 10 new buyers."""
    if product == "AITO M8":
        return 60 if m >= 7 else None
    u = base_units(r, m, product)
    if u is not None and m >= 7:
        u -= {"Tesla Model Y": 30, "AITO M9": 20}.get(product, 0)
    return u


def test_paired_differences_of_a_known_change(folder: Path, tmp_path: Path) -> None:
    b = write_results(tmp_path / "b", plus_ten)
    pair = compare_pair(folder, b)
    assert pair.is_paired and pair.replicates == REPS
    p = pair.paired.set_index("metric")
    row = p.loc["AITO deliveries 2024"]
    assert row["mean_diff"] == 120 and row["diff_p5"] == 120 and row["diff_p95"] == 120
    assert (row["ci_low"], row["ci_high"]) == (120, 120)
    assert p.loc["AITO 8,400: window deliveries", "mean_diff"] == 120
    reached = p.loc["AITO 8,400: reached"]
    assert reached["a_mean"] == pytest.approx(np.mean(8300 + 12 * R >= 8400))
    assert reached["b_mean"] == 1.0
    assert reached["mean_diff"] == pytest.approx(1 - np.mean(8300 + 12 * R >= 8400))
    assert set(p["paired"]) == {True}
    assert "Tesla deliveries 2024" not in p.index  # AITO and the targets' brands only
    assert pair.cannibalisation.empty and pair.cannibalisation_summary["new_products"] == []


def test_pairing_refused_on_different_seeds(folder: Path, tmp_path: Path) -> None:
    b = write_results(tmp_path / "b", plus_ten, seed=8)
    with pytest.raises(InputError, match="same seed"):
        compare_pair(folder, b)
    c = write_results(tmp_path / "c", plus_ten, reps=REPS - 1)
    with pytest.raises(InputError, match="replicate"):
        compare_pair(folder, c)
    pair = compare_pair(folder, b, unpaired=True)
    assert not pair.is_paired
    row = pair.paired.set_index("metric").loc["AITO deliveries 2024"]
    assert row["mean_diff"] == pytest.approx(120)
    assert row["ci_low"] < 120 < row["ci_high"]  # independent samples: the spread counts


def test_cannibalisation_of_a_new_product(folder: Path, tmp_path: Path) -> None:
    b = write_results(tmp_path / "b", with_m8, products={**PRODUCTS, "AITO M8": "AITO"})
    pair = compare_pair(folder, b)
    s = pair.cannibalisation_summary
    assert s["new_products"] == ["AITO M8"]
    assert (s["window_start"], s["window_end"]) == ("2024-07", "2024-12")
    assert s["new_units"] == 360 and s["units_lost_total"] == 300
    assert s["outside_option"] == 60 and s["outside_option_share"] == pytest.approx(60 / 360)
    t = pair.cannibalisation
    assert list(t["model"]) == ["Tesla Model Y", "AITO M9", "AITO new M7"]  # sorted by units lost
    assert list(t["units_lost"]) == [180, 120, 0]
    assert list(t["share_of_new"]) == pytest.approx([0.5, 1 / 3, 0.0])
    assert list(t["lost_p5"]) == [180, 120, 0]


# --------------------------------------------------------------------------- command line


def test_cli_prints_a_table(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(folder), "--reported", str(FIGURES_CSV)]) == 0
    out = capsys.readouterr().out
    assert "PROBABILITY OF REACHING IT: 0.55" in out
    assert "SERIES METRICS" in out and "REPORTED FIGURES" in out
    assert "8,414" in out  # AITO 2024 mean, with thousands separators


def test_cli_json_has_the_required_keys(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(folder), "--reported", str(FIGURES_CSV), "--format", "json"]) == 0
    doc = strict_json(capsys.readouterr().out)
    assert set(doc) == {"figures", "series", "targets"}
    assert doc["targets"][0]["name"] == "AITO 8,400" and doc["targets"][0]["probability"] == 0.55
    ids = {f["figure_id"]: f for f in doc["figures"]}
    assert set(ids) == {2, 3, 4, 5, 6, 7, 8}
    assert set(ids[2]) == set(FIGURE_COLUMNS)
    assert ids[7]["sim_mean"] is None and ids[7]["inside_band"] is None  # 2025: NaN -> null
    assert not ids[8]["used"]  # disputed attribution
    assert ids[6]["sim_mean"] == pytest.approx(3116.5)


def test_cli_two_folders_json_and_csv(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = write_results(tmp_path / "b", with_m8, products={**PRODUCTS, "AITO M8": "AITO"})
    assert main(["compare", str(folder), str(b), "--reported", str(FIGURES_CSV), "--format", "json"]) == 0
    doc = strict_json(capsys.readouterr().out)
    assert set(doc) == {"figures", "series", "targets", "paired", "cannibalisation"}
    assert len(doc["targets"]) == 2 and all("probability" in t for t in doc["targets"])
    assert doc["cannibalisation"]["outside_option"] == 60
    assert main(["compare", str(folder), str(b), "--reported", str(FIGURES_CSV), "--format", "csv",
                 "--what", "cannibalisation"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0].startswith("model,brand") and lines[1].startswith("Tesla Model Y") and "(outside option)" in lines[-1]
    )
    assert main(["compare", str(folder), str(b), "--reported", str(FIGURES_CSV)]) == 0
    out = capsys.readouterr().out
    assert "PAIRED DIFFERENCES" in out and "CANNIBALISATION" in out and "outside option" in out


def test_cli_bad_input_exits_2(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path / "nowhere"), "--reported", str(FIGURES_CSV)]) == 2
    assert "no such results folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), "--reported", str(FIGURES_CSV)]) == 2
    assert main(["compare", str(folder), "--reported", str(tmp_path / "none.csv")]) == 2
    b = write_results(tmp_path / "b", plus_ten, seed=8)
    assert main(["compare", str(folder), str(b), "--reported", str(FIGURES_CSV)]) == 2
    assert "--unpaired" in capsys.readouterr().err
    assert main(["compare", str(folder), str(b), "--unpaired", "--reported", str(FIGURES_CSV), "--format", "json"]) == 0
    assert main(["compare", str(folder), "--what", "paired", "--reported", str(FIGURES_CSV)]) == 2


def test_compare_on_the_real_engine(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    from sim.runs.batch import run_batch
    from sim.runs.run import make_specs

    out = store.prepare_output(tmp_path / "tiny")
    manifest = {"kind": "run", "scenario_name": tiny.name, "scenario": tiny.model_dump(mode="json"), "seed": 7,
                "replications": 3}  # fmt: skip
    run_batch(make_specs(tiny, 3, seed=7), out, manifest, workers=1, progress=False)
    rep = figures(
        figure(1, "A", None, "annual", "2024-01", "2024-12", 10000),
        figure(2, "A", "A2", "point", "2024-12", "2024-12", 1000, measure="cumulative"),
    )
    res = compare(out, rep)
    (t,) = res.targets
    assert 0 <= t["probability"] <= 1 and t["runs"] == 3
    sales = store.load_results(out).sales
    annual = sales[sales["brand"] == "A"].groupby("run_id")["units"].sum()
    assert by_id(res.figures, 1)["sim_mean"] == pytest.approx(annual.mean())
    a2 = by_id(res.figures, 2)  # A2 delivers from May: cumulative since then
    assert a2["start"] == "2024-05"
    assert a2["sim_mean"] == pytest.approx(sales[sales["model"] == "A2"].groupby("run_id")["units"].sum().mean())
    pair = compare_pair(out, out)
    assert (pair.paired["mean_diff"] == 0).all()
