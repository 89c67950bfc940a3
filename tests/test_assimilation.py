"""Data assimilation (sim/analysis/observations.py, assimilation.py, forecast.py): the observation model, the
particle filter on data the model generates from a known drift, and ``sim forecast`` end to end."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY

from sim.analysis.assimilation import ParticleFilter, ess, normalised, systematic_resample, tempering
from sim.analysis.forecast import read_figures
from sim.analysis.observations import Observation, observations
from sim.analysis.reported import FIGURE_COLUMNS
from sim.model.market_model import MarketModel
from sim.model.snapshot import load_state
from sim.runs import store
from sim.scenario.load import load_scenario
from sim.scenario.months import parse_month
from sim.scenario.yamlio import InputError

#: A small market whose plants never bind (deliveries follow demand, so the figures see the drift), with
#: each brand's appeal off by 0.05 utils at 2024-04 and drifting 0.08 a month after; monthly figures are
#: taken to be within 8% of the model's aggregate (the truth's and a particle's sampling noise at scale 50).
MARKET = f"""name: drifting
extends: {TINY}
end: 2025-06
markets:
  - name: CN
    seasonality:
      lunar_new_year: {{"2024": "2024-02-10", "2025": "2025-01-29"}}
products:
  - {{name: A1, capacity: {{max: 100000}}}}
  - {{name: A2, capacity: {{max: 100000}}}}
  - {{name: B1, capacity: {{max: 100000}}}}
uncertainty: {{start: 2024-04, brand_drift: 0.08, brand_level: 0.05, observation_sd: {{monthly: 0.08}}}}
"""
SCALE = 50


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("assim") / "drifting.yaml"
    path.write_text(MARKET)
    return load_scenario(path)


def monthly_figures(model: MarketModel, through: int, first: int) -> pd.DataFrame:
    """Run ``model`` to ``through`` and return its brands' China deliveries from ``first`` as reported figures."""
    rows = []
    while model.t == 0 or model.month_index < through:
        model.step()
        if model.month_index < first:
            continue
        for b, name in enumerate(model.brand_names):
            v = float(model.month_units[model.product_brand == b, 0].sum())
            m = model.month_label
            rows.append({"line": len(rows) + 2, "date": m, "entity": name, "metric": "monthly deliveries",
                         "raw_value": f"{v:.0f}", "unit": "vehicles", "raw_unit": "vehicles", "source": "", "quote": "",
                         "confidence": "high", "granularity": "month", "start": m, "end": m, "measure": "deliveries",
                         "frequency": "monthly", "cumulative_of": None, "value": v, "low": v, "high": v, "qualifier": "=",
                         "brand": name, "model": None, "basis": "", "market": "CN", "note": ""})  # fmt: skip
    return pd.DataFrame(rows, columns=list(FIGURE_COLUMNS))


# --------------------------------------------------------------------------- pieces


def test_systematic_resampling_copies_each_particle_floor_or_ceil_of_its_share():
    rng = np.random.default_rng(3)
    w = rng.random(50) ** 3
    w /= w.sum()
    for k in range(20):
        idx = systematic_resample(w, 200, np.random.default_rng(k))
        counts = np.bincount(idx, minlength=50)
        assert np.all(counts >= np.floor(200 * w) - 1e-9) and np.all(counts <= np.ceil(200 * w) + 1e-9)
    assert ess(np.ones(40)) == pytest.approx(40.0) and ess(np.eye(1, 40, 0)[0]) == pytest.approx(1.0)
    assert normalised(np.array([0.0, np.log(3.0)])) == pytest.approx([0.25, 0.75])


def _obs(**kw) -> Observation:
    base = {"key": "A", "lines": (2,), "level": "brand", "entity": "A", "start": 10, "end": 12, "fraction": 1.0,
            "pipeline": 0.0, "value": 100.0, "low": 100.0, "high": 100.0, "qualifier": "=", "sd": 0.1}
    return Observation(**(base | kw))


def test_observation_values_and_likelihoods():
    monthly = np.array([[10.0, 20.0, 30.0, 40.0]])  # months 9..12
    assert _obs().simulated(monthly, 9)[0] == 20 + 30 + 40
    # a milestone on the 15th of a 30-day month counts half of it, and half a month more when cars built lead deliveries
    assert _obs(fraction=0.5).simulated(monthly, 9)[0] == 20 + 30 + 20
    assert _obs(fraction=0.5, pipeline=0.5).simulated(monthly, 9)[0] == 20 + 30 + 40
    two = _obs().log_likelihood(np.array([100.0, 110.0]))
    assert two[0] > two[1] and two[0] == pytest.approx(-np.log(0.1 * np.sqrt(2 * np.pi)))
    # '>': one-sided: far above the bound is certain, at the bound is even odds, far below impossible
    above = _obs(qualifier=">", low=100.0, high=np.inf).log_likelihood(np.array([1000.0, 100.0, 10.0]))
    assert above[0] == pytest.approx(0.0, abs=1e-9) and above[1] == pytest.approx(np.log(0.5)) and above[2] < -50


def test_sources_of_one_figure_are_one_observation_and_milestones_read_their_day(drifting):
    rows = [
        {"line": 2, "date": "2024-06", "entity": "A", "start": "2024-06", "end": "2024-06", "value": 1000.0,
         "confidence": "high", "frequency": "monthly", "measure": "deliveries", "qualifier": "="},
        {"line": 3, "date": "2024-06", "entity": "A", "start": "2024-06", "end": "2024-06", "value": 1300.0,
         "confidence": "low", "frequency": "monthly", "measure": "deliveries", "qualifier": "="},
        {"line": 4, "date": "2024-09-10", "entity": "A", "start": "2024-09", "end": "2024-09", "value": 50000.0,
         "confidence": "high", "frequency": "point", "measure": "cumulative", "cumulative_of": "production",
         "qualifier": "="},
    ]  # fmt: skip
    base = {"brand": "A", "model": None, "basis": "", "market": "CN", "low": np.nan, "high": np.nan, "cumulative_of": None}
    f = pd.DataFrame([base | r for r in rows])
    f["low"], f["high"] = f["value"], f["value"]
    obs = observations(f, drifting, after=parse_month("2024-03"), through=parse_month("2024-12"))
    assert [o.key for o in obs] == ["A 2024-06", "A cumulative built to 2024-09-10"]
    assert obs[0].lines == (2, 3) and obs[0].value == pytest.approx((1000 + 0.3 * 1300) / 1.3)
    assert obs[1].fraction == pytest.approx(10 / 30) and obs[1].pipeline > 0 and obs[1].start == drifting.start_index


# --------------------------------------------------------------------------- the filter


def _filter(scenario, figures, seed: int, origin: int, folder: Path, particles: int = 200):
    obs = observations(figures, scenario, after=parse_month("2024-03"), through=origin)
    pf = ParticleFilter(scenario, obs, particles=particles, seed=seed, origin=origin, folder=folder, scale=SCALE,
                        log=io.StringIO())  # fmt: skip
    return pf.run()


def _interval(values: np.ndarray, w: np.ndarray, lo: float = 0.05, hi: float = 0.95) -> tuple[float, float]:
    order = np.argsort(values)
    cum = np.cumsum(w[order])
    return float(values[order][np.searchsorted(cum, lo)]), float(values[order][min(np.searchsorted(cum, hi), len(cum) - 1)])


@pytest.mark.slow
def test_the_filter_covers_a_known_drift_path(drifting, tmp_path):
    # 20 truths, each a run of the model with its own hidden drift path; the filter (200 particles, other
    # seeds) sees six months of each brand's deliveries and gives a 90% interval of each brand's drift at
    # the origin: it must hold the truth of both brands in at least 16 of the 20.
    origin = parse_month("2024-09")
    covered = 0
    for s in range(20):
        truth = MarketModel(drifting, seed=1000 + s, scale=SCALE)
        figures = monthly_figures(truth, origin, parse_month("2024-04"))
        res = _filter(drifting, figures, s, origin, tmp_path / f"f{s}")
        w = normalised(res.log_weights)
        drift = np.array([load_state(p.state).arrays["drift.brand"] for p in res.particles])
        inside = [lo <= truth.drift.brand[b] <= hi for b in range(2) for lo, hi in [_interval(drift[:, b], w)]]
        covered += all(inside)
        assert len(res.ess) == origin - parse_month("2024-04") + 1  # the ESS of every month
    assert covered >= 16, f"the truth was inside the 90% interval in {covered} of 20 seeds"


def test_the_filter_is_the_same_whatever_the_executor(drifting, tmp_path):
    from sim.runs.executors import make_executor

    origin = parse_month("2024-06")
    figures = monthly_figures(MarketModel(drifting, seed=5, scale=SCALE), origin, parse_month("2024-04"))
    obs = observations(figures, drifting, after=parse_month("2024-03"), through=origin)
    serial = ParticleFilter(drifting, obs, particles=12, seed=2, origin=origin, folder=tmp_path / "s", scale=SCALE,
                            log=io.StringIO()).run()  # fmt: skip
    ex = make_executor(2, "processes")
    try:
        para = ParticleFilter(drifting, obs, particles=12, seed=2, origin=origin, folder=tmp_path / "p", scale=SCALE,
                              executor=ex, slots=2, log=io.StringIO()).run()  # fmt: skip
    finally:
        ex.shutdown(wait=True)
    assert np.array_equal(serial.log_weights, para.log_weights)
    assert serial.ess == para.ess and serial.resampled == para.resampled
    for a, b in zip(serial.particles, para.particles, strict=True):
        assert np.array_equal(load_state(a.state).arrays["pool.id"], load_state(b.state).arrays["pool.id"])


# --------------------------------------------------------------------------- figures an analyst adds


def test_added_figures_are_checked_row_by_row(drifting, tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text(
        '"date","entity","metric","value","unit","source","quote","confidence"\n'
        '"2025-01","AITO","monthly deliveries","40,000","vehicles","s","q","high"\n'
        '"2025-02","AITO","monthly deliveries","about forty","vehicles","s","q","high"\n'
        '"2026-05","AITO","monthly deliveries","50,000","vehicles","s","q","high"\n'
    )
    baseline = load_scenario("scenarios/baseline.yaml")
    with pytest.raises(InputError) as err:
        read_figures(baseline, [f], origin=parse_month("2026-01"))
    text = str(err.value)
    assert f"{f}:3: value: cannot use this row" in text  # an unparseable value, located
    assert f"{f}:4: date: dated 2026-05, after the forecast's origin 2026-01" in text
    assert f"{f}:2:" not in text  # the good row is fine
    with pytest.raises(InputError, match="brand 'AITO' is not in scenario 'drifting'"):
        read_figures(drifting, [f], project=False)
    # a copy of the project's own file (with its rows that hold no figure) is fine
    copy = tmp_path / "copy.csv"
    copy.write_bytes(Path("scenarios/reported/figures.csv").read_bytes())
    assert len(read_figures(baseline, [copy])) > 0


def test_forecast_writes_a_results_folder_with_the_assimilation(drifting, tmp_path, sim_cli):
    scenario = tmp_path / "drifting.yaml"
    scenario.write_text(MARKET)
    figures = monthly_figures(MarketModel(drifting, seed=9, scale=SCALE), parse_month("2024-08"), parse_month("2024-04"))
    csv = tmp_path / "figures.csv"
    pd.DataFrame({"date": figures["date"], "entity": ["AITO"] * len(figures), "metric": figures["metric"],
                  "value": figures["raw_value"], "unit": "vehicles", "source": "s", "quote": "q",
                  "confidence": "high"}).head(0).to_csv(csv, index=False)  # fmt: skip
    out = tmp_path / "fc"
    proc = sim_cli("forecast", str(scenario), "--no-project-figures", "--figures", str(csv), "--through", "2024-08",
                   "--particles", "8", "-r", "6", "--before", "0", "--scale", str(SCALE), "--out", str(out), "-w", "1",
                   "--executor", "serial")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = store.load_results(out)
    assert set(res.runs["particle"]) <= set(range(8)) and len(res.runs) == 6
    months = res.sales["month"].unique()
    assert months.min() == "2024-01" and months.max() == "2025-06"  # each replicate holds its particle's history
    man = json.loads((out / "manifest.json").read_text())
    assim = man["assimilation"]
    assert assim["origin"] == "2024-08" and set(assim["ess"]) == {f"2024-{m:02d}" for m in range(4, 9)}
    assert len(assim["particle_weights"]) == 8
    proc = sim_cli("compare", str(out))
    assert proc.returncode == 0, proc.stderr


def test_tempering_keeps_the_effective_sample_size_at_its_floor():
    rng = np.random.default_rng(4)
    log_w = np.zeros(200)
    gentle = -0.5 * (rng.standard_normal(200) * 0.3) ** 2
    assert tempering(log_w, gentle, 50.0) == 1.0  # a flat likelihood is taken whole
    sharp = -0.5 * (rng.standard_normal(200) / 0.05) ** 2  # alone, it leaves a few particles
    assert ess(normalised(log_w + sharp)) < 25
    beta = tempering(log_w, sharp, 50.0)
    assert 0 < beta < 1
    assert ess(normalised(log_w + beta * sharp)) == pytest.approx(50.0, rel=0.02)
    # a sharper figure is tempered more
    assert tempering(log_w, 4 * sharp, 50.0) == pytest.approx(beta / 4, rel=0.02)


def test_a_forecast_replaces_its_folder_with_force_before_included(tmp_path):
    # make demo forecasts into the same folder every time: the second forecast replaces the first's before/ too
    from forecast_folders import BEFORE, ORIGIN, figures_of_a_run
    from forecast_folders import MARKET as FORECAST_MARKET

    from sim.analysis.forecast import run_forecast

    path = tmp_path / "drifting.yaml"
    path.write_text(FORECAST_MARKET)
    scenario, out = load_scenario(path), tmp_path / "fc"
    for force in (False, True):
        run_forecast(scenario, store.prepare_output(out, force=force), scenario_file=str(path),
                     figures=figures_of_a_run(path), figures_files=[], origin=parse_month(ORIGIN), particles=6,
                     replications=4, seed=3, before=BEFORE, scale=SCALE, executor="serial", progress=False,
                     log=io.StringIO())  # fmt: skip
        assert len(store.load_results(out).runs) == 4 and len(store.load_results(out / "before").runs) == BEFORE


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed is not installed")
def test_a_forecasts_particles_and_branched_replicates_are_the_same_on_dask(tmp_path):
    # the filter's particles and the replicates branched from their saved states: serial = 2 processes = Dask
    from forecast_folders import MARKET as FORECAST_MARKET
    from forecast_folders import ORIGIN, figures_of_a_run

    from sim.analysis.forecast import run_forecast

    path = tmp_path / "drifting.yaml"
    path.write_text(FORECAST_MARKET)
    scenario = load_scenario(path)
    tables = []
    for executor, workers in (("serial", 1), ("processes", 2), ("dask", 2)):
        out = store.prepare_output(tmp_path / executor)
        run_forecast(scenario, out, scenario_file=str(path), figures=figures_of_a_run(path), figures_files=[],
                     origin=parse_month(ORIGIN), particles=6, replications=5, seed=4, before=0, scale=SCALE,
                     executor=executor, workers=workers, progress=False, log=io.StringIO())  # fmt: skip
        res = store.load_results(out)
        tables.append((res.runs.drop(columns="seconds"), res.sales, res.manifest["assimilation"]["particle_weights"]))
    for runs, sales, weights in tables[1:]:
        pd.testing.assert_frame_equal(runs, tables[0][0], check_exact=True)
        pd.testing.assert_frame_equal(sales, tables[0][1], check_exact=True)
        assert weights == tables[0][2]
