"""What the model records each month: named reporter functions for Mesa's DataCollector.

Named functions, not lambdas, so that a model and its collector pickle for
parallel runs. Each returns a copy (the model's arrays change every month).
Arrays are products x markets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
