"""The dashboard without a browser: levers -> overrides, the in-memory runner, the summary, the command.

The page itself is tested in a real browser in ``test_dashboard_browser.py``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TINY, cli_env, tiny_scenario

from sim import cli
from sim.analysis.compare import target_table
from sim.analysis.pair_comparison import compare_pair
from sim.model.market_model import MarketModel
from sim.present.dashboard import levers as lv
from sim.present.dashboard.config import DashboardConfig, make_config, scenario_files
from sim.present.dashboard.runner import BatchCache, Cancelled, WorkerPool, run_pair
from sim.present.dashboard.summary import cumulative_fan, segment_shares, summarize_pair
from sim.runs.run import execute, make_specs
from sim.runs.store import Results
from sim.scenario.load import load_scenario
from sim.scenario.paths import parse_set_option
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError

SCENARIOS = ROOT / "scenarios"
HAS_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("solara", "solara_assets", "uvicorn"))


@functools.cache
def scenario(name: str) -> Scenario:
    """A shipped scenario (``name`` relative to scenarios/, without .yaml), read once for the module."""
    return load_scenario(SCENARIOS / f"{name}.yaml")


@functools.cache
def levers(name: str) -> lv.LeverSet:
    """:func:`sim.present.dashboard.levers.load_levers` of a shipped scenario, from the cached files."""
    sc = scenario(name)
    parent = (Path(name).parent / sc.extends).with_suffix("") if sc.extends else None
    return lv.levers_for(sc, scenario(str(parent)) if parent else None)


def test_cached_levers_are_load_levers():
    assert lv.load_levers(SCENARIOS / "price_war.yaml") == levers("price_war")


@pytest.fixture(scope="module")
def m6() -> lv.LeverSet:
    return levers("m6_launch")


def resolved(name: str, overrides: dict) -> dict:
    return lv.apply_overrides(scenario(name), overrides).model_dump(mode="json")


def no_source(periods: list[dict]) -> list[dict]:
    return [{k: v for k, v in p.items() if k != "source"} for p in periods]


# ----------------------------------------------------------------------------- levers


def test_levers_are_offered_where_the_scenario_has_what_they_move():
    keys = {name: [x.key for x in levers(name).levers] for name in
            ("baseline", "m6_launch", "tariffs_export", "price_war", "capacity_shock", "competitor_launches")}  # fmt: skip
    assert keys["baseline"] == ["nev_tax"]
    assert keys["m6_launch"] == ["m6_price", "m6_launch", "m6_capacity", "nev_tax"]
    # one tariff lever per duty of an export market (EU, US, ME), none for China's import duties
    tariffs = [k for k in keys["tariffs_export"] if k.startswith("tariff:")]
    export = scenario("tariffs_export").policies.tariffs
    assert sorted(export[int(k.split(":")[1])].market for k in tariffs) == ["EU", "EU", "ME", "US", "US", "US"]
    assert "export_push" in keys["tariffs_export"]
    assert keys["price_war"] == ["nev_tax", "price_war_depth"]
    assert keys["capacity_shock"] == ["nev_tax", "shock_depth"]
    assert keys["competitor_launches"] == ["nev_tax"]  # its added events are launches and ramp-ups, not prices


def test_neutral_levers_add_no_override_and_leave_the_scenario_unchanged(m6):
    assert m6.overrides(m6.defaults()) == {}
    assert m6.overrides({}) == {}
    assert lv.apply_overrides(m6.scenario, {}) is m6.scenario
    assert m6.scenario.hash() == scenario("m6_launch").hash()


def test_m6_levers_map_onto_the_product(m6):
    over = m6.overrides({"m6_price": 300_000, "m6_launch": "2026-09", "m6_capacity": 12_000})
    sc = lv.apply_overrides(m6.scenario, over)
    p = next(x for x in sc.products if x.name == lv.M6)
    assert (p.price, p.launch, p.capacity.max) == (300_000, "2026-09", 12_000)
    assert p.delivery_start == "2026-10"  # the file's one-month gap is kept
    others = [x for x in sc.products if x.name != lv.M6]
    assert others == [x for x in m6.scenario.products if x.name != lv.M6]


def test_the_command_line_it_shows_gives_the_scenario_it_runs():
    """``sim run FILE --set ...`` as the page shows it resolves to the scenario the page runs."""
    cases = [
        ("m6_launch", {"m6_price": 229_800, "m6_launch": "2027-01", "nev_tax": "exemption ends"}, True),
        ("price_war", {"price_war_depth": 0.4}, True),
        ("tariffs_export", {"tariff:5": 35.3, "export_push": 1.5}, False),
        ("capacity_shock", {"shock_depth": 2.0}, False),
    ]
    for name, values, from_file in cases:
        path = SCENARIOS / f"{name}.yaml"
        over = levers(name).overrides(values)
        assert over
        options = lv.set_options(over)
        assert lv.command_line(path, over) == f"sim run {path} " + " ".join(options)
        parsed = dict(parse_set_option(o.removeprefix("--set '").removesuffix("'")) for o in options)
        runs = lv.apply_overrides(scenario(name), over)
        cli_side = load_scenario(path, parsed) if from_file else lv.apply_overrides(scenario(name), parsed)
        assert cli_side.hash() == runs.hash() != scenario(name).hash(), name


def test_tax_presets_are_the_shipped_policies():
    base = levers("baseline")
    assert base.by_key()["nev_tax"].value == "halved (legislated)"
    continued = resolved("baseline", base.overrides({"nev_tax": "full exemption continues"}))
    want = resolved("no_tax_change", {})
    assert no_source(continued["policies"]["nev_exemptions"]) == no_source(want["policies"]["nev_exemptions"])
    # and back: the counterfactual with the lever at the legislated halving has tax_2026's rule
    halved = resolved("no_tax_change", levers("no_tax_change").overrides({"nev_tax": "halved (legislated)"}))
    tax = resolved("tax_2026", {})
    assert no_source(halved["policies"]["nev_exemptions"]) == no_source(tax["policies"]["nev_exemptions"])


def test_tariff_and_export_push_levers():
    ls = levers("tariffs_export")
    cvd = next(x for x in ls.levers if x.label.startswith("EU countervailing"))
    assert cvd.value == pytest.approx(20.7)
    sc = lv.apply_overrides(ls.scenario, ls.overrides({cvd.key: 35.3}))
    assert next(t for t in sc.policies.tariffs if t.name.startswith("EU countervailing")).rate == pytest.approx(0.353)
    doubled = lv.apply_overrides(ls.scenario, ls.overrides({"export_push": 2.0}))
    none = lv.apply_overrides(ls.scenario, ls.overrides({"export_push": 0.0}))
    for i, e in enumerate(ls.scenario.events):
        if e.type == "stores" and e.market in ("EU", "ME", "US"):
            assert doubled.events[i].count == round(2 * e.count)
            assert none.events[i].count == 0
        else:
            assert doubled.events[i] == e


def test_price_war_depth_scales_the_moves_it_adds():
    ls = levers("price_war")
    base = scenario("baseline")
    added = range(len(base.events), len(ls.scenario.events))
    start = {b.name: b.pricing.discount for b in ls.scenario.brands}
    for depth in (0.0, 0.5, 2.0):
        sc = lv.apply_overrides(ls.scenario, ls.overrides({"price_war_depth": depth}))
        assert sc.events[: len(base.events)] == base.events  # the baseline's own events are untouched
        for i in added:
            e, got = ls.scenario.events[i], sc.events[i]
            if e.type == "price":
                before = lv.list_price_before(ls.scenario, e.product, e.month, i)
                assert got.price == pytest.approx(before + depth * (e.price - before), abs=0.01)
            elif e.add is not None:  # a change on top of the brand's path scales as is
                assert got.add == pytest.approx(depth * e.add)
            else:
                s0 = start[e.brand]
                assert got.discount == pytest.approx(min(1.0, max(0.0, s0 + depth * (e.discount - s0))))
    # depth 0 leaves every list price where it was before the war
    flat = lv.apply_overrides(ls.scenario, ls.overrides({"price_war_depth": 0.0}))
    for i in added:
        if flat.events[i].type == "price":
            assert flat.events[i].price == pytest.approx(
                lv.list_price_before(ls.scenario, flat.events[i].product, flat.events[i].month, i)
            )


def test_list_price_before_follows_earlier_price_events():
    sc = scenario("price_war")
    i = next(
        k
        for k, e in enumerate(sc.events)
        if e.type == "price" and e.product == "Tesla Model Y" and e.month == "2026-03"
    )
    earlier = [e for e in sc.events if e.product == "Tesla Model Y" and e.price is not None and e.month < "2026-03"]
    assert len(earlier) >= 2, "the baseline changes the Model Y's price before the war"
    latest = max(earlier, key=lambda e: e.month)  # events are not listed in month order
    assert lv.list_price_before(sc, "Tesla Model Y", "2026-03", i) == latest.price


def test_shock_depth_zero_removes_the_shock():
    ls = levers("capacity_shock")
    sc = lv.apply_overrides(ls.scenario, ls.overrides({"shock_depth": 0.0}))
    added = range(len(ls.parent.events), len(sc.events))
    assert all(sc.events[i].factor == 1.0 for i in added)


@pytest.mark.parametrize(
    ("values", "says"),
    [
        pytest.param({"m6_price": 10}, "M6 list price: must be in 150000..1000000, got 10", id="price out of range"),
        pytest.param({"m6_price": "cheap"}, "M6 list price: expected a number", id="price not a number"),
        pytest.param({"m6_launch": "2031-01"}, "M6 launch .*expected one of", id="launch not offered"),
        pytest.param({"tariff:3": 10}, "unknown lever 'tariff:3'", id="unknown lever"),
    ],
)
def test_bad_lever_values_are_clear_errors(m6, values, says):
    with pytest.raises(InputError, match=says):
        m6.overrides(values)


# ----------------------------------------------------------------------------- runner


@pytest.fixture(scope="module")
def tiny_pair():
    scenario = tiny_scenario({"products.A1.price": 230_000})
    baseline = tiny_scenario()
    cache = BatchCache()
    seen = []
    pair = run_pair(scenario, baseline, seed=3, replications=3, scale=40, workers=1, cache=cache,
                    progress=lambda d, n: seen.append((d, n)))  # fmt: skip
    return pair, cache, seen, scenario, baseline


def test_runner_gives_the_runs_of_sim_run(tiny_pair):
    pair, _, seen, scenario, _ = tiny_pair
    assert (pair.scenario.runs["status"] == "ok").all() and (pair.baseline.runs["status"] == "ok").all()
    assert seen[0] == (0, 6) and seen[-1] == (6, 6) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    direct = pd.concat([execute(s).sales for s in make_specs(scenario, 3, seed=3, scale=40)], ignore_index=True)
    key = ["run_id", "month", "market", "model"]
    got = pair.scenario.sales.sort_values(key).reset_index(drop=True)
    want = direct.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert pair.scenario.manifest["seed"] == pair.baseline.manifest["seed"] == 3


def test_runner_reuses_cached_batches(tiny_pair):
    pair, cache, _, scenario, baseline = tiny_pair
    again = run_pair(scenario, baseline, seed=3, replications=3, scale=40, workers=1, cache=cache)
    assert (again.runs_done, again.from_cache) == (0, 2)
    assert again.scenario is pair.scenario
    other = tiny_scenario({"products.A1.price": 260_000})
    moved = run_pair(other, baseline, seed=3, replications=3, scale=40, workers=1, cache=cache)
    assert (moved.runs_done, moved.from_cache) == (3, 1)  # only the scenario runs again


def test_runner_runs_a_scenario_that_is_its_baseline_once(tiny):
    pair = run_pair(tiny, tiny, seed=1, replications=2, scale=80, workers=1)
    assert pair.runs_done == 2 and pair.scenario is pair.baseline


def test_runner_in_worker_processes_equals_serial(tiny_pair):
    pair, _, _, scenario, baseline = tiny_pair
    pool = WorkerPool(2)
    try:
        par = run_pair(scenario, baseline, seed=3, replications=3, scale=40, pool=pool)
        first = pool.executor()
        again = run_pair(scenario, baseline, seed=3, replications=3, scale=40, pool=pool)
        assert pool.executor() is first  # the processes are kept between batches
    finally:
        pool.shutdown()
    for p in (par, again):
        pd.testing.assert_frame_equal(p.scenario.sales, pair.scenario.sales)
        pd.testing.assert_frame_equal(p.baseline.sales, pair.baseline.sales)


def test_batches_with_failed_runs_are_not_cached(tiny, monkeypatch):
    import sim.present.dashboard.runner as runner

    real = runner.run_chunk

    def failing(specs):
        runs, sales = real(specs)
        return runs.assign(status="failed", error="boom"), sales.iloc[0:0]

    monkeypatch.setattr(runner, "run_chunk", failing)
    cache = BatchCache()
    pair = run_pair(tiny, tiny, seed=1, replications=2, scale=80, workers=1, cache=cache)
    assert (pair.scenario.runs["status"] == "failed").all()
    assert cache.get(runner.batch_key(tiny, 1, 2, 80)) is None
    with pytest.raises(InputError, match="no finished runs"):
        summarize_pair(pair.scenario, pair.baseline, reported=pd.DataFrame())


def test_runner_can_be_cancelled(tiny):
    stop = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 1:
            stop.set()

    with pytest.raises(Cancelled):
        run_pair(tiny, tiny_scenario({"products.A1.price": 240_000}), seed=1, replications=3, scale=80,
                 workers=1, progress=progress, cancel=stop)  # fmt: skip


# ----------------------------------------------------------------------------- summary


def test_summary_agrees_with_sim_compare(tiny_pair):
    pair = tiny_pair[0]
    s = summarize_pair(pair.scenario, pair.baseline, reported=pd.DataFrame())
    t = s.target
    assert t["name"] == "A ten thousand" and s.anchor == 0.0
    assert s.targets["scenario"] == target_table(pair.scenario)[0]
    assert s.targets["baseline"] == target_table(pair.baseline)[0]
    paired = compare_pair(pair.baseline, pair.scenario).paired.set_index("metric")
    assert s.delivered_diff["mean_diff"] == pytest.approx(paired.loc["A ten thousand: window deliveries", "mean_diff"])
    # the fan ends at the window deliveries of each replicate; it starts at the anchor
    last = s.fan[(s.fan["role"] == "scenario") & (s.fan["month"] == t["by"])].iloc[0]
    assert last["q50"] == pytest.approx(np.median(s.window["scenario"]))
    assert last["mean"] == pytest.approx(s.targets["scenario"]["delivered_mean"])
    assert (s.fan[s.fan["month"] == "2023-12"][["q05", "q50", "q95"]] == 0.0).all().all()
    assert s.segments["scenario_share"].sum() == pytest.approx(1.0)
    assert s.segments["baseline_share"].sum() == pytest.approx(1.0)
    assert set(s.monthly["brand"]) == {"A", "B"} and s.failed == []


def _results(name: str, a_units: list[list[int]], seed: int = 1) -> Results:
    """Two runs of a hand-made market: brand A (segment <300k) and B (300k+, 70 a month)."""
    months = ["2024-01", "2024-02", "2024-03"]
    rows = []
    for run, units in enumerate(a_units):
        for m, u in zip(months, units, strict=True):
            rows.append({"run_id": run, "replicate": run, "month": m, "market": "CN", "brand": "A", "model": "A1",
                         "segment": "<300k", "units": u})  # fmt: skip
            rows.append({"run_id": run, "replicate": run, "month": m, "market": "CN", "brand": "B", "model": "B1",
                         "segment": "300k+", "units": 70})  # fmt: skip
    runs = pd.DataFrame({"run_id": [0, 1], "replicate": [0, 1], "status": ["ok", "ok"], "seed_entropy": ["1", "1"],
                         "spawn_key": ["0", "1"]})  # fmt: skip
    target = {
        "name": "T",
        "brand": "A",
        "units": 55,
        "start": "2024-01",
        "by": "2024-03",
        "reported_cumulative_at_start": 100,
    }
    scenario = {"start": "2024-01", "end": "2024-03", "targets": [target], "segments": [{"name": "<300k"}, {"name": "300k+"}],
                "products": [{"name": "A1", "launch": "2024-01"}, {"name": "B1", "launch": "2024-01"}]}  # fmt: skip
    return Results(Path(name), {"scenario_name": name, "scenario": scenario, "seed": seed}, runs, pd.DataFrame(rows))


def test_summary_of_a_hand_made_market():
    scen = _results("scen", [[10, 20, 30], [20, 20, 20]])
    base = _results("base", [[10, 10, 10], [10, 10, 10]])
    s = summarize_pair(scen, base, reported=pd.DataFrame())
    fan = s.fan[s.fan["role"] == "scenario"].set_index("month")
    assert list(fan.index) == ["2023-12", "2024-01", "2024-02", "2024-03"]
    assert fan.loc["2023-12", "q50"] == 100  # the reported anchor
    assert fan.loc["2024-01", "mean"] == 115 and fan.loc["2024-02", "mean"] == 135 and fan.loc["2024-03", "q05"] == 160
    assert list(s.window["scenario"]) == [60, 60] and list(s.window["baseline"]) == [30, 30]
    assert s.targets["scenario"]["probability"] == 1.0 and s.targets["baseline"]["probability"] == 0.0
    assert s.targets["scenario"]["month_reached_median"] == "2024-03"
    assert s.reached_diff["mean_diff"] == 1.0 and s.delivered_diff["mean_diff"] == 30.0
    seg = s.segments.set_index("segment")
    assert seg.loc["<300k", "scenario_share"] == pytest.approx(60 / 270)
    assert seg.loc["<300k", "baseline_share"] == pytest.approx(30 / 240)
    assert seg.loc["<300k", "scenario_brand_share"] == 1.0 and seg.loc["300k+", "scenario_brand_share"] == 0.0


def test_segment_shares_average_per_run_shares():
    sales = pd.DataFrame({
        "run_id": [0, 0, 1, 1], "month": ["2024-01"] * 4, "brand": ["A", "B", "A", "B"],
        "segment": ["low", "high", "low", "high"], "units": [10, 30, 30, 10],
    })  # fmt: skip
    got = segment_shares(sales, "A", "2024-01", "2024-01").set_index("segment")
    assert got.loc["low", "share"] == pytest.approx((0.25 + 0.75) / 2)
    assert got.loc["low", "brand_share"] == 1.0 and got.loc["high", "brand_share"] == 0.0
    assert segment_shares(sales, "A", "2025-01", "2025-12").empty


def test_cumulative_fan_counts_months_outside_the_results_as_zero():
    res = _results("x", [[10, 20, 30], [20, 20, 20]])
    from sim.analysis.unit_cube import unit_cube

    fan = cumulative_fan(unit_cube(res), "A", "2024-02", "2024-05", 1000.0, "s").set_index("month")
    assert fan.loc["2024-01", "mean"] == 1000  # the month before the window holds the anchor
    assert fan.loc["2024-03", "mean"] == 1000 + (50 + 40) / 2
    assert fan.loc["2024-05", "mean"] == fan.loc["2024-03", "mean"]


# ----------------------------------------------------------------------------- single-run state and charts


def test_month_table_reads_the_recorded_month():
    from sim.present.dashboard import state

    model = MarketModel(TINY, seed=2, scale=40)
    assert state.month_table(model).empty
    backlog_before = np.zeros(len(model.product_names))
    for _ in range(6):
        model.step()
        table = state.month_table(model).set_index("model")
        mv = model.datacollector.model_vars
        assert list(table.index) == [
            p for p, on in zip(model.product_names, mv["offered"][-1].any(axis=1), strict=True) if on
        ]
        # orders = deliveries + backlog change + cancellations, product by product
        idx = [model.product_names.index(p) for p in table.index]
        change = table["backlog"].to_numpy() - backlog_before[idx]
        assert np.allclose(table["orders"], table["deliveries"] + change + table["cancellations"])
        backlog_before = np.asarray(mv["backlog"][-1]).sum(axis=1)
    hist = state.history(model, "deliveries", ["A1", "A2"])
    assert list(hist.index) == model.datacollector.model_vars["month"][1:] and hist.shape == (6, 2)  # row 0: the start
    assert hist.loc["2024-01", "A2"] == 0  # A2 delivers from 2024-05
    assert math.isnan(state.history(model, "list_price", ["A2"]).loc["2024-01", "A2"])  # not yet on sale


def test_charts_draw_a_summary(tiny_pair):
    from sim.present.dashboard import charts

    s = summarize_pair(tiny_pair[0].scenario, tiny_pair[0].baseline, reported=pd.DataFrame())
    fan = charts.fan_chart(s)
    assert len(fan.axes[0].lines) >= 3  # scenario median, baseline median, target line, history
    assert len(charts.monthly_chart(s, ["A", "B"]).axes[0].lines) == 4 + 2  # 2 brands x 2 roles + window marks
    assert len(charts.segment_chart(s).axes[0].patches) == 2 * len(s.segments)
    assert charts.window_chart(s).axes[0].collections


# ----------------------------------------------------------------------------- config and command


def test_config_round_trips_through_the_environment(tmp_path):
    cfg = make_config(SCENARIOS / "m6_launch.yaml", None, 3, 250.0, 11, 2)
    assert cfg.baseline == SCENARIOS / "baseline.yaml"
    assert DashboardConfig.from_env(cfg.to_env()) == cfg
    assert SCENARIOS / "m6_launch.yaml" in scenario_files(cfg.folder)
    (tmp_path / "a.yaml").write_text("name: a\nextends: b.yaml\n")
    (tmp_path / "calib.yaml").write_text("name: calib\nbase: a.yaml\n")  # a calibration set-up, not a scenario
    (tmp_path / "broken.yaml").write_text("name: [\n")
    assert scenario_files(tmp_path) == [tmp_path / "a.yaml"]
    lone = tmp_path / "lone.yaml"
    lone.write_text(TINY.read_text())
    with pytest.raises(InputError, match="no such baseline scenario file .*--baseline"):
        make_config(lone)
    with pytest.raises(InputError, match="missing.yaml: no such scenario file"):
        make_config(tmp_path / "missing.yaml")


def test_dashboard_without_the_extra_says_how_to_install(monkeypatch, capsys):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name.split(".")[0] == "solara" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert cli.main(["dashboard", str(SCENARIOS / "m6_launch.yaml")]) == 2
    err = capsys.readouterr().err
    assert "needs the dashboard extra (missing: solara)" in err and "pip install 'sim[dashboard]'" in err


@pytest.mark.skipif(not HAS_EXTRA, reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")
def test_dashboard_bad_input_exits_2(tmp_path, capsys):
    assert cli.main(["dashboard", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: no such scenario file" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("price: 250000", "price: -5"))
    assert cli.main(["dashboard", str(bad), "--baseline", str(TINY)]) == 2
    assert "bad.yaml:" in capsys.readouterr().err  # file and line of the bad value
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert cli.main(["dashboard", str(TINY), "--baseline", str(TINY), "--port", str(port)]) == 2
    assert "cannot listen there (in use)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["dashboard", "--port", "70000"])
    assert exc.value.code == 2 and "must be at most 65535" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_EXTRA, reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")
def test_the_app_imports_without_warnings():
    """The Solara app module imports cleanly with warnings as errors (pytest -W error)."""
    import sim.present.dashboard.app as app

    assert [r.path for r in app.routes] == ["/", "single-run"]


#: Imports every module of sim.present.dashboard in a fresh interpreter, then prints how many child
#: processes it has: those multiprocessing knows of, and all of them as the kernel lists them.
_IMPORT_EVERY_DASHBOARD_MODULE = """
import importlib, multiprocessing, os, pkgutil
import sim.present.dashboard as dashboard
for module in pkgutil.iter_modules(dashboard.__path__, dashboard.__name__ + "."):
    importlib.import_module(module.name)
tasks = f"/proc/{os.getpid()}/task"
children = [pid for t in os.listdir(tasks) for pid in open(f"{tasks}/{t}/children").read().split()]
print(len(multiprocessing.active_children()), len(children))
"""


@pytest.mark.skipif(not HAS_EXTRA, reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")
@pytest.mark.skipif(not Path(f"/proc/self/task/{os.getpid()}/children").exists(), reason="needs /proc's children lists")
def test_importing_the_dashboard_starts_no_process():
    """The worker processes shared by the sessions (``session.POOL``) start at the first run, not at import."""
    done = subprocess.run([sys.executable, "-c", _IMPORT_EVERY_DASHBOARD_MODULE], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"]


def test_import_sim_stays_light():
    import subprocess
    import sys

    code = "import sys, sim, sim.cli; sim.cli.build_parser(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('solara', 'uvicorn', 'ipyvuetify')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
