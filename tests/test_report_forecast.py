"""A forecast, its decomposition and a backtest in the report, ``sim plot``, ``sim compare``, ``sim run``'s
summary and the dashboard (sim/present/forecast_folder.py, anatomy.py, backtest_folder.py,
report_forecast.py, report_backtest.py, plots/forecast.py, plots/backtest.py, dashboard/forecast_view.py).

The folders (tests/forecast_folders.py) are made once per session: a real ``sim forecast`` of a small
drifting market, a real ``sim decompose`` of it, and a synthetic backtest whose every score is known.
"""

from __future__ import annotations

import html as html_module
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, cli_env
from forecast_folders import (
    BEFORE,
    BT_ASSIMILATED,
    BT_ASSIMILATED_HORIZONS,
    BT_ERRORS,
    BT_ORIGINS,
    BT_STALE,
    ORIGIN,
    PARTICLES,
    REPLICATIONS,
)
from forecast_folders import backtest_folder as make_backtest
from forecast_folders import decomposition_folder as make_decomposition
from forecast_folders import forecast_folder as make_forecast
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.markers import MarkerStyle
from test_plots import write_synthetic_results
from test_report import png_images

from sim.analysis.compare import target_table
from sim.analysis.targets import target_outcomes
from sim.cli import main
from sim.present import plots
from sim.present.anatomy import anatomy_rows, find_decomposition
from sim.present.backtest_folder import assimilation_errors, horizon_coverage, horizon_errors, load_backtest
from sim.present.forecast_folder import assimilation_of, before_folder
from sim.present.report_batch import load_batch
from sim.present.report_figures import NEEDS_FORECAST
from sim.present.report_forecast import forecast_fan_figure
from sim.runs.store import load_results
from sim.scenario.yamlio import InputError


@pytest.fixture(scope="session")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.getbasetemp() / "forecast_folders"
    return {"forecast": make_forecast(root), "decomposition": make_decomposition(root), "backtest": make_backtest(root)}


@pytest.fixture(scope="module")
def report(folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("fc_report") / "report.html"
    assert main(["report", str(folders["forecast"]), "--out", str(out), "--decomposition", str(folders["decomposition"]),
                 "--backtest", str(folders["backtest"])]) == 0  # fmt: skip
    return out.read_text(encoding="utf-8")


def section(html: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert m, f"no section {anchor}"
    return m.group(1)


def text(html: str) -> str:
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


# --------------------------------------------------------------------------- reading a forecast folder


def test_the_assimilation_says_where_each_figure_falls(folders):
    res = load_results(folders["forecast"])
    a = assimilation_of(res.manifest)
    assert a is not None and a.origin == ORIGIN and a.particles == PARTICLES
    f = a.figures.set_index("figure")
    assert list(f.loc[[f"A 2024-0{m}" for m in range(4, 9)], "kind"]) == ["monthly"] * 5
    assert tuple(f.loc["B 2024-06..2024-08", ["kind", "level", "entity", "start", "end"]]) == (
        "span", "brand", "B", "2024-06", "2024-08")  # fmt: skip
    assert tuple(f.loc["A cumulative delivered to 2024-08-20", ["kind", "level", "entity"]]) == ("cumulative", "brand", "A")
    assert f.loc["A 2024-08", "qualifier"] == ">"
    # inside: the report within the particles' 5-95% before it; a lower bound: their 95% reaches it
    two = f[f["qualifier"] == "="]
    assert list(two["inside"]) == list((two["simulated_p5"] <= two["reported"]) & (two["reported"] <= two["simulated_p95"]))
    assert f.loc["A 2024-08", "inside"] == (f.loc["A 2024-08", "simulated_p95"] >= f.loc["A 2024-08", "reported"])
    assert list(a.ess.index) == [f"2024-0{m}" for m in range(4, 9)] and a.last_month == ORIGIN
    assert len(a.last_figures()) == 3 and list(a.brand_figures("B").index) == [f.index.get_loc("B 2024-06..2024-08")]
    assert before_folder(folders["forecast"]) == folders["forecast"] / "before"
    assert assimilation_of(load_results(folders["forecast"] / "before").manifest) is not None  # before/ is a forecast too
    assert assimilation_of({"kind": "run"}) is None


def test_a_forecast_batch_forecasts_from_the_month_after_its_origin(folders):
    batch = load_batch(folders["forecast"], reported=pd.DataFrame())
    assert batch.forecast_start == "2024-09" and batch.before is not None and batch.before.runs == BEFORE
    assert batch.before.label == f"before the figures of {ORIGIN}"


# --------------------------------------------------------------------------- the figures


def _marks(fig) -> list[tuple[str, float, float]]:
    """(marker path's vertex count, x, y) of the single-point scatters drawn in black (the assimilated marks)."""
    out = []
    for ax in fig.axes:
        for c in ax.collections:
            if isinstance(c, PathCollection) and len(c.get_offsets()) == 1 and np.allclose(c.get_facecolor()[0][:3], 0):
                x, y = c.get_offsets()[0]
                out.append((ax.get_ylabel(), float(x), float(y)))
    return out


def test_the_fan_marks_each_assimilated_figure_where_it_falls(folders):
    batch = load_batch(folders["forecast"], reported=pd.DataFrame())
    a = batch.assimilation
    fig = forecast_fan_figure(batch)
    marks = _marks(fig)
    f = a.brand_figures("A").set_index("figure")
    monthly = sorted(y for axis, _, y in marks if axis == "deliveries per month")
    assert monthly == pytest.approx(sorted(f.loc[f["kind"] == "monthly", "reported"]))
    cumulative = [(x, y) for axis, x, y in marks if axis.startswith("cumulative")]
    # the milestone of 20 Aug: 20/31 of the way from mid-July (July's closing total) to mid-August (August's)
    july, august = plots.month_dates(["2024-07", ORIGIN])
    milestone = f.loc["A cumulative delivered to 2024-08-20"]
    assert milestone["date"] == "2024-08-20" and milestone["basis"] == "delivered"
    assert milestone["fraction"] == pytest.approx(20 / 31)
    assert cumulative == [(pytest.approx(july + 20 / 31 * (august - july)), pytest.approx(milestone["reported"]))]
    # the lower bound is a triangle pointing up; the figures are diamonds
    shape = {round(float(c.get_offsets()[0][1])): c.get_paths()[0] for ax in fig.axes for c in ax.collections
             if isinstance(c, PathCollection) and len(c.get_offsets()) == 1}  # fmt: skip
    triangle, diamond = (MarkerStyle(m).get_path().transformed(MarkerStyle(m).get_transform()) for m in ("^", "D"))
    for _, r in f.iterrows():
        path = shape[round(r["reported"] / (3 if r["kind"] == "span" else 1))]
        assert np.allclose(path.vertices, (triangle if r["qualifier"] == ">" else diamond).vertices), r.name
    # the origin (dashed) and the first month weighed (dotted) on both panels
    for ax in fig.axes:
        xs = {round(float(ln.get_xdata()[0]), 3) for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1}
        assert {round(plots.month_start("2024-04"), 3), round(plots.month_start("2024-09"), 3)} <= xs


def test_figure_marks_put_spans_at_their_monthly_average_and_bounds_as_triangles():
    figures = pd.DataFrame([
        {"kind": "monthly", "month": "2025-12", "start": "2025-12", "end": "2025-12", "reported": 57000.0, "qualifier": ">"},
        {"kind": "span", "month": "2025-12", "start": "2025-10", "end": "2025-12", "reported": 150000.0, "qualifier": "="},
        {"kind": "cumulative", "month": "2026-01", "start": None, "end": "2026-01", "reported": 1e6, "qualifier": "=",
         "date": "2026-01-13", "basis": "built", "fraction": 13 / 31 + 0.5},
    ])  # fmt: skip
    m = plots.figure_marks(figures)
    assert list(m["axis"]) == ["monthly", "monthly", "cumulative"]
    assert list(m["value"]) == [57000.0, 50000.0, 1e6]
    assert list(m["label"]) == [">57,000", "150,000 in 3 months", "1,000,000 built to 2026-01-13"]
    # a month at mid-month, a span at the middle of its months, the milestone where the fan counts as many cars
    dec, jan = plots.month_dates(["2025-12", "2026-01"])
    assert plots.mark_x(m.iloc[0]) == pytest.approx(dec)
    assert plots.mark_x(m.iloc[1]) == pytest.approx((plots.month_start("2025-10") + plots.month_start("2026-01")) / 2)
    assert plots.mark_x(m.iloc[2]) == pytest.approx(dec + (13 / 31 + 0.5) * (jan - dec))
    assert plots.forecast.MARKERS[">"] == "^" and plots.forecast.MARKERS["<"] == "v" and plots.forecast.MARKERS["="] == "D"
    months = plots.months_between("2025-01", "2026-06")
    monthly = pd.DataFrame([(r, mo, 40000.0 + r) for r in range(3) for mo in months], columns=["run_id", "month", "units"])
    cum = monthly.assign(value=monthly.groupby("run_id")["units"].cumsum())[["run_id", "month", "value"]]
    fig = plots.plot_assimilated_fan([plots.Fan("f", cum)], monthly, figures, plots.Window("2025-01", "2026-01"),
                                     title="t", brand="AITO")  # fmt: skip
    bottom = [ax for ax in fig.axes if ax.get_ylabel() == "deliveries per month"][0]
    bars = [c for c in bottom.collections if isinstance(c, LineCollection) and len(c.get_segments()) == 1]
    (seg,) = [s for c in bars for s in c.get_segments() if s[0][1] == s[1][1]]
    assert seg[0][1] == 50000.0 and seg[0][0] == plots.month_start("2025-10") and seg[1][0] == plots.month_start("2026-01")
    assert {t.get_text() for t in bottom.texts} >= {">57,000", "150,000 in 3 months"}
    # many figures: only those of the origin's month keep their label
    many = pd.DataFrame([{"kind": "monthly", "month": mo, "start": mo, "end": mo, "reported": 40000.0 + i, "qualifier": "="}
                         for i, mo in enumerate(plots.months_between("2025-06", "2026-01"))])  # fmt: skip
    fig = plots.plot_assimilated_fan([plots.Fan("f", cum)], monthly, many, plots.Window("2025-06", "2026-01"),
                                     title="t", brand="AITO")  # fmt: skip
    bottom = [ax for ax in fig.axes if ax.get_ylabel() == "deliveries per month"][0]
    assert len(many) > plots.forecast.MAX_LABELS
    assert [t.get_text() for t in bottom.texts if t.get_text()[:1].isdigit()] == ["40,007"]
    assert len([c for c in bottom.collections if isinstance(c, PathCollection) and len(c.get_offsets()) == 1]) == 8


def test_ess_figure_draws_a_bar_per_month_and_hatches_the_resampled(folders):
    batch = load_batch(folders["forecast"], reported=pd.DataFrame())
    a = batch.assimilation
    fig = plots.plot_ess(a.ess, a.particles, title="t", resampled=a.resampled)
    (ax,) = fig.axes
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert [p.get_height() for p in bars] == pytest.approx(list(a.ess))
    assert [bool(p.get_hatch()) for p in bars] == [m in a.resampled for m in a.ess.index]
    assert any(ln.get_ydata()[0] == PARTICLES / 2 for ln in ax.get_lines())  # the resampling threshold


@pytest.mark.parametrize("what", NEEDS_FORECAST + ("fan",))
def test_plot_writes_each_figure_of_a_forecast(what, folders, tmp_path):
    out = tmp_path / f"{what}.png"
    assert main(["plot", str(folders["forecast"]), "--what", what, "--out", str(out), "--dpi", "60"]) == 0
    raw = out.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and min(struct.unpack(">II", raw[16:24])) > 100


def test_plot_writes_the_backtest_figure(folders, tmp_path):
    out = tmp_path / "bt.svg"
    assert main(["plot", str(folders["backtest"]), "--what", "backtest", "--out", str(out)]) == 0
    assert "<svg" in out.read_text()[:2000]


def test_forecast_and_backtest_figures_need_their_folders(folders, tmp_path, capsys):
    runs = write_synthetic_results(tmp_path / "run")
    broken, unfinished = tmp_path / "broken", tmp_path / "unfinished"
    for folder, text_ in ((broken, "{"), (unfinished, '{"plan": {}}')):
        folder.mkdir()
        (folder / "backtest.json").write_text(text_)
    for args, says in (
        (["plot", str(broken), "--what", "backtest"], f"{broken}/backtest.json:1: not valid JSON (a backtest's summary"),
        (["plot", str(unfinished), "--what", "backtest"], "no backtest summary in it (an unfinished backtest?"),
        (["plot", str(runs), "--what", "ess"], "not a forecast folder"),
        (["plot", str(runs), "--what", "backtest"], f"{runs}: not a backtest folder (no backtest.json)"),
        (["plot", str(folders["backtest"]), "--what", "fan"], "a backtest folder (sim backtest), not a batch"),
        (["plot", str(folders["backtest"]), "--what", "backtest", "--vs", str(runs)], "no --vs"),
        (["report", str(runs), "--backtest", str(runs)], "not a backtest folder"),
        (["report", str(runs), "--decomposition", str(runs)], "no decomposition.json there"),
    ):
        assert main([*args, *([] if args[0] == "report" else ["--out", str(tmp_path / "x.png")])]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err


def test_a_forecast_that_assimilated_no_figure_still_reports(folders, tmp_path, capsys):
    folder = tmp_path / "none"
    shutil.copytree(folders["forecast"], folder)
    shutil.rmtree(folder / "before")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["assimilation"] |= {"assimilated": [], "observations": [], "resampled": []}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(folder)]) == 0
    s = text(section((folder / "report.html").read_text(encoding="utf-8"), "forecast"))
    assert "No figure was assimilated" in s and "0 figure(s) assimilated" in s
    assert main(["plot", str(folder), "--what", "fan", "--out", str(tmp_path / "fan.png")]) == 0
    assert main(["plot", str(folder), "--what", "moved", "--out", str(tmp_path / "moved.png")]) == 2
    assert "no forecast before the last figures (no figures were assimilated)" in capsys.readouterr().err


# --------------------------------------------------------------------------- the backtest


def test_backtest_errors_and_coverage_by_horizon_are_the_scores(folders):
    bt = load_backtest(folders["backtest"])
    errors, n = horizon_errors(bt)
    # the previous origin's fit's forecasts, scored at two horizons of one brand, do not shrink the common set
    assert n == len(BT_ORIGINS) * 2 * 4 and list(errors.columns) == list(BT_ERRORS)  # the model first
    assert list(errors.index) == [1, 2, 3, 4]
    for name, err in BT_ERRORS.items():
        assert list(errors[name]) == pytest.approx([err] * 4)
    cov = horizon_coverage(bt)
    assert list(cov["coverage_50"]) == [1, 1, 0, 0] and list(cov["coverage_90"]) == [1, 1, 1, 0]
    assert list(cov["n_figures"]) == [4] * 4
    assim = assimilation_errors(bt)
    assert list(assim.index) == list(BT_ASSIMILATED_HORIZONS) and list(assim["n_figures"]) == [len(BT_ORIGINS)] * 2
    assert list(assim["model_assimilated"]) == pytest.approx([BT_ASSIMILATED] * 2)
    assert list(assim["model"]) == pytest.approx([BT_STALE] * 2)  # the same fit without the figures since
    fig = plots.plot_backtest(errors, cov, title="t")
    left, right = fig.axes
    assert [ln.get_label() for ln in left.get_lines()] == ["seasonal_naive", "bass", "the model"]
    assert {round(ln.get_ydata()[0], 2) for ln in right.get_lines() if len(set(ln.get_ydata())) == 1} >= {0.5, 0.9}
    assert [t.get_text() for t in right.get_xticklabels()] == ["1\n(4)", "2\n(4)", "3\n(4)", "4\n(4)"]
    left, middle, right = plots.plot_backtest(errors, cov, title="t", assimilated=assim).axes
    assert [list(ln.get_ydata()) for ln in middle.get_lines()] == [list(assim["model"]), list(assim["model_assimilated"])]


def test_report_says_how_good_the_forecasts_are(report):
    s = text(section(report, "backtest"))
    assert "2 origins (2023-12, 2024-06)" in s
    # pooled: coverage 50% / 75%; relative error 0.10/0.20 and 0.10/0.40
    assert "vs seasonal naive vs Bass diffusion all brands 16 50% 75% 0.050 0.100 0.50 0.25" in s  # only the benchmarks scored
    assert "outside the standard (80-95% and 40-60%)" in s
    assert re.search(r"months ahead .* 1 4 100% 100% 0\.050 0\.100 0\.50 0\.25", s)
    # the previous origin's fit with and without the figures since, on the figures both scored (AITO at horizons
    # 1-2 from both origins); the refit at the origin on the same figures for reference
    assert ("On the 4 figures both scored at horizons 1-6, its mean |log error| was 0.050 with them against 0.080 "
            "without (ratio 0.62: lower; the refit at the origin: 0.100). Its 90% bands covered 100% of those figures "
            "with assimilation and 100% without.") in s
    assert 'id="fig-backtest"' in section(report, "backtest")


# --------------------------------------------------------------------------- the report of a forecast


def test_report_of_a_forecast_shows_what_it_assimilated_and_what_moved(folders, report):
    res = load_results(folders["forecast"])
    a = assimilation_of(res.manifest)
    head = text(section(report, "headline"))
    assert f"a forecast from the state at {ORIGIN}: 7 figure(s) assimilated 2024-04..{ORIGIN}" in head
    assert f"final effective sample size {a.final_ess:.1f} of {PARTICLES} particles" in head
    fc = section(report, "forecast")
    s = text(fc)
    after = target_table(res)[0]
    before = target_table(load_results(folders["forecast"] / "before"))[0]
    pct = lambda p: f"{100 * p:.0f}%"  # noqa: E731
    assert f"before the figures of {ORIGIN} {BEFORE} {pct(before['probability'])}" in s
    assert f"after (this forecast) {REPLICATIONS} {pct(after['probability'])}" in s
    assert f"change {100 * (after['probability'] - before['probability']):+.0f} pp" in s
    # the change of the mean deliveries against what independent draws give by chance alone (2 standard errors)
    window = {t: load_results(folders["forecast"] / f).sales for t, f in (("after", "."), ("before", "before"))}
    d = {k: target_outcomes(v, after["brand"], after["units"], after["start"], after["by"])["delivered"]
         for k, v in window.items()}  # fmt: skip
    noise = 2 * np.sqrt(d["after"].var(ddof=1) / len(d["after"]) + d["before"].var(ddof=1) / len(d["before"]))
    change = d["after"].mean() - d["before"].mean()
    assert f"{change:+,.0f} (chance alone: ±{noise:,.0f}{' within' if abs(change) <= noise else ''})" in s
    # every figure, in order, with the particles' range before it
    rows = re.findall(r"<tr><td[^>]*>([^<]+)</td><td[^>]*>[\d, ]+</td><td[^>]*>\d{4}-\d\d</td>", fc)
    assert rows == list(a.figures["figure"])
    assert ">3,880" in s  # the lower bound, with its qualifier
    k = int(a.figures["inside"].sum())
    assert f"{k} of 7 figure(s) inside the particles' 5-95% just before them ({100 * k / 7:.0f}%)" in s
    assert {alt for alt, _, _ in png_images(fc)} >= {"effective sample size", "what moved the forecast"}
    fan_caption = re.search(r'<figure id="fig-fan">.*?<figcaption>(.*?)</figcaption>', report, re.S)
    assert fan_caption and "triangle pointing up a lower bound" in fan_caption.group(1)


def test_report_headline_carries_the_decomposition(folders, report):
    d = json.loads((folders["decomposition"] / "decomposition.json").read_text())
    t = d["targets"][0]
    head = section(report, "headline")
    for name in (x["target"] for x in d["targets"]):
        assert f"Where the spread of '{name}' comes from" in head
    s = text(head)
    for r in anatomy_rows(t):
        assert r.source in s
    assert f"({t['runs']} runs per configuration" in s
    assert "Where the spread of the target's deliveries comes from is not shown" not in s
    # the decomposition's runs are not this forecast's: the report says so
    assert "its runs start from the fitted history, not from the state the assimilated figures left" in s


def test_a_plain_run_beside_its_decomposition_states_the_anatomy(folders, capsys):
    run = folders["decomposition"] / "all"  # the decomposition's own batch with every source on, beside its json
    assert main(["compare", str(run), "--what", "targets"]) == 0
    out = capsys.readouterr().out
    assert "where the spread of the window's deliveries comes from" in out and "appeal offsets and drift after the data" in out
    assert "fitted history" not in out


def test_anatomy_rows_add_up_to_the_variance_with_every_source(folders):
    t = json.loads((folders["decomposition"] / "decomposition.json").read_text())["targets"][0]
    rows = anatomy_rows(t)
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    assert [r.source for r in rows][-2:] == ["agent sampling", "interaction (not additive)"]
    for r, (name, s) in zip(rows, t["sources"].items(), strict=False):
        assert r.sd == s["sd"] and r.probability == s["probability"], name


def test_a_decomposition_beside_the_folder_is_found(folders, tmp_path):
    run = write_synthetic_results(tmp_path / "runs" / "a")
    assert find_decomposition(run) is None
    shutil.copy(folders["decomposition"] / "decomposition.json", tmp_path / "runs" / "decomposition.json")
    assert find_decomposition(run).path == tmp_path / "runs" / "decomposition.json"
    explicit = find_decomposition(run, folders["decomposition"] / "decomposition.json")
    assert explicit.scenario == "drifting"
    with pytest.raises(InputError, match="bad.json:1: not a decomposition .* expected a JSON object, got list"):
        bad = tmp_path / "bad.json"
        bad.write_text("[]")
        find_decomposition(run, bad)
    # one found beside the folder that is not readable is bad input naming the file, not a traceback
    (tmp_path / "runs" / "decomposition.json").write_text("{")
    with pytest.raises(InputError, match=r"runs/decomposition\.json:1: not valid JSON \(a decomposition"):
        find_decomposition(run)


# --------------------------------------------------------------------------- sim compare and sim run's summary


def test_compare_prints_the_assimilation_before_the_targets_and_the_anatomy(folders, capsys):
    assert main(["compare", str(folders["forecast"]), "--decomposition", str(folders["decomposition"])]) == 0
    out = capsys.readouterr().out
    a = assimilation_of(load_results(folders["forecast"]).manifest)
    assert out.index(f"FORECAST from the state at {ORIGIN}") < out.index("TARGET 'A in the forecast'")
    assert f"final effective sample size {a.final_ess:.1f} of {PARTICLES}" in out
    assert "  A 2024-08: >3,880;" in out and f"before the figures of {ORIGIN} ({BEFORE} runs in before/)" in out
    assert f"  {int(a.figures['inside'].sum())} of 7 figure(s) inside the particles' 5-95% just before them" in out
    assert out.index("where the spread of the window's deliveries comes from") > out.index("PROBABILITY OF REACHING IT")
    assert "appeal offsets and drift after the data" in out


def test_compare_json_holds_the_forecast_and_the_decomposition(folders, capsys):
    assert main(["compare", str(folders["forecast"]), "--format", "json", "--decomposition", str(folders["decomposition"])]) == 0
    doc = json.loads(capsys.readouterr().out)
    (fc,) = doc["forecast"]
    assert fc["origin"] == ORIGIN and fc["particles"] == PARTICLES and len(fc["assimilated"]) == 7
    assert fc["before"][0]["runs"] == BEFORE and set(fc["ess"]) == {f"2024-0{m}" for m in range(4, 9)}
    (dec,) = doc["decomposition"]
    assert dec["scenario"] == "drifting" and sum(r["share"] for r in dec["targets"][0]["rows"]) == pytest.approx(1.0)


def test_run_summary_states_the_anatomy_and_the_forecast_before_its_last_figures(folders, tmp_path, capsys):
    from sim.cli.run_commands import print_summary

    folder = tmp_path / "fc"
    shutil.copytree(folders["forecast"], folder)
    shutil.copy(folders["decomposition"] / "decomposition.json", folder / "decomposition.json")
    print_summary(folder)
    out = capsys.readouterr().out
    lines = out.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith("Target 'A in the forecast'"))
    assert "probability" in lines[i] and "95% CI" in lines[i]
    assert lines[i + 1].startswith(f"  before the figures of {ORIGIN} ({BEFORE} runs in")
    assert lines[i + 2] == "  where the spread of the window's deliveries comes from (share of the variance, sd in vehicles):"
    assert any(ln.strip().startswith("appeal offsets and drift after the data") for ln in lines[i + 3 :])
    # a decomposition that cannot be read: the stored run is still summarized, with a note
    (folder / "decomposition.json").write_text("{")
    print_summary(folder)
    captured = capsys.readouterr()
    assert "Target 'A in the forecast'" in captured.out and "where the spread" not in captured.out
    assert "decomposition.json:1: not valid JSON (a decomposition (sim decompose))" in captured.err


# --------------------------------------------------------------------------- the dashboard


def test_the_dashboards_forecast_view(folders):
    from sim.present.dashboard.forecast_view import TABLE_COLUMNS, forecast_view

    view = forecast_view(folders["forecast"])
    assert view is forecast_view(folders["forecast"])  # cached
    res = load_results(folders["forecast"])
    assert view.targets == target_table(res)
    assert view.before["A in the forecast"]["runs"] == BEFORE
    assert set(view.figures) == {"fan", "ess", "moved"} and list(view.table.columns) == list(TABLE_COLUMNS.values())
    assert len(view.table) == 7 and set(view.table["inside 5-95%"]) <= {"yes", "NO"}


def test_dashboard_config_takes_a_forecast_folder(folders, tmp_path):
    from sim.present.dashboard.config import DashboardConfig, make_config

    scenarios = ROOT / "scenarios"
    cfg = make_config(scenarios / "m6_launch.yaml", forecast=folders["forecast"])
    assert cfg.forecast == folders["forecast"].resolve() and DashboardConfig.from_env(cfg.to_env()) == cfg
    with pytest.raises(InputError, match="not a forecast folder"):
        make_config(scenarios / "m6_launch.yaml", forecast=write_synthetic_results(tmp_path / "run"))
    with pytest.raises(InputError, match="no such results folder"):
        make_config(scenarios / "m6_launch.yaml", forecast=tmp_path / "nowhere")


_ROUTES = "import sim.present.dashboard.app as app; print([r.path for r in app.routes])"


@pytest.mark.skipif(not all(__import__("importlib.util").util.find_spec(m) for m in ("solara", "solara_assets")),
                    reason="the dashboard extra is not installed")  # fmt: skip
def test_the_forecast_page_is_a_route_only_with_a_forecast(folders):
    env = {k: v for k, v in cli_env().items() if k != "SIM_DASHBOARD_FORECAST"}
    for extra, routes in (({"SIM_DASHBOARD_FORECAST": str(folders["forecast"])}, "['/', 'single-run', 'forecast']"),
                          ({}, "['/', 'single-run']")):  # fmt: skip
        done = subprocess.run([sys.executable, "-c", _ROUTES], cwd=ROOT, env=env | extra, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == routes


def test_the_report_says_what_each_run_drew(report):
    from sim.present.report_sections import drawn_uncertainties

    runs = pd.DataFrame({"member": [0, 2, None], "draws": ['{"market": {"CN": [0.1, 0.0]}, "capacity": {"M9": 9000.0}}',
                                                           '{"drift": {"A": 0.1}, "appeal": {"M8": 0.2}}', None]})  # fmt: skip
    assert drawn_uncertainties(runs) == ["fitted parameter set", "market size and growth", "capacities", "appeal drift",
                                         "new products' appeal"]  # fmt: skip
    assert drawn_uncertainties(pd.DataFrame({"run_id": [0]})) == []
    # the forecast's runs: each its particle and the drift after the origin
    head = text(section(report, "headline"))
    assert ("Each run of drifting drew its own particle of the filter (its history's parameter set and appeal drift, "
            "up to the origin), appeal drift (the runs table's draws column)") in head
