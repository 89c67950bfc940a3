"""The calendar: a scenario compiled, once, into arrays by month, product and market.

A scenario says what happens when: launches and first deliveries, capacity and its ramp,
Spring Festival shutdowns, refreshes, price and appeal moves, the policy calendar, demand and
its seasons. :func:`compile_calendar` reads all of it when a model is built and returns a
:class:`Calendar` of frozen arrays indexed by month ``t`` (0: the scenario's first month),
product ``j``, market ``m`` and brand ``b``, built by the small pure functions below. The model
reads the calendar and holds only state.

Dated events are read here too, once, by :mod:`sim.model.events`: an event that changes what is on
offer is folded into the arrays (``SCHEDULE_EVENTS``), an event that changes an agent's state becomes
a record of ``Calendar.events[t]`` that the model applies in month ``t`` (``AGENT_EVENTS``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from sim.model import market
from sim.model.agents import TASTES
from sim.model.events import SCHEDULE_EVENTS, AgentEvent, Schedules, agent_events
from sim.model.policy import PolicyCalendar, policy_calendar
from sim.scenario.fields import POWERTRAINS
from sim.scenario.months import parse_month

if TYPE_CHECKING:
    from sim.scenario.schema import Scenario

F = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

#: Month index after any scenario's end: a product with no end date is never discontinued.
NEVER = 10**9


@dataclass(frozen=True)
class Calendar:
    """A scenario over its months: T months, P products, M markets, B brands, S segments.

    Month indices count months from January of year 0 (:func:`sim.scenario.months.parse_month`);
    ``t`` is a month's position in the run. Arrays are read-only.

    Attributes:
        start: month index of the first month.
        months: month index of each month (T).
        market_names, brand_names, product_names, segment_names: names, in the scenario's order.
        product_brand: each product's brand (P).
        powertrain: each product's powertrain, a name (P). powertrain_index: its position in ``POWERTRAINS``.
        electric_range: electric-only range, km (P).
        sold_in: whether each product is sold in each market (P x M).
        launch, delivery_start, end: month index of the launch (orders open), of the first
            deliveries and of the last month on sale (:data:`NEVER` if none), per product.
        max_wait: months of full capacity an order book may hold (P).
        ageing: utils lost per year of age: the buyers' common rate plus the product's own (P).
        attributes: the products' attributes in ``TASTES`` order, float32 (P x tastes); the
            ``smart`` column is set each month from ``smart``.
        stock_months: months of sales the product's brand keeps in stock (P; 0: build to order).
        discount_rule: whether each brand's pricing rule moves its discount in the month (T x B): in
            the data's months, and after them only for a brand whose ``pricing.forecast`` is ``rule``.
        segment_floor: lowest transaction price of each segment, RMB (S).
        price: base list price, RMB (T x P): with trims, their share-weighted mean (what buyers choose on).
        trim_price: each trim's base list price, RMB (T x P x K; K the most trims of a product; a
            product without trims is one trim at ``price``, slots past a product's trims are 0).
        trim_share: each trim's share of its product's units (P x K; 0 in unused slots).
        appeal: product appeal, utils (T x P).
        brand_appeal: brand appeal, utils (T x B).
        smart: smart-driving and cockpit score, 0..1 (T x P).
        pre_refresh: a refresh is announced and not yet out (T x P).
        age: years since launch or the last renewing refresh, 0 for a mature line (T x P).
        capacity_full: full monthly capacity, units, which order books are measured against (T x P).
        capacity: the month's capacity, units, with its ramp and shutdowns, whole (T x P).
        open: on sale in the market (T x P x M).
        deliverable: deliveries have started (T x P).
        arrivals: expected potential buyers arriving, people (T x M).
        policy: taxes, exemptions, subsidies and tariffs in force.
        events: the events that change agents' state, per month (T tuples).
    """

    start: int
    months: I64
    market_names: tuple[str, ...]
    brand_names: tuple[str, ...]
    product_names: tuple[str, ...]
    segment_names: tuple[str, ...]
    product_brand: NDArray[np.intp]
    powertrain: NDArray[np.str_]
    powertrain_index: NDArray[np.intp]
    electric_range: F
    sold_in: B
    launch: I64
    delivery_start: I64
    end: I64
    max_wait: F
    ageing: F
    attributes: NDArray[np.float32]
    stock_months: F
    discount_rule: B
    segment_floor: F
    price: F
    trim_price: F
    trim_share: F
    appeal: F
    brand_appeal: F
    smart: F
    pre_refresh: B
    age: F
    capacity_full: F
    capacity: F
    open: B
    deliverable: B
    arrivals: F
    policy: PolicyCalendar
    events: tuple[tuple[AgentEvent, ...], ...]

    def __post_init__(self) -> None:
        # Read-only, the policy's arrays too: the models of one scenario share its calendar (shared_calendar).
        for owner in (self, self.policy):
            for f in fields(owner):
                value = getattr(owner, f.name)
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False

    @property
    def n_months(self) -> int:
        return int(self.months.size)


# ------------------------------------------------------------------ products, supply and demand


def product_attributes(config: Scenario, product_brand: NDArray[np.intp]) -> NDArray[np.float32]:
    """The products' attributes in ``TASTES`` order (P x tastes): the brand's prestige, Huawei and
    domestic flags, powertrain, body and large (6+ seats) dummies; ``smart`` is left at 0."""
    prods, brands = config.products, config.brands
    attrs = np.zeros((len(prods), len(TASTES)), np.float32)
    col = {n: i for i, n in enumerate(TASTES)}
    attrs[:, col["prestige"]] = np.array([x.prestige for x in brands], float)[product_brand]
    attrs[:, col["huawei"]] = np.array([x.huawei for x in brands], float)[product_brand]
    attrs[:, col["domestic"]] = np.array([x.origin == "domestic" for x in brands], float)[product_brand]
    powertrain_index = np.array([POWERTRAINS.index(p.powertrain) for p in prods], np.intp)
    for k, pt in enumerate(POWERTRAINS):
        attrs[:, col[pt]] = powertrain_index == k
    body = np.array([p.body for p in prods])
    for kind in ("SUV", "MPV", "sedan"):
        attrs[:, col[kind]] = body == kind
    attrs[:, col["large"]] = np.array([p.seats for p in prods]) >= 6
    return attrs


def base_appeal(config: Scenario) -> F:
    """Each product's appeal, utils; a product ``appeal_like`` others adds its own to the mean of theirs."""
    prods = config.products
    index = {p.name: i for i, p in enumerate(prods)}
    appeal = np.array([p.appeal for p in prods], float)
    for i, p in enumerate(prods):
        if p.appeal_like:
            appeal[i] = p.appeal + float(np.mean([appeal[index[o]] for o in p.appeal_like if not prods[index[o]].appeal_like]))
    return appeal


def brand_appeal_trend(config: Scenario, months: I64) -> F:
    """Each brand's appeal by month (T x B), utils: ``appeal`` from ``appeal_trend_until`` on, and
    ``appeal_trend`` utils a year less for every year before it (more, for a falling brand)."""
    appeal = np.tile(np.array([b.appeal for b in config.brands], float), (months.size, 1))
    for b, brand in enumerate(config.brands):
        if brand.appeal_trend:
            until = parse_month(str(brand.appeal_trend_until))  # set whenever there is a trend
            appeal[:, b] -= brand.appeal_trend * np.maximum(until - months, 0) / 12.0
    return appeal


def working_share(config: Scenario, months: I64, made_in: NDArray[np.str_]) -> F:
    """Share of each month's output each product's plant works (T x P): 1, less the Spring
    Festival shutdown's share of the month in the market where it is made."""
    working = np.ones((months.size, made_in.size))
    for mk in config.markets:
        s = mk.seasonality
        made_here = made_in == mk.name
        if s.lunar_new_year_shutdown_days > 0 and made_here.any():
            for t, mi in enumerate(months.tolist()):
                lost = market.shutdown_share(mi // 12, mi % 12 + 1, s.lunar_new_year, s.lunar_new_year_shutdown_days)
                working[t, made_here] = 1.0 - lost
    return working


def monthly_capacity(
    config: Scenario, months: I64, capacity_full: F, factor: F, working: F, delivery_start: I64
) -> F:
    """Units each product can build a month (T x P), whole: the full capacity on its linear ramp
    from the capacity's start, times event factors and the working share; 0 before first deliveries."""
    prods = config.products
    start = np.array(
        [parse_month(p.capacity.start) if p.capacity.start else parse_month(p.delivery_start or p.launch) for p in prods]
    )
    ramp = np.array([p.capacity.ramp_months for p in prods])
    since = months[:, None] - start[None, :]
    capacity = np.floor(market.ramp_capacity(since, ramp[None, :], capacity_full) * factor * working + 1e-9)
    capacity[months[:, None] < delivery_start[None, :]] = 0.0
    return capacity


def ages(config: Scenario, months: I64, renewed: F, delivery_start: I64, since: F) -> F:
    """Years since launch or the last renewing refresh (``renewed``: its month, T x P). Lines already
    delivering at the start age from ``on_sale_since`` (``since``) when given; without it they are
    mature and do not age."""
    fresh = (delivery_start > config.start_index) | ~np.isnan(since)
    return np.where(fresh[None, :], np.maximum(months[:, None] - renewed, 0.0) / 12.0, 0.0)  # type: ignore[no-any-return]


def expected_arrivals(config: Scenario, months: I64) -> F:
    """Expected potential buyers arriving in each month and market (T x M), people: the market's
    rate at its reference month, grown by year, times its season."""
    arrivals = np.zeros((months.size, len(config.markets)))
    for m, mk in enumerate(config.markets):
        ref = parse_month(mk.reference_month)
        s = mk.seasonality
        for t, mi in enumerate(months.tolist()):
            year, mon = mi // 12, mi % 12 + 1
            season = market.seasonality_factor(
                year, mon, s.monthly, s.lunar_new_year, s.lunar_new_year_depth, s.lunar_new_year_window_days
            )
            arrivals[t, m] = market.expected_arrivals(
                mk.buyers_per_month, int(mi - ref), mk.growth_per_year, mk.growth.get(str(year), 1.0), season
            )
    return arrivals


def trims(config: Scenario) -> tuple[F, F]:
    """Each product's trims as premiums over its entry price, RMB, and shares of its units (P x K
    each; K the most trims of a product). A product without trims is one trim, premium 0, share 1."""
    k = max((len(p.trims) for p in config.products if p.trims), default=1)
    premium, share = np.zeros((len(config.products), k)), np.zeros((len(config.products), k))
    for j, p in enumerate(config.products):
        for i, trim in enumerate(p.trims or []):
            premium[j, i], share[j, i] = trim.premium, trim.share
        if not p.trims:
            share[j, 0] = 1.0
    return premium, share


def discount_rules(config: Scenario, months: I64) -> B:
    """Whether each brand's pricing rule moves its discount in each month (T x B): in the months
    before ``forecast_start`` (all, without one), and from it only for a brand whose ``pricing.forecast``
    is ``rule`` (the others hold the discount where the rule left it; discount events still move it)."""
    first = config.forecast_start
    history = months < parse_month(first) if first else np.ones(months.size, bool)
    goes_on = np.array([b.pricing.forecast == "rule" for b in config.brands])
    return history[:, None] | goes_on[None, :]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ the calendar


#: How many scenarios' calendars :func:`shared_calendar` keeps.
KEEP_CALENDARS = 4
#: The calendars :func:`shared_calendar` compiled lately, most recent last, with their scenario and its hash.
_compiled: list[tuple[Scenario, str, Calendar]] = []


def shared_calendar(config: Scenario) -> Calendar:
    """``compile_calendar(config)``, compiled once for each of the last few scenarios of the process, and shared.

    A calendar is frozen (read-only arrays), so every model of one scenario can read the same one: the
    runs of a batch in a worker, a filter's particles and the replicates branched from them compile it
    once instead of once per model. A scenario is known by identity, else by its hash (an equal
    scenario made anew, e.g. with the same overrides, shares the calendar).
    """
    for cfg, _, cal in _compiled:
        if cfg is config:
            return cal
    key = config.hash()
    found = [cal for _, h, cal in _compiled if h == key]
    cal = found[0] if found else compile_calendar(config)
    _compiled.append((config, key, cal))
    del _compiled[:-KEEP_CALENDARS]
    return cal


def compile_calendar(config: Scenario) -> Calendar:
    """The scenario's :class:`Calendar`: its products and markets, month by month, and its agents' events."""
    prods = config.products
    T = config.n_months
    months = np.arange(config.start_index, config.start_index + T)
    market_names = [m.name for m in config.markets]
    brand_names = [b.name for b in config.brands]
    product_brand = np.array([brand_names.index(p.brand) for p in prods], np.intp)
    powertrain = np.array([p.powertrain for p in prods])
    made_in = np.array([p.made_in for p in prods])
    sold_in = np.array([[m in p.markets for m in market_names] for p in prods], bool).reshape(len(prods), len(market_names))
    launch = np.array([parse_month(p.launch) for p in prods])
    delivery_start = np.array([parse_month(p.delivery_start or p.launch) for p in prods])
    since = np.array([parse_month(p.on_sale_since) if p.on_sale_since else np.nan for p in prods], float)
    premium, share = trims(config)
    s = Schedules(
        start=config.start_index,
        brand_names=brand_names,
        product_index={p.name: i for i, p in enumerate(prods)},
        price=np.tile(np.array([p.price for p in prods], float), (T, 1)),
        premium_scale=np.ones((T, len(prods))),
        appeal=np.tile(base_appeal(config), (T, 1)),
        brand_appeal=brand_appeal_trend(config, months),
        smart=np.tile(np.array([p.smart for p in prods], float), (T, 1)),
        pre_refresh=np.zeros((T, len(prods)), bool),
        capacity_full=np.tile(np.array([p.capacity.max for p in prods], float), (T, 1)),
        capacity_factor=np.ones((T, len(prods))),
        end=np.array([parse_month(p.end) if p.end else NEVER for p in prods]),
        renewed=np.tile(np.where(np.isnan(since), launch, since), (T, 1)),
    )
    for ev in config.events:
        if ev.type in SCHEDULE_EVENTS:
            SCHEDULE_EVENTS[ev.type](s, ev)
    capacity = monthly_capacity(
        config, months, s.capacity_full, s.capacity_factor, working_share(config, months, made_in), delivery_start
    )
    on_sale = (months[:, None] >= launch[None, :]) & (months[:, None] <= s.end[None, :])
    trim_price = (s.price[:, :, None] + s.premium_scale[:, :, None] * premium[None, :, :]) * (share > 0)[None, :, :]
    return Calendar(
        start=config.start_index,
        months=months,
        market_names=tuple(market_names),
        brand_names=tuple(brand_names),
        product_names=tuple(p.name for p in prods),
        segment_names=tuple(sg.name for sg in config.segments),
        product_brand=product_brand,
        powertrain=powertrain,
        powertrain_index=np.array([POWERTRAINS.index(p.powertrain) for p in prods], np.intp),
        electric_range=np.array([p.electric_range_km for p in prods], float),
        sold_in=sold_in,
        launch=launch,
        delivery_start=delivery_start,
        end=s.end,
        max_wait=np.array([p.max_wait_months for p in prods], float),
        ageing=config.buyers.ageing_per_year + np.array([p.ageing for p in prods], float),
        attributes=product_attributes(config, product_brand),
        stock_months=np.array([b.pricing.stock_months for b in config.brands], float)[product_brand],
        discount_rule=discount_rules(config, months),
        segment_floor=np.array([sg.min_price for sg in config.segments]),
        price=(trim_price * share[None, :, :]).sum(axis=2),
        trim_price=trim_price,
        trim_share=share,
        appeal=s.appeal,
        brand_appeal=s.brand_appeal,
        smart=s.smart,
        pre_refresh=s.pre_refresh,
        age=ages(config, months, s.renewed, delivery_start, since),
        capacity_full=s.capacity_full * s.capacity_factor,
        capacity=capacity,
        open=on_sale[:, :, None] & sold_in[None, :, :],
        deliverable=months[:, None] >= delivery_start[None, :],
        arrivals=expected_arrivals(config, months),
        policy=policy_calendar(config, months, made_in, powertrain, np.array(brand_names)[product_brand]),
        events=agent_events(config),
    )
