"""Policies of a scenario: the purchase tax and its NEV exemptions, the luxury tax, import
tariffs and trade-in subsidies, each by market and period.

The policies that are lists of named items (:data:`NAMED_POLICIES`) say themselves what they name
(:meth:`Tariff.references`): the scenario checks those names (:class:`~sim.scenario.schema.Scenario`)
and ``extends`` merges the lists by ``name`` (:mod:`sim.scenario.compose`).
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from sim.scenario.fields import Frozen, ItemName, Month, NonNeg, PosFloat, Powertrain, Share
from sim.scenario.yamlio import Path_

#: A name an item of a scenario gives: where in the item (a field path), what kind ("market" or "brand"), the name.
Reference = tuple[Path_, str, str]


class NevExemption(Frozen):
    start: Month
    end: Month
    share: Share = Field(description="Share of the purchase tax exempted (1 = full, 0.5 = halved).")
    cap: NonNeg = Field(description="Most tax exempted per vehicle, RMB.")
    min_electric_range_km: NonNeg = Field(0.0, description="PHEV/EREV need this electric range to qualify.")
    markets: list[str] = Field(default_factory=lambda: ["CN"])
    source: str = ""


class Tariff(Frozen):
    """An import duty on products made outside ``market``."""

    name: ItemName
    market: str
    rate: NonNeg = Field(description="Ad valorem duty on the price (0.15 = 15%).")
    made_in: list[str] | None = Field(None, description="Origins it applies to (default: any but the market).")
    powertrains: list[Powertrain] | None = None
    brands: list[str] | None = None
    start: Month | None = None
    end: Month | None = None
    source: str = ""

    def references(self) -> Iterator[Reference]:
        """The market and the brands the tariff names."""
        yield ("market",), "market", self.market
        for k, b in enumerate(self.brands or []):
            yield ("brands", k), "brand", b


class Subsidy(Frozen):
    """Expected trade-in subsidy: uptake * amount is taken off the price."""

    name: ItemName
    market: str = "CN"
    start: Month
    end: Month
    amount_nev: NonNeg = 0.0
    amount_ice: NonNeg = 0.0
    uptake: Share = Field(0.3, description="Share of buyers who trade in and get it.")
    source: str = ""

    def references(self) -> Iterator[Reference]:
        """The market the subsidy is paid in."""
        yield ("market",), "market", self.market


class Policies(Frozen):
    purchase_tax_rate: Share = Field(0.10, description="China purchase tax on the price excluding VAT.")
    purchase_tax_markets: list[str] = Field(default_factory=lambda: ["CN"])
    nev_exemptions: list[NevExemption] = Field(default_factory=list)
    luxury_tax_threshold: PosFloat = Field(900_000, description="RMB excluding VAT.")
    luxury_tax_rate: Share = 0.10
    tariffs: list[Tariff] = Field(default_factory=list)
    subsidies: list[Subsidy] = Field(default_factory=list)


#: The fields of :class:`Policies` that are lists of named items, each item with its ``references``.
NAMED_POLICIES = ("tariffs", "subsidies")
