"""Naive reference of the monthly buyer decision: one Mesa agent per buyer, one Python ``step()`` each.

The yardstick for speed and the oracle for correctness of the choice paths; it is not used
by the product. The numpy path (:func:`sim.model.market.serve_in_order`) draws as these agents do
and equals them buyer for buyer on fixed draws; the production path, the compiled kernel
(:mod:`sim.model.kernel`), draws the same law differently (inverse CDF, draws again from the
residual law) and agrees with them statistically (``tests/test_bench.py``). It applies the
rule written the plain Mesa way and independently of ``sim.model.market`` and ``sim.model.kernel``:

* each buyer i draws its own Exp(1) values ``E_ij`` (one per product) and ``E0_ik`` (one
  per nest, and one for the outside option);
* plain logit (one nest, lambda = 1): with ``W_ij = exp(V_ij - m_i)`` (``m_i``: its largest
  utility over what it is offered and the outside option, a shift that changes nothing but
  keeps ``exp`` finite), it takes ``argmax_j W_ij / E_ij`` if that beats
  ``exp(v0_i - m_i) / E0_i0``, else nothing;
* nested logit: with ``W_ij = exp((V_ij - b_ik) / lambda_k)`` over the nest's open products
  (``b_ik``: the best of them, so that the inclusive value is exact however small lambda
  is), it picks the nest ``argmax_k b_ik + lambda_k log S_ik - log E0_ik`` (``S_ik``: the
  sum of ``W_ij``) unless the outside option's ``v0_i - log E0_i0`` is at least as high,
  then ``argmax_{j in k} W_ij / E_ij``;
* buyers are served one by one in the random order of ``model.agents.shuffle_do("step")``;
  each chooses among the products whose order limit is not yet reached (a sold-out product
  is gone from its nest too). In plain logit this is the same as choosing among everything
  and, if the choice is sold out, choosing again with the same draws among what is left; in
  a nested logit it is not, since a sold-out product no longer adds to its nest's value.

Arithmetic is float32, as in the production path, so that on fixed draws the two agree
buyer for buyer.
"""

from __future__ import annotations

import mesa
import numpy as np
from numpy.typing import NDArray

OUTSIDE = -1


class NaiveBuyer(mesa.Agent):
    """One buyer: its utilities, what it is offered, and (optionally) fixed random draws.

    Attributes:
        index: the buyer's row in the population.
        v: systematic utility of each product (utils), float32.
        available: which products the buyer may choose.
        v0: utility of the outside option (utils).
        e, e0: fixed Exp(1) draws (products; nests then outside option), or None to draw
            fresh ones from ``model.rng`` each month.
        choice: the product taken this month, or ``OUTSIDE``.
    """

    def __init__(
        self,
        model: NaiveMarket,
        index: int,
        v: NDArray[np.float32],
        available: NDArray[np.bool_],
        v0: np.float32,
        e: NDArray[np.float32] | None = None,
        e0: NDArray[np.float32] | None = None,
    ) -> None:
        super().__init__(model)
        self.index = index
        self.v = v
        self.available = available
        self.v0 = v0
        self.e = e
        self.e0 = e0
        self.choice = OUTSIDE

    def step(self) -> None:
        """Draw, and choose among the products not sold out before this buyer's turn."""
        model: NaiveMarket = self.model  # type: ignore[assignment]
        if self.e is None or self.e0 is None:
            draws = model.rng.standard_exponential(model.n_products + model.n_nests + 1, dtype=np.float32)
            e, e0 = draws[: model.n_products], draws[model.n_products :]
        else:
            e, e0 = self.e, self.e0
        offered = self.available & model.open_at_start
        now = offered & (model.remaining > 0)
        if model.plain_logit:
            # The shift is taken over what the buyer is offered when the month opens, sold out later or not.
            m = np.float32(max(float(self.v[offered].max(initial=-np.inf)), float(self.v0)))
            w = np.exp(self.v - m)
            w[~now] = 0.0  # not offered, or sold out before this buyer's turn
            j = self.choose_logit(w, np.float32(self.v0 - m), e, e0)
        else:
            # A sold-out product also leaves its nest's value, so the buyer chooses among what is left.
            j = self.choose_nested(now, e, e0)
        assert j == OUTSIDE or model.remaining[j] > 0
        self.choice = j
        model.serve(self.index, j)

    def choose_logit(self, w: NDArray[np.float32], v0m: np.float32, e: NDArray[np.float32], e0: NDArray[np.float32]) -> int:
        """Plain logit: the product of largest ``W_j / E_j``, if it beats the outside option's ``exp(v0 - m) / E0``."""
        ratio = np.where(w > 0, w / e, np.float32(-1.0))
        j = int(np.argmax(ratio))
        return j if ratio[j] > np.exp(v0m) / e0[-1] else OUTSIDE

    def choose_nested(self, now: NDArray[np.bool_], e: NDArray[np.float32], e0: NDArray[np.float32]) -> int:
        """Nested logit among the products ``now`` open to the buyer, by the exponential Gumbel-max rule.

        Each nest's weights are taken relative to its best product, ``W_j = exp((V_j - b) / lambda)``,
        and its score is ``b + lambda log sum W - log E0_g`` (exact however small lambda is).
        """
        model: NaiveMarket = self.model  # type: ignore[assignment]
        lam, nest = model.lam, model.nest
        k = lam.shape[0]
        w = np.zeros(self.v.shape, np.float32)
        best_nest, best_score = OUTSIDE, -np.inf
        for g in range(k):
            cols = now & (nest == g)
            if not cols.any():
                continue
            b = self.v[cols].max()
            x = self.v[cols] - b
            if k == 1 and lam[0] != 1.0:  # one nest: scale by the reciprocal, as the numpy path does (same rounding)
                x *= np.float32(1.0 / lam[0])
            elif k > 1:
                x /= lam[g]
            w[cols] = np.exp(x)
            score = b + lam[g] * np.log(w[cols].sum()) - np.log(e0[g])
            if score > best_score:
                best_nest, best_score = g, score
        if best_nest == OUTSIDE or not best_score > self.v0 - np.log(e0[k]):
            return OUTSIDE
        inside = now & (nest == best_nest)
        return int(np.argmax(np.where(inside, w / e, np.float32(-1.0))))


class NaiveMarket(mesa.Model):
    """A month of the market with one :class:`NaiveBuyer` agent per buyer.

    Takes the same inputs as :func:`sim.model.market.serve_in_order`.

    Args:
        v: systematic utilities, buyers x products, float32.
        available: which products each buyer may choose, buyers x products.
        v0: utility of the outside option per buyer, float32.
        nest: nest (0..K-1) of each product.
        lam: nesting parameter of each nest (one nest with lambda = 1 is plain logit).
        limits: orders each product may take this month (units; ``inf`` = no limit).
        seed: seed of the model's random generators (the draws and the serving order).
        e, e0: fixed Exp(1) draws (buyers x products; buyers x (K + 1), outside option last),
            or None for each buyer to draw its own every month.
    """

    def __init__(
        self,
        v: NDArray[np.float32],
        available: NDArray[np.bool_],
        v0: NDArray[np.float32],
        nest: NDArray[np.intp],
        lam: NDArray[np.float32],
        limits: NDArray[np.float64],
        seed: int | None = None,
        e: NDArray[np.float32] | None = None,
        e0: NDArray[np.float32] | None = None,
    ) -> None:
        super().__init__(rng=seed)
        n, self.n_products = v.shape
        self.nest = np.asarray(nest, np.intp)
        self.lam = np.asarray(lam, np.float32)
        self.n_nests = self.lam.shape[0]
        self.plain_logit = self.n_nests == 1 and float(self.lam[0]) == 1.0
        self.limits = np.floor(np.asarray(limits, float))
        self.remaining = self.limits.copy()
        self.open_at_start = self.remaining > 0
        self.choice = np.full(n, OUTSIDE, np.intp)
        self.served: list[int] = []
        for i in range(n):
            NaiveBuyer(self, i, v[i], available[i], v0[i], None if e is None else e[i], None if e0 is None else e0[i])

    def serve(self, index: int, product: int) -> None:
        """Record a buyer's decision and take its order off the product's limit."""
        self.served.append(index)
        self.choice[index] = product
        if product != OUTSIDE:
            self.remaining[product] -= 1

    def step(self) -> None:
        """One month: the order limits reset and every buyer decides, in a random order."""
        self.remaining = self.limits.copy()
        self.open_at_start = self.remaining > 0
        self.choice[:] = OUTSIDE
        self.served = []
        self.agents.shuffle_do("step")

    def sales(self) -> NDArray[np.int64]:
        """Orders taken this month per product."""
        inside = self.choice[self.choice >= 0]
        return np.bincount(inside, minlength=self.n_products)
