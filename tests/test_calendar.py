"""The calendar of sim/model/calendar.py: a scenario's dates as arrays, and its events read once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim import MarketModel
from sim.model import calendar as calendars
from sim.model.calendar import Calendar, compile_calendar, shared_calendar
from sim.model.events import AGENT_EVENTS, SCHEDULE_EVENTS, DiscountChange, StoreChange
from sim.scenario.events import Event
from sim.scenario.load import load_scenario
from sim.scenario.yamlio import InputError

TINY = Path(__file__).resolve().parent / "data" / "tiny.yaml"
#: tiny.yaml's own events: a price move (folded into the prices) and a stores event (an agent's).
TINY_EVENTS = [
    {"month": "2024-06", "type": "price", "product": "B1", "price": 380000},
    {"month": "2024-07", "type": "stores", "brand": "A", "count": 500},
]


def with_events(*extra: dict) -> dict:
    """Overrides that add ``extra`` events to tiny.yaml's."""
    return {"events": [*TINY_EVENTS, *extra]}


def calendar_of(path: Path | str, overrides: dict | None = None) -> Calendar:
    return compile_calendar(load_scenario(path, overrides))


def test_the_calendar_spans_the_scenario_and_is_read_only():
    sc = load_scenario(TINY)
    cal = compile_calendar(sc)
    T, P, M = sc.n_months, len(sc.products), len(sc.markets)
    assert cal.n_months == T == 12 and cal.months[0] == cal.start == sc.start_index
    assert cal.product_names == ("A1", "A2", "B1") and cal.market_names == ("CN",)
    for name in ("price", "appeal", "smart", "age", "capacity", "capacity_full", "pre_refresh", "deliverable"):
        assert getattr(cal, name).shape == (T, P), name
    assert cal.open.shape == (T, P, M) and cal.arrivals.shape == (T, M) and cal.brand_appeal.shape == (T, 2)
    assert cal.policy.tariff.shape == cal.policy.subsidy.shape == (T, P, M)
    assert len(cal.events) == T
    with pytest.raises(ValueError, match="read-only"):
        cal.price[0, 0] = 1.0
    # Same scenario, same calendar.
    again = compile_calendar(sc)
    np.testing.assert_array_equal(again.capacity, cal.capacity)
    assert again.events == cal.events


def test_models_of_one_scenario_share_its_compiled_calendar():
    sc = load_scenario(TINY)
    cal = shared_calendar(sc)
    assert shared_calendar(sc) is cal and shared_calendar(load_scenario(TINY)) is cal  # an equal scenario made anew
    assert MarketModel(sc, seed=1).calendar is MarketModel(sc, seed=2).calendar is cal  # tiny.yaml draws nothing
    fresh = compile_calendar(sc)
    for owner, again in ((cal, fresh), (cal.policy, fresh.policy)):
        for name in type(owner).__dataclass_fields__:
            a, b = getattr(owner, name), getattr(again, name)
            if name != "policy":
                assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, name
    # Nothing a model could change: the policy's arrays are read-only as the calendar's are.
    with pytest.raises(ValueError, match="read-only"):
        cal.policy.subsidy[0, 0, 0] = 1.0
    other = load_scenario(TINY, {"products.A1.price": 260000})
    assert shared_calendar(other) is not cal and shared_calendar(other).price[0, 0] != cal.price[0, 0]
    for i in range(calendars.KEEP_CALENDARS + 1):  # the cache keeps the last few scenarios only
        shared_calendar(load_scenario(TINY, {"products.A1.price": 200000 + i}))
    assert len(calendars._compiled) == calendars.KEEP_CALENDARS


def test_dates_give_what_is_on_sale_deliverable_and_built():
    # tiny.yaml: A2 launches 2024-03, first deliveries 2024-05, capacity 1,500 on a 2-month ramp;
    # A1 (3,000, ramp 3) and B1 deliver from the start.
    cal = calendar_of(TINY)
    a1, a2 = cal.product_names.index("A1"), cal.product_names.index("A2")
    assert cal.open[:, a2, 0].tolist() == [False, False] + [True] * 10
    assert cal.deliverable[:, a2].tolist() == [False] * 4 + [True] * 8
    assert cal.capacity[:4, a2].tolist() == [0.0] * 4
    assert cal.capacity[4:7, a2].tolist() == [750.0, 1500.0, 1500.0]
    assert cal.capacity[:4, a1].tolist() == [1000.0, 2000.0, 3000.0, 3000.0]
    np.testing.assert_array_equal(cal.capacity_full[:, a2], 1500.0)


def test_schedule_events_change_the_arrays_from_their_month_on():
    over = {
        "events": [
            {"month": "2024-03", "type": "price", "product": "A1", "factor": 0.9},
            {"month": "2024-05", "type": "capacity", "product": "B1", "factor": 0.5, "until": "2024-06"},
            {"month": "2024-06", "type": "refresh", "product": "B1", "appeal": 0.3, "smart": 0.8, "announce_months": 2},
            {"month": "2024-08", "type": "appeal", "brand": "A", "appeal": -0.2},
            {"month": "2024-10", "type": "discontinue", "product": "A2"},
        ]
    }
    plain, cal = calendar_of(TINY, {"events": []}), calendar_of(TINY, over)
    a1, a2, b1 = (cal.product_names.index(n) for n in ("A1", "A2", "B1"))
    assert cal.price[:, a1].tolist() == [250_000.0] * 2 + [225_000.0] * 10
    assert cal.capacity_full[:, b1].tolist() == [20_000.0] * 4 + [10_000.0] * 2 + [20_000.0] * 6
    assert cal.appeal[:, b1].tolist() == [0.0] * 5 + [0.3] * 7
    assert cal.smart[:, b1].tolist() == [0.0] * 5 + [0.8] * 7
    assert cal.pre_refresh[:, b1].tolist() == [False] * 3 + [True] * 2 + [False] * 7
    np.testing.assert_allclose(cal.brand_appeal[:, 0] - plain.brand_appeal[:, 0], [0.0] * 7 + [-0.2] * 5)
    assert cal.end[a2] == cal.start + 8 and not cal.open[9:, a2].any() and cal.open[8, a2]
    assert cal.events == ((),) * 12  # none of these is an agent's event


def test_agent_events_are_typed_records_in_their_month_and_nothing_else():
    # tiny.yaml has a price event (2024-06: folded into the prices) and a stores event (2024-07).
    over = with_events(
        {"month": "2024-03", "type": "discount", "brands": ["A", "B"], "discount": 0.1, "floor": True},
        {"month": "2023-06", "type": "stores", "brand": "B", "count": 10},  # before the run: dropped
        {"month": "2024-09", "type": "stores", "brand": "B", "add": -100, "over_months": 3, "channel": "dealer"},
    )
    cal = calendar_of(TINY, over)
    assert cal.events[2] == (DiscountChange(brands=(0, 1), discount=0.1, floor=True),)
    assert cal.events[6] == (StoreChange(brand=0, market=0, channel=None, count=500, add=None, over_months=1),)
    assert cal.events[8] == (StoreChange(brand=1, market=0, channel="dealer", count=None, add=-100, over_months=3),)
    assert sum(len(e) for e in cal.events) == 3
    # Every event type goes exactly one way.
    types = set(Event.model_fields["type"].annotation.__args__)
    assert set(SCHEDULE_EVENTS) | set(AGENT_EVENTS) == types and not set(SCHEDULE_EVENTS) & set(AGENT_EVENTS)


def test_agent_events_reach_the_agents_in_their_month():
    over = with_events({"month": "2024-03", "type": "discount", "brand": "B", "discount": 0.3, "floor": True})
    m = MarketModel(load_scenario(TINY, over), seed=1)
    a, b = m.brand_names.index("A"), m.brand_names.index("B")
    for _ in range(3):
        m.step()
    assert m.brand_agents[b].floor == 0.3 and m.brand_agents[b].discount >= 0.3
    assert m.brand_agents[a].discount == 0.05
    stores = {d.brand: d.count for d in m.dealers}
    assert stores == {a: 300.0, b: 500.0}
    for _ in range(4):
        m.step()
    assert {d.brand: d.count for d in m.dealers} == {a: 500.0, b: 500.0}  # tiny.yaml's stores event, 2024-07


def test_a_stores_event_for_a_new_channel_opens_a_new_network():
    over = with_events({"month": "2024-02", "type": "stores", "brand": "A", "channel": "dealer", "count": 40})
    m = MarketModel(load_scenario(TINY, over), seed=1)
    m.step()
    assert len(m.dealers) == 2
    m.step()
    assert [(d.brand, d.channel, d.count) for d in m.dealers] == [(0, "direct", 300.0), (1, "direct", 500.0), (0, "dealer", 40.0)]


# ------------------------------------------------------------ moved from test_model.py


def test_appeal_like_takes_the_mean_of_the_named_products(tmp_path):
    child = tmp_path / "like.yaml"
    child.write_text(
        f"name: like\nextends: {TINY}\n"
        "products:\n  - {name: A1, appeal: 0.4}\n  - {name: B1, appeal: -0.2}\n"
        "  - {name: C1, brand: A, price: 300000, powertrain: BEV, launch: 2024-01, capacity: {max: 100},"
        " appeal_like: [A1, B1], appeal: 0.5}\n"
    )
    cal = calendar_of(child)
    j = cal.product_names.index("C1")
    assert cal.appeal[0, j] == pytest.approx(0.5 + (0.4 - 0.2) / 2)
    bad = tmp_path / "bad_like.yaml"
    bad.write_text(f"name: bad\nextends: {TINY}\nproducts:\n  - {{name: A1, appeal_like: [Nope]}}\n")
    with pytest.raises(Exception, match=r"bad_like.yaml:4: products\[0\]\.appeal_like\[0\]: unknown product 'Nope'"):
        load_scenario(bad)


def test_ageing_counts_from_launch_or_a_renewing_refresh(tmp_path):
    # A2 first delivers after the start (2024-05), so it ages; A1 and B1 deliver from the start (mature: age 0).
    # A refresh restarts the age unless it says renew: false.
    child = tmp_path / "age.yaml"
    child.write_text(
        f"name: age\nextends: {TINY}\nbuyers: {{ageing_per_year: 1.0}}\n"
        "events:\n  append:\n"
        "    - {month: 2024-09, type: refresh, product: A2}\n"
        "    - {month: 2024-10, type: refresh, product: A1, renew: false}\n"
    )
    sc = load_scenario(child)
    cal = compile_calendar(sc)
    a1, a2, b1 = (cal.product_names.index(n) for n in ("A1", "A2", "B1"))
    months = sc.months()
    assert cal.age[:, a1].max() == 0 and cal.age[:, b1].max() == 0
    assert cal.age[months.index("2024-08"), a2] == pytest.approx(5 / 12)  # launched 2024-03: 5 months by Aug
    assert cal.age[months.index("2024-09"), a2] == 0  # renewed by the refresh
    assert cal.age[months.index("2024-12"), a2] == pytest.approx(3 / 12)


def test_a_line_on_sale_before_the_start_ages_from_its_first_deliveries(tmp_path):
    # A1 delivers from the start; told it has been on sale since 2023-10, it is 3 months old in
    # 2024-01 and a renewing refresh restarts its clock. B1, with no such month, stays mature.
    child = tmp_path / "since.yaml"
    child.write_text(
        f"name: since\nextends: {TINY}\n"
        "products:\n  - {name: A1, on_sale_since: 2023-10}\n"
        "events:\n  append:\n    - {month: 2024-09, type: refresh, product: A1}\n"
    )
    sc = load_scenario(child)
    cal = compile_calendar(sc)
    a1, b1 = cal.product_names.index("A1"), cal.product_names.index("B1")
    months = sc.months()
    assert cal.age[months.index("2024-01"), a1] == pytest.approx(3 / 12)
    assert cal.age[months.index("2024-08"), a1] == pytest.approx(10 / 12)
    assert cal.age[months.index("2024-09"), a1] == 0
    assert cal.age[:, b1].max() == 0
    with pytest.raises(InputError, match=r"products\[0\].*on_sale_since 2024-03 is after the first deliveries"):
        load_scenario(TINY, {"products.A1.on_sale_since": "2024-03"})


def test_spring_festival_shutdown_cuts_the_output_of_cars_made_in_that_market():
    # tiny.yaml: LNY 2024-02-10, so a 10-day shutdown costs 10 of February's 29 days; B1 is made
    # in CN too (made_in defaults to CN). Order books are still measured against full capacity.
    plain = calendar_of(TINY)
    shut = calendar_of(TINY, {"markets.CN.seasonality.lunar_new_year_shutdown_days": 10})
    feb = 1
    b1 = plain.product_names.index("B1")
    assert shut.capacity[feb, b1] == np.floor(plain.capacity[feb, b1] * 19 / 29 + 1e-9)
    others = np.arange(plain.n_months) != feb
    np.testing.assert_array_equal(shut.capacity[others], plain.capacity[others])
    np.testing.assert_array_equal(shut.capacity_full, plain.capacity_full)
