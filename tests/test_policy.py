"""Tax, exemption, luxury-tax, tariff and subsidy arithmetic of sim/policy.py, against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import MarketModel
from sim.model import policy
from sim.model.calendar import compile_calendar
from sim.scenario.load import load_scenario

TINY = Path(__file__).resolve().parent / "data" / "tiny.yaml"

VAT = 0.13
RATE = 0.10
LUXURY_THRESHOLD = 900_000.0  # RMB excluding VAT
LUXURY_RATE = 0.10

# The exemption rules of the policy calendar.
RULE_2025 = {"share": 1.0, "cap": 30_000.0, "min_range": 0.0}  # full exemption, cap 30k
RULE_2026 = {"share": 0.5, "cap": 15_000.0, "min_range": 100.0}  # halved, cap 15k, PHEV/EREV need 100 km


def price_one(
    list_price: float,
    powertrain: str,
    rule: dict[str, float],
    *,
    discount: float = 0.0,
    electric_range_km: float = 0.0,
    subsidy: float = 0.0,
) -> tuple[float, float]:
    """Transaction price and what the buyer pays, for one car."""
    eligible = policy.nev_eligible(np.array([powertrain]), np.array([electric_range_km]), rule["min_range"])
    trans, paid = policy.buyer_price(
        np.array([list_price]),
        np.array([discount]),
        vat=VAT,
        tax_rate=RATE,
        exemption_share=rule["share"],
        exemption_cap=rule["cap"],
        eligible=eligible,
        luxury_threshold=LUXURY_THRESHOLD,
        luxury_rate=LUXURY_RATE,
        subsidy=subsidy,
    )
    return float(trans[0]), float(paid[0])


def test_bev_2025_fully_exempt():
    # List 300,000, discount 20%: transaction price 300,000 * 0.8 = 240,000 (incl. VAT).
    # Purchase tax = 0.10 * 240,000 / 1.13 = 21,238.94; exempt min(1.0 * 21,238.94, 30,000) = 21,238.94.
    # Paid = 240,000 + 21,238.94 - 21,238.94 = 240,000.
    tax = policy.purchase_tax(np.array([240_000.0]), RATE, VAT)[0]
    assert tax == pytest.approx(21_238.938, abs=0.01)
    trans, paid = price_one(300_000, "BEV", RULE_2025, discount=0.20)
    assert trans == pytest.approx(240_000.0)
    assert paid == pytest.approx(240_000.0)


def test_erev_below_100_km_pays_full_tax_in_2026():
    # EREV, 80 km electric range, list 250,000, no discount; 2026 rule needs 100 km, so not eligible.
    # Tax = 0.10 * 250,000 / 1.13 = 22,123.89; paid = 250,000 + 22,123.89 = 272,123.89.
    assert not policy.nev_eligible(np.array(["EREV"]), np.array([80.0]), 100.0)[0]
    _, paid = price_one(250_000, "EREV", RULE_2026, electric_range_km=80)
    assert paid == pytest.approx(272_123.894, abs=0.01)
    # The same car with 120 km qualifies: exempt min(0.5 * 22,123.89, 15,000) = 11,061.95.
    _, paid_long_range = price_one(250_000, "EREV", RULE_2026, electric_range_km=120)
    assert paid_long_range == pytest.approx(250_000 + 22_123.894 - 11_061.947, abs=0.01)


def test_bev_2026_exemption_is_capped():
    # BEV list 500,000: tax = 0.10 * 500,000 / 1.13 = 44,247.79; half = 22,123.89 > cap 15,000,
    # so exempt 15,000; paid = 500,000 + 44,247.79 - 15,000 = 529,247.79.
    exempt = policy.nev_exemption(np.array([44_247.79]), np.array([True]), 0.5, 15_000.0)[0]
    assert exempt == 15_000.0
    _, paid = price_one(500_000, "BEV", RULE_2026)
    assert paid == pytest.approx(529_247.788, abs=0.01)


def test_bev_2026_small_car_gets_half_the_tax():
    # BEV list 200,000: tax = 20,000 / 1.13 = 17,699.12; half = 8,849.56 < 15,000 -> exempt 8,849.56.
    # Paid = 200,000 + 8,849.56 = 208,849.56.
    _, paid = price_one(200_000, "BEV", RULE_2026)
    assert paid == pytest.approx(208_849.558, abs=0.01)


def test_ice_luxury_tax_above_threshold():
    # ICE list 1,200,000: price excl. VAT = 1,200,000 / 1.13 = 1,061,946.90 >= 900,000, so
    # luxury tax = 10% * 1,061,946.90 = 106,194.69; purchase tax = 10% * 1,061,946.90 = 106,194.69.
    # Paid = 1,200,000 + 106,194.69 + 106,194.69 = 1,412,389.38.
    lux = policy.luxury_tax(np.array([1_200_000.0]), VAT, LUXURY_THRESHOLD, LUXURY_RATE)[0]
    assert lux == pytest.approx(106_194.690, abs=0.01)
    _, paid = price_one(1_200_000, "ICE", RULE_2025)
    assert paid == pytest.approx(1_412_389.381, abs=0.01)


def test_luxury_tax_threshold_is_on_the_price_excluding_vat():
    # 1,000,000 incl. VAT is 884,955.75 excl. VAT: below 900,000, no luxury tax.
    # 1,017,000 incl. VAT is exactly 900,000 excl. VAT: at the threshold, taxed (90,000).
    lux = policy.luxury_tax(np.array([1_000_000.0, 1_017_000.0]), VAT, LUXURY_THRESHOLD, LUXURY_RATE)
    assert lux[0] == 0.0
    assert lux[1] == pytest.approx(90_000.0)


def test_landed_price_with_tariff():
    # 400,000 with China's 15% import duty: 400,000 * 1.15 = 460,000; with a market price level 1.1: 506,000.
    assert policy.landed_list_price(np.array([400_000.0]), np.array([0.15]))[0] == pytest.approx(460_000.0)
    assert policy.landed_list_price(np.array([400_000.0]), np.array([0.15]), 1.1)[0] == pytest.approx(506_000.0)
    # EU duty stacked on the 10% base duty: 300,000 * (1 + 0.10 + 0.173) = 381,900.
    assert policy.landed_list_price(np.array([300_000.0]), np.array([0.10 + 0.173]))[0] == pytest.approx(381_900.0)


def test_subsidy_subtracts_from_what_is_paid():
    # A 20,000 trade-in subsidy for the 2025 BEV above: 240,000 - 20,000 = 220,000; the transaction price is unchanged.
    trans, paid = price_one(300_000, "BEV", RULE_2025, discount=0.20, subsidy=20_000)
    assert trans == pytest.approx(240_000.0)
    assert paid == pytest.approx(220_000.0)


def test_nev_eligibility_rules():
    pt = np.array(["BEV", "PHEV", "PHEV", "EREV", "ICE", "ICE"])
    rng = np.array([0.0, 99.0, 100.0, 250.0, 0.0, 500.0])
    assert policy.nev_eligible(pt, rng, 100.0).tolist() == [True, False, True, True, False, False]
    assert policy.nev_eligible(pt, rng, 0.0).tolist() == [True, True, True, True, False, False]


@given(
    price=st.floats(50_000, 5_000_000),
    discount=st.floats(0, 0.5),
    share=st.floats(0, 1),
    cap=st.floats(0, 50_000),
    subsidy=st.floats(0, 30_000),
)
def test_buyer_price_identity(price, discount, share, cap, subsidy):
    # paid = pre_tax + tax - exempt + luxury - subsidy (floored at 0), exempt <= min(tax, cap).
    pre_tax = price * (1 - discount)
    tax = RATE * pre_tax / (1 + VAT)
    lux = LUXURY_RATE * pre_tax / (1 + VAT) if pre_tax / (1 + VAT) >= LUXURY_THRESHOLD else 0.0
    exempt = min(tax * share, cap)
    for pt, eligible_exempt in (("BEV", exempt), ("ICE", 0.0)):
        trans, paid = price_one(
            price, pt, {"share": share, "cap": cap, "min_range": 0.0}, discount=discount, subsidy=subsidy
        )
        assert trans == pytest.approx(pre_tax)
        assert paid == pytest.approx(max(pre_tax + tax - eligible_exempt + lux - subsidy, 0.0), rel=1e-9, abs=1e-6)
    # An exemption never makes an NEV dearer than the same car without one.
    assert price_one(price, "BEV", {"share": share, "cap": cap, "min_range": 0.0}, discount=discount)[1] <= (
        price_one(price, "ICE", {"share": share, "cap": cap, "min_range": 0.0}, discount=discount)[1] + 1e-6
    )


# ------------------------------------------------------------ inside the model


def test_model_prices_tiny_by_hand():
    # tiny.yaml, 2024-01: full exemption (share 1, cap 30,000); brand A discount 5%, brand B 20%.
    # A1 EREV 200 km, 250,000: pre-tax 237,500; tax 23,750 / 1.13 = 21,017.70, fully exempt -> 237,500.
    # A2 BEV, 350,000: pre-tax 332,500; tax 29,424.78 < 30,000, fully exempt -> 332,500.
    # B1 ICE, 400,000: pre-tax 320,000; tax 32,000 / 1.13 = 28,318.58 -> 348,318.58.
    model = MarketModel(scenario=TINY, seed=1)
    model.step()
    names = model.product_names
    paid = dict(zip(names, model.month_paid[:, 0], strict=True))
    trans = dict(zip(names, model.month_transaction_price[:, 0], strict=True))
    assert trans["A1"] == pytest.approx(237_500.0)
    assert paid["A1"] == pytest.approx(237_500.0)
    assert paid["A2"] == pytest.approx(332_500.0)
    assert paid["B1"] == pytest.approx(348_318.584, abs=0.01)


def test_model_tariff_applies_to_imports_only():
    # A 15% duty on cars made outside CN: B1 (made in DE) lists at 400,000 * 1.15 = 460,000, A1 (made in CN) at 250,000.
    tariff = [{"name": "CN import duty", "market": "CN", "rate": 0.15}]
    model = MarketModel(scenario=TINY, seed=1, **{"policies.tariffs": tariff, "products.B1.made_in": "DE"})
    model.step()
    listed = dict(zip(model.product_names, model.month_list_price[:, 0], strict=True))
    assert listed["B1"] == pytest.approx(460_000.0)
    assert listed["A1"] == pytest.approx(250_000.0)
    # Paid: 460,000 * 0.8 = 368,000 plus tax 36,800 / 1.13 = 32,566.37 -> 400,566.37.
    assert model.month_paid[model.product_names.index("B1"), 0] == pytest.approx(400_566.372, abs=0.01)


# ------------------------------------------------------------ the policy calendar

# Month indices of 2024-01 .. 2024-06.
MONTHS = np.arange(2024 * 12, 2024 * 12 + 6)


def policies(**lists: list) -> object:
    """tiny.yaml's ``policies`` with these lists (``tariffs``, ``nev_exemptions``, ``subsidies``), validated."""
    return load_scenario(TINY, {f"policies.{k}": v for k, v in lists.items()}).policies


def test_tariff_schedule_applies_in_its_market_months_and_origins():
    # Products: 0 made in CN, 1 and 2 made in DE (2 is a BEV of brand B); markets CN and EU.
    made_in, powertrain, brand = np.array(["CN", "DE", "DE"]), np.array(["ICE", "ICE", "BEV"]), np.array(["A", "A", "B"])
    tariffs = [
        {"name": "CN duty", "market": "CN", "rate": 0.15},
        {"name": "EU on CN cars", "market": "CN", "rate": 0.2, "made_in": ["CN"], "powertrains": ["BEV", "ICE"],
         "start": "2024-03", "end": "2024-04"},
        {"name": "CN extra on B", "market": "CN", "rate": 0.05, "brands": ["B"], "start": "2024-05"},
    ]  # fmt: skip
    tariffs = policies(tariffs=tariffs).tariffs  # type: ignore[attr-defined]
    tariffs[1] = tariffs[1].model_copy(update={"market": "EU"})  # a market tiny.yaml does not have
    rate = policy.tariff_schedule(tariffs, MONTHS, ["CN", "EU"], made_in, powertrain, brand)
    assert rate.shape == (6, 3, 2)
    assert rate[:, 0, 0].tolist() == [0.0] * 6  # made in CN, sold in CN
    assert rate[:, 1, 0].tolist() == [0.15] * 6
    assert rate[:, 2, 0].tolist() == pytest.approx([0.15] * 4 + [0.20] * 2)  # duties add up
    assert rate[:, 0, 1].tolist() == [0.0, 0.0, 0.2, 0.2, 0.0, 0.0]
    assert rate[:, 1:, 1].max() == 0.0


def test_exemption_and_subsidy_schedules():
    rules = policies(nev_exemptions=[
        {"start": "2024-01", "end": "2024-03", "share": 1.0, "cap": 30_000, "markets": ["CN", "XX"]},
        {"start": "2024-03", "end": "2024-06", "share": 0.5, "cap": 15_000, "min_electric_range_km": 100},
    ]).nev_exemptions  # type: ignore[attr-defined]  # fmt: skip
    share, cap, min_range = policy.exemption_schedule(rules, MONTHS, ["CN", "EU"])
    assert share[:, 0].tolist() == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5]  # the later rule replaces the earlier in March
    assert cap[:, 0].tolist() == [30_000] * 2 + [15_000] * 4 and min_range[:, 0].tolist() == [0] * 2 + [100] * 4
    assert share[:, 1].max() == 0.0  # EU is not named; XX is not in the scenario
    subsidies = policies(subsidies=[
        {"name": "trade-in", "start": "2024-02", "end": "2024-03", "amount_nev": 20_000, "amount_ice": 15_000, "uptake": 0.5},
        {"name": "elsewhere", "market": "CN", "start": "2024-01", "end": "2024-06", "amount_nev": 1},
    ]).subsidies  # type: ignore[attr-defined]  # fmt: skip
    subsidies[1] = subsidies[1].model_copy(update={"market": "XX"})  # a market not in the scenario
    amount = policy.subsidy_schedule(subsidies, MONTHS, ["CN", "EU"], np.array(["BEV", "ICE", "PHEV"]))
    assert amount[:, :, 0].tolist() == [[0, 0, 0], [10_000, 7_500, 10_000], [10_000, 7_500, 10_000]] + [[0, 0, 0]] * 3
    assert amount[:, :, 1].max() == 0.0


def test_landed_prices_of_the_calendar_are_the_buyer_price_of_each_market():
    # tiny.yaml with a second market, EU (price level 1.2, VAT 20%, no purchase tax) and a 10% EU duty.
    cn = load_scenario(TINY).model_dump(mode="json")["markets"][0]
    over = {
        "markets": [cn, {**cn, "name": "EU", "price_level": 1.2, "vat": 0.2}],
        "policies.tariffs": [{"name": "EU duty", "market": "EU", "rate": 0.1}],
    }
    cal = compile_calendar(load_scenario(TINY, over))
    discount = np.array([0.05, 0.05, 0.2])
    lst, trans, paid = policy.landed_prices(cal.policy, 0, cal.price[0], discount, cal.powertrain, cal.electric_range)
    assert lst[:, 0].tolist() == cal.price[0].tolist()
    np.testing.assert_allclose(lst[:, 1], cal.price[0] * 1.1 * 1.2)
    np.testing.assert_allclose(paid[:, 1], trans[:, 1])  # no purchase tax, no subsidy in the EU
    # CN: as test_model_prices_tiny_by_hand below.
    np.testing.assert_allclose(paid[:, 0], [237_500.0, 332_500.0, 348_318.584], atol=0.01)
    assert cal.policy.purchase_tax.tolist() == [0.10, 0.0] and cal.policy.vat.tolist() == [0.13, 0.2]
