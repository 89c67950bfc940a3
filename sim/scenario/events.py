"""Events of a scenario: dated changes of prices, discounts, capacity, stores and appeal."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.scenario.fields import Frozen, Month, NonNeg, PosFloat, Share
from sim.scenario.months import parse_month


class Event(Frozen):
    """A dated change. ``type`` decides which other fields are used.

    - ``price``: ``product``, ``price`` (new list price) or ``factor``.
    - ``discount``: ``brand`` (or ``brands``) and either ``discount``, a level that replaces the
      brand's own (its pricing rule moves on from it; also a floor if ``floor: true``), or ``add``,
      a change on top of whatever the brand's rule sets (points of the list price: 0.06 = six
      points deeper, negative = shallower), from the event's month to ``until`` (inclusive) or the
      end. While a change is on, the brand charges its rule's discount plus every change in force,
      clipped to [0, ``max_discount``] (default 1: the change applies in full, also beyond the
      brand's ``pricing.max_discount``, which bounds its rule only).
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
    max_discount: Share | None = Field(
        None, description="discount with add: the highest discount the brand charges while the change is on."
    )
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
        if self.type == "discount":
            self._discount_fields()
        elif self.max_discount is not None:
            raise ValueError(f"max_discount is for 'discount' events with 'add', not '{self.type}'")
        if self.type == "appeal" and (self.appeal is None or (self.brand is None and self.product is None)):
            raise ValueError("an 'appeal' event needs 'appeal' and 'product' or 'brand'")
        if self.until is not None and parse_month(self.until) < parse_month(self.month):
            raise ValueError(f"until {self.until} is before month {self.month}")
        if self.until is not None and self.type not in ("capacity", "discount"):
            raise ValueError(f"until is for 'capacity' and 'discount' events, not '{self.type}'")
        return self

    def _discount_fields(self) -> None:
        """A discount event names its brands and gives a level (``discount``) or a change (``add``)."""
        if self.brand is None and not self.brands:
            raise ValueError("a 'discount' event needs 'brand' (or 'brands')")
        if (self.discount is None) == (self.add is None):
            raise ValueError("a 'discount' event needs either 'discount' (a level) or 'add' (a change on top of the brand's rule)")
        if self.add is not None and not -1.0 <= self.add <= 1.0:
            raise ValueError(f"add is a change of the discount in points of the list price, between -1 and 1, got {self.add:g}")
        if self.discount is not None and (self.until is not None or self.max_discount is not None):
            raise ValueError("until and max_discount go with 'add' (a change), not with 'discount' (a level the rule moves on from)")
        if self.add is not None and self.floor:
            raise ValueError("floor goes with 'discount' (a level), not with 'add'")
