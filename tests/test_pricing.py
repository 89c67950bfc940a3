"""Prices that mean what the scenario says: discount changes on top of a brand's own path, the
pricing rule held in the forecast, and trims (the choice at the mix's price, units counted in the
segment of their trim's transaction price). The mechanisms on tiny.yaml; the shipped scenarios in
tests/test_scenario_effects.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TINY

from sim import MarketModel
from sim.model.calendar import compile_calendar
from sim.model.events import DiscountChange
from sim.runs.run import execute, make_specs, split_counts
from sim.scenario.load import load_scenario
from sim.scenario.yamlio import InputError

#: tiny.yaml's own events: a price move (folded into the prices) and a stores event (an agent's).
TINY_EVENTS = [
    {"month": "2024-06", "type": "price", "product": "B1", "price": 380000},
    {"month": "2024-07", "type": "stores", "brand": "A", "count": 500},
]


def with_events(*extra: dict, **more: object) -> dict:
    """Overrides that add ``extra`` events to tiny.yaml's (and set other values by path)."""
    return {"events": [*TINY_EVENTS, *extra], **more}


def discounts(overrides: dict, seed: int = 1) -> pd.DataFrame:
    """Each brand's discount charged (columns) by month of a run of tiny.yaml, and the rule's own (``rule <brand>``)."""
    m = MarketModel(load_scenario(TINY, overrides), seed=seed)
    rows = []
    for _ in range(m.n_months):
        m.step()
        rows.append({**{b.name: b.discount for b in m.brand_agents}, **{f"rule {b.name}": b.rule_discount for b in m.brand_agents}})
    return pd.DataFrame(rows, index=m.config.months())


# ------------------------------------------------------------------ discount changes


def test_a_discount_change_deepens_the_brands_own_path_in_its_months_and_only_then():
    # A has no pricing rule (fixed 5%); B's rule moves its discount toward its stock target.
    plain = discounts(with_events())
    war = discounts(with_events({"month": "2024-03", "type": "discount", "brands": ["A", "B"], "add": 0.06, "until": "2024-08"}))
    on = [f"2024-{m:02d}" for m in range(3, 9)]
    np.testing.assert_allclose(war.loc[on, "A"], 0.11)
    np.testing.assert_allclose(war.drop(on)["A"], 0.05)
    # B charges its rule's discount plus six points while the change is on, whatever the rule does.
    np.testing.assert_allclose(war.loc[on, "B"], war.loc[on, "rule B"] + 0.06)
    np.testing.assert_allclose(war.drop(on)["B"], war.drop(on)["rule B"])
    np.testing.assert_array_equal(war.loc[:"2024-02"], plain.loc[:"2024-02"])


def test_a_change_goes_beyond_the_brands_max_discount_unless_it_states_its_own_cap():
    # A's max_discount is the schema default 0.5; B's rule is capped there too.
    deep = discounts(with_events({"month": "2024-02", "type": "discount", "brand": "A", "add": 0.6}))
    assert deep.loc["2024-02":, "A"].tolist() == [pytest.approx(0.65)] * 11
    capped = discounts(with_events({"month": "2024-02", "type": "discount", "brand": "A", "add": 0.06, "max_discount": 0.08}))
    assert capped.loc["2024-02":, "A"].tolist() == [pytest.approx(0.08)] * 11
    # A negative change makes the discount shallower, never below zero.
    up = discounts(with_events({"month": "2024-02", "type": "discount", "brand": "A", "add": -0.1}))
    assert up.loc["2024-02":, "A"].tolist() == [0.0] * 11


def test_changes_stack_expire_and_ride_on_a_new_level():
    war = discounts(with_events(
        {"month": "2024-02", "type": "discount", "brand": "A", "add": 0.04, "until": "2024-05"},
        {"month": "2024-04", "type": "discount", "brand": "A", "add": 0.02},
        {"month": "2024-08", "type": "discount", "brand": "A", "discount": 0.10},
    ))
    expected = [0.05, 0.09, 0.09, 0.11, 0.11, 0.07, 0.07, 0.12, 0.12, 0.12, 0.12, 0.12]
    np.testing.assert_allclose(war["A"], expected)
    np.testing.assert_allclose(war["rule A"], [0.05] * 7 + [0.10] * 5)


def test_a_discount_event_compiles_to_a_level_or_a_change():
    sc = load_scenario(TINY, with_events(
        {"month": "2024-03", "type": "discount", "brand": "B", "add": 0.05, "until": "2024-06", "max_discount": 0.3},
        {"month": "2024-04", "type": "discount", "brand": "A", "discount": 0.1, "floor": True},
    ))
    events = compile_calendar(sc).events
    assert events[2] == (DiscountChange(brands=(1,), discount=None, floor=False, add=0.05, until=sc.start_index + 5, cap=0.3),)
    assert events[3] == (DiscountChange(brands=(0,), discount=0.1, floor=True),)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"brand": "A"}, "either 'discount'"),
        ({"brand": "A", "discount": 0.1, "add": 0.02}, "either 'discount'"),
        ({"brand": "A", "add": 0.02, "floor": True}, "floor goes with 'discount'"),
        ({"brand": "A", "discount": 0.1, "until": "2024-05"}, "until and max_discount go with 'add'"),
        ({"brand": "A", "add": 1.5}, "between -1 and 1"),
        ({"add": 0.02}, "needs 'brand'"),
    ],
)
def test_a_discount_event_says_what_is_wrong(event: dict, message: str):
    with pytest.raises(InputError, match=message):
        load_scenario(TINY, with_events({"month": "2024-03", "type": "discount", **event}))


def test_until_and_max_discount_belong_to_the_events_that_use_them():
    with pytest.raises(InputError, match="until is for 'capacity' and 'discount' events"):
        load_scenario(TINY, with_events({"month": "2024-03", "type": "price", "product": "A1", "factor": 0.9, "until": "2024-05"}))
    with pytest.raises(InputError, match="max_discount is for 'discount' events"):
        load_scenario(TINY, with_events({"month": "2024-03", "type": "price", "product": "A1", "factor": 0.9, "max_discount": 0.2}))


# ------------------------------------------------------------------ the rule in the forecast


def test_the_pricing_rule_holds_the_discount_in_the_forecast_unless_the_brand_says_otherwise():
    # B: a stock brand whose rule moves its discount every month (a strong response, so it always moves).
    fast = {"brands.B.pricing.response": 0.05}
    free = discounts(with_events(**fast))
    assert (free["rule B"].diff().iloc[1:].abs() > 1e-9).all()
    held = discounts(with_events(**fast, forecast_start="2024-07"))
    np.testing.assert_array_equal(held.loc[:"2024-06"], free.loc[:"2024-06"])  # history as before
    assert held.loc["2024-07":, "B"].nunique() == 1 and held.loc["2024-07", "B"] == free.loc["2024-06", "B"]
    # Where the draws of uncertainty start does not matter: the forecast starts at forecast_start.
    drawn = discounts(with_events(**fast, forecast_start="2024-07", **{"uncertainty.start": "2024-04"}))
    np.testing.assert_array_equal(drawn, held)
    # A brand that keeps its rule in the forecast, and events in the hold.
    goes_on = discounts(with_events(**fast, forecast_start="2024-07", **{"brands.B.pricing.forecast": "rule"}))
    np.testing.assert_array_equal(goes_on["B"], free["B"])
    moved = discounts(with_events({"month": "2024-09", "type": "discount", "brand": "B", "discount": 0.3}, **fast,
                                  forecast_start="2024-07"))
    assert moved.loc["2024-09":, "B"].tolist() == [0.3] * 4


def test_the_calendar_says_in_which_months_each_rule_acts():
    cal = compile_calendar(load_scenario(TINY, {"forecast_start": "2024-10", "brands.A.pricing.forecast": "rule"}))
    assert cal.discount_rule.shape == (12, 2)
    assert cal.discount_rule[:, 0].all() and cal.discount_rule[:, 1].tolist() == [True] * 9 + [False] * 3
    assert compile_calendar(load_scenario(TINY)).discount_rule.all()  # no forecast part: the rule acts throughout


# ------------------------------------------------------------------ trims


#: A1 (250,000 list) in two trims: the entry at 60% of its units and one 100,000 dearer at 40%.
A1_TRIMS = {"products.A1.trims": [{"name": "base", "premium": 0, "share": 0.6}, {"name": "top", "premium": 100000, "share": 0.4}]}


def test_trims_price_the_choice_at_the_mix_and_follow_price_events():
    plain = compile_calendar(load_scenario(TINY))
    over = {**A1_TRIMS, "events": [*TINY_EVENTS, {"month": "2024-04", "type": "price", "product": "A1", "price": 240000},
                                   {"month": "2024-08", "type": "price", "product": "A1", "factor": 0.9}]}
    cal = compile_calendar(load_scenario(TINY, over))
    a1 = cal.product_names.index("A1")
    assert cal.trim_share[a1].tolist() == [0.6, 0.4] and cal.trim_share[cal.product_names.index("B1")].tolist() == [1.0, 0.0]
    # A new price moves the entry trim and keeps the premium; a factor moves every trim.
    np.testing.assert_allclose(cal.trim_price[:, a1, 0], [250000] * 3 + [240000] * 4 + [216000] * 5)
    np.testing.assert_allclose(cal.trim_price[:, a1, 1], [350000] * 3 + [340000] * 4 + [306000] * 5)
    np.testing.assert_allclose(cal.price[:, a1], 0.6 * cal.trim_price[:, a1, 0] + 0.4 * cal.trim_price[:, a1, 1])
    # Products without trims are priced as before, to the bit.
    others = [j for j in range(3) if j != a1]
    np.testing.assert_array_equal(compile_calendar(load_scenario(TINY, A1_TRIMS)).price[:, others], plain.price[:, others])


def test_trims_shares_must_sum_to_one():
    bad = {"products.A1.trims": [{"premium": 0, "share": 0.6}, {"premium": 1000, "share": 0.3}]}
    with pytest.raises(InputError, match=r"products\[0\]\.trims: .*sum to 0\.9, not 1"):
        load_scenario(TINY, bad)


def run_sales(overrides: dict) -> tuple[pd.DataFrame, MarketModel]:
    spec = make_specs(load_scenario(TINY, overrides), 1, seed=3)[0]
    out = execute(spec)
    assert out.run["status"] == "ok", out.run["error"]
    model = MarketModel(spec.scenario, rng=np.random.Generator(np.random.PCG64(spec.seed_sequence())))
    model.run()
    return out.sales, model


def test_units_count_in_the_segment_of_their_trims_transaction_price_and_sums_by_model_hold():
    sales, model = run_sales(A1_TRIMS)
    mv = model.datacollector.model_vars
    per = sales.groupby(["month", "model"])[["units", "orders", "backlog", "cancellations"]].sum()
    for t, month in enumerate(model.config.months()):
        for j, name in enumerate(model.product_names):
            if (month, name) in per.index:
                for col in ("units", "orders", "backlog", "cancellations"):
                    assert per.loc[(month, name), col] == mv[col][t + 1][j].sum(), (month, name, col)  # row 0: the start
    # A1's trims at a 5% discount: 237,500 (below 300k) and 332,500 (above): two rows a month, 60:40.
    rows = sales[sales["model"] == "A1"]
    assert (rows.groupby("month").size() == 2).all()
    low, high = rows[rows["segment"] == "<300k"], rows[rows["segment"] == "300k+"]
    np.testing.assert_allclose(low["transaction_price"], 237500.0)
    np.testing.assert_allclose(high["transaction_price"], 332500.0)
    np.testing.assert_allclose(low["list_price"], 250000.0)
    share = low["units"].to_numpy() / (low["units"].to_numpy() + high["units"].to_numpy())
    total = low["units"].to_numpy() + high["units"].to_numpy()
    assert (np.abs(low["units"].to_numpy() - 0.6 * total) <= 1).all() and np.nanmean(share) == pytest.approx(0.6, abs=0.01)
    # Every row's transaction price lies in its segment; other products keep one row a month.
    floor = {"<300k": 0.0, "300k+": 300000.0}
    assert all(p >= floor[s] for s, p in zip(sales["segment"], sales["transaction_price"], strict=True))
    assert (sales[sales["model"] != "A1"].groupby(["month", "model"]).size() == 1).all()


def test_trims_in_one_segment_make_one_row_at_their_mean_price():
    same = {"products.A1.trims": [{"premium": 0, "share": 0.5}, {"premium": 20000, "share": 0.5}]}
    sales, _ = run_sales(same)
    rows = sales[sales["model"] == "A1"]
    assert (rows.groupby("month").size() == 1).all()
    np.testing.assert_allclose(rows["list_price"], 260000.0)


def test_split_counts_keeps_every_total():
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(1, 4, rng.integers(1, 6))
        row = np.repeat(np.arange(sizes.size), sizes)
        share = rng.random(row.size)
        share /= np.bincount(row, share)[row]
        total = rng.integers(0, 1000, sizes.size)
        out = split_counts(total[row], row, share)
        assert (np.bincount(row, out, minlength=sizes.size) == total).all()
        assert (np.abs(out - total[row] * share) < 1).all()
