"""Properties of MarketModel and of runs: accounting identities every month, seeds, replicates,
serial equals parallel, Mesa inspection, keyword overrides, comparative statics, shipped scenarios.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mesa
import numpy as np
import pytest
import yaml
from pandas.testing import assert_frame_equal

from sim import MarketModel, load_results, load_scenario
from sim.model.agents import Buyer
from sim.model.kernels import resolve_kernel
from sim.runs import store
from sim.runs.batch import run_batch
from sim.runs.run import RUNS_COLUMNS, SALES_COLUMNS, execute, make_specs
from sim.scenario.months import format_month, parse_month
from sim.scenario.yamlio import InputError

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.yaml"

#: tiny.yaml with capacity and order books that bind: small plants, short order books.
BINDING = {
    "products.A1.capacity.max": 400,
    "products.A1.max_wait_months": 1.0,
    "products.A2.capacity.max": 150,
    "products.B1.capacity.max": 600,
    "products.B1.max_wait_months": 2.0,
}


def step_and_check(model: MarketModel) -> dict[str, int]:
    """Step a model to its end, checking the month's accounting after every step.

    Returns:
        How often capacity and the order book bound (to show a variant really binds).
    """
    bound = {"capacity": 0, "order_book": 0}
    months = 0
    while model.running:
        t = model.t
        stock_before = model.stock.copy()
        backlog_before = model.backlog.copy()
        model.step()
        months += 1
        units, orders = model.month_units, model.month_orders
        cancel, backlog = model.month_cancellations, model.backlog
        cap = model.capacity_now
        # Counts are whole, finite and never negative.
        for name, arr in {"units": units, "orders": orders, "cancellations": cancel, "backlog": backlog}.items():
            assert np.all(np.isfinite(arr)) and np.all(arr >= 0), (model.month_label, name)
            assert np.all(arr == np.round(arr)), (model.month_label, name)
        assert np.all(model.stock >= -1e-9), model.month_label
        # Deliveries never exceed this month's capacity plus the stock held before the month.
        delivered = units.sum(axis=1)
        assert np.all(delivered <= cap + stock_before + 1e-9), model.month_label
        # Nothing is delivered before delivery start, nothing ordered before launch.
        month = model.month_index
        cal = model.calendar
        assert np.all(delivered[cal.delivery_start > month] == 0)
        assert np.all(orders[cal.launch > month] == 0)
        # Orders = deliveries + backlog change + cancellations, per product and market.
        np.testing.assert_array_equal(orders, units + (backlog - backlog_before) + cancel, err_msg=model.month_label)
        # Cancellations come out of the backlog carried into the month.
        assert np.all(cancel <= backlog_before)
        # The order book takes no more than max_wait months of full capacity (plus stock).
        room = np.maximum(cal.max_wait * cal.capacity_full[t] + stock_before - backlog_before.sum(axis=1), 0.0)
        assert np.all(orders.sum(axis=1) <= room + 0.5 * model.scale), model.month_label
        bound["capacity"] += int(np.sum((delivered > 0) & (delivered == cap + stock_before)))
        bound["order_book"] += int(np.sum((room > 0) & (orders.sum(axis=1) >= room - model.scale)))
    assert months == model.n_months
    return bound


# ------------------------------------------------------------ monthly invariants


@pytest.mark.parametrize("seed", [1, 2])
def test_monthly_accounting_on_tiny(seed: int):
    model = MarketModel(scenario=TINY, seed=seed)
    step_and_check(model)


@pytest.mark.parametrize("seed", [1, 2])
def test_monthly_accounting_with_binding_capacity(seed: int):
    model = MarketModel(scenario=load_scenario(TINY, BINDING), seed=seed)
    bound = step_and_check(model)
    assert bound["capacity"] > 0, "the variant should have capacity binding in some month"
    assert bound["order_book"] > 0, "the variant should have an order book filling up in some month"


def test_model_stops_at_the_end_with_one_row_per_month(tiny):
    model = MarketModel(scenario=tiny, seed=3)
    for _ in range(tiny.n_months):
        assert model.running
        model.step()
    assert not model.running
    model.step()  # a step after the end changes nothing
    df = model.datacollector.get_model_vars_dataframe()
    # Mesa's convention: row 0 is the state at construction (before the first month), row k after month k.
    initial, months = df.iloc[0], df.iloc[1:]
    assert len(months) == tiny.n_months == 12
    assert months["month"].tolist() == tiny.months()
    assert (months["buyer_decisions"] > 0).all()
    assert initial["month"] == "2023-12" and initial["buyer_decisions"] == 0 and not initial["offered"].any()


# ------------------------------------------------------------------------ seeds


def test_same_seed_gives_identical_tables(tiny):
    a = execute(make_specs(tiny, 1, seed=5)[0])
    b = execute(make_specs(tiny, 1, seed=5)[0])
    assert a.run["status"] == "ok", a.run["error"]
    assert tuple(a.sales.columns) == SALES_COLUMNS
    assert_frame_equal(a.sales, b.sales)
    assert a.run["buyer_decisions"] == b.run["buyer_decisions"]


def test_different_seeds_differ(tiny):
    a = execute(make_specs(tiny, 1, seed=5)[0])
    b = execute(make_specs(tiny, 1, seed=6)[0])
    assert a.run["seed_entropy"] != b.run["seed_entropy"]
    assert not a.sales["orders"].equals(b.sales["orders"])


def test_model_with_the_same_seed_repeats_itself(tiny):
    def orders(seed: int) -> np.ndarray:
        model = MarketModel(scenario=tiny, seed=seed)
        model.run()
        return np.stack(model.datacollector.model_vars["orders"])

    np.testing.assert_array_equal(orders(9), orders(9))
    assert not np.array_equal(orders(9), orders(10))


def test_replicate_does_not_depend_on_the_number_of_replications(tiny):
    three, five = make_specs(tiny, 3, seed=11), make_specs(tiny, 5, seed=11)
    for r in range(3):
        assert (three[r].entropy, three[r].spawn_key) == (five[r].entropy, five[r].spawn_key)
        assert three[r] == five[r]
    assert len({s.spawn_key for s in five}) == 5
    a, b = execute(three[2]), execute(five[2])
    assert_frame_equal(a.sales, b.sales)
    # ... and replicate r re-runs alone, bit for bit, from its recorded seed identity.
    assert a.run["seed_entropy"] == "11" and a.run["spawn_key"] == "2"


def test_serial_and_parallel_batches_write_identical_tables(tiny, tmp_path: Path):
    short = load_scenario(TINY, {"end": "2024-06"})
    specs = make_specs(short, 3, seed=21)
    results = {}
    for workers in (1, 2):
        out = store.prepare_output(tmp_path / f"w{workers}")
        report = run_batch(specs, out, {"scenario_name": short.name}, workers=workers, chunk_size=1, progress=False)
        assert (report.asked, report.finished, report.failed) == (3, 3, 0)
        results[workers] = load_results(out)
    serial, parallel = results[1], results[2]
    assert_frame_equal(serial.sales, parallel.sales)
    assert tuple(serial.runs.columns) == RUNS_COLUMNS
    keep = [c for c in RUNS_COLUMNS if c != "seconds"]
    assert_frame_equal(
        serial.runs[keep].sort_values("run_id").reset_index(drop=True),
        parallel.runs[keep].sort_values("run_id").reset_index(drop=True),
    )
    assert serial.manifest["status"] == parallel.manifest["status"] == "complete"


def test_a_failed_run_is_data(tiny):
    # A run that raises is recorded as failed with its traceback, never raised.
    spec = make_specs(tiny, 1, seed=1)[0]
    broken = dataclasses.replace(spec, overrides={"products.Z9.price": 1})
    out = execute(broken)
    assert out.run["status"] == "failed"
    assert "Z9" in out.run["error"]
    assert out.sales.empty and tuple(out.sales.columns) == SALES_COLUMNS


# ------------------------------------------------------------- Mesa inspection


def test_buyers_are_inspectable_as_mesa_agents(tiny):
    model = MarketModel(scenario=tiny, seed=4)
    model.step()
    buyers = model.buyer_agents(5)
    assert len(buyers) == 5
    for b in buyers:
        assert isinstance(b, Buyer) and isinstance(b, mesa.Agent)
        assert b.in_market
        assert b.budget is not None and b.budget > 0
        assert b.market == "CN"
        assert b.choice in {*model.product_names, "outside"}
        assert b.price_sensitivity is not None and b.price_sensitivity > 0
        assert set(b.tastes) >= {"prestige", "smart", "BEV"}
    assert len({b.buyer_id for b in buyers}) == 5
    assert len(model.brands) == len(tiny.brands)


def test_buyer_views_follow_the_pool(tiny):
    model = MarketModel(scenario=tiny, seed=4)
    model.step()
    first = model.buyer_agents(1)[0]
    for _ in range(tiny.buyers.max_defer_months + 1):
        model.step()
    assert not first.in_market  # left after ordering or after deferring too long
    assert first.budget is None and first.choice is None


def test_inspecting_buyers_changes_nothing(tiny):
    def orders(inspect: bool) -> np.ndarray:
        model = MarketModel(scenario=tiny, seed=4)
        while model.running:
            model.step()
            if inspect:
                for b in model.buyer_agents(50):
                    assert b.budget is not None and b.choice is not None and b.tastes is not None
        return np.stack(model.datacollector.model_vars["orders"])

    np.testing.assert_array_equal(orders(False), orders(True))


# ------------------------------------------------------------ the two kernels


def test_kernel_is_chosen_by_argument_never_by_the_environment(monkeypatch):
    assert MarketModel(scenario=TINY, seed=1).kernel.name == "numba"
    assert MarketModel(scenario=TINY, seed=1, kernel="numpy").kernel.name == "numpy"
    monkeypatch.setenv("SIM_KERNEL", "numpy")  # read by the command line only
    assert MarketModel(scenario=TINY, seed=1).kernel.name == "numba"
    with pytest.raises(InputError, match="kernel must be one of numba, numpy, got 'fortran'"):
        MarketModel(scenario=TINY, seed=1, kernel="fortran")
    with pytest.raises(InputError, match=r"kernel must be one of numba, numpy, got 'fortran' \(from SIM_KERNEL\)"):
        resolve_kernel("fortran", origin="SIM_KERNEL")


def test_the_run_spec_carries_the_kernel(tiny):
    numpy_specs = make_specs(tiny, 2, seed=5, kernel="numpy")
    assert [s.kernel for s in numpy_specs] == ["numpy", "numpy"]
    assert make_specs(tiny, 1, seed=5)[0].kernel == "numba"
    by_numpy = execute(numpy_specs[0])
    by_numba = execute(dataclasses.replace(numpy_specs[0], kernel="numba"))
    assert by_numpy.run["status"] == by_numba.run["status"] == "ok"
    assert not by_numpy.sales["orders"].equals(by_numba.sales["orders"])  # same seed, other random streams
    assert_frame_equal(by_numpy.sales, execute(numpy_specs[0]).sales)
    broken = execute(dataclasses.replace(numpy_specs[0], kernel="fortran"))
    assert broken.run["status"] == "failed" and "kernel must be one of" in broken.run["error"]


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_each_kernel_repeats_itself_and_keeps_the_accounting(kernel: str):
    def run(seed: int) -> np.ndarray:
        model = MarketModel(scenario=load_scenario(TINY, BINDING), seed=seed, kernel=kernel)
        step_and_check(model)
        return np.stack(model.datacollector.model_vars["orders"])

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_compiled_and_numpy_kernels_agree_statistically():
    """Same law, different random streams: totals over a year of tiny.yaml agree over 30 seeds (|z| <= 3.5)."""
    seeds = 30
    totals = {}
    for kernel in ("numba", "numpy"):
        rows = []
        for seed in range(seeds):
            model = MarketModel(scenario=TINY, seed=seed, kernel=kernel)
            model.run()
            mv = model.datacollector.model_vars
            orders = np.stack(mv["orders"]).sum(axis=(0, 2))
            rows.append(np.concatenate([orders, [sum(mv["buyer_decisions"]), sum(mv["arrivals"])]]))
        totals[kernel] = np.array(rows, float)
    a, b = totals["numba"], totals["numpy"]
    z = (a.mean(0) - b.mean(0)) / np.sqrt(a.var(0, ddof=1) / seeds + b.var(0, ddof=1) / seeds)
    names = [f"orders {p}" for p in ("A1", "A2", "B1")] + ["decisions", "arrivals"]
    listing = ", ".join(f"{n}: z={v:+.2f}" for n, v in zip(names, z, strict=True))
    print(f"numba vs numpy kernels on tiny.yaml, {seeds} seeds: {listing}")
    assert np.all(np.abs(z) <= 3.5), listing


def test_compiled_pool_squeezes_out_leavers_in_place():
    """The pool's buffers: who stays keeps its row order and attributes; arrivals follow, with new ids."""
    model = MarketModel(scenario=TINY, seed=2)
    model.step()
    for _ in range(6):
        pool = model.pool
        stay = ~pool.leaves
        ids, budget, taste = pool.id[stay].copy(), pool.budget[stay].copy(), pool.taste[stay].copy()
        last_id = int(pool.id.max())
        model.step()
        pool = model.pool
        k = ids.size
        assert k > 0 and all(getattr(pool, name).shape[0] == len(pool) for name in pool.ARRAYS)
        np.testing.assert_array_equal(pool.id[:k], ids)
        np.testing.assert_array_equal(pool.budget[:k], budget)
        np.testing.assert_array_equal(pool.taste[:k], taste)
        assert len(pool) - k == model.month_arrivals > 0
        np.testing.assert_array_equal(pool.id[k:], np.arange(last_id + 1, last_id + 1 + model.month_arrivals))


# -------------------------------------------------------- overrides and statics


def _orders(model: MarketModel, product: str) -> float:
    model.run()
    orders = np.stack(model.datacollector.model_vars["orders"])
    return float(orders[:, model.product_names.index(product)].sum())


def test_keyword_overrides_change_the_result():
    base = MarketModel(scenario=TINY, seed=1)
    sens = MarketModel(scenario=TINY, seed=1, buyers__price_sensitivity=3.0)
    assert sens.config.buyers.price_sensitivity == 3.0
    assert base.config.buyers.price_sensitivity == 1.0
    assert _orders(base, "B1") != _orders(sens, "B1")
    # Dotted paths work as keyword overrides too, also on a Scenario object.
    dotted = MarketModel(scenario=load_scenario(TINY), seed=1, **{"products.A1.price": 260000})
    assert dotted.config.products[0].price == 260000


@pytest.mark.parametrize("seed", [1, 2])
def test_higher_price_sensitivity_lowers_sales_of_the_expensive_product(seed: int):
    # B1 (400k, the dearest) is never short of capacity, so its orders are its demand.
    low = _orders(MarketModel(scenario=TINY, seed=seed, buyers__price_sensitivity=1.0), "B1")
    high = _orders(MarketModel(scenario=TINY, seed=seed, buyers__price_sensitivity=3.0), "B1")
    assert high < low


def test_tariff_raises_the_landed_price_and_lowers_orders():
    tariff = [{"name": "import duty", "market": "CN", "rate": 0.15, "brands": ["B"]}]
    free = MarketModel(scenario=TINY, seed=1)
    taxed = MarketModel(scenario=TINY, seed=1, **{"policies.tariffs": tariff, "products.B1.made_in": "DE"})
    free.step()
    taxed.step()
    b1 = free.product_names.index("B1")
    assert taxed.month_list_price[b1, 0] == pytest.approx(1.15 * free.month_list_price[b1, 0])
    assert taxed.month_paid[b1, 0] > free.month_paid[b1, 0]
    others = [i for i in range(free.n_products) if i != b1]
    np.testing.assert_array_equal(taxed.month_list_price[others], free.month_list_price[others])
    assert _orders(taxed, "B1") < _orders(free, "B1")


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_a_known_price_rise_brings_orders_forward_and_a_cut_holds_them_back(kernel: str):
    """ODD 7.7: buyers who know that prices rise next month value waiting less (more order now); a
    known cut makes waiting worth more. tiny.yaml changes B1's price in 2024-06; compare May's orders
    with buyers who anticipate it against myopic ones, on the same draws."""

    def may_orders(price: int, gamma: float) -> float:
        total = 0.0
        for seed in (1, 2):
            sc = load_scenario(TINY, {"events[0].price": price, "buyers.price_expectation": gamma, "scale": 2})
            model = MarketModel(scenario=sc, seed=seed, kernel=kernel)
            for _ in range(5):  # 2024-01..2024-05
                model.step()
            assert model.month_label == "2024-05"
            total += model.last_orders.sum()
        return total

    myopic = may_orders(480000, 0.0)
    assert may_orders(480000, 0.0) == may_orders(320000, 0.0)  # myopic buyers do not see next month
    assert may_orders(480000, 1.0) > 1.03 * myopic
    assert may_orders(320000, 1.0) < 0.97 * myopic


def test_scale_sets_the_number_of_buyer_decisions():
    short = load_scenario(TINY, {"end": "2024-03"})
    decisions = {}
    for scale in (10.0, 40.0):
        out = execute(make_specs(short, 1, seed=2, scale=scale)[0])
        assert out.run["scale"] == scale
        decisions[scale] = out.run["buyer_decisions"]
    # Four times the scale, about a quarter of the buyer agents (Poisson noise is well under 10%).
    assert decisions[10.0] / decisions[40.0] == pytest.approx(4.0, rel=0.1)


def test_scale_keeps_sales_in_real_units():
    # Orders are counted in real cars whatever the scale: totals agree within sampling noise
    # (about 1,500 buyer agents order at scale 20 over six months: a standard error near 3%).
    short = load_scenario(TINY, {"end": "2024-06"})
    fine = execute(make_specs(short, 1, seed=3, scale=5.0)[0]).sales["orders"].sum()
    coarse = execute(make_specs(short, 1, seed=3, scale=20.0)[0]).sales["orders"].sum()
    assert coarse == pytest.approx(fine, rel=0.15)


# ------------------------------------------------------------ shipped scenarios


def _shipped_scenarios() -> list[Path]:
    """YAML files under scenarios/ that are scenarios (a top-level ``start`` or ``extends``)."""
    folder = ROOT / "scenarios"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        rel = path.relative_to(folder)
        if rel.parts[0] in ("reported", "sweeps"):
            continue
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            found.append(path)  # unreadable: let the test say why
            continue
        if isinstance(data, dict) and ("start" in data or "extends" in data):
            found.append(path)
    return found


SHIPPED = _shipped_scenarios()


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=str(p.relative_to(ROOT))) for p in SHIPPED]
    or [pytest.param(None, marks=pytest.mark.skip(reason="no scenario files under scenarios/ yet"))],
)
def test_every_shipped_scenario_validates_and_runs(path: Path):
    full = load_scenario(path)
    end = format_month(min(parse_month(full.start) + 2, parse_month(full.end)))
    sc = load_scenario(path, {"end": end})
    model = MarketModel(sc, seed=1, scale=200)
    model.run()
    df = model.datacollector.get_model_vars_dataframe().iloc[1:]  # row 0: the state before the first month
    assert len(df) == sc.n_months <= 3
    units = np.stack(df["units"])
    assert np.all(np.isfinite(units)) and np.all(units >= 0)
    assert int(df["buyer_decisions"].sum()) > 0


def test_adding_a_market_leaves_the_other_markets_draws_unchanged(tmp_path):
    # Each market draws from its own stream spawned from the run's generator, so a scenario that adds
    # an export market keeps common random numbers with its parent in the markets they share.
    child = tmp_path / "child.yaml"
    child.write_text(
        f"name: child\nextends: {TINY}\n"
        "markets:\n  - {name: EU, buyers_per_month: 3000, reference_month: 2024-01}\n"
    )
    base = MarketModel(scenario=str(TINY), seed=11)
    more = MarketModel(scenario=str(child), seed=11)
    base.run()
    more.run()
    a = np.stack(base.datacollector.model_vars["units"])[:, :, 0]
    b = np.stack(more.datacollector.model_vars["units"])[:, :, 0]
    assert more.n_markets == 2 and np.stack(more.datacollector.model_vars["arrivals"]).sum() > np.stack(
        base.datacollector.model_vars["arrivals"]).sum()
    np.testing.assert_array_equal(a, b)


def test_a_store_network_can_grow_over_months():
    # A's 300 stores go to 500 in 2024-07 at once in tiny.yaml; spread over 4 months they rise
    # 50 a month, 350 in July to 500 in October, and the reach of A's brand rises with them.
    at_once = MarketModel(load_scenario(TINY), seed=1)
    spread = MarketModel(load_scenario(TINY, {"events[1].over_months": 4}), seed=1)
    counts: dict[str, list[float]] = {"at_once": [], "spread": []}
    for name, m in (("at_once", at_once), ("spread", spread)):
        a = m.brand_names.index("A")
        for _ in range(12):
            m.step()
            counts[name].append(float(m.effective_stores[a, 0]))
    assert counts["at_once"][5:7] == [300.0, 500.0]
    assert counts["spread"][5:11] == [300.0, 350.0, 400.0, 450.0, 500.0, 500.0]
    with pytest.raises(InputError, match=r"events\[0\].*over_months is for 'stores' events"):
        load_scenario(TINY, {"events[0].over_months": 2})


def test_check_passes_on_a_sound_model_and_names_the_month_of_a_broken_one(monkeypatch):
    from sim.model.market_model import InvariantError

    MarketModel(scenario=str(TINY), seed=3, check=True).run()  # no violation on the real model

    real = MarketModel._deliver

    def leaky(self, t):  # deliver one car more than exists
        real(self, t)
        self.month_units[0, 0] += 1

    monkeypatch.setattr(MarketModel, "_deliver", leaky)
    with pytest.raises(InvariantError, match=r"^2024-01: A1: "):
        MarketModel(scenario=str(TINY), seed=3, check=True).run()
    MarketModel(scenario=str(TINY), seed=3).run()  # without --check nothing is asserted


def test_sim_run_check_records_a_violation_as_a_failed_run(tmp_path, monkeypatch):
    from sim.cli import main

    real = MarketModel._deliver

    def leaky(self, t):
        real(self, t)
        self.month_units[0, 0] += 1

    monkeypatch.setattr(MarketModel, "_deliver", leaky)
    out = tmp_path / "out"
    assert main(["run", str(TINY), "--check", "--workers", "1", "--quiet", "--out", str(out)]) == 1
    runs = load_results(out).runs
    assert runs["status"].tolist() == ["failed"] and "InvariantError" in runs["error"].iloc[0]
    assert load_results(out).manifest["check"] is True


def test_brand_appeal_trend_bends_the_past_and_stops_at_its_month():
    # Brand A rose 0.6 utils a year up to 2024-09: in 2024-01 (8 months before) its appeal is
    # 0.6 * 8/12 = 0.4 below the scenario's value, from 2024-09 on it is the value itself.
    plain = MarketModel(load_scenario(TINY), seed=1)
    over = {"brands.A.appeal_trend": 0.6, "brands.A.appeal_trend_until": "2024-09"}
    trend = MarketModel(load_scenario(TINY, over), seed=1)
    a, b = plain.brand_names.index("A"), plain.brand_names.index("B")
    shift = trend.calendar.brand_appeal[:, a] - plain.calendar.brand_appeal[:, a]
    np.testing.assert_allclose(shift[:8], -0.6 * np.arange(8, 0, -1) / 12)
    np.testing.assert_array_equal(shift[8:], 0.0)
    np.testing.assert_array_equal(trend.calendar.brand_appeal[:, b], plain.calendar.brand_appeal[:, b])
    # and it reaches the buyers: A is ordered less in the first months, when it was less appealing
    early = {}
    for name, sc in (("plain", load_scenario(TINY)), ("trend", load_scenario(TINY, over))):
        out = execute(make_specs(sc, 1, seed=5)[0])
        assert out.run["status"] == "ok", out.run["error"]
        s = out.sales
        early[name] = s[(s["brand"] == "A") & (s["month"] <= "2024-04")]["orders"].sum()
    assert early["trend"] < 0.9 * early["plain"], early


def test_a_brand_trend_needs_the_month_it_ends():
    with pytest.raises(InputError, match=r"brands\[0\].*appeal_trend needs appeal_trend_until"):
        load_scenario(TINY, {"brands.A.appeal_trend": 0.5})
