"""A run's uncertainty draws (sim/model/draws.py): reproducible, shared across scenarios by name, and
of the size the scenario asks for."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_scenario

from sim.model.draws import Drift, draw, item_stream
from sim.model.market_model import MarketModel
from sim.runs.batch import collect
from sim.runs.run import DRAWS_COLUMN, execute, make_specs
from sim.scenario.yamlio import InputError

#: Every kind of draw at once, from the fourth month.
UNCERTAIN = {
    "uncertainty.start": "2024-04",
    "uncertainty.brand_drift": 0.1,
    "uncertainty.product_drift": 0.05,
    "uncertainty.market_level": 0.1,
    "uncertainty.market_growth": 0.05,
    "uncertainty.new_product_appeal": 0.3,
    "products.A1.capacity.range": {"low": 2000, "high": 4000, "source": "assumption (test)"},
}


def _runs(overrides: dict, replications: int = 3, seed: int = 11):
    specs = make_specs(tiny_scenario(overrides), replications, seed=seed)
    return collect([execute(s) for s in specs])


def test_a_scenario_without_uncertainty_runs_as_before_and_records_no_draws():
    zero = {k: 0.0 for k in UNCERTAIN if k.startswith("uncertainty.") and k != "uncertainty.start"}
    runs_a, sales_a = _runs({})
    runs_b, sales_b = _runs({"uncertainty.start": "2024-04", **zero})
    pd.testing.assert_frame_equal(sales_a, sales_b)
    assert DRAWS_COLUMN not in runs_a.columns and DRAWS_COLUMN not in runs_b.columns


def test_same_seed_same_tables_and_draws_different_seeds_differ():
    runs_a, sales_a = _runs(UNCERTAIN)
    runs_b, sales_b = _runs(UNCERTAIN)
    pd.testing.assert_frame_equal(sales_a, sales_b)
    assert list(runs_a[DRAWS_COLUMN]) == list(runs_b[DRAWS_COLUMN])
    draws = [json.loads(d) for d in runs_a[DRAWS_COLUMN]]
    assert {"market", "capacity", "appeal", "drift"} <= set(draws[0])
    assert draws[0] != draws[1]  # replicates draw differently
    _, sales_c = _runs(UNCERTAIN, seed=12)
    assert not sales_a["units"].equals(sales_c["units"])


def test_draws_are_shared_by_name_across_scenarios():
    # Another product in the scenario leaves every other item's draws unchanged (common random numbers).
    seed = np.random.SeedSequence(5, spawn_key=(3,))
    base = tiny_scenario(UNCERTAIN)
    whole = {k: v for k, v in UNCERTAIN.items() if not k.startswith("products.")}  # the list is given whole below
    more = tiny_scenario({**whole, "products": [
        *[p.model_dump(mode="json") for p in base.products],
        {"name": "A3", "brand": "A", "price": 300000, "powertrain": "BEV", "launch": "2024-06", "capacity": {"max": 1000}},
    ]})  # fmt: skip
    d1, d2 = draw(base, seed), draw(more, seed)
    assert d1.market == d2.market and d1.capacity == d2.capacity
    assert {k: v for k, v in d2.appeal.items() if k != "A3"} == d1.appeal and "A3" in d2.appeal
    w1, w2 = Drift(base, seed, 3), Drift(more, seed, 3)
    for t in range(12):
        w1.step(t)
        w2.step(t)
    assert np.array_equal(w1.brand, w2.brand)
    assert np.array_equal(w1.product, w2.product[: len(base.products)])


def test_the_model_stream_is_untouched_by_the_draws():
    # The buyers' draws are the same with and without uncertainty until the first uncertain month
    # (a new product's appeal aside: it is shifted over the product's whole life, pre-sales included).
    plain = MarketModel(tiny_scenario({}), seed=3)
    drawn = MarketModel(tiny_scenario({**UNCERTAIN, "uncertainty.new_product_appeal": 0.0}), seed=3)
    for _ in range(3):  # 2024-01..2024-03, before uncertainty.start
        plain.step()
        drawn.step()
    assert np.array_equal(plain.month_units, drawn.month_units)
    assert np.array_equal(plain.pool.budget, drawn.pool.budget)


def test_drift_is_a_random_walk_of_the_asked_scale():
    sc = tiny_scenario({"uncertainty.start": "2024-01", "uncertainty.brand_drift": 0.2})
    ends = []
    for r in range(400):
        w = Drift(sc, np.random.SeedSequence(1, spawn_key=(r,)), 0)
        for t in range(9):
            w.step(t)
        ends.append(w.brand.copy())
    ends = np.array(ends)
    # After 9 monthly steps of sd 0.2 the walk's sd is 0.2 * 3 = 0.6 (400 draws: within about 10%).
    assert ends.std(axis=0) == pytest.approx([0.6, 0.6], rel=0.12)
    assert abs(np.corrcoef(ends.T)[0, 1]) < 0.15  # brands walk independently


def test_student_t_offsets_keep_their_sd_with_heavier_tails():
    starts = {}
    for df in (0.0, 4.0):
        sc = tiny_scenario({"uncertainty.start": "2024-01", "uncertainty.brand_level": 0.5, "uncertainty.level_df": df})
        firsts = []
        for r in range(3000):
            w = Drift(sc, np.random.SeedSequence(2, spawn_key=(r,)), 0)
            w.step(0)
            firsts.append(w.brand.copy())
        starts[df] = np.array(firsts).ravel()
    for x in starts.values():
        assert x.std() == pytest.approx(0.5, rel=0.1)
    # the same sd, more of the mass near 0 and in the tails: the t's central half is narrower
    iqr = {df: np.subtract(*np.percentile(x, [75, 25])) for df, x in starts.items()}
    assert iqr[4.0] < 0.9 * iqr[0.0]
    assert np.mean(np.abs(starts[4.0]) > 1.5) > np.mean(np.abs(starts[0.0]) > 1.5)
    with pytest.raises(InputError, match="level_df must be more than 2"):
        tiny_scenario({"uncertainty.level_df": 2.0})


def test_capacity_ranges_and_market_size_reach_the_calendar():
    sc = tiny_scenario(UNCERTAIN)
    m = MarketModel(sc, seed=4)
    plain = MarketModel(tiny_scenario({}), seed=4)
    a1 = m.product_names.index("A1")
    drawn = m.draws.capacity["A1"]
    assert 2000 <= drawn <= 4000
    t0 = m.draws.start
    assert m.calendar.capacity_full[t0:, a1] == pytest.approx(drawn)
    assert np.array_equal(m.calendar.capacity_full[:t0, a1], plain.calendar.capacity_full[:t0, a1])
    level, growth = m.draws.market["CN"]
    years = (np.arange(12) - t0) / 12.0
    ratio = m.calendar.arrivals[:, 0] / plain.calendar.arrivals[:, 0]
    assert ratio[:t0] == pytest.approx(1.0)
    assert ratio[t0:] == pytest.approx(np.exp(level + growth * years[t0:]))


def test_item_streams_differ_by_kind_and_name():
    seed = np.random.SeedSequence(9)
    values = {(k, n): item_stream(seed, k, n).standard_normal() for k in ("brand", "product") for n in ("A", "B")}
    assert len(set(values.values())) == 4


def _batch(tmp_path, specs, name: str, **kw):
    from sim.runs import batch, store

    out = store.prepare_output(tmp_path / name)
    batch.run_batch(specs, out, {"request": {"kind": "test"}}, progress=False, **kw)
    res = store.load_results(out)
    return res.runs.drop(columns=["seconds"]).sort_values("run_id").reset_index(drop=True), res.sales


def test_draws_are_the_same_whatever_the_executor(tmp_path):
    specs = make_specs(tiny_scenario(UNCERTAIN), 4, seed=21)
    runs_s, sales_s = _batch(tmp_path, specs, "serial", executor="serial")
    runs_p, sales_p = _batch(tmp_path, specs, "processes", executor="processes", workers=2, chunk_size=1)
    pd.testing.assert_frame_equal(runs_s, runs_p)
    pd.testing.assert_frame_equal(sales_s, sales_p)
    assert runs_s[DRAWS_COLUMN].nunique() == 4


@pytest.mark.slow
def test_draws_are_the_same_on_dask(tmp_path):
    pytest.importorskip("dask.distributed")
    specs = make_specs(tiny_scenario(UNCERTAIN), 4, seed=21)
    runs_s, sales_s = _batch(tmp_path, specs, "serial", executor="serial")
    runs_d, sales_d = _batch(tmp_path, specs, "dask", executor="dask", workers=2, chunk_size=2)
    pd.testing.assert_frame_equal(runs_s, runs_d.drop(columns=[c for c in runs_d.columns if c not in runs_s.columns]))
    pd.testing.assert_frame_equal(sales_s, sales_d)


def test_a_brands_scale_widens_its_offsets_and_its_products_own_and_no_other():
    over = {"uncertainty.start": "2024-01", "uncertainty.brand_level": 0.4, "uncertainty.product_level": 0.2,
            "uncertainty.brand_drift": 0.1}  # fmt: skip
    plain = tiny_scenario(over)
    scaled = tiny_scenario({**over, "uncertainty.brand_scale": {"A": 2.5}})
    seed = np.random.SeedSequence(5)
    a, b = Drift(plain, seed, 0), Drift(scaled, seed, 0)
    for t in range(3):
        a.step(t)
        b.step(t)
    brands, products = [x.name for x in plain.brands], [p for p in plain.products]
    i = brands.index("A")
    # the same draws, brand A's (and its products' own) 2.5 times as large, brand B's and its products' untouched
    assert b.brand[i] == pytest.approx(2.5 * a.brand[i]) and b.brand[1 - i] == a.brand[1 - i]
    for j, p in enumerate(products):
        assert b.product[j] == pytest.approx((2.5 if p.brand == "A" else 1.0) * a.product[j])
    with pytest.raises(InputError, match="brand_scale.C: unknown brand 'C'"):
        tiny_scenario({"uncertainty.brand_scale": {"C": 2.0}})
