"""The agents: buyers (array-backed), brands and dealers (store networks).

Buyers are many (up to ~500k a month), so their state lives in a
:class:`BuyerPool` of arrays and the monthly choice is vectorised; a
:class:`Buyer` is a Mesa agent created on demand as a view of one row, so any
buyer can be inspected the Mesa way without a Python call per buyer per month.
Brands and dealers are few and are ordinary Mesa agents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from sim.model.market_model import MarketModel
    from sim.scenario.schema import Brand as BrandConfig
    from sim.scenario.schema import Stores

#: Columns of a buyer's taste vector, in order; the price coefficient is appended last.
TASTES: tuple[str, ...] = (
    "prestige",
    "smart",
    "huawei",
    "domestic",
    "BEV",
    "EREV",
    "PHEV",
    "ICE",
    "SUV",
    "MPV",
    "sedan",
    "large",
)


@dataclass
class BuyerPool:
    """Buyers currently in the market, one row each (struct of arrays).

    Attributes:
        id: stable buyer id (increasing with arrival).
        market: market index.
        tier: city-tier index within the market.
        family: has a family (values 6+ seats).
        budget: most the buyer will pay, RMB.
        alpha: price sensitivity, utils per 100k RMB.
        taste: coefficients (rows x len(TASTES)).
        arrived: month index of arrival.
        choice: product index chosen this month, -1 = outside option, -2 = not yet chosen.
        leaves: True once the buyer has ordered or given up (dropped next month).
    """

    id: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    market: NDArray[np.int16] = field(default_factory=lambda: np.empty(0, np.int16))
    tier: NDArray[np.int16] = field(default_factory=lambda: np.empty(0, np.int16))
    family: NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, bool))
    budget: NDArray[np.float32] = field(default_factory=lambda: np.empty(0, np.float32))
    alpha: NDArray[np.float32] = field(default_factory=lambda: np.empty(0, np.float32))
    taste: NDArray[np.float32] = field(default_factory=lambda: np.empty((0, len(TASTES)), np.float32))
    arrived: NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    choice: NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    leaves: NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, bool))

    ARRAYS = ("id", "market", "tier", "family", "budget", "alpha", "taste", "arrived", "choice", "leaves")

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def keep(self, mask: NDArray[np.bool_]) -> None:
        """Keep only the rows where ``mask`` is true (order preserved)."""
        for name in self.ARRAYS:
            setattr(self, name, getattr(self, name)[mask])

    def extend(self, other: BuyerPool) -> None:
        """Append the rows of ``other``."""
        for name in self.ARRAYS:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))

    def row(self, buyer_id: int) -> int | None:
        """Row of a buyer id, or None if the buyer is no longer in the market."""
        i = int(np.searchsorted(self.id, buyer_id))
        return i if i < len(self) and self.id[i] == buyer_id else None


class Buyer(mesa.Agent):
    """A view of one buyer in the pool, as a Mesa agent (created on demand).

    Reading an attribute reads the pool; a buyer who has left the market reads
    as ``in_market == False``. Create them with :meth:`MarketModel.buyer_agents`.
    """

    def __init__(self, model: MarketModel, buyer_id: int):
        super().__init__(model)
        self.buyer_id = int(buyer_id)

    def _get(self, name: str) -> Any:
        pool = self.model.pool
        i = pool.row(self.buyer_id)
        if i is None:
            return None
        return getattr(pool, name)[i]

    @property
    def in_market(self) -> bool:
        return self.model.pool.row(self.buyer_id) is not None

    @property
    def budget(self) -> float | None:
        """Most the buyer will pay, RMB."""
        b = self._get("budget")
        return None if b is None else float(b)

    @property
    def price_sensitivity(self) -> float | None:
        """Utils per 100k RMB."""
        a = self._get("alpha")
        return None if a is None else float(a)

    @property
    def market(self) -> str | None:
        m = self._get("market")
        return None if m is None else self.model.market_names[int(m)]

    @property
    def family(self) -> bool | None:
        f = self._get("family")
        return None if f is None else bool(f)

    @property
    def tastes(self) -> dict[str, float] | None:
        t = self._get("taste")
        return None if t is None else dict(zip(TASTES, map(float, t), strict=True))

    @property
    def months_in_market(self) -> int | None:
        a = self._get("arrived")
        return None if a is None else int(self.model.month_index - a)

    @property
    def choice(self) -> str | None:
        """Product ordered this month, ``"outside"``, or None before choosing."""
        c = self._get("choice")
        if c is None or c == -2:
            return None
        return "outside" if c < 0 else self.model.product_names[int(c)]

    def __repr__(self) -> str:
        return f"Buyer(id={self.buyer_id}, market={self.market}, budget={self.budget}, choice={self.choice})"


class Brand(mesa.Agent):
    """A car brand: sets its discount each month and builds awareness.

    Attributes:
        name: brand name.
        discount: the discount off list price it charges this month (0..1): its rule's discount
            plus the changes in force (:meth:`set_prices`).
        rule_discount: the discount its pricing rule holds (moved by the rule and set by level events).
        floor: lowest discount its rule may set (raised by level events with ``floor``).
        changes: discount changes on top of the rule (``add`` events): ``(add, last month index or
            None, cap or None)``, in the order they came.
        config: the brand's scenario entry.
    """

    def __init__(self, model: MarketModel, index: int, config: BrandConfig):
        super().__init__(model)
        self.index = index
        self.name = config.name
        self.config = config
        self.rule_discount = float(config.pricing.discount)
        self.discount = self.rule_discount
        self.floor = float(config.pricing.min_discount)
        self.changes: list[tuple[float, int | None, float | None]] = []

    def set_discount(self, value: float, floor: bool = False) -> None:
        """Set the rule's discount (a dated level); with ``floor`` it also becomes the minimum."""
        self.rule_discount = float(value)
        if floor:
            self.floor = float(value)
        self.rule_discount = float(np.clip(self.rule_discount, self.floor, self.config.pricing.max_discount))
        self.discount = self._charged()

    def change_discount(self, add: float, until: int | None = None, cap: float | None = None) -> None:
        """A change of ``add`` points on top of the rule's discount, to month index ``until`` (a dated change)."""
        self.changes.append((float(add), until, None if cap is None else float(cap)))
        self.discount = self._charged()

    def _charged(self) -> float:
        """The rule's discount plus the changes in force this month, clipped to [0, the lowest of their caps]."""
        month = self.model.month_index
        self.changes = [c for c in self.changes if c[1] is None or c[1] >= month]
        if not self.changes:
            return self.rule_discount
        caps = [c[2] for c in self.changes if c[2] is not None]
        depth = sum(c[0] for c in self.changes)
        return float(np.clip(self.rule_discount + depth, 0.0, min(caps, default=1.0)))

    def state(self) -> dict[str, Any]:
        """The brand's pricing as plain data (for snapshots): its discounts, its floor and the changes in force."""
        return {"discount": self.discount, "rule_discount": self.rule_discount, "floor": self.floor,
                "changes": [list(c) for c in self.changes]}  # fmt: skip

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Take the discounts, floor and changes of a :meth:`state`."""
        self.discount, self.floor = float(state["discount"]), float(state["floor"])
        self.rule_discount = float(state["rule_discount"])
        self.changes = [(float(a), None if u is None else int(u), None if c is None else float(c))
                        for a, u, c in state["changes"]]  # fmt: skip

    def set_prices(self) -> None:
        """The month's discount: the rule moves its discount toward the brand's wait or stock target
        (in the months the calendar lets it, ``Calendar.discount_rule``), then the changes in force go on top.

        Build-to-order brands discount more when waits fall below their target;
        stock brands discount more when stock rises above their target months.
        """
        pricing = self.config.pricing
        model = self.model
        if pricing.response > 0.0 and model.calendar.discount_rule[model.t, self.index]:
            own = model.product_brand == self.index
            if pricing.stock_months > 0:
                sales = model.recent_deliveries[own].sum()
                gap = (model.stock[own].sum() / sales - pricing.stock_months) if sales > 0 else 0.0
            else:
                cap = model.capacity_now[own]
                gap = 0.0
                if cap.sum() > 0:
                    wait = model.wait[own]
                    gap = pricing.target_wait_months - float((wait * cap).sum() / cap.sum())
            new = self.rule_discount + pricing.response * float(np.clip(gap, -3.0, 3.0))
            self.rule_discount = float(np.clip(new, max(self.floor, pricing.min_discount), pricing.max_discount))
        self.discount = self._charged()


class Dealer(mesa.Agent):
    """A brand's store network of one channel in one market."""

    def __init__(self, model: MarketModel, config: Stores, brand: int, market: int):
        super().__init__(model)
        self.brand = brand
        self.market = market
        self.channel = config.channel
        self.weight = float(config.weight)
        self.count = float(config.count)
        # A change spread over months: stores added each month, and months still to go.
        self._step = 0.0
        self._left = 0

    @property
    def effective_stores(self) -> float:
        return self.count * self.weight

    def open_stores(self, count: float | None = None, add: float | None = None, over_months: int = 1) -> None:
        """Set the number of stores (a dated event), or add (or close, if negative) some.

        With ``over_months`` > 1 the change comes in equal monthly steps, the first now and the
        last ``over_months - 1`` months later (:meth:`advance` takes the later ones). A new
        event replaces a change still under way, starting from the count reached so far.
        """
        target = float(count) if count is not None else self.count
        if add is not None:
            target = max(0.0, target + float(add))
        if over_months <= 1:  # set exactly: count + (target - count) can miss target in the last bit
            self.count, self._left = target, 0
            return
        self._step = (target - self.count) / over_months
        self._left = over_months
        self.advance()

    def advance(self) -> None:
        """One month of a spread change (nothing when none is under way)."""
        if self._left > 0:
            self._left -= 1
            self.count = max(0.0, self.count + self._step)

    def state(self) -> dict[str, Any]:
        """The network as plain data (for snapshots): brand and market indices, channel, weight, stores now,
        and a spread change under way (``step``: stores a month, ``left``: months still to go)."""
        where = {"brand": int(self.brand), "market": int(self.market), "channel": self.channel}
        return {**where, "weight": self.weight, "count": self.count, "step": self._step, "left": self._left}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Take the weight, stores and spread change of a :meth:`state` of the same brand, market and channel."""
        mine, theirs = (self.brand, self.market, self.channel), (state["brand"], state["market"], state["channel"])
        if theirs != mine:
            raise ValueError(f"the state of store network {theirs} (brand, market, channel) given to {mine}")
        self.weight, self.count = float(state["weight"]), float(state["count"])
        self._step, self._left = float(state["step"]), int(state["left"])
