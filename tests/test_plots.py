"""Plot functions on synthetic results whose every number is known (sim.present.plots).

The synthetic market: brands AITO, B and C over 2024-01..2025-12, replicate ``r`` of product
``p`` delivering ``base[p] + 10 * r + month`` vehicles in month ``month`` (0, 1, 2...); C1 sells
from 2024-06 only. :func:`write_synthetic_results` stores it as a results folder (used by
tests/test_report.py too).
"""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from conftest import sales_table_of
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from sim.analysis.pair_comparison import compare_pair
from sim.analysis.targets import target_outcomes
from sim.present import plots
from sim.runs import store
from sim.runs.run import RUNS_COLUMNS
from sim.scenario.months import format_month, parse_month

MONTHS = plots.months_between("2024-01", "2025-12")
PRODUCTS = {  # name: (brand, segment, base units a month, first month)
    "AITO X": ("AITO", "300-400k", 5000, "2024-01"),
    "B1": ("B", "200-250k", 3000, "2024-01"),
    "B2": ("B", "300-400k", 1000, "2024-01"),
    "C1": ("C", "500k+", 500, "2024-06"),
}
SEGMENTS = ["200-250k", "300-400k", "500k+"]
TARGET = {"name": "AITO 100k", "brand": "AITO", "units": 100_000.0, "start": "2025-01", "by": "2025-12",
          "reported_cumulative_at_start": 150_000.0}  # fmt: skip
REPS = 5


def units_of(product: str, r: int, month: str) -> int | None:
    """Deliveries of ``product`` in ``month`` of replicate ``r`` (None: not on sale yet)."""
    brand, _, base, first = PRODUCTS[product]
    if parse_month(month) < parse_month(first):
        return None
    return base + 10 * r + MONTHS.index(month)


def synthetic_sales(reps: int = REPS, products: dict = PRODUCTS, extra: int = 0) -> pd.DataFrame:
    """The sales table of the synthetic market (``extra`` added to every AITO month from 2025-01)."""
    rows: list[dict] = []
    for r in range(reps):
        for month in MONTHS:
            for product, (brand, segment, _, _) in products.items():
                u = units_of(product, r, month) if product in PRODUCTS else (200 if month >= "2025-01" else None)
                if u is None:
                    continue
                u += extra if brand == "AITO" and month >= "2025-01" else 0
                rows.append({"run_id": r, "scenario": "syn", "replicate": r, "month": month, "market": "CN", "brand": brand,
                             "model": product, "segment": segment, "powertrain": "BEV", "units": u, "orders": u,
                             "backlog": 0, "cancellations": 0, "list_price": 3e5, "transaction_price": 3e5,
                             "paid_price": 3e5, "wait_months": 0.0})  # fmt: skip
    return sales_table_of(rows)


def write_synthetic_results(path: Path, *, seed: int = 7, targets: list | None = None, products: dict = PRODUCTS,
                            extra: int = 0, name: str = "syn") -> Path:  # fmt: skip
    """A results folder in the layout of ``sim run`` holding :func:`synthetic_sales`."""
    out = store.prepare_output(path)
    sales = synthetic_sales(products=products, extra=extra)
    runs = pd.DataFrame(
        [{"run_id": r, "scenario": name, "replicate": r, "seed_entropy": str(seed), "spawn_key": str(r),
          "status": "ok", "error": "", "seconds": 0.1, "buyer_decisions": 1, "scale": 1.0} for r in range(REPS)],
        columns=list(RUNS_COLUMNS),
    )  # fmt: skip
    store.write_part(out, "sales", "00000000", sales)
    store.write_part(out, "runs", "00000000", runs)
    scenario = {
        "name": name, "description": "synthetic", "start": MONTHS[0], "end": MONTHS[-1], "forecast_start": "2025-01",
        "segments": [{"name": s} for s in SEGMENTS],
        "products": [{"name": p, "brand": v[0], "launch": v[3], "price": 3e5} for p, v in products.items()],
        "targets": [TARGET] if targets is None else targets,
    }  # fmt: skip
    store.write_manifest(out, {"kind": "run", "scenario_name": name, "scenario": scenario, "seed": seed,
                               "scenario_hash": f"hash-{name}", "replications": REPS, "status": "complete"})  # fmt: skip
    return out


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return synthetic_sales()


def expected_units(brand: str) -> np.ndarray:
    """``[run, month]`` deliveries of a brand, from the formula."""
    out = np.zeros((REPS, len(MONTHS)))
    for p, (b, *_) in PRODUCTS.items():
        if b == brand:
            for r in range(REPS):
                for t, m in enumerate(MONTHS):
                    out[r, t] += units_of(p, r, m) or 0
    return out


def lines(fig: Figure, label_part: str) -> list[Line2D]:
    return [ln for ax in fig.axes for ln in ax.get_lines() if label_part in str(ln.get_label())]


def visible_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]


# --------------------------------------------------------------------------- frames


def test_monthly_units_fill_every_month_and_keep_totals(sales: pd.DataFrame) -> None:
    m = plots.monthly_units(sales)
    assert len(m) == REPS * len(MONTHS) * 3  # every run, month and brand, C's first months as zeros
    c = m[m["brand"] == "C"].pivot(index="run_id", columns="month", values="units").to_numpy()
    np.testing.assert_array_equal(c, expected_units("C"))
    assert m["units"].sum() == sales["units"].sum()


def test_cumulative_units_start_at_the_window_and_add_the_level(sales: pd.DataFrame) -> None:
    c = plots.cumulative_units(sales, "AITO", "2025-01", "2025-12", level=150_000)
    wide = c.pivot(index="run_id", columns="month", values="value")
    assert list(wide.columns) == plots.months_between("2025-01", "2025-12")
    expected = 150_000 + expected_units("AITO")[:, 12:].cumsum(axis=1)
    np.testing.assert_array_equal(wide.to_numpy(), expected)


def test_cumulative_units_of_a_brand_that_sells_nothing_are_zero(sales: pd.DataFrame) -> None:
    c = plots.cumulative_units(sales, "Nobody")
    assert len(c) == REPS * len(MONTHS) and (c["value"] == 0).all()


def test_quantile_bands_are_numpys_quantiles(sales: pd.DataFrame) -> None:
    b = plots.quantile_bands(plots.monthly_units(sales), ["brand", "month"], "units")
    row = b[(b["brand"] == "B") & (b["month"] == "2024-07")].iloc[0]
    x = expected_units("B")[:, MONTHS.index("2024-07")]
    for name, q in plots.QUANTILES.items():
        assert row[name] == pytest.approx(np.quantile(x, q))
    assert row["mean"] == pytest.approx(x.mean())


def test_shares_sum_to_one_per_month_and_inside_each_segment(sales: pd.DataFrame) -> None:
    seg = plots.shares(sales, "segment")
    assert np.allclose(seg.groupby("month")["share"].sum(), 1.0)
    inside = plots.shares(sales, "brand", within="segment")
    assert np.allclose(inside.groupby(["segment", "month"])["share"].sum(), 1.0)
    # 300-400k in 2024-03: AITO X against B2, both formula-known, averaged over runs
    t = MONTHS.index("2024-03")
    a = np.array([5000 + 10 * r + t for r in range(REPS)])
    b2 = np.array([1000 + 10 * r + t for r in range(REPS)])
    got = inside[(inside["segment"] == "300-400k") & (inside["month"] == "2024-03") & (inside["brand"] == "AITO")]
    assert float(got["share"].iloc[0]) == pytest.approx(np.mean(a / (a + b2)))


def test_quarterly_shares_are_labelled_by_the_quarters_middle_month(sales: pd.DataFrame) -> None:
    q = plots.shares(sales, "brand", within="segment", quarterly=True)
    assert sorted(q["month"].unique()) == [format_month(parse_month(m) + 1) for m in MONTHS[::3]]


# --------------------------------------------------------------------------- styling


def test_brand_styles_tell_28_brands_apart_and_put_aito_in_black() -> None:
    brands = ["AITO", *(f"brand {i:02d}" for i in range(27))]
    styles = plots.brand_styles(brands)
    assert styles["AITO"]["color"] == "#000000"
    pairs = {(s["color"], s["ls"]) for s in styles.values()}
    assert len(pairs) == len(brands)
    assert plots.OKABE_ITO["yellow"] not in {s["color"] for s in styles.values()}  # too light on white


def test_segment_colours_darken_monotonically_so_greyscale_keeps_their_order() -> None:
    def luminance(c: tuple) -> float:
        r, g, b = mcolors.to_rgb(c)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    lum = [luminance(c) for c in plots.segment_colours(6)]
    assert all(b - a > 0.05 for a, b in zip(lum, lum[1:], strict=False))


def test_numbers_have_thousands_separators() -> None:
    assert plots.units_text(1234567) == "1,234,567"
    assert plots.units_text(-2500, signed=True) == "-2,500"
    assert plots.units_text(math.nan) == "-"
    assert plots.rmb_text(249800) == "RMB 249,800"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_save_writes_png_svg_and_pdf(tmp_path: Path, sales: pd.DataFrame) -> None:
    fig = plots.plot_segments(plots.shares(sales, "segment"), title="t", order=SEGMENTS)
    w, h = png_size(plots.png_bytes(fig, dpi=50))
    assert (w, h) == (round(10.5 * 50), round((5.4 + plots.HEADER_INCHES) * 50))
    plots.save(fig, tmp_path / "f.svg")
    assert "<svg" in (tmp_path / "f.svg").read_text()[:2000]
    buf = io.BytesIO()
    plots.save(fig, buf, "pdf")
    assert buf.getvalue().startswith(b"%PDF")
    with pytest.raises(ValueError, match="unknown figure format 'jpg'"):
        plots.save(fig, tmp_path / "f.jpg")


# --------------------------------------------------------------------------- figures


def test_fan_chart_draws_the_median_from_the_anchor_the_target_and_reported_points(sales: pd.DataFrame) -> None:
    values = plots.cumulative_units(sales, "AITO", "2025-01", "2025-12", level=150_000)
    history = plots.cumulative_units(sales, "AITO", end="2025-01")
    reported = pd.DataFrame({"month": ["2024-06", "2025-01"], "value": [30_000.0, 150_000.0]})
    fig = plots.plot_fan(
        [plots.Fan("history", history, "history"), plots.Fan("toward", values, "main", anchor=150_000)],
        title="AITO cumulative deliveries (syn)", subtitle="5 runs",
        target=plots.TargetLine(250_000, "2025-12", "target"), reported=reported, forecast_start="2025-01",
    )  # fmt: skip
    assert fig.get_label() == "AITO cumulative deliveries (syn)"
    (median,) = lines(fig, "toward: median")
    expected = np.r_[150_000, np.median(150_000 + expected_units("AITO")[:, 12:].cumsum(axis=1), axis=0)]
    np.testing.assert_allclose(median.get_ydata(), expected)
    assert len(median.get_xdata()) == 13  # the anchor month (2024-12) and the window
    ax = fig.axes[0]
    assert any(list(ln.get_ydata()) == [250_000, 250_000] for ln in ax.get_lines())  # the target line
    (pts,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(pts.get_offsets()[:, 1], [30_000, 150_000])
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert "100,000" in labels
    months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
    xl = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert xl and all(x in months or (x.isdigit() and len(x) == 4) for x in xl)


def test_brand_panels_put_aito_first_and_draw_each_brands_median(sales: pd.DataFrame) -> None:
    monthly = plots.monthly_units(sales)
    reported = pd.DataFrame({"brand": ["B", "B"], "month": ["2024-02", "2024-03"], "value": [4000.0, 4100.0],
                             "used": [True, False]})  # fmt: skip
    ref = plots.monthly_units(synthetic_sales(extra=1000))
    fig = plots.plot_brands(monthly, title="brands", reported=reported, reference=ref, reference_label="ref",
                            forecast_start="2025-01")  # fmt: skip
    axes = visible_axes(fig)
    assert [ax.get_title(loc="left") for ax in axes] == ["AITO", "B", "C"]
    for ax, brand in zip(axes, ["AITO", "B", "C"], strict=True):
        solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_ydata()) == len(MONTHS)]
        np.testing.assert_allclose(solid[0].get_ydata(), np.median(expected_units(brand), axis=0))
    dashed = [ln for ln in axes[0].get_lines() if ln.get_linestyle() == "--" and len(ln.get_ydata()) == len(MONTHS)]
    np.testing.assert_allclose(dashed[0].get_ydata(), np.median(expected_units("AITO"), axis=0) + 1000 * (np.arange(24) >= 12))
    points = [c for c in axes[1].collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == 2


def test_segment_shares_stack_to_one(sales: pd.DataFrame) -> None:
    fig = plots.plot_segments(plots.shares(sales, "segment"), title="segments", order=SEGMENTS, forecast_start="2025-01")
    ax = fig.axes[0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(SEGMENTS)
    top = bands[-1].get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(1.0)
    assert ax.get_ylim() == (0.0, 1.0)


def test_segment_brand_panels_follow_the_segments_and_show_aito(sales: pd.DataFrame) -> None:
    within = plots.shares(sales, "brand", within="segment", quarterly=True)
    fig = plots.plot_segment_brands(within, title="inside", order=SEGMENTS, top=1)
    axes = visible_axes(fig)
    assert [ax.get_title(loc="left") for ax in axes] == [f"{s} RMB" for s in SEGMENTS]
    in_300 = {str(ln.get_label()) for ln in axes[1].get_lines() if not str(ln.get_label()).startswith("_")}
    assert in_300 == {"AITO"}  # the top brand there; B2 is smaller
    in_200 = {str(ln.get_label()) for ln in axes[0].get_lines() if not str(ln.get_label()).startswith("_")}
    assert in_200 == {"B"}  # AITO does not sell there


def test_target_figure_shows_the_probability_and_the_months_reached(sales: pd.DataFrame) -> None:
    # AITO delivers 5,000 + 10 r + t a month (t = 12..23 in 2025): 60,210 + 120 r in 2025, so 60,500
    # is reached in December by replicates 3 and 4 only
    oc = target_outcomes(sales, "AITO", 60_500, "2025-01", "2025-12")
    assert oc["reached"].tolist() == [False, False, False, True, True]
    hard = target_outcomes(sales, "AITO", 1e9, "2025-01", "2025-12")
    fig = plots.plot_target([("easy", oc), ("impossible", hard)], by="2025-12", start="2025-01", title="t")
    ax_p, ax_h = fig.axes
    widths = [p.get_width() for p in ax_p.patches if isinstance(p, Rectangle)]
    assert widths == [pytest.approx(oc["reached"].mean()), pytest.approx(0.0)]
    heights = [p.get_height() for p in ax_h.patches if isinstance(p, Rectangle)]
    assert sum(heights) == pytest.approx(2.0)  # each scenario's bars sum to all its runs
    assert ax_h.get_xticklabels()[-1].get_text() == "not by\nDec 2025"


def test_paired_figure_leaves_out_identical_years(tmp_path: Path) -> None:
    a = write_synthetic_results(tmp_path / "a")
    b = write_synthetic_results(tmp_path / "b", extra=100, name="more")
    pair = compare_pair(store.load_results(a), store.load_results(b))
    fig = plots.plot_paired(pair.paired, title="paired")
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert "AITO deliveries 2025" in labels and "AITO 100k: reached" in labels
    assert "AITO deliveries 2024" not in labels  # identical in both: left out
    diff = pair.paired.set_index("metric").loc["AITO deliveries 2025", "mean_diff"]
    assert diff == pytest.approx(1200)  # 100 more a month
    everything = plots.plot_paired(pair.paired, title="paired", drop_identical=False)
    assert "AITO deliveries 2024" in [t.get_text() for ax in everything.axes for t in ax.get_yticklabels()]


def test_cannibalisation_figure_draws_the_top_products_the_rest_and_the_outside_option(tmp_path: Path) -> None:
    a = write_synthetic_results(tmp_path / "a")
    b = write_synthetic_results(tmp_path / "b", products={**PRODUCTS, "AITO New": ("AITO", "300-400k", 0, "2025-01")})
    pair = compare_pair(store.load_results(a), store.load_results(b))
    s = pair.cannibalisation_summary
    assert s["new_products"] == ["AITO New"] and s["new_units"] == pytest.approx(200 * 12)
    fig = plots.plot_cannibalisation(pair.cannibalisation, s, title="c", own_brands=["AITO"], top=2)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() == pytest.approx(0.7)]
    assert len(bars) == 2 + 1 + 1  # top 2, the rest, the outside option
    assert bars[-1].get_width() == pytest.approx(s["outside_option"])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1].startswith("outside option") and labels[-2] == f"{len(pair.cannibalisation) - 2} other products"
