"""The scenario's schema: frozen, validated pydantic models of markets, buyers, brands,
stores, targets and ensembles, and the :class:`Scenario` that holds them with its
products (:mod:`sim.scenario.products`), policies (:mod:`sim.scenario.policies`) and events
(:mod:`sim.scenario.events`).

Read a file with :func:`sim.scenario.load.load_scenario`; every error names the file, the
line and the field, e.g. ``scenarios/m6.yaml:14: products[3].price: Input should be greater than 0``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from sim.scenario.errors import FieldErrors, few, located_problems
from sim.scenario.events import Event
from sim.scenario.fields import (
    Frozen,
    ItemName,
    Month,
    NonNeg,
    PlainName,
    PosFloat,
    Share,
)
from sim.scenario.months import format_month, parse_month
from sim.scenario.paths import PathError, apply_override, parse_path, value_at
from sim.scenario.policies import NAMED_POLICIES, Policies
from sim.scenario.products import Product
from sim.scenario.uncertainty import Uncertainty
from sim.scenario.yamlio import Document, Path_


class Seasonality(Frozen):
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


class Market(Frozen):
    """A country or region where buyers arrive and products are sold."""

    name: ItemName
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


class Segment(Frozen):
    """A price band by transaction price (RMB)."""

    name: ItemName
    min_price: NonNeg
    max_price: float | None = None


class Choice(Frozen):
    """The choice rule."""

    model: Literal["logit", "nested_logit"] = "nested_logit"
    nests: Literal["inside", "segment", "powertrain"] = Field(
        "inside", description="How inside products are grouped into nests (nested_logit only)."
    )
    nest_lambda: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.8, description="Nesting parameter lambda (1 = plain logit)."
    )


class Awareness(Frozen):
    """Bass-style awareness: A += (1 - A) * (p * advertising + q * owners / reference)."""

    innovation: NonNeg = Field(0.01, description="p, per month.")
    imitation: NonNeg = Field(0.4, description="q, per month.")
    reference_owners: PosFloat = Field(1_000_000, description="Owners that give the full q effect (people).")


class Taste(Frozen):
    mean: float = 0.0
    sd: NonNeg = 0.0
    trend_per_year: float = Field(0.0, description="Change of the mean per year after 2022-01.")


#: Largest ``income_elasticity x budget_sigma``: buyers' price sensitivities span ``exp(+-7 x this)``.
MAX_SENSITIVITY_SPREAD = 12.0


class Buyers(Frozen):
    """Buyer heterogeneity and behaviour."""

    budget_median: PosFloat = Field(320_000, description="Median budget, RMB.")
    budget_sigma: NonNeg = Field(0.45, le=5.0, description="Log-sd of budgets (at most 5: budgets 150 times apart "
                                 "within one sd).")
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

    @model_validator(mode="after")
    def _spread(self) -> Buyers:
        # A buyer's price sensitivity is alpha * exp(-eta * sigma * z): past this product the rare buyer
        # seven sd from the median would be beyond float32 (the model's arrays), inf instead of a number.
        if self.income_elasticity * self.budget_sigma > MAX_SENSITIVITY_SPREAD:
            raise FieldErrors([(("income_elasticity",), f"income_elasticity x budget_sigma is "
                                f"{self.income_elasticity * self.budget_sigma:g}; at most {MAX_SENSITIVITY_SPREAD:g} "
                                "(price sensitivities would spread beyond what the model's numbers hold)")])
        return self


class Pricing(Frozen):
    """A brand's discount rule: the discount moves toward a wait/stock target."""

    discount: Share = Field(0.0, description="Initial discount off list price.")
    min_discount: Share = 0.0
    max_discount: Share = 0.5
    response: NonNeg = Field(
        0.0, description="Discount change per month per unit of gap (0 = fixed discount)."
    )
    target_wait_months: NonNeg = Field(0.5, description="Build-to-order brands: wait they aim for.")
    stock_months: NonNeg = Field(0.0, description="Stock brands: months of sales held as inventory (0 = build to order).")
    forecast: Literal["hold", "rule"] = Field(
        "hold",
        description="From the scenario's forecast_start on: 'hold' keeps the discount where the rule left it, "
        "moved only by discount events; 'rule' lets the rule go on moving it.",
    )


class Brand(Frozen):
    name: ItemName
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


class Stores(Frozen):
    """A brand's store network of one channel in one market (a Dealer agent)."""

    brand: str
    market: str = "CN"
    channel: ItemName = "direct"
    count: NonNeg = Field(0, description="Stores at the scenario start.")
    weight: NonNeg = Field(1.0, description="Reach of one store of this channel relative to a dedicated store.")
    source: str = ""



class Target(Frozen):
    """A delivery target: ``units`` delivered by ``brand`` from ``start`` to ``by`` inclusive."""

    name: ItemName
    brand: str
    units: PosFloat
    start: Month
    by: Month
    reported_cumulative_at_start: NonNeg | None = Field(
        None, description="Reported cumulative deliveries when the window opens (for display)."
    )
    source: str = ""


class EnsembleMember(Frozen):
    """One parameter set of an ensemble: scenario values by path, with a weight."""

    weight: PosFloat = Field(1.0, description="Relative weight (normalised over the members).")
    set: dict[str, Any] = Field(
        min_length=1,
        description="Scenario values by path, as 'sim run --set' takes them, e.g. {'buyers.price_sensitivity': 0.8}.",
    )
    loss: float | None = Field(None, description="The calibration's distance of this member (for reports only).")


class Ensemble(Frozen):
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


class Scenario(Frozen):
    """A whole scenario, validated. Build with :func:`load_scenario`."""

    name: PlainName
    description: str = ""
    extends: str | None = None
    seed: int = Field(0, ge=0)
    start: Month
    end: Month
    forecast_start: Month | None = Field(
        None, description="First month that is a forecast: brands' pricing rules hold from it (pricing.forecast), "
        "reports shade from it, and uncertainty draws start there unless uncertainty.start says otherwise."
    )
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
    uncertainty: Uncertainty = Field(
        Uncertainty(), description="What a forecast does not know beyond the parameters: drift, market, new products."
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
            *((f"policies.{key}", getattr(self.policies, key)) for key in NAMED_POLICIES),
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
        by_name = {p.name: p for p in self.products}
        for i, brand in enumerate(self.brands):
            for m in brand.awareness:
                if m not in markets:
                    problems.append((("brands", i, "awareness", m), f"unknown market '{m}' (markets: {few(markets)})"))
        for i, p in enumerate(self.products):
            if p.brand not in brands:
                problems.append((("products", i, "brand"), f"unknown brand '{p.brand}' (brands: {few(brands)})"))
            for k, other in enumerate(p.appeal_like or []):
                if other not in products or other == p.name:
                    problems.append((("products", i, "appeal_like", k), f"unknown product '{other}'"))
                elif by_name[other].appeal_like:
                    # Only products with an appeal of their own are averaged (chains and cycles are not
                    # followed): a reference to another appeal_like product would count for nothing.
                    problems.append((("products", i, "appeal_like", k), f"'{other}' takes its own appeal from "
                                     "appeal_like; name products with an appeal of their own"))
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
        for name in self.uncertainty.brand_scale:
            if name not in brands:
                problems.append((("uncertainty", "brand_scale", name), f"unknown brand '{name}' (brands: {few(brands)})"))
        known = {"market": markets, "brand": brands}
        for key in NAMED_POLICIES:
            for i, item in enumerate(getattr(self.policies, key)):
                for where, kind, name in item.references():
                    if name not in known[kind]:
                        problems.append((("policies", key, i, *where), f"unknown {kind} '{name}'"))
        for i, mk in enumerate(self.markets):
            total = sum(mk.city_tiers.values())
            if abs(total - 1.0) > 1e-6:
                problems.append((("markets", i, "city_tiers"), f"shares sum to {total:g}, not 1"))
            missing = set(mk.city_tiers) - set(mk.store_reach)
            if missing:
                problems.append((("markets", i, "store_reach"), f"no reach for city tiers {sorted(missing)}"))
        problems += self._ensemble_problems()
        if problems:
            raise FieldErrors(problems)
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
                try:
                    head = parse_path(path)[0]
                    if head in ("ensemble", "extends", "name", "scale", "seed"):
                        raise PathError(path, f"'{head}' cannot be set by an ensemble member")
                    value_at(data, path)
                    apply_override(trial, path, value)
                except PathError as exc:
                    problems.append((where + (path,), exc.reason))
                    bad = True
            if bad:
                continue
            try:
                Scenario.model_validate(trial)
            except ValidationError as exc:
                first = located_problems(exc, Document(trial), Scenario)[0]
                problems.append((where, f"gives an invalid scenario: {first}"))
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
