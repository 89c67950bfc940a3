"""Pattern checks and elasticities (sim validate-model, sim/validation.py).

The checks are tested on hand-made sales tables whose answer is known (a pattern present
passes, the same table with the pattern removed fails), the command on a small run.
"""

from __future__ import annotations

import json

import pandas as pd
from conftest import CALIB_TINY, ROOT, TINY

from sim.analysis.elasticities import elasticity_checks
from sim.analysis.patterns import (
    check_aito_record_december,
    check_discounts,
    check_legacy_decline,
    check_m8_segment_lead,
    check_m9_segment_share,
    check_refresh_dip,
    check_seasonality,
    check_tax_pull_forward,
)
from sim.cli import main
from sim.scenario.load import load_scenario
from sim.scenario.months import format_month, parse_month


def sales_table(rows: list[dict]) -> pd.DataFrame:
    """A sales table of one run with the columns the checks read."""
    base = {"run_id": 0, "market": "CN", "powertrain": "BEV", "segment": "300k+", "orders": 0, "backlog": 0,
            "list_price": 300000.0, "transaction_price": 300000.0, "wait_months": 0.0}
    df = pd.DataFrame([{**base, **r} for r in rows])
    if "orders" not in rows[0]:
        df["orders"] = df["units"]
    return df


def months(start: str, n: int) -> list[str]:
    return [format_month(parse_month(start) + k) for k in range(n)]


def test_seasonality_passes_with_a_new_year_trough_and_a_december_peak():
    sc = load_scenario(TINY)  # Lunar New Year 2024-02-10: the trough month is February
    shape = [1.0, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.3]
    good = sales_table([{"month": m, "brand": "A", "model": "A1", "units": 1000 * f} for m, f in zip(months("2024-01", 12), shape, strict=True)])
    assert check_seasonality(good, sc).passed is True
    no_peak = good.assign(units=good["units"].where(good["month"] != "2024-12", 900))
    no_trough = good.assign(units=good["units"].where(good["month"] != "2024-02", 1200))
    assert check_seasonality(no_peak, sc).passed is False
    assert check_seasonality(no_trough, sc).passed is False


def test_tax_pull_forward_against_a_counterfactual_and_against_the_year_before():
    sc = load_scenario(TINY)
    ms = months("2024-10", 16)
    flat = sales_table([{"month": m, "brand": "A", "model": "A1", "units": 1000, "orders": 1000} for m in ms])
    shaped = flat.assign(orders=flat["month"].map({"2025-12": 1300, "2026-01": 700}).fillna(1000))
    assert check_tax_pull_forward(shaped, sc, flat).passed is True
    assert check_tax_pull_forward(flat, sc, shaped).passed is False
    assert check_tax_pull_forward(shaped, sc).passed is True  # Dec/Nov 1.3 against 1.0 a year before
    assert check_tax_pull_forward(flat, sc).passed is False
    # ICE orders do not count: the change is to the NEV exemption.
    ice = shaped.assign(powertrain="ICE")
    assert check_tax_pull_forward(ice, sc).passed is None


def test_refresh_dip_reads_the_announced_window():
    sc = load_scenario(TINY, {"events[0]": {"month": "2024-08", "type": "refresh", "product": "A1", "announce_months": 2}})
    ms = months("2024-01", 12)
    dip = sales_table([{"month": m, "brand": "A", "model": "A1", "units": 100, "orders": 500 if m in ("2024-06", "2024-07") else 1000} for m in ms])
    assert check_refresh_dip(dip, sc).passed is True
    assert check_refresh_dip(dip.assign(orders=1000), sc).passed is False


def test_legacy_decline_and_discount_dispersion():
    sc = load_scenario(TINY)  # A: domestic, build to order; B: foreign with dealer stock (legacy)
    rows = []
    for m in months("2024-01", 24):
        year = int(m[:4])
        rows.append({"month": m, "brand": "A", "model": "A1", "units": 1000 if year == 2024 else 1500,
                     "transaction_price": 0.95 * 300000})
        rows.append({"month": m, "brand": "B", "model": "B1", "units": 2000 if year == 2024 else 1600,
                     "transaction_price": 0.75 * 300000})
    df = sales_table(rows)
    legacy = check_legacy_decline(df, sc)
    assert legacy.passed is True and "legacy -20.0%/yr, domestic +50.0%/yr" in legacy.figure
    swapped = df.assign(brand=df["brand"].map({"A": "B", "B": "A"}))
    assert check_legacy_decline(swapped, sc).passed is False
    disc = check_discounts(df, sc)
    assert disc.passed is True and "20.0 points" in disc.figure
    assert check_discounts(df.assign(transaction_price=0.9 * 300000), sc).passed is False


MARKET = ROOT / "scenarios" / "base" / "market.yaml"  # its segments: ... 400-500k, 500k+


def test_m9_share_of_the_top_segment_within_its_tolerance():
    sc = load_scenario(MARKET)
    rows = [{"month": "2026-01", "brand": "AITO", "model": "AITO M9", "segment": "500k+", "units": 6000, "powertrain": "EREV"},
            {"month": "2026-01", "brand": "AITO", "model": "AITO M9 EV", "segment": "500k+", "units": 1000},
            {"month": "2026-01", "brand": "AITO", "model": "AITO M9", "segment": "400-500k", "units": 9000, "powertrain": "EREV"},
            {"month": "2026-01", "brand": "Porsche", "model": "Porsche Cayenne", "segment": "500k+", "units": 3000,
             "powertrain": "ICE"}]
    good = sales_table(rows)
    check = check_m9_segment_share(good, sc)
    assert check.passed is True and check.figure.startswith("2026-01: 70% of the 500k+ segment")
    assert "70% of the M9 line's" not in " ".join(check.detail) and "44% of the M9 line's 16,000 units" in " ".join(check.detail)
    assert "100% of its NEV deliveries" in check.detail[0]
    # 85% passes, 86% does not (the band is +-15 points); a month not in the results cannot be judged.
    assert check_m9_segment_share(good.assign(units=good["units"].where(good["model"] != "Porsche Cayenne", 1236)), sc).passed is True
    assert check_m9_segment_share(good.assign(units=good["units"].where(good["model"] != "Porsche Cayenne", 1100)), sc).passed is False
    assert check_m9_segment_share(good.assign(units=good["units"].where(good["model"] != "Porsche Cayenne", 9000)), sc).passed is False
    assert check_m9_segment_share(good.assign(month="2025-12"), sc).passed is None


def test_m8_first_in_its_segment_in_each_of_the_six_months():
    sc = load_scenario(MARKET)
    rows = []
    for m in months("2025-07", 6):
        rows += [{"month": m, "brand": "AITO", "model": "AITO M8", "segment": "400-500k", "units": 5000},
                 {"month": m, "brand": "AITO", "model": "AITO M8 EV", "segment": "400-500k", "units": 1000},
                 {"month": m, "brand": "AITO", "model": "AITO M9", "segment": "400-500k", "units": 5500},
                 {"month": m, "brand": "NIO", "model": "NIO ES8", "segment": "400-500k", "units": 3000}]
    good = sales_table(rows)
    check = check_m8_segment_lead(good, sc)
    assert check.passed is True and check.figure.startswith("first in 6 of the 6 months 2025-07..2025-12")  # the line: M8 + M8 EV
    es8_in_december = (good["model"] == "NIO ES8") & (good["month"] == "2025-12")
    lost = check_m8_segment_lead(good.assign(units=good["units"].where(~es8_in_december, 7000)), sc)
    assert lost.passed is False and "first in 5 of the 6" in lost.figure and "2025-12: the M8 line 6,000 (rank 2); first NIO ES8" in lost.detail[5]
    assert check_m8_segment_lead(good[good["month"] != "2025-09"], sc).passed is None


def test_a_record_aito_december_above_the_reported_figure():
    sc = load_scenario(MARKET)
    series = dict(zip(months("2025-01", 12), [30000, 25000, 35000, 40000, 42000, 45000, 44000, 46000, 50000, 52000, 55000, 60000],
                      strict=True))
    good = sales_table([{"month": m, "brand": "AITO", "model": "AITO M9", "units": u} for m, u in series.items()])
    check = check_aito_record_december(good, sc)
    assert check.passed is True and check.figure == "2025-12: 60,000 (reported >57,000); the highest month before it 2025-11 55,000"
    low = good.assign(units=good["units"].where(good["month"] != "2025-12", 56000))
    assert check_aito_record_december(low, sc).passed is False
    not_a_record = good.assign(units=good["units"].where(good["month"] != "2025-11", 61000))
    assert check_aito_record_december(not_a_record, sc).passed is False
    assert check_aito_record_december(good[good["month"] != "2025-12"], sc).passed is None


def test_elasticity_checks_against_the_published_band():
    good = pd.DataFrame([
        {"product": "P1", "price": 250000, "orders_up": 900, "orders_down": 1100, "elasticity": -4.0},
        {"product": "P2", "price": 350000, "orders_up": 900, "orders_down": 1100, "elasticity": -3.5},
        {"product": "P3", "price": 450000, "orders_up": 900, "orders_down": 1100, "elasticity": -3.2},
        {"product": "market", "price": None, "orders_up": 2700, "orders_down": 3300, "elasticity": -0.6},
    ])
    assert [c.passed for c in elasticity_checks(good)] == [True, True, True]
    bad = good.assign(elasticity=[-1.0, -1.5, -2.0, -1.4])
    assert [c.passed for c in elasticity_checks(bad)] == [False, False, False]


def test_validate_model_command_writes_the_report_with_elasticities(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", str(CALIB_TINY), "-r", "2", "--executor", "serial", "--out", str(run), "-q"]) == 0
    capsys.readouterr()
    assert main(["validate-model", str(run), "--elasticities", "--products", "0", "-r", "1", "--executor", "serial",
                 "-q", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert len(rep["patterns"]) == 10 and {p["passed"] for p in rep["patterns"]} <= {True, False, None}
    table = {r["product"]: r for r in rep["elasticities"]["table"]}
    assert set(table) == {"A1", "A2", "B1", "market"}
    # Dearer own price, fewer orders; a dearer market, fewer premium orders.
    assert all(r["elasticity"] < 0 for r in table.values())
    report = tmp_path / "report.md"
    assert main(["validate-model", str(run), "--out", str(report), "-q"]) == 0
    text = report.read_text()
    assert text.startswith("# Validation of `calib_tiny`") and "| New Year trough and December peak |" in text
    assert main(["validate-model", str(tmp_path / "nothing")]) == 2
    assert main(["validate-model", str(run), "--month", "2024-13"]) == 2
    assert main(["validate-model", str(run), "--elasticities", "--month", "2024-12"]) == 2  # no months after it
