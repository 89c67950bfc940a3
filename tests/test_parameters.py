"""Parameters as users think of them: relative overrides (``+=``, ``*=``), a launch that carries its deliveries
(``delivery_lag``), and months given as dates, with a located error otherwise."""

from __future__ import annotations

import datetime
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, run_sim, tiny_child, tiny_scenario

from sim.runs.sweep import load_sweep, point_scenario
from sim.scenario.load import load_scenario, override_scenario
from sim.scenario.paths import (
    PathError,
    canonical_path,
    parse_set_option,
    relative_value,
    resolve_selectors,
)
from sim.scenario.yamlio import InputError


def _product(sc, name: str):
    return next(p for p in sc.products if p.name == name)


# --------------------------------------------------------------------------- relative overrides


def test_set_options_keep_their_operator_and_selectors_keep_their_equals():
    assert parse_set_option("brands.AITO.appeal+=0.1") == ("brands.AITO.appeal+=", 0.1)
    assert parse_set_option("products.AITO M6.capacity.max*=1.2") == ("products.AITO M6.capacity.max*=", 1.2)
    assert parse_set_option("events[type=stores,brand=A].count=60") == ("events[type=stores,brand=A].count", 60)
    assert parse_set_option("buyers.price_sensitivity=1.2") == ("buyers.price_sensitivity", 1.2)


def test_relative_overrides_add_multiply_and_move_months():
    sc = tiny_scenario({"brands.A.appeal+=": 0.25, "products.A1.capacity.max*=": 1.5, "products.A2.launch+=": -1,
                        "events[type=stores,brand=A].count+=": 10})  # fmt: skip
    base = load_scenario(TINY)
    assert sc.brands[0].appeal == base.brands[0].appeal + 0.25
    assert _product(sc, "A1").capacity.max == _product(base, "A1").capacity.max * 1.5
    assert _product(sc, "A2").launch == "2024-02"
    assert sc.events[1].count == base.events[1].count + 10


def test_relative_overrides_apply_alike_to_files_and_loaded_scenarios():
    over = {"products.A1.price*=": 1.1, "products.A2.price+=": 1000, "buyers.price_sensitivity*=": 0.5}
    from_file = tiny_scenario(over)
    from_object = override_scenario(load_scenario(TINY), over)
    base = load_scenario(TINY)
    assert _product(from_file, "A1").price == _product(from_object, "A1").price == _product(base, "A1").price * 1.1
    assert _product(from_file, "A2").price == _product(base, "A2").price + 1000
    assert from_file.buyers.price_sensitivity == base.buyers.price_sensitivity * 0.5
    assert from_file.hash() == from_object.hash()


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("brands.A.appeal+=", "a lot", "'+=' needs a number, got 'a lot'"),
        ("products.A1.powertrain+=", 1, "'+=' applies to a number or a month; the value there is 'EREV'"),
        ("products.A1.launch*=", 2, "'*=' applies to a number; the value there is '2024-01'"),
        ("products.A1.launch+=", 0.5, "a month moves by whole months, got 0.5"),
        ("products.A1.pricee+=", 1, "no field 'pricee' at products.A1.pricee (did you mean 'price'?)"),
        ("products.A1.delivery_start+=", 1, "'+=' applies to a number or a month; the value there is None"),
    ],
)
def test_bad_relative_overrides_say_why(key: str, value: object, says: str):
    with pytest.raises(PathError) as err:
        tiny_scenario({key: value}) if "delivery_start" not in key else override_scenario(load_scenario(TINY), {key: value})
    assert says in str(err.value) and str(err.value).startswith(f"--set {key}")


def test_paths_with_an_operator():
    data = load_scenario(TINY).model_dump(mode="json")
    assert canonical_path(data, "products.A1.price*=") == "products[0].price*="
    assert resolve_selectors(data, "events[type=stores,brand=A].count+=") == "events[1].count+="
    assert relative_value(3, "+=", 2, "x") == 5 and relative_value(2.0, "*=", 3, "x") == 6.0


@pytest.mark.slow
def test_relative_overrides_on_the_command_line_are_recorded(tmp_path: Path):
    out = tmp_path / "r"
    done = run_sim("run", str(TINY), "--scale", "200", "--set", "products.A1.price*=1.1", "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["overrides"] == {"products.A1.price*=": 1.1}
    assert man["scenario"]["products"][0]["price"] == pytest.approx(250000 * 1.1)


def test_a_sweep_parameter_may_be_relative(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""
        base: {TINY}
        design: grid
        parameters:
          - {{path: brands.A.appeal+=, values: [-0.5, 0.0, 0.5]}}
    """))
    sw = load_sweep(path)
    base = load_scenario(TINY).brands[0].appeal
    got = [point_scenario(sw.scenario, {sw.parameters[0].target: pt["brands.A.appeal+="]}).brands[0].appeal for pt in sw.points]
    assert got == [base - 0.5, base, base + 0.5]
    assert list(sw.design_table().columns) == ["point", "param:brands.A.appeal+="]


# --------------------------------------------------------------------------- a launch carries its deliveries


def test_delivery_lag_sets_delivery_start_and_follows_the_launch(tmp_path: Path):
    child = tiny_child(tmp_path, "lagged", "products:\n  - {name: A2, delivery_lag: 2}\n")
    sc = load_scenario(child)
    assert (_product(sc, "A2").launch, _product(sc, "A2").delivery_start) == ("2024-03", "2024-05")
    later = load_scenario(child, {"products.A2.launch": "2024-06"})
    assert _product(later, "A2").delivery_start == "2024-08"
    # The same through a loaded scenario (sweeps, MarketModel(**overrides), the Python API), whose data holds
    # the delivery_start the lag gave.
    again = override_scenario(sc, {"products.A2.launch+=": 3})
    assert _product(again, "A2").delivery_start == "2024-08" and again.hash() == later.hash()
    # Writing delivery_start replaces the lag.
    fixed = override_scenario(sc, {"products.A2.launch": "2024-04", "products.A2.delivery_start": "2024-09"})
    assert (_product(fixed, "A2").delivery_start, _product(fixed, "A2").delivery_lag) == ("2024-09", None)


def test_a_file_that_writes_delivery_start_replaces_an_inherited_lag(tmp_path: Path):
    parent = tiny_child(tmp_path, "lagged", "products:\n  - {name: A2, delivery_lag: 2}\n")
    child = tmp_path / "dated.yaml"
    child.write_text(f"name: dated\nextends: {parent}\nproducts:\n  - {{name: A2, delivery_start: 2024-10}}\n")
    a2 = _product(load_scenario(child), "A2")
    assert (a2.delivery_start, a2.delivery_lag) == ("2024-10", None)


def test_deliveries_start_with_the_lag_in_a_run():
    from sim.runs.run import execute, make_specs

    sales = execute(make_specs(tiny_scenario({"products.A2.delivery_lag": 3}), 1, scale=200)[0]).sales
    units = sales[sales["model"] == "A2"].groupby("month")["units"].sum()
    assert units[units > 0].index.min() == "2024-06" and units.loc["2024-05"] == 0


def test_the_m6_launch_moves_its_deliveries():
    sc = load_scenario("m6_launch", {"products.AITO M6.launch": "2026-09"})
    m6 = _product(sc, "AITO M6")
    assert (m6.launch, m6.delivery_start, m6.delivery_lag) == ("2026-09", "2026-10", 1)


def test_a_launch_after_a_fixed_delivery_start_says_what_to_do():
    with pytest.raises(InputError, match="delivery_start 2024-05 is before launch 2024-07 .a delivery_lag instead"):
        tiny_scenario({"products.A2.launch": "2024-07"})
    with pytest.raises(InputError, match=r"products\[1\].delivery_lag: Input should be greater than or equal to 0"):
        tiny_scenario({"products.A2.delivery_lag": -1})


# --------------------------------------------------------------------------- months


@pytest.mark.parametrize(
    "value",
    [datetime.date(2024, 2, 15), datetime.datetime(2024, 2, 1, 12), pd.Timestamp("2024-02-29"), pd.Period("2024-02", "M"),
     np.datetime64("2024-02-10"), np.datetime64("2024-02"), "2024-02"],
)
def test_months_may_be_dates(value: object):
    sc = override_scenario(load_scenario(TINY), {"products.A2.launch": value, "products.A2.delivery_start": value})
    assert _product(sc, "A2").launch == "2024-02"


def test_a_date_on_the_command_line_names_its_month():
    key, value = parse_set_option("products.A2.launch=2024-02-20")
    assert isinstance(value, datetime.date)
    assert _product(tiny_scenario({key: value, "products.A2.delivery_start": "2024-03"}), "A2").launch == "2024-02"


@pytest.mark.parametrize("value", [202402, 2024.02, True, ["2024-02"]])
def test_a_month_that_is_not_text_or_a_date_is_a_located_error(value: object):
    with pytest.raises(InputError) as err:
        tiny_scenario({"products.A2.launch": value})
    text = str(err.value)
    assert text.startswith("<--set products.A2.launch>:1: products[1].launch:")
    assert "expected a month as YYYY-MM or a date" in text or "Input should be a valid string" in text


def test_a_day_written_in_a_file_is_still_an_error(tmp_path: Path):
    child = tiny_child(tmp_path, "day", "products:\n  - {name: A2, launch: 2024-02-05}\n")
    with pytest.raises(InputError, match=r"day.yaml:4: products\[1\].launch: expected a month as YYYY-MM, got '2024-02-05'"):
        load_scenario(child)
