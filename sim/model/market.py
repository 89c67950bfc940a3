"""Market math: arrivals, awareness, reach, capacity, utilities, choice, allocation and delivery.

Pure functions of arrays, no Mesa and no I/O; the symbols are those of docs/ODD.md
(see its notation table). Utilities are in "utils" (logit scale); prices in RMB.

The choice rule is a nested logit drawn by the Gumbel-max trick in its exponential
form: with ``W_ij = exp(V_ij / lambda_k)`` for product j in nest k,
``S_ik = sum_j W_ij``, independent ``E ~ Exp(1)`` draws,

    nest chosen    = argmax_k  S_ik^lambda_k / E0_ik   (outside option: exp(v0_i) / E0_i0)
    product chosen = argmax_{j in k} W_ij / E_ij

which gives exactly the nested-logit probabilities (plain logit when every
lambda is 1), with the random draws fixed per buyer, so that a buyer turned
away from a sold-out product takes the next choice among what is left.

This is the numpy kernel's choice (:class:`sim.model.kernels.NumpyKernel`). The production
path is the compiled kernel of :mod:`sim.model.kernel`, which draws the same law differently
(by inverse CDF, one uniform per decision instead of one per product).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

OUTSIDE = -1

# ------------------------------------------------------------------ demand side


def seasonality_factor(
    year: int,
    month: int,
    monthly: list[float] | F64,
    lunar_new_year: dict[str, str],
    depth: float,
    window_days: int = 14,
) -> float:
    """Demand multiplier of one calendar month.

    The monthly pattern (renormalised to mean 1) times a Lunar New Year trough:
    the holiday window starts 3 days before New Year's Day and lasts
    ``window_days``; a month loses ``depth`` times the share of the window that
    falls in it.

    Args:
        year, month: the calendar month (month 1..12).
        monthly: 12 multipliers, January first.
        lunar_new_year: ``{"2024": "2024-02-10", ...}``.
        depth: share of a month's demand lost if the whole window falls in it.
        window_days: length of the holiday window, days.
    """
    m = np.asarray(monthly, float)
    factor = m[month - 1] / m.mean()
    if depth > 0:
        overlap, _ = _lunar_window_days(year, month, lunar_new_year, window_days)
        factor *= 1.0 - depth * overlap / window_days
    return float(factor)


def _lunar_window_days(year: int, month: int, lunar_new_year: dict[str, str], days: float) -> tuple[float, int]:
    """Days of a window of ``days`` from 3 days before Lunar New Year that fall in a month, and its length."""
    first = _dt.datetime(year, month, 1)
    nxt = _dt.datetime(year + (month == 12), month % 12 + 1, 1)
    date = lunar_new_year.get(str(year))
    if not date:
        return 0.0, (nxt - first).days
    start = _dt.datetime.fromisoformat(date) - _dt.timedelta(days=3)
    end = start + _dt.timedelta(days=days)
    overlap = (min(end, nxt) - max(start, first)).total_seconds() / 86400.0
    return max(overlap, 0.0), (nxt - first).days


def shutdown_share(year: int, month: int, lunar_new_year: dict[str, str], days: float) -> float:
    """Share of a calendar month's production lost to a Spring Festival shutdown.

    The shutdown starts 3 days before Lunar New Year's Day (as the demand trough) and lasts
    ``days``; a month loses the days of it that fall inside it over the month's length.
    """
    if days <= 0:
        return 0.0
    overlap, length = _lunar_window_days(year, month, lunar_new_year, days)
    return overlap / length


def expected_arrivals(
    buyers_per_month: float,
    months_since_reference: int,
    growth_per_year: float,
    year_multiplier: float,
    season: float,
) -> float:
    """Expected potential buyers arriving in a month (people)."""
    trend = (1.0 + growth_per_year) ** (months_since_reference / 12.0)
    return buyers_per_month * trend * year_multiplier * season


def awareness_step(
    awareness: F64, innovation: F64 | float, imitation: float, owners: F64, reference_owners: float
) -> F64:
    """Bass-style awareness update: ``A + (1 - A) * (p + q * owners / reference)``, clipped to [0, 1]."""
    hazard = np.clip(np.asarray(innovation) + imitation * np.asarray(owners) / reference_owners, 0.0, 1.0)
    return np.clip(awareness + (1.0 - awareness) * hazard, 0.0, 1.0)


def store_reach(effective_stores: F64, k: F64 | float) -> F64:
    """Share of buyers a store network reaches: ``1 - exp(-k * stores)``."""
    return 1.0 - np.exp(-np.asarray(k) * np.maximum(np.asarray(effective_stores, float), 0.0))


def ramp_capacity(months_since_start: I64 | int, ramp_months: I64 | int, full: F64 | float) -> F64:
    """Capacity with a linear ramp: month 0 gives ``full / ramp``, month ``ramp - 1`` gives ``full``."""
    t = np.asarray(months_since_start, float)
    r = np.maximum(np.asarray(ramp_months, float), 1.0)
    return np.where(t < 0, 0.0, np.asarray(full, float) * np.minimum(1.0, (t + 1.0) / r))


def cancellation_rate(wait_months: F64, rate_per_wait_month: float) -> F64:
    """Monthly share of the order backlog cancelled: ``1 - exp(-c * wait)``."""
    return 1.0 - np.exp(-rate_per_wait_month * np.maximum(np.asarray(wait_months, float), 0.0))


def price_sensitivity(alpha: float, budget: F32, budget_reference: float, eta: float) -> F32:
    """Buyer-specific price sensitivity (utils per 100k RMB), falling with budget."""
    return (alpha * (budget_reference / budget) ** eta).astype(np.float32)


# -------------------------------------------------------------------- choice


def utilities(taste: F32, attributes: F32, delta: F32) -> F32:
    """Systematic utility ``V = taste @ attributes.T + delta`` (buyers x products), float32.

    ``taste`` carries each buyer's coefficients, the last column being the
    price sensitivity; ``attributes`` the products' characteristics, the last
    column being minus the price paid in 100k RMB.
    """
    v = taste @ attributes.T
    v += delta[None, :]
    return v


def choose(
    v: F32,
    available: B,
    v0: F32,
    nest: NDArray[np.intp],
    lam: F32,
    e: F32,
    e0: F32,
) -> NDArray[np.intp]:
    """Nested-logit choice by the exponential Gumbel-max trick.

    Args:
        v: systematic utilities, buyers x products.
        available: which products each buyer can choose (considered, affordable, open).
        v0: utility of the outside option per buyer.
        nest: nest index (0..K-1) of each product.
        lam: nesting parameter per nest (1 = no correlation inside the nest).
        e: Exp(1) draws, buyers x products.
        e0: Exp(1) draws, buyers x (K + 1); the last column is the outside option's.

    Returns:
        Product index chosen per buyer, or ``OUTSIDE`` (-1).
    """
    w, v0m, lift = choice_weights(v, available, v0, nest, lam)
    return pick(w, v0m, lift, nest, lam, e, e0)


def choice_weights(v: F32, available: B, v0: F32, nest: NDArray[np.intp], lam: F32) -> tuple[F32, F32, F32]:
    """Weights of the choice: ``(W, v0', lift)``.

    Plain logit: ``W_ij = exp(V_ij - m_i)`` with ``m_i`` the buyer's largest utility (outside
    option included) and ``v0' = v0 - m``. Nested logit: each nest relative to its best
    available product, ``W_ij = exp((V_ij - b_ik) / lambda_k)``, ``lift_ik = b_ik`` (buyers x
    nests; -inf for a nest with nothing available) and ``v0' = v0``, so that the nest's
    inclusive value ``lift_ik + lambda_k log sum_j W_ij`` stays exact however small lambda
    is. Unavailable products weigh 0.
    """
    n, j = v.shape
    k = lam.shape[0]
    if n == 0 or j == 0:
        return np.zeros((n, j), np.float32), v0.astype(np.float32), np.full((n, k), -np.inf, np.float32)
    masked = np.where(available, v, np.float32(-np.inf))
    if _is_plain_logit(lam):
        m = np.maximum(masked.max(axis=1), v0)
        masked -= m[:, None]
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            w = np.exp(masked, out=masked)  # unavailable products: exp(-inf) = 0
        return w, (v0 - m).astype(np.float32), np.zeros((n, 1), np.float32)
    if k == 1:
        best = masked.max(axis=1, keepdims=True)
    else:
        best = np.full((n, k), -np.inf, np.float32)
        for g in range(k):
            cols = nest == g
            if cols.any():
                best[:, g] = masked[:, cols].max(axis=1)
    with np.errstate(invalid="ignore"):
        masked -= best[:, nest]  # -inf - -inf = nan where a nest has nothing available: set to -inf below
    masked[~available] = -np.inf
    if k == 1:
        if lam[0] != 1.0:
            masked *= np.float32(1.0 / lam[0])
    else:
        masked /= lam[nest][None, :]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        w = np.exp(masked, out=masked)
    return w, v0.astype(np.float32), best


def pick(w: F32, v0m: F32, lift: F32, nest: NDArray[np.intp], lam: F32, e: F32, e0: F32) -> NDArray[np.intp]:
    """The choice given the weights of :func:`choice_weights` (``w`` is left unchanged)."""
    n, j = w.shape
    k = lam.shape[0]
    if n == 0:
        return np.empty(0, np.intp)
    if j == 0:
        return np.full(n, OUTSIDE, np.intp)
    unavailable = ~(w > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = w / e  # an Exp(1) draw of exactly 0 gives inf: that product wins, as it should
    if _is_plain_logit(lam):
        # Plain logit: every product and the outside option carry their own fixed draw.
        ratio[unavailable] = -1.0
        choice = np.argmax(ratio, axis=1)
        best = ratio[np.arange(n), choice]
        with np.errstate(divide="ignore"):
            outside = np.exp(v0m) / e0[:, k]
        choice[~(best > outside)] = OUTSIDE
        return choice.astype(np.intp)
    s = _nest_sums(w, nest, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        nest_score = np.where(s > 0, lift + lam[None, :] * np.log(s) - np.log(e0[:, :k]), -np.inf)
        outside_score = v0m - np.log(e0[:, k])
    best_nest = np.argmax(nest_score, axis=1)
    best_score = nest_score[np.arange(n), best_nest]
    goes_outside = ~(best_score > outside_score)
    if k == 1:
        ratio[unavailable] = -1.0
    else:
        ratio[unavailable | (nest[None, :] != best_nest[:, None])] = -1.0
    choice = np.argmax(ratio, axis=1)
    choice[goes_outside] = OUTSIDE
    return choice.astype(np.intp)


def _nest_sums(w: F32, nest: NDArray[np.intp], k: int) -> F32:
    """``S_ik = sum_{j in k} W_ij``, buyers x nests."""
    if k == 1:
        return w.sum(axis=1, keepdims=True)
    onehot = np.zeros((w.shape[1], k), np.float32)
    onehot[np.arange(w.shape[1]), nest] = 1.0
    return w @ onehot


def _is_plain_logit(lam: F32) -> bool:
    return lam.shape[0] == 1 and float(lam[0]) == 1.0


def serve_in_order(
    v: F32,
    available: B,
    v0: F32,
    nest: NDArray[np.intp],
    lam: F32,
    e: F32,
    e0: F32,
    limits: F64,
    order: NDArray[np.intp],
) -> tuple[NDArray[np.intp], B]:
    """Choices under order limits, equal to serving buyers one by one.

    Buyers are served in ``order`` (a permutation: ``order[0]`` first). Each takes
    its choice among the products still open; a product closes when it has taken
    ``limits[j]`` orders. Vectorised: all buyers choose; the product that fills up
    earliest in the queue is closed behind the buyer who took its last unit; the
    buyers behind that point whose choice the closure can change (in plain logit,
    those who chose it; in a nested logit, those who chose in its nest, whose
    inclusive value fell, their weights taken again over what is open) choose again;
    repeat. Each round closes one product, so the result equals the one-by-one queue
    exactly for the same draws.

    Returns:
        ``(choice, closed)``: product per buyer (``OUTSIDE`` = none) and the
        products that closed this month.
    """
    n, j = v.shape
    remaining = np.floor(np.asarray(limits, float))
    closed = remaining <= 0
    avail = available & ~closed[None, :] if closed.any() else available
    w, v0m, lift = choice_weights(v, avail, v0, nest, lam)
    choice = pick(w, v0m, lift, nest, lam, e, e0)
    direct = _is_plain_logit(lam)
    queue = np.asarray(order, np.intp)
    p = 0
    while p < n:
        sub = queue[p:]
        ch = choice[sub]
        inside = ch >= 0
        counts = np.bincount(ch[inside], minlength=j)
        full = np.flatnonzero((counts >= remaining) & ~closed & (counts > 0))
        if full.size == 0:
            break
        # Position (in `sub`) of the buyer who takes the last unit of each product that fills up.
        srt = np.argsort(np.where(inside, ch, j), kind="stable")
        starts = np.concatenate(([0], np.cumsum(counts)))
        filler = srt[starts[full] + remaining[full].astype(np.int64) - 1]
        which = int(np.argmin(filler))
        r, done = int(filler[which]) + 1, int(full[which])
        served = ch[:r]
        remaining -= np.bincount(served[served >= 0], minlength=j)
        closed[done] = True
        p += r
        rest = queue[p:]
        picked = choice[rest]
        if direct:  # fixed utilities: only those who wanted the closed product choose again
            w[:, done] = 0.0  # closed for everyone still to be served (those before are final)
            redo = rest[picked == done]
            if redo.size:
                choice[redo] = pick(w[redo], v0m[redo], lift[redo], nest, lam, e[redo], e0[redo])
            continue
        # Nested logit: who chose in the closed product's nest has its weights taken again over what is open.
        g = nest[done]
        in_nest = rest[(picked >= 0) & (nest[np.maximum(picked, 0)] == g)]
        if in_nest.size == 0:
            continue
        w_n, v0m_n, lift_n = choice_weights(v[in_nest], available[in_nest] & ~closed[None, :], v0[in_nest], nest, lam)
        w[in_nest], v0m[in_nest], lift[in_nest] = w_n, v0m_n, lift_n
        redo = _nest_lost_value(w_n, v0m_n, lift_n, nest, lam, e0[in_nest], in_nest, done, choice)
        if redo.size:
            choice[redo] = pick(w[redo], v0m[redo], lift[redo], nest, lam, e[redo], e0[redo])
    return choice, closed


def _nest_lost_value(
    w: F32,
    v0m: F32,
    lift: F32,
    nest: NDArray[np.intp],
    lam: F32,
    e0: F32,
    in_nest: NDArray[np.intp],
    done: int,
    choice: NDArray[np.intp],
) -> NDArray[np.intp]:
    """After product ``done`` closed, settle the buyers ``in_nest`` who chose in its nest (weights over what is open).

    Those who chose ``done`` must choose again (returned). The others keep their product
    unless their nest, now worth less, loses to the outside option (set here) or to
    another nest (returned, to choose again): inside a nest, removing a product they
    did not pick leaves their pick unchanged.
    """
    g = nest[done]
    wanted = choice[in_nest] == done
    k = lam.shape[0]
    s = _nest_sums(w, nest, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(s > 0, lift + lam[None, :] * np.log(s) - np.log(e0[:, :k]), -np.inf)
        outside = v0m - np.log(e0[:, k])
    best_nest = np.argmax(score, axis=1)
    best = score[np.arange(in_nest.size), best_nest]
    goes_out = ~wanted & ~(best > outside)
    choice[in_nest[goes_out]] = OUTSIDE
    moves = ~wanted & ~goes_out & (best_nest != g)
    return np.concatenate([in_nest[wanted], in_nest[moves]])


# ------------------------------------------------------------ closed forms (tests)


def logit_probabilities(v: F64, v0: float = 0.0) -> F64:
    """Multinomial-logit probabilities of products and (last) the outside option."""
    u = np.append(np.asarray(v, float), v0)
    u = u - u.max()
    ex = np.exp(u)
    return ex / ex.sum()


def nested_logit_probabilities(v: F64, nest: NDArray[np.intp], lam: F64, v0: float = 0.0) -> F64:
    """Nested-logit probabilities of products and (last) the outside option."""
    v = np.asarray(v, float)
    lam = np.asarray(lam, float)
    k = lam.shape[0]
    inclusive = np.array([np.log(np.exp(v[nest == g] / lam[g]).sum()) if (nest == g).any() else -np.inf for g in range(k)])
    nest_w = np.exp(lam * inclusive)
    denom = nest_w.sum() + np.exp(v0)
    p_nest = nest_w / denom
    within = np.exp(v / lam[nest]) / np.exp(inclusive[nest])
    return np.append(p_nest[nest] * within, np.exp(v0) / denom)


def segment_of(price: F64, floors: F64) -> NDArray[np.intp]:
    """The price segment of each price: the segment with the highest floor (lowest price, RMB) at or below it.

    A price below every floor falls in the lowest segment.
    """
    order = np.argsort(floors)
    pos = np.searchsorted(floors[order], price, side="right") - 1
    return order[np.clip(pos, 0, len(floors) - 1)].astype(np.intp)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ supply side


@dataclass(frozen=True)
class Delivery:
    """A month of supply, products (P) x markets (M), in units.

    Attributes:
        cancelled: orders of the backlog cancelled this month (P x M).
        units: units delivered (P x M).
        delivered: units delivered, all markets (P).
        production: units built (P).
        stock: units in stock at the end of the month (P).
        backlog: orders waiting at the end of the month (P x M).
    """

    cancelled: F64
    units: F64
    delivered: F64
    production: F64
    stock: F64
    backlog: F64


def deliver(
    backlog: F64,
    orders: F64,
    wait: F64,
    cancel_rate_per_wait_month: float,
    capacity: F64,
    deliverable: B,
    stock: F64,
    target_stock: F64,
) -> Delivery:
    """Cancellations, deliveries from stock and capacity, production and the new stock and backlog.

    The backlog carried into the month loses its cancellations (a share rising with the wait),
    takes the month's orders, and is delivered, per product, from stock plus this month's
    capacity (split over markets by largest remainder); production fills the orders delivered
    and tops stock up towards its target, within capacity.

    Args:
        backlog: orders waiting at the start of the month (P x M).
        orders: orders taken this month (P x M).
        wait: expected wait of an order, months (P).
        cancel_rate_per_wait_month: cancellation hazard per month of wait.
        capacity: this month's capacity, units (P).
        deliverable: whether deliveries have started (P).
        stock: units in stock at the start of the month (P).
        target_stock: units the brand wants in stock (P).
    """
    cancelled = np.rint(backlog * cancellation_rate(wait, cancel_rate_per_wait_month)[:, None])
    pending = backlog - cancelled + orders
    total_pending = pending.sum(axis=1)
    available = np.where(deliverable, stock + capacity, 0.0)
    delivered = np.minimum(total_pending, available)
    units = np.zeros_like(pending)
    rows = np.flatnonzero(delivered > 0)
    units[rows] = split_rows_largest_remainder(delivered[rows].astype(np.int64), pending[rows])
    production = np.where(
        deliverable, np.minimum(capacity, np.maximum(0.0, np.ceil(delivered + target_stock - stock))), 0.0
    )
    production = np.maximum(production, delivered - stock)
    return Delivery(cancelled, units, delivered, production, stock + production - delivered, pending - units)


def split_largest_remainder(total: int, weights: F64) -> I64:
    """Split an integer ``total`` in proportion to ``weights``, in integers summing to ``total``."""
    w = np.asarray(weights, float)
    return split_rows_largest_remainder(np.array([total], np.int64), w.reshape(1, -1))[0].reshape(w.shape)


def split_rows_largest_remainder(totals: I64, weights: F64) -> I64:
    """:func:`split_largest_remainder` of each row, ``totals[i]`` in proportion to ``weights[i]`` (rows x N), as row
    by row: the floors of the exact shares, and one more for each largest remainder (ties to the earlier column)."""
    w, totals = np.asarray(weights, float), np.asarray(totals, np.int64)
    sums = w.sum(axis=1)
    ok = (totals > 0) & (sums > 0)  # the other rows get zeros
    exact = totals[ok, None] * w[ok] / sums[ok, None]
    base = np.floor(exact).astype(np.int64)
    rank = np.argsort(np.argsort(-(exact - base), axis=1, kind="stable"), axis=1)  # 0: the largest remainder
    out = np.zeros(w.shape, np.int64)
    out[ok] = base + (rank < (totals[ok] - base.sum(axis=1))[:, None])
    return out
