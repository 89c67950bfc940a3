"""What the model records each month: named reporter functions for Mesa's DataCollector.

Named functions (and picklable callables), not lambdas, so that a model and its collector
pickle for parallel runs. Each returns a copy (the model's arrays change every month).
Arrays are products x markets; the sales table of a run (:func:`sim.runs.run.sales_table`) reads the
ones :data:`SALES_MEASURES` declares, each as one column.
Scalars sit beside them, so that a row of ``mesa.batch_run`` is usable as it comes: each
brand's deliveries of the month (``deliveries_AITO``, ``deliveries_Li_Auto``...: names made by
:func:`column_name`). The seed a model drew is its attribute ``seed_entropy``, not a record: a
record is what a month changes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from sim.model.market_model import MarketModel


def month(model: MarketModel) -> str:
    """The calendar month just simulated, ``YYYY-MM``."""
    return model.month_label


def deliveries(model: MarketModel) -> np.ndarray:
    """Units delivered this month, products x markets."""
    return model.month_units.copy()


def orders(model: MarketModel) -> np.ndarray:
    """Orders taken this month, products x markets."""
    return model.month_orders.copy()


def cancellations(model: MarketModel) -> np.ndarray:
    """Orders cancelled this month, products x markets."""
    return model.month_cancellations.copy()


def backlog(model: MarketModel) -> np.ndarray:
    """Orders waiting for delivery at the end of the month, products x markets."""
    return model.backlog.copy()


def list_price(model: MarketModel) -> np.ndarray:
    """Landed list price (incl. tariffs, before discount), RMB, products x markets."""
    return model.month_list_price.copy()


def transaction_price(model: MarketModel) -> np.ndarray:
    """Price after discount incl. VAT, RMB, products x markets."""
    return model.month_transaction_price.copy()


def paid_price(model: MarketModel) -> np.ndarray:
    """What a buyer pays (taxes, exemptions, subsidies), RMB, products x markets."""
    return model.month_paid.copy()


def offered(model: MarketModel) -> np.ndarray:
    """Whether the product is on sale, or has deliveries or backlog, products x markets."""
    return model.month_offered.copy()


def wait_months(model: MarketModel) -> np.ndarray:
    """Expected wait for a new order at the start of the month, months, per product."""
    return model.wait.copy()


def buyer_decisions(model: MarketModel) -> int:
    """Buyer-agent choices made this month."""
    return int(model.month_decisions)


def arrivals(model: MarketModel) -> int:
    """Buyer agents who arrived this month."""
    return int(model.month_arrivals)


def discounts(model: MarketModel) -> np.ndarray:
    """Each brand's discount off list price."""
    return np.array([b.discount for b in model.brand_agents])


def brand_deliveries(model: MarketModel, brand: int) -> float:
    """Units brand ``brand`` (its index) delivered this month, all markets together."""
    return float(model.month_units[model.product_brand == brand].sum())


#: Signs that carry meaning in names (segments ``<200k``, ``500k+``; relative overrides ``+=``), spelt out.
_SIGNS = {"<": " under ", ">": " over ", "+": " plus ", "*": " times ", "%": " pct ", "=": " "}


def column_name(*parts: str) -> str:
    """A column name that is also a Python identifier (as the EMA Workbench wants its names), from
    names of brands, segments, targets or parameter paths: ``column_name("deliveries", "Li Auto", "2026")``
    -> ``"deliveries_Li_Auto_2026"``, ``column_name("share", "<200k")`` -> ``"share_under_200k"``."""
    words = []
    for part in parts:
        text = str(part)
        for sign, word in _SIGNS.items():
            text = text.replace(sign, word)
        words.append(re.sub(r"\W+", "_", text).strip("_"))
    name = "_".join(w for w in words if w)
    return f"_{name}" if name[:1].isdigit() else name


def reporters(brand_names: Sequence[str]) -> dict[str, Any]:
    """The model's reporters: :data:`REPORTERS` (read by the run's tables) and each brand's deliveries of the
    month as ``deliveries_<brand>``.

    Raises:
        ValueError: two brands whose names give the same column.
    """
    scalars: dict[str, Any] = {}
    for i, brand in enumerate(brand_names):
        name = column_name("deliveries", brand)
        if name in scalars or name in REPORTERS:
            raise ValueError(f"brands '{brand}' and another give the same reporter name '{name}'")
        scalars[name] = functools.partial(brand_deliveries, brand=i)  # Mesa calls a partial with the model
    return {**REPORTERS, **scalars}


#: The reporters every model has; the run's tables read them (:func:`sim.runs.run.sales_table`).
REPORTERS: dict[str, Any] = {
    "month": month,
    "units": deliveries,
    "orders": orders,
    "cancellations": cancellations,
    "backlog": backlog,
    "list_price": list_price,
    "transaction_price": transaction_price,
    "paid_price": paid_price,
    "offered": offered,
    "wait": wait_months,
    "buyer_decisions": buyer_decisions,
    "arrivals": arrivals,
    "discounts": discounts,
}


@dataclass(frozen=True)
class Measure:
    """A column of the sales table, read from a reporter (:func:`sim.runs.run.sales_table`).

    Attributes:
        column: the column's name.
        reporter: the key of :data:`REPORTERS` it reads.
        kind: what the reporter holds and how a row of one price segment (a product's trims in that
            segment, ``sim.runs.run.segment_rows``) reads it: ``"count"``, whole units, products x markets,
            split over the segment rows by the trims' shares (an int64 column); ``"price"``, RMB, products x
            markets, scaled to the segment's trims (float64); ``"product"``, one value per product, the
            same on each of its rows (float64).
    """

    column: str
    reporter: str
    kind: Literal["count", "price", "product"]


#: The measures of the sales table, in column order (after the columns that say which run, month,
#: market, product and segment a row is: :data:`sim.runs.run.SALES_COLUMNS`).
SALES_MEASURES: tuple[Measure, ...] = (
    Measure("units", "units", "count"),
    Measure("orders", "orders", "count"),
    Measure("backlog", "backlog", "count"),
    Measure("cancellations", "cancellations", "count"),
    Measure("list_price", "list_price", "price"),
    Measure("transaction_price", "transaction_price", "price"),
    Measure("paid_price", "paid_price", "price"),
    Measure("wait_months", "wait", "product"),
)
