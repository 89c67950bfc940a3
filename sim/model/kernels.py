"""The kernels: who arrives and what buyers choose each month, behind one interface.

Each month, in each market, a model draws its new buyers' attributes and then its buyers'
choices (consideration, utilities, the nested logit, service in a random order under the
order limits, deferral). Two kernels draw the same law from different random streams:

* :class:`NumbaKernel` (``"numba"``, the default): the compiled code of :mod:`sim.model.kernel`,
  one 64-bit key a call taken from the market's stream, the buyer pool kept in buffers from
  month to month.
* :class:`NumpyKernel` (``"numpy"``): numpy, Gumbel-max with ``Exp(1)`` draws
  (:func:`sim.model.market.serve_in_order`), one call of the market's stream per attribute; it
  runs without numba.

A run repeats itself bit for bit only with the same kernel. The model makes its kernel once,
at construction (:func:`make_kernel`), from its ``kernel`` argument (the run's spec); nothing
here reads the environment: the command line reads ``SIM_KERNEL`` and checks it with
:func:`resolve_kernel`.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.model import market
from sim.model.agents import TASTES, BuyerPool
from sim.scenario.yamlio import InputError

if TYPE_CHECKING:
    from sim.scenario.schema import Buyers

Rng = np.random.Generator
Mask = NDArray[np.bool_]
#: Kernel names, the default first.
KERNELS = ("numba", "numpy")


def resolve_kernel(name: str, origin: str | None = None) -> str:
    """Check a kernel's name: one of :data:`KERNELS`, and ``"numba"`` only with numba installed.

    Args:
        name: the kernel's name.
        origin: where the name was read (``"SIM_KERNEL"``), to say so in the error.

    Raises:
        InputError: an unknown name, or ``"numba"`` without numba installed.
    """
    where = f" (from {origin})" if origin else ""
    if name not in KERNELS:
        raise InputError(f"kernel must be one of {', '.join(KERNELS)}, got {name!r}{where}")
    if name == "numba" and importlib.util.find_spec("numba") is None:
        raise InputError(f"the numba kernel{where} needs the numba package: pip install numba, or use the numpy kernel")
    return name


class Offer(NamedTuple):
    """What one market's buyers are offered this month, in the order the kernel takes the products.

    Attributes:
        products: the products open to orders (the model's product indices).
        attrs: their attributes, products x (tastes + 1), float32: one column per taste (in
            :data:`sim.model.agents.TASTES` order), then minus the paid price in 100k RMB.
        delta: mean utility of each product (appeal, wait, ageing...), utils, float32.
        paid: what a buyer pays, RMB.
        brand: brand of each product.
        consider: probability that a buyer considers each brand, city tiers x brands.
        nest: nest of each product. lam: nesting parameter of each nest (<= 1).
        limits: orders each product may still take this month (buyer agents).
        expected_rise: the market's known price rise next month, 100k RMB.
    """

    products: NDArray[np.intp]
    attrs: NDArray[np.float32]
    delta: NDArray[np.float32]
    paid: NDArray[np.float64]
    brand: NDArray[np.intp]
    consider: NDArray[np.float64]
    nest: NDArray[np.intp]
    lam: NDArray[np.float32]
    limits: NDArray[np.float64]
    expected_rise: np.float64


class Arrivals(NamedTuple):
    """Who arrives this month.

    Attributes:
        counts: new buyer agents in each market.
        month: the month index, recorded as their arrival.
        first_id: the first one's id (ids follow in order, market by market).
        mean, sd: mean and standard deviation of each taste (float32, in ``TASTES`` order).
    """

    counts: Sequence[int]
    month: int
    first_id: int
    mean: NDArray[np.float32]
    sd: NDArray[np.float32]


class Kernel(ABC):
    """What a model asks of its kernel each month (a subclass per implementation).

    Args:
        buyers: the scenario's buyers (arrival and choice parameters).
        tier_shares: per market, the share of its buyers in each city tier.
        n_brands: brands in the scenario.
    """

    #: The kernel's name (one of :data:`KERNELS`).
    name: ClassVar[str]

    def __init__(self, buyers: Buyers, tier_shares: Sequence[NDArray[np.float64]], n_brands: int):
        self.buyers = buyers
        self.tier_shares = list(tier_shares)
        self.n_brands = n_brands

    @abstractmethod
    def arrive(self, pool: BuyerPool, new: Arrivals, rngs: Sequence[Rng]) -> None:
        """Drop the pool's leavers, then add ``new.counts[m]`` buyers in market ``m``, drawn from ``rngs[m]``."""

    def arrange(self, products: NDArray[np.intp], paid: NDArray[np.float64]) -> NDArray[np.intp]:
        """The order in which the kernel takes the offered ``products`` (``paid``: their prices, RMB)."""
        return products

    @abstractmethod
    def choose(self, offer: Offer, pool: BuyerPool, rows: NDArray[np.intp], may_defer: Mask, stays: Mask, rng: Rng) -> NDArray[np.int64]:
        """The buyers ``rows`` of one market choose (written to ``pool.choice``: product, or -1 for none).

        Args:
            may_defer: whether each buyer of the pool may still defer.
            stays: whether each buyer of the pool stays next month (a kernel may write it here).
            rng: the market's stream.

        Returns:
            Orders taken per offered product (buyer agents).
        """

    def who_stays(self, pool: BuyerPool, may_defer: Mask, stays: Mask, rngs: Sequence[Rng]) -> Mask:
        """After every market chose: which buyers stay in the market next month (deferrers)."""
        return stays

    @abstractmethod
    def adopt(self, pool: BuyerPool) -> None:
        """Take ``pool``, a pool restored from a snapshot, as the buyers in the market (a kernel may copy its
        arrays and point the pool's columns at its own)."""


class NumbaKernel(Kernel):
    """The compiled kernel (:mod:`sim.model.kernel`): draws from one key a call, the pool in buffers."""

    name = "numba"

    def __init__(self, buyers: Buyers, tier_shares: Sequence[NDArray[np.float64]], n_brands: int):
        from sim.model import kernel as compiled  # here: the numpy kernel runs without numba

        if BuyerPool.ARRAYS != compiled.POOL_COLUMNS:  # keep_rows moves exactly these columns
            raise RuntimeError(f"sim.model.kernel.POOL_COLUMNS {compiled.POOL_COLUMNS} != BuyerPool.ARRAYS {BuyerPool.ARRAYS}")
        if n_brands > compiled.MAX_BRANDS:
            raise InputError(f"{n_brands} brands: the numba kernel handles at most {compiled.MAX_BRANDS}; use the numpy kernel")
        super().__init__(buyers, tier_shares, n_brands)
        self._buffers: dict[str, NDArray[Any]] = {}
        self._records: NDArray[np.float32] | None = None

    def arrive(self, pool: BuyerPool, new: Arrivals, rngs: Sequence[Rng]) -> None:
        """Leavers squeezed out of the buffers in place, arrivals drawn into them by
        :func:`sim.model.kernel.draw_buyers`, from one key a market taken after its count."""
        from sim.model import kernel as compiled

        b = self.buyers
        size = 0
        if len(pool):
            buf = self._buffers
            size = compiled.keep_rows(
                ~pool.leaves, buf["id"], buf["market"], buf["tier"], buf["family"], buf["budget"], buf["alpha"],
                buf["taste"], buf["arrived"], buf["choice"], buf["leaves"],
            )  # fmt: skip
        self._reserve(size + sum(new.counts), size)
        buf = self._buffers
        alpha_at_median = b.price_sensitivity * (b.budget_reference / b.budget_median) ** b.income_elasticity
        next_id = new.first_id
        for m, n in enumerate(new.counts):
            if n == 0:
                continue
            rows = slice(size, size + n)
            compiled.draw_buyers(
                compiled.new_key(rngs[m]),
                np.cumsum(self.tier_shares[m]),
                compiled.bernoulli_threshold_of(b.family_share),
                float(np.log(b.budget_median)),
                float(b.budget_sigma),
                float(alpha_at_median),
                float(b.income_elasticity),
                new.mean,
                new.sd,
                TASTES.index("large"),
                float(b.family_large_car),
                buf["tier"][rows],
                buf["family"][rows],
                buf["budget"][rows],
                buf["alpha"][rows],
                buf["taste"][rows],
            )
            buf["id"][rows] = np.arange(next_id, next_id + n)
            next_id += n
            buf["market"][rows] = m
            buf["arrived"][rows] = new.month
            buf["leaves"][rows] = False
            size += n
        for name in BuyerPool.ARRAYS:
            setattr(pool, name, buf[name][:size])

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

    def adopt(self, pool: BuyerPool) -> None:
        """The pool copied into fresh buffers, its columns made views of them (as :meth:`arrive` leaves them)."""
        self._buffers = {}
        self._reserve(len(pool), 0)
        for name in BuyerPool.ARRAYS:
            view = self._buffers[name][: len(pool)]
            view[...] = getattr(pool, name)
            setattr(pool, name, view)

    def arrange(self, products: NDArray[np.intp], paid: NDArray[np.float64]) -> NDArray[np.intp]:
        """Cheapest paid price first: the kernel reads what a buyer can afford as a prefix."""
        return products[np.argsort(paid, kind="stable")]

    def choose(self, offer: Offer, pool: BuyerPool, rows: NDArray[np.intp], may_defer: Mask, stays: Mask, rng: Rng) -> NDArray[np.int64]:
        """:func:`sim.model.kernel.serve_market`, which also draws who of those taking no product stays."""
        from sim.model import kernel as compiled

        b = self.buyers
        key = compiled.new_key(rng)
        return compiled.serve_market(  # type: ignore[no-any-return]
            rows,
            pool.taste,
            pool.alpha,
            pool.budget,
            pool.tier,
            may_defer,
            np.ascontiguousarray(offer.attrs.T),
            offer.delta,
            offer.paid,
            offer.brand.astype(np.int64),
            offer.nest.astype(np.int64),
            offer.lam.astype(np.float64),
            compiled.bernoulli_threshold(offer.consider),
            1.0 + b.budget_stretch,
            float(b.outside_value),
            # A known rise next month lowers the value of waiting: v0 = u0 - gamma * alpha * rise (ODD 7.7).
            float(-b.price_expectation * offer.expected_rise),
            compiled.bernoulli_threshold_of(b.defer_share),
            np.minimum(offer.limits, rows.size + 1).astype(np.int64),
            offer.products.astype(np.int64),
            key,
            pool.choice,
            stays,
            self._records_for(rows.size),
        )

    def _records_for(self, n: int) -> NDArray[np.float32]:
        """The compiled kernel's scratch rows for ``n`` buyers, kept from month to month (grown by a quarter)."""
        from sim.model import kernel as compiled

        if self._records is None or self._records.shape[0] < n:
            self._records = compiled.records_buffer(n + n // 4, len(TASTES))
        return self._records


class NumpyKernel(Kernel):
    """The numpy kernel: one call of the market's stream per attribute, :func:`sim.model.market.serve_in_order`."""

    name = "numpy"

    def arrive(self, pool: BuyerPool, new: Arrivals, rngs: Sequence[Rng]) -> None:
        """New buyers drawn by numpy from the market's stream, one call per attribute."""
        if len(pool):
            pool.keep(~pool.leaves)
        b = self.buyers
        next_id = new.first_id
        for m, n in enumerate(new.counts):
            if n == 0:
                continue
            rng = rngs[m]
            shares = self.tier_shares[m]
            tier = rng.choice(len(shares), size=n, p=shares).astype(np.int16)
            family = rng.random(n) < b.family_share
            budget = (b.budget_median * np.exp(b.budget_sigma * rng.standard_normal(n))).astype(np.float32)
            taste = new.mean + new.sd * rng.standard_normal((n, len(TASTES)), dtype=np.float32)
            large = TASTES.index("large")
            taste[:, large] += np.where(family, b.family_large_car, 0.0).astype(np.float32)
            alpha = market.price_sensitivity(b.price_sensitivity, budget, b.budget_reference, b.income_elasticity)
            ids = np.arange(next_id, next_id + n, dtype=np.int64)
            next_id += n
            pool.extend(
                BuyerPool(
                    id=ids,
                    market=np.full(n, m, np.int16),
                    tier=tier,
                    family=family,
                    budget=budget,
                    alpha=alpha,
                    taste=taste,
                    arrived=np.full(n, new.month, np.int32),
                    choice=np.full(n, -2, np.int32),
                    leaves=np.zeros(n, bool),
                )
            )

    def choose(self, offer: Offer, pool: BuyerPool, rows: NDArray[np.intp], may_defer: Mask, stays: Mask, rng: Rng) -> NDArray[np.int64]:
        """Consideration, affordability and ``Exp(1)`` draws from the market's stream, then
        :func:`sim.model.market.serve_in_order` in a random order (who stays is drawn later)."""
        b = self.buyers
        n, prods = rows.size, offer.products
        if prods.size == 0:
            pool.choice[rows] = market.OUTSIDE
            return np.zeros(0, np.int64)
        taste = np.concatenate([pool.taste[rows], pool.alpha[rows, None]], axis=1)
        v = market.utilities(taste, offer.attrs, offer.delta)
        considers = rng.random((n, self.n_brands), dtype=np.float32) < offer.consider.astype(np.float32)[pool.tier[rows]]
        affordable = offer.paid[None, :] <= pool.budget[rows, None] * (1.0 + b.budget_stretch)
        available = considers[:, offer.brand] & affordable
        v0 = (b.outside_value - b.price_expectation * pool.alpha[rows] * offer.expected_rise).astype(np.float32)
        e = rng.standard_exponential((n, prods.size), dtype=np.float32)
        e0 = rng.standard_exponential((n, offer.lam.size + 1), dtype=np.float32)
        order = rng.permutation(n)
        choice, _ = market.serve_in_order(v, available, v0, offer.nest, offer.lam, e, e0, offer.limits, order)
        pool.choice[rows] = np.where(choice >= 0, prods[np.maximum(choice, 0)], market.OUTSIDE)
        return np.bincount(choice[choice >= 0], minlength=prods.size)

    def adopt(self, pool: BuyerPool) -> None:
        """Nothing: the numpy kernel keeps the pool's arrays as they are."""

    def who_stays(self, pool: BuyerPool, may_defer: Mask, stays: Mask, rngs: Sequence[Rng]) -> Mask:
        """Of the buyers who ordered nothing, the deferrers: one draw each, market by market, after all chose."""
        draw = np.empty(len(pool))
        for m, rng in enumerate(rngs):
            rows = np.flatnonzero(pool.market == m)
            draw[rows] = rng.random(rows.size)
        return (pool.choice < 0) & (draw < self.buyers.defer_share) & may_defer  # type: ignore[no-any-return]


def make_kernel(name: str, buyers: Buyers, tier_shares: Sequence[NDArray[np.float64]], n_brands: int) -> Kernel:
    """The kernel called ``name`` (:data:`KERNELS`) for a model's buyers.

    Raises:
        InputError: an unknown name, numba missing, or more brands than the numba kernel handles.
    """
    kinds: dict[str, type[Kernel]] = {"numba": NumbaKernel, "numpy": NumpyKernel}
    return kinds[resolve_kernel(name)](buyers, tier_shares, n_brands)
