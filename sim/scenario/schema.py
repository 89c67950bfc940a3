"""Scenario files -> a validated, frozen :class:`Scenario`.

A scenario is a YAML file. ``extends: other.yaml`` (relative to the file) deep-merges
this file over another: mappings merge key by key, lists of named items (products,
brands, markets, segments, stores, targets, tariffs, subsidies) merge by ``name`` (or
``brand``+``market``+``channel`` for stores), other lists are replaced. An item with
``remove: true`` deletes the inherited item of that name. Any list can instead be
given as ``{append: [...]}`` (added after the inherited items, e.g. extra ``events``)
or ``{replace: [...]}`` (replaces the inherited list, said explicitly).

Every error names the file, the line and the field, e.g.
``scenarios/m6.yaml:14: products[3].price: Input should be greater than 0``.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.scenario.months import format_month, parse_month
from sim.scenario.yamlio import Document, InputError, Location, Path_, Problem, format_path, load_yaml

# --------------------------------------------------------------------------- types


def _check_month(v: str) -> str:
    parse_month(v)
    return v.strip()


Month = Annotated[str, AfterValidator(_check_month), Field(json_schema_extra={"pattern": r"^\d{4}-(0[1-9]|1[0-2])$"})]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]
NonNeg = Annotated[float, Field(ge=0.0)]
Powertrain = Literal["BEV", "EREV", "PHEV", "ICE"]
Body = Literal["sedan", "SUV", "MPV", "coupe", "wagon"]
POWERTRAINS: tuple[str, ...] = ("BEV", "EREV", "PHEV", "ICE")
BODIES: tuple[str, ...] = ("sedan", "SUV", "MPV", "coupe", "wagon")
NEV_POWERTRAINS = ("BEV", "EREV", "PHEV")


def _check_name(v: str) -> str:
    # A scenario's name becomes a folder name (results/<name>/...): it must stay one folder.
    if not v.strip() or v.strip() in (".", "..") or any(c in v for c in "/\\") or not v.isprintable():
        raise ValueError(f"must be a plain name (no '/', '\\', control characters; not '.' or '..'), got {v!r}")
    if len(v) > 200:
        raise ValueError(f"must be at most 200 characters, got {len(v)}")
    return v


#: A name that is also a folder name (scenarios, sweeps).
PlainName = Annotated[str, AfterValidator(_check_name)]


#: Largest magnitude of a real number in a scenario: far beyond any quantity of the model (a year
#: of the whole market is about 1e12 RMB), far below what its float32 arrays hold (3.4e38).
MAX_MAGNITUDE = 1e15


def _number_kind(tp: Any) -> str | None:
    """``"float"`` or ``"int"`` when a field's type is a number (optionally ``None``; not ``bool``), else None."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _number_kind(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = {_number_kind(a) for a in typing.get_args(tp) if a is not type(None)}
        return None if None in kinds or not kinds else ("float" if "float" in kinds else "int")
    return {int: "int", float: "float"}.get(tp)


@functools.cache
def _field_kind(model: type[BaseModel], name: str) -> tuple[str | None, str | None]:
    """Number kind of field ``name`` of ``model``, and of its items if it is a list or mapping."""
    tp = model.model_fields[name].annotation
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    items = _number_kind(args[0]) if origin is list else _number_kind(args[1]) if origin is dict else None
    return _number_kind(tp), items


def _check_number(value: Any, kind: str | None, where: str = "") -> None:
    if kind is None:
        return
    if isinstance(value, bool):
        # Pydantic would read true/false as 1/0; in a scenario that is a slip (price: true).
        raise ValueError(f"{where}Input should be a number, got {str(value).lower()}")
    if kind == "float" and isinstance(value, (int, float)) and math.isfinite(value) and abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"{where}Input should be between -{MAX_MAGNITUDE:.0e} and {MAX_MAGNITUDE:.0e}, got {value!r}")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Numbers are numbers (not true/false) of a sane size (:data:`MAX_MAGNITUDE`)."""
        if info.field_name is None or not isinstance(value, (bool, int, float, list, dict)):
            return value
        kind, item_kind = _field_kind(cls, info.field_name)
        if isinstance(value, (list, dict)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                _check_number(item, item_kind, f"[{key!r}]: ")
        else:
            _check_number(value, kind)
        return value


class Seasonality(_Frozen):
    """Monthly demand multipliers (Jan..Dec) plus a Lunar New Year trough."""

    monthly: list[PosFloat] = Field(
        default=[1.0] * 12,
        min_length=12,
        max_length=12,
        description="Multipliers for Jan..Dec (renormalised to mean 1).",
    )
    lunar_new_year_depth: Share = Field(
        0.0, description="Share of a month's demand lost over the holiday window."
    )
    lunar_new_year_window_days: int = Field(
        14, ge=1, le=60, description="Length of the holiday trough, starting 3 days before LNY."
    )
    lunar_new_year: dict[str, str] = Field(
        default_factory=dict,
        description="Lunar New Year date per year, {'2024': '2024-02-10'}.",
    )
    lunar_new_year_shutdown_days: float = Field(
        0.0, ge=0, le=28,
        description=(
            "Spring Festival factory shutdown, days from 3 days before LNY: products made in this market"
            " lose that share of the month's capacity (0 = none)."
        ),
    )

    @field_validator("lunar_new_year")
    @classmethod
    def _dates_in_their_year(cls, value: dict[str, str]) -> dict[str, str]:
        for year, day in value.items():
            try:
                date = datetime.date.fromisoformat(day.strip())
            except ValueError:
                raise ValueError(f"['{year}']: expected a day as YYYY-MM-DD, got {day!r}") from None
            if str(date.year) != year.strip():
                raise ValueError(f"['{year}']: {day} is not in {year}")
        return value


class Market(_Frozen):
    """A country or region where buyers arrive and products are sold."""

    name: str
    buyers_per_month: NonNeg = Field(
        le=1e9, description="Potential premium buyers per month at reference_month (people; at most 1e9)."
    )
    reference_month: Month
    growth_per_year: float = Field(
        0.0, gt=-1.0, le=10.0, description="Annual growth of arrivals (0.03 = +3%/yr; at most 10 = +1000%/yr)."
    )
    growth: dict[str, float] = Field(
        default_factory=dict,
        description="Optional multiplier per year on top of growth_per_year, {'2022': 0.95}.",
    )
    seasonality: Seasonality = Seasonality()
    city_tiers: dict[str, Share] = Field(
        default_factory=lambda: {"all": 1.0}, description="Share of buyers per city tier (sums to 1)."
    )
    store_reach: dict[str, NonNeg] = Field(
        default_factory=lambda: {"all": 0.01},
        description="Reach per effective store, per city tier: reach = 1 - exp(-k * stores).",
    )
    price_level: PosFloat = Field(1.0, description="Price multiplier for products sold here (logistics, margins).")
    vat: Share = Field(0.13, description="VAT in the list price (China 13%).")
    currency_note: str = ""


class Segment(_Frozen):
    """A price band by transaction price (RMB)."""

    name: str
    min_price: NonNeg
    max_price: float | None = None


class Choice(_Frozen):
    """The choice rule."""

    model: Literal["logit", "nested_logit"] = "nested_logit"
    nests: Literal["inside", "segment", "powertrain"] = Field(
        "inside", description="How inside products are grouped into nests (nested_logit only)."
    )
    nest_lambda: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.8, description="Nesting parameter lambda (1 = plain logit)."
    )


class Awareness(_Frozen):
    """Bass-style awareness: A += (1 - A) * (p * advertising + q * owners / reference)."""

    innovation: NonNeg = Field(0.01, description="p, per month.")
    imitation: NonNeg = Field(0.4, description="q, per month.")
    reference_owners: PosFloat = Field(1_000_000, description="Owners that give the full q effect (people).")


class Taste(_Frozen):
    mean: float = 0.0
    sd: NonNeg = 0.0
    trend_per_year: float = Field(0.0, description="Change of the mean per year after 2022-01.")


class Buyers(_Frozen):
    """Buyer heterogeneity and behaviour."""

    budget_median: PosFloat = Field(320_000, description="Median budget, RMB.")
    budget_sigma: NonNeg = Field(0.45, description="Log-sd of budgets.")
    budget_stretch: NonNeg = Field(0.15, description="Buyers consider up to budget * (1 + stretch).")
    price_sensitivity: NonNeg = Field(1.0, description="alpha: utils per 100k RMB at the reference budget.")
    income_elasticity: NonNeg = Field(
        1.0, description="eta: alpha_i = alpha * (budget_reference / budget_i)^eta."
    )
    budget_reference: PosFloat = Field(320_000, description="RMB.")
    outside_value: float = Field(0.0, description="Mean utility of not buying a premium car this month.")
    defer_share: Share = Field(0.5, description="Share of buyers choosing the outside option who stay next month.")
    max_defer_months: int = Field(6, ge=0, le=60)
    tastes: dict[str, Taste] = Field(
        default_factory=dict,
        description="Random coefficients: smart, prestige, huawei, domestic, BEV, EREV, PHEV, ICE, SUV, MPV, sedan...",
    )
    family_share: Share = Field(0.5, description="Share of buyers with a family (prefer SUV/MPV, 6+ seats).")
    family_large_car: float = Field(0.5, description="Utility of 6+ seats for family buyers.")
    wait_cost: NonNeg = Field(0.1, description="Utils lost per month of expected delivery wait.")
    cancel_rate_per_wait_month: NonNeg = Field(
        0.03, description="Monthly cancellation hazard per month of wait: h = 1 - exp(-c * wait)."
    )
    switch_share: Share = Field(0.5, description="Share of cancelled orders whose buyers shop again next month.")
    price_expectation: NonNeg = Field(
        1.0, description="Weight of next month's known price change in the value of waiting (0 = myopic)."
    )
    pre_refresh_penalty: NonNeg = Field(0.5, description="Utils lost by a product in its announced pre-refresh window.")
    ageing_per_year: NonNeg = Field(
        0.0,
        description="Utils a product loses per year since its launch or last renewing refresh (life cycle); "
        "only for products first delivered after the scenario's start (lines on sale before are mature).",
    )
    choice: Choice = Choice()
    awareness: Awareness = Awareness()


class Pricing(_Frozen):
    """A brand's discount rule: the discount moves toward a wait/stock target."""

    discount: Share = Field(0.0, description="Initial discount off list price.")
    min_discount: Share = 0.0
    max_discount: Share = 0.5
    response: NonNeg = Field(
        0.0, description="Discount change per month per unit of gap (0 = fixed discount)."
    )
    target_wait_months: NonNeg = Field(0.5, description="Build-to-order brands: wait they aim for.")
    stock_months: NonNeg = Field(0.0, description="Stock brands: months of sales held as inventory (0 = build to order).")


class Brand(_Frozen):
    name: str
    origin: Literal["domestic", "foreign"] = "domestic"
    prestige: float = Field(0.0, description="Brand prestige attribute (0 = none, 1 = top luxury).")
    huawei: bool = Field(False, description="Huawei ecosystem / HIMA member.")
    alliance: str | None = None
    appeal: float = Field(0.0, description="Brand-level mean utility (from appeal_trend_until on, when there is a trend).")
    appeal_trend: float = Field(
        0.0, ge=-3.0, le=3.0,
        description="Utils a year the brand's appeal rose (+) or fell (-) before appeal_trend_until; flat from then "
        "on, so a trend seen in the data is not carried into a forecast. Fitted by sim fit-appeals.",
    )
    appeal_trend_until: Month | None = Field(None, description="Month the trend ends (the fit's cut-off); needed with a trend.")
    awareness: dict[str, Share] = Field(
        default_factory=dict, description="Initial awareness per market (0..1), default 0.05."
    )
    advertising: NonNeg = Field(1.0, description="Multiplier on the innovation rate p.")
    pricing: Pricing = Pricing()
    source: str = ""

    @model_validator(mode="after")
    def _trend(self) -> Brand:
        if self.appeal_trend and self.appeal_trend_until is None:
            raise ValueError("appeal_trend needs appeal_trend_until (the month the trend ends)")
        return self


class Capacity(_Frozen):
    """Production capacity of a product, units per month, with a linear ramp."""

    max: NonNeg = Field(description="Units per month at full ramp.")
    ramp_months: int = Field(1, ge=1, le=60)
    start: Month | None = Field(None, description="First month of production (default: delivery_start).")


class Product(_Frozen):
    name: str
    brand: str
    price: PosFloat = Field(description="List price before market tariffs, taxes and discounts, RMB.")
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
    delivery_start: Month | None = Field(None, description="First deliveries (default: launch).")
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

    @model_validator(mode="after")
    def _dates(self) -> Product:
        launch = parse_month(self.launch)
        if self.delivery_start is not None and parse_month(self.delivery_start) < launch:
            raise ValueError(f"delivery_start {self.delivery_start} is before launch {self.launch}")
        if self.end is not None and parse_month(self.end) < launch:
            raise ValueError(f"end {self.end} is before launch {self.launch}")
        if self.on_sale_since is not None and parse_month(self.on_sale_since) > parse_month(self.delivery_start or self.launch):
            raise ValueError(f"on_sale_since {self.on_sale_since} is after the first deliveries in the scenario")
        return self


class Stores(_Frozen):
    """A brand's store network of one channel in one market (a Dealer agent)."""

    brand: str
    market: str = "CN"
    channel: str = "direct"
    count: NonNeg = Field(0, description="Stores at the scenario start.")
    weight: NonNeg = Field(1.0, description="Reach of one store of this channel relative to a dedicated store.")
    source: str = ""


class NevExemption(_Frozen):
    start: Month
    end: Month
    share: Share = Field(description="Share of the purchase tax exempted (1 = full, 0.5 = halved).")
    cap: NonNeg = Field(description="Most tax exempted per vehicle, RMB.")
    min_electric_range_km: NonNeg = Field(0.0, description="PHEV/EREV need this electric range to qualify.")
    markets: list[str] = Field(default_factory=lambda: ["CN"])
    source: str = ""


class Tariff(_Frozen):
    """An import duty on products made outside ``market``."""

    name: str
    market: str
    rate: NonNeg = Field(description="Ad valorem duty on the price (0.15 = 15%).")
    made_in: list[str] | None = Field(None, description="Origins it applies to (default: any but the market).")
    powertrains: list[Powertrain] | None = None
    brands: list[str] | None = None
    start: Month | None = None
    end: Month | None = None
    source: str = ""


class Subsidy(_Frozen):
    """Expected trade-in subsidy: uptake * amount is taken off the price."""

    name: str
    market: str = "CN"
    start: Month
    end: Month
    amount_nev: NonNeg = 0.0
    amount_ice: NonNeg = 0.0
    uptake: Share = Field(0.3, description="Share of buyers who trade in and get it.")
    source: str = ""


class Policies(_Frozen):
    purchase_tax_rate: Share = Field(0.10, description="China purchase tax on the price excluding VAT.")
    purchase_tax_markets: list[str] = Field(default_factory=lambda: ["CN"])
    nev_exemptions: list[NevExemption] = Field(default_factory=list)
    luxury_tax_threshold: PosFloat = Field(900_000, description="RMB excluding VAT.")
    luxury_tax_rate: Share = 0.10
    tariffs: list[Tariff] = Field(default_factory=list)
    subsidies: list[Subsidy] = Field(default_factory=list)


class Event(_Frozen):
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


class Target(_Frozen):
    """A delivery target: ``units`` delivered by ``brand`` from ``start`` to ``by`` inclusive."""

    name: str
    brand: str
    units: PosFloat
    start: Month
    by: Month
    reported_cumulative_at_start: NonNeg | None = Field(
        None, description="Reported cumulative deliveries when the window opens (for display)."
    )
    source: str = ""


class EnsembleMember(_Frozen):
    """One parameter set of an ensemble: scenario values by path, with a weight."""

    weight: PosFloat = Field(1.0, description="Relative weight (normalised over the members).")
    set: dict[str, Any] = Field(
        min_length=1,
        description="Scenario values by path, as 'sim run --set' takes them, e.g. {'buyers.price_sensitivity': 0.8}.",
    )
    loss: float | None = Field(None, description="The calibration's distance of this member (for reports only).")


class Ensemble(_Frozen):
    """Parameter sets that runs draw from (parameter uncertainty), as ``sim calibrate`` writes them.

    Each run applies one member's values as overrides before its model is built
    (:func:`sim.runs.run.execute`) and records the member's index in the runs table.
    """

    members: list[EnsembleMember] = Field(min_length=1)
    assign: Literal["draw", "cycle"] = Field(
        "draw",
        description="draw: each run draws a member by weight from a sub-stream of its own seed; "
        "cycle: replicate r takes member r mod n (equal weights only).",
    )
    source: str = Field("", description="What produced the ensemble (command, data cut-off).")


class Scenario(_Frozen):
    """A whole scenario, validated. Build with :func:`load_scenario`."""

    name: PlainName
    description: str = ""
    extends: str | None = None
    seed: int = Field(0, ge=0)
    start: Month
    end: Month
    forecast_start: Month | None = Field(None, description="First month that is a forecast, for reports.")
    scale: PosFloat = Field(25.0, description="Real buyers per buyer agent (1 = one agent per buyer).")
    markets: list[Market] = Field(min_length=1)
    segments: list[Segment] = Field(min_length=1)
    buyers: Buyers = Buyers()
    brands: list[Brand] = Field(min_length=1)
    products: list[Product] = Field(min_length=1)
    stores: list[Stores] = Field(default_factory=list)
    policies: Policies = Policies()
    events: list[Event] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    ensemble: Ensemble | None = Field(
        None, description="Parameter sets each run draws one of (written by sim calibrate)."
    )

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        problems: list[tuple[Path_, str]] = []
        start, end = parse_month(self.start), parse_month(self.end)
        if end < start:
            problems.append((("end",), f"end {self.end} is before start {self.start}"))
        if end - start > 12 * 50:
            problems.append((("end",), "a scenario may span at most 50 years"))
        named: tuple[tuple[str, Sequence[Any]], ...] = (
            ("markets", self.markets),
            ("segments", self.segments),
            ("brands", self.brands),
            ("products", self.products),
            ("targets", self.targets),
            ("policies.tariffs", self.policies.tariffs),
            ("policies.subsidies", self.policies.subsidies),
        )
        for key, items in named:
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.name in seen:
                    problems.append((tuple(key.split(".")) + (i, "name"), f"duplicate name '{item.name}'"))
                seen.add(item.name)
        markets = {m.name for m in self.markets}
        brands = {b.name for b in self.brands}
        products = {p.name for p in self.products}
        for i, p in enumerate(self.products):
            if p.brand not in brands:
                problems.append((("products", i, "brand"), f"unknown brand '{p.brand}' (brands: {_few(brands)})"))
            for k, other in enumerate(p.appeal_like or []):
                if other not in products or other == p.name:
                    problems.append((("products", i, "appeal_like", k), f"unknown product '{other}'"))
            for k, m in enumerate(p.markets):
                if m not in markets:
                    problems.append((("products", i, "markets", k), f"unknown market '{m}'"))
        for i, s in enumerate(self.stores):
            if s.brand not in brands:
                problems.append((("stores", i, "brand"), f"unknown brand '{s.brand}'"))
            if s.market not in markets:
                problems.append((("stores", i, "market"), f"unknown market '{s.market}'"))
        for i, e in enumerate(self.events):
            if e.product is not None and e.product not in products:
                problems.append((("events", i, "product"), f"unknown product '{e.product}'"))
            for b in ([e.brand] if e.brand else []) + list(e.brands or []):
                if b not in brands:
                    problems.append((("events", i, "brand"), f"unknown brand '{b}'"))
            if e.market is not None and e.market not in markets:
                problems.append((("events", i, "market"), f"unknown market '{e.market}'"))
        for i, t in enumerate(self.targets):
            if t.brand not in brands:
                problems.append((("targets", i, "brand"), f"unknown brand '{t.brand}'"))
            if parse_month(t.by) < parse_month(t.start):
                problems.append((("targets", i, "by"), f"by {t.by} is before start {t.start}"))
        for i, tr in enumerate(self.policies.tariffs):
            if tr.market not in markets:
                problems.append((("policies", "tariffs", i, "market"), f"unknown market '{tr.market}'"))
        for i, mk in enumerate(self.markets):
            total = sum(mk.city_tiers.values())
            if abs(total - 1.0) > 1e-6:
                problems.append((("markets", i, "city_tiers"), f"shares sum to {total:g}, not 1"))
            missing = set(mk.city_tiers) - set(mk.store_reach)
            if missing:
                problems.append((("markets", i, "store_reach"), f"no reach for city tiers {sorted(missing)}"))
        problems += self._ensemble_problems()
        if problems:
            raise _CrossReferenceError(problems)
        return self

    def _ensemble_problems(self) -> list[tuple[Path_, str]]:
        """Every member's paths exist and its values give a valid scenario."""
        if self.ensemble is None:
            return []
        problems: list[tuple[Path_, str]] = []
        members = self.ensemble.members
        if self.ensemble.assign == "cycle" and len({m.weight for m in members}) > 1:
            problems.append((("ensemble", "assign"), "'cycle' uses every member equally; the weights differ (use 'draw')"))
        data = self.model_dump(mode="json", exclude={"ensemble"})
        for i, member in enumerate(members):
            where: Path_ = ("ensemble", "members", i, "set")
            trial = json.loads(json.dumps(data))
            bad = False
            for path, value in member.set.items():
                msg = _missing_path(self, path)
                if msg is None:
                    try:
                        apply_override(trial, path, value)
                    except InputError as exc:
                        msg = str(exc).removeprefix(f"--set {path}: ")
                if msg is not None:
                    problems.append((where + (path,), msg))
                    bad = True
            if bad:
                continue
            try:
                Scenario.model_validate(trial)
            except ValidationError as exc:
                err = exc.errors()[0]
                text = err["msg"].removeprefix("Value error, ")
                problems.append((where, f"gives an invalid scenario: {format_path(tuple(err['loc']))}: {text}"))
        return problems

    # convenience -------------------------------------------------------------
    @property
    def start_index(self) -> int:
        return parse_month(self.start)

    @property
    def end_index(self) -> int:
        return parse_month(self.end)

    @property
    def n_months(self) -> int:
        return self.end_index - self.start_index + 1

    def months(self) -> list[str]:
        return [format_month(i) for i in range(self.start_index, self.end_index + 1)]

    def canonical_json(self) -> str:
        """Stable JSON of the resolved scenario (what the hash is taken of)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)

    def hash(self) -> str:
        """SHA-256 of the resolved scenario, first 16 hex digits."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


def _missing_path(scenario: Scenario, path: str) -> str | None:
    """Why ``path`` (as ``--set`` takes it) names no existing value of ``scenario``; None if it does."""
    try:
        parts = _parse_path(path)
    except InputError as exc:
        return str(exc)
    if parts[0] in ("ensemble", "extends", "name"):
        return f"'{parts[0]}' cannot be set by an ensemble member"
    node: Any = scenario
    for depth, part in enumerate(parts):
        where = ".".join(str(p) for p in parts[: depth + 1])
        if isinstance(node, BaseModel):
            if not isinstance(part, str) or part not in type(node).model_fields:
                return f"no field '{part}' at {where}"
            node = getattr(node, part)
        elif isinstance(node, dict):
            if part not in node:
                return f"no key '{part}' at {where} (keys: {_few(set(map(str, node)))})"
            node = node[part]
        elif isinstance(node, list):
            if isinstance(part, int):
                if not -len(node) <= part < len(node):
                    return f"index {part} out of range ({len(node)} items) at {where}"
                node = node[part]
            else:
                hits = [it for it in node if getattr(it, "name", None) == part]
                if not hits:
                    return f"no item named '{part}' at {where}"
                node = hits[0]
        else:
            return f"cannot descend into a value at {where}"
    return None


def _few(names: set[str]) -> str:
    s = sorted(names)
    return ", ".join(s[:8]) + (", ..." if len(s) > 8 else "")


class _CrossReferenceError(ValueError):
    def __init__(self, problems: list[tuple[Path_, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{format_path(p)}: {m}" for p, m in problems))


# --------------------------------------------------------------- merging (extends)

#: Lists whose items merge by key instead of being replaced.
NAMED_LISTS: dict[str, tuple[str, ...]] = {
    "markets": ("name",),
    "segments": ("name",),
    "brands": ("name",),
    "products": ("name",),
    "targets": ("name",),
    "stores": ("brand", "market", "channel"),
    "tariffs": ("name",),
    "subsidies": ("name",),
}
_STORE_DEFAULTS = {"market": "CN", "channel": "direct"}
#: ``key: {append: [...]}`` adds to an inherited list; ``key: {replace: [...]}`` replaces it explicitly.
LIST_OPERATIONS = ("append", "replace")


def _item_key(list_name: str, item: Any) -> tuple[Any, ...] | None:
    keys = NAMED_LISTS.get(list_name)
    if keys is None or not isinstance(item, dict):
        return None
    if list_name == "stores":
        return tuple(item.get(k, _STORE_DEFAULTS.get(k)) for k in keys)
    if keys[0] not in item:
        return None
    return tuple(item[k] for k in keys)


def _merge(
    base: Any,
    base_locs: dict[Path_, Location],
    over: Any,
    over_locs: dict[Path_, Location],
    bpath: Path_,
    opath: Path_,
    out_locs: dict[Path_, Location],
    list_name: str | None = None,
) -> Any:
    """Merge ``over`` onto ``base``; write the location of each merged path to ``out_locs``."""

    def copy_locs(src: dict[Path_, Location], from_path: Path_, to_path: Path_) -> None:
        n = len(from_path)
        for p, loc in src.items():
            if p[:n] == from_path:
                out_locs[to_path + p[n:]] = loc

    if isinstance(over, dict) and len(over) == 1 and next(iter(over)) in LIST_OPERATIONS:
        op, items = next(iter(over.items()))
        if not isinstance(items, list):
            raise InputError(Problem(f"'{op}' takes a list", over_locs.get(opath + (op,)), format_path(opath + (op,))))
        if op == "append" and base is not None and not isinstance(base, list):
            raise InputError(Problem("'append' applies to a list, but the inherited value is not one",
                                     over_locs.get(opath + (op,)), format_path(opath)))
        kept = list(base) if (op == "append" and isinstance(base, list)) else []
        if kept:
            copy_locs(base_locs, bpath, opath)
        n = len(kept)
        for p_, loc in over_locs.items():
            if p_[: len(opath) + 1] == opath + (op,) and len(p_) > len(opath) + 1:
                i = p_[len(opath) + 1]
                if isinstance(i, int):
                    out_locs[opath + (n + i,) + p_[len(opath) + 2 :]] = loc
        if opath in over_locs:
            out_locs[opath] = over_locs[opath]
        return kept + list(items)
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        copy_locs(base_locs, bpath, bpath if bpath == opath else opath)
        for key, value in over.items():
            if key in base:
                out[key] = _merge(
                    base[key], base_locs, value, over_locs, bpath + (key,), opath + (key,), out_locs, key
                )
            elif isinstance(value, dict) and len(value) == 1 and next(iter(value)) in LIST_OPERATIONS:
                out[key] = _merge(None, base_locs, value, over_locs, bpath + (key,), opath + (key,), out_locs, key)
            else:
                out[key] = value
                copy_locs(over_locs, opath + (key,), opath + (key,))
        if opath in over_locs:
            out_locs[opath] = over_locs[opath]
        return out
    if isinstance(base, list) and isinstance(over, list) and list_name in NAMED_LISTS:
        # Merge by name; new items go at the end; `remove: true` deletes.
        merged: list[Any] = []
        merged_src: list[tuple[dict[Path_, Location], Path_]] = []
        index: dict[tuple[Any, ...], int] = {}
        for i, item in enumerate(base):
            key = _item_key(list_name, item)
            if key is not None:
                index[key] = len(merged)
            merged.append(item)
            merged_src.append((base_locs, bpath + (i,)))
        removed: set[int] = set()
        written: dict[tuple[Any, ...], int] = {}
        for j, item in enumerate(over):
            key = _item_key(list_name, item)
            if key is not None and key in written:
                # Two items of one file that update the same inherited item: the second would silently win.
                raise InputError(
                    Problem(
                        f"duplicate name '{'/'.join(map(str, key))}' (also {list_name}[{written[key]}] of this file)",
                        over_locs.get(opath + (j,)),
                        format_path(opath + (j,)),
                    )
                )
            if key is not None:
                written[key] = j
            if key is not None and key in index:
                k = index[key]
                if isinstance(item, dict) and item.get("remove") is True:
                    removed.add(k)
                    continue
                tmp: dict[Path_, Location] = {}
                src_locs, src_path = merged_src[k]
                merged[k] = _merge(merged[k], src_locs, item, over_locs, src_path, opath + (j,), tmp, None)
                merged_src[k] = (tmp, opath + (j,))
            else:
                if isinstance(item, dict) and item.get("remove") is True:
                    raise InputError(
                        Problem(
                            f"cannot remove '{key[0] if key else item}': no such item inherited",
                            over_locs.get(opath + (j,)),
                            format_path(opath + (j,)),
                        )
                    )
                merged.append(item)
                merged_src.append((over_locs, opath + (j,)))
        result: list[Any] = []
        for k, item in enumerate(merged):
            if k in removed:
                continue
            src_locs, src_path = merged_src[k]
            new_path = opath + (len(result),)
            n = len(src_path)
            for p, loc in src_locs.items():
                if p[:n] == src_path:
                    out_locs[new_path + p[n:]] = loc
            result.append(item)
        if opath in over_locs:
            out_locs[opath] = over_locs[opath]
        return result
    copy_locs(over_locs, opath, opath)
    return over


def resolve_document(path: str | Path, _chain: tuple[str, ...] = ()) -> Document:
    """Read a scenario file and everything it extends, merged, with locations."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(
            Problem(
                f"a scenario must be a mapping of keys (name, start, ...), got {type(doc.data).__name__}",
                Location(str(path), 1),
            )
        )
    key = str(path.resolve())
    if key in _chain:
        raise InputError(
            Problem(
                "extends forms a cycle: " + " -> ".join(Path(c).name for c in _chain + (key,)),
                doc.where(("extends",)),
                "extends",
            )
        )
    parent = doc.data.get("extends")
    if parent is None:
        return doc
    if not isinstance(parent, str):
        raise InputError(Problem("must be a file path", doc.where(("extends",)), "extends"))
    parent_path = (path.parent / parent).resolve()
    if not parent_path.is_file():
        raise InputError(
            Problem(f"extends '{parent}', which does not exist ({parent_path})", doc.where(("extends",)), "extends")
        )
    base = resolve_document(parent_path, _chain + (key,))
    out_locs: dict[Path_, Location] = {}
    merged = _merge(base.data, base.locations, doc.data, doc.locations, (), (), out_locs)
    merged["extends"] = parent
    # The child's own 'name' wins; inherit nothing else silently.
    return Document(merged, out_locs, str(path))


# ------------------------------------------------------------------ overrides


def _parse_path(text: str) -> list[str | int]:
    """``products.AITO M6.price`` / ``events[2].month`` -> path parts."""
    parts: list[str | int] = []
    for chunk in text.split("."):
        while "[" in chunk and chunk.endswith("]"):
            head, _, rest = chunk.partition("[")
            if head:
                parts.append(head)
            idx, _, chunk = rest.partition("]")
            try:
                parts.append(int(idx))
            except ValueError:
                raise InputError(f"--set {text}: '[{idx}]' is not a list index") from None
        if chunk:
            parts.append(chunk)
    if not parts:
        raise InputError(f"--set: empty path in '{text}'")
    return parts


def apply_override(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (dotted; list items by ``[i]`` or by name) to ``value`` in ``data``."""
    parts = _parse_path(path)
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(str(p) for p in parts[: depth + 1])
        if isinstance(node, list):
            if isinstance(part, int):
                if not -len(node) <= part < len(node):
                    raise InputError(f"--set {path}: index {part} out of range ({len(node)} items) at {where}")
                idx = part
            else:
                names = [it.get("name") if isinstance(it, dict) else None for it in node]
                if part not in names:
                    raise InputError(f"--set {path}: no item named '{part}' at {where}")
                idx = names.index(part)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if isinstance(part, int):
                raise InputError(f"--set {path}: '{where}' is not a list")
            if last:
                node[part] = value
            else:
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
        else:
            raise InputError(f"--set {path}: cannot descend into a value at {where}")


def parse_set_option(text: str) -> tuple[str, Any]:
    """``"buyers.price_sensitivity=1.2"`` -> ``("buyers.price_sensitivity", 1.2)`` (value parsed as YAML)."""
    if "=" not in text:
        raise InputError(f"--set '{text}': expected path=value")
    path, _, raw = text.partition("=")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return path.strip(), value


# ----------------------------------------------------------------- validation


def _problems_from_validation(exc: ValidationError, doc: Document) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _CrossReferenceError):
            for p, msg in ctx_err.problems:
                problems.append(Problem(msg, doc.where(loc + p), format_path(loc + p)))
            continue
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _suggest(loc, doc)
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            got = err.get("input")
            if err["type"] not in ("value_error", "assertion_error") and not isinstance(got, (dict, list)):
                msg += f", got {got!r}"
        problems.append(Problem(msg, doc.where(loc), format_path(loc)))
    return problems


def _suggest(loc: Path_, doc: Document) -> str:
    import difflib

    key = loc[-1]
    if not isinstance(key, str):
        return ""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return ""
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        model = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return ""
    fields = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(key, fields, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(fields)})"


def validate_document(doc: Document) -> Scenario:
    """Validate merged scenario data into a :class:`Scenario`."""
    try:
        return Scenario.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError(_problems_from_validation(exc, doc)) from None


def load_scenario(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> Scenario:
    """Read, merge (``extends``), override and validate a scenario file.

    Args:
        path: the YAML file.
        overrides: ``{"products.AITO M6.price": 260000, ...}`` applied after merging.

    Raises:
        InputError: for any problem, naming file, line and field.
    """
    doc = resolve_document(path)
    for key, value in (overrides or {}).items():
        apply_override(doc.data, key, value)
        # Errors in an overridden value point at the override, not at the file's line.
        parts = tuple(_parse_path(key))
        resolved = _resolved_path(doc.data, parts)
        n = len(resolved)
        for p in [p for p in doc.locations if p[:n] == resolved]:
            del doc.locations[p]
        doc.locations[resolved] = Location(f"<--set {key}>", 1)
    return validate_document(doc)


def _resolved_path(data: Any, parts: tuple[str | int, ...]) -> Path_:
    """The override path with list items named by name turned into indices."""
    out: list[str | int] = []
    node = data
    for part in parts:
        if isinstance(node, list) and isinstance(part, str):
            names = [it.get("name") if isinstance(it, dict) else None for it in node]
            part = names.index(part)
        out.append(part)
        if isinstance(node, list) and isinstance(part, int):
            node = node[part]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            node = None
    return tuple(out)


def scenario_schema() -> dict[str, Any]:
    """JSON Schema of a scenario file."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sim scenario"
    return schema
