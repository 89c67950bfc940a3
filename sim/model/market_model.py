"""The market model: one step is one calendar month.

``MarketModel.step`` reads as the month's timetable: dated events take effect
(stores open, discounts change), waits and capacity are read, brands set their
discounts, prices are formed per market (the policy calendar and tariffs, compiled
into monthly arrays when the model is built), awareness grows, buyers arrive (and
those who left go), buyers choose within the order books still open, capacity
delivers (with cancellations and backlog), the month is recorded.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import mesa
import numpy as np

from sim.model import market, observe, policy
from sim.model.agents import TASTES, Brand, Buyer, BuyerPool, Dealer
from sim.scenario.fields import POWERTRAINS
from sim.scenario.load import load_scenario
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError

#: Longest wait (months) used in utilities and cancellations, to keep numbers finite.
MAX_WAIT = 24.0


class InvariantError(RuntimeError):
    """An accounting identity failed in a month (raised only with ``check=True``)."""


#: Implementations of the monthly choice (same law, different random streams).
KERNELS = ("numba", "numpy")


def resolve_kernel(name: str | None = None) -> str:
    """The choice kernel to use: ``name``, else ``$SIM_KERNEL``, else ``"numba"``.

    Raises:
        InputError: an unknown name, or ``"numba"`` without numba installed.
    """
    chosen = name or os.environ.get("SIM_KERNEL") or "numba"
    if chosen not in KERNELS:
        raise InputError(f"kernel must be one of {', '.join(KERNELS)}, got {chosen!r} (from SIM_KERNEL?)")
    if chosen == "numba" and importlib.util.find_spec("numba") is None:
        raise InputError("the numba choice kernel needs the numba package: pip install numba, or set SIM_KERNEL=numpy")
    return chosen


def _overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword overrides: ``buyers__price_sensitivity=1.2`` or ``{"buyers.price_sensitivity": 1.2}``."""
    return {k.replace("__", "."): v for k, v in kwargs.items()}


class MarketModel(mesa.Model):
    """China's premium car market as buyers, brands and dealers.

    Args:
        scenario: a :class:`Scenario` or the path of a scenario file.
        seed: root seed (default: the scenario's). Ignored when ``rng`` is given.
        rng: a ``numpy.random.Generator`` (one per run; replications pass spawned ones).
        scale: real buyers per buyer agent (default: the scenario's).
        check: assert the accounting invariants after every month (``sim run --check``).
        kernel: the choice kernel, ``"numba"`` (compiled, :mod:`sim.model.kernel`) or ``"numpy"``
            (:func:`sim.model.market.serve_in_order`); default ``$SIM_KERNEL``, else ``"numba"``. The two
            draw the same law from different random streams: a run repeats itself bit for bit
            only with the same kernel.
        **overrides: scenario values by path, ``buyers__price_sensitivity=1.2`` or
            ``**{"products.AITO M6.price": 260000}`` (applied before validation).
    """

    def __init__(
        self,
        scenario: Scenario | str | Path = "scenarios/baseline.yaml",
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        scale: float | None = None,
        check: bool = False,
        kernel: str | None = None,
        **overrides: Any,
    ):
        if isinstance(scenario, Scenario):
            cfg = scenario
            if overrides:
                from sim.scenario.load import validate_document
                from sim.scenario.paths import apply_override
                from sim.scenario.yamlio import Document

                data = cfg.model_dump(mode="json")
                for k, v in _overrides(overrides).items():
                    apply_override(data, k, v)
                cfg = validate_document(Document(data, {}, f"<{cfg.name}>"))
        else:
            cfg = load_scenario(scenario, _overrides(overrides))
        if rng is not None:
            super().__init__(rng=rng)
        else:
            super().__init__(seed=cfg.seed if seed is None else seed)
        self.config = cfg
        self.check = bool(check)
        self.kernel = resolve_kernel(kernel)
        self._records: np.ndarray | None = None
        self._buffers: dict[str, np.ndarray] = {}
        self.scale = float(cfg.scale if scale is None else scale)
        if not self.scale > 0:
            raise InputError(f"scale must be > 0, got {self.scale}")
        self._setup_static()
        if self.kernel == "numba":
            from sim.model import kernel as compiled

            if BuyerPool.ARRAYS != compiled.POOL_COLUMNS:  # keep_rows moves exactly these columns
                raise RuntimeError(f"sim.model.kernel.POOL_COLUMNS {compiled.POOL_COLUMNS} != BuyerPool.ARRAYS {BuyerPool.ARRAYS}")
            if self.n_brands > compiled.MAX_BRANDS:
                raise InputError(
                    f"{self.n_brands} brands: the numba kernel handles at most {compiled.MAX_BRANDS}; set SIM_KERNEL=numpy"
                )
        self._compile_schedules()
        self._setup_state()
        self.datacollector = mesa.DataCollector(model_reporters=observe.REPORTERS)

    # ----------------------------------------------------------------- set-up

    def _setup_static(self) -> None:
        cfg = self.config
        self.start_index = cfg.start_index
        self.n_months = cfg.n_months
        self.t = 0
        self.month_index = self.start_index
        self.market_names = [m.name for m in cfg.markets]
        self.brand_names = [b.name for b in cfg.brands]
        self.product_names = [p.name for p in cfg.products]
        self.segment_names = [s.name for s in cfg.segments]
        bidx = {n: i for i, n in enumerate(self.brand_names)}
        midx = {n: i for i, n in enumerate(self.market_names)}
        prods = cfg.products
        self.n_products, self.n_markets, self.n_brands = len(prods), len(cfg.markets), len(cfg.brands)
        self.product_brand = np.array([bidx[p.brand] for p in prods], np.intp)
        self.powertrain = np.array([p.powertrain for p in prods])
        self.powertrain_index = np.array([POWERTRAINS.index(p.powertrain) for p in prods], np.intp)
        self.body = np.array([p.body for p in prods])
        self.seats = np.array([p.seats for p in prods])
        self.electric_range = np.array([p.electric_range_km for p in prods], float)
        self.made_in = np.array([p.made_in for p in prods])
        self.sold_in = np.zeros((self.n_products, self.n_markets), bool)
        for i, p in enumerate(prods):
            for m in p.markets:
                self.sold_in[i, midx[m]] = True
        self.launch = np.array([parse_month(p.launch) for p in prods])
        self.delivery_start = np.array(
            [parse_month(p.delivery_start or p.launch) for p in prods]
        )
        self.end = np.array([parse_month(p.end) if p.end else 10**9 for p in prods])
        self.capacity_start = np.array(
            [parse_month(p.capacity.start) if p.capacity.start else parse_month(p.delivery_start or p.launch) for p in prods]
        )
        self.ramp = np.array([p.capacity.ramp_months for p in prods])
        self.max_wait = np.array([p.max_wait_months for p in prods], float)
        b = cfg.brands
        self.brand_prestige = np.array([x.prestige for x in b], float)
        self.brand_huawei = np.array([x.huawei for x in b], float)
        self.brand_domestic = np.array([x.origin == "domestic" for x in b], float)
        self.brand_appeal = np.array([x.appeal for x in b], float)
        self.brand_stock_months = np.array([x.pricing.stock_months for x in b], float)
        # Static attribute columns (buyers x products utilities are taste @ X.T).
        self.attr_static = np.zeros((self.n_products, len(TASTES)), np.float32)
        col = {n: i for i, n in enumerate(TASTES)}
        self.attr_static[:, col["prestige"]] = self.brand_prestige[self.product_brand]
        self.attr_static[:, col["huawei"]] = self.brand_huawei[self.product_brand]
        self.attr_static[:, col["domestic"]] = self.brand_domestic[self.product_brand]
        for k, pt in enumerate(POWERTRAINS):
            self.attr_static[:, col[pt]] = self.powertrain_index == k
        for body in ("SUV", "MPV", "sedan"):
            self.attr_static[:, col[body]] = self.body == body
        self.attr_static[:, col["large"]] = self.seats >= 6
        self._smart_col = col["smart"]

    def _compile_schedules(self) -> None:
        """Turn dated events and the policy calendar into per-month arrays (T x ...)."""
        cfg = self.config
        T, P, M = self.n_months, self.n_products, self.n_markets
        months = np.arange(self.start_index, self.start_index + T)
        prods = cfg.products
        pidx = {n: i for i, n in enumerate(self.product_names)}
        self.price_t = np.tile(np.array([p.price for p in prods], float), (T, 1))
        appeal = np.array([p.appeal for p in prods], float)
        for i, p in enumerate(prods):
            if p.appeal_like:
                appeal[i] = p.appeal + float(np.mean([appeal[pidx[o]] for o in p.appeal_like if not prods[pidx[o]].appeal_like]))
        self.appeal_t = np.tile(appeal, (T, 1))
        self.smart_t = np.tile(np.array([p.smart for p in prods], float), (T, 1))
        self.cap_full_t = np.tile(np.array([p.capacity.max for p in prods], float), (T, 1))
        cap_factor = np.ones((T, P))
        self.pre_refresh_t = np.zeros((T, P), bool)
        brand_appeal_t = np.tile(self.brand_appeal, (T, 1))
        # A brand's appeal trend: ``appeal`` from ``appeal_trend_until`` on, ``trend`` utils a
        # year less for every year before it (more, for a falling brand).
        for b, brand in enumerate(cfg.brands):
            if brand.appeal_trend:
                until = parse_month(str(brand.appeal_trend_until))  # set whenever there is a trend
                brand_appeal_t[:, b] -= brand.appeal_trend * np.maximum(until - months, 0) / 12.0
        end = self.end.copy()
        self.events_by_month: dict[int, list[Any]] = {}
        for ev in cfg.events:
            m0 = parse_month(ev.month)
            t0 = m0 - self.start_index
            self.events_by_month.setdefault(m0, []).append(ev)
            after = slice(max(t0, 0), T) if t0 < T else slice(T, T)
            j = pidx.get(ev.product) if ev.product else None
            if ev.type == "price" and j is not None:
                if ev.price is not None:
                    self.price_t[after, j] = ev.price
                else:
                    self.price_t[after, j] *= ev.factor
            elif ev.type in ("refresh", "appeal"):
                if ev.appeal is not None:
                    if j is not None:
                        self.appeal_t[after, j] += ev.appeal
                    elif ev.brand is not None:
                        brand_appeal_t[after, self.brand_names.index(ev.brand)] += ev.appeal
                if ev.type == "refresh" and j is not None:
                    if ev.price is not None:
                        self.price_t[after, j] = ev.price
                    if ev.smart is not None:
                        self.smart_t[after, j] = ev.smart
                    if ev.announce_months:
                        lo = max(t0 - ev.announce_months, 0)
                        self.pre_refresh_t[lo : max(t0, 0), j] = True
            elif ev.type == "capacity" and j is not None:
                stop = T if ev.until is None else min(parse_month(ev.until) - self.start_index + 1, T)
                window = slice(max(t0, 0), max(stop, 0))
                if ev.capacity is not None:
                    self.cap_full_t[window, j] = ev.capacity
                if ev.factor is not None:
                    cap_factor[window, j] *= ev.factor
            elif ev.type == "discontinue" and j is not None:
                end[j] = min(end[j], m0 - 1)
        self.end = end
        self.brand_appeal_t = brand_appeal_t
        # Years since launch or last refresh (life-cycle ageing of appeal).
        # Lines already delivering at the start count their age from their first deliveries
        # (on_sale_since) when it is given; without it they are mature and do not age.
        since = np.array([parse_month(p.on_sale_since) if p.on_sale_since else np.nan for p in prods], float)
        renewed = np.tile(np.where(np.isnan(since), self.launch, since), (T, 1))
        for ev in cfg.events:
            if ev.type == "refresh" and ev.renew and ev.product in pidx:
                m0 = parse_month(ev.month)
                renewed[months >= m0, pidx[ev.product]] = m0
        fresh = (self.delivery_start > self.start_index) | ~np.isnan(since)
        self.age_t = np.where(fresh[None, :], np.maximum(months[:, None] - renewed, 0.0) / 12.0, 0.0)
        # Utils lost per year of age: the buyers' common rate plus each product's own (fitted) rate.
        self.ageing = self.config.buyers.ageing_per_year + np.array([p.ageing for p in prods], float)
        # Spring Festival shutdowns: products made in a market lose the shutdown's share of the
        # month's output (not of the full capacity that order books are measured against).
        working = np.ones((T, P))
        for mk in cfg.markets:
            s = mk.seasonality
            made_here = self.made_in == mk.name
            if s.lunar_new_year_shutdown_days > 0 and made_here.any():
                for t, mi in enumerate(months.tolist()):
                    lost = market.shutdown_share(mi // 12, mi % 12 + 1, s.lunar_new_year, s.lunar_new_year_shutdown_days)
                    working[t, made_here] = 1.0 - lost
        # Capacity with its ramp, units a month, integer.
        since = months[:, None] - self.capacity_start[None, :]
        self.capacity_t = np.floor(
            market.ramp_capacity(since, self.ramp[None, :], self.cap_full_t) * cap_factor * working + 1e-9
        )
        self.capacity_t[months[:, None] < self.delivery_start[None, :]] = 0.0
        self.cap_full_t = self.cap_full_t * cap_factor
        on_sale = (months[:, None] >= self.launch[None, :]) & (months[:, None] <= self.end[None, :])
        self.open_t = on_sale[:, :, None] & self.sold_in[None, :, :]  # T x P x M
        self.deliverable_t = months[:, None] >= self.delivery_start[None, :]
        # Policy: tariffs (T x P x M), NEV exemption (T x M: share, cap, min range), subsidies (T x P x M).
        pol = cfg.policies
        self.tariff_t = np.zeros((T, P, M))
        for tr in pol.tariffs:
            m = self.market_names.index(tr.market)
            lo = parse_month(tr.start) if tr.start else -(10**9)
            hi = parse_month(tr.end) if tr.end else 10**9
            when = (months >= lo) & (months <= hi)
            applies = self.made_in != tr.market if tr.made_in is None else np.isin(self.made_in, tr.made_in)
            if tr.powertrains is not None:
                applies &= np.isin(self.powertrain, tr.powertrains)
            if tr.brands is not None:
                applies &= np.isin(np.array(self.brand_names)[self.product_brand], tr.brands)
            self.tariff_t[np.ix_(when, applies, np.array([m]))] += tr.rate
        self.exempt_share_t = np.zeros((T, M))
        self.exempt_cap_t = np.zeros((T, M))
        self.exempt_min_range_t = np.zeros((T, M))
        for ex in pol.nev_exemptions:
            when = (months >= parse_month(ex.start)) & (months <= parse_month(ex.end))
            for name in ex.markets:
                if name in self.market_names:
                    m = self.market_names.index(name)
                    self.exempt_share_t[when, m] = ex.share
                    self.exempt_cap_t[when, m] = ex.cap
                    self.exempt_min_range_t[when, m] = ex.min_electric_range_km
        self.subsidy_t = np.zeros((T, P, M))
        nev = np.isin(self.powertrain, ("BEV", "EREV", "PHEV"))
        for sub in pol.subsidies:
            if sub.market not in self.market_names:
                continue
            m = self.market_names.index(sub.market)
            when = (months >= parse_month(sub.start)) & (months <= parse_month(sub.end))
            amount = np.where(nev, sub.amount_nev, sub.amount_ice) * sub.uptake
            self.subsidy_t[when, :, m] += amount[None, :]
        self.tax_on = np.array([m in pol.purchase_tax_markets for m in self.market_names])
        # Demand: expected arrivals per month and market (people).
        self.arrivals_t = np.zeros((T, M))
        for m, mk in enumerate(cfg.markets):
            ref = parse_month(mk.reference_month)
            s = mk.seasonality
            for t, mi in enumerate(months.tolist()):
                year, mon = mi // 12, mi % 12 + 1
                season = market.seasonality_factor(
                    year, mon, s.monthly, s.lunar_new_year, s.lunar_new_year_depth, s.lunar_new_year_window_days
                )
                self.arrivals_t[t, m] = market.expected_arrivals(
                    mk.buyers_per_month, int(mi - ref), mk.growth_per_year, mk.growth.get(str(year), 1.0), season
                )

    def _setup_state(self) -> None:
        cfg = self.config
        P, M, B = self.n_products, self.n_markets, self.n_brands
        self.brand_agents = [Brand(self, i, b) for i, b in enumerate(cfg.brands)]
        self.dealers: list[Dealer] = [
            Dealer(self, s, self.brand_names.index(s.brand), self.market_names.index(s.market)) for s in cfg.stores
        ]
        self.awareness = np.zeros((B, M))
        for i, b in enumerate(cfg.brands):
            for m, name in enumerate(self.market_names):
                self.awareness[i, m] = b.awareness.get(name, 0.05)
        self.owners = np.zeros((B, M))
        self.backlog = np.zeros((P, M))
        for i, p in enumerate(cfg.products):
            first = int(np.flatnonzero(self.sold_in[i])[0]) if self.sold_in[i].any() else 0
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
        self._tier_p = [np.array(list(mk.city_tiers.values()), float) for mk in cfg.markets]
        self._tier_k = [np.array([mk.store_reach[k] for k in mk.city_tiers], float) for mk in cfg.markets]
        self.total_decisions = 0

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
        """Dated events that change agents' state: store openings and discounts."""
        for d in self.dealers:
            d.advance()
        for ev in self.events_by_month.get(self.start_index + t, []):
            if ev.type == "stores":
                b = self.brand_names.index(ev.brand)
                m = self.market_names.index(ev.market) if ev.market else 0
                found = [d for d in self.dealers if d.brand == b and d.market == m and (ev.channel is None or d.channel == ev.channel)]
                if found:
                    found[0].open_stores(ev.count, ev.add, ev.over_months)
                else:
                    from sim.scenario.schema import Stores

                    cfg = Stores(brand=ev.brand, market=self.market_names[m], channel=ev.channel or "direct", count=0)
                    d = Dealer(self, cfg, b, m)
                    d.open_stores(ev.count, ev.add, ev.over_months)
                    self.dealers.append(d)
            elif ev.type == "discount":
                for name in ([ev.brand] if ev.brand else []) + list(ev.brands or []):
                    self.brand_agents[self.brand_names.index(name)].set_discount(ev.discount, ev.floor)

    def _update_waits(self, t: int) -> None:
        """Expected wait of a new order (months) and this month's capacity."""
        cap = self.capacity_t[t]
        full = np.maximum(self.cap_full_t[t], 1.0)
        self.capacity_now = cap
        pending = self.backlog.sum(axis=1) - self.stock
        before = np.maximum(self.delivery_start - self.month_index, 0)
        wait = np.where(cap > 0, pending / np.maximum(cap, 1.0), before + pending / full)
        self.wait = np.clip(wait, 0.0, MAX_WAIT)

    def _price(self, t: int) -> None:
        """Landed list price, transaction price and what buyers pay, products x markets."""
        disc = np.array([b.discount for b in self.brand_agents])[self.product_brand]
        self.month_list_price, self.month_transaction_price, self.month_paid = self._prices_at(t, disc)
        nxt = min(t + 1, self.n_months - 1)
        _, _, paid_next = self._prices_at(nxt, disc)
        # Known price change next month (tax steps, announced price moves), 100k RMB.
        change = (paid_next - self.month_paid) / 1e5
        open_now = self.open_t[t]
        weight = (self.last_orders + 1.0) * open_now
        with np.errstate(invalid="ignore", divide="ignore"):
            g = (change * weight).sum(axis=0) / weight.sum(axis=0)
        self.expected_rise = np.nan_to_num(g)

    def _prices_at(self, t: int, discount: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cfg, pol = self.config, self.config.policies
        P, M = self.n_products, self.n_markets
        lst, trans, paid = np.zeros((P, M)), np.zeros((P, M)), np.zeros((P, M))
        for m, mk in enumerate(cfg.markets):
            lp = policy.landed_list_price(self.price_t[t], self.tariff_t[t, :, m], mk.price_level)
            eligible = policy.nev_eligible(self.powertrain, self.electric_range, self.exempt_min_range_t[t, m])
            tr, pd = policy.buyer_price(
                lp,
                discount,
                vat=mk.vat,
                tax_rate=pol.purchase_tax_rate if self.tax_on[m] else 0.0,
                exemption_share=self.exempt_share_t[t, m],
                exemption_cap=self.exempt_cap_t[t, m],
                eligible=eligible,
                luxury_threshold=pol.luxury_tax_threshold,
                luxury_rate=pol.luxury_tax_rate if self.tax_on[m] else 0.0,
                subsidy=self.subsidy_t[t, :, m],
            )
            lst[:, m], trans[:, m], paid[:, m] = lp, tr, pd
        return lst, trans, paid

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
        if self.kernel == "numba":
            self._arrive_compiled(t)
        else:
            self._arrive_numpy(t)
        self.returning[:] = 0.0
        self.pool.choice[:] = -2

    def _arrivals(self, t: int, m: int) -> int:
        """Buyer agents arriving in market ``m`` this month (drawn from the market's stream)."""
        expected = self.arrivals_t[t, m] / self.scale
        n = int(self.market_rngs[m].poisson(expected)) if expected > 0 else 0
        return n + int(np.rint(self.returning[m] / self.scale))

    def _taste_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (with its trend to this month) and sd of each taste of buyers arriving now."""
        cfg = self.config.buyers
        years = (self.month_index - parse_month("2022-01")) / 12.0
        mean = np.array([cfg.tastes[k].mean + cfg.tastes[k].trend_per_year * years if k in cfg.tastes else 0.0 for k in TASTES], np.float32)
        sd = np.array([cfg.tastes[k].sd if k in cfg.tastes else 0.0 for k in TASTES], np.float32)
        return mean, sd

    def _arrive_compiled(self, t: int) -> None:
        """The pool as buffers kept from month to month: leavers are squeezed out in place, arrivals drawn into it.

        Each market's arrivals are drawn by :func:`sim.model.kernel.draw_buyers` from one key taken
        from the market's stream after the Poisson count.
        """
        from sim.model import kernel

        pool = self.pool
        cfg = self.config.buyers
        size = 0
        if len(pool):
            buf = self._buffers
            size = kernel.keep_rows(
                ~pool.leaves, buf["id"], buf["market"], buf["tier"], buf["family"], buf["budget"], buf["alpha"],
                buf["taste"], buf["arrived"], buf["choice"], buf["leaves"],
            )  # fmt: skip
        counts = [self._arrivals(t, m) for m in range(self.n_markets)]
        self._reserve(size + sum(counts), size)
        buf = self._buffers
        mean, sd = self._taste_moments()
        alpha_at_median = cfg.price_sensitivity * (cfg.budget_reference / cfg.budget_median) ** cfg.income_elasticity
        for m, n in enumerate(counts):
            if n == 0:
                continue
            new = slice(size, size + n)
            key = kernel.new_key(self.market_rngs[m])
            kernel.draw_buyers(
                key,
                np.cumsum(self._tier_p[m]),
                kernel.bernoulli_threshold_of(cfg.family_share),
                float(np.log(cfg.budget_median)),
                float(cfg.budget_sigma),
                float(alpha_at_median),
                float(cfg.income_elasticity),
                mean,
                sd,
                TASTES.index("large"),
                float(cfg.family_large_car),
                buf["tier"][new],
                buf["family"][new],
                buf["budget"][new],
                buf["alpha"][new],
                buf["taste"][new],
            )
            buf["id"][new] = np.arange(self.next_buyer_id, self.next_buyer_id + n)
            self.next_buyer_id += n
            buf["market"][new] = m
            buf["arrived"][new] = self.month_index
            buf["leaves"][new] = False
            size += n
        for name in BuyerPool.ARRAYS:
            setattr(pool, name, buf[name][:size])
        self.month_arrivals = sum(counts)

    def _reserve(self, rows: int, used: int) -> None:
        """Room for ``rows`` buyers in the pool's buffers (grown by half, keeping the first ``used`` rows)."""
        if self._buffers and rows <= self._buffers["id"].shape[0]:
            return
        empty = BuyerPool()
        old = self._buffers
        self._buffers = {}
        for name in BuyerPool.ARRAYS:
            like = getattr(empty, name)
            new = np.empty((max(rows + rows // 2, 1024),) + like.shape[1:], like.dtype)
            if old:
                new[:used] = old[name][:used]
            self._buffers[name] = new

    def _arrive_numpy(self, t: int) -> None:
        """New buyers drawn by numpy from the market's stream, one call per attribute."""
        pool = self.pool
        if len(pool):
            pool.keep(~pool.leaves)
        cfg = self.config.buyers
        arrivals = 0
        for m in range(self.n_markets):
            rng = self.market_rngs[m]
            n = self._arrivals(t, m)
            if n == 0:
                continue
            arrivals += n
            tier = rng.choice(len(self._tier_p[m]), size=n, p=self._tier_p[m]).astype(np.int16)
            family = rng.random(n) < cfg.family_share
            budget = (cfg.budget_median * np.exp(cfg.budget_sigma * rng.standard_normal(n))).astype(np.float32)
            mean, sd = self._taste_moments()
            taste = mean + sd * rng.standard_normal((n, len(TASTES)), dtype=np.float32)
            large = TASTES.index("large")
            taste[:, large] += np.where(family, cfg.family_large_car, 0.0).astype(np.float32)
            alpha = market.price_sensitivity(cfg.price_sensitivity, budget, cfg.budget_reference, cfg.income_elasticity)
            ids = np.arange(self.next_buyer_id, self.next_buyer_id + n, dtype=np.int64)
            self.next_buyer_id += n
            pool.extend(
                BuyerPool(
                    id=ids,
                    market=np.full(n, m, np.int16),
                    tier=tier,
                    family=family,
                    budget=budget,
                    alpha=alpha,
                    taste=taste,
                    arrived=np.full(n, self.month_index, np.int32),
                    choice=np.full(n, -2, np.int32),
                    leaves=np.zeros(n, bool),
                )
            )
        self.month_arrivals = arrivals

    def _nests(self, prods: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nest of each offered product and the nesting parameter of each nest."""
        ch = self.config.buyers.choice
        if ch.model == "logit" or ch.nests == "inside":
            lam = 1.0 if ch.model == "logit" else ch.nest_lambda
            return np.zeros(prods.size, np.intp), np.array([lam], np.float32)
        if ch.nests == "powertrain":
            return self.powertrain_index[prods], np.full(len(POWERTRAINS), ch.nest_lambda, np.float32)
        seg = self._segment_of(trans)
        return seg, np.full(len(self.segment_names), ch.nest_lambda, np.float32)

    def _segment_of(self, price: np.ndarray) -> np.ndarray:
        lows = np.array([s.min_price for s in self.config.segments])
        order = np.argsort(lows)
        pos = np.searchsorted(lows[order], price, side="right") - 1
        return order[np.clip(pos, 0, len(lows) - 1)].astype(np.intp)

    def _choose(self, t: int) -> None:
        """Buyers consider what their stores and awareness show them, and order or wait."""
        cfg = self.config.buyers
        pool = self.pool
        P, M = self.n_products, self.n_markets
        self.month_orders = np.zeros((P, M))
        limit_left = np.floor(
            np.maximum(self.max_wait * self.cap_full_t[t] + self.stock - self.backlog.sum(axis=1), 0.0) / self.scale
        )
        may_defer = (self.month_index - pool.arrived) < cfg.max_defer_months
        stays = np.zeros(len(pool), bool)
        decisions = 0
        for m in range(M):
            rows = np.flatnonzero(pool.market == m)
            n = rows.size
            if n == 0:
                continue
            prods = np.flatnonzero(self.open_t[t, :, m])
            if self.kernel == "numba":
                # Cheapest paid price first: the kernel reads what a buyer can afford as a prefix.
                prods = prods[np.argsort(self.month_paid[prods, m], kind="stable")]
                counts = self._choose_compiled(t, m, rows, prods, limit_left, may_defer, stays)
            else:
                counts = self._choose_numpy(t, m, rows, prods, limit_left)
            limit_left -= counts
            self.month_orders[:, m] = np.rint(counts * self.scale)
            decisions += n
        if self.kernel == "numpy":
            # Who stays: of the buyers who did not order, the deferrers (one draw each, after all markets chose).
            draw = np.empty(len(pool))
            for m in range(M):
                rows = np.flatnonzero(pool.market == m)
                draw[rows] = self.market_rngs[m].random(rows.size)
            stays = (pool.choice < 0) & (draw < cfg.defer_share) & may_defer
        pool.leaves = ~stays
        self.month_decisions = decisions
        self.total_decisions += decisions
        self.last_orders = self.month_orders

    def _choice_inputs(
        self, t: int, m: int, prods: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the choice needs about the products on sale in market ``m``.

        Returns:
            ``attrs`` (products x (tastes + 1), float32; the last column minus the paid price in
            100k RMB), ``delta`` (float32), ``paid`` (RMB), consideration probabilities (city tiers x
            brands), and the nest of each product with the nesting parameter of each nest.
        """
        cfg = self.config.buyers
        paid = self.month_paid[prods, m]
        trans = self.month_transaction_price[prods, m]
        attrs = np.concatenate([self.attr_static[prods], (-paid / 1e5)[:, None].astype(np.float32)], axis=1)
        attrs[:, self._smart_col] = self.smart_t[t, prods]
        delta = (
            self.appeal_t[t, prods]
            + self.brand_appeal_t[t, self.product_brand[prods]]
            - cfg.wait_cost * self.wait[prods]
            - cfg.pre_refresh_penalty * self.pre_refresh_t[t, prods]
            - self.ageing[prods] * self.age_t[t, prods]
        ).astype(np.float32)
        # Consideration: brand awareness times store reach in the buyer's city tier.
        reach = market.store_reach(self.effective_stores[:, m][None, :], self._tier_k[m][:, None])  # tiers x brands
        p_consider = self.awareness[:, m][None, :] * reach
        nest, lam = self._nests(prods, trans)
        return attrs, delta, paid, p_consider, nest, lam

    def _choose_compiled(
        self,
        t: int,
        m: int,
        rows: np.ndarray,
        prods: np.ndarray,
        limit_left: np.ndarray,
        may_defer: np.ndarray,
        stays: np.ndarray,
    ) -> np.ndarray:
        """Market ``m``'s month by the compiled kernel (:func:`sim.model.kernel.serve_market`); orders per product (agents)."""
        from sim.model import kernel

        cfg = self.config.buyers
        pool = self.pool
        attrs, delta, paid, p_consider, nest, lam = self._choice_inputs(t, m, prods)
        key = kernel.new_key(self.market_rngs[m])
        taken = kernel.serve_market(
            rows,
            pool.taste,
            pool.alpha,
            pool.budget,
            pool.tier,
            may_defer,
            np.ascontiguousarray(attrs.T),
            delta,
            paid,
            self.product_brand[prods].astype(np.int64),
            nest.astype(np.int64),
            lam.astype(np.float64),
            kernel.bernoulli_threshold(p_consider),
            1.0 + cfg.budget_stretch,
            float(cfg.outside_value),
            # A known rise next month lowers the value of waiting: v0 = u0 - gamma * alpha * rise (ODD 7.7).
            float(-cfg.price_expectation * self.expected_rise[m]),
            kernel.bernoulli_threshold_of(cfg.defer_share),
            np.minimum(limit_left[prods], rows.size + 1).astype(np.int64),
            prods.astype(np.int64),
            key,
            pool.choice,
            stays,
            self._kernel_records(rows.size),
        )
        counts = np.zeros(self.n_products)
        counts[prods] = taken
        return counts

    def _kernel_records(self, n: int) -> np.ndarray:
        """The compiled kernel's scratch rows for ``n`` buyers, kept from month to month (grown by a quarter)."""
        from sim.model import kernel

        if self._records is None or self._records.shape[0] < n:
            self._records = kernel.records_buffer(n + n // 4, len(TASTES))
        return self._records

    def _choose_numpy(self, t: int, m: int, rows: np.ndarray, prods: np.ndarray, limit_left: np.ndarray) -> np.ndarray:
        """Market ``m``'s month by the numpy path (:func:`sim.model.market.serve_in_order`); orders per product (agents)."""
        cfg = self.config.buyers
        pool = self.pool
        rng = self.market_rngs[m]
        n = rows.size
        counts = np.zeros(self.n_products)
        if prods.size == 0:
            pool.choice[rows] = market.OUTSIDE
            return counts
        attrs, delta, paid, p_consider, nest, lam = self._choice_inputs(t, m, prods)
        taste = np.concatenate([pool.taste[rows], pool.alpha[rows, None]], axis=1)
        v = market.utilities(taste, attrs, delta)
        considers = rng.random((n, self.n_brands), dtype=np.float32) < p_consider.astype(np.float32)[pool.tier[rows]]
        affordable = paid[None, :] <= pool.budget[rows, None] * (1.0 + cfg.budget_stretch)
        available = considers[:, self.product_brand[prods]] & affordable
        v0 = (cfg.outside_value - cfg.price_expectation * pool.alpha[rows] * self.expected_rise[m]).astype(np.float32)
        e = rng.standard_exponential((n, prods.size), dtype=np.float32)
        e0 = rng.standard_exponential((n, lam.size + 1), dtype=np.float32)
        order = rng.permutation(n)
        choice, _ = market.serve_in_order(v, available, v0, nest, lam, e, e0, limit_left[prods], order)
        picked = np.where(choice >= 0, prods[np.maximum(choice, 0)], market.OUTSIDE)
        pool.choice[rows] = picked
        counts += np.bincount(picked[picked >= 0], minlength=self.n_products)
        return counts

    def _deliver(self, t: int) -> None:
        """Cancellations, deliveries from stock and capacity, production, backlog."""
        cfg = self.config.buyers
        cancel = np.rint(self.backlog * market.cancellation_rate(self.wait, cfg.cancel_rate_per_wait_month)[:, None])
        pending = self.backlog - cancel + self.month_orders
        cap = self.capacity_t[t]
        total_pending = pending.sum(axis=1)
        deliverable = self.deliverable_t[t]
        available = np.where(deliverable, self.stock + cap, 0.0)
        delivered = np.minimum(total_pending, available)
        units = np.zeros_like(pending)
        for j in np.flatnonzero(delivered > 0):
            units[j] = market.split_largest_remainder(int(delivered[j]), pending[j])
        stock_months = self.brand_stock_months[self.product_brand]
        target_stock = np.where(self.open_t[t].any(axis=1), stock_months * self.recent_deliveries, 0.0)
        production = np.where(
            deliverable, np.minimum(cap, np.maximum(0.0, np.ceil(delivered + target_stock - self.stock))), 0.0
        )
        production = np.maximum(production, delivered - self.stock)
        self.stock = self.stock + production - delivered
        self.backlog = pending - units
        self.owners += np.array([units[self.product_brand == b].sum(axis=0) for b in range(self.n_brands)])
        self.recent_deliveries = (2.0 * self.recent_deliveries + delivered) / 3.0
        self.returning = cancel.sum(axis=0) * cfg.switch_share
        self.month_units = units
        self.month_cancellations = cancel
        self.production = production
        self.month_offered = self.open_t[t] | (units > 0) | (self.backlog > 0)

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
        over = self.month_units.sum(axis=1) > stock_before + self.capacity_t[t] + 1e-9
        if over.any():
            j = int(np.flatnonzero(over)[0])
            raise InvariantError(
                f"{month}: {names[j]}: delivered {self.month_units[j].sum():,.0f} > stock {stock_before[j]:,.0f}"
                f" + capacity {self.capacity_t[t, j]:,.0f}"
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
