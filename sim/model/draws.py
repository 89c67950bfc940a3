"""A run's draws of what its forecast does not know (the scenario's ``uncertainty`` section).

Every draw comes from a stream of its own, derived from the run's seed and the name of what is
drawn (``SeedSequence(entropy, spawn_key=(*run's key, UNCERTAINTY_STREAM, kind, crc32(name)))``):
a brand's drift, a market's size, a product's capacity or appeal. The model's own stream is not
touched, so a scenario without uncertainty runs exactly as before, and two scenarios run with the
same seed share the draws of every item they share (common random numbers): adding a product to a
scenario leaves every other item's draws as they were.

What is drawn (:mod:`sim.scenario.uncertainty` gives the meaning):

* at construction, :func:`draw` fixes the market's level and growth, the capacities drawn from
  their ranges and the new products' appeal, and :func:`apply` folds them into the calendar from
  the first uncertain month on;
* month by month, :class:`Drift` walks each brand's and product's appeal (utils) from that month
  on; its state is part of the model's state (:attr:`Drift.brand`, :attr:`Drift.product`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.scenario.months import parse_month

if TYPE_CHECKING:
    from sim.model.calendar import Calendar
    from sim.scenario.schema import Scenario

#: Spawn-key suffix of the uncertainty streams (the ensemble member's is 2**32 - 1).
UNCERTAINTY_STREAM = 2**32 - 2
#: Second key of each kind of item drawn.
KINDS = {"brand": 1, "product": 2, "market": 3, "capacity": 4, "appeal": 5}


def item_stream(seed: np.random.SeedSequence, kind: str, name: str) -> np.random.Generator:
    """The generator of one named item's draws, derived from the run's seed sequence."""
    key = (*seed.spawn_key, UNCERTAINTY_STREAM, KINDS[kind], zlib.crc32(name.encode("utf-8")))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed.entropy, spawn_key=key)))


def first_uncertain_month(config: Scenario) -> int:
    """Month index from which the draws apply: ``uncertainty.start``, else ``forecast_start``, else the start."""
    u = config.uncertainty
    return parse_month(u.start or config.forecast_start or config.start)


@dataclass(frozen=True)
class Draws:
    """The fixed draws of one run.

    Attributes:
        start: position in the run (month ``t``) of the first uncertain month.
        market: per market, ``(level, growth)``: log level and log growth a year.
        capacity: per product with a capacity range, the full capacity drawn (units a month).
        appeal: per product first delivered from the start on, the appeal shift drawn (utils).
    """

    start: int
    market: dict[str, tuple[float, float]]
    capacity: dict[str, float]
    appeal: dict[str, float]

    @property
    def any(self) -> bool:
        return bool(self.market or self.capacity or self.appeal)

    def record(self) -> dict[str, Any]:
        """The draws as plain data, for the runs table."""
        out: dict[str, Any] = {}
        if self.market:
            out["market"] = {k: [round(a, 6), round(b, 6)] for k, (a, b) in self.market.items()}
        if self.capacity:
            out["capacity"] = {k: round(v, 1) for k, v in self.capacity.items()}
        if self.appeal:
            out["appeal"] = {k: round(v, 6) for k, v in self.appeal.items()}
        return out


def draw(config: Scenario, seed: np.random.SeedSequence) -> Draws:
    """The run's fixed draws: market level and growth, ranged capacities, new products' appeal."""
    u = config.uncertainty
    first = first_uncertain_month(config)
    start = max(first - config.start_index, 0)
    market = {}
    if u.market_level > 0 or u.market_growth > 0:
        for mk in config.markets:
            z = item_stream(seed, "market", mk.name).standard_normal(2)
            market[mk.name] = (float(u.market_level * z[0]), float(u.market_growth * z[1]))
    capacity = {}
    for p in config.products if u.capacity_ranges else ():
        r = p.capacity.range
        if r is not None:
            capacity[p.name] = float(item_stream(seed, "capacity", p.name).uniform(r.low, r.high))
    appeal = {}
    if u.new_product_appeal > 0:
        for p in config.products:
            if parse_month(p.delivery_start or p.launch) >= first:
                appeal[p.name] = float(u.new_product_appeal * item_stream(seed, "appeal", p.name).standard_normal())
    return Draws(start, market, capacity, appeal)


def apply(calendar: Calendar, draws: Draws, config: Scenario) -> Calendar:
    """The calendar with the run's draws folded in from their first month on (a new calendar)."""
    if not draws.any:
        return calendar
    t0 = draws.start
    changes: dict[str, Any] = {}
    if draws.market:
        arrivals = calendar.arrivals.copy()
        years = (np.arange(calendar.months.size) - t0) / 12.0
        for m, name in enumerate(calendar.market_names):
            if name in draws.market:
                level, growth = draws.market[name]
                arrivals[t0:, m] *= np.exp(level + growth * years[t0:])
        changes["arrivals"] = arrivals
    if draws.capacity:
        full, cap = calendar.capacity_full.copy(), calendar.capacity.copy()
        nominal = {p.name: p.capacity.max for p in config.products}
        for j, name in enumerate(calendar.product_names):
            if name in draws.capacity and nominal[name] > 0:
                factor = draws.capacity[name] / nominal[name]
                full[t0:, j] *= factor
                cap[t0:, j] = np.floor(cap[t0:, j] * factor + 1e-9)
        changes["capacity_full"], changes["capacity"] = full, cap
    if draws.appeal:
        appeal = calendar.appeal.copy()
        for j, name in enumerate(calendar.product_names):
            appeal[:, j] += draws.appeal.get(name, 0.0)
        changes["appeal"] = appeal
    for a in changes.values():
        a.flags.writeable = False
    return replace(calendar, **changes)


class Drift:
    """Each brand's and product's appeal drift (utils): an offset at the first uncertain month, then a
    random walk.

    At month ``start`` each walk takes its first value, ``level * z0 + step * z1`` (the offset the
    data leave at the origin and the month's step); each later month adds ``step * z``.

    Attributes:
        brand: each brand's drift now (B). product: each product's own drift now (P).
        start: the month ``t`` of the first step.
    """

    def __init__(self, config: Scenario, seed: np.random.SeedSequence, start: int):
        u = config.uncertainty
        # Each brand's factor (uncertainty.brand_scale) on its offset and steps, and on its products' own.
        brand_f = np.array([u.brand_scale.get(b.name, 1.0) for b in config.brands], float)
        product_f = np.array([u.brand_scale.get(p.brand, 1.0) for p in config.products], float)
        self.brand_sd, self.product_sd = float(u.brand_drift) * brand_f, float(u.product_drift) * product_f
        self.brand_level, self.product_level = float(u.brand_level) * brand_f, float(u.product_level) * product_f
        self.level_df = float(u.level_df)
        self.start = start
        self.brand = np.zeros(len(config.brands))
        self.product = np.zeros(len(config.products))
        self._names = [b.name for b in config.brands], [p.name for p in config.products]
        self.reseed(seed)

    def reseed(self, seed: np.random.SeedSequence) -> None:
        """The walk's streams, one per brand and product (none when its scales are 0), derived from ``seed``
        by :func:`item_stream` (at construction, or to give a copy of a model streams of its own)."""
        brands, products = self._names
        on_brands = bool(np.any(self.brand_sd > 0) or np.any(self.brand_level > 0))
        on_products = bool(np.any(self.product_sd > 0) or np.any(self.product_level > 0))
        self.brand_streams = [item_stream(seed, "brand", b) for b in brands] if on_brands else []
        self.product_streams = [item_stream(seed, "product", p) for p in products] if on_products else []

    @property
    def active(self) -> bool:
        return bool(self.brand_streams or self.product_streams)

    def step(self, t: int) -> None:
        """One month of the walk (nothing before its first month; the offset and a step at it)."""
        if t < self.start:
            return
        if self.brand_streams:
            self.brand = self.brand + _steps(self.brand_streams, self.brand_sd, self.brand_level if t == self.start else None,
                                             self.level_df)
        if self.product_streams:
            self.product = self.product + _steps(
                self.product_streams, self.product_sd, self.product_level if t == self.start else None, self.level_df
            )


def _steps(streams: list[np.random.Generator], step: np.ndarray, level: np.ndarray | None, df: float = 0.0) -> np.ndarray:
    """One draw per stream: a step of sd ``step``, plus, at the first month, an offset of sd ``level`` (one sd
    per stream; normal, or Student-t of ``df`` degrees of freedom scaled to that sd: ``z * sqrt((df - 2) / chi2_df)``)."""
    if level is None:
        return step * np.array([g.standard_normal() for g in streams])
    z = np.array([g.standard_normal(2) for g in streams])
    if df > 0:
        z[:, 0] *= np.sqrt((df - 2.0) / np.array([g.chisquare(df) for g in streams]))
    return level * z[:, 0] + step * z[:, 1]
