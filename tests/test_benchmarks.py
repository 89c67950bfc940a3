"""Scorable figures, the origin gate, monthly histories and the benchmark forecasters.

The forecasters are checked on synthetic series whose forecast is known exactly (a constant, a
purely seasonal series, a line, noiseless Bass data), and against leakage: figures dated after
the origin change nothing.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis.benchmarks import (
    BENCHMARKS,
    BassFit,
    bass,
    benchmark_forecasts,
    benchmark_path,
    drift,
    ets,
    fit_bass,
    monthly_history,
    naive,
    seasonal_naive,
)
from sim.analysis.figures import SCORABLE_COLUMNS, figures_upto, reported_periods, scorable_figures
from sim.analysis.reported import ReportedFigures, load_reported
from sim.scenario.months import format_month, parse_month

DATA = Path(__file__).resolve().parent / "data"
JAN23 = parse_month("2023-01")


def figure(
    entity: str, start: int, end: int, value: float, *, line: int = 0, confidence: str = "high"
) -> dict[str, object]:
    """One row of a scorable-figures table (``start``, ``end`` month indices; ``value`` vehicles)."""
    months = end - start + 1
    frequency = "monthly" if months == 1 else "quarterly" if months == 3 else "annual" if months == 12 else "cumulative"
    return {
        "line": line, "brand": entity.split()[0], "model": None, "entity": entity,
        "start": format_month(start), "end": format_month(end), "start_index": start, "end_index": end,
        "months": months, "frequency": frequency, "measure": "deliveries", "value": float(value),
        "low": float(value), "high": float(value), "qualifier": "=", "confidence": confidence, "basis": "", "source": "test",
    }  # fmt: skip


def table(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A scorable-figures table of ``rows``, lines numbered in order when not given."""
    for k, row in enumerate(rows):
        row["line"] = row["line"] or k + 2
    return pd.DataFrame(rows, columns=list(SCORABLE_COLUMNS))


def monthly_rows(entity: str, first: int, values: np.ndarray, line0: int = 1000) -> list[dict[str, object]]:
    return [figure(entity, first + k, first + k, v, line=line0 + k) for k, v in enumerate(values)]


def series(first: int, values: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(values, float), index=pd.RangeIndex(first, first + len(values)))


# --------------------------------------------------------------------------- scorable figures


@pytest.fixture(scope="module")
def fixture_figures() -> ReportedFigures:
    return load_reported(DATA / "reported_scoring.csv")


def test_scorable_figures_keep_volumes_of_simulated_entities_over_known_months(
    fixture_figures: ReportedFigures,
) -> None:
    s = scorable_figures(fixture_figures, ["AITO", "Li Auto", "Zeekr"], ["AITO M9"])
    assert list(s.columns) == list(SCORABLE_COLUMNS)
    # kept: two conflicting sources of one month (2, 3), a quarter, a year (~), a Jan-Jul sum,
    # a model's month (>), both items of a ranking cell (14), a range (11) and a '<' month (17);
    # dropped: a to-date sum with no start (7), a milestone (8), production (10), a brand the
    # scenario lacks (12, 16), an alliance (13), a row with no figure (15)
    assert sorted(zip(s["line"], s["entity"], strict=True)) == [
        (2, "AITO"), (3, "AITO"), (4, "AITO"), (5, "AITO"), (6, "AITO"), (9, "AITO M9"),
        (11, "Li Auto"), (14, "AITO"), (14, "Li Auto"), (17, "Zeekr"),
    ]  # fmt: skip
    row = s.set_index(["line", "entity"])
    assert row.loc[(6, "AITO"), ["start", "end", "frequency", "months"]].tolist() == [
        "2023-01",
        "2023-07",
        "cumulative",
        7,
    ]
    assert row.loc[(9, "AITO M9"), ["brand", "model", "qualifier", "low"]].tolist() == ["AITO", "AITO M9", ">", 10000.0]
    assert row.loc[(4, "AITO"), ["start_index", "end_index"]].tolist() == [JAN23, JAN23 + 2]
    assert row.loc[(11, "Li Auto"), ["qualifier", "low", "high", "value"]].tolist() == ["range", 480e3, 520e3, 500e3]
    assert row.loc[(2, "AITO"), "model"] is None
    assert list(s["end_index"]) == sorted(s["end_index"])


def test_scorable_figures_after_and_through_cut_on_the_last_month(fixture_figures: ReportedFigures) -> None:
    s = scorable_figures(fixture_figures, ["AITO", "Li Auto", "Zeekr"], ["AITO M9"], after="2023-07", through="2024-03")
    assert sorted(s["line"]) == [5, 9, 14, 14]
    assert (s["end"] > "2023-07").all() and (s["end"] <= "2024-03").all()
    assert scorable_figures(fixture_figures, ["Porsche"], [], after=parse_month("2024-03"))["line"].tolist() == [16]


def test_figures_upto_never_passes_a_figure_dated_after_the_origin() -> None:
    rf = load_reported()
    scorable = scorable_figures(rf, rf.figures["brand"].dropna().unique(), rf.figures["model"].dropna().unique())
    ends = rf.figures["end"].map(parse_month)
    for origin in range(parse_month("2021-01"), parse_month("2026-02")):
        seen = figures_upto(rf, origin)
        assert isinstance(seen, ReportedFigures) and seen.path == rf.path
        assert (seen.figures["end"].map(parse_month) <= origin).all()
        assert len(seen.figures) == int((ends <= origin).sum())  # and nothing earlier is lost
        cut = figures_upto(scorable, format_month(origin))
        assert (cut["end_index"] <= origin).all()
        assert len(cut) == int((scorable["end_index"] <= origin).sum())
    assert len(figures_upto(rf.figures, "2024-06")) == len(figures_upto(rf, "2024-06").figures)


# --------------------------------------------------------------------------- monthly history


def test_monthly_history_spreads_periods_over_unknown_months_and_conserves_totals() -> None:
    figs = table([
        figure("AITO", JAN23, JAN23, 100),
        figure("AITO", JAN23, JAN23 + 2, 400),  # Feb, Mar: 150 each
        figure("AITO", JAN23 + 3, JAN23 + 3, 200),
        figure("AITO", JAN23, JAN23 + 11, 2400),  # May..Dec: (2400 - 400 - 200) / 8
        figure("AITO", JAN23 + 14, JAN23 + 14, 100),
        figure("AITO", JAN23 + 12, JAN23 + 18, 700),  # Jan..Jul 2024 but Mar: 100 each
        figure("Li", JAN23, JAN23 + 11, 9999),  # another entity
    ])  # fmt: skip
    h = monthly_history(figs, "AITO", JAN23, JAN23 + 20)
    assert list(h.index) == list(range(JAN23, JAN23 + 21))
    assert h.loc[JAN23 : JAN23 + 3].tolist() == [100, 150, 150, 200]
    assert h.loc[JAN23 + 4 : JAN23 + 11].tolist() == pytest.approx([225] * 8)
    assert h.loc[JAN23 + 12 : JAN23 + 18].tolist() == pytest.approx([100] * 7)
    assert h.loc[JAN23 + 19 :].isna().all()  # nothing known
    for f in figs[figs["entity"] == "AITO"].itertuples():
        assert h.loc[f.start_index : f.end_index].sum() == pytest.approx(f.value)
    assert h.attrs["notes"] == []


def test_monthly_history_averages_sources_by_confidence() -> None:
    figs = table([figure("AITO", JAN23, JAN23, 100), figure("AITO", JAN23, JAN23, 130, confidence="low")])
    assert monthly_history(figs, "AITO", JAN23, JAN23)[JAN23] == pytest.approx((100 * 1.0 + 130 * 0.3) / 1.3)


def test_monthly_history_clips_a_negative_remainder_and_says_so() -> None:
    figs = table(
        [
            figure("NIO", JAN23, JAN23, 300),
            figure("NIO", JAN23 + 1, JAN23 + 1, 300),
            figure("NIO", JAN23, JAN23 + 2, 500),
        ]
    )
    h = monthly_history(figs, "NIO", JAN23, JAN23 + 2)
    assert h.tolist() == [300, 300, 0]
    assert len(h.attrs["notes"]) == 1 and "exceed it by 100" in h.attrs["notes"][0]


def test_monthly_history_counts_months_before_the_first_delivery_as_zero_and_reads_nothing_later() -> None:
    figs = table([figure("AITO M9", JAN23, JAN23 + 2, 300), figure("AITO M9", JAN23 + 3, JAN23 + 3, 999)])
    h = monthly_history(figs, "AITO M9", JAN23 + 1, JAN23 + 2)
    assert list(h.index) == [JAN23 + 1, JAN23 + 2] and h.tolist() == [150, 150]


# --------------------------------------------------------------------------- forecasters


def test_naive_repeats_the_last_known_month() -> None:
    assert naive(series(JAN23, [500.0] * 24), 12).tolist() == [500.0] * 12
    assert naive(series(JAN23, [100.0, 200.0, np.nan, np.nan]), 3).tolist() == [200.0] * 3


def test_seasonal_naive_is_exact_on_a_purely_seasonal_series() -> None:
    k = np.arange(60)
    y = 1000 + 300 * np.sin(2 * np.pi * k / 12) + 50 * (k % 3)
    notes: list[str] = []
    assert seasonal_naive(series(JAN23, y[:36]), 24, notes=notes) == pytest.approx(y[36:])
    assert notes == []


def test_seasonal_naive_falls_back_to_naive_where_the_year_before_is_unknown_and_counts() -> None:
    notes: list[str] = []
    y = np.arange(1.0, 7.0)
    out = seasonal_naive(series(JAN23, y), 12, notes=notes)
    assert out.tolist() == [6.0] * 6 + y.tolist()
    assert notes == ["seasonal_naive: 6 of 12 months had no value a year before (naive used)"]


def test_drift_is_exact_on_a_line_even_with_gaps() -> None:
    y = 100 + 50 * np.arange(30.0)
    h = series(JAN23, y[:24])
    h.iloc[[3, 10, 11]] = np.nan
    assert drift(h, 6) == pytest.approx(y[24:])


def test_ets_is_close_on_a_smooth_series_and_falls_back_when_short() -> None:
    k = np.arange(48)
    line = 5000 + 120.0 * k
    assert ets(series(JAN23, line[:36]), 12) == pytest.approx(line[36:], rel=0.01)
    growth = 10_000 * np.exp(0.02 * k)  # a linear trend in vehicles misses the compounding a little
    assert ets(series(JAN23, growth[:36]), 12) == pytest.approx(growth[36:], rel=0.05)
    level = 2000 + 100 * np.sin(2 * np.pi * k / 12)
    assert ets(series(JAN23, level[:36]), 12) == pytest.approx(level[36:], rel=0.03)
    notes: list[str] = []
    assert ets(series(JAN23, [1.0, 2.0, 3.0]), 2, notes=notes).tolist() == [3.0, 3.0]
    assert notes == ["ets: 3 known months (< 6); naive used"]


TRUE_BASS = BassFit(p=0.03, q=0.5, m=500_000.0, start=float(JAN23), start_fitted=False)


def bass_figures(truth: BassFit, first: int) -> pd.DataFrame:
    """Noiseless Bass volumes from ``first``: two years monthly, three annual sums, a year monthly."""
    rows = monthly_rows("Zeekr", first, truth.monthly(np.arange(first, first + 24)))
    for year in range(2, 5):
        s = first + 12 * year
        rows.append(figure("Zeekr", s, s + 11, float(truth.monthly(np.arange(s, s + 12)).sum()), line=2000 + year))
    rows += monthly_rows("Zeekr", first + 60, truth.monthly(np.arange(first + 60, first + 72)), line0=3000)
    return table(rows)


def test_bass_recovers_p_q_m_from_monthly_and_annual_figures() -> None:
    figs = bass_figures(TRUE_BASS, JAN23)
    origin = JAN23 + 71
    history = monthly_history(figs, "Zeekr", JAN23, origin)
    fit = fit_bass(history, first_delivery=JAN23, periods=reported_periods(figs, "Zeekr", origin))
    assert fit is not None and not fit.start_fitted and fit.start == JAN23
    assert (fit.p, fit.q, fit.m) == pytest.approx((TRUE_BASS.p, TRUE_BASS.q, TRUE_BASS.m), rel=0.03)
    future = np.arange(origin + 1, origin + 13)
    assert bass(history, 12, first_delivery=JAN23, periods=reported_periods(figs, "Zeekr", origin)) == pytest.approx(
        TRUE_BASS.monthly(future), rel=0.03
    )


def test_bass_fits_the_start_of_an_entity_on_sale_before_its_figures() -> None:
    truth = BassFit(p=0.02, q=0.6, m=300_000.0, start=float(JAN23 - 30), start_fitted=True)
    figs = bass_figures(truth, JAN23)
    origin = JAN23 + 71
    history = monthly_history(figs, "Zeekr", JAN23, origin)
    fit = fit_bass(history, first_delivery=None, periods=reported_periods(figs, "Zeekr", origin))
    assert fit is not None and fit.start_fitted
    # The start is fitted before the first figure, but not to the month: with p much smaller than q a Bass curve is
    # nearly a logistic shifted by ln(q/p)/(p+q), so a later start with a larger p fits these noiseless figures to
    # rounding error (starts from 17 to 67 months before them did, depending on the optimiser's path). What the
    # figures do fix is the curve over them and after them.
    assert truth.start - 40 <= fit.start < JAN23
    assert fit.monthly(np.arange(JAN23, origin + 1)) == pytest.approx(truth.monthly(np.arange(JAN23, origin + 1)), rel=0.01)
    assert fit.monthly(np.arange(origin + 1, origin + 13)) == pytest.approx(
        truth.monthly(np.arange(origin + 1, origin + 13)), rel=0.05
    )


def test_bass_with_too_few_figures_falls_back_to_naive_and_says_so() -> None:
    notes: list[str] = []
    assert bass(series(JAN23, [10.0, 20.0]), 2, notes=notes).tolist() == [20.0, 20.0]
    assert notes == ["bass: 2 figures (< 3); not fitted", "bass: naive used"]


def test_a_launch_ramp_fills_months_between_a_first_delivery_and_the_first_figure() -> None:
    h = series(JAN23, [np.nan, np.nan, np.nan, 400.0, 400.0])
    assert benchmark_path("naive", h, JAN23 + 6, first_delivery=JAN23).tolist() == [100, 200, 300, 400, 400, 400, 400]
    assert benchmark_path("naive", h, JAN23 + 6).tolist() == [400] * 7  # on sale before: flat


# --------------------------------------------------------------------------- forecasts of figures


def constant_figures() -> pd.DataFrame:
    rows = monthly_rows("AITO", JAN23, np.full(18, 1000.0))
    rows += [
        figure("AITO", JAN23 + 17, JAN23 + 19, 2900, line=10),  # Jun..Aug 2024 around an origin in Jul
        figure("AITO", JAN23 + 19, JAN23 + 19, 1100, line=11),  # horizon 1
        figure("AITO", JAN23 + 12, JAN23 + 23, 12_500, line=12),  # the year 2024, horizon 5
        figure("AITO", JAN23 + 31, JAN23 + 31, 1000, line=13),  # horizon 13: not scored
        figure("AITO M9", JAN23 + 12, JAN23 + 23, 5000, line=14),  # launched after the origin
    ]  # fmt: skip
    return table(rows)


def test_benchmark_forecasts_sum_known_months_and_forecasts_over_each_figure() -> None:
    figs = constant_figures()
    origin = JAN23 + 18
    scored = figs[figs["end_index"] > origin]
    out = benchmark_forecasts(scored, figs, origin, {"AITO": JAN23, "AITO M9": JAN23 + 20})
    assert list(out.columns) == ["origin", "line", "entity", "horizon", "benchmark", "forecast", "note"]
    assert set(out["benchmark"]) == set(BENCHMARKS) and len(out) == 4 * len(BENCHMARKS)
    assert 13 not in set(out["line"])
    naive_ = out[out["benchmark"] == "naive"].set_index("line")
    # Jun (observed 1000) + Jul (observed 1000) + Aug (forecast 1000); Jul: not observed
    assert naive_.loc[10, ["forecast", "horizon"]].tolist() == [3000.0, 1]
    assert naive_.loc[12, ["forecast", "horizon"]].tolist() == [12_000.0, 5]
    assert math.isnan(naive_.loc[14, "forecast"]) and "no figure of AITO M9" in naive_.loc[14, "note"]
    for name in ("seasonal_naive", "drift", "ets", "bass"):
        got = out[(out["benchmark"] == name) & (out["line"] == 12)]["forecast"].iloc[0]
        assert got == pytest.approx(12_000.0, rel=0.02), name


def test_months_before_the_first_delivery_count_zero() -> None:
    figs = table(
        monthly_rows("AITO M9", JAN23 + 14, np.full(4, 1000.0))
        + [figure("AITO M9", JAN23 + 12, JAN23 + 23, 9000, line=9)]
    )
    out = benchmark_forecasts(figs[figs["line"] == 9], figs, JAN23 + 17, {"AITO M9": JAN23 + 14})
    assert out.set_index("benchmark").loc["naive", "forecast"] == 10_000.0


def test_figures_after_the_origin_change_no_benchmark_forecast() -> None:
    k = np.arange(40)
    values = 3000 * np.exp(0.03 * k) * (1 + 0.2 * np.sin(2 * np.pi * k / 12))
    rows = monthly_rows("Li Auto", JAN23, values)
    rows += [
        figure("Li Auto", JAN23 + 12 * y, JAN23 + 12 * y + 11, values[12 * y : 12 * y + 12].sum(), line=900 + y)
        for y in range(3)
    ]
    figs = table(rows)
    origin = JAN23 + 22
    scored = figs[figs["end_index"] > origin]
    alone = benchmark_forecasts(scored, figures_upto(figs, origin), origin, {"Li Auto": JAN23})
    later = figs[figs["end_index"] > origin].assign(value=lambda t: t["value"] * 7)  # wildly different futures
    everything = benchmark_forecasts(scored, pd.concat([figures_upto(figs, origin), later]), origin, {"Li Auto": JAN23})
    pd.testing.assert_frame_equal(alone, everything)
    assert alone["forecast"].notna().all() and len(alone) == len(BENCHMARKS) * int(
        (scored["end_index"] <= origin + 12).sum()
    )


def test_benchmark_forecasts_of_the_fixture_file(fixture_figures: ReportedFigures) -> None:
    s = scorable_figures(fixture_figures, ["AITO", "Li Auto", "Zeekr"], ["AITO M9"])
    origin = parse_month("2023-12")
    out = benchmark_forecasts(s, s, origin, {"AITO": JAN23}, horizon=12)
    by_entity = out.groupby("entity")["forecast"]
    assert by_entity.apply(lambda f: f.notna().all())["AITO"]
    assert by_entity.apply(lambda f: f.isna().all())[["AITO M9", "Li Auto", "Zeekr"]].all()
