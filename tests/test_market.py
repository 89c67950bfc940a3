"""The market math of sim/market.py on hand-built markets whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from sim.model import market

# ------------------------------------------------------------------ helpers


def draws(seed: int, n: int, j: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed Exp(1) draws as the model makes them: ``e`` (n x J) and ``e0`` (n x (K + 1))."""
    rng = np.random.default_rng(seed)
    e = rng.standard_exponential((n, j), dtype=np.float32)
    e0 = rng.standard_exponential((n, k + 1), dtype=np.float32)
    return e, e0


def empirical_shares(choice: np.ndarray, j: int) -> np.ndarray:
    """Shares of products 0..J-1 and (last) the outside option."""
    counts = np.bincount(np.where(choice >= 0, choice, j), minlength=j + 1)
    return counts / choice.size


def assert_shares_match(empirical: np.ndarray, expected: np.ndarray, n: int, sigmas: float = 4.0) -> None:
    """Each empirical share lies within ``sigmas`` binomial standard errors of its probability."""
    se = np.sqrt(expected * (1.0 - expected) / n)
    err = np.abs(empirical - expected)
    assert np.all(err <= sigmas * se), f"shares {empirical} vs {expected}: errors {err / se} standard errors"


def serve_one_by_one(v, available, v0, nest, lam, e, e0, limits, order) -> np.ndarray:
    """The definition of serving in order: buyers one at a time, each choosing among open products."""
    n, j = v.shape
    taken = np.zeros(j)
    is_open = np.asarray(limits, float) > 0
    choice = np.full(n, -2, np.intp)
    for i in order:
        row = slice(i, i + 1)
        c = int(market.choose(v[row], available[row] & is_open[None, :], v0[row], nest, lam, e[row], e0[row])[0])
        choice[i] = c
        if c >= 0:
            taken[c] += 1
            if taken[c] >= limits[c]:
                is_open[c] = False
    return choice


# A three-product market, all products available, outside option utility 0.
V3 = np.array([1.0, 0.5, -0.5])
N_DRAWS = 200_000


# ---------------------------------------------------------- closed-form shares


def test_logit_closed_form_three_products():
    # Plain logit: P_j = exp(V_j) / (exp(v0) + sum_k exp(V_k)), v0 = 0.
    # exp(1) = 2.718282, exp(0.5) = 1.648721, exp(-0.5) = 0.606531; denominator 1 + 4.973534 = 5.973534.
    expected = [2.718282 / 5.973534, 1.648721 / 5.973534, 0.606531 / 5.973534, 1.0 / 5.973534]
    assert_allclose(expected, [0.455054, 0.276004, 0.101536, 0.167405], atol=2e-6)
    p = market.logit_probabilities(V3, 0.0)
    assert_allclose(p, expected, atol=1e-6)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_nested_logit_closed_form_two_nests():
    # Products 0 and 1 in nest 0, product 2 in nest 1, lambda = 0.5 in both; v0 = 0.
    # Inclusive values: I_0 = log(exp(1/0.5) + exp(0.5/0.5)) = log(e^2 + e) = log(10.107338),
    #                   I_1 = log(exp(-0.5/0.5)) = -1.
    # Nest weights exp(lambda * I): sqrt(10.107338) = 3.179204 and exp(-0.5) = 0.606531;
    # denominator D = 1 + 3.179204 + 0.606531 = 4.785735.
    # P(nest 0) = 3.179204 / D = 0.664309, P(nest 1) = 0.126737, P(outside) = 1 / D = 0.208954.
    # Within nest 0: P(0|0) = e^2 / (e^2 + e) = 0.731059, P(1|0) = 0.268941.
    # P_0 = 0.664309 * 0.731059 = 0.485648, P_1 = 0.664309 * 0.268941 = 0.178660.
    s0 = math.exp(2.0) + math.exp(1.0)
    d = 1.0 + math.sqrt(s0) + math.exp(-0.5)
    expected = [
        math.sqrt(s0) / d * math.exp(2.0) / s0,
        math.sqrt(s0) / d * math.exp(1.0) / s0,
        math.exp(-0.5) / d,
        1.0 / d,
    ]
    assert_allclose(expected, [0.485648, 0.178660, 0.126737, 0.208954], atol=2e-6)
    p = market.nested_logit_probabilities(V3, np.array([0, 0, 1]), np.array([0.5, 0.5]), 0.0)
    assert_allclose(p, expected, atol=1e-9)


def test_nested_logit_with_lambda_one_is_logit():
    p_nested = market.nested_logit_probabilities(V3, np.array([0, 0, 1]), np.array([1.0, 1.0]), 0.3)
    assert_allclose(p_nested, market.logit_probabilities(V3, 0.3), atol=1e-12)


@pytest.mark.parametrize("v0", [0.0, 1.5, -2.0])
def test_choose_reproduces_logit_shares(v0: float):
    n, j = N_DRAWS, V3.size
    e, e0 = draws(11, n, j, 1)
    v = np.tile(V3.astype(np.float32), (n, 1))
    choice = market.choose(
        v, np.ones((n, j), bool), np.full(n, v0, np.float32), np.zeros(j, np.intp), np.array([1.0], np.float32), e, e0
    )
    assert_shares_match(empirical_shares(choice, j), market.logit_probabilities(V3, v0), n)


@pytest.mark.parametrize(("v0", "lam_value"), [(0.0, 0.5), (1.0, 0.5), (2.0, 0.01), (1.2, 0.03)])
def test_choose_reproduces_nested_logit_shares(v0: float, lam_value: float):
    # Small lambdas too: the inclusive value is about the nest's best utility, not lost to underflow.
    n, j = N_DRAWS, V3.size
    nest = np.array([0, 0, 1], np.intp)
    lam = np.array([lam_value, lam_value], np.float32)
    e, e0 = draws(12, n, j, 2)
    v = np.tile(V3.astype(np.float32), (n, 1))
    choice = market.choose(v, np.ones((n, j), bool), np.full(n, v0, np.float32), nest, lam, e, e0)
    expected = market.nested_logit_probabilities(V3, nest, lam.astype(float), v0)
    assert_shares_match(empirical_shares(choice, j), expected, n)


def test_choose_matches_closed_form_numbers():
    # The hand-computed nested-logit probabilities above, reached by the simulated choices.
    n, j = N_DRAWS, V3.size
    e, e0 = draws(13, n, j, 2)
    v = np.tile(V3.astype(np.float32), (n, 1))
    choice = market.choose(
        v, np.ones((n, j), bool), np.zeros(n, np.float32), np.array([0, 0, 1]), np.array([0.5, 0.5], np.float32), e, e0
    )
    assert_shares_match(empirical_shares(choice, j), np.array([0.485648, 0.178660, 0.126737, 0.208954]), n)


def test_unavailable_product_is_never_chosen_and_the_rest_share_as_logit():
    # Product 0 is unavailable: the others and the outside option share as a logit on {1, 2}.
    n, j = N_DRAWS, V3.size
    e, e0 = draws(14, n, j, 1)
    available = np.ones((n, j), bool)
    available[:, 0] = False
    v = np.tile(V3.astype(np.float32), (n, 1))
    choice = market.choose(v, available, np.zeros(n, np.float32), np.zeros(j, np.intp), np.ones(1, np.float32), e, e0)
    assert not np.any(choice == 0)
    shares = empirical_shares(choice, j)
    expected = market.logit_probabilities(V3[1:], 0.0)
    assert_shares_match(shares[1:], expected, n)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 30),
    j=st.integers(0, 5),
    k=st.integers(1, 3),
    lam=st.sampled_from([0.3, 0.5, 0.8, 1.0]),
)
def test_choose_picks_an_available_product_or_the_outside_option(seed, n, j, k, lam):
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 2.0, (n, j)).astype(np.float32)
    v0 = rng.normal(0.0, 2.0, n).astype(np.float32)
    available = rng.random((n, j)) < 0.6
    nest = rng.integers(0, k, j).astype(np.intp)
    e, e0 = draws(seed + 1, n, j, k)
    choice = market.choose(v, available, v0, nest, np.full(k, lam, np.float32), e, e0)
    assert choice.shape == (n,)
    inside = choice >= 0
    assert np.all((choice == market.OUTSIDE) | inside)
    assert np.all(available[np.flatnonzero(inside), choice[inside]])
    # Buyers with nothing available take the outside option.
    assert np.all(choice[~available.any(axis=1)] == market.OUTSIDE)


# ------------------------------------------------------------- serve in order


def _random_market(seed: int, n: int, j: int, k: int, lam: float, p_available: float = 0.7):
    rng = np.random.default_rng(seed)
    v = rng.normal(0.5, 1.0, (n, j)).astype(np.float32)
    v0 = rng.normal(0.0, 1.0, n).astype(np.float32)
    available = rng.random((n, j)) < p_available
    nest = rng.integers(0, k, j).astype(np.intp)
    lam_k = np.full(k, lam, np.float32)
    e, e0 = draws(seed + 7, n, j, k)
    order = rng.permutation(n).astype(np.intp)
    return v, available, v0, nest, lam_k, e, e0, order


def _check_serve_in_order(v, available, v0, nest, lam, e, e0, limits, order) -> None:
    j = v.shape[1]
    choice, closed = market.serve_in_order(v, available, v0, nest, lam, e, e0, limits, order)
    expected = serve_one_by_one(v, available, v0, nest, lam, e, e0, limits, order)
    assert_array_equal(choice, expected)
    counts = np.bincount(choice[choice >= 0], minlength=j)
    assert np.all(counts <= np.maximum(limits, 0))
    # A product reported closed has taken exactly its limit.
    assert np.all(counts[closed] == np.maximum(limits[closed], 0))


@pytest.mark.parametrize(
    "seed, limits",
    [
        (1, [0, 0, 0, 0]),  # everything closed: all outside
        (2, [0, 500, 500, 500]),  # one product closed from the start, the rest never binds
        (5, [10**9] * 4),  # nothing binds: same as choose()
        (7, [0, 0, 1000, 0]),
    ],
)
def test_serve_in_order_equals_one_by_one_queue_when_limits_close_only_at_the_start(seed, limits):
    v, available, v0, nest, lam, e, e0, order = _random_market(seed, 400, 4, 2, 0.6)
    _check_serve_in_order(v, available, v0, nest, lam, e, e0, np.asarray(limits, float), order)


@pytest.mark.parametrize(
    "seed, limits",
    [
        (0, [40, 40, 40, 40]),  # limits bind in the middle of the queue
        (2, [40, 40, 40, 40]),
        (6, [10, 10, 10, 10]),  # tight limits
    ],
)
def test_serve_in_order_equals_one_by_one_queue_with_binding_limits(seed, limits):
    v, available, v0, nest, lam, e, e0, order = _random_market(seed, 400, 4, 2, 0.6)
    _check_serve_in_order(v, available, v0, nest, lam, e, e0, np.asarray(limits, float), order)


def test_serve_in_order_plain_logit_keeps_fixed_utilities():
    # Plain logit (one nest, lambda 1) draws one fixed utility per product and per outside option:
    # score_j = exp(v_j - m) / e_j, outside = exp(v0 - m) / e0[:, 1]. Two buyers, v = 0, product 0 takes 1 order.
    # Buyer 0 (first): scores (1/1, 1/2), outside 1/2 -> product 0, which is then full.
    # Buyer 1: scores (1/2, 1/1), outside 1/2 -> product 1; closing product 0 does not change that.
    v = np.zeros((2, 2), np.float32)
    available = np.ones((2, 2), bool)
    v0 = np.zeros(2, np.float32)
    nest, lam = np.zeros(2, np.intp), np.ones(1, np.float32)
    e = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)
    e0 = np.array([[1.0, 2.0], [1.0, 2.0]], np.float32)
    limits, order = np.array([1.0, 5.0]), np.array([0, 1], np.intp)
    assert serve_one_by_one(v, available, v0, nest, lam, e, e0, limits, order).tolist() == [0, 1]
    choice, closed = market.serve_in_order(v, available, v0, nest, lam, e, e0, limits, order)
    assert choice.tolist() == [0, 1]
    assert closed.tolist() == [True, False]


def test_serve_in_order_nested_logit_closure_can_send_nest_members_outside():
    # Nested logit (lambda 0.5): closing product 0 lowers the inside nest's inclusive value, so buyer 1,
    # who chose product 1, is re-evaluated: nest score 0.5*log(S) - log(e0) against the outside option.
    # Buyer 1 with both open: S = 2, 0.5*log 2 = 0.347 > outside -log(0.8) = 0.223 -> product 1.
    # With product 0 closed: S = 1, 0 < 0.223 -> outside. The queue gives (0, OUTSIDE).
    v = np.zeros((2, 2), np.float32)
    available = np.ones((2, 2), bool)
    v0 = np.zeros(2, np.float32)
    nest, lam = np.zeros(2, np.intp), np.array([0.5], np.float32)
    e = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)
    e0 = np.array([[1.0, 1.0], [1.0, 0.8]], np.float32)
    limits, order = np.array([1.0, 5.0]), np.array([0, 1], np.intp)
    assert serve_one_by_one(v, available, v0, nest, lam, e, e0, limits, order).tolist() == [0, market.OUTSIDE]
    choice, _ = market.serve_in_order(v, available, v0, nest, lam, e, e0, limits, order)
    assert choice.tolist() == [0, market.OUTSIDE]


def test_serve_in_order_without_binding_limits_is_choose():
    v, available, v0, nest, lam, e, e0, order = _random_market(8, 300, 4, 2, 0.7)
    choice, closed = market.serve_in_order(v, available, v0, nest, lam, e, e0, np.full(4, 1e9), order)
    assert_array_equal(choice, market.choose(v, available, v0, nest, lam, e, e0))
    assert not closed.any()


SIZES = {
    "seed": st.integers(0, 2**32 - 1),
    "n": st.integers(0, 40),
    "j": st.integers(1, 5),
    "k": st.integers(1, 3),
    "lam": st.sampled_from([0.02, 0.4, 0.7, 1.0]),
    "limits": st.lists(st.integers(0, 15), min_size=5, max_size=5),
}


@given(**SIZES)
def test_serve_in_order_respects_limits_and_availability(seed, n, j, k, lam, limits):
    v, available, v0, nest, lam_k, e, e0, order = _random_market(seed, n, j, k, lam)
    lim = np.asarray(limits[:j], float)
    choice, closed = market.serve_in_order(v, available, v0, nest, lam_k, e, e0, lim, order)
    inside = choice >= 0
    assert np.all(available[np.flatnonzero(inside), choice[inside]])
    counts = np.bincount(choice[inside], minlength=j)
    assert np.all(counts <= lim)
    assert np.all(counts[closed] == lim[closed])


@given(**SIZES)
def test_serve_in_order_equals_queue_when_limits_are_zero_or_slack(seed, n, j, k, lam, limits):
    # Closing products only before anyone is served: the queue and the vectorised rule agree.
    v, available, v0, nest, lam_k, e, e0, order = _random_market(seed, n, j, k, lam)
    lim = np.where(np.asarray(limits[:j]) % 2 == 0, 0.0, float(n + 1))
    _check_serve_in_order(v, available, v0, nest, lam_k, e, e0, lim, order)


@given(**SIZES)
@example(seed=1, n=9, j=3, k=1, lam=0.4, limits=[0, 1, 1, 0, 0])
def test_serve_in_order_equals_one_by_one_queue_property(seed, n, j, k, lam, limits):
    v, available, v0, nest, lam_k, e, e0, order = _random_market(seed, n, j, k, lam)
    _check_serve_in_order(v, available, v0, nest, lam_k, e, e0, np.asarray(limits[:j], float), order)


# ------------------------------------------------------------ integer splits


@given(
    total=st.integers(0, 10**7),
    weights=st.lists(st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=12),
)
def test_split_largest_remainder_sums_exactly_and_is_proportional(total, weights):
    w = np.asarray(weights, float)
    out = market.split_largest_remainder(total, w)
    assert out.dtype == np.int64 and out.shape == w.shape
    assert np.all(out >= 0)
    if w.sum() <= 0:
        assert np.all(out == 0)
        return
    assert int(out.sum()) == total
    exact = total * w / w.sum()
    assert np.all(np.abs(out - exact) < 1.0 + 1e-6 * max(total, 1))
    assert np.all(out[w == 0] == 0)
    # More weight never gets fewer units.
    heavier = w[:, None] > w[None, :]
    assert np.all((out[:, None] >= out[None, :]) | ~heavier)


def test_split_largest_remainder_by_hand():
    # 10 split 1:1:1 -> exact 3.33 each; floors 3, 3, 3; one left goes to the first largest remainder.
    assert market.split_largest_remainder(10, np.array([1.0, 1.0, 1.0])).tolist() == [4, 3, 3]
    # 7 split 0.5:0.3:0.2 -> 3.5, 2.1, 1.4; floors 3, 2, 1; one left to the 0.5 remainder.
    assert market.split_largest_remainder(7, np.array([0.5, 0.3, 0.2])).tolist() == [4, 2, 1]
    assert market.split_largest_remainder(0, np.array([1.0, 2.0])).tolist() == [0, 0]
    assert market.split_largest_remainder(5, np.array([0.0, 0.0])).tolist() == [0, 0]


def _split_one_by_one(total: int, w: np.ndarray) -> np.ndarray:
    """The split of one row as it was written before rows were split together (the reference)."""
    if total <= 0 or w.sum() <= 0:
        return np.zeros(w.shape, np.int64)
    exact = total * w / w.sum()
    out = np.floor(exact).astype(np.int64)
    short = int(total - out.sum())
    if short > 0:
        out[np.argsort(-(exact - out), kind="stable")[:short]] += 1
    return out


@pytest.mark.parametrize("columns", [1, 2, 3, 5, 9, 17])
def test_rows_split_together_as_each_alone(columns):
    rng = np.random.default_rng(columns)
    totals = rng.integers(-2, 3000, 400)
    whole = rng.integers(0, 4, (400, columns)).astype(float)  # whole units, many ties
    for w in (whole, whole * rng.random((400, columns)), np.zeros((400, columns))):
        got = market.split_rows_largest_remainder(totals, w)
        assert got.dtype == np.int64 and got.shape == w.shape
        for i in range(totals.size):
            assert got[i].tolist() == _split_one_by_one(int(totals[i]), w[i]).tolist(), (i, totals[i], w[i])
    assert market.split_rows_largest_remainder(np.zeros(0, np.int64), np.zeros((0, columns))).shape == (0, columns)


# ------------------------------------------------------------ delivery


def test_deliver_by_hand():
    # Product 0, in two markets: backlog 100 and 50, a 2-month wait at 0.1 a month cancels
    # 1 - exp(-0.2) = 18.1% of it: 18 and 9. With 10 and 5 new orders, 92 and 46 wait; stock 20 plus
    # capacity 100 delivers 120 of the 138, split 80 and 40; production 100 (all it can, stock 0 left).
    # Product 1 is not deliverable yet: its 10 + 5 orders wait, nothing is built.
    out = market.deliver(
        backlog=np.array([[100.0, 50.0], [10.0, 0.0]]),
        orders=np.array([[10.0, 5.0], [5.0, 0.0]]),
        wait=np.array([2.0, 0.0]),
        cancel_rate_per_wait_month=0.1,
        capacity=np.array([100.0, 100.0]),
        deliverable=np.array([True, False]),
        stock=np.array([20.0, 0.0]),
        target_stock=np.array([30.0, 30.0]),
    )
    assert out.cancelled.tolist() == [[18.0, 9.0], [0.0, 0.0]]
    assert out.units.tolist() == [[80.0, 40.0], [0.0, 0.0]]
    assert out.delivered.tolist() == [120.0, 0.0]
    assert out.production.tolist() == [100.0, 0.0]
    assert out.stock.tolist() == [0.0, 0.0]
    assert out.backlog.tolist() == [[12.0, 6.0], [15.0, 0.0]]


@given(
    seed=st.integers(0, 10_000),
    p=st.integers(1, 4),
    m=st.integers(1, 3),
    rate=st.floats(0.0, 0.5),
)
def test_deliver_keeps_the_accounting(seed, p, m, rate):
    rng = np.random.default_rng(seed)
    backlog = rng.integers(0, 500, (p, m)).astype(float)
    orders = rng.integers(0, 300, (p, m)).astype(float)
    stock = rng.integers(0, 200, p).astype(float)
    capacity = rng.integers(0, 400, p).astype(float)
    deliverable = rng.random(p) < 0.7
    out = market.deliver(
        backlog, orders, rng.uniform(0, 24, p), rate, capacity, deliverable, stock, rng.integers(0, 300, p).astype(float)
    )
    # Orders = deliveries + backlog change + cancellations; cancellations come out of the backlog carried in.
    assert_array_equal(orders, out.units + (out.backlog - backlog) + out.cancelled)
    assert np.all((out.cancelled >= 0) & (out.cancelled <= backlog)) and np.all(out.backlog >= 0)
    # Deliveries come from stock and capacity, only once deliveries have started.
    assert_array_equal(out.units.sum(axis=1), out.delivered)
    assert np.all(out.delivered <= stock + capacity) and np.all(out.delivered[~deliverable] == 0)
    # Production within capacity; stock = stock + production - deliveries, never negative.
    assert np.all((out.production >= 0) & (out.production <= capacity)) and np.all(out.production[~deliverable] == 0)
    assert_array_equal(out.stock, stock + out.production - out.delivered)
    assert np.all(out.stock >= 0)
    # What can be delivered is: the smaller of what waits and what exists.
    assert_array_equal(out.delivered, np.where(deliverable, np.minimum((backlog - out.cancelled + orders).sum(axis=1), stock + capacity), 0))


def test_segment_of_by_hand():
    floors = np.array([300_000.0, 0.0, 500_000.0])  # segments need not be listed in price order
    assert market.segment_of(np.array([100_000.0, 300_000.0, 499_999.0, 900_000.0, -1.0]), floors).tolist() == [1, 0, 0, 2, 1]


# -------------------------------------------------------------- seasonality

FLAT = [1.0] * 12
LNY = {"2023": "2023-01-22", "2024": "2024-02-10"}


def _year(year: int, depth: float = 0.3, monthly=FLAT, window: int = 14) -> np.ndarray:
    return np.array([market.seasonality_factor(year, m, monthly, LNY, depth, window) for m in range(1, 13)])


def test_lunar_new_year_2024_trough_falls_in_february():
    # LNY 2024-02-10: the 14-day window runs 2024-02-07 .. 2024-02-20, all in February.
    f = _year(2024)
    assert int(np.argmin(f)) == 1
    assert f[1] == pytest.approx(1.0 - 0.3)
    assert np.delete(f, 1) == pytest.approx(np.ones(11))


def test_lunar_new_year_2023_trough_falls_in_january_and_is_split():
    # LNY 2023-01-22: the window starts 2023-01-19 and covers Jan 19..31 (13 days) and Feb 1 (1 day).
    f = _year(2023)
    assert int(np.argmin(f)) == 0
    assert f[0] == pytest.approx(1.0 - 0.3 * 13 / 14)
    assert f[1] == pytest.approx(1.0 - 0.3 * 1 / 14)
    assert f[2:] == pytest.approx(np.ones(10))


@pytest.mark.parametrize("year, window", [(2023, 14), (2024, 14), (2023, 30), (2024, 40)])
def test_lunar_new_year_loss_sums_to_depth_across_months(year, window):
    # However the window falls across months, the months lose `depth` window-shares in total.
    f = _year(year, depth=0.25, window=window)
    assert (1.0 - f).sum() == pytest.approx(0.25)


def test_seasonality_without_a_lunar_date_is_the_renormalised_pattern():
    monthly = [0.9, 0.8, 1, 1, 1, 1, 1, 1, 1, 1, 1.1, 1.2]
    f = _year(2030, monthly=monthly)
    assert_allclose(f, np.array(monthly) / np.mean(monthly))
    assert f.mean() == pytest.approx(1.0)


def test_spring_festival_shutdown_share_by_hand():
    # LNY 2024-02-10: a 10-day shutdown from 2024-02-07 falls in February (29 days): 10/29 lost.
    lny = {"2024": "2024-02-10", "2023": "2023-01-22"}
    assert market.shutdown_share(2024, 2, lny, 10) == pytest.approx(10 / 29)
    assert market.shutdown_share(2024, 1, lny, 10) == 0.0
    # LNY 2023-01-22: from 2023-01-19, 13 days in January (31) and 2 in February (28).
    assert market.shutdown_share(2023, 1, lny, 15) == pytest.approx(13 / 31)
    assert market.shutdown_share(2023, 2, lny, 15) == pytest.approx(2 / 28)
    assert market.shutdown_share(2024, 2, lny, 0) == 0.0
    assert market.shutdown_share(2025, 2, lny, 10) == 0.0  # no date for the year: no shutdown


# ------------------------------------------------------- capacity, reach, Bass


def test_ramp_capacity_by_hand():
    # Full 3000 over a 3-month ramp: 1000, 2000, 3000, then flat; nothing before the start.
    got = market.ramp_capacity(np.array([-2, -1, 0, 1, 2, 3, 10]), 3, 3000.0)
    assert got.tolist() == [0, 0, 1000, 2000, 3000, 3000, 3000]
    assert market.ramp_capacity(0, 1, 500.0) == pytest.approx(500.0)


@given(ramp=st.integers(1, 24), full=st.floats(0, 1e6, allow_nan=False))
def test_ramp_capacity_rises_to_full_and_stays(ramp, full):
    t = np.arange(-3, 40)
    cap = market.ramp_capacity(t, ramp, full)
    assert np.all(np.diff(cap) >= 0)
    assert np.all((cap >= 0) & (cap <= full * (1 + 1e-12)))
    assert np.all(cap[t >= ramp - 1] == pytest.approx(full))


@given(
    awareness=st.lists(st.floats(0, 1), min_size=1, max_size=8),
    p=st.floats(0, 1),
    q=st.floats(0, 2),
    owners=st.floats(0, 1e7),
    bump=st.floats(0, 1e6),
    reference=st.floats(1.0, 1e7),
)
def test_awareness_step_stays_in_unit_interval_and_is_monotone(awareness, p, q, owners, bump, reference):
    a = np.sort(np.asarray(awareness))
    nxt = market.awareness_step(a, p, q, np.full(a.size, owners), reference)
    assert np.all((nxt >= 0) & (nxt <= 1))
    assert np.all(nxt >= a - 1e-12)  # awareness never falls
    assert np.all(np.diff(nxt) >= -1e-12)  # more aware now, at least as aware next month
    more_owners = market.awareness_step(a, p, q, np.full(a.size, owners + bump), reference)
    assert np.all(more_owners >= nxt - 1e-12)  # more owners, more word of mouth


def test_awareness_step_by_hand():
    # A = 0.2, p = 0.01, q = 0.4, owners / reference = 0.5: hazard 0.01 + 0.2 = 0.21;
    # A' = 0.2 + 0.8 * 0.21 = 0.368.
    got = market.awareness_step(np.array([0.2]), 0.01, 0.4, np.array([500_000.0]), 1_000_000.0)
    assert got[0] == pytest.approx(0.368)


def test_store_reach_and_cancellation_rate():
    stores = np.array([-5.0, 0.0, 10.0, 100.0, 1000.0])
    reach = market.store_reach(stores, 0.01)
    assert reach[0] == 0.0 and reach[1] == 0.0
    assert reach[2] == pytest.approx(1 - math.exp(-0.1))
    assert np.all(np.diff(reach) >= 0) and np.all(reach < 1)
    rate = market.cancellation_rate(np.array([-1.0, 0.0, 2.0, 10.0]), 0.03)
    assert rate.tolist()[:2] == [0.0, 0.0]
    assert rate[2] == pytest.approx(1 - math.exp(-0.06))
    assert np.all(np.diff(rate) >= 0) and np.all(rate < 1)


# ------------------------------------------------------------ compiled kernel (sim/kernel.py)
#
# The same law drawn differently: first choices by inverse CDF, then service in a random order
# where a buyer whose first choice has closed draws again from the residual law.

from sim.model import kernel  # noqa: E402  (the compiled kernel's tests live with the law they draw)

NO_ORDER = np.empty(0, np.int64)
NO_UNIFORMS = np.empty((0, 4))


def kernel_shares(v3: np.ndarray, nest: list[int], lam: list[float], v0: float, n: int, seed: int) -> np.ndarray:
    """Shares of products and (last) the outside option among ``n`` identical buyers served by the kernel."""
    j = v3.size
    v = np.tile(v3.astype(np.float32), (n, 1))
    choice, _ = kernel.serve_matrix(
        v, np.ones((n, j), bool), np.full(n, v0, np.float32), np.array(nest, np.int64), np.array(lam, float),
        np.full(j, n + 1, np.int64), kernel.new_key(np.random.default_rng(seed)), NO_ORDER, NO_UNIFORMS,
    )  # fmt: skip
    return empirical_shares(choice, j)


@pytest.mark.parametrize(
    "nest, lam, v0",
    [
        ([0, 0, 0], [1.0], 0.0),  # plain logit
        ([0, 0, 0], [1.0], 1.5),
        ([0, 0, 0], [0.5], -2.0),  # one inside nest, as the baseline
        ([0, 0, 1], [0.5, 0.5], 0.0),  # the hand-computed two-nest market above
        ([0, 1, 1], [0.3, 0.9], 1.0),
        ([0, 0, 0], [0.01], 2.0),  # small lambda: the inclusive value is about max V, not lost to underflow
        ([0, 0, 1], [0.02, 0.05], 1.2),
    ],
)
def test_kernel_reproduces_nested_logit_shares(nest, lam, v0):
    expected = market.nested_logit_probabilities(V3, np.array(nest), np.array(lam), v0)
    assert_shares_match(kernel_shares(V3, nest, lam, v0, N_DRAWS, seed=21), expected, N_DRAWS)


def test_kernel_matches_the_hand_computed_two_nest_probabilities():
    shares = kernel_shares(V3, [0, 0, 1], [0.5, 0.5], 0.0, N_DRAWS, seed=22)
    assert_shares_match(shares, np.array([0.485648, 0.178660, 0.126737, 0.208954]), N_DRAWS)


def test_kernel_inverse_cdf_by_hand():
    # Plain logit, v = log(1, 2, 1), v0 = log 4, shifted by the largest utility (log 4): weights 1/4, 2/4, 1/4 and
    # 1 for the outside option; total 2. u1 picks the outside option if u1 * 2 < 1, else u2 picks the product with
    # running sums 1/4, 3/4, 1 of the nest's total 1.
    v = np.log(np.array([[1.0, 2.0, 1.0]] * 4, np.float32))
    v0 = np.full(4, np.log(4.0), np.float32)
    u = np.array([[0.49, 0.9, 0, 0], [0.51, 0.2, 0, 0], [0.51, 0.5, 0, 0], [0.99, 0.8, 0, 0]])
    choice, _ = kernel.serve_matrix(
        v.astype(np.float32), np.ones((4, 3), bool), v0, np.zeros(3, np.int64), np.ones(1),
        np.full(3, 10, np.int64), np.uint64(0), np.arange(4), u,
    )  # fmt: skip
    assert choice.tolist() == [market.OUTSIDE, 0, 1, 2]


@pytest.mark.parametrize(
    "nest, lam, closed",
    [
        ([0, 0, 0], [1.0], [0]),
        ([0, 0, 0], [0.5], [0]),  # in a nested logit closing a product also sends buyers to the outside option
        ([0, 0, 0], [0.5], [0, 1]),
        ([0, 0, 1], [0.5, 0.5], [2]),  # a whole nest closes
        ([0, 1, 1], [0.3, 0.9], [1]),
        ([0, 0, 0], [0.01], [0]),  # the nest's best product closes and the others are far below it
        ([0, 0, 1], [0.02, 0.02], [0, 2]),
    ],
)
def test_kernel_draw_again_gives_the_nested_logit_over_what_is_open_now(nest, lam, closed):
    """Keep the first choice if open, else draw from the residual law: together, the law over what is open now."""
    n, j = N_DRAWS, V3.size
    rng = np.random.default_rng(23)
    open_now = np.ones(j, bool)
    open_now[closed] = False
    v = np.tile(V3.astype(np.float32), (n, 1))
    args = (v, np.ones((n, j), bool), np.full(n, 0.5, np.float32), np.array(nest, np.int64), np.array(lam, float))
    u = rng.random((n, 4))
    choice = kernel.choose_rows(*args, np.ones(j, bool), open_now, u)
    assert not np.isin(choice, closed).any()
    on_open = market.nested_logit_probabilities(V3[open_now], np.array(nest)[open_now], np.array(lam, float), 0.5)
    expected = np.zeros(j + 1)
    expected[np.append(open_now, True)] = on_open
    assert_shares_match(empirical_shares(choice, j), expected, n)
    # Buyers whose first choice is still open keep it.
    first = kernel.choose_rows(*args, np.ones(j, bool), np.ones(j, bool), u)
    kept = (first < 0) | open_now[np.maximum(first, 0)]
    assert_array_equal(choice[kept], first[kept])


def one_by_one_kernel(v, available, v0, nest, lam, limits, order, u) -> np.ndarray:
    """The kernel's rule applied to one buyer at a time in ``order``, with what is open at each one's turn."""
    n, j = v.shape
    open_start = np.asarray(limits) > 0
    is_open = open_start.copy()
    taken = np.zeros(j, np.int64)
    choice = np.full(n, -2, np.int64)
    for r in order:
        row = slice(r, r + 1)
        c = int(kernel.choose_rows(v[row], available[row], v0[row], nest, lam, open_start, is_open, u[row])[0])
        choice[r] = c
        if c >= 0:
            assert is_open[c]
            taken[c] += 1
            is_open[c] = taken[c] < limits[c]
    return choice


def _check_kernel_serves_one_by_one(seed: int, n: int, j: int, k: int, lam: float, limits) -> np.ndarray:
    v, available, v0, nest, lam_k, _, _, order = _random_market(seed, n, j, k, lam)
    u = np.random.default_rng(seed + 3).random((n, 4))
    nest, lam_k = nest.astype(np.int64), lam_k.astype(float)
    lim = np.asarray(limits, np.int64)
    choice, closed = kernel.serve_matrix(v, available, v0, nest, lam_k, lim, np.uint64(0), order.astype(np.int64), u)
    assert_array_equal(choice, one_by_one_kernel(v, available, v0, nest, lam_k, lim, order, u))
    counts = np.bincount(choice[choice >= 0], minlength=j)
    assert np.all(counts <= np.maximum(lim, 0))
    assert np.all(closed == (counts >= lim))
    return counts


@pytest.mark.parametrize(
    "seed, n, k, lam, limits",
    [
        (0, 400, 1, 0.6, [40, 40, 40, 40]),  # limits bind in the middle of the queue
        (1, 400, 1, 1.0, [10, 10, 10, 500]),  # tight limits, a cascade of closures
        (2, 400, 2, 0.6, [40, 40, 40, 40]),
        (3, 700, 3, 0.4, [0, 30, 60, 5]),  # one product closed from the start
        (4, 300, 1, 0.5, [1000] * 4),  # nothing binds
    ],
)
def test_kernel_allocation_equals_one_by_one_service(seed, n, k, lam, limits):
    counts = _check_kernel_serves_one_by_one(seed, n, 4, k, lam, limits)
    if seed in (0, 1, 2):
        assert np.sum(counts == np.asarray(limits)) >= 2, "the limits should bind"


@given(**SIZES)
@example(seed=1, n=9, j=3, k=1, lam=0.4, limits=[0, 1, 1, 0, 0])
def test_kernel_allocation_equals_one_by_one_service_property(seed, n, j, k, lam, limits):
    _check_kernel_serves_one_by_one(seed, n, j, k, lam, limits[:j])


def test_kernel_chunks_of_draws_again_cross_closures():
    # More buyers to redraw than fit in one chunk, and several closures inside a chunk's span:
    # the chunked pass 2 must still equal one-by-one service.
    counts = _check_kernel_serves_one_by_one(5, 3 * kernel.CHUNK + 17, 5, 1, 0.7, [2, 3, 200, 5, 400])
    assert counts[0] == 2 and counts[1] == 3 and counts[3] == 5


def test_kernel_is_a_function_of_its_key():
    v, available, v0, nest, lam, _, _, _ = _random_market(9, 500, 5, 2, 0.6)
    args = (v, available, v0, nest.astype(np.int64), lam.astype(float), np.full(5, 60, np.int64))
    a, _ = kernel.serve_matrix(*args, np.uint64(7), NO_ORDER, NO_UNIFORMS)
    b, _ = kernel.serve_matrix(*args, np.uint64(7), NO_ORDER, NO_UNIFORMS)
    c, _ = kernel.serve_matrix(*args, np.uint64(8), NO_ORDER, NO_UNIFORMS)
    assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_kernel_serving_order_is_uniform():
    # All 24 orders of 4 buyers who chose a product, over 24,000 keys: chi-square with 23 degrees of freedom.
    first = np.zeros(4, np.int64)
    seen = np.zeros(24, int)
    perms = {p: i for i, p in enumerate(__import__("itertools").permutations(range(4)))}
    for key in range(24_000):
        q = kernel.order_inside(first, NO_ORDER, np.uint64(key * 7919), np.uint64(0)) & 0xFFFFFFFF
        seen[perms[tuple(q.tolist())]] += 1
    chi2 = float(((seen - 1000.0) ** 2 / 1000.0).sum())
    assert chi2 < 49.7, chi2  # the 99.9% quantile of chi-square(23)


def test_bernoulli_threshold_and_words():
    assert kernel.bernoulli_threshold(np.array([0.0, 0.5, 1.0, 2.0])).tolist() == [0, 2**31, 2**32, 2**32]
    # Consecutive words of one key look uniform: their high halves average 2**31 and the bits are balanced.
    words = np.array([kernel.word(np.uint64(5), np.uint64(i)) for i in range(20_000)], np.uint64)
    hi = (words >> np.uint64(32)).astype(float) / 2**32
    assert abs(hi.mean() - 0.5) < 4 * np.sqrt(1 / 12 / hi.size)
    bits = np.unpackbits(words.view(np.uint8)).mean()
    assert abs(bits - 0.5) < 4 * 0.5 / np.sqrt(words.size * 64)


def test_draw_buyers_distributions():
    n = 200_000
    mean = np.linspace(-1, 1, 12).astype(np.float32)
    sd = np.linspace(0.2, 1.2, 12).astype(np.float32)
    out = (np.empty(n, np.int16), np.empty(n, bool), np.empty(n, np.float32), np.empty(n, np.float32), np.empty((n, 12), np.float32))
    kernel.draw_buyers(
        np.uint64(3), np.cumsum([0.2, 0.3, 0.5]), kernel.bernoulli_threshold_of(0.4), math.log(320_000.0), 0.45,
        1.3, 1.0, mean, sd, 11, 0.5, *out,
    )  # fmt: skip
    tier, family, budget, alpha, taste = out
    assert_allclose(np.bincount(tier, minlength=3) / n, [0.2, 0.3, 0.5], atol=4 * np.sqrt(0.25 / n))
    assert abs(family.mean() - 0.4) < 4 * np.sqrt(0.24 / n)
    log_budget = np.log(budget.astype(float))
    assert abs(log_budget.mean() - math.log(320_000.0)) < 4 * 0.45 / np.sqrt(n)
    assert abs(log_budget.std() / 0.45 - 1) < 0.01
    # alpha = 1.3 * (320k / budget) ** 1, as market.price_sensitivity with the median as reference.
    assert_allclose(alpha, market.price_sensitivity(1.3, budget, 320_000.0, 1.0), rtol=1e-5)
    t = taste.astype(float)
    t[:, 11] -= 0.5 * family
    z = (t - mean) / sd
    assert np.all(np.abs(z.mean(axis=0)) < 4 / np.sqrt(n))
    assert np.all(np.abs(z.std(axis=0) - 1) < 0.01)
    corr = np.corrcoef(np.column_stack([z, log_budget]).T)
    assert np.all(np.abs(corr[np.triu_indices(13, 1)]) < 0.015)
    # Normal tails: the share beyond 2 sd, 0.0455 for a normal.
    assert abs(np.mean(np.abs(z) > 2) - 0.0455) < 0.002
