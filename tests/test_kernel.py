"""The compiled kernel's market call, sim.model.kernel.serve_market, on a hand-built small market.

Properties: order limits and budgets are respected, brands not considered are never chosen,
the same key gives the same month, the outside option is taken when nothing can be chosen,
only the market's rows are written, and the shares are the logit's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sim.model import kernel, market

N_TASTES = 3
#: Three products of two brands: paid prices (RMB), mean utilities and brands.
PAID = np.array([200_000.0, 300_000.0, 400_000.0])
DELTA = np.array([0.5, 1.0, 1.5], np.float32)
BRAND = np.array([0, 0, 1], np.int64)


def market_case(n: int = 400, seed: int = 1, pool_rows: int | None = None) -> dict[str, Any]:
    """The arguments of ``serve_market`` for ``n`` buyers of one market, rows 1, 3, 5... of a pool of
    ``2n`` (``pool_rows``) rows; budgets spread from 150k to 450k RMB, never within 500 RMB of a price."""
    rng = np.random.default_rng(seed)
    size = pool_rows or 2 * n
    attrs = np.zeros((N_TASTES + 1, PAID.size), np.float32)
    attrs[0] = [0.0, 1.0, 0.5]
    attrs[N_TASTES] = -PAID / 1e5
    return dict(
        rows=np.arange(1, 2 * n, 2, dtype=np.int64),
        taste=rng.normal(0.0, 0.5, (size, N_TASTES)).astype(np.float32),
        alpha=rng.uniform(0.2, 0.6, size).astype(np.float32),
        budget=(rng.integers(150, 450, size) * 1000 + 500).astype(np.float32),
        tier=rng.integers(0, 2, size).astype(np.int16),
        may_defer=rng.random(size) < 0.5,
        attrs=attrs,
        delta=DELTA.copy(),
        paid=PAID.copy(),
        brand=BRAND.copy(),
        nest=np.zeros(PAID.size, np.int64),
        lam=np.array([1.0]),
        consider=kernel.bernoulli_threshold(np.array([[0.9, 0.8], [0.6, 0.7]])),
        budget_factor=1.0,
        v0_base=0.0,
        v0_alpha=0.0,
        defer=kernel.bernoulli_threshold_of(0.5),
        limits=np.full(PAID.size, n + 1, np.int64),
        product_id=np.array([10, 11, 12], np.int64),
        key=np.uint64(12345),
    )


def serve(case: dict[str, Any], **changes: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``serve_market`` on ``case`` with ``changes``: ``(counts, choice, stays)`` (pool-sized outputs,
    -9 and True where nothing was written)."""
    args = {**case, **changes}
    size = args["taste"].shape[0]
    choice = np.full(size, -9, np.int32)
    stays = np.ones(size, bool)
    records = kernel.records_buffer(args["rows"].size, N_TASTES)
    counts = kernel.serve_market(**args, choice=choice, stays=stays, records=records)
    return counts, choice, stays


def product_of(choice: np.ndarray, case: dict[str, Any]) -> np.ndarray:
    """Index of the product each of the market's buyers chose (-1: the outside option)."""
    ids = case["product_id"]
    picked = choice[case["rows"]]
    return np.where(picked >= 0, np.searchsorted(ids, np.maximum(picked, ids[0])), -1)


def test_counts_are_the_choices_and_only_the_markets_rows_are_written():
    case = market_case()
    counts, choice, stays = serve(case)
    rows = case["rows"]
    others = np.setdiff1d(np.arange(choice.size), rows)
    assert np.all(choice[others] == -9) and np.all(stays[others])
    assert set(choice[rows].tolist()) <= {-1, 10, 11, 12}
    j = product_of(choice, case)
    assert_array_equal(counts, np.bincount(j[j >= 0], minlength=PAID.size))
    assert counts.sum() > 0 and (j < 0).sum() > 0


@pytest.mark.parametrize("limits", [[5, 5, 5], [0, 40, 3], [1, 0, 0], [100, 2, 100]])
def test_order_limits_are_never_exceeded_and_bind_when_asked_for_more(limits):
    case = market_case()
    free, _, _ = serve(case)
    limited, choice, _ = serve(case, limits=np.array(limits, np.int64))
    assert np.all(limited <= limits)
    # A product asked for more than its limit is filled to it (the buyers turned away choose again).
    full = free >= np.array(limits)
    assert_array_equal(limited[full], np.array(limits)[full])
    assert np.all(choice[case["rows"]] != -9)  # every buyer of the market has its choice written


def test_no_buyer_orders_a_product_it_cannot_afford():
    case = market_case(n=600)
    for factor in (1.0, 0.8):
        _, choice, _ = serve(case, budget_factor=factor)
        j = product_of(choice, case)
        budget = case["budget"][case["rows"]]
        inside = j >= 0
        assert np.all(PAID[j[inside]] <= budget[inside] * factor)
    # Budgets below every price: nobody orders.
    poor = {**case, "budget": np.full_like(case["budget"], 100_000.0)}
    counts, choice, _ = serve(poor)
    assert counts.sum() == 0 and np.all(choice[case["rows"]] == -1)


def test_a_brand_nobody_considers_is_never_chosen():
    case = market_case()
    consider = kernel.bernoulli_threshold(np.array([[1.0, 0.0], [1.0, 0.0]]))
    counts, choice, _ = serve(case, consider=consider)
    assert counts[BRAND == 1].sum() == 0 and counts.sum() > 0
    assert not np.isin(choice[case["rows"]], case["product_id"][BRAND == 1]).any()


def test_the_same_key_gives_the_same_month_and_another_key_another():
    case = market_case()
    limits = np.array([30, 30, 30], np.int64)  # binding: the serving order matters too
    a = serve(case, limits=limits)
    b = serve(case, limits=limits)
    c = serve(case, limits=limits, key=np.uint64(54321))
    for x, y in zip(a, b, strict=True):
        assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize(
    "what",
    ["no room", "nobody considers", "no products"],
)
def test_the_outside_option_when_nothing_can_be_chosen(what):
    case = market_case()
    if what == "no room":
        changes: dict[str, Any] = {"limits": np.zeros(PAID.size, np.int64)}
    elif what == "nobody considers":
        changes = {"consider": kernel.bernoulli_threshold(np.zeros((2, 2)))}
    else:
        changes = {
            "attrs": np.zeros((N_TASTES + 1, 0), np.float32), "delta": np.zeros(0, np.float32), "paid": np.zeros(0),
            "brand": np.zeros(0, np.int64), "nest": np.zeros(0, np.int64), "limits": np.zeros(0, np.int64),
            "product_id": np.zeros(0, np.int64),
        }  # fmt: skip
    counts, choice, stays = serve(case, **changes)
    rows = case["rows"]
    assert counts.sum() == 0 and np.all(choice[rows] == -1)
    # Who takes the outside option may stay only if it may still defer; about half of those do.
    may = case["may_defer"][rows]
    assert not stays[rows][~may].any()
    assert 0.35 < stays[rows][may].mean() < 0.65


def test_deferral_follows_its_threshold():
    case = market_case()
    _, choice, never = serve(case, defer=kernel.bernoulli_threshold_of(0.0))
    _, _, always = serve(case, defer=kernel.bernoulli_threshold_of(1.0))
    rows = case["rows"]
    outside = choice[rows] == -1
    assert not never[rows].any()
    assert_array_equal(always[rows], outside & case["may_defer"][rows])


def test_identical_buyers_choose_by_the_logit_probabilities():
    # No tastes, no price sensitivity: every buyer has V = delta and the outside option 0.
    n = 20_000
    case = market_case(n=n)
    case.update(
        taste=np.zeros_like(case["taste"]), alpha=np.zeros_like(case["alpha"]),
        budget=np.full_like(case["budget"], 1e6), consider=kernel.bernoulli_threshold(np.ones((2, 2))),
    )  # fmt: skip
    counts, _, _ = serve(case)
    shares = np.append(counts, n - counts.sum()) / n
    expected = market.logit_probabilities(DELTA.astype(float), 0.0)
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(shares - expected) <= 4 * se), (shares, expected)


def test_records_too_small_is_an_error():
    case = market_case(n=10)
    with pytest.raises(ValueError, match="records: too small"):
        kernel.serve_market(
            **case, choice=np.zeros(20, np.int32), stays=np.zeros(20, bool), records=kernel.records_buffer(5, N_TASTES)
        )
