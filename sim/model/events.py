"""Dated events, read once when a model is built: each event of a scenario goes one way, by its type.

* An event that changes *what is on offer* edits the calendar's schedules from its month on
  (:data:`SCHEDULE_EVENTS`, folded into the :class:`~sim.model.calendar.Calendar`'s arrays):
  ``price`` (the list price), ``refresh`` (appeal, price, smartness, the announcement before it,
  the product's age), ``appeal`` (a product's or a brand's appeal), ``capacity`` (full capacity,
  for a window), ``discontinue`` (the last month on sale).
* An event that changes *the state of an agent or of the market* becomes a record in
  ``Calendar.events[t]`` (:data:`AGENT_EVENTS`): ``stores`` (:class:`StoreChange`: a dealer network
  grows or shrinks, possibly over months) and ``discount`` (:class:`DiscountChange`: a brand's
  discount, which its pricing rule then moves on from). A record names brands and markets by index
  and makes its change itself (:meth:`AgentEvent.apply`): ``MarketModel.step`` applies the month's
  records in order and knows no event type.

A new event type is its fields in :mod:`sim.scenario.events` and, here, one function and its entry
in one of the two tables (with, for a record, its class and ``apply``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from sim.model.agents import Dealer
from sim.scenario.months import parse_month
from sim.scenario.schema import Stores

if TYPE_CHECKING:
    from sim.model.market_model import MarketModel
    from sim.scenario.events import Event
    from sim.scenario.schema import Scenario

F = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]


# ------------------------------------------------------------------ events folded into the schedules


@dataclass
class Schedules:
    """The arrays events edit while the calendar is compiled (T x P, brand appeal T x B).

    ``price`` is the entry trim's list price; ``premium_scale`` multiplies the other trims' premiums
    over it (a ``factor`` moves every trim, a new ``price`` moves the entry and keeps the premiums).
    """

    start: int
    brand_names: list[str]
    product_index: dict[str, int]
    price: F
    premium_scale: F
    appeal: F
    brand_appeal: F
    smart: F
    pre_refresh: B
    capacity_full: F
    capacity_factor: F
    end: I64
    renewed: F

    def product(self, ev: Event) -> int | None:
        """The index of the event's product (None: it names none)."""
        return self.product_index.get(ev.product) if ev.product else None

    def month(self, ev: Event) -> int:
        """The event's month ``t`` (negative before the run, ``T`` or more after it)."""
        return parse_month(ev.month) - self.start

    def from_month(self, ev: Event) -> slice:
        """The months from the event's on."""
        T = self.price.shape[0]
        t0 = self.month(ev)
        return slice(max(t0, 0), T) if t0 < T else slice(T, T)


def _price_event(s: Schedules, ev: Event) -> None:
    """A new list price (of the entry trim: the other trims keep their premiums in RMB), or every
    trim's price times ``factor``, from the event's month on."""
    j = s.product(ev)
    if j is None:
        return
    if ev.price is not None:
        s.price[s.from_month(ev), j] = ev.price
    else:
        s.price[s.from_month(ev), j] *= ev.factor  # type: ignore[operator,arg-type]  # a price event has one or the other
        s.premium_scale[s.from_month(ev), j] *= ev.factor  # type: ignore[operator,arg-type]


def _appeal_event(s: Schedules, ev: Event) -> None:
    """A product's appeal (or, without a product, its brand's) changes by ``appeal`` utils from the event's month on."""
    if ev.appeal is None:
        return
    j = s.product(ev)
    if j is not None:
        s.appeal[s.from_month(ev), j] += ev.appeal
    elif ev.brand is not None:
        s.brand_appeal[s.from_month(ev), s.brand_names.index(ev.brand)] += ev.appeal


def _refresh_event(s: Schedules, ev: Event) -> None:
    """A new version: its appeal change, price and smartness from its month on; buyers hold back
    ``announce_months`` before it; with ``renew`` the product's age starts again."""
    _appeal_event(s, ev)
    j = s.product(ev)
    if j is None:
        return
    t0 = s.month(ev)
    if ev.price is not None:
        s.price[s.from_month(ev), j] = ev.price
    if ev.smart is not None:
        s.smart[s.from_month(ev), j] = ev.smart
    if ev.announce_months:
        s.pre_refresh[max(t0 - ev.announce_months, 0) : max(t0, 0), j] = True
    if ev.renew:
        s.renewed[s.from_month(ev), j] = s.start + t0


def _capacity_event(s: Schedules, ev: Event) -> None:
    """Full capacity set, or multiplied by ``factor``, from the event's month to ``until`` (inclusive) or the end."""
    j = s.product(ev)
    if j is None:
        return
    T = s.price.shape[0]
    t0 = s.month(ev)
    stop = T if ev.until is None else min(parse_month(ev.until) - s.start + 1, T)
    window = slice(max(t0, 0), max(stop, 0))
    if ev.capacity is not None:
        s.capacity_full[window, j] = ev.capacity
    if ev.factor is not None:
        s.capacity_factor[window, j] *= ev.factor


def _discontinue_event(s: Schedules, ev: Event) -> None:
    """The product's last month on sale is the month before the event's (or its own end, if earlier)."""
    j = s.product(ev)
    if j is not None:
        s.end[j] = min(s.end[j], parse_month(ev.month) - 1)


#: Events folded into the arrays, by type: each edits the schedules from its month on.
SCHEDULE_EVENTS: dict[str, Callable[[Schedules, Event], None]] = {
    "price": _price_event,
    "refresh": _refresh_event,
    "appeal": _appeal_event,
    "capacity": _capacity_event,
    "discontinue": _discontinue_event,
}


# ------------------------------------------------------------------ events handed to the model


class AgentEvent(Protocol):
    """What ``Calendar.events`` holds: a dated change of an agent's (or the market's) state."""

    def apply(self, model: MarketModel) -> None:
        """Make the change in ``model``, in the event's month (before the brands price)."""


@dataclass(frozen=True)
class StoreChange:
    """A brand's store network in a market changes (a ``stores`` event).

    Attributes:
        brand: the brand's index. market: the market's index.
        channel: the network's channel; None: the brand's first network in the market, whatever its channel.
        count: the new number of stores (None: unchanged before ``add``).
        add: stores added (negative: closed), or None.
        over_months: months the change is spread over, in equal monthly steps (1: at once).
    """

    brand: int
    market: int
    channel: str | None
    count: float | None
    add: float | None
    over_months: int

    def apply(self, model: MarketModel) -> None:
        self.network(model).open_stores(self.count, self.add, self.over_months)

    def network(self, model: MarketModel) -> Dealer:
        """The store network the event changes: the brand's first in the market (of the event's channel,
        if it names one), or a new one with no stores yet."""
        for d in model.dealers:
            if d.brand == self.brand and d.market == self.market and (self.channel is None or d.channel == self.channel):
                return d
        config = Stores(brand=model.brand_names[self.brand], market=model.market_names[self.market],
                        channel=self.channel or "direct", count=0)  # fmt: skip
        d = Dealer(model, config, self.brand, self.market)
        model.dealers.append(d)
        return d


@dataclass(frozen=True)
class DiscountChange:
    """Brands change their discount off the list price (a ``discount`` event).

    Either a level (``discount``), which replaces the brand's own and which its pricing rule then
    moves on from, or a change (``add``) on top of whatever the rule sets, in force from the
    event's month to ``until``.

    Attributes:
        brands: the brands' indices.
        discount: the new level, share of the list price (None: a change, ``add``).
        floor: the level is also the brands' lowest from now on.
        add: points of the list price added to the rule's discount (None: a level).
        until: month index of the change's last month (None: to the end).
        cap: the highest discount charged while the change is on (None: no more than the list price).
    """

    brands: tuple[int, ...]
    discount: float | None
    floor: bool
    add: float | None = None
    until: int | None = None
    cap: float | None = None

    def apply(self, model: MarketModel) -> None:
        for b in self.brands:
            if self.discount is not None:
                model.brand_agents[b].set_discount(self.discount, self.floor)
            if self.add is not None:
                model.brand_agents[b].change_discount(self.add, self.until, self.cap)


def _stores_event(ev: Event, brand_names: list[str], market_names: list[str]) -> tuple[AgentEvent, ...]:
    market_index = market_names.index(ev.market) if ev.market else 0
    return (StoreChange(brand_names.index(ev.brand), market_index, ev.channel, ev.count, ev.add, ev.over_months),)  # type: ignore[arg-type]


def _discount_event(ev: Event, brand_names: list[str], market_names: list[str]) -> tuple[AgentEvent, ...]:
    names = ([ev.brand] if ev.brand else []) + list(ev.brands or [])
    until = parse_month(ev.until) if ev.until is not None else None
    return (DiscountChange(tuple(brand_names.index(n) for n in names), ev.discount, ev.floor, ev.add, until, ev.max_discount),)


#: Events handed to the agents in their month, by type: each becomes typed records (brand and market indices).
AGENT_EVENTS: dict[str, Callable[[Event, list[str], list[str]], tuple[AgentEvent, ...]]] = {
    "stores": _stores_event,
    "discount": _discount_event,
}


def agent_events(config: Scenario) -> tuple[tuple[AgentEvent, ...], ...]:
    """The events that change agents' state, per month of the run (events outside the run are dropped)."""
    brands = [b.name for b in config.brands]
    markets = [m.name for m in config.markets]
    by_month: list[list[AgentEvent]] = [[] for _ in range(config.n_months)]
    for ev in config.events:
        t = parse_month(ev.month) - config.start_index
        if ev.type in AGENT_EVENTS and 0 <= t < config.n_months:
            by_month[t].extend(AGENT_EVENTS[ev.type](ev, brands, markets))
    return tuple(tuple(month) for month in by_month)
