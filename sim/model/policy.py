"""Tax, subsidy and tariff arithmetic: from a list price to what a buyer pays.

All prices are RMB per vehicle. Pure functions of arrays; no Mesa, no I/O.

For one product in one market and month (symbols as in docs/ODD.md):

    list      = price * (1 + tariff) * price_level          # landed list price
    pre_tax   = list * (1 - discount)                       # transaction price incl. VAT
    base      = pre_tax / (1 + vat)                         # price excluding VAT
    tax       = purchase_tax_rate * base                    # China purchase tax
    exempt    = min(tax * share, cap)   if NEV-eligible      # NEV exemption
    luxury    = luxury_rate * base      if base >= threshold # luxury (consumption) tax
    paid      = pre_tax + tax - exempt + luxury - subsidy

The policy calendar (:class:`PolicyCalendar`, built once by :func:`policy_calendar`) says which
of these are in force in each month and market, and who pays or gets them: the purchase tax
in the markets that levy it, NEV exemptions for the eligible powertrains, import tariffs on
products made elsewhere, trade-in subsidies for the share of buyers who take them up.
:func:`landed_prices` turns it, with the list prices and the brands' discounts, into each
month's prices per product and market.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from sim.scenario.months import parse_month

if TYPE_CHECKING:
    from sim.scenario.policies import NevExemption, Subsidy, Tariff
    from sim.scenario.schema import Scenario

F = NDArray[np.float64]
#: Month index far before or after any scenario: an open end of a dated rule.
_NEVER = 10**9


def landed_list_price(price: F, tariff: F, price_level: float = 1.0) -> F:
    """List price in a market: base price times (1 + ad valorem tariff) times the market's level."""
    return np.asarray(price, float) * (1.0 + np.asarray(tariff, float)) * price_level


def purchase_tax(pre_tax_price: F, rate: float, vat: float) -> F:
    """China's vehicle purchase tax: ``rate`` of the price excluding VAT."""
    return rate * np.asarray(pre_tax_price, float) / (1.0 + vat)


def nev_exemption(tax: F, eligible: NDArray[np.bool_], share: float, cap: float) -> F:
    """Tax exempted: ``share`` of the tax, at most ``cap`` RMB, for eligible vehicles only."""
    tax = np.asarray(tax, float)
    return np.where(eligible, np.minimum(tax * share, cap), 0.0)


def nev_eligible(
    powertrain: NDArray[np.str_] | list[str],
    electric_range_km: F,
    min_electric_range_km: float,
) -> NDArray[np.bool_]:
    """BEVs qualify; PHEV/EREV qualify when their electric range reaches the rule's minimum."""
    pt = np.asarray(powertrain)
    rng = np.asarray(electric_range_km, float)
    plug = (pt == "PHEV") | (pt == "EREV")
    return (pt == "BEV") | (plug & (rng >= min_electric_range_km))


def luxury_tax(pre_tax_price: F, vat: float, threshold: float, rate: float) -> F:
    """Luxury-car consumption tax: ``rate`` of the price excluding VAT, at or above ``threshold`` (excl. VAT)."""
    base = np.asarray(pre_tax_price, float) / (1.0 + vat)
    return np.where(base >= threshold, rate * base, 0.0)


def buyer_price(
    list_price: F,
    discount: F,
    *,
    vat: float,
    tax_rate: float,
    exemption_share: F | float,
    exemption_cap: F | float,
    eligible: NDArray[np.bool_],
    luxury_threshold: float,
    luxury_rate: float,
    subsidy: F | float = 0.0,
) -> tuple[F, F]:
    """Transaction price (after discount, incl. VAT) and the total a buyer pays.

    Returns:
        ``(transaction_price, paid)``, RMB per vehicle.
    """
    pre_tax = np.asarray(list_price, float) * (1.0 - np.asarray(discount, float))
    tax = purchase_tax(pre_tax, tax_rate, vat)
    exempt = np.where(
        eligible,
        np.minimum(tax * np.asarray(exemption_share, float), np.asarray(exemption_cap, float)),
        0.0,
    )
    lux = luxury_tax(pre_tax, vat, luxury_threshold, luxury_rate)
    paid = pre_tax + tax - exempt + lux - np.asarray(subsidy, float)
    return pre_tax, np.maximum(paid, 0.0)


# ------------------------------------------------------------------ the policy calendar


@dataclass(frozen=True)
class PolicyCalendar:
    """Taxes, exemptions, subsidies and tariffs in force, by month (T), product (P) and market (M).

    Attributes:
        tariff: ad valorem import duty on the base price, share (T x P x M).
        exemption_share: share of the purchase tax exempted for eligible NEVs (T x M).
        exemption_cap: most tax exempted per vehicle, RMB (T x M).
        exemption_min_range: electric range a PHEV or EREV needs to be eligible, km (T x M).
        subsidy: expected trade-in subsidy (amount times uptake) taken off the price, RMB (T x P x M).
        purchase_tax: purchase tax rate in each market, 0 where none is levied (M).
        luxury_rate: luxury-tax rate in each market, 0 where none is levied (M).
        luxury_threshold: price excluding VAT from which the luxury tax is due, RMB.
        vat: VAT in the list price, share (M).
        price_level: the market's price multiplier on the base price (M).
    """

    tariff: F
    exemption_share: F
    exemption_cap: F
    exemption_min_range: F
    subsidy: F
    purchase_tax: F
    luxury_rate: F
    luxury_threshold: float
    vat: F
    price_level: F


def _in_force(months: NDArray[np.int64], start: str | None, end: str | None) -> NDArray[np.bool_]:
    """Which ``months`` (month indices) fall from ``start`` to ``end`` inclusive (None: open)."""
    lo = parse_month(start) if start else -_NEVER
    hi = parse_month(end) if end else _NEVER
    return (months >= lo) & (months <= hi)  # type: ignore[no-any-return]


def tariff_schedule(
    tariffs: Sequence[Tariff],
    months: NDArray[np.int64],
    market_names: Sequence[str],
    made_in: NDArray[np.str_],
    powertrain: NDArray[np.str_],
    product_brand_name: NDArray[np.str_],
) -> F:
    """Tariff rate on each product in each market and month (T x P x M); duties on one product add up.

    A tariff applies, in its market and months, to the products made outside the market (or in
    its ``made_in`` origins), of its powertrains and brands when it names them.
    """
    rate = np.zeros((months.size, made_in.size, len(market_names)))
    for tr in tariffs:
        m = list(market_names).index(tr.market)
        when = _in_force(months, tr.start, tr.end)
        applies = made_in != tr.market if tr.made_in is None else np.isin(made_in, tr.made_in)
        if tr.powertrains is not None:
            applies &= np.isin(powertrain, tr.powertrains)
        if tr.brands is not None:
            applies &= np.isin(product_brand_name, tr.brands)
        rate[np.ix_(when, applies, np.array([m]))] += tr.rate
    return rate


def exemption_schedule(
    exemptions: Sequence[NevExemption], months: NDArray[np.int64], market_names: Sequence[str]
) -> tuple[F, F, F]:
    """NEV purchase-tax exemption in each month and market: ``(share, cap RMB, min electric range km)``, each T x M.

    A later rule replaces an earlier one in the months both cover; markets not in the scenario are skipped.
    """
    shape = (months.size, len(market_names))
    share, cap, min_range = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for ex in exemptions:
        when = _in_force(months, ex.start, ex.end)
        for name in ex.markets:
            if name in market_names:
                m = list(market_names).index(name)
                share[when, m] = ex.share
                cap[when, m] = ex.cap
                min_range[when, m] = ex.min_electric_range_km
    return share, cap, min_range


def subsidy_schedule(
    subsidies: Sequence[Subsidy], months: NDArray[np.int64], market_names: Sequence[str], powertrain: NDArray[np.str_]
) -> F:
    """Expected subsidy per vehicle (amount for its powertrain times uptake), RMB, T x P x M; subsidies add up.

    Markets not in the scenario are skipped.
    """
    amount_t = np.zeros((months.size, powertrain.size, len(market_names)))
    nev = np.isin(powertrain, ("BEV", "EREV", "PHEV"))
    for sub in subsidies:
        if sub.market not in market_names:
            continue
        m = list(market_names).index(sub.market)
        when = _in_force(months, sub.start, sub.end)
        amount = np.where(nev, sub.amount_nev, sub.amount_ice) * sub.uptake
        amount_t[when, :, m] += amount[None, :]
    return amount_t


def policy_calendar(
    config: Scenario, months: NDArray[np.int64], made_in: NDArray[np.str_], powertrain: NDArray[np.str_], product_brand_name: NDArray[np.str_]
) -> PolicyCalendar:
    """The scenario's policies over ``months`` (month indices), for its products (``made_in``,
    ``powertrain`` and brand name of each) and markets."""
    pol = config.policies
    names = [mk.name for mk in config.markets]
    share, cap, min_range = exemption_schedule(pol.nev_exemptions, months, names)
    taxed = np.array([name in pol.purchase_tax_markets for name in names])
    return PolicyCalendar(
        tariff=tariff_schedule(pol.tariffs, months, names, made_in, powertrain, product_brand_name),
        exemption_share=share,
        exemption_cap=cap,
        exemption_min_range=min_range,
        subsidy=subsidy_schedule(pol.subsidies, months, names, powertrain),
        purchase_tax=np.where(taxed, pol.purchase_tax_rate, 0.0),
        luxury_rate=np.where(taxed, pol.luxury_tax_rate, 0.0),
        luxury_threshold=float(pol.luxury_tax_threshold),
        vat=np.array([mk.vat for mk in config.markets], float),
        price_level=np.array([mk.price_level for mk in config.markets], float),
    )


def landed_prices(
    policy: PolicyCalendar,
    t: int,
    price: F,
    discount: F,
    powertrain: NDArray[np.str_],
    electric_range_km: F,
) -> tuple[F, F, F]:
    """Each product's prices in each market in month ``t``, products x markets, RMB per vehicle.

    Args:
        price: base list price of each product, RMB.
        discount: its brand's discount off the list price, share.
        powertrain, electric_range_km: what decides NEV eligibility.

    Returns:
        ``(list_price, transaction_price, paid)``: the landed list price (tariff and price level),
        the price after discount incl. VAT, and what a buyer pays (taxes, exemptions, subsidies).
    """
    P, M = price.shape[0], policy.vat.shape[0]
    lst, trans, paid = np.zeros((P, M)), np.zeros((P, M)), np.zeros((P, M))
    for m in range(M):
        lp = landed_list_price(price, policy.tariff[t, :, m], policy.price_level[m])
        eligible = nev_eligible(powertrain, electric_range_km, policy.exemption_min_range[t, m])
        tr, pd = buyer_price(
            lp,
            discount,
            vat=policy.vat[m],
            tax_rate=policy.purchase_tax[m],
            exemption_share=policy.exemption_share[t, m],
            exemption_cap=policy.exemption_cap[t, m],
            eligible=eligible,
            luxury_threshold=policy.luxury_threshold,
            luxury_rate=policy.luxury_rate[m],
            subsidy=policy.subsidy[t, :, m],
        )
        lst[:, m], trans[:, m], paid[:, m] = lp, tr, pd
    return lst, trans, paid
