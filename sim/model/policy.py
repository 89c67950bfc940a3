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
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]


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
