"""Products of a scenario: what a brand sells, its trims, its dates and its production capacity."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from sim.scenario.errors import FieldErrors
from sim.scenario.fields import Body, Frozen, ItemName, Month, NonNeg, PosFloat, Powertrain, Share, month_text
from sim.scenario.months import format_month, parse_month
from sim.scenario.uncertainty import CapacityRange
from sim.scenario.yamlio import Path_


class Capacity(Frozen):
    """Production capacity of a product, units per month, with a linear ramp."""

    max: NonNeg = Field(description="Units per month at full ramp.")
    ramp_months: int = Field(1, ge=1, le=60)
    start: Month | None = Field(None, description="First month of production (default: delivery_start).")
    range: CapacityRange | None = Field(
        None, description="Where max is an assumption: the range a forecast draws it from after uncertainty.start."
    )


class Trim(Frozen):
    """A version of a product: its list price above the product's entry price, and its share of the product's units."""

    name: str = ""
    premium: NonNeg = Field(0.0, description="List price above the product's price (its entry trim), RMB.")
    share: Share = Field(description="Share of the product's units (the shares of a product's trims sum to 1).")


class Product(Frozen):
    name: ItemName
    brand: str
    price: PosFloat = Field(description="List price before market tariffs, taxes and discounts, RMB (the entry trim's, with trims).")
    trims: list[Trim] | None = Field(
        None, min_length=1,
        description="Versions at different prices and their share of units: buyers choose the product at the "
        "share-weighted price; each unit sold is counted in the segment of its trim's transaction price.",
    )
    powertrain: Powertrain
    body: Body = "SUV"
    seats: int = Field(5, ge=1, le=9)
    electric_range_km: NonNeg = Field(0.0, description="Electric-only range (CLTC), km; decides NEV tax eligibility of PHEV/EREV.")
    smart: Share = Field(0.0, description="Smart-driving and cockpit score, 0..1.")
    appeal: float = Field(0.0, description="Product-specific mean utility (xi); with appeal_like, added to their mean.")
    appeal_like: list[str] | None = Field(
        None, description="Products whose (resolved) appeals are averaged to give this one's, e.g. a new model like its siblings."
    )
    ageing: NonNeg = Field(
        0.0, description="Utils a year this product loses with age (since launch or its last renewing refresh), "
        "on top of buyers.ageing_per_year; fitted by sim fit-appeals for products with reported volumes."
    )
    launch: Month = Field(description="Orders open (pre-sale/launch).")
    delivery_start: Month | None = Field(
        None, description="First deliveries (default: launch, or launch + delivery_lag)."
    )
    delivery_lag: int | None = Field(
        None, ge=0, le=120, description="Months from launch to first deliveries. When given it decides delivery_start "
        "(launch + delivery_lag), so that moving the launch moves the deliveries; writing delivery_start (an "
        "override, a file that extends this one) drops it."
    )
    on_sale_since: Month | None = Field(
        None, description="A line already delivering at the scenario start: the month of its first deliveries. Its "
        "life cycle (age) then counts from that month; without it such a line is mature and does not age."
    )
    end: Month | None = Field(None, description="Last month on sale (discontinuation).")
    capacity: Capacity
    made_in: str = "CN"
    markets: list[str] = Field(default_factory=lambda: ["CN"])
    max_wait_months: PosFloat = Field(6.0, description="Order book closes when the backlog exceeds this many months of full capacity.")
    initial_backlog: NonNeg = 0.0
    source: str = ""

    @model_validator(mode="before")
    @classmethod
    def _lagged_deliveries(cls, data: Any) -> Any:
        """``delivery_start`` from ``launch + delivery_lag`` when the lag is given (a bad launch or lag is
        left for the fields to report)."""
        if not isinstance(data, dict) or data.get("delivery_lag") is None:
            return data
        lag = data["delivery_lag"]
        try:
            launch = parse_month(month_text(data.get("launch")))
        except ValueError:
            return data
        if isinstance(lag, float) and lag.is_integer():
            lag = int(lag)  # as the int field reads it
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0:
            return data
        return {**data, "delivery_start": format_month(launch + lag)}

    @model_validator(mode="after")
    def _dates(self) -> Product:
        launch = parse_month(self.launch)
        problems: list[tuple[Path_, str]] = []
        if self.delivery_start is not None and parse_month(self.delivery_start) < launch:
            problems.append((("delivery_start",), f"delivery_start {self.delivery_start} is before launch {self.launch} "
                             "(a delivery_lag instead of delivery_start moves the deliveries with the launch)"))  # fmt: skip
        if self.end is not None and parse_month(self.end) < launch:
            problems.append((("end",), f"end {self.end} is before launch {self.launch}"))
        if self.on_sale_since is not None and parse_month(self.on_sale_since) > parse_month(self.delivery_start or self.launch):
            problems.append((("on_sale_since",), f"on_sale_since {self.on_sale_since} is after the first deliveries in the scenario"))
        if problems:
            raise FieldErrors(problems)
        return self

    @field_validator("trims")
    @classmethod
    def _shares_sum_to_one(cls, value: list[Trim] | None) -> list[Trim] | None:
        if value is not None and abs(sum(t.share for t in value) - 1.0) > 1e-6:
            raise ValueError(f"the trims' shares sum to {sum(t.share for t in value):g}, not 1")
        return value
