"""The market model: one step is one calendar month.

A :class:`MarketModel` holds the market's state: the buyers in the market (a pool of
arrays), the brands' discounts (:class:`~sim.model.agents.Brand` agents), the store networks
(:class:`~sim.model.agents.Dealer` agents), awareness, owners, the order backlog, stock,
recent sales and waits. Everything dated (prices, appeal, capacity, what is on sale, the
policy calendar, demand, the agents' events) it reads from its
:class:`~sim.model.calendar.Calendar`, compiled once from the scenario. ``step`` is the month's
timetable:

1. appeal drifts (after the data, when the scenario asks for it), and dated events change the
   agents (stores open, discounts change);
2. waits and this month's capacity are read;
3. brands set their discounts;
4. prices are formed per market (tariffs, taxes, exemptions, subsidies);
5. awareness grows;
6. buyers arrive (and those who left go);
7. buyers choose, within the order books still open;
8. capacity delivers (cancellations, production, backlog);
9. the month is recorded.

The draws of 6 and 7 are made by the model's kernel (:mod:`sim.model.kernels`), chosen once,
when the model is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mesa
import numpy as np

from sim.model import draws, market, observe, policy
from sim.model.agents import TASTES, Brand, Buyer, BuyerPool, Dealer
from sim.model.calendar import Calendar, shared_calendar
from sim.model.kernels import Arrivals, Kernel, Offer, make_kernel
from sim.scenario.fields import POWERTRAINS
from sim.scenario.load import load_scenario, override_scenario
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError

#: Longest wait (months) used in utilities and cancellations, to keep numbers finite.
MAX_WAIT = 24.0


class InvariantError(RuntimeError):
    """An accounting identity failed in a month (raised only with ``check=True``)."""


def _overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword overrides: ``buyers__price_sensitivity=1.2`` or ``{"buyers.price_sensitivity": 1.2}``."""
    return {k.replace("__", "."): v for k, v in kwargs.items()}


def _replicate_generator(seed: int, replicate: Any) -> np.random.Generator:
    """The generator of replicate ``replicate`` of ``sim run --seed SEED``: the ``replicate``-th stream
    spawned from ``seed`` (as :func:`sim.runs.run.make_specs` gives it)."""
    if isinstance(replicate, bool) or not isinstance(replicate, (int, np.integer)) or replicate < 0:
        raise InputError(f"replicate must be a whole number >= 0, got {replicate!r}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(int(replicate),))))


class MarketModel(mesa.Model):
    """China's premium car market as buyers, brands and dealers.

    Seeds follow Mesa's convention: a model built without ``seed`` or ``rng`` draws fresh entropy
    from the operating system (so the iterations of ``mesa.batch_run`` differ) and records it as
    :attr:`seed_entropy`; ``MarketModel(scenario, seed=model.seed_entropy)`` repeats it. The
    scenario's own ``seed`` is the default of ``sim run`` and :func:`sim.simulate`, not of the model.

    ``seed=s`` alone seeds the model's generator with ``s``; replicate ``r`` of ``sim run --seed s``
    uses the ``r``-th stream spawned from ``s`` instead (``numpy.random.SeedSequence(s, spawn_key=(r,))``),
    so ``MarketModel(scenario, seed=s)`` is none of them: give ``replicate=r`` to get replicate ``r``
    (for a scenario without an ``ensemble``; :func:`sim.simulate` also draws the ensemble member).

    The initial state (before the first month) is collected at construction, as Mesa's models do:
    row ``k`` of :attr:`datacollector` is the state after ``k`` months (row 0: the start, labelled with
    the month before it, no flows, no prices, nothing on offer).

    Args:
        scenario: a :class:`Scenario`, the path of a scenario file, or the name of a shipped scenario
            (``"baseline"``, ``"m6_launch"``).
        seed: root seed (default: fresh entropy; with ``replicate``, the scenario's). Ignored when ``rng`` is given.
        replicate: be replicate ``replicate`` of ``sim run --seed SEED`` (None: the seed's own stream).
        rng: a ``numpy.random.Generator`` (one per run; replications pass spawned ones).
        scale: real buyers per buyer agent (default: the scenario's).
        check: assert the accounting invariants after every month (``sim run --check``).
        kernel: the kernel of the monthly draws (:mod:`sim.model.kernels`), ``"numba"`` (compiled)
            or ``"numpy"``. The two draw the same law from different random streams: a run repeats
            itself bit for bit only with the same kernel.
        **overrides: scenario values by path, ``buyers__price_sensitivity=1.2`` or
            ``**{"products.AITO M6.price": 260000, "brands.AITO.appeal+=": 0.1}`` (applied before validation).

    Attributes:
        seed_entropy: the root of the model's random numbers (the given seed, the fresh entropy drawn,
            or the entropy of ``rng``'s seed sequence); with :attr:`spawn_key`, the run's seed identity.
        spawn_key: the position of the model's stream in the seed tree (``()`` for a root stream).
    """

    #: The market's arrays of fixed shape, carried from month to month (a snapshot,
    #: :mod:`sim.model.snapshot`, saves them as they are).
    ARRAYS = (
        "awareness", "owners", "backlog", "stock", "recent_deliveries", "wait", "capacity_now", "returning", "last_orders",
    )  # fmt: skip
    #: The month's records, set by each month (absent before the first); the reporters read them.
    MONTH_ARRAYS = (
        "month_list_price", "month_transaction_price", "month_paid", "expected_rise", "effective_stores",
        "month_orders", "month_units", "month_cancellations", "month_offered", "production",
    )  # fmt: skip

    def __init__(
        self,
        scenario: Scenario | str | Path = "baseline",
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        scale: float | None = None,
        check: bool = False,
        kernel: str = "numba",
        replicate: int | None = None,
        _compiled: tuple[Calendar, draws.Draws] | None = None,
        **overrides: Any,
    ):
        if isinstance(scenario, Scenario):
            cfg = override_scenario(scenario, _overrides(overrides))
        else:
            cfg = load_scenario(scenario, _overrides(overrides))
        if rng is not None:
            super().__init__(rng=rng)
        elif replicate is not None:
            super().__init__(rng=_replicate_generator(cfg.seed if seed is None else seed, replicate))
        else:
            # Mesa passes no seed (mesa.batch_run): fresh entropy, recorded below, so that its iterations differ.
            super().__init__(seed=np.random.SeedSequence().entropy if seed is None else seed)
        self.config = cfg
        self.check = bool(check)
        self.scale = float(cfg.scale if scale is None else scale)
        if not self.scale > 0:
            raise InputError(f"scale must be > 0, got {self.scale}")
        # What the forecast does not know, drawn from the run's seed by named streams of their own
        # (the model's stream is untouched): fixed draws folded into the calendar, and the drift of
        # appeal that the month's timetable walks.
        seed_seq = self.rng.bit_generator.seed_seq
        assert isinstance(seed_seq, np.random.SeedSequence)  # a Generator made from a seed or a SeedSequence
        self.seed_entropy = int(seed_seq.entropy)  # type: ignore[arg-type]
        self.spawn_key = tuple(int(k) for k in seed_seq.spawn_key)
        if _compiled is not None:  # a copy of a model of this scenario (sim.model.snapshot.copy_model): its calendar
            self.calendar, self.draws = _compiled
        else:
            self.draws = draws.draw(cfg, seed_seq)
            self.calendar = draws.apply(shared_calendar(cfg), self.draws, cfg)
        self.drift = draws.Drift(cfg, seed_seq, self.draws.start)
        cal = self.calendar
        # Names and sizes, as agents, observers and tables read them.
        self.market_names, self.brand_names = list(cal.market_names), list(cal.brand_names)
        self.product_names, self.segment_names = list(cal.product_names), list(cal.segment_names)
        self.n_months, self.n_products = cal.n_months, len(cal.product_names)
        self.n_markets, self.n_brands = len(cal.market_names), len(cal.brand_names)
        self.product_brand, self.powertrain = cal.product_brand, cal.powertrain
        self.start_index = cal.start
        self.t = 0
        # The state before the first month: what the month's records read, as the start has it.
        self.month_index = self.start_index - 1
        tier_shares = [np.array(list(mk.city_tiers.values()), float) for mk in cfg.markets]
        self._tier_k = [np.array([mk.store_reach[k] for k in mk.city_tiers], float) for mk in cfg.markets]
        self.kernel: Kernel = make_kernel(kernel, cfg.buyers, tier_shares, self.n_brands)
        self._setup_state()
        self.datacollector = mesa.DataCollector(model_reporters=observe.reporters(self.brand_names))
        self.datacollector.collect(self)

    def _setup_state(self) -> None:
        """The agents and the market's state at the start (a backlog from the scenario, no stock)."""
        cfg = self.config
        P, M, B = self.n_products, self.n_markets, self.n_brands
        self.brand_agents = [Brand(self, i, b) for i, b in enumerate(cfg.brands)]
        self.dealers: list[Dealer] = [
            Dealer(self, s, self.brand_names.index(s.brand), self.market_names.index(s.market)) for s in cfg.stores
        ]
        awareness = [[b.awareness.get(name, 0.05) for name in self.market_names] for b in cfg.brands]
        self.awareness = np.array(awareness, float).reshape(B, M)
        self.owners = np.zeros((B, M))
        self.backlog = np.zeros((P, M))
        sold_in = self.calendar.sold_in
        for i, p in enumerate(cfg.products):
            first = int(np.flatnonzero(sold_in[i])[0]) if sold_in[i].any() else 0
            self.backlog[i, first] = np.rint(p.initial_backlog)
        self.stock = np.zeros(P)
        self.recent_deliveries = np.zeros(P)
        self.wait = np.zeros(P)
        self.capacity_now = np.zeros(P)
        self.pool = BuyerPool()
        # One stream per market, spawned from the run's generator in market order, so that adding
        # a market leaves the draws of the others unchanged (common random numbers across scenarios).
        self.market_rngs = list(self.rng.spawn(self.n_markets))
        self.next_buyer_id = 0
        self.returning = np.zeros(M)
        self.last_orders = np.zeros((P, M))
        self.total_decisions = 0
        # The month's records before any month (the initial row of the data collector): no flows,
        # no prices formed yet, nothing on offer (so no row of the sales table comes from it).
        self.month_orders = np.zeros((P, M))
        self.month_units = np.zeros((P, M))
        self.month_cancellations = np.zeros((P, M))
        self.month_list_price = np.full((P, M), np.nan)
        self.month_transaction_price = np.full((P, M), np.nan)
        self.month_paid = np.full((P, M), np.nan)
        self.month_offered = np.zeros((P, M), bool)
        self.month_decisions = 0
        self.month_arrivals = 0

    # -------------------------------------------------------------- properties

    @property
    def month_label(self) -> str:
        return format_month(self.month_index)

    @property
    def brands(self) -> mesa.agent.AgentSet:
        """The brands as a Mesa AgentSet."""
        return self.agents_by_type[Brand]

    def buyer_agents(self, limit: int | None = None) -> list[Buyer]:
        """Buyers now in the market as Mesa agents (views of the pool, created on demand).

        Each call registers new ``Buyer`` agents with the model (Mesa registers every agent it
        creates); call ``agent.remove()`` on them when done inspecting, to keep the model light.
        They never change the simulation: they only read the pool.
        """
        ids = self.pool.id if limit is None else self.pool.id[:limit]
        return [Buyer(self, int(i)) for i in ids]

    # ------------------------------------------------------------------- step

    def step(self) -> None:
        """Simulate one calendar month."""
        if not self.running:  # type: ignore[has-type]  # set by mesa.Model.__init__
            return
        t = self.t
        self.month_index = self.start_index + t
        self.drift.step(t)
        self._take_events(t)
        self._update_waits(t)
        self.brands.do("set_prices")
        self._price(t)
        self._hear()
        self._arrive(t)
        self._choose(t)
        before = (self.stock.copy(), self.backlog.copy()) if self.check else None
        self._deliver(t)
        if before is not None:
            self._check_month(t, *before)
        self.datacollector.collect(self)
        self.t += 1
        if self.t >= self.n_months:
            self.running = False

    # ------------------------------------------------------------ the month

    def _take_events(self, t: int) -> None:
        """Spread store openings go on; the month's events (:mod:`sim.model.events`) change the agents they name."""
        for d in self.dealers:
            d.advance()
        for ev in self.calendar.events[t]:
            ev.apply(self)

    def _update_waits(self, t: int) -> None:
        """Expected wait of a new order (months) and this month's capacity."""
        cal = self.calendar
        cap = cal.capacity[t]
        full = np.maximum(cal.capacity_full[t], 1.0)
        self.capacity_now = cap
        pending = self.backlog.sum(axis=1) - self.stock
        before = np.maximum(cal.delivery_start - self.month_index, 0)
        wait = np.where(cap > 0, pending / np.maximum(cap, 1.0), before + pending / full)
        self.wait = np.clip(wait, 0.0, MAX_WAIT)

    def _price(self, t: int) -> None:
        """Landed list price, transaction price and what buyers pay (products x markets), and the
        known price rise of next month in each market (100k RMB, weighted by last month's orders)."""
        cal = self.calendar
        disc = np.array([b.discount for b in self.brand_agents])[self.product_brand]
        prices = policy.landed_prices(cal.policy, t, cal.price[t], disc, cal.powertrain, cal.electric_range)
        self.month_list_price, self.month_transaction_price, self.month_paid = prices
        nxt = min(t + 1, self.n_months - 1)
        _, _, paid_next = policy.landed_prices(cal.policy, nxt, cal.price[nxt], disc, cal.powertrain, cal.electric_range)
        # Known price change next month (tax steps, announced price moves), 100k RMB.
        change = (paid_next - self.month_paid) / 1e5
        weight = (self.last_orders + 1.0) * cal.open[t]
        with np.errstate(invalid="ignore", divide="ignore"):
            g = (change * weight).sum(axis=0) / weight.sum(axis=0)
        self.expected_rise = np.nan_to_num(g)

    def _hear(self) -> None:
        """Awareness grows by advertising (p) and word of mouth from owners (q)."""
        aw = self.config.buyers.awareness
        adv = np.array([b.config.advertising for b in self.brand_agents])[:, None]
        self.awareness = market.awareness_step(
            self.awareness, aw.innovation * adv, aw.imitation, self.owners, aw.reference_owners
        )
        eff = np.zeros((self.n_brands, self.n_markets))
        for d in self.dealers:
            eff[d.brand, d.market] += d.effective_stores
        self.effective_stores = eff

    def _arrive(self, t: int) -> None:
        """New buyers arrive (and buyers who cancelled come back); leavers go."""
        counts = [self._arrivals(t, m) for m in range(self.n_markets)]
        new = Arrivals(counts, self.month_index, self.next_buyer_id, *self._taste_moments())
        self.kernel.arrive(self.pool, new, self.market_rngs)
        self.next_buyer_id += sum(counts)
        self.month_arrivals = sum(counts)
        self.returning[:] = 0.0
        self.pool.choice[:] = -2

    def _arrivals(self, t: int, m: int) -> int:
        """Buyer agents arriving in market ``m`` this month (drawn from the market's stream)."""
        expected = self.calendar.arrivals[t, m] / self.scale
        n = int(self.market_rngs[m].poisson(expected)) if expected > 0 else 0
        return n + int(np.rint(self.returning[m] / self.scale))

    def _taste_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (with its trend to this month) and sd of each taste of buyers arriving now."""
        cfg = self.config.buyers
        years = (self.month_index - parse_month("2022-01")) / 12.0
        mean = np.array([cfg.tastes[k].mean + cfg.tastes[k].trend_per_year * years if k in cfg.tastes else 0.0 for k in TASTES], np.float32)
        sd = np.array([cfg.tastes[k].sd if k in cfg.tastes else 0.0 for k in TASTES], np.float32)
        return mean, sd

    def _choose(self, t: int) -> None:
        """Buyers consider what their stores and awareness show them, and order or wait."""
        cfg = self.config.buyers
        pool = self.pool
        P, M = self.n_products, self.n_markets
        self.month_orders = np.zeros((P, M))
        cal = self.calendar
        limit_left = np.floor(
            np.maximum(cal.max_wait * cal.capacity_full[t] + self.stock - self.backlog.sum(axis=1), 0.0) / self.scale
        )
        may_defer = (self.month_index - pool.arrived) < cfg.max_defer_months
        stays = np.zeros(len(pool), bool)
        decisions = 0
        for m in range(M):
            rows = np.flatnonzero(pool.market == m)
            if rows.size == 0:
                continue
            offer = self._offer(t, m, limit_left)
            counts = np.zeros(P)
            counts[offer.products] = self.kernel.choose(offer, pool, rows, may_defer, stays, self.market_rngs[m])
            limit_left -= counts
            self.month_orders[:, m] = np.rint(counts * self.scale)
            decisions += rows.size
        pool.leaves = ~self.kernel.who_stays(pool, may_defer, stays, self.market_rngs)
        self.month_decisions = decisions
        self.total_decisions += decisions
        self.last_orders = self.month_orders

    def _offer(self, t: int, m: int, limit_left: np.ndarray) -> Offer:
        """What market ``m``'s buyers are offered this month: the products open to orders, in the kernel's
        order, their attributes, mean utilities and prices, the brands' reach and the order limits."""
        cfg, cal = self.config.buyers, self.calendar
        open_now = np.flatnonzero(cal.open[t, :, m])
        prods = self.kernel.arrange(open_now, self.month_paid[open_now, m])
        paid = self.month_paid[prods, m]
        attrs = np.concatenate([cal.attributes[prods], (-paid / 1e5)[:, None].astype(np.float32)], axis=1)
        attrs[:, TASTES.index("smart")] = cal.smart[t, prods]
        delta = (
            cal.appeal[t, prods]
            + cal.brand_appeal[t, self.product_brand[prods]]
            - cfg.wait_cost * self.wait[prods]
            - cfg.pre_refresh_penalty * cal.pre_refresh[t, prods]
            - cal.ageing[prods] * cal.age[t, prods]
        )
        if self.drift.active:
            delta = delta + self.drift.brand[self.product_brand[prods]] + self.drift.product[prods]
        delta = delta.astype(np.float32)
        # Consideration: brand awareness times store reach in the buyer's city tier.
        reach = market.store_reach(self.effective_stores[:, m][None, :], self._tier_k[m][:, None])  # tiers x brands
        nest, lam = self._nests(prods, self.month_transaction_price[prods, m])
        return Offer(
            prods, attrs, delta, paid, self.product_brand[prods], self.awareness[:, m][None, :] * reach, nest, lam,
            limit_left[prods], self.expected_rise[m],
        )  # fmt: skip

    def _nests(self, prods: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nest of each offered product and the nesting parameter of each nest."""
        ch = self.config.buyers.choice
        if ch.model == "logit" or ch.nests == "inside":
            lam = 1.0 if ch.model == "logit" else ch.nest_lambda
            return np.zeros(prods.size, np.intp), np.array([lam], np.float32)
        if ch.nests == "powertrain":
            return self.calendar.powertrain_index[prods], np.full(len(POWERTRAINS), ch.nest_lambda, np.float32)
        return self._segment_of(trans), np.full(len(self.segment_names), ch.nest_lambda, np.float32)

    def _segment_of(self, price: np.ndarray) -> np.ndarray:
        """The segment of each transaction price (RMB)."""
        return market.segment_of(price, self.calendar.segment_floor)

    def _deliver(self, t: int) -> None:
        """Cancellations, deliveries from stock and capacity, production, backlog; owners and sales follow."""
        cfg, cal = self.config.buyers, self.calendar
        on_sale = cal.open[t].any(axis=1)
        target_stock = np.where(on_sale, cal.stock_months * self.recent_deliveries, 0.0)
        out = market.deliver(
            self.backlog, self.month_orders, self.wait, cfg.cancel_rate_per_wait_month,
            cal.capacity[t], cal.deliverable[t], self.stock, target_stock,
        )  # fmt: skip
        self.stock, self.backlog, self.production = out.stock, out.backlog, out.production
        self.owners += np.array([out.units[self.product_brand == b].sum(axis=0) for b in range(self.n_brands)])
        self.recent_deliveries = (2.0 * self.recent_deliveries + out.delivered) / 3.0
        self.returning = out.cancelled.sum(axis=0) * cfg.switch_share
        self.month_units = out.units
        self.month_cancellations = out.cancelled
        self.month_offered = cal.open[t] | (out.units > 0) | (self.backlog > 0)

    def _check_month(self, t: int, stock_before: np.ndarray, backlog_before: np.ndarray) -> None:
        """Accounting invariants of the month just simulated; raise :class:`InvariantError` if one fails."""
        month = self.month_label
        names = self.product_names
        tables = {
            "orders": self.month_orders,
            "deliveries": self.month_units,
            "backlog": self.backlog,
            "cancellations": self.month_cancellations,
            "stock": self.stock[:, None],
        }
        for what, arr in tables.items():
            bad = ~np.isfinite(arr) | (arr < 0)
            if bad.any():
                j = int(np.argwhere(bad)[0][0])
                raise InvariantError(f"{month}: {names[j]}: {what} is negative or not a number ({arr[j].tolist()})")
        capacity = self.calendar.capacity[t]
        over = self.month_units.sum(axis=1) > stock_before + capacity + 1e-9
        if over.any():
            j = int(np.flatnonzero(over)[0])
            raise InvariantError(
                f"{month}: {names[j]}: delivered {self.month_units[j].sum():,.0f} > stock {stock_before[j]:,.0f}"
                f" + capacity {capacity[j]:,.0f}"
            )
        gap = self.month_orders - (self.month_units + self.backlog - backlog_before + self.month_cancellations)
        if np.abs(gap).max(initial=0.0) > 1e-6:
            j = int(np.argwhere(np.abs(gap) > 1e-6)[0][0])
            raise InvariantError(f"{month}: {names[j]}: orders != deliveries + backlog change + cancellations")
        offered = self.month_offered
        prices = (self.month_list_price, self.month_transaction_price, self.month_paid)
        if any((~np.isfinite(p) | (p < 0))[offered].any() for p in prices):
            raise InvariantError(f"{month}: a price is negative or not a number")

    # ---------------------------------------------------------------- running

    def run(self) -> None:
        """Step until the scenario's end."""
        while self.running:
            self.step()
