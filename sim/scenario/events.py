"""Events of a scenario: dated changes of prices, discounts, capacity, stores and appeal."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.scenario.fields import Frozen, Month, NonNeg, PosFloat, Share
from sim.scenario.months import parse_month


class Event(Frozen):
    """A dated change. ``type`` decides which other fields are used.

    - ``price``: ``product``, ``price`` (new list price) or ``factor``.
    - ``discount``: ``brand`` (or ``brands``), ``discount`` (sets it; also a floor if ``floor: true``).
    - ``capacity``: ``product``, ``factor`` (multiplies capacity) or ``capacity``; ``until`` (inclusive) optional.
    - ``stores``: ``brand``, ``market``, ``channel``, ``count`` (new total) or ``add``;
      ``over_months`` spreads the change over that many months (equal monthly steps, the first
      in the event's month), for a network that grows gradually rather than in one jump.
    - ``refresh``: ``product``, ``appeal`` change and/or ``price``, ``smart``; buyers hold back
      ``announce_months`` before it.
    - ``appeal``: ``product`` or ``brand``, ``appeal`` change.
    - ``discontinue``: ``product``.
    """

    month: Month
    type: Literal["price", "discount", "capacity", "stores", "refresh", "appeal", "discontinue"]
    product: str | None = None
    brand: str | None = None
    brands: list[str] | None = None
    market: str | None = None
    channel: str | None = None
    price: PosFloat | None = None
    factor: NonNeg | None = None
    discount: Share | None = None
    floor: bool = False
    capacity: NonNeg | None = None
    count: NonNeg | None = None
    add: float | None = None
    appeal: float | None = None
    smart: Share | None = None
    until: Month | None = None
    announce_months: int = Field(0, ge=0, le=24)
    over_months: int = Field(1, ge=1, le=60, description="stores: months the change is spread over (1 = at once).")
    renew: bool = Field(True, description="refresh: restart the product's life cycle (age); false for a trim update.")
    note: str = ""
    source: str = ""

    @model_validator(mode="after")
    def _fields(self) -> Event:
        need = {
            "price": ("product",),
            "capacity": ("product",),
            "refresh": ("product",),
            "discontinue": ("product",),
            "stores": ("brand",),
        }.get(self.type, ())
        for name in need:
            if getattr(self, name) is None:
                raise ValueError(f"a '{self.type}' event needs '{name}'")
        if self.type == "price" and self.price is None and self.factor is None:
            raise ValueError("a 'price' event needs 'price' or 'factor'")
        if self.type == "capacity" and self.factor is None and self.capacity is None:
            raise ValueError("a 'capacity' event needs 'factor' or 'capacity'")
        if self.type == "stores" and self.count is None and self.add is None:
            raise ValueError("a 'stores' event needs 'count' or 'add'")
        if self.over_months > 1 and self.type != "stores":
            raise ValueError(f"over_months is for 'stores' events, not '{self.type}'")
        if self.type == "discount" and (self.discount is None or (self.brand is None and not self.brands)):
            raise ValueError("a 'discount' event needs 'brand' (or 'brands') and 'discount'")
        if self.type == "appeal" and (self.appeal is None or (self.brand is None and self.product is None)):
            raise ValueError("an 'appeal' event needs 'appeal' and 'product' or 'brand'")
        if self.until is not None and parse_month(self.until) < parse_month(self.month):
            raise ValueError(f"until {self.until} is before month {self.month}")
        return self
