"""The single-run view's numbers: a model's recorded months, read from its DataCollector.

Pure functions of a :class:`sim.model.market_model.MarketModel` (no Solara), reading only what
:mod:`sim.model.observe` records each month, so the view shows exactly what a run stores.
Volumes are summed over markets; prices are those of one market (China by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sim.model.market_model import MarketModel

TABLE_COLUMNS = (
    "brand", "model", "orders", "deliveries", "cancellations", "backlog", "wait_months", "list_price",
    "transaction_price", "paid_price", "discount",
)  # fmt: skip
#: Fields of :func:`history`: recorded name and whether it is summed over markets (else one market's).
HISTORY_FIELDS = {
    "orders": ("orders", True),
    "deliveries": ("units", True),
    "backlog": ("backlog", True),
    "cancellations": ("cancellations", True),
    "wait_months": ("wait", None),
    "list_price": ("list_price", False),
    "transaction_price": ("transaction_price", False),
    "paid_price": ("paid_price", False),
}


def months_recorded(model: MarketModel) -> int:
    """Months simulated so far (the collector's first row is the state before the first month)."""
    return max(len(model.datacollector.model_vars.get("month", [])) - 1, 0)


def _market(model: MarketModel, market: str | None) -> int:
    if market is None:
        return model.market_names.index("CN") if "CN" in model.market_names else 0
    return model.market_names.index(market)


def month_table(model: MarketModel, brand: str | None = None, market: str | None = None) -> pd.DataFrame:
    """The last recorded month, one row per product on offer (or with deliveries or backlog).

    Args:
        brand: only this brand's products (None: all).
        market: the market whose prices are shown (None: China, else the first market).

    Returns:
        Columns :data:`TABLE_COLUMNS`: volumes (vehicles, all markets) of the month, backlog at
        its end, the wait for a new order at its start (months), prices in RMB (NaN where the
        product is not offered in that market) and the brand's discount off list price. Empty
        before the first step.
    """
    if months_recorded(model) == 0:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    mv = model.datacollector.model_vars
    m = _market(model, market)
    offered = np.asarray(mv["offered"][-1])
    rows = np.flatnonzero(offered.any(axis=1))
    brand_idx = model.product_brand[rows]
    discounts = np.asarray(mv["discounts"][-1])

    def price(name: str) -> np.ndarray:
        return np.where(offered[rows, m], np.asarray(mv[name][-1])[rows, m], np.nan)

    df = pd.DataFrame({
        "brand": np.array(model.brand_names)[brand_idx],
        "model": np.array(model.product_names)[rows],
        "orders": np.asarray(mv["orders"][-1])[rows].sum(axis=1),
        "deliveries": np.asarray(mv["units"][-1])[rows].sum(axis=1),
        "cancellations": np.asarray(mv["cancellations"][-1])[rows].sum(axis=1),
        "backlog": np.asarray(mv["backlog"][-1])[rows].sum(axis=1),
        "wait_months": np.asarray(mv["wait"][-1])[rows],
        "list_price": price("list_price"),
        "transaction_price": price("transaction_price"),
        "paid_price": price("paid_price"),
        "discount": discounts[brand_idx],
    })  # fmt: skip
    if brand is not None:
        df = df[df["brand"] == brand]
    return df.sort_values(["brand", "model"], kind="stable").reset_index(drop=True)


def history(model: MarketModel, field: str, products: list[str], market: str | None = None) -> pd.DataFrame:
    """One recorded field per month (rows, ``YYYY-MM``) and product (columns) so far.

    ``field`` is a key of :data:`HISTORY_FIELDS`; volumes are summed over markets, prices are
    one market's (NaN where not offered there).
    """
    name, summed = HISTORY_FIELDS[field]
    mv = model.datacollector.model_vars
    months = list(mv.get("month", []))[1:]  # row 0: the state before the first month
    idx = [model.product_names.index(p) for p in products]
    if not months:
        return pd.DataFrame(columns=products)
    data = np.stack(mv[name][1:])
    if summed is None:  # per product
        values = data[:, idx]
    elif summed:
        values = data[:, idx, :].sum(axis=2)
    else:
        m = _market(model, market)
        offered = np.stack(mv["offered"][1:])[:, idx, m]
        values = np.where(offered, data[:, idx, m], np.nan)
    return pd.DataFrame(values, index=pd.Index(months, name="month"), columns=products)


def brand_products(model: MarketModel, brand: str) -> list[str]:
    """The brand's products, in scenario order."""
    return [p for p, b in zip(model.product_names, model.product_brand, strict=True) if model.brand_names[b] == brand]
