"""Parameter paths: one grammar for ``--set``, sweeps, calibration files and ensemble members
(:mod:`sim.scenario.paths`), with one canonical name per value."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.scenario.load import load_scenario
from sim.scenario.paths import (
    PathError,
    Selector,
    apply_override,
    canonical_path,
    parse_path,
    parse_set_option,
    resolve_selectors,
    value_at,
)
from sim.scenario.yamlio import InputError

TINY = Path(__file__).parent / "data" / "tiny.yaml"


@pytest.fixture(scope="module")
def data() -> dict:
    """tiny.yaml's resolved scenario as plain data (what paths address)."""
    return load_scenario(TINY).model_dump(mode="json")


def test_parse_path_reads_names_indices_and_selectors():
    assert parse_path("products.AITO M6.price") == ("products", "AITO M6", "price")
    assert parse_path("events[2].month") == ("events", 2, "month")
    assert parse_path("a[0][-1]") == ("a", 0, -1)
    assert parse_path("stores[brand=A, market=CN].count") == (
        "stores", Selector((("brand", "A"), ("market", "CN"))), "count"
    )
    # Dots inside brackets do not split the path.
    assert parse_path("events[month=2027.09].count")[1] == Selector((("month", "2027.09"),))


@pytest.mark.parametrize(
    "path, says",
    [("", "empty path"), ("products[x].price", "is not a list index"), ("events[=1].count", "expected key=value")],
)
def test_malformed_paths_are_refused(path: str, says: str):
    with pytest.raises(PathError, match=says) as info:
        parse_path(path)
    # Callers catch it as bad input (the command line exits 2) or as a ValueError.
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)


def test_canonical_path_names_aliases_alike(data):
    aliases = ["products.A1.price", "products[0].price", "products[-3].price", "products[name=A1].price"]
    assert {canonical_path(data, p) for p in aliases} == {"products[0].price"}
    assert canonical_path(data, "events[type=stores,brand=A].count") == "events[1].count"
    # A key the data does not hold yet (a write creates it) has a canonical name too.
    assert canonical_path(data, "markets.CN.growth.2025") == "markets[0].growth.2025"


def test_value_at_needs_the_value_and_suggests_a_misspelt_key(data):
    assert value_at(data, "buyers.price_sensitivity") == 1.0
    assert value_at(data, "stores[brand=B].count") == 500
    with pytest.raises(PathError, match=r"no field 'price_sensitivty' at buyers.price_sensitivty \(did you mean"):
        value_at(data, "buyers.price_sensitivty")
    with pytest.raises(PathError, match="no item named 'Z9' at products.Z9"):
        value_at(data, "products.Z9.price")


def test_the_same_path_works_in_set_and_reads_back(data):
    # --set / load_scenario overrides take selectors, as sweeps and calibration files do.
    sc = load_scenario(TINY, {"events[type=stores,brand=A].count": 600, "products[name=B1].price": 390000})
    assert sc.events[1].count == 600
    assert {p.name: p.price for p in sc.products}["B1"] == 390000
    assert value_at(sc.model_dump(mode="json"), "events[type=stores,brand=A].count") == 600


def test_apply_override_creates_mappings_but_not_list_items():
    data: dict = {"buyers": None, "products": [{"name": "A1"}]}
    apply_override(data, "buyers.tastes.smart.mean", 0.5)
    assert data["buyers"] == {"tastes": {"smart": {"mean": 0.5}}}
    with pytest.raises(PathError, match="no item named 'A2' at products.A2"):
        apply_override(data, "products.A2.price", 1)
    with pytest.raises(PathError, match=r"index 1 out of range \(1 items\) at products.1"):
        apply_override(data, "products[1].price", 1)


def test_set_option_parsing():
    assert parse_set_option("products.A1.price=260000") == ("products.A1.price", 260000)
    assert parse_set_option("buyers.price_sensitivity = 1.5") == ("buyers.price_sensitivity", 1.5)
    assert parse_set_option("events[0].month=2024-08") == ("events[0].month", "2024-08")
    assert parse_set_option("products.AITO M6.name=AITO M6X") == ("products.AITO M6.name", "AITO M6X")
    with pytest.raises(InputError, match="expected path=value"):
        parse_set_option("products.A1.price")
    data = {"products": [{"name": "AITO M6", "price": 1}]}
    apply_override(data, "products.AITO M6.price", 250000)
    assert data["products"][0]["price"] == 250000


def test_selectors_address_unnamed_list_items(data):
    assert resolve_selectors(data, "events[type=stores,brand=A].count") == "events[1].count"
    assert resolve_selectors(data, "stores[brand=B].count") == "stores[1].count"
    assert resolve_selectors(data, "products.A1.price") == "products.A1.price"
    with pytest.raises(ValueError, match="matches 2 items"):
        resolve_selectors(data, "stores[market=CN].count")
